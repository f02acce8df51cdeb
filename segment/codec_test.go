package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/bits"
	"slices"
	"testing"

	"github.com/liveroom/liveroom/event"
)

// richProfile has every field of a profile set, some of them to edge values.
func richProfile() *Profile {
	p := &Profile{ID: "v", Name: "Ann", FirstSeen: -5, LastSeen: 1781517600000, LastVisit: 3,
		Sessions: 4, WatchMs: 123456, Comments: 2, Likes: 9, Gifts: 1, GiftValue: 1_500_000, Interactions: 12,
		Clicks: packedOf([]Count{newCount("shoes", 3)}), Orders: 2, Spend: 25_010_000, FirstOrder: 1, SecondOrder: 2, LastOrder: 2,
		Days:  packedOf([]Bucket{{Day: 20000, Sessions: 1, Orders: 2, Interactions: 3, WatchSec: 4, Spend: -5}}),
		Cats:  packedOf([]CatDay{catDay(20000, categoryOf("shoes"), 3)}),
		Lives: packedOf([]LiveSession{liveSession(placeOf("L", "r"), 7, 8)}), Rooms: packedOf([]string{"r"}),
		Open:   packedOf([]Span{{at: placeOf("L", "r"), Start: 1, Last: 2, Refs: 2}}),
		Recent: packedOf([]Recent{newRecent(9, typeCode(event.Like), "x")}), Consent: consentOf(true),
		Tags: Tags{Activity: wordOf(High), Value: wordOf("vip"), Lifecycle: wordOf(Loyal), Preference: packedOf([]string{"shoes", PriceMid}), Since: [4]int64{1, 2, 3, 4}},
		RFM:  RFM{R: 5, F: 4, M: 3, Segment: wordOf("Champions")}}
	p.setBuyer(buyerFacts{Aliases: packedOf([]string{"g1", "email:a@b.c"}), Bought: packedOf([]Count{newCount("bags", 1)}), OrderIDs: idListOf([]string{"o1", "o2"}), ConsentAt: 1781517600000})
	return p
}

// livelyProfile is a viewer of one room over a few lives, as most stored ones are.
func livelyProfile() *Profile {
	const at = int64(1781517600000)
	p := &Profile{ID: "viewer-123456", FirstSeen: at - 40*dayMs, LastSeen: at, LastVisit: at, Sessions: 3,
		WatchMs: 3_600_000, Comments: 4, Likes: 20, Interactions: 24, Rooms: packedOf([]string{"room-4"}),
		Clicks: packedOf([]Count{newCount("scarves", 2), newCount("bags", 1)}),
		Tags: Tags{Activity: wordOf("medium"), Value: wordOf("potential"), Lifecycle: wordOf("new"),
			Preference: packedOf([]string{"scarves", "bags"}), Since: [4]int64{at - 1000, at - 40*dayMs, at - 40*dayMs, at - 2000}},
		RFM: RFM{Segment: wordOf("NoOrders")}}
	for i, live := range []string{"live-1", "live-2", "live-3"} {
		p.Lives = packedOf(append(p.Lives.get(), liveSession(placeOf(live, "room-4"), at-int64(3-i)*7*dayMs, 1_200_000)))
		p.Days = packedOf(append(p.Days.get(), Bucket{Day: dayOf(at - int64(3-i)*7*dayMs), Sessions: 1, Interactions: 8, WatchSec: 1200}))
	}
	p.Cats = packedOf([]CatDay{catDay(dayOf(at), categoryOf("scarves"), 2), catDay(dayOf(at), categoryOf("bags"), 1)})
	for i, t := range []event.Type{event.Join, event.WatchStart, event.Danmaku, event.Like, event.Like, event.ProductClick} {
		detail := "room-4"
		if t == event.Danmaku {
			detail = "nice!"
		}
		p.Recent = packedOf(append(p.Recent.get(), newRecent(at-int64(6-i)*1000, typeCode(t), detail)))
	}
	return p
}

