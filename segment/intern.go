package segment

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// table numbers values for the whole process, so that profiles hold a small number
// instead of the value. Readers index an immutable snapshot without a lock; a new
// value is appended under mu and a longer snapshot published. It never shrinks:
// any profile in memory may hold any number. Value 0 is the zero value.
type table[K comparable] struct {
	mu   sync.RWMutex
	ids  map[K]uint32
	vals atomic.Pointer[[]K]
	max  int // numbers up to max-1; past it, new values get 0
}

func newTable[K comparable](max int, seed ...K) *table[K] {
	var zero K
	t := &table[K]{ids: map[K]uint32{zero: 0}, max: max}
	vals := []K{zero}
	for _, k := range seed {
		if _, ok := t.ids[k]; !ok {
			t.ids[k] = uint32(len(vals))
			vals = append(vals, k)
		}
	}
	t.vals.Store(&vals)
	return t
}

// id returns k's number, adding k (made by own, which must copy what it keeps)
// when new.
func (t *table[K]) id(k K, own func(K) K) uint32 {
	t.mu.RLock()
	n, ok := t.ids[k]
	t.mu.RUnlock()
	if ok {
		return n
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.ids[k]; ok {
		return n
	}
	vals := *t.vals.Load()
	if len(vals) >= t.max {
		return 0
	}
	k = own(k)
	// The new entry lies past every published snapshot's length, so appending in
	// place does not touch what readers index.
	vals = append(vals, k)
	n = uint32(len(vals) - 1)
	t.ids[k] = n
	t.vals.Store(&vals)
	return n
}

func (t *table[K]) value(n uint32) K { return (*t.vals.Load())[n] }

// size is how many values the table holds (the zero value included).
func (t *table[K]) size() int { return len(*t.vals.Load()) }

// place is a (live, room) pair: a viewer's live sessions and open presences name one
// by its number (4 bytes) instead of holding two strings (32 bytes), about a tenth of
// a million profiles' memory. Lives and rooms are few next to viewers (imported ones
// are checked like ids), so the table stays small; at maxPlaces pairs a new one is
// kept as place 0, ("", ""), and counted nowhere.
type place uint32

const maxPlaces = 1 << 22

var places = newTable[[2]string](maxPlaces)

func placeOf(live, room string) place {
	return place(places.id([2]string{live, room}, func(k [2]string) [2]string {
		return [2]string{strings.Clone(k[0]), strings.Clone(k[1])} // not the event's buffer
	}))
}

func (p place) pair() [2]string { return places.value(uint32(p)) }

// live is the place's live id ("" for a room that was not live).
func (p place) live() string { return p.pair()[0] }

// room is the place's room ("" when unknown).
func (p place) room() string { return p.pair()[1] }

// category is a product category by its number: 4 bytes in a profile's click,
// purchase and preference lists instead of a string (16 bytes, and a pointer the
// collector follows, several per profile). A shop has few categories next to its
// viewers; past maxCategories a new one is kept as category 0 ("") and counted nowhere.
type category uint32

const maxCategories = 1 << 20

var categories = newTable[string](maxCategories)

func categoryOf(name string) category {
	return category(categories.id(name, strings.Clone)) // not the event's buffer
}

func (c category) String() string { return categories.value(uint32(c)) }

// eventTypes numbers the event types a profile's recent events hold (one byte each),
// starting with the known ones; a type first seen later is added, up to 255 types.
var eventTypes = newTable[event.Type](256, event.Join, event.Leave, event.WatchStart, event.WatchStop, event.Watch,
	event.Danmaku, event.Like, event.Gift, event.ProductClick, event.Pin, event.DM, event.Order, event.Consent,
	event.LiveStart, event.LiveEnd, event.TagChange)

// fixedTypes are the numbers of the tap's types, the table's seed, read without the
// table's lock (every event numbers its type for its recent-events entry), as
// fixedWords are for tag words. fixedTypeList holds them in order of number, less
// one: the tap's events carry the event package's own strings, so comparing addresses
// finds most without hashing.
var fixedTypes, fixedTypeList = func() (map[event.Type]uint8, []event.Type) {
	m, list := map[event.Type]uint8{}, []event.Type{}
	for n := 1; n < eventTypes.size(); n++ {
		t := eventTypes.value(uint32(n))
		m[t] = uint8(n)
		list = append(list, t)
	}
	return m, list
}()

// typeCode numbers t.
func typeCode(t event.Type) uint8 {
	for i, k := range fixedTypeList {
		if len(k) == len(t) && unsafe.StringData(string(k)) == unsafe.StringData(string(t)) {
			return uint8(i + 1)
		}
	}
	if n, ok := fixedTypes[t]; ok {
		return n
	}
	return uint8(eventTypes.id(t, func(t event.Type) event.Type { return event.Type(strings.Clone(string(t))) }))
}
