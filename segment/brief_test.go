package segment

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// TestBriefMatchesViewerView: the rules' lean Brief says what the profile page's
// ViewerView says, for every viewer of a synthetic live history and each of its lives.
func TestBriefMatchesViewerView(t *testing.T) {
	// One instant for the whole test: an open session's watch time runs with the
	// clock, and Brief and ViewerView, read a moment apart, could straddle a second.
	now := time.Now()
	e, g := syntheticEngine(t, testConfig(), 300, 20_000, now.Add(-time.Hour), func() time.Time { return now })
	checked, withLive, withComment := 0, 0, 0
	for _, id := range g.Viewers {
		vv, err := e.Viewer(t.Context(), id)
		if err != nil {
			continue
		}
		lives := []string{"", "no-such-live"}
		for _, l := range vv.LiveSessions {
			lives = append(lives, l.Live)
		}
		for _, live := range lives {
			b, err := e.Brief(t.Context(), id, live)
			if err != nil {
				t.Fatal(err)
			}
			want := briefFromView(vv, live)
			b.Preference, want.Preference = nonNil(b.Preference), nonNil(want.Preference)
			if !briefEqual(b, want, vv, live) {
				t.Fatalf("viewer %s live %q:\n brief %+v\n view  %+v", id, live, b, want)
			}
			checked++
			if b.Live.Live != "" {
				withLive++
			}
			if b.LastComment != "" {
				withComment++
			}
		}
	}
	if checked < 300 || withLive == 0 || withComment == 0 {
		t.Fatalf("too little compared: %d briefs, %d with a live, %d with a comment", checked, withLive, withComment)
	}
}

// briefFromView is what a Brief should hold, read off the ViewerView (whose Recent is
// newest first).
func briefFromView(vv ViewerView, live string) Brief {
	b := Brief{ID: vv.ID, Name: vv.Name, Sessions: vv.Sessions, Orders: vv.Orders, Comments: vv.Comments,
		Likes: vv.Likes, Spend: vv.Spend, AOV: vv.AOV, Consent: vv.Consent}
	b.Activity, _ = vv.Tags[DimActivity].(string)
	b.Value, _ = vv.Tags[DimValue].(string)
	b.Lifecycle, _ = vv.Tags[DimLifecycle].(string)
	b.Preference, _ = vv.Tags[DimPreference].([]string)
	if vv.LastOrder != nil {
		b.LastOrder = *vv.LastOrder
	}
	if len(vv.LiveSessions) > 0 {
		b.LastRoom = vv.LiveSessions[0].Room // latest first
	}
	for _, l := range vv.LiveSessions {
		if l.Live == live && live != "" {
			b.Live = LiveBrief{Live: l.Live, Room: l.Room, Start: l.Start, Watching: l.Watching}
		}
	}
	for _, r := range vv.Recent {
		switch r.Type {
		case string(event.Danmaku):
			if b.LastComment == "" {
				b.LastComment = r.Detail
			}
			if b.Live.Live != "" && !r.At.Before(b.Live.Start) {
				b.LiveComments++
			}
		case string(event.ProductClick):
			if b.LastSKU == "" {
				b.LastSKU = r.Detail
			}
		}
	}
	return b
}

