package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/rfm"
)

// Concurrent callers get one number per pair, and every number reads back its pair.
func TestPlaceOf(t *testing.T) {
	const pairs, callers = 200, 8
	got := make([][]place, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range pairs {
				p := placeOf(fmt.Sprintf("live-%d", i), fmt.Sprintf("room-%d", i%7))
				got[c] = append(got[c], p)
				if p.live() != fmt.Sprintf("live-%d", i) || p.room() != fmt.Sprintf("room-%d", i%7) {
					t.Errorf("place %d reads (%q, %q)", p, p.live(), p.room())
				}
			}
		})
	}
	wg.Wait()
	seen := map[place]bool{}
	for i := range pairs {
		for c := 1; c < callers; c++ {
			if got[c][i] != got[0][i] {
				t.Fatalf("pair %d: numbers %d and %d", i, got[0][i], got[c][i])
			}
		}
		if seen[got[0][i]] {
			t.Fatalf("pair %d shares number %d", i, got[0][i])
		}
		seen[got[0][i]] = true
	}
	if p := placeOf("", ""); p != 0 || p.live() != "" || p.room() != "" {
		t.Fatalf(`placeOf("", "") = %d (%q, %q), want 0`, p, p.live(), p.room())
	}
	if placeOf("", "r") == placeOf("r", "") {
		t.Fatal("a room and a live of the same name share a place")
	}
}

// Every event type keeps its name in a profile's recent events (a one-byte code),
// including one the table did not start with.
func TestRecentKeepsEveryType(t *testing.T) {
	types := []event.Type{event.Join, event.Leave, event.WatchStart, event.WatchStop, event.Watch, event.Danmaku,
		event.Like, event.Gift, event.ProductClick, event.Pin, event.DM, event.Order, event.Consent,
		event.LiveStart, event.LiveEnd, event.TagChange, "share"}
	for _, ty := range types {
		// Times within 139 years of 2000 as they are; beyond, at that edge.
		last, first := int64(recentEpoch+recentReach), int64(recentEpoch-recentReach)
		for at, want := range map[int64]int64{946684800000: 946684800000, 1795677000000: 1795677000000, -5: -5,
			last: last, first: first, last + 1: last, first - 1: first, 1 << 50: last, -1 << 50: first, math.MaxInt64: last, math.MinInt64: first} {
			if r := newRecent(at, typeCode(ty), "d"); r.Type() != ty || r.kind() == 0 || r.At() != want || r.Detail() != "d" {
				t.Errorf("%s at %d: kept as %q (code %d) at %d with %q", ty, at, r.Type(), r.kind(), r.At(), r.Detail())
			}
		}
	}
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	e.Apply(ev(event.Type("share"), "v1", t0))
	if r := viewer(t, e, "v1").Recent; len(r) != 1 || r[0].Type != "share" {
		t.Fatalf("recent events: %+v", r)
	}
}

// A recent event keeps its detail whole up to maxDetail bytes and cut at a character's
// start beyond; a detail's change keeps the time and type.
func TestRecentDetail(t *testing.T) {
	long := strings.Repeat("a", maxDetail-1) + "é…" // é ends at maxDetail+1, … after it
	for detail, want := range map[string]string{
		"": "", "r1": "r1", "小店 order 12": "小店 order 12",
		long:                             long[:maxDetail-1], // é would be cut in two
		strings.Repeat("b", maxDetail+9): strings.Repeat("b", maxDetail),
	} {
		r := newRecent(1795677000000, typeCode(event.Danmaku), detail)
		if r.Detail() != want || r.At() != 1795677000000 || r.Type() != event.Danmaku || r.inChunk() {
			t.Errorf("detail of %d bytes: kept %d bytes %q…, at %d, %s", len(detail), len(r.Detail()), r.Detail()[:min(8, len(r.Detail()))], r.At(), r.Type())
		}
		if (r.text == nil) != (want == "") {
			t.Errorf("detail %q: address %p", want, r.text)
		}
		r.stamp |= detailInChunk
		r.setDetail("other")
		if r.Detail() != "other" || r.At() != 1795677000000 || r.Type() != event.Danmaku || r.inChunk() {
			t.Errorf("set: %q at %d, %s, in a chunk %v", r.Detail(), r.At(), r.Type(), r.inChunk())
		}
	}
}

