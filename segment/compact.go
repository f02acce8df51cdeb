package segment

import (
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
	"weak"
)

// Compaction. A profile's lists are freed and reallocated as they grow, among the
// garbage of the events. A span of small objects stays in use while any object in it
// lives, so after an import or a day of traffic a third of the heap's in-use spans
// can be free slots scattered between the lists that stayed (measured: 1,522 bytes of
// spans per profile for 962 bytes of objects at a million profiles). Reallocating a
// list one by one fills those slots and frees others: it does not help. Compaction
// copies every profile's lists, in the shards' order, into large chunks, each a span of
// its own, dense; the lists' old arrays all become garbage and their spans empty.
//
// A chunk lives while any list in it does. A list that grows after it was compacted
// moves out to an array of its own (the chunk's list has no spare room, so an append
// cannot run into its neighbour), and leaves its old place in the chunk unused until
// the next compaction.

// compactChunk is the size of a chunk in bytes: above the largest small-object size
// class (32 KiB), so each is allocated as a span of its own.
const compactChunk = 64 << 10

// compactEvery is how often the sweep compacts. Spans empty out as lists grow (an
// import, a day of traffic), slowly; a compaction of a million profiles takes seconds
// of one core and allocates their lists anew (about 0.5 GB).
const compactEvery = 30 * time.Minute

// importSettled says whether imports since the last compaction applied at least one
// event per profile held (and minImportToCompact), and the last of them that applied
// importPart events or more was stored importQuiet or more before at. A day-one
// import of a shop's history grows most lists, which leaves their spans with gaps
// (about 1.4 GiB per million profiles instead of 0.97) until the next compaction, up
// to half an hour later. Waiting for the imports to settle compacts once after a long
// import made of many requests, not during it.
func (e *Engine) importSettled(at time.Time) bool {
	n := e.importedSinceCompact.Load()
	return n >= minImportToCompact && n >= int64(e.Count()) && // Count takes every shard's lock
		at.UnixMilli()-e.lastImport.Load() >= importQuiet.Milliseconds()
}

const (
	// minImportToCompact is the fewest imported events that call for an early
	// compaction: a few profiles' lists are not worth a pass over every profile.
	minImportToCompact = 10_000
	// importQuiet is how long after the last import a large one counts as settled.
	importQuiet = time.Minute
	// importPart is the fewest events an import applies to count as part of a large
	// one (`liveroom import` sends 1,000 by default): smaller ones do not put off the
	// compaction.
	importPart = 100
)

// compactor cuts lists from its current chunks, under the lock of the shard whose
// profile it moves (one goroutine at a time: the sweep's).
type compactor struct {
	words  []uint64     // the rest of the chunk the pointer-free lists are cut from
	recent []Recent     // the rest of the chunk recent events are cut from
	strs   []string     // the rest of the chunk lists of strings are cut from
	buyers []buyerFacts // the rest of the chunk buyers' facts are cut from
	text   []byte       // the rest of the chunk details and order ids are cut from
	texts  *textChunks  // where text's chunks are registered
	// shared maps the shard's shared lists to their moved copies (moveShared).
	shared map[*string][]string
}

