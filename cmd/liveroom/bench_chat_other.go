//go:build !linux

package main

import (
	"sync"
	"sync/atomic"
)

// startReceivers reads each connection on a goroutine of its own (the epoll
// receivers are Linux-only).
func startReceivers(conns []benchConn, d *benchDelays, delivered, refused *atomic.Uint64) (stop func(), err error) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { readBench(c.ws, d, delivered, refused) })
	}
	return func() {
		for _, c := range conns {
			c.ws.Close()
		}
		wg.Wait()
	}, nil
}
