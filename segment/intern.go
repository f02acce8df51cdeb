package segment

import (
	"strings"
	"sync"
	"sync/atomic"

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

// The tap's event types by number, as eventTypes numbers them: the table's seed is in
// this order (TestTypeCodeAgreesWithTheTable).
const (
	codeJoin uint8 = iota + 1
	codeLeave
	codeWatchStart
	codeWatchStop
	codeWatch
	codeDanmaku
	codeLike
	codeGift
	codeProductClick
	codePin
	codeDM
	codeOrder
	codeConsent
	codeLiveStart
	codeLiveEnd
	codeTagChange
)

// eventTypes numbers the event types a profile's recent events hold (one byte each),
// starting with the known ones; a type first seen later is added, up to 255 types.
var eventTypes = newTable[event.Type](256, event.Join, event.Leave, event.WatchStart, event.WatchStop, event.Watch,
	event.Danmaku, event.Like, event.Gift, event.ProductClick, event.Pin, event.DM, event.Order, event.Consent,
	event.LiveStart, event.LiveEnd, event.TagChange)

// fixedTypes is how many types the table's seed holds (numbers 1 to fixedTypes):
// stored records number them so (codec.go).
const fixedTypes = codeTagChange

// typeCode numbers t: the tap's types without the table's lock (every event numbers
// its type, to apply it and for its recent-events entry), others through the table.
func typeCode(t event.Type) uint8 {
	switch t {
	case event.Join:
		return codeJoin
	case event.Leave:
		return codeLeave
	case event.WatchStart:
		return codeWatchStart
	case event.WatchStop:
		return codeWatchStop
	case event.Watch:
		return codeWatch
	case event.Danmaku:
		return codeDanmaku
	case event.Like:
		return codeLike
	case event.Gift:
		return codeGift
	case event.ProductClick:
		return codeProductClick
	case event.Pin:
		return codePin
	case event.DM:
		return codeDM
	case event.Order:
		return codeOrder
	case event.Consent:
		return codeConsent
	case event.LiveStart:
		return codeLiveStart
	case event.LiveEnd:
		return codeLiveEnd
	case event.TagChange:
		return codeTagChange
	}
	return uint8(eventTypes.id(t, func(t event.Type) event.Type { return event.Type(strings.Clone(string(t))) }))
}
