package segment

import (
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// dayMs is one day in Unix milliseconds; days are counted in UTC.
const dayMs = int64(24 * time.Hour / time.Millisecond)

// dayOf is the UTC day number (days since 1970-01-01) of a Unix-ms time.
func dayOf(ms int64) int32 {
	d := ms / dayMs
	if ms < 0 && ms%dayMs != 0 {
		d--
	}
	return int32(d)
}

// Bucket holds one day of a viewer's figures, on event time. Only days with activity
// have a bucket, so a profile stays small.
type Bucket struct {
	Day          int32  `json:"d"`
	Sessions     uint16 `json:"s,omitempty"`
	Orders       uint16 `json:"o,omitempty"`
	Interactions uint32 `json:"i,omitempty"`
	WatchSec     uint32 `json:"w,omitempty"`
	Spend        Money  `json:"m,omitempty"`
}

// CatDay counts product clicks and purchased items in one category on one day
// (the preference window): 8 bytes, about five per profile. Its day is counted from
// 1970 in 16 bits (to 2149; the window is the last 90 days) and its count stops at
// 65,535. Its JSON form names the category.
type CatDay struct {
	cat category
	day uint16
	n   uint16
}

// catDay counts n in cat on day (a day before 1970 is kept as its first).
func catDay(day int32, cat category, n uint32) CatDay {
	return CatDay{cat: cat, day: uint16(min(max(day, 0), math.MaxUint16)), n: sat16(n)}
}

func (c CatDay) Cat() string { return c.cat.String() }

// Day is the day counted (days since 1970-01-01, UTC).
func (c CatDay) Day() int32 { return int32(c.day) }

// N is the clicks and items counted.
func (c CatDay) N() uint32 { return uint32(c.n) }

// Count is a lifetime count per category. Its JSON form names the category.
type Count struct {
	cat category
	N   uint32
}

func (c Count) Cat() string { return c.cat.String() }

func newCount(cat string, n uint32) Count { return Count{cat: categoryOf(cat), N: n} }

// LiveSession is one live broadcast a viewer attended and how long they watched it.
// Its JSON form (the stored record's and the export's) names the live and the room.
type LiveSession struct {
	at    place  // the live and its room
	watch uint32 // ms watched, up to 49 days: 16 bytes a session, not 24
	Start int64
}

func (l *LiveSession) Live() string { return l.at.live() }
func (l *LiveSession) Room() string { return l.at.room() }

// WatchMs is how long the viewer watched the live, in ms.
func (l *LiveSession) WatchMs() int64 { return int64(l.watch) }

// addWatch adds ms (if positive) to the watch time, which stops at its largest.
func (l *LiveSession) addWatch(ms int64) {
	if room := math.MaxUint32 - int64(l.watch); ms >= room {
		l.watch = math.MaxUint32
	} else if ms > 0 {
		l.watch += uint32(ms)
	}
}

// Span is an open presence (WHEP watch or chat connection) in one live (or, when the
// room is not live, one room); Refs counts the connections behind it, so a viewer in
// chat and video is counted once, and Players those of them that are WHEP players:
// the chat connections outlast a live's end (endLive).
type Span struct {
	at      place // the live (or "" and the room)
	Refs    int16
	Players int16
	Start   int64
	Last    int64
}

func (s *Span) Live() string { return s.at.live() }
func (s *Span) Room() string { return s.at.room() }

// Recent is one of the latest events of a viewer, for the profile page. Its time, the
// length of its detail, whether the detail lies in a chunk of text (compact.go) and a
// one-byte code of its type share one word, and the detail is its bytes' address: 16
// bytes instead of 40, six times per profile. Its JSON form spells the type out.
type Recent struct {
	stamp int64 // time since recentEpoch (ms) << 21 | detail's length << 9 | detailInChunk | typeCode
	text  *byte // the detail's bytes (nil when it is empty)
}

const (
	// detailInChunk marks a recent event whose detail the compaction copied into a
	// chunk of text: its bytes are cleared when it leaves the profile
	// (textChunks.wipeRecent), and readers who keep it take a copy (detail).
	detailInChunk = 1 << 8
	detailShift   = 9
	// maxDetail is the longest detail a recent event keeps, in bytes: a longer one is
	// cut at a character's start. Details are ids, rooms, an order's id and total,
	// and comments cut to 80 characters, all far shorter.
	maxDetail = 1<<12 - 1
	timeShift = 21
	// recentEpoch (2000-01-01 UTC in Unix ms) is the stamp's zero time: its 43 bits
	// hold 139 years either side, and times beyond are kept at that edge.
	recentEpoch = 946_684_800_000
	recentReach = 1<<42 - 1
)

func newRecent(at int64, code uint8, detail string) Recent {
	detail = cutBytes(detail, maxDetail)
	at = min(max(at, recentEpoch-recentReach), recentEpoch+recentReach) - recentEpoch // clamped first: no overflow
	r := Recent{stamp: at<<timeShift | int64(code)}
	r.setDetail(detail)
	return r
}

// At is the event's time in Unix ms.
func (r Recent) At() int64 { return r.stamp>>timeShift + recentEpoch }

// Detail is what the event was about (a room, a comment, a product, an order).
func (r Recent) Detail() string {
	return unsafe.String(r.text, r.stamp>>detailShift&maxDetail)
}

// setDetail makes s (at most maxDetail bytes) the detail, in a chunk or not as the
// caller then marks it.
func (r *Recent) setDetail(s string) {
	r.stamp = r.stamp&^(maxDetail<<detailShift|detailInChunk) | int64(len(s))<<detailShift
	r.text = nil
	if s != "" {
		r.text = unsafe.StringData(s)
	}
}

func (r Recent) inChunk() bool { return r.stamp&detailInChunk != 0 }

// detail is the event's detail to keep: a copy when it lies in a chunk of text, which
// is cleared when the event leaves the profile.
func (r Recent) detail() string {
	if r.inChunk() {
		return strings.Clone(r.Detail())
	}
	return r.Detail()
}

func (r Recent) Type() event.Type { return eventTypes.value(uint32(r.kind())) }

func (r Recent) kind() uint8 { return uint8(r.stamp) }

// RFM is a viewer's scores and segment; zero scores mean never ordered.
type RFM struct {
	R       uint8   `json:"r"`
	F       uint8   `json:"f"`
	M       uint8   `json:"m"`
	Segment tagWord `json:"segment"`
}

// Tags is the tag held on each dimension and since when (Unix ms). The words come
// last, so that the profile's RFM and consent bytes fill the space after them.
type Tags struct {
	Preference packed[string] `json:"preference"`
	Since      [4]int64       `json:"since"`
	Activity   tagWord        `json:"activity"`
	Value      tagWord        `json:"value"`
	Lifecycle  tagWord        `json:"lifecycle"`
}

// Profile is everything the engine keeps about one viewer. Times are Unix ms; zero
// means never. It is the stored record as well as the in-memory state. The counters
// and the id's second hash sit together, and the one-byte tag words, RFM, consent and
// flags at the end, so the struct has no padding but its last few bytes: at 320 bytes, its lists packed
// (packed.go), it fits its allocation size class exactly. Its JSON form
// (profile_json.go) spells out the buyer's lists too.
type Profile struct {
	ID   string      `json:"id"`
	Name string      `json:"name,omitempty"`
	buy  *buyerFacts // nil for a viewer who never ordered nor was linked to another id

	FirstSeen int64 `json:"first_seen"`
	LastSeen  int64 `json:"last_seen"`
	LastVisit int64 `json:"last_visit,omitempty"`

	Sessions     uint32 `json:"sessions,omitempty"`
	Comments     uint32 `json:"comments,omitempty"`
	Likes        uint32 `json:"likes,omitempty"`
	Gifts        uint32 `json:"gifts,omitempty"`
	Interactions uint32 `json:"interactions,omitempty"`

	// hash2 is the id's second hash (idHash2), which settles a match in the profile
	// table (profile_table.go). Not stored: each process seeds its hashes afresh.
	hash2 uint32

	WatchMs   int64         `json:"watch_ms,omitempty"`
	GiftValue Money         `json:"gift_value,omitempty"`
	Clicks    packed[Count] `json:"clicks,omitzero"`

	Orders      uint32 `json:"orders,omitempty"`
	ver         uint32 // the stamp of its latest change (markDirty), in the hole before Spend
	Spend       Money  `json:"spend,omitempty"`
	FirstOrder  int64  `json:"first_order,omitempty"`
	SecondOrder int64  `json:"second_order,omitempty"`
	LastOrder   int64  `json:"last_order,omitempty"`

	Days   packed[Bucket]      `json:"days,omitzero"`
	Cats   packed[CatDay]      `json:"cats,omitzero"`
	Lives  packed[LiveSession] `json:"lives,omitzero"`
	Rooms  packed[string]      `json:"rooms,omitzero"`
	Open   packed[Span]        `json:"open,omitzero"`
	Recent packed[Recent]      `json:"recent,omitzero"`

	Tags    Tags    `json:"tags"`
	RFM     RFM     `json:"rfm"`
	Consent consent `json:"consent,omitempty"`
	// recentHead is where the oldest of Recent is once the list is full (maxRecent):
	// a ring, in the padding after Consent. See remember.
	recentHead uint8
	flags      profileFlags
}

// profileFlags are a profile's marks, one bit each; they change under its shard's lock.
type profileFlags uint8

const (
	dirty  profileFlags = 1 << iota // changed since the last write-through
	queued                          // in its shard's dirty list
	ranked                          // its values are in the current RFM ranking
	gone                            // erased or merged away: never write it again
	// aboveR, aboveF and aboveM mark a ranked buyer whose value (recency, frequency,
	// monetary) rose above the one the last sweep ranked, by orders since: that old
	// value is still in the ranking, and is not a buyer strictly worse than it.
	aboveR
	aboveF
	aboveM
)

func (p *Profile) is(f profileFlags) bool { return p.flags&f != 0 }

func (p *Profile) mark(f profileFlags, on bool) {
	if on {
		p.flags |= f
	} else {
		p.flags &^= f
	}
}

// dropUnnamed removes the category entries of a decoded record that got no number
// (category 0: the process's category table was full), rather than keep them under
// "" and write them back so, or count them together as one nameless preference.
func (p *Profile) dropUnnamed() {
	unnamed := func(c Count) bool { return c.cat == 0 }
	p.Clicks = packedOf(slices.DeleteFunc(p.Clicks.get(), unnamed))
	p.Cats = packedOf(slices.DeleteFunc(p.Cats.get(), func(c CatDay) bool { return c.cat == 0 }))
	if p.buy != nil {
		p.buy.Bought = packedOf(slices.DeleteFunc(p.buy.Bought.get(), unnamed))
		if p.buy.empty() {
			p.buy = nil
		}
	}
}

// buyerFacts are the lists only a buyer has, and a profile that an order linked to
// other ids: most viewers never order, so one pointer (8 bytes) instead of the lists
// (48) keeps every profile a size class smaller.
type buyerFacts struct {
	Aliases  packed[string] // other ids merged into or linked to this one
	Bought   packed[Count]  // items bought per category, lifetime
	OrderIDs idList
	// ConsentAt is the time (Unix ms) of the consent event the viewer's answer comes
	// from, so that an older one imported later does not overturn it. Here rather than
	// in Profile: few viewers ever answer.
	ConsentAt int64
}

func (b buyerFacts) empty() bool {
	return b.Aliases.n+b.Bought.n == 0 && len(b.OrderIDs) == 0 && b.ConsentAt == 0
}

// consentAt is when the viewer's consent answer was given (0: unknown or never).
func (p *Profile) consentAt() int64 {
	if p.buy == nil {
		return 0
	}
	return p.buy.ConsentAt
}

// answer records a consent answer given at at (Unix ms) unless a later one is known:
// history arrives in any order, and the latest answer is the one that holds.
func (p *Profile) answer(c consent, at int64) {
	if c == 0 || (p.Consent != 0 && at < p.consentAt()) {
		return
	}
	p.Consent = c
	p.buyer().ConsentAt = at
}

// buyer returns p's buyer lists, making them on first use.
func (p *Profile) buyer() *buyerFacts {
	if p.buy == nil {
		p.buy = &buyerFacts{}
	}
	return p.buy
}

// Aliases are the other ids merged into or linked to p.
func (p *Profile) Aliases() []string {
	if p.buy == nil {
		return nil
	}
	return p.buy.Aliases.get()
}

// Bought counts the items p bought per category.
func (p *Profile) Bought() []Count {
	if p.buy == nil {
		return nil
	}
	return p.buy.Bought.get()
}

// OrderIDs are p's orders' ids, copies: the list may be in a chunk of text, cleared
// when the viewer is erased (compact.go).
func (p *Profile) OrderIDs() []string {
	ids := p.orderIDList().list()
	for i := range ids {
		ids[i] = strings.Clone(ids[i])
	}
	return ids
}

// orderIDList is p's orders' ids as the profile holds them.
func (p *Profile) orderIDList() idList {
	if p.buy == nil {
		return ""
	}
	return p.buy.OrderIDs
}

// clearBuyer clears p's buyer facts and their lists, which may be in chunks that
// other profiles keep alive (compact.go), when p is erased or merged away.
func (p *Profile) clearBuyer() {
	if p.buy != nil {
		clear(p.buy.Bought.get())
		clear(p.buy.Aliases.get())
		*p.buy = buyerFacts{}
	}
}

// setBuyer sets p's buyer facts (decoding), leaving p without any when all are empty.
func (p *Profile) setBuyer(b buyerFacts) {
	p.buy = nil
	if !b.empty() {
		p.buy = new(buyerFacts)
		*p.buy = b // a copy: b itself stays off the heap when empty
	}
}

// addAlias records id k as p's, once.
func (p *Profile) addAlias(k string) {
	if !slices.Contains(p.Aliases(), k) {
		b := p.buyer()
		b.Aliases = packedOf(clearMoved(b.Aliases.get(), append(b.Aliases.get(), k)))
	}
}

// Limits on the lists a profile keeps, so one busy viewer cannot grow without bound.
const (
	maxLives  = 4
	maxRooms  = 16
	maxRecent = 6
	maxCats   = 64
	maxOrders = 10_000
)

// bucket returns the day's bucket, creating it in order, or nil when day lies before
// the oldest window (older events only count in the lifetime figures).
func (p *Profile) bucket(day, oldest int32) *Bucket {
	if day <= oldest {
		return nil
	}
	days := p.Days.get()
	i := len(days)
	for i > 0 && days[i-1].Day > day {
		i--
	}
	if i > 0 && days[i-1].Day == day {
		return &days[i-1]
	}
	days = push(days, Bucket{})
	copy(days[i+1:], days[i:])
	days[i] = Bucket{Day: day}
	p.Days = packedOf(days)
	return &days[i]
}

// window sums the buckets of the last days days up to today.
type window struct {
	Sessions     int   `json:"sessions"`
	WatchSec     int64 `json:"watch_seconds"`
	Interactions int   `json:"interactions"`
	Orders       int   `json:"orders"`
	Spend        Money `json:"spend"`
}

func (p *Profile) window(today int32, days int) window {
	var w window
	from := today - int32(days)
	buckets := p.Days.get()
	for i := len(buckets) - 1; i >= 0 && buckets[i].Day > from; i-- {
		b := &buckets[i]
		w.Sessions += int(b.Sessions)
		w.WatchSec += int64(b.WatchSec)
		w.Interactions += int(b.Interactions)
		w.Orders += int(b.Orders)
		w.Spend = w.Spend.add(b.Spend)
	}
	return w
}

// activityIn sums the sessions, watch and interactions of the last days days up to
// today: activity's window, which every event's tags read (window also sums the
// spend, saturating, for nothing here).
func (p *Profile) activityIn(today int32, days int) (sessions int, watchSec int64, interactions int) {
	from := today - int32(days)
	buckets := p.Days.get()
	for i := len(buckets) - 1; i >= 0 && buckets[i].Day > from; i-- {
		b := &buckets[i]
		sessions += int(b.Sessions)
		watchSec += int64(b.WatchSec)
		interactions += int(b.Interactions)
	}
	return sessions, watchSec, interactions
}

// ordersIn counts the orders of the last days days up to today, or stops at enough.
func (p *Profile) ordersIn(today int32, days, enough int) int {
	from := today - int32(days)
	buckets := p.Days.get()
	n := 0
	for i := len(buckets) - 1; i >= 0 && buckets[i].Day > from && n < enough; i-- {
		n += int(buckets[i].Orders)
	}
	return n
}

// addWatch credits ms of watching that ended at end, split over the days it spans.
func (p *Profile) addWatch(start, end int64, oldest int32) {
	if end <= start {
		return
	}
	p.WatchMs += end - start
	for t := start; t < end; {
		next := min(end, (int64(dayOf(t))+1)*dayMs)
		if b := p.bucket(dayOf(t), oldest); b != nil {
			b.WatchSec = sat32(uint64(b.WatchSec) + uint64((next-t)/1000))
		}
		t = next
	}
}

// addCat counts n in category cat on day (preference window).
func (p *Profile) addCat(day, oldest int32, cat category, n uint32) {
	if cat == 0 || day <= oldest {
		return
	}
	cats := p.Cats.get()
	for i := range cats {
		if cats[i].Day() == day && cats[i].cat == cat {
			cats[i].n = sat16(sat32(uint64(cats[i].N()) + uint64(n)))
			return
		}
	}
	if len(cats) >= maxCats {
		p.pruneCats(oldest)
		if cats = p.Cats.get(); len(cats) >= maxCats {
			cats = cats[1:] // drop the oldest entry: the list is kept in arrival order
		}
	}
	p.Cats = packedOf(push(cats, catDay(day, cat, n)))
}

func (p *Profile) pruneCats(oldest int32) {
	cats := p.Cats.get()
	keep := cats[:0]
	for _, c := range cats {
		if c.Day() > oldest {
			keep = append(keep, c)
		}
	}
	p.Cats = packedOf(keep)
}

// prune drops buckets older than the longest window.
func (p *Profile) prune(oldestBucket, oldestCat int32) {
	days := p.Days.get()
	i := 0
	for i < len(days) && days[i].Day <= oldestBucket {
		i++
	}
	if i > 0 {
		p.Days = packedOf(append(days[:0], days[i:]...))
	}
	p.pruneCats(oldestCat)
}

func addCount(list []Count, cat category, n uint32) []Count {
	if cat == 0 {
		return list
	}
	for i := range list {
		if list[i].cat == cat {
			list[i].N = sat32(uint64(list[i].N) + uint64(n))
			return list
		}
	}
	if len(list) >= maxCats {
		return list
	}
	return clearMoved(list, push(list, Count{cat: cat, N: n})) // a buyer's counts may be in a chunk
}

// seen moves first/last seen with an event at ms.
func (p *Profile) seen(ms int64) {
	if p.FirstSeen == 0 || ms < p.FirstSeen {
		p.FirstSeen = ms
	}
	if ms > p.LastSeen {
		p.LastSeen = ms
	}
}

func (p *Profile) visit(ms int64) {
	if ms > p.LastVisit {
		p.LastVisit = ms
	}
}

// remember keeps the latest events in event-time order, oldest first from
// recentHead (recentInOrder). A full list is a ring: an event newer than all (nearly
// every one) takes the oldest's slot. Shifting the list down instead moved all of it:
// three of its cache lines per event, and under a collection a write barrier for each
// detail moved.
// It returns the event the list let go, if any: its detail may lie in a chunk
// of text that others keep alive, to be cleared (textChunks.wipeRecent).
func (p *Profile) remember(r Recent) (dropped Recent) {
	recent := p.Recent.get()
	if len(recent) == maxRecent {
		// The ring's ends by comparisons: a modulo by the list's length divided, twice
		// an event.
		h, newest := int(p.recentHead), int(p.recentHead)-1
		if newest < 0 {
			newest = maxRecent - 1
		}
		if r.At() >= recent[newest].At() {
			dropped, recent[h] = recent[h], r
			if h++; h == maxRecent {
				h = 0
			}
			p.recentHead = uint8(h)
			return dropped
		}
	}
	p.unwindRecent() // a late event: inserted by time into the list in order
	i := len(recent)
	for i > 0 && recent[i-1].At() > r.At() {
		i--
	}
	if len(recent) >= maxRecent && i == 0 {
		return r // older than everything kept
	}
	if len(recent) >= maxRecent {
		// Full: drop the oldest in place, keeping the backing array.
		dropped = recent[0]
		copy(recent, recent[1:i])
		recent[i-1] = r
		return dropped
	}
	recent = clearMoved(recent, push(recent, Recent{}))
	copy(recent[i+1:], recent[i:])
	recent[i] = r
	p.Recent = packedOf(recent)
	return Recent{}
}

// recentInOrder is p's recent events oldest first: the list itself unless its ring
// has turned, else a copy in buf.
func (p *Profile) recentInOrder(buf *[maxRecent]Recent) []Recent {
	recent, h := p.Recent.get(), int(p.recentHead)
	if h == 0 {
		return recent
	}
	n := copy(buf[:], recent[h:])
	copy(buf[n:], recent[:h])
	return buf[:len(recent)]
}

// unwindRecent puts p's recent events in order in their array, the oldest first.
func (p *Profile) unwindRecent() {
	if p.recentHead == 0 {
		return
	}
	var buf [maxRecent]Recent
	copy(p.Recent.get(), p.recentInOrder(&buf))
	p.recentHead = 0
}

func (p *Profile) addRoom(room string) {
	if room == "" {
		return
	}
	for _, r := range p.Rooms.get() {
		if r == room {
			return
		}
	}
	if len(p.Rooms.get()) < maxRooms {
		p.Rooms = packedOf(push(p.Rooms.get(), room))
	}
}

func (p *Profile) inRoom(room string) bool { return p.knownRoom(room) != "" }

// knownRoom returns p's copy of room, "" when p was never in it. An event's room is
// most often the very string the shard interned (the same room's events share it),
// so a first pass compares addresses only: comparing the bytes of each room in turn
// took a tenth of an event's time for viewers of many rooms.
func (p *Profile) knownRoom(room string) string {
	for _, r := range p.Rooms.get() {
		if len(r) == len(room) && unsafe.StringData(r) == unsafe.StringData(room) {
			return r
		}
	}
	for _, r := range p.Rooms.get() {
		if r == room {
			return r
		}
	}
	return ""
}

// liveSession returns the viewer's session of live, opening one (and counting it on
// the day of at) when this is the first sign of the viewer in that live. It keeps the
// maxLives latest sessions by start, whatever order history arrives in; a session older
// than all of them is counted but not kept (nil).
func (p *Profile) liveSession(live, room string, at int64, oldest int32) *LiveSession {
	lives := p.Lives.get()
	for i := len(lives) - 1; i >= 0; i-- { // the newest first: most events are of the live now
		if lives[i].Live() == live {
			if at < lives[i].Start {
				lives[i].Start = at
			}
			return &lives[i]
		}
	}
	p.Sessions++
	if b := p.bucket(dayOf(at), oldest); b != nil {
		b.Sessions = sat16(uint32(b.Sessions) + 1)
	}
	if len(lives) < maxLives {
		lives = push(lives, LiveSession{at: placeOf(live, room), Start: at})
		p.Lives = packedOf(lives)
		return &lives[len(lives)-1]
	}
	first := 0
	for i := range lives {
		if lives[i].Start < lives[first].Start {
			first = i
		}
	}
	if at < lives[first].Start {
		return nil // its watch time still counts in the total and the day's bucket
	}
	lives[first] = LiveSession{at: placeOf(live, room), Start: at}
	return &lives[first]
}

// addOrderTime keeps the first two order times and the last one.
func (p *Profile) addOrderTime(ms int64) {
	switch {
	case p.FirstOrder == 0 || ms < p.FirstOrder:
		p.SecondOrder, p.FirstOrder = p.FirstOrder, ms
	case p.SecondOrder == 0 || ms < p.SecondOrder:
		p.SecondOrder = ms
	}
	if ms > p.LastOrder {
		p.LastOrder = ms
	}
}

// clearMoved returns grown, old after an append, and clears old if the append moved
// the list: old may be part of a compaction chunk that other profiles keep alive, and
// what it points at (a comment's text, an order's id) must not outlive the viewer.
func clearMoved[T any](old, grown []T) []T {
	if len(old) > 0 && unsafe.SliceData(old) != unsafe.SliceData(grown) {
		clear(old)
	}
	return grown
}

// push appends v, growing the array by a quarter (at least 2) instead of doubling:
// a million profiles' small lists would otherwise carry much unused capacity.
func push[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		grown := make([]T, len(s), len(s)+max(2, len(s)/4))
		copy(grown, s)
		s = grown
	}
	return append(s, v)
}

func sat16(v uint32) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}

func sat32(v uint64) uint32 {
	if v > 0xffffffff {
		return 0xffffffff
	}
	return uint32(v)
}

// liveSession is a session read back (a stored record, a JSON form): a watch time
// out of range is clamped, as addWatch would have.
func liveSession(at place, start, watchMs int64) LiveSession {
	l := LiveSession{at: at, Start: start}
	l.addWatch(watchMs)
	return l
}
