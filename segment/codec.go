package segment

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"

	"github.com/liveroom/liveroom/event"
)

// The stored profile is a compact binary record (varints and length-prefixed strings):
// the write-through encodes every changed profile each second, and JSON took most of
// that time and three times the space. A record starts with its format version.
//
// Format 2 (format 1 still decodes) is about a third smaller, because a fold of the
// journal into bbolt rewrites nearly every page of the file (docs/segmentation.md), so
// its time goes with the file's size:
//   - a string that comes again in the record (a room, a category) is written once
//     and then referred to by its number, and a known event type is a number;
//   - times are written as their distance from the last time seen, and days from the
//     day before them in their list: a few bytes instead of six;
//   - a mask says which of the profile's own times are set, so that unset ones (no
//     order yet) cost nothing.
const profileFormat = 2

// errCorrupt is returned for a record that does not decode.
var errCorrupt = errors.New("corrupt profile record")

// maxShared is how many distinct strings a record numbers for reuse; later ones are
// written out each time (a record rarely has more).
const maxShared = 16

type enc struct {
	b      []byte
	shared [maxShared]string
	slots  [2 * maxShared]uint8 // a hash table of shared's strings: 1 + their number, or 0
	kept   int                  // strings in shared
}

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) s(v string) { e.u(uint64(len(v))); e.b = append(e.b, v...) }

// str writes v as the number of an earlier string of the record (odd) or as its
// length (even) and bytes, numbering it for later ones. The strings numbered are
// found through a small hash table of their lengths and end bytes.
func (e *enc) str(v string) {
	if v != "" {
		h := (uint(len(v))*0x9e + uint(v[0])*0x3b + uint(v[len(v)-1])) % uint(len(e.slots))
		for e.slots[h] != 0 {
			if k := e.slots[h] - 1; e.shared[k] == v {
				e.u(uint64(k)<<1 | 1)
				return
			}
			h = (h + 1) % uint(len(e.slots))
		}
		if e.kept < maxShared {
			e.shared[e.kept] = v
			e.kept++
			e.slots[h] = uint8(e.kept)
		}
	}
	e.u(uint64(len(v)) << 1)
	e.b = append(e.b, v...)
}

func (e *enc) ss(v []string) {
	e.u(uint64(len(v)))
	for _, x := range v {
		e.s(x)
	}
}

// ids writes a list of ids as ss writes a list.
func (e *enc) ids(l idList) {
	e.u(uint64(l.count()))
	for id := range l.all() {
		e.s(id)
	}
}

func (e *enc) strs(v []string) {
	e.u(uint64(len(v)))
	for _, x := range v {
		e.str(x)
	}
}

func (e *enc) cnts(v []Count) {
	e.u(uint64(len(v)))
	for _, c := range v {
		e.str(c.Cat())
		e.u(uint64(c.N))
	}
}

// marshalProfile encodes p.
func marshalProfile(p *Profile) []byte { return appendProfile(make([]byte, 0, 256), p) }

// timeFields are the profile's own times that the mask covers, in its bit order; the
// consent's time is kept apart (buyerFacts), so the caller holds it in consentAt.
func (p *Profile) timeFields(consentAt *int64) [10]*int64 {
	return [10]*int64{&p.FirstSeen, &p.LastVisit, &p.FirstOrder, &p.SecondOrder, &p.LastOrder,
		&p.Tags.Since[0], &p.Tags.Since[1], &p.Tags.Since[2], &p.Tags.Since[3], consentAt}
}

