//go:build !linux

package main

// threadCPU cannot be read here.
func threadCPU() (seconds float64, ok bool) { return 0, false }
