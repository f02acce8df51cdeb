package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// randomHistory makes n import items of a small shop: 30 viewers, some of whom order
// as one of 10 customers (so guests are linked and merged), over the last 400 days
// (across the 30/90/365-day windows), every item at its own millisecond.
func randomHistory(rng *rand.Rand, n int) []string {
	used := map[int64]bool{}
	items := make([]string, 0, n)
	for i := range n {
		var at int64
		for at == 0 || used[at] {
			at = t0.UnixMilli() - rng.Int64N(400*dayMs)
		}
		used[at] = true
		v := fmt.Sprintf("v%d", rng.IntN(30))
		// A live of its own per item: a viewer keeps only its latest lives to tell a
		// live's later events from a new session by (docs/segmentation.md), so a live
		// older than those, coming again out of order, would count again.
		head := fmt.Sprintf(`"id":"e%d","viewer":%q,"name":"N%s","at":%d,"room":"r%d","live":"L%d"`,
			i, v, v, at, rng.IntN(3), i)
		cat := []string{"shoes", "bags", "hats", "coats"}[rng.IntN(4)]
		var item string
		switch k := rng.IntN(10); {
		case k < 3:
			item = fmt.Sprintf(`"type":"watch","seconds":%d`, 30+rng.IntN(3000))
		case k < 4:
			item = fmt.Sprintf(`"type":"danmaku","text":"hello %d"`, i)
		case k < 5:
			item = fmt.Sprintf(`"type":"like","count":%d`, 1+rng.IntN(5))
		case k < 6:
			item = fmt.Sprintf(`"type":"gift","gift":"rose","count":%d,"value":"%d.50","currency":"EUR"`, 1+rng.IntN(3), rng.IntN(20))
		case k < 7:
			item = fmt.Sprintf(`"type":"product_click","sku":"sku-%s","category":%q`, cat, cat)
		case k < 8:
			item = fmt.Sprintf(`"type":"consent","messages":%t`, rng.IntN(2) == 0)
		default:
			cur := []string{"USD", "EUR", "JPY"}[rng.IntN(3)]
			customer := ""
			switch rng.IntN(4) { // an id, an e-mail, or both: an order may join two owners
			case 0:
				customer = fmt.Sprintf(`,"customer":{"id":"c%d"}`, rng.IntN(10))
			case 1:
				customer = fmt.Sprintf(`,"customer":{"email":"m%d@shop.test"}`, rng.IntN(10))
			case 2:
				customer = fmt.Sprintf(`,"customer":{"id":"c%d","email":"m%d@shop.test"}`, rng.IntN(10), rng.IntN(10))
			}
			item = fmt.Sprintf(`"type":"order","order_id":"o%d","total":"%d.%02d","currency":%q,"items":[{"sku":"sku-%s","category":%q,"price":"10","quantity":%d}]%s`,
				i, 5+rng.IntN(300), rng.IntN(100), cur, cat, cat, 1+rng.IntN(3), customer)
		}
		items = append(items, "{"+head+","+item+"}")
	}
	return items
}

// importInBatches imports items in batches of random sizes, each item once or (when
// again) some a second time, later.
func importInBatches(t *testing.T, e *Engine, rng *rand.Rand, items []string, again bool) {
	t.Helper()
	for len(items) > 0 {
		n := min(len(items), 1+rng.IntN(40))
		batch := slices.Clone(items[:n])
		if again && n > 1 {
			batch = append(batch, items[rng.IntN(n)]) // a repeat within the batch
		}
		importJSON(t, e, "["+strings.Join(batch, ",")+"]")
		items = items[n:]
	}
}

// views is every viewer's profile page as JSON, by the viewer ids the history used.
// A merged viewer's page is the one profile it now belongs to; which of the merged ids
// became the profile's own depends on which order linked first, so its id goes in
// with the other ids, sorted.
func views(t *testing.T, e *Engine) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := range 30 {
		id := fmt.Sprintf("v%d", i)
		v, err := e.Viewer(context.Background(), id)
		if err != nil {
			out[id] = err.Error()
			continue
		}
		v.Aliases = append(v.Aliases, v.ID)
		slices.Sort(v.Aliases)
		v.ID, v.Name = "", "" // the name is the latest item's, by arrival
		b, _ := json.MarshalIndent(v, "", " ")
		out[id] = string(b)
	}
	return out
}

