package segment

import (
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// warmKey is an event's viewer as the warming stages find it: the id's hash, its
// shard (nil when the event has none) and the profile the table's slot led to (a
// guess: see below).
type warmKey struct {
	h  uint64
	sh *shard
	p  *Profile
}

// The warming stages read the shard's table and its profiles without the shard's
// lock, though another goroutine (a sweep, a write-through, an import) may change them
// meanwhile. A lock (even a TryLock) is an atomic instruction, which on x86 waits for
// every earlier load and store: three of them per event took about a tenth of the
// engine's time at a million viewers (docs/benchmarks.md, twenty-first session). What
// they read is only ever used as an address to prefetch, which never faults and never
// reads memory the program sees, so a value half changed costs at most a useless hint:
//   - the table's slots are read through a header that is never changed, published
//     atomically (view), so a slot read is within the array it came from;
//   - a slot's profile pointer is one word, written whole: a profile or nil;
//   - a list's header may be read half old and half new; only an address comes of it.
// The race detector is told not to look (go:norace): these reads race by design.

// warmSlot works out the key of ev's viewer and asks for the line of the table slot
// where the search for it begins.
//
//go:norace
func (e *Engine) warmSlot(ev *event.Event) warmKey {
	if ev.Viewer == "" {
		return warmKey{}
	}
	k := warmKey{h: idHash(ev.Viewer)}
	k.sh = e.shardFor(k.h)
	prefetch(uintptr(unsafe.Pointer(k.sh.profiles.slotAt(k.h))))
	return k
}

// warmProfile asks for the cache lines of the profile found through the slot
// warmSlot fetched, and keeps it in k for warmLists.
//
//go:norace
func (e *Engine) warmProfile(k *warmKey) {
	if k.sh == nil {
		return
	}
	if k.p = k.sh.profiles.guess(k.h); k.p != nil {
		warmBytes(uintptr(unsafe.Pointer(k.p)), unsafe.Sizeof(*k.p))
	}
}

// warmLists asks for the ends of the lists that applying ev reads in its viewer's
// profile, whose lines warmProfile fetched earlier: only those its type reads.
//
//go:norace
func (e *Engine) warmLists(ev *event.Event, k *warmKey) {
	if p := k.p; p != nil {
		warmTail(p.Days.loose(), 2)
		warmRecent(p.Recent.loose(), p.recentHead)
		// Searched for the event's room. A viewer of many rooms has a list of their own
		// (first visits in another order than their neighbours'), out of the cache:
		// over 20,000 viewers each in ten rooms, warming it took a tenth less time per
		// event; at a million viewers, with a room or two each, no change.
		warmTail(p.Rooms.loose(), 4)
		if ev.Live != "" {
			warmTail(p.Lives.loose(), 2)
			warmTail(p.Open.loose(), 1)
		}
		if ev.Type == event.ProductClick || ev.Type == event.Order {
			warmTail(p.Cats.loose(), 2)
			warmTail(p.Clicks.loose(), 1)
		}
	}
}

// warmRecent asks for the lines remember reads and writes in recent (head as in a
// profile): the newest and the oldest slots of a full ring, else the list's end.
func warmRecent(recent []Recent, head uint8) {
	n := len(recent)
	if n != maxRecent {
		warmTail(recent, 3)
		return
	}
	// Addresses from the header read once, with no bounds check: the list may be
	// changing meanwhile (above), and a prefetch of any address is harmless.
	base, size := uintptr(unsafe.Pointer(unsafe.SliceData(recent))), unsafe.Sizeof(Recent{})
	h := uintptr(head) % maxRecent
	warmBytes(base+h*size, size)
	warmBytes(base+(h+maxRecent-1)%maxRecent*size, size)
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

// warmForPass asks for the lines of p's lists (the first passListLines of each) and of
// its id: what a pass over the profiles reads (a sweep's windows and pruning, a
// write-through's encoding).
func (p *Profile) warmForPass() {
	warmString(p.ID)
	warmHead(p.Days.loose(), passListLines)
	warmHead(p.Recent.loose(), passListLines)
	warmHead(p.Lives.loose(), passListLines)
	warmHead(p.Open.loose(), passListLines)
	warmHead(p.Cats.loose(), passListLines)
	warmHead(p.Clicks.loose(), passListLines)
	if p.buy != nil {
		prefetch(uintptr(unsafe.Pointer(p.buy)))
	}
}

// passListLines bounds the lines warmLists asks for per list: most lists are a few
// lines; a long one's rest is read as it comes.
const passListLines = 8

// warmHead prefetches the first lines (at most) of list.
func warmHead[T any](list []T, lines int) {
	if len(list) == 0 {
		return
	}
	size := uintptr(len(list)) * unsafe.Sizeof(list[0])
	warmBytes(uintptr(unsafe.Pointer(unsafe.SliceData(list))), min(size, uintptr(lines)*cacheLine))
}
