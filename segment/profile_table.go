package segment

import (
	"hash/maphash"
	"iter"
	"math/bits"
	"sync/atomic"
)

// profileTable holds a shard's profiles by id: an open-addressing table (linear
// probing) of slots that each hold an id's 64-bit hash and its profile. Go's map
// would do, but the slot an id will be found in cannot be known before a map lookup,
// and with a million profiles that lookup waited on memory for most events; here the
// consumer asks for the slot's line a few events ahead (slotAt), then for the profile
// (guess), then applies the event.
//
// An id has two independent hashes (each with a random seed): its slot holds the
// first (64 bits), its profile the second's low 32 bits (hash2, in the padding at the
// profile's end), and a match of both settles it. Reading the profile's id to compare
// its bytes was one more cache line, on a page of its own, per event (measured: 7–15 %
// of an event's time at a million profiles); the profile's own lines are fetched for
// the event anyway. A slot is 16 bytes: with the second hash in it as well, 24 bytes,
// 52 bytes per profile at a million (a table is a quarter to three quarters full).
// Ids whose first hashes are equal (rare, and not to be crafted: the seed is random)
// are further along the probe. For two different ids to match both, among a billion
// ids, the chance is about one in 10^11.
type profileTable struct {
	slots []profileSlot // a power of two long; a nil p is empty
	n     int
	// view points at a copy of slots' header, made whenever slots is replaced, for the
	// warming stages, which read the table without the shard's lock (warm.go): a
	// pointer is read whole, where the slice's words could be read half from before and
	// half from after another goroutine (an import) grew the table. Atomic, so that a
	// reader that sees the new pointer sees the header it points at (on arm64 the
	// stores could otherwise be seen out of order); on amd64 its Load is a plain read.
	view atomic.Pointer[[]profileSlot]
}

type profileSlot struct {
	h uint64 // idHash of the profile's id
	p *Profile
}

// idSeed and idSeed2 seed every id's hashes for the life of the process; nothing
// stores a hash.
var idSeed, idSeed2 = maphash.MakeSeed(), maphash.MakeSeed()

// idHash is id's 64-bit hash (no allocation). Shards take its low 32 bits (shardFor),
// a table its high bits (index).
func idHash(id string) uint64 { return maphash.String(idSeed, id) }

// idHash2 is id's second hash (its low 32 bits, never 0), independent of idHash: only
// a slot whose first hash matches asks for it.
func idHash2(id string) uint32 { return uint32(maphash.String(idSeed2, id)) | 1 }

const minSlots = 8

// init makes t an empty table, in place (its view is not to be copied).
func (t *profileTable) init() { t.setSlots(make([]profileSlot, minSlots)) }

func newProfileTable() *profileTable {
	t := &profileTable{}
	t.init()
	return t
}

func (t *profileTable) setSlots(slots []profileSlot) {
	t.slots = slots
	t.view.Store(&slots) // a header of its own, never changed
}

// index is the first slot h probes: the hash's high bits, since the shard is picked by
// its low 32 bits (within a shard, those bits are alike).
func (t *profileTable) index(h uint64) int { return slotIndex(len(t.slots), h) }

func slotIndex(slots int, h uint64) int { return int(h >> (64 - bits.TrailingZeros(uint(slots)))) }

// find returns the slot of id (hash h), or -1.
func (t *profileTable) find(id string, h uint64) int {
	mask := len(t.slots) - 1
	var h2 uint32
	for i := t.index(h); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.p == nil {
			return -1
		}
		if s.h == h {
			if h2 == 0 {
				h2 = idHash2(id) // never 0, which stands for "not yet"
			}
			if s.p.hash2 == h2 {
				return i
			}
		}
	}
}

// get returns the profile of id, nil when there is none.
func (t *profileTable) get(id string) *Profile { return t.getHashed(id, idHash(id)) }

// getHashed is get with id's hash h (idHash) already worked out.
func (t *profileTable) getHashed(id string, h uint64) *Profile {
	if i := t.find(id, h); i >= 0 {
		return t.slots[i].p
	}
	return nil
}

// slotAt is the address of the slot where the search for an id of hash h begins: a
// hint for warming the cache. Without the shard's lock (warm.go).
//
//go:norace
func (t *profileTable) slotAt(h uint64) *profileSlot {
	slots := *t.view.Load()
	return &slots[slotIndex(len(slots), h)]
}

// guess returns the first profile along the probe of hash h with that hash, without
// checking its id: a hint for warming the cache, which must not wait for the id's
// bytes. Without the shard's lock (warm.go): while another goroutine changes the
// table it may find nothing, or another profile, but only ever a profile.
//
//go:norace
func (t *profileTable) guess(h uint64) *Profile {
	slots := *t.view.Load()
	mask := len(slots) - 1
	i := slotIndex(len(slots), h)
	for range slots { // a probe that another goroutine keeps filling ends anyway
		s := &slots[i]
		p := s.p
		if p == nil {
			return nil
		}
		if s.h == h {
			return p
		}
		i = (i + 1) & mask
	}
	return nil
}

// put adds p, or replaces the profile with p's id.
func (t *profileTable) put(p *Profile) { t.putHashed(p, idHash(p.ID)) }

// putHashed is put with p's id's hash h worked out (tests choose theirs, to make ids collide).
func (t *profileTable) putHashed(p *Profile, h uint64) {
	p.hash2 = idHash2(p.ID)
	if i := t.find(p.ID, h); i >= 0 {
		t.slots[i].p = p
		return
	}
	if (t.n+1)*4 > len(t.slots)*3 { // at most three quarters full
		t.grow()
	}
	t.insert(profileSlot{h: h, p: p})
	t.n++
}

func (t *profileTable) insert(s profileSlot) {
	mask := len(t.slots) - 1
	i := t.index(s.h)
	for t.slots[i].p != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

func (t *profileTable) grow() {
	old := t.slots
	t.setSlots(make([]profileSlot, 2*len(old)))
	for _, s := range old {
		if s.p != nil {
			t.insert(s)
		}
	}
}

// del removes the profile of id, if any. The slots after it that belong earlier in
// their probe move back, so no probe meets an empty slot before its profile.
func (t *profileTable) del(id string) { t.delHashed(id, idHash(id)) }

func (t *profileTable) delHashed(id string, h uint64) {
	i := t.find(id, h)
	if i < 0 {
		return
	}
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].p != nil; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its probe starts after i
		// (cyclically, within (i, j]).
		k := t.index(t.slots[j].h)
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = profileSlot{}
	t.n--
}

func (t *profileTable) len() int { return t.n }

// all yields every profile, in no order; the table must not change meanwhile.
func (t *profileTable) all() iter.Seq[*Profile] {
	return func(yield func(*Profile) bool) {
		for _, s := range t.slots {
			if s.p != nil && !yield(s.p) {
				return
			}
		}
	}
}