// A full table numbers new values 0 instead of growing.
func TestTableBounded(t *testing.T) {
	tb := newTable[string](3, "a")
	own := func(s string) string { return s }
	if a, b, c := tb.id("a", own), tb.id("b", own), tb.id("c", own); a != 1 || b != 2 || c != 0 {
		t.Fatalf("ids a=%d b=%d c=%d, want 1, 2 and 0 (full)", a, b, c)
	}
	if tb.value(2) != "b" || tb.value(0) != "" {
		t.Fatalf("values %q %q", tb.value(2), tb.value(0))
	}
}

// typeCode numbers the tap's types as the table does, and a type it does not
// know goes through the table.
func TestTypeCodeAgreesWithTheTable(t *testing.T) {
	vals := *eventTypes.vals.Load()
	for want := 1; want <= 16; want++ {
		if got := typeCode(vals[want]); int(got) != want {
			t.Errorf("typeCode(%q) = %d, the table says %d", vals[want], got, want)
		}
		if got := typeCode(event.Type(strings.Clone(string(vals[want])))); int(got) != want { // decoded, not the constant
			t.Errorf("typeCode of a copy of %q = %d, the table says %d", vals[want], got, want)
		}
	}
	other := event.Type("type-for-the-typecode-test")
	if c := typeCode(other); c <= 16 || (Recent{stamp: int64(c)}).Type() != other {
		t.Errorf("an unknown type got %d", c)
	}
}

// sharedList hands out one copy per distinct list, whether it finds it among the last
// ones it handed out or in the shard's map, and never the caller's own array.
func TestSharedListOneCopyPerList(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	sh := e.shards[0]
	lists := [][]string{{"shoes"}, {"bags", "price:low"}, {"hats"}, {"coats"}, {"caps"}, {"shoes", "bags"}}
	first := map[string]*string{}
	for round := range 3 { // past the recent slots, so later rounds find some in the map only
		for _, l := range lists {
			mine := slices.Clone(l)
			got := sh.sharedList(mine)
			if !slices.Equal(got, l) || &got[0] == &mine[0] {
				t.Fatalf("round %d: %v for %v (the caller's array: %v)", round, got, l, &got[0] == &mine[0])
			}
			key := strings.Join(l, "|")
			if p, ok := first[key]; ok && p != &got[0] {
				t.Fatalf("round %d: a second copy of %v", round, l)
			}
			first[key] = &got[0]
		}
	}
}

// remember keeps the newest maxRecent events by time (ties in the order they came),
// whatever order they come in, and leaves nothing of a dropped one in its array.
func TestRememberKeepsTheNewest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		var p Profile
		var all []Recent
		for i := range rng.IntN(40) {
			at := int64(rng.IntN(20))
			if rng.IntN(3) > 0 {
				at = int64(i) // mostly in order, as the tap is
			}
			r := newRecent(at, typeCode(event.Danmaku), fmt.Sprintf("m%d", i))
			all = append(all, r)
			p.remember(r)
			want := slices.Clone(all)
			slices.SortStableFunc(want, func(a, b Recent) int { return int(a.At() - b.At()) })
			want = want[max(0, len(want)-maxRecent):]
			var buf [maxRecent]Recent
			if got := p.recentInOrder(&buf); !slices.Equal(got, want) {
				t.Fatalf("round %d, event %d: recent %v, want %v", round, i, got, want)
			}
			for _, r := range p.Recent.get()[len(p.Recent.get()):cap(p.Recent.get())] {
				if r != (Recent{}) {
					t.Fatalf("round %d: a dropped event lingers past the list's end: %v", round, r)
				}
			}
		}
	}
}

