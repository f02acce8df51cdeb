//go:build !amd64 && !arm64

package segment

// prefetch is a hint where the processor takes one; here it does nothing.
func prefetch(addr uintptr) {}

func prefetchLines(first, last uintptr) {}
