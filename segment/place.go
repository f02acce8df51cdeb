package segment

import (
	"sync"
	"sync/atomic"
)

// place is a (live, room) pair held once for the whole process. A viewer's live
// sessions and open presences name one by its number (4 bytes) instead of holding two
// strings (32 bytes): with a million profiles that is about a tenth of their memory.
// Lives and rooms are few next to viewers, so the table stays small; it never
// shrinks, since any profile in memory may name any entry. Place 0 is ("", "").
type place uint32

// places is the process's table. Readers index an immutable snapshot without a lock;
// a new pair is appended under mu and a longer snapshot published.
var places = func() *placeTable {
	t := &placeTable{ids: map[[2]string]place{{"", ""}: 0}}
	t.pairs.Store(&[][2]string{{"", ""}})
	return t
}()

type placeTable struct {
	mu    sync.RWMutex
	ids   map[[2]string]place
	pairs atomic.Pointer[[][2]string]
}

// placeOf returns the number of (live, room), adding the pair when new.
func placeOf(live, room string) place {
	key := [2]string{live, room}
	t := places
	t.mu.RLock()
	p, ok := t.ids[key]
	t.mu.RUnlock()
	if ok {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.ids[key]; ok {
		return p
	}
	// The new entry goes past every published snapshot's length, so appending in
	// place does not touch what readers index.
	pairs := append(*t.pairs.Load(), key)
	p = place(len(pairs) - 1)
	t.ids[key] = p
	t.pairs.Store(&pairs)
	return p
}

func (p place) pair() [2]string { return (*places.pairs.Load())[p] }

// live is the place's live id ("" for a room that was not live).
func (p place) live() string { return p.pair()[0] }

// room is the place's room ("" when unknown).
func (p place) room() string { return p.pair()[1] }