func jsonOf(t *testing.T, p *Profile) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Records written by the first binary format (stores from before format 2) decode as
// the current format's do.
func TestProfileRecordFormatsDecodeAlike(t *testing.T) {
	for name, p := range map[string]*Profile{"rich": richProfile(), "lively": livelyProfile()} {
		want := jsonOf(t, p)
		for format, rec := range map[string][]byte{"1": appendProfileV1(nil, p), "2": marshalProfile(p)} {
			got, err := unmarshalProfile(rec)
			if err != nil {
				t.Fatalf("%s, format %s: %v", name, format, err)
			}
			if g := jsonOf(t, got); g != want {
				t.Fatalf("%s, format %s:\n%s\nwant\n%s", name, format, g, want)
			}
		}
	}
}

// The current format writes a string that comes again in the record once, known event
// types as numbers, and times as distances: a typical viewer's record is at least a
// quarter smaller.
func TestProfileRecordIsCompact(t *testing.T) {
	p := livelyProfile()
	v1, v2 := appendProfileV1(nil, p), marshalProfile(p)
	if 4*len(v2) > 3*len(v1) {
		t.Fatalf("format 2 takes %d bytes, format 1 %d", len(v2), len(v1))
	}
	for s, want := range map[string]int{"room-4": 1, "scarves": 1, string(event.Like): 0} {
		if n := bytes.Count(v2, []byte(s)); n != want {
			t.Errorf("%q is written %d times, want %d", s, n, want)
		}
	}
}

// Times are written as distances from the last time seen, which wrap for times far
// apart; they come back exactly.
func TestProfileRecordExtremeTimes(t *testing.T) {
	for _, base := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		p := richProfile()
		p.LastSeen = base
		p.FirstSeen, p.LastVisit, p.LastOrder = math.MinInt64, math.MaxInt64, -1
		p.Tags.Since = [4]int64{math.MinInt64, math.MaxInt64, 1, base}
		p.Lives.get()[0].Start, p.Open.get()[0].Start, p.Open.get()[0].Last = math.MaxInt64, math.MinInt64, 0
		p.Days.get()[0].Day, p.Cats.get()[0].day = math.MinInt32, math.MaxUint16
		want := jsonOf(t, p)
		got, err := unmarshalProfile(marshalProfile(p))
		if err != nil {
			t.Fatal(err)
		}
		if g := jsonOf(t, got); g != want {
			t.Fatalf("base %d:\n%s\nwant\n%s", base, g, want)
		}
	}
}

// minimalRecord is the current format's record of a profile with only an id, its
// mask of times set as given, and the click counts written by clicks.
func minimalRecord(mask uint64, clicks func(e *enc)) []byte {
	e := &enc{}
	e.u(profileFormat)
	e.s("v")
	e.s("")
	e.u(0) // aliases
	e.i(1) // last seen
	e.u(mask)
	for range bits.OnesCount64(mask) {
		e.i(0)
	}
	for range 3 + 6 { // watch, gift value, spend; the counters
		e.u(0)
	}
	clicks(e)
	for range 8 { // bought, order ids, days, cats, lives, rooms, open, recent
		e.u(0)
	}
	e.u(0) // consent
	for range 3 {
		e.s("") // activity, value, lifecycle
	}
	e.u(0) // preference
	for range 3 {
		e.u(0) // R, F, M
	}
	e.s("")
	return e.b
}

func noClicks(e *enc) { e.u(0) }