// Once a viewer's recent events have turned their ring, everything that reads them
// reads them in order: the profile page (newest first), the rules' brief, the export,
// the stored record and a compaction (oldest first).
func TestRecentRingIsReadInOrder(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for i := range maxRecent + 3 {
		x := ev(event.Danmaku, "v", t0.Add(time.Duration(i-20)*time.Minute))
		x.Text = fmt.Sprint("m", i)
		e.Apply(x)
	}
	var want []string // oldest first
	for i := 3; i < maxRecent+3; i++ {
		want = append(want, fmt.Sprint("m", i))
	}
	details := func(rs []Recent) []string {
		var d []string
		for _, r := range rs {
			d = append(d, r.Detail())
		}
		return d
	}
	sh, p := e.lookup("v", false)
	head, stored := p.recentHead, marshalProfile(p)
	sh.mu.Unlock()
	if head == 0 {
		t.Fatal("the ring has not turned: the test checks nothing")
	}
	var page []string
	for _, r := range viewer(t, e, "v").Recent {
		page = append(page, r.Detail)
	}
	if slices.Reverse(page); !slices.Equal(page, want) {
		t.Errorf("profile page, newest first reversed: %v, want %v", page, want)
	}
	if b, err := e.Brief(context.Background(), "v", ""); err != nil || b.LastComment != want[len(want)-1] {
		t.Errorf("brief's last comment %q (%v), want %q", b.LastComment, err, want[len(want)-1])
	}
	exp, err := e.Export(context.Background(), "v")
	if err != nil {
		t.Fatal(err)
	}
	var exported struct{ Recent []recentJSON }
	if err := json.Unmarshal(exp.Profile, &exported); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range exported.Recent {
		got = append(got, r.Detail)
	}
	if !slices.Equal(got, want) {
		t.Errorf("exported: %v, want %v", got, want)
	}
	decoded, err := unmarshalProfile(stored)
	if err != nil {
		t.Fatal(err)
	}
	if got := details(decoded.Recent.get()); !slices.Equal(got, want) || decoded.recentHead != 0 {
		t.Errorf("stored record read back: %v (head %d), want %v", got, decoded.recentHead, want)
	}
	e.Compact()
	sh, p = e.lookup("v", false)
	got, head = details(p.Recent.get()), p.recentHead
	sh.mu.Unlock()
	if !slices.Equal(got, want) || head != 0 {
		t.Errorf("compacted: %v (head %d), want %v", got, head, want)
	}
	// The last product clicked, for the rules, once the clicks have turned a ring.
	for i := range maxRecent + 3 {
		x := ev(event.ProductClick, "w", t0.Add(time.Duration(i-20)*time.Minute))
		x.SKU = fmt.Sprint("sku", i)
		e.Apply(x)
	}
	last := fmt.Sprint("sku", maxRecent+2)
	if s, ok := e.Version("w"); !ok || s.LastSKU != last {
		t.Errorf("version's last product %q, want %q", s.LastSKU, last)
	}
	if b, err := e.Brief(context.Background(), "w", ""); err != nil || b.LastSKU != last {
		t.Errorf("brief's last product %q (%v), want %q", b.LastSKU, err, last)
	}
}

// tierOf gives every segment word the tier rfm.Tier gives its string, a word the
// process did not start with too (read from another version's store).
func TestTierOfAgreesWithRFM(t *testing.T) {
	segs := []string{rfm.NoOrders, "segment-word-for-the-tier-test"}
	for r := 1; r <= 5; r++ {
		for fm := 1; fm <= 5; fm++ {
			segs = append(segs, rfm.Segment(r, fm, fm))
		}
	}
	for _, s := range segs {
		if got, want := tierOf(wordOf(s)).String(), rfm.Tier(s); got != want {
			t.Errorf("tierOf(%q) = %q, rfm.Tier says %q", s, got, want)
		}
	}
}