// appendProfile appends the encoding of p to dst: the write-through packs every changed
// profile into one buffer instead of a small allocation each.
func appendProfile(dst []byte, p *Profile) []byte {
	e := &enc{b: dst}
	e.u(profileFormat)
	e.s(p.ID) // these three come once: not worth a number
	e.s(p.Name)
	e.ss(p.Aliases())
	base := p.LastSeen
	e.i(base)
	consentAt := p.consentAt()
	times := p.timeFields(&consentAt)
	var mask uint64
	for k, t := range times {
		if *t != 0 {
			mask |= 1 << k
		}
	}
	e.u(mask)
	for _, t := range times {
		if *t != 0 {
			e.i(base - *t)
		}
	}
	for _, v := range []int64{p.WatchMs, int64(p.GiftValue), int64(p.Spend)} {
		e.i(v)
	}
	for _, v := range []uint32{p.Sessions, p.Comments, p.Likes, p.Gifts, p.Interactions, p.Orders} {
		e.u(uint64(v))
	}
	e.cnts(p.Clicks.get())
	e.cnts(p.Bought())
	e.ids(p.orderIDList())
	e.u(uint64(len(p.Days.get())))
	day := int32(0)
	for _, d := range p.Days.get() {
		e.i(int64(d.Day) - int64(day))
		day = d.Day
		e.u(uint64(d.Sessions))
		e.u(uint64(d.Orders))
		e.u(uint64(d.Interactions))
		e.u(uint64(d.WatchSec))
		e.i(int64(d.Spend))
	}
	e.u(uint64(len(p.Cats.get())))
	day = 0
	for _, c := range p.Cats.get() {
		e.i(int64(c.Day()) - int64(day))
		day = c.Day()
		e.str(c.Cat())
		e.u(uint64(c.N()))
	}
	e.u(uint64(len(p.Lives.get())))
	for _, l := range p.Lives.get() {
		e.s(l.Live()) // once in the list (an open presence may name it again: rare, and cheaper than a lookup each)
		e.str(l.Room())
		e.i(base - l.Start)
		e.i(l.WatchMs())
	}
	e.strs(p.Rooms.get())
	e.u(uint64(len(p.Open.get())))
	for _, s := range p.Open.get() {
		e.str(s.Live())
		e.str(s.Room())
		e.i(base - s.Start)
		e.i(base - s.Last)
		e.i(int64(s.Refs))
	}
	e.u(uint64(len(p.Recent.get())))
	at := base
	var buf [maxRecent]Recent
	for _, r := range p.recentInOrder(&buf) {
		e.i(at - r.At())
		at = r.At()
		// The known types by their number in the process's table, which starts with
		// them in a fixed order (TestStoredTypeNumbers); others spelled out, and so is
		// number 0 (no type, or one past a full table), which reads as "spelled out".
		if k := r.kind(); k != 0 && k <= fixedTypes {
			e.u(uint64(k))
		} else {
			e.u(0)
			e.s(string(r.Type()))
		}
		e.str(r.Detail())
	}
	e.u(uint64(p.Consent)) // 0 (none), 1 (yes), 2 (no)
	e.s(p.Tags.Activity.String())
	e.s(p.Tags.Value.String())
	e.s(p.Tags.Lifecycle.String())
	e.strs(p.Tags.Preference.get()) // categories, as in the lists above
	e.u(uint64(p.RFM.R))
	e.u(uint64(p.RFM.F))
	e.u(uint64(p.RFM.M))
	e.s(p.RFM.Segment.String())
	return e.b
}

type dec struct {
	b      []byte
	err    error
	shared [maxShared]string
	kept   int
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) u32() uint32 { return uint32(d.u()) }

// n reads a list length, refusing one longer than the bytes left could hold.
func (d *dec) n() int {
	v := d.u()
	if v > uint64(len(d.b)) {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	return int(v)
}

func (d *dec) s() string {
	n := d.n()
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// list reads a list's length, then each of its items with item; nil when empty.
func list[T any](d *dec, item func() T) []T {
	n := d.n()
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = item()
	}
	return out
}

func (d *dec) ss() []string { return list(d, d.s) }

func (d *dec) counts() []Count {
	return list(d, func() Count { return newCount(d.s(), d.u32()) })
}

// str reads what enc.str wrote.
func (d *dec) str() string {
	x := d.u()
	if x&1 == 1 {
		if x>>1 >= uint64(d.kept) {
			d.err, d.b = errCorrupt, nil
			return ""
		}
		return d.shared[x>>1]
	}
	if x>>1 > uint64(len(d.b)) {
		d.err, d.b = errCorrupt, nil
		return ""
	}
	v := string(d.b[:x>>1])
	d.b = d.b[x>>1:]
	if v != "" && d.kept < maxShared {
		d.shared[d.kept] = v
		d.kept++
	}
	return v
}

func (d *dec) strs() []string { return list(d, d.str) }

func (d *dec) cnts() []Count {
	return list(d, func() Count { return newCount(d.str(), d.u32()) })
}

// eventCode reads a recent event's type code, as appendProfile writes it: a fixed
// type's number, else the type spelled out.
func (d *dec) eventCode() uint8 {
	k := d.u()
	switch {
	case k == 0:
		return typeCode(event.Type(d.s()))
	case k > uint64(fixedTypes):
		d.err, d.b = errCorrupt, nil
		return 0
	}
	return uint8(k)
}

// unmarshalProfile decodes a stored record (binary of either format, or JSON from
// before them).
func unmarshalProfile(data []byte) (*Profile, error) {
	p := &Profile{}
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, p); err != nil {
			return nil, err
		}
		p.dropUnnamed()
		return p, nil
	}
	d := &dec{b: data}
	var facts buyerFacts
	switch d.u() {
	case 1:
		facts = d.profileV1(p)
	case profileFormat:
		facts = d.profile(p)
	default:
		return nil, errCorrupt
	}
	p.setBuyer(facts)
	if d.err != nil {
		return nil, d.err
	}
	p.dropUnnamed()
	return p, nil
}