// move puts p's lists into the compactor's chunks; a list larger than a quarter chunk
// keeps its own array.
func (c *compactor) move(p *Profile) {
	// A profile's id is made with its first event, among that event's garbage of its
	// size: in a heap dump of the steady state, the pages of 16-byte objects held a
	// fifth of their slots live (72 MB free at a million profiles). Copies made one
	// after another fill pages, and the old ones' pages empty. Copies, not cuts of a
	// chunk: an id handed out (a tag change's viewer, kept by a rule) keeps 16 bytes
	// alive, not a chunk.
	p.ID, p.Name = strings.Clone(p.ID), strings.Clone(p.Name)
	p.Rooms = packedOf(c.sharedCopy(p.Rooms.get()))
	p.Tags.Preference = packedOf(c.sharedCopy(p.Tags.Preference.get()))
	p.Days = packedOf(moveWords(c, p.Days.get()))
	p.Cats = packedOf(moveWords(c, p.Cats.get()))
	p.Clicks = packedOf(moveWords(c, p.Clicks.get()))
	p.Lives = packedOf(moveWords(c, p.Lives.get()))
	p.Open = packedOf(moveWords(c, p.Open.get()))
	if n := len(p.Recent.get()); n > 0 && n <= compactChunk/4/int(unsafe.Sizeof(Recent{})) {
		if len(c.recent) < n {
			c.recent = make([]Recent, compactChunk/unsafe.Sizeof(Recent{}))
		}
		s := c.recent[:n:n]
		var buf [maxRecent]Recent
		copy(s, p.recentInOrder(&buf))
		c.recent = c.recent[n:]
		clear(p.Recent.get()) // it may be an older chunk's: its details must not linger there
		p.Recent, p.recentHead = packedOf(s), 0
		// A detail is made with its event, among the event's garbage of its size: at a
		// million profiles, a page of 8 KiB held a few of them each (99 MB of free
		// slots in 24-byte objects for orders' details; with comments of real length,
		// 455 MB in 64-byte ones, in heap dumps). A room (most events' detail) is
		// the profile's shared string instead.
		for i := range s {
			d := s[i].Detail()
			if d == "" {
				continue
			}
			if r := p.knownRoom(d); r != "" {
				if s[i].inChunk() { // a gift or a product named like a room visited since
					c.texts.wipe(d)
				}
				s[i].setDetail(r)
				continue
			}
			s[i].setDetail(c.copyText(d)) // clears d if it was in an older chunk
			s[i].stamp |= detailInChunk
		}
	}
	// A buyer's facts are made at a first order, and its lists grow by orders, each
	// among an event's garbage of its size: at a million profiles they held a page of
	// 8 KiB each for a few live bytes (115 MB of free slots in 48-byte objects, 52 MB
	// in 80-byte ones, in a heap dump of the bench).
	if p.buy != nil {
		if len(c.buyers) == 0 {
			c.buyers = make([]buyerFacts, compactChunk/unsafe.Sizeof(buyerFacts{}))
		}
		b := &c.buyers[0]
		c.buyers = c.buyers[1:]
		*b = *p.buy
		*p.buy = buyerFacts{} // it may be an older chunk's: its lists must not linger there
		b.Bought = packedOf(moveWords(c, b.Bought.get()))
		b.Aliases = packedOf(moveStrings(c, b.Aliases.get()))
		// Made at an order, among its garbage: in a heap dump, pages of 64 and 96 bytes
		// held a few lists each (95 MB of free slots at a million profiles).
		b.OrderIDs = idList(c.copyText(string(b.OrderIDs)))
		p.buy = b
	}
}

// copyText copies t into the compactor's chunk of text and returns the copy. A t in
// an older chunk is cleared there: a text is in one place at a time (a recent
// event's detail or a buyer's order ids, which an erasure clears; an intern key,
// whose old map is let go).
func (c *compactor) copyText(t string) string {
	if len(t) == 0 || len(t) > compactChunk/4 {
		return t
	}
	if len(c.text) < len(t) {
		c.text = make([]byte, compactChunk)
		c.texts.add(c.text)
	}
	b := c.text[:len(t):len(t)]
	copy(b, t)
	c.text = c.text[len(t):]
	c.texts.wipe(t)
	return unsafe.String(&b[0], len(b))
}

// textChunks registers the compaction's chunks of text, weakly (a chunk goes once no
// string points into it), so that the bytes of a recent event's detail that leaves its
// profile (dropped from the recent events, erased, merged away) can be found in a
// chunk, which other profiles keep alive, and cleared; one of the profile's own goes
// with it.
type textChunks struct {
	mu     sync.RWMutex         // wipe reads the registry; add and prune change it
	starts []uintptr            // each chunk's first byte, in order
	chunks []weak.Pointer[byte] // the chunks, as starts
}

func (t *textChunks) add(chunk []byte) {
	start := uintptr(unsafe.Pointer(&chunk[0]))
	t.mu.Lock()
	defer t.mu.Unlock()
	// A registered chunk that would overlap this one was collected, and its memory
	// reused: forgotten now, or wipe would look there for text in this one (it finds
	// the chunk starting last before the text).
	i, _ := slices.BinarySearch(t.starts, start-min(start, compactChunk-1))
	j, _ := slices.BinarySearch(t.starts, start+compactChunk)
	t.starts = slices.Replace(t.starts, i, j, start)
	t.chunks = slices.Replace(t.chunks, i, j, weak.Make(&chunk[0]))
}

// prune forgets the chunks that were collected.
func (t *textChunks) prune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.chunks) - 1; i >= 0; i-- {
		if t.chunks[i].Value() == nil {
			t.starts = slices.Delete(t.starts, i, i+1)
			t.chunks = slices.Delete(t.chunks, i, i+1)
		}
	}
}

