//go:build !linux

package main

import "sync/atomic"

// startReceivers reads each connection on a goroutine of its own (the epoll
// receivers are Linux-only).
func startReceivers(conns []benchConn, d *benchDelays, delivered, refused *atomic.Uint64) (stop func(), err error) {
	return readEach(conns, d, delivered, refused), nil
}