// The same history imported in any order, in batches of any size and with repeats,
// leaves every profile the same: figures, windows, tags, RFM, recent events. Every
// window is on event time, so late and backfilled events land where they belong.
func TestImportOrderDoesNotChangeProfiles(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		items := randomHistory(rng, 400)
		clk := &clock{t: t0}
		first := newEngine(t, nil, clk)
		importJSON(t, first, "["+strings.Join(items, ",")+"]")
		first.Sweep()
		want := views(t, first)

		shuffled := slices.Clone(items)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		second := newEngine(t, nil, clk)
		importInBatches(t, second, rng, shuffled, true)
		second.Sweep()
		got := views(t, second)
		for id, w := range want {
			if got[id] != w {
				t.Errorf("seed %d, viewer %s: in order\n%s\nshuffled\n%s", seed, id, w, got[id])
				break
			}
		}
	}
}

// A consent answer imported after a newer one does not overturn it, and the export
// says when the answer that holds was given.
func TestOlderConsentAnswerDoesNotOverturnNewer(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	newer := t0.Add(-time.Hour).UnixMilli()
	importJSON(t, e, fmt.Sprintf(`[{"id":"c2","type":"consent","viewer":"v","at":%d,"messages":false}]`, newer))
	importJSON(t, e, fmt.Sprintf(`[{"id":"c1","type":"consent","viewer":"v","at":%d,"messages":true}]`, newer-dayMs))
	if c := viewer(t, e, "v").Consent; c == nil || *c {
		t.Fatalf("consent = %v, want the newer answer (false)", c)
	}
	x, err := e.Export(context.Background(), "v")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(x)
	if want := fmt.Sprintf(`"consent_at":%d`, newer); !strings.Contains(string(raw), want) {
		t.Fatalf("export %s lacks %s", raw, want)
	}
}

// An order naming a customer id known under one profile and an e-mail known under
// another merges the two: each key has one owner, before and after a restart.
func TestOrderLinkingTwoOwnersMergesThem(t *testing.T) {
	path := t.TempDir() + "/segment.db"
	store := openStore(t, path)
	clk := &clock{t: t0}
	e := newEngine(t, store, clk)
	importJSON(t, e, `[
	 {"id":"a","type":"order","viewer":"ownerA","at":"2026-06-01T10:00:00Z","order_id":"oa","total":"20.00","customer":{"id":"CA"}},
	 {"id":"b","type":"order","viewer":"ownerB","at":"2026-06-02T10:00:00Z","order_id":"ob","total":"7.00","customer":{"email":"b@b.io"}},
	 {"id":"c","type":"order","viewer":"g_new","at":"2026-06-06T10:00:00Z","order_id":"oc","total":"3.00","customer":{"id":"CA","email":"b@b.io"}}]`)
	check := func(e *Engine, when string) {
		t.Helper()
		want := viewer(t, e, "ownerA")
		for _, id := range []string{"ownerB", "g_new", "customer:CA", "email:b@b.io"} {
			if v := viewer(t, e, id); v.ID != want.ID {
				t.Errorf("%s: %s leads to %s, ownerA to %s", when, id, v.ID, want.ID)
			}
		}
		if want.Orders != 3 || want.Spend.String() != "30.00" {
			t.Errorf("%s: the merged profile has %d orders, %s spent; want 3 and 30.00", when, want.Orders, want.Spend)
		}
		if n := e.Count(); n != 1 {
			t.Errorf("%s: %d profiles, want 1", when, n)
		}
	}
	check(e, "before a restart")
	e, _ = restart(t, e, store, path, clk)
	check(e, "after a restart")
}

// A viewer in a room's chat before its live begins is in the live from its start: the
// session is counted, the presence goes on in the live and a leave during the live
// ends it. Its time in the room before the live still counts as before. A viewer of
// another room is not moved.
func TestLiveStartTakesInViewersWaitingInChat(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	join := func(viewer, room string, at time.Time) {
		x := ev(event.Join, viewer, at)
		x.Room = room
		e.Apply(x)
	}
	join("w", "r1", t0)
	join("other", "r2", t0)
	start := t0.Add(5 * time.Minute)
	e.Apply(event.Event{ID: "ls", Type: event.LiveStart, Room: "r1", Live: "L1", Viewer: "host", Role: event.RoleHost, At: start})
	if got := e.PresentIn("L1"); !slices.Equal(got, []string{"w"}) {
		t.Fatalf("present in L1: %v, want [w]", got)
	}
	leave := ev(event.Leave, "w", start.Add(10*time.Minute))
	leave.Room, leave.Live = "r1", "L1"
	clk.Add(15 * time.Minute)
	e.Apply(leave)
	v := viewer(t, e, "w")
	if v.Sessions != 1 || v.WatchSeconds != 900 || len(v.LiveSessions) != 1 || v.LiveSessions[0].Live != "L1" ||
		v.LiveSessions[0].WatchSeconds != 600 || v.LiveSessions[0].Watching {
		t.Fatalf("sessions %d, watch %d s, live sessions %+v; want 1 session of L1 with 600 s, 900 s in all, none open",
			v.Sessions, v.WatchSeconds, v.LiveSessions)
	}
	if o := viewer(t, e, "other"); o.Sessions != 0 || len(o.LiveSessions) != 0 {
		t.Fatalf("a viewer of another room was moved: %+v", o.LiveSessions)
	}
}

