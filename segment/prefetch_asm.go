//go:build amd64 || arm64

package segment

// prefetch asks the processor to bring the cache line at addr closer. It reads
// nothing a Go program sees (a hint, which never faults), so it needs no lock.
func prefetch(addr uintptr)

// prefetchLines asks for the lines from first to last (both line-aligned, first no
// later than last) in one call: a call each cost as much as the warming saved for
// short lists.
func prefetchLines(first, last uintptr)