// wipe clears the bytes of text if they lie in a chunk. The caller holds the shard
// lock of the profile that is letting text go, and nothing else points at it: views
// copy the details they hand out, and the other readers work under that lock.
func (t *textChunks) wipe(text string) {
	if len(text) == 0 {
		return
	}
	at := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	t.mu.RLock() // the bytes it clears are the caller's, under its shard's lock
	defer t.mu.RUnlock()
	i, found := slices.BinarySearch(t.starts, at)
	if !found {
		i-- // the chunk that starts before at, if any
	}
	if i < 0 || at >= t.starts[i]+compactChunk {
		return
	}
	if first := t.chunks[i].Value(); first != nil && uintptr(unsafe.Pointer(first)) == t.starts[i] {
		clear(unsafe.Slice(first, compactChunk)[at-t.starts[i]:][:len(text)])
	}
}

// wipeReplaced clears the bytes of old (wipe) when now, which replaced it, is a copy
// elsewhere: a list appended to is a new string, but one appended nothing to is old
// itself.
func (t *textChunks) wipeReplaced(old, now idList) {
	if len(old) > 0 && unsafe.StringData(string(old)) != unsafe.StringData(string(now)) {
		t.wipe(string(old))
	}
}

// wipeRecent clears the bytes of the details among recent that lie in a chunk (wipe).
func (t *textChunks) wipeRecent(recent ...Recent) {
	for _, r := range recent {
		if r.inChunk() {
			t.wipe(r.Detail())
		}
	}
}

// moveStrings copies list into the compactor's chunk of strings, as moveWords does
// (the strings' bytes stay where they are: readers hand them out).
func moveStrings(c *compactor, list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return clearMoved(list, c.copyStrings(list)) // it may be an older chunk's
}

// copyStrings copies list into the compactor's chunk of strings (capacity its length).
func (c *compactor) copyStrings(list []string) []string {
	if len(list) == 0 || len(list) > compactChunk/4/int(unsafe.Sizeof("")) {
		return list
	}
	if len(c.strs) < len(list) {
		c.strs = make([]string, compactChunk/unsafe.Sizeof(""))
	}
	s := c.strs[:len(list):len(list)]
	copy(s, list)
	c.strs = c.strs[len(list):]
	return s
}

// moveWords copies list into the compactor's chunk of pointer-free words and returns
// the copy, its capacity its length; an empty list becomes nil, so that an array it
// still pointed into can go. T holds no pointers and is aligned to at most 8 bytes.
func moveWords[T any](c *compactor, list []T) []T {
	if len(list) == 0 {
		return nil
	}
	size := (len(list)*int(unsafe.Sizeof(list[0])) + 7) &^ 7
	if size > compactChunk/4 {
		return list
	}
	if len(c.words)*8 < size {
		c.words = make([]uint64, compactChunk/8)
	}
	s := unsafe.Slice((*T)(unsafe.Pointer(&c.words[0])), len(list))
	copy(s, list)
	c.words = c.words[size/8:]
	return s
}

// Compact moves the lists of every profile into dense chunks, a batch of profiles per
// hold of a shard's lock. The sweep does it every compactEvery (from the engine's start:
// loaded profiles are compact); a bench may call it directly.
func (e *Engine) Compact() { e.compact(func() time.Duration { return 0 }) }

// compact is Compact, calling pause before each shard (the sweep's yield to the rules,
// which says how long it waited).
func (e *Engine) compact(pause func() time.Duration) {
	e.importedSinceCompact.Store(0) // what an import adds meanwhile counts for the next
	e.texts.prune()
	c := compactor{texts: &e.texts}
	var list []*Profile
	pass := newPace()
	for _, sh := range e.shards {
		pass.waited(pause())
		sh.mu.Lock()
		c.moveShared(sh)
		sh.mu.Unlock()
		list = sh.profileList(list[:0])
		sh.inBatches(list, pass, c.move)
	}
	e.metrics.compactions.Inc()
}

// moveShared moves sh's shared lists (sharedList) and their keys into the compactor's
// chunks, and notes where each went, so that move points the shard's profiles to the
// new copies. New lists are made among an event's garbage of their sizes, as a
// viewer visits a new room: a heap dump of the bench at a million profiles found them
// and their keys holding most pages of 24 to 80-byte objects left with gaps. The old
// lists stay as they are until no profile points to them.
func (c *compactor) moveShared(sh *shard) {
	c.shared = make(map[*string][]string, len(sh.lists))
	lists := make(map[string][]string, len(sh.lists))
	for k, l := range sh.lists {
		moved := c.copyStrings(l)
		c.shared[unsafe.SliceData(l)] = moved
		lists[c.copyText(k)] = moved
	}
	sh.lists = lists
	for i, l := range sh.recent {
		sh.recent[i] = c.sharedCopy(l)
	}
}

// sharedCopy is the moved copy of a shared list, or list itself when it is not one.
func (c *compactor) sharedCopy(list []string) []string {
	if moved, ok := c.shared[unsafe.SliceData(list)]; ok && len(moved) == len(list) {
		return moved
	}
	return list
}