// Erasing a buyer re-ranks the others soon after, not at the next minute's sweep: their
// RFM scores were ranked with the erased one's orders.
func TestEraseOfBuyerReranks(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0}) // its sweep runs by itself once a day only
	importJSON(t, e, "["+orderJSON("a", "a", 3, "100.00", "shoes")+","+orderJSON("b", "b", 3, "50.00", "shoes")+","+
		orderJSON("c", "c", 3, "10.00", "shoes")+"]")
	select {
	case <-e.refresh: // the import's request: the sweep below does it
	default:
	}
	e.Sweep()
	if m := viewer(t, e, "b").RFM.M; m != 2 {
		t.Fatalf("b's M = %d before, want 2 (one of three buyers spent less)", m)
	}
	if err := e.Erase(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for viewer(t, e, "b").RFM.M != 3 { // one of two buyers spent less
		if time.Now().After(deadline) {
			t.Fatalf("b's M still %d after the erasure", viewer(t, e, "b").RFM.M)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A restart ends every presence (the connections ended with the process), counted up
// to its last event: a live starting in the room later does not take in a viewer who
// is gone, nor prompt an agent about them.
func TestRestartEndsPresences(t *testing.T) {
	path := t.TempDir() + "/segment.db"
	store := openStore(t, path)
	clk := &clock{t: t0}
	e := newEngine(t, store, clk)
	e.Apply(ev(event.Join, "w", t0)) // in r1's chat, no live
	clk.Add(time.Minute)
	e, _ = restart(t, e, store, path, clk)
	start := t0.Add(90 * time.Minute)
	clk.Add(89 * time.Minute)
	e.Apply(event.Event{ID: "ls", Type: event.LiveStart, Room: "r1", Live: "L1", Viewer: "host", Role: event.RoleHost, At: start})
	if got := e.PresentIn("L1"); len(got) != 0 {
		t.Fatalf("present in L1 after a restart: %v", got)
	}
	if v := viewer(t, e, "w"); v.Sessions != 0 || v.WatchSeconds != 0 || len(v.LiveSessions) != 0 {
		t.Fatalf("the gone viewer has %d sessions, %d s watched, lives %+v", v.Sessions, v.WatchSeconds, v.LiveSessions)
	}
}

// An answer recorded now (an agent's) is not hidden by one imported with a time ahead
// of the clock: answers are stamped no later than when they are applied.
func TestConsentNowAfterAnAnswerDatedAhead(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	importJSON(t, e, fmt.Sprintf(`[{"id":"c1","type":"consent","viewer":"v","at":%d,"messages":true}]`, t0.Add(3*time.Hour).UnixMilli()))
	importJSON(t, e, fmt.Sprintf(`[{"id":"c2","type":"consent","viewer":"v","at":%d,"messages":false}]`, t0.UnixMilli()))
	if c := viewer(t, e, "v").Consent; c == nil || *c {
		t.Fatalf("consent = %v, want the answer recorded now (false)", c)
	}
}

// A line of a CSV order that is refused refuses the whole order: imported without it,
// the order id would be taken and a re-run of the fixed file could not add the line.
func TestCSVOrderWithARefusedLine(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	bad := "id,type,viewer,at,order_id,total,sku,category,price,quantity\n" +
		"k1,order,c3,2026-06-01T00:00:00Z,o9,20,s1,hats,10,1\n" +
		"k1,order,c3,2026-06-01T00:00:00Z,o9,20,s2,bags,big,10,1\n" +
		"k1,order,c3,2026-06-01T00:00:00Z,o9,20,s3,caps,10,1\n" +
		"k2,like,c3,2026-06-01T00:00:00Z,,,,,,\n"
	for run, body := range []string{bad, strings.Replace(bad, "bags,big", "bags", 1)} {
		cr, err := NewCSVReader(strings.NewReader(body), t0)
		if err != nil {
			t.Fatal(err)
		}
		items, errs, _ := cr.Next(10)
		res, err := e.Import(context.Background(), items, errs)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 && (res.Accepted != 1 || len(res.Errors) != 3) {
			t.Fatalf("the bad file: %+v, want the like accepted and rows 0-2 refused", res)
		}
	}
	if v := viewer(t, e, "c3"); v.Orders != 1 || len(v.Bought) != 3 {
		t.Fatalf("after the fixed file: %d orders, bought %+v; want the order with its 3 lines", v.Orders, v.Bought)
	}
}

// One live attended under two ids that an order then merges is one session, with the
// watch time of both.
func TestMergeKeepsOneSessionOfALiveUnderTwoIds(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	importJSON(t, e, `[
	 {"id":"w1","type":"watch","viewer":"g","at":"2026-06-10T10:10:00Z","room":"r1","live":"L","seconds":600},
	 {"id":"w2","type":"watch","viewer":"c","at":"2026-06-10T10:20:00Z","room":"r1","live":"L","seconds":300},
	 {"id":"a","type":"order","viewer":"c","at":"2026-06-10T11:00:00Z","order_id":"oa","total":"20.00","customer":{"id":"CA"}},
	 {"id":"b","type":"order","viewer":"g","at":"2026-06-10T11:05:00Z","order_id":"ob","total":"20.00","customer":{"id":"CA"}}]`)
	v := viewer(t, e, "c")
	if v.Sessions != 1 || v.Windows.D30.Sessions != 1 || len(v.LiveSessions) != 1 || v.LiveSessions[0].WatchSeconds != 900 {
		t.Fatalf("sessions %d (30 days: %d), live sessions %+v; want 1 session of L with 900 s",
			v.Sessions, v.Windows.D30.Sessions, v.LiveSessions)
	}
}

// A viewer in chat across a live's end (the host's stream dropped and came back under
// a new live id) is in the next live too; a player alone does not outlast its live.
func TestChatPresenceOutlastsALive(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	live := func(typ event.Type, id string, at time.Time) {
		e.Apply(event.Event{ID: "host-" + string(typ) + id, Type: typ, Room: "r1", Live: id, Viewer: "host", Role: event.RoleHost, At: at})
	}
	in := func(typ event.Type, viewer, liveID string, at time.Time) {
		x := ev(typ, viewer, at)
		x.Live = liveID
		e.Apply(x)
	}
	in(event.Join, "chat", "", t0) // waiting in chat
	s1 := t0.Add(time.Minute)
	live(event.LiveStart, "L1", s1)
	in(event.WatchStart, "chat", "L1", s1.Add(time.Second)) // and its player
	in(event.WatchStart, "player", "L1", s1.Add(time.Second))
	in(event.Join, "closed", "L1", s1.Add(time.Second)) // chat and a player it closes early
	in(event.WatchStart, "closed", "L1", s1.Add(time.Second))
	in(event.WatchStop, "closed", "L1", s1.Add(5*time.Minute))
	live(event.LiveEnd, "L1", s1.Add(10*time.Minute))
	in(event.WatchStop, "chat", "L1", s1.Add(10*time.Minute)) // the players stop after the end
	in(event.WatchStop, "player", "L1", s1.Add(10*time.Minute))
	s2 := s1.Add(12 * time.Minute)
	live(event.LiveStart, "L2", s2)
	got := e.PresentIn("L2")
	slices.Sort(got)
	if !slices.Equal(got, []string{"chat", "closed"}) {
		t.Fatalf("present in L2: %v, want [chat closed]", got)
	}
	clk.t = s2.Add(30 * time.Minute)
	in(event.Leave, "chat", "L2", clk.t)
	v := viewer(t, e, "chat")
	if v.Sessions != 2 || len(v.LiveSessions) != 2 || v.LiveSessions[0].WatchSeconds != 1800 || v.LiveSessions[1].WatchSeconds != 600 {
		t.Fatalf("sessions %d, live sessions %+v; want L2 with 1800 s and L1 with 600 s", v.Sessions, v.LiveSessions)
	}
	if v.WatchSeconds != 60+600+120+1800 { // before L1, L1, between the lives, L2
		t.Fatalf("watch %d s in all, want %d", v.WatchSeconds, 60+600+120+1800)
	}
	if p := viewer(t, e, "player"); p.Sessions != 1 || len(p.LiveSessions) != 1 {
		t.Fatalf("the player-only viewer: %d sessions, %+v", p.Sessions, p.LiveSessions)
	}
}

// Chat learns of a live's end a little after segment: a leave in that gap carries the
// ended live's id (or chat's own). It still ends the presence that went on in the
// room, so the room's next live does not take in a viewer who left.
func TestLeaveStampedWithAnEndedLive(t *testing.T) {
	for _, stamp := range []string{"L1", "r1-chat-made"} {
		clk := &clock{t: t0}
		e := newEngine(t, nil, clk)
		host := func(typ event.Type, live string, at time.Time) {
			e.Apply(event.Event{ID: string(typ) + live, Type: typ, Room: "r1", Live: live, Viewer: "host", Role: event.RoleHost, At: at})
		}
		host(event.LiveStart, "L1", t0)
		join := ev(event.Join, "w", t0.Add(time.Minute))
		join.Live = "L1"
		e.Apply(join)
		host(event.LiveEnd, "L1", t0.Add(10*time.Minute))
		leave := ev(event.Leave, "w", t0.Add(10*time.Minute+time.Second))
		leave.Live = stamp
		e.Apply(leave)
		clk.Add(90 * time.Minute)
		host(event.LiveStart, "L2", clk.Now())
		if got := e.PresentIn("L2"); len(got) != 0 {
			t.Fatalf("leave stamped %q: present in L2 %v", stamp, got)
		}
		if v := viewer(t, e, "w"); v.Sessions != 1 || v.WatchSeconds > 600 {
			t.Fatalf("leave stamped %q: %d sessions, %d s watched", stamp, v.Sessions, v.WatchSeconds)
		}
	}
}

// Two ids waiting in a room's chat that an order merges are one presence: the live's
// start takes in both connections, and their two leaves end it.
func TestMergedWaitingPresencesAreOne(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	for _, id := range []string{"c", "g"} {
		e.Apply(ev(event.Join, id, t0))
	}
	importJSON(t, e, `[
	 {"id":"a","type":"order","viewer":"c","at":"2026-06-15T11:00:00Z","order_id":"oa","total":"20.00","customer":{"id":"CA"}},
	 {"id":"b","type":"order","viewer":"g","at":"2026-06-15T11:05:00Z","order_id":"ob","total":"20.00","customer":{"id":"CA"}}]`)
	e.Apply(event.Event{ID: "ls1", Type: event.LiveStart, Room: "r1", Live: "L1", Viewer: "host", Role: event.RoleHost, At: t0.Add(time.Minute)})
	for i, id := range []string{"c", "g"} {
		l := ev(event.Leave, id, t0.Add(20*time.Minute))
		l.Live = "L1"
		e.Apply(l)
		if got := e.PresentIn("L1"); i == 0 && !slices.Equal(got, []string{"c"}) {
			t.Fatalf("present in L1 with one of two connections left: %v, want [c]", got)
		}
	}
	e.Apply(event.Event{ID: "ls2", Type: event.LiveStart, Room: "r1", Live: "L2", Viewer: "host", Role: event.RoleHost, At: t0.Add(30 * time.Minute)})
	if got := e.PresentIn("L2"); len(got) != 0 {
		t.Fatalf("present in L2 after both left: %v", got)
	}
	if v := viewer(t, e, "c"); v.Sessions != 1 || len(v.LiveSessions) != 1 || v.LiveSessions[0].WatchSeconds != 1140 {
		t.Fatalf("%d sessions, lives %+v; want L1 once with 1140 s", v.Sessions, v.LiveSessions)
	}
}

// A comment between two lives keeps the viewer's presence in the room alive: the sweep
// does not end it as a vanished client's, and the next live takes the viewer in.
func TestChatBetweenLivesKeepsThePresence(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	e.Apply(ev(event.Join, "w", t0)) // waiting, no live
	clk.Add(90 * time.Minute)
	e.Apply(ev(event.Danmaku, "w", clk.Now()))
	clk.Add(90 * time.Minute) // 3 h since the join, 1.5 h since the comment
	e.Sweep()
	e.Apply(event.Event{ID: "ls", Type: event.LiveStart, Room: "r1", Live: "L1", Viewer: "host", Role: event.RoleHost, At: clk.Now()})
	if got := e.PresentIn("L1"); !slices.Equal(got, []string{"w"}) {
		t.Fatalf("present in L1: %v, want [w]", got)
	}
}