// A record that refers to a string it has not written yet, sets a time the format does
// not have, or goes on past its last field is corrupt.
func TestProfileRecordCorrupt(t *testing.T) {
	if _, err := unmarshalProfile(minimalRecord(1, noClicks)); err != nil {
		t.Fatalf("the well-formed record: %v", err)
	}
	for name, rec := range map[string][]byte{
		"reference": minimalRecord(0, func(e *enc) {
			e.u(1)        // one click count,
			e.u(3<<1 | 1) // naming the fourth string written before: there is none
			e.u(1)
		}),
		"mask":          minimalRecord(1<<12, noClicks),
		"trailing byte": append(minimalRecord(0, noClicks), 0),
	} {
		if _, err := unmarshalProfile(rec); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decoded with %v", name, err)
		}
	}
}

// A recent event with no type (as a record of format 1 may hold, or one whose type
// came past a full type table) is spelled out, not numbered 0: number 0 reads as
// "spelled out", and the record did not decode (found in review).
func TestProfileRecordUntypedRecentEvent(t *testing.T) {
	p := livelyProfile()
	p.Recent.get()[2] = newRecent(p.Recent.get()[2].At(), typeCode(""), "x")
	old, err := unmarshalProfile(appendProfileV1(nil, p))
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalProfile(marshalProfile(old))
	if err != nil {
		t.Fatalf("format 1 decodes, its rewrite in format 2 does not: %v", err)
	}
	if g, want := jsonOf(t, got), jsonOf(t, p); g != want {
		t.Fatalf("\n%s\nwant\n%s", g, want)
	}
}

// Stored records number a recent event's type by its place in this list: the process's
// type table must start with it, in this order, for good. A type added to the event
// package goes at the end of the table's seed, and here.
func TestStoredTypeNumbers(t *testing.T) {
	stored := []event.Type{event.Join, event.Leave, event.WatchStart, event.WatchStop, event.Watch,
		event.Danmaku, event.Like, event.Gift, event.ProductClick, event.Pin, event.DM, event.Order, event.Consent,
		event.LiveStart, event.LiveEnd, event.TagChange}
	if seed := (*eventTypes.vals.Load())[1 : fixedTypes+1]; !slices.Equal(seed, stored) {
		t.Fatalf("the type table starts with %q; stored records number %q", seed, stored)
	}
	// A type the table does not know from the start is spelled out.
	p := livelyProfile()
	p.Recent.get()[0] = newRecent(p.Recent.get()[0].At(), typeCode("custom_kind"), "x")
	got, err := unmarshalProfile(marshalProfile(p))
	if err != nil {
		t.Fatal(err)
	}
	if got.Recent.get()[0].Type() != "custom_kind" || got.Recent.get()[1].Type() != event.WatchStart {
		t.Fatalf("types %q, %q", got.Recent.get()[0].Type(), got.Recent.get()[1].Type())
	}
}

// A live session's watch time is held in 32 bits of ms (49 days): one read back out of
// that range, or added past it, stops at its ends rather than wrap.
func TestLiveSessionWatchStopsAtItsEnds(t *testing.T) {
	for _, c := range []struct{ in, want int64 }{
		{-5, 0}, {0, 0}, {1_200_000, 1_200_000}, {math.MaxUint32, math.MaxUint32}, {math.MaxUint32 + 1, math.MaxUint32}, {math.MaxInt64, math.MaxUint32},
	} {
		l := liveSession(placeOf("L", "r"), 7, c.in)
		if got := l.WatchMs(); got != c.want {
			t.Errorf("watch %d read back as %d, want %d", c.in, got, c.want)
		}
	}
	l := liveSession(placeOf("L", "r"), 7, math.MaxUint32-10)
	l.addWatch(11)
	l.addWatch(math.MaxInt64)
	if l.WatchMs() != math.MaxUint32 {
		t.Errorf("watch added past its end: %d", l.WatchMs())
	}
	p := &Profile{ID: "v", Lives: packedOf([]LiveSession{liveSession(placeOf("L", "r"), 7, 1<<40)})}
	q, err := unmarshalProfile(marshalProfile(p))
	if err != nil || q.Lives.get()[0].WatchMs() != math.MaxUint32 {
		t.Errorf("a stored session's watch: %v, %v", q, err)
	}
}