// profile decodes the rest of a record of the current format into p.
func (d *dec) profile(p *Profile) buyerFacts {
	p.ID, p.Name = d.s(), d.s()
	aliases := d.ss()
	base := d.i()
	p.LastSeen = base
	var consentAt int64
	times := p.timeFields(&consentAt)
	mask := d.u()
	if mask>>len(times) != 0 {
		d.err, d.b = errCorrupt, nil
	}
	for k, t := range times {
		if mask&(1<<k) != 0 {
			*t = base - d.i()
		}
	}
	for _, v := range []*int64{&p.WatchMs, (*int64)(&p.GiftValue), (*int64)(&p.Spend)} {
		*v = d.i()
	}
	for _, v := range []*uint32{&p.Sessions, &p.Comments, &p.Likes, &p.Gifts, &p.Interactions, &p.Orders} {
		*v = d.u32()
	}
	p.Clicks = packedOf(d.cnts())
	facts := buyerFacts{Aliases: packedOf(aliases), Bought: packedOf(d.cnts()), ConsentAt: consentAt}
	facts.OrderIDs = idListOf(d.ss())
	day := int64(0) // each list's days go on from the one before
	p.Days = packedOf(list(d, func() Bucket {
		day += d.i()
		return Bucket{Day: int32(day), Sessions: uint16(d.u()), Orders: uint16(d.u()), Interactions: d.u32(), WatchSec: d.u32(), Spend: Money(d.i())}
	}))
	day = 0
	p.Cats = packedOf(list(d, func() CatDay {
		day += d.i()
		return catDay(int32(day), categoryOf(d.str()), d.u32())
	}))
	p.Lives = packedOf(list(d, func() LiveSession {
		return liveSession(placeOf(d.s(), d.str()), base-d.i(), d.i())
	}))
	p.Rooms = packedOf(d.strs())
	p.Open = packedOf(list(d, func() Span {
		return Span{at: placeOf(d.str(), d.str()), Start: base - d.i(), Last: base - d.i(), Refs: refs(d.i())}
	}))
	at := base
	p.Recent = packedOf(list(d, func() Recent {
		at -= d.i()
		return newRecent(at, d.eventCode(), d.str())
	}))
	if c := d.u(); c > 0 {
		p.Consent = consentOf(c == 1)
	}
	p.Tags.Activity, p.Tags.Value, p.Tags.Lifecycle, p.Tags.Preference = wordOf(d.s()), wordOf(d.s()), wordOf(d.s()), packedOf(d.strs())
	p.RFM = RFM{R: uint8(d.u()), F: uint8(d.u()), M: uint8(d.u()), Segment: wordOf(d.s())}
	if len(d.b) > 0 && d.err == nil { // the format has no optional tail
		d.err, d.b = errCorrupt, nil
	}
	return facts
}

// profileV1 decodes the rest of a record of the first binary format into p.
func (d *dec) profileV1(p *Profile) buyerFacts {
	p.ID, p.Name = d.s(), d.s()
	aliases := d.ss()
	for _, v := range []*int64{&p.FirstSeen, &p.LastSeen, &p.LastVisit, &p.WatchMs, (*int64)(&p.GiftValue), (*int64)(&p.Spend), &p.FirstOrder, &p.SecondOrder, &p.LastOrder} {
		*v = d.i()
	}
	for _, v := range []*uint32{&p.Sessions, &p.Comments, &p.Likes, &p.Gifts, &p.Interactions, &p.Orders} {
		*v = d.u32()
	}
	p.Clicks = packedOf(d.counts())
	bought, orderIDs := d.counts(), d.ss()
	facts := buyerFacts{Aliases: packedOf(aliases), Bought: packedOf(bought), OrderIDs: idListOf(orderIDs)}
	p.Days = packedOf(list(d, func() Bucket {
		return Bucket{Day: int32(d.i()), Sessions: uint16(d.u()), Orders: uint16(d.u()), Interactions: d.u32(), WatchSec: d.u32(), Spend: Money(d.i())}
	}))
	p.Cats = packedOf(list(d, func() CatDay { return catDay(int32(d.i()), categoryOf(d.s()), d.u32()) }))
	p.Lives = packedOf(list(d, func() LiveSession { return liveSession(placeOf(d.s(), d.s()), d.i(), d.i()) }))
	p.Rooms = packedOf(d.ss())
	p.Open = packedOf(list(d, func() Span {
		return Span{at: placeOf(d.s(), d.s()), Start: d.i(), Last: d.i(), Refs: refs(d.i())}
	}))
	p.Recent = packedOf(list(d, func() Recent { return newRecent(d.i(), typeCode(event.Type(d.s())), d.s()) }))
	if c := d.u(); c > 0 {
		p.Consent = consentOf(c == 1)
	}
	p.Tags.Activity, p.Tags.Value, p.Tags.Lifecycle, p.Tags.Preference = wordOf(d.s()), wordOf(d.s()), wordOf(d.s()), packedOf(d.ss())
	for i := range p.Tags.Since {
		p.Tags.Since[i] = d.i()
	}
	p.RFM = RFM{R: uint8(d.u()), F: uint8(d.u()), M: uint8(d.u()), Segment: wordOf(d.s())}
	if len(d.b) > 0 { // added after the format's first records, which end here
		facts.ConsentAt = d.i()
	}
	return facts
}

// refs is a stored count of connections as a span holds it.
func refs(v int64) int16 { return int16(min(max(v, 0), math.MaxInt16)) }
