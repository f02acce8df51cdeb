package segment

import (
	"strings"
	"sync"
)

// prefLists shares preference lists across the engine, found by a key packed from
// their category numbers and price band. A viewer who clicks changes preference often
// (the order of their top categories), and finding the shared copy through the
// shard's map, keyed by the words' bytes, waited on memory for about a microsecond a
// change at a million profiles: 64 maps too large for the cache, their keys out of
// line. One map of the few lists there are, keyed by a number, stays in the cache.
// Lists that do not pack (more than prefKeyCats categories) go the shard's way.
type prefLists struct {
	mu sync.RWMutex
	m  map[uint64]prefList
}

// prefList is a shared preference list and its words joined by commas, as a tag
// change reports them.
type prefList struct {
	words  []string
	joined string
}

// prefKeyCats is how many categories a key holds: 20 bits each (maxCategories), and
// 2 bits of price band.
const prefKeyCats = 3

// prefKey packs a preference's categories (in order) and price band word; ok is false
// when they do not fit.
func prefKey(cats []catN, band string) (key uint64, ok bool) {
	if len(cats) > prefKeyCats {
		return 0, false
	}
	switch band {
	case "":
	case PriceLow:
		key = 1
	case PriceMid:
		key = 2
	case PriceHigh:
		key = 3
	default:
		return 0, false
	}
	for i, c := range cats {
		if c.cat == 0 || c.cat >= maxCategories {
			return 0, false
		}
		key |= uint64(c.cat) << (2 + 20*i)
	}
	return key, true
}

// share returns the shared list of key, made from words (which it copies) when new.
func (l *prefLists) share(key uint64, words []string) prefList {
	l.mu.RLock()
	s, ok := l.m[key]
	l.mu.RUnlock()
	if ok {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.m[key]; ok {
		return s
	}
	if l.m == nil || len(l.m) >= maxInterned {
		l.m = map[uint64]prefList{} // the lists handed out stay valid; only sharing restarts
	}
	s = prefList{words: make([]string, len(words)), joined: strings.Join(words, ",")}
	copy(s.words, words)
	l.m[key] = s
	return s
}
