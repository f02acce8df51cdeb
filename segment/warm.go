package segment

import (
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// warmKey is an event's viewer as the warming stages find it: the id's hash and its
// shard (nil when the event has none).
type warmKey struct {
	h  uint64
	sh *shard
}

// warmSlot works out the key of ev's viewer and asks for the line of the table slot
// where the search for it begins. A stage skips a shard that another goroutine (a
// sweep, a write-through) holds: not worth waiting for a hint.
func (e *Engine) warmSlot(ev *event.Event) warmKey {
	if ev.Viewer == "" {
		return warmKey{}
	}
	k := warmKey{h: idHash(ev.Viewer)}
	k.sh = e.shardFor(k.h)
	if k.sh.mu.TryLock() {
		prefetch(uintptr(unsafe.Pointer(k.sh.profiles.slotAt(k.h))))
		k.sh.mu.Unlock()
	}
	return k
}

// warmProfile asks for the cache lines of the profile found through the slot
// warmSlot fetched.
func (e *Engine) warmProfile(k warmKey) {
	if k.sh == nil || !k.sh.mu.TryLock() {
		return
	}
	p := k.sh.profiles.guess(k.h)
	k.sh.mu.Unlock()
	if p != nil {
		warmBytes(uintptr(unsafe.Pointer(p)), unsafe.Sizeof(*p))
	}
}

// warmLists asks for the ends of the lists that applying ev reads in its viewer's
// profile, whose lines warmProfile fetched earlier: only those its type reads.
func (e *Engine) warmLists(ev *event.Event, k warmKey) {
	if k.sh == nil || !k.sh.mu.TryLock() {
		return
	}
	if p := k.sh.profiles.guess(k.h); p != nil {
		warmTail(p.Days, 2)
		warmTail(p.Recent, 3)
		// Searched for the event's room. A viewer of many rooms has a list of their own
		// (first visits in another order than their neighbours'), out of the cache:
		// over 20,000 viewers each in ten rooms, warming it took a tenth less time per
		// event; at a million viewers, with a room or two each, no change.
		warmTail(p.Rooms, 4)
		if ev.Live != "" {
			warmTail(p.Lives, 2)
			warmTail(p.Open, 1)
		}
		if ev.Type == event.ProductClick || ev.Type == event.Order {
			warmTail(p.Cats, 2)
			warmTail(p.Clicks, 1)
		}
	}
	k.sh.mu.Unlock()
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
	prefetchLines(addr&^(cacheLine-1), (addr+n-1)&^(cacheLine-1))
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
