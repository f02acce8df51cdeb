package main

import "golang.org/x/sys/unix"

// threadCPU is the CPU time (seconds) the calling OS thread has used; the caller
// locks its goroutine to the thread. ok is false where it cannot be read.
func threadCPU() (seconds float64, ok bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9, true
}