// briefEqual compares a Brief with one read off a view, whose watch times are whole
// seconds (the Brief's are milliseconds).
func briefEqual(a, want Brief, view ViewerView, live string) bool {
	if int64(a.Watch/time.Second) != view.WatchSeconds {
		return false
	}
	for _, l := range view.LiveSessions {
		if l.Live == live && int64(a.Live.Watch/time.Second) != l.WatchSeconds {
			return false
		}
	}
	if (a.Live.Live != "") == a.Live.AsOf.IsZero() { // a live session says when it was measured
		return false
	}
	a.Live.AsOf = time.Time{}
	if len(view.LiveSessions) == 0 {
		want.LastRoom = a.LastRoom // the view does not list the rooms (TestBriefLastRoom)
	}
	la, lb, sa, sb := a.LastOrder, want.LastOrder, a.Live.Start, want.Live.Start
	a.LastOrder, want.LastOrder, a.Live.Start, want.Live.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	a.Watch, a.Live.Watch = 0, 0
	return la.Equal(lb) && sa.Equal(sb) && reflect.DeepEqual(a, want)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestBriefLastRoom: the room to reach a viewer in when its event names none is the
// room of its latest live session, whatever order the lives arrived in, else the last
// room it was first seen in.
func TestBriefLastRoom(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	comment := ev(event.Danmaku, "v1", t0)
	comment.Room, comment.Text = "lobby", "hi"
	e.Apply(comment)
	if b, err := e.Brief(t.Context(), "v1", ""); err != nil || b.LastRoom != "lobby" {
		t.Fatalf("after a comment in lobby: %q, %v", b.LastRoom, err)
	}
	for _, w := range []struct {
		room, live string
		at         time.Time
	}{{"a", "La", t0.Add(time.Hour)}, {"b", "Lb", t0.Add(2 * time.Hour)}, {"c", "Lc", t0.Add(30 * time.Minute)}} {
		watch := ev(event.WatchStart, "v1", w.at)
		watch.Room, watch.Live = w.room, w.live
		e.Apply(watch)
	}
	if b, err := e.Brief(t.Context(), "v1", ""); err != nil || b.LastRoom != "b" {
		t.Fatalf("after lives in a, b and a backfilled one in c: %q, %v (want b)", b.LastRoom, err)
	}
}

// TestVersionStampsEveryChange: a profile's version moves with every change the rules
// must not miss (an event, a live's end, a vanished presence closed by the sweep, a
// merge by an order), stays put otherwise, and is carried by the brief; an erased
// viewer has none.
func TestVersionStampsEveryChange(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	ctx := context.Background()
	watch := ev(event.WatchStart, "v1", t0)
	watch.Live = "L"
	e.Apply(watch)
	st0, ok := e.Version("v1")
	if !ok {
		t.Fatal("no version for a viewer with a profile")
	}
	v0 := st0.Version
	if st, _ := e.Version("v1"); st.Version != v0 {
		t.Fatal("version moved with no change")
	}
	other := ev(event.Like, "v2", t0) // another viewer's change
	e.Apply(other)
	if st, _ := e.Version("v1"); st.Version != v0 {
		t.Fatal("version moved with another viewer's change")
	}
	last := v0
	step := func(what string, change func()) {
		t.Helper()
		change()
		st, ok := e.Version("v1")
		if !ok || st.Version == last {
			t.Fatalf("%s: version %d (known %v), was %d", what, st.Version, ok, last)
		}
		last = st.Version
	}
	step("a like", func() { e.Apply(ev(event.Like, "v1", t0.Add(time.Second))) })
	step("the live's end", func() {
		end := ev(event.LiveEnd, "host", t0.Add(2*time.Second))
		end.Live = "L"
		e.Apply(end)
	})
	step("a presence closed by the sweep", func() {
		w := ev(event.WatchStart, "v1", t0.Add(3*time.Second))
		w.Live = "L2"
		e.Apply(w)
		st, _ := e.Version("v1")
		last = st.Version
		clk.Add(testConfig().PresenceTimeout + time.Hour)
		e.Sweep()
	})
	step("a merge into a customer", func() {
		importJSON(t, e, `[{"id":"h1","type":"order","viewer":"shop-42","at":"2026-06-15T10:00:00Z","order_id":"s1","total":"30","customer":{"id":"42"}},
			{"id":"h2","type":"order","viewer":"v1","at":"2026-06-15T15:00:00Z","order_id":"s2","total":"20","customer":{"id":"42"}}]`)
	})
	if err := e.Erase(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Version("v1"); ok {
		t.Fatal("an erased viewer still has a version")
	}
}

// TestVersionMovesWithSweepRetag: a tag the sweep moves with time alone (low →
// dormant) moves the viewer's version, whether or not anyone takes tag changes.
func TestVersionMovesWithSweepRetag(t *testing.T) {
	for _, subscribed := range []bool{false, true} {
		clk := &clock{t: t0}
		e := newEngine(t, nil, clk)
		if subscribed {
			q := event.NewQueue(1024)
			defer e.Subscribe(q)()
		}
		for _, x := range session("v1", "L", t0.Add(-time.Hour), 5*time.Minute, 0) {
			e.Apply(x)
		}
		before := viewer(t, e, "v1").Tags[DimActivity]
		st0, _ := e.Version("v1")
		clk.Add(31 * 24 * time.Hour) // idle long enough to be dormant
		e.Sweep()
		after := viewer(t, e, "v1").Tags[DimActivity]
		if before == after {
			t.Fatalf("setup: the activity tag did not move (%v)", after)
		}
		if st, _ := e.Version("v1"); st.Version == st0.Version {
			t.Fatalf("subscribed %v: the sweep moved activity %v → %v, the version stayed", subscribed, before, after)
		}
	}
}

// TestProfileFitsItsSizeClass: a profile is 320 bytes, its allocation size class; one
// field more takes a 352-byte slot, 32 bytes more for each of a million profiles.
func TestProfileFitsItsSizeClass(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"Profile (find a hole for a new field)", unsafe.Sizeof(Profile{}), 320},
		// A viewer keeps up to maxLives sessions: 8 bytes more each is 25 bytes more
		// per profile at the bench's steady state.
		{"LiveSession", unsafe.Sizeof(LiveSession{}), 16},
		// Three buyers in four there; the compaction packs them 56 bytes apart.
		{"buyerFacts", unsafe.Sizeof(buyerFacts{}), 56},
		// Six recent events and five or six days of categories per profile there.
		{"Recent", unsafe.Sizeof(Recent{}), 16},
		{"CatDay", unsafe.Sizeof(CatDay{}), 8},
		// About two slots per profile (a table is a quarter to three quarters full).
		{"a profile table's slot", unsafe.Sizeof(profileSlot{}), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s is %d bytes, want %d", c.what, c.got, c.want)
		}
	}
}

