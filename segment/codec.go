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
const profileFormat = 1

// errCorrupt is returned for a record that does not decode.
var errCorrupt = errors.New("corrupt profile record")

type enc struct{ b []byte }

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) s(v string) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) ss(v []string) {
	e.u(uint64(len(v)))
	for _, x := range v {
		e.s(x)
	}
}
func (e *enc) counts(v []Count) {
	e.u(uint64(len(v)))
	for _, c := range v {
		e.s(c.Cat())
		e.u(uint64(c.N))
	}
}

// marshalProfile encodes p.
func marshalProfile(p *Profile) []byte { return appendProfile(make([]byte, 0, 256), p) }

// appendProfile appends the encoding of p to dst: the write-through packs every changed
// profile into one buffer instead of a small allocation each.
func appendProfile(dst []byte, p *Profile) []byte {
	e := &enc{b: dst}
	e.u(profileFormat)
	e.s(p.ID)
	e.s(p.Name)
	e.ss(p.Aliases())
	for _, v := range []int64{p.FirstSeen, p.LastSeen, p.LastVisit, p.WatchMs, int64(p.GiftValue), int64(p.Spend), p.FirstOrder, p.SecondOrder, p.LastOrder} {
		e.i(v)
	}
	for _, v := range []uint32{p.Sessions, p.Comments, p.Likes, p.Gifts, p.Interactions, p.Orders} {
		e.u(uint64(v))
	}
	e.counts(p.Clicks)
	e.counts(p.Bought())
	e.ss(p.OrderIDs())
	e.u(uint64(len(p.Days)))
	for _, d := range p.Days {
		e.i(int64(d.Day))
		e.u(uint64(d.Sessions))
		e.u(uint64(d.Orders))
		e.u(uint64(d.Interactions))
		e.u(uint64(d.WatchSec))
		e.i(int64(d.Spend))
	}
	e.u(uint64(len(p.Cats)))
	for _, c := range p.Cats {
		e.i(int64(c.Day))
		e.s(c.Cat())
		e.u(uint64(c.N))
	}
	e.u(uint64(len(p.Lives)))
	for _, l := range p.Lives {
		e.s(l.Live())
		e.s(l.Room())
		e.i(l.Start)
		e.i(l.WatchMs)
	}
	e.ss(p.Rooms)
	e.u(uint64(len(p.Open)))
	for _, s := range p.Open {
		e.s(s.Live())
		e.s(s.Room())
		e.i(s.Start)
		e.i(s.Last)
		e.i(int64(s.Refs))
	}
	e.u(uint64(len(p.Recent)))
	for _, r := range p.Recent {
		e.i(r.At())
		e.s(string(r.Type()))
		e.s(r.Detail)
	}
	e.u(uint64(p.Consent)) // 0 (none), 1 (yes), 2 (no)
	e.s(p.Tags.Activity.String())
	e.s(p.Tags.Value.String())
	e.s(p.Tags.Lifecycle.String())
	e.ss(p.Tags.Preference)
	for _, v := range p.Tags.Since {
		e.i(v)
	}
	e.u(uint64(p.RFM.R))
	e.u(uint64(p.RFM.F))
	e.u(uint64(p.RFM.M))
	e.s(p.RFM.Segment.String())
	if at := p.consentAt(); at != 0 {
		// Last, and only when known: the format's first records end before it. A field
		// added after it must write it (0) first, or an old record would be misread.
		e.i(at)
	}
	return e.b
}

type dec struct {
	b   []byte
	err error
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

func (d *dec) ss() []string {
	n := d.n()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.s()
	}
	return out
}

func (d *dec) counts() []Count {
	n := d.n()
	if n == 0 {
		return nil
	}
	out := make([]Count, n)
	for i := range out {
		out[i] = newCount(d.s(), d.u32())
	}
	return out
}

// unmarshalProfile decodes a stored record (binary, or JSON from before the format).
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
	if d.u() != profileFormat {
		return nil, errCorrupt
	}
	p.ID, p.Name = d.s(), d.s()
	aliases := d.ss()
	for _, v := range []*int64{&p.FirstSeen, &p.LastSeen, &p.LastVisit, &p.WatchMs, (*int64)(&p.GiftValue), (*int64)(&p.Spend), &p.FirstOrder, &p.SecondOrder, &p.LastOrder} {
		*v = d.i()
	}
	for _, v := range []*uint32{&p.Sessions, &p.Comments, &p.Likes, &p.Gifts, &p.Interactions, &p.Orders} {
		*v = d.u32()
	}
	p.Clicks = d.counts()
	bought, orderIDs := d.counts(), d.ss()
	facts := buyerFacts{Aliases: aliases, Bought: bought, OrderIDs: orderIDs}
	if n := d.n(); n > 0 {
		p.Days = make([]Bucket, n)
		for i := range p.Days {
			p.Days[i] = Bucket{Day: int32(d.i()), Sessions: uint16(d.u()), Orders: uint16(d.u()), Interactions: d.u32(), WatchSec: d.u32(), Spend: Money(d.i())}
		}
	}
	if n := d.n(); n > 0 {
		p.Cats = make([]CatDay, n)
		for i := range p.Cats {
			p.Cats[i] = CatDay{Day: int32(d.i()), cat: categoryOf(d.s()), N: d.u32()}
		}
	}
	if n := d.n(); n > 0 {
		p.Lives = make([]LiveSession, n)
		for i := range p.Lives {
			p.Lives[i] = LiveSession{at: placeOf(d.s(), d.s()), Start: d.i(), WatchMs: d.i()}
		}
	}
	p.Rooms = d.ss()
	if n := d.n(); n > 0 {
		p.Open = make([]Span, n)
		for i := range p.Open {
			p.Open[i] = Span{at: placeOf(d.s(), d.s()), Start: d.i(), Last: d.i(), Refs: int16(min(max(d.i(), 0), math.MaxInt16))}
		}
	}
	if n := d.n(); n > 0 {
		p.Recent = make([]Recent, n)
		for i := range p.Recent {
			p.Recent[i] = newRecent(d.i(), event.Type(d.s()), d.s())
		}
	}
	if c := d.u(); c > 0 {
		p.Consent = consentOf(c == 1)
	}
	p.Tags.Activity, p.Tags.Value, p.Tags.Lifecycle, p.Tags.Preference = wordOf(d.s()), wordOf(d.s()), wordOf(d.s()), d.ss()
	for i := range p.Tags.Since {
		p.Tags.Since[i] = d.i()
	}
	p.RFM = RFM{R: uint8(d.u()), F: uint8(d.u()), M: uint8(d.u()), Segment: wordOf(d.s())}
	if len(d.b) > 0 { // added after the format's first records, which end here
		facts.ConsentAt = d.i()
	}
	p.setBuyer(facts)
	if d.err != nil {
		return nil, d.err
	}
	p.dropUnnamed()
	return p, nil
}
