package segment

import (
	"testing"
	"unsafe"
)

// Warming is a hint: it ends for any range, and never faults, even on memory that is
// not mapped (a profile freed since its address was taken).
func TestWarmingNeverFaults(t *testing.T) {
	buf := make([]byte, 1<<16)
	start := uintptr(unsafe.Pointer(&buf[0]))
	for _, n := range []uintptr{1, cacheLine, cacheLine + 1, 1 << 16} {
		warmBytes(start, n)
	}
	warmBytes(start+1, cacheLine) // two lines
	warmBytes(0x1000, 1<<20)      // the first pages of the address space are never mapped
	warmTail(buf, 4)
	warmTail([]int(nil), 4)
}
