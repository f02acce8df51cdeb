package segment

import (
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// warmProfile asks for the cache lines of ev's viewer's profile (the map's lookup
// itself still waits on memory).
func (e *Engine) warmProfile(ev *event.Event) {
	if ev.Viewer == "" {
		return
	}
	sh := e.shardOf(ev.Viewer)
	if !sh.mu.TryLock() {
		return // a sweep or write-through holds it: not worth waiting for a hint
	}
	p := sh.profiles.guess(ev.Viewer)
	sh.mu.Unlock()
	if p != nil {
		warmBytes(uintptr(unsafe.Pointer(p)), unsafe.Sizeof(*p))
	}
}

// warmLists asks for the ends of the lists that applying ev reads in its viewer's
// profile, whose lines warmProfile fetched earlier: only those its type reads.
func (e *Engine) warmLists(ev *event.Event) {
	if ev.Viewer == "" {
		return
	}
	sh := e.shardOf(ev.Viewer)
	if !sh.mu.TryLock() {
		return
	}
	if p := sh.profiles.guess(ev.Viewer); p != nil {
		warmString(p.ID) // the match is checked against the id's bytes
		warmTail(p.Days, 2)
		warmTail(p.Recent, 3)
		if ev.Live != "" {
			warmTail(p.Lives, 2)
			warmTail(p.Open, 1)
		}
		if ev.Type == event.ProductClick || ev.Type == event.Order {
			warmTail(p.Cats, 2)
			warmTail(p.Clicks, 1)
		}
	}
	sh.mu.Unlock()
}

// warmString prefetches the start of s.
func warmString(s string) {
	if len(s) > 0 {
		prefetch(uintptr(unsafe.Pointer(unsafe.StringData(s))))
	}
}

const cacheLine = 64

// warmBytes prefetches the lines that hold n bytes from addr (an address only: the
// memory is not read, so it may since have been freed).
func warmBytes(addr, n uintptr) {
	first, last := addr&^(cacheLine-1), (addr+n-1)&^(cacheLine-1)
	for line := first; line <= last; line += cacheLine {
		prefetch(line)
	}
}

// warmTail prefetches the last lines (at most) of list.
func warmTail[T any](list []T, lines int) {
	if len(list) == 0 {
		return
	}
	size := uintptr(len(list)) * unsafe.Sizeof(list[0])
	n := min(size, uintptr(lines)*cacheLine)
	warmBytes(uintptr(unsafe.Pointer(unsafe.SliceData(list)))+size-n, n)
}
