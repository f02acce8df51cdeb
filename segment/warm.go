package segment

import (
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// tryShard locks the shard of ev's viewer for a warming stage; nil when the event has
// no viewer, or another goroutine (a sweep, a write-through) holds the shard: not worth
// waiting for a hint.
func (e *Engine) tryShard(ev *event.Event) *shard {
	if ev.Viewer == "" {
		return nil
	}
	sh := e.shardOf(ev.Viewer)
	if !sh.mu.TryLock() {
		return nil
	}
	return sh
}

// warmSlot asks for the line of the table slot where the search for ev's viewer begins.
func (e *Engine) warmSlot(ev *event.Event) {
	sh := e.tryShard(ev)
	if sh == nil {
		return
	}
	prefetch(uintptr(unsafe.Pointer(sh.profiles.slotOf(ev.Viewer))))
	sh.mu.Unlock()
}

// warmProfile asks for the cache lines of ev's viewer's profile, found through the
// slot warmSlot fetched.
func (e *Engine) warmProfile(ev *event.Event) {
	sh := e.tryShard(ev)
	if sh == nil {
		return
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
	sh := e.tryShard(ev)
	if sh == nil {
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
