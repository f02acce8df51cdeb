//go:build !linux

package main

// offHeap returns n zeroed values of T; here they are in the Go heap, and count in the
// collector's pacing (see the Linux version).
func offHeap[T any](n int) ([]T, func(), error) { return make([]T, n), func() {}, nil }