// A category's day is kept from 1970 to 2149 and its count stops at 65,535, as an
// event adds to it or a stored record brings it.
func TestCatDayBounds(t *testing.T) {
	shoes := categoryOf("shoes")
	for _, c := range []struct {
		day, wantDay int32
		n, wantN     uint32
	}{
		{20000, 20000, 3, 3}, {0, 0, 0, 0}, {-1, 0, 1, 1}, {65535, 65535, 65535, 65535},
		{65536, 65535, 65536, 65535}, {math.MaxInt32, 65535, math.MaxUint32, 65535},
	} {
		if got := catDay(c.day, shoes, c.n); got.Day() != c.wantDay || got.N() != c.wantN || got.Cat() != "shoes" {
			t.Errorf("catDay(%d, shoes, %d) = day %d, %d of %s", c.day, c.n, got.Day(), got.N(), got.Cat())
		}
	}
	var p Profile
	today := dayOf(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	p.addCat(today, today-90, shoes, 60000)
	p.addCat(today, today-90, shoes, 6000)
	p.addCat(today-1, today-90, shoes, 2)
	p.addCat(today-1, today-90, shoes, math.MaxUint32-1) // no wrap on the way
	if cats := p.Cats.get(); len(cats) != 2 || cats[0].N() != 65535 || cats[0].Day() != today || cats[1].N() != 65535 {
		t.Fatalf("after adding 60,000 and 6,000, and 2 and 2^32-2: %+v", cats)
	}
}

// An order's quantity counts in full up to 2^32-1 among the items a buyer bought, and
// the counts stop there rather than wrap: as they add up (viewer a), and for one
// larger quantity (viewer b).
func TestBoughtCountsStopAtTheirLargest(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	at := t0.Add(-time.Hour).Format(time.RFC3339)
	for i, o := range []struct {
		viewer, quantity string
		bought           uint32
		cat              uint32
	}{
		{"a", "100", 100, 100},
		{"a", "4294967206", math.MaxUint32, math.MaxUint16},
		{"b", "10000000000", math.MaxUint32, math.MaxUint16},
	} {
		importJSON(t, e, fmt.Sprintf(`[{"id":"o%d","type":"order","viewer":%q,"at":%q,"order_id":"o%d","total":"1","currency":"USD","items":[{"sku":"s","category":"shoes","price":"1","quantity":%s}]}]`, i, o.viewer, at, i, o.quantity))
		sh, p := e.lookup(o.viewer, false)
		bought, cats := p.Bought(), slices.Clone(p.Cats.get())
		sh.mu.Unlock()
		if len(bought) != 1 || len(cats) != 1 || bought[0].N != o.bought || cats[0].N() != o.cat {
			t.Fatalf("%s after quantity %s: bought %+v, categories %+v", o.viewer, o.quantity, bought, cats)
		}
	}
}
