package synth

import (
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Live traffic is visits: with one present viewer, every visit is a join, a watch
// start, interactions, a watch stop and a leave, in that order and in the room's live.
func TestLiveTrafficIsWholeVisits(t *testing.T) {
	g := New(100, time.Now(), 7)
	var ev event.Event
	for range 50 {
		g.Next(&ev) // history first: the live traffic goes on from it
	}
	g.Live(1, 1)
	want := event.Join
	visits, interactions := 0, map[event.Type]int{}
	viewer := ""
	for range 20_000 {
		g.Next(&ev)
		if ev.Room != "room-1" || ev.Live != "live-now-1" || ev.Role != event.RoleViewer || ev.At.IsZero() {
			t.Fatalf("event %+v: not a viewer's in the live room", ev)
		}
		switch want {
		case event.Join, event.WatchStart, event.Leave:
			if ev.Type != want {
				t.Fatalf("got %s, want %s", ev.Type, want)
			}
		default: // watching: interactions, or the watch's stop
			if ev.Type == event.Join || ev.Type == event.WatchStart || ev.Type == event.Leave {
				t.Fatalf("%s while watching", ev.Type)
			}
		}
		switch ev.Type {
		case event.Join:
			viewer, want = ev.Viewer, event.WatchStart
		case event.WatchStart:
			want = ""
		case event.WatchStop:
			want = event.Leave
		case event.Leave:
			visits++
			want = event.Join
		default:
			interactions[ev.Type]++
		}
		if ev.Viewer != viewer {
			t.Fatalf("%s by %s in %s's visit", ev.Type, ev.Viewer, viewer)
		}
	}
	// About 50 interactions a visit: 20,000 events hold a few hundred visits.
	if visits < 100 || visits > 1000 {
		t.Fatalf("%d visits in 20,000 events", visits)
	}
	for _, k := range []event.Type{event.Like, event.Danmaku, event.ProductClick, event.Gift, event.Order} {
		if interactions[k] == 0 {
			t.Fatalf("no %s among %v", k, interactions)
		}
	}
}

// No viewer is present twice at once, even when nearly the whole population is.
func TestLiveViewersPresentOnce(t *testing.T) {
	g := New(60, time.Now(), 3)
	g.Live(50, 4)
	present := map[string]bool{}
	var ev event.Event
	for range 50_000 {
		g.Next(&ev)
		switch ev.Type {
		case event.Join:
			if present[ev.Viewer] {
				t.Fatalf("%s joined while present", ev.Viewer)
			}
			present[ev.Viewer] = true
		case event.Leave:
			delete(present, ev.Viewer)
		default:
			if !present[ev.Viewer] {
				t.Fatalf("%s by %s, who is not present", ev.Type, ev.Viewer)
			}
		}
	}
	if len(present) > 50 {
		t.Fatalf("%d present, at most 50", len(present))
	}
}

// Event ids are made idBatch at a time in one string: the bench's generator shares the
// engine's heap, and its garbage would be collected on the engine's time.
func TestIDsAreMadeInBatches(t *testing.T) {
	g := New(10, time.Now(), 1)
	ids := make([]string, 0, 5*idBatch)
	var ev event.Event
	orders, runs := 0, 0
	allocs := testing.AllocsPerRun(4, func() {
		runs++
		for range idBatch {
			g.Next(&ev)
			ids = append(ids, ev.ID)
			if ev.Type == event.Order {
				orders++
			}
		}
	})
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = false
	}
	// The batch's string and its growth, not one per id; and an order's id and info.
	if perOrder := 2 * float64(orders) / float64(runs); allocs > 2+perOrder {
		t.Fatalf("%.0f allocations per %d ids (%.0f of them for orders)", allocs, idBatch, perOrder)
	}
	for id := range seen {
		if seq, ok := SeqOf(id); !ok || seen[id] {
			t.Fatalf("id %q (sequence %d) does not parse back", id, seq)
		}
	}
	if len(seen) != 5*idBatch { // AllocsPerRun runs it once more to warm up
		t.Fatalf("%d distinct ids, want %d", len(seen), 5*idBatch)
	}
}

// Every order has an id of its own, in the history and in live traffic, and the
// orders of the generator's templates stay as they were.
func TestOrdersHaveIdsOfTheirOwn(t *testing.T) {
	g := New(100, time.Now(), 5)
	seen := map[string]bool{}
	var ev event.Event
	for i := range 100_000 {
		if i == 50_000 {
			g.Live(50, 2)
		}
		g.Next(&ev)
		if ev.Type != event.Order {
			continue
		}
		if id := ev.Order.OrderID; id == "" || seen[id] {
			t.Fatalf("order %q: empty or made twice", id)
		}
		seen[ev.Order.OrderID] = true
		if ev.Order.Total == "" || len(ev.Order.Items) != 1 {
			t.Fatalf("order %+v: no total or items", ev.Order)
		}
	}
	for _, o := range g.orders {
		if o.OrderID != "" {
			t.Fatalf("a template order got an id: %q", o.OrderID)
		}
	}
	if len(seen) < 500 {
		t.Fatalf("%d orders in 100,000 events", len(seen))
	}
}

// Viewers carry a display name of their own, and comments vary, as a real room's do:
// the engine keeps both (the name, the text among the recent events).
func TestNamesAndCommentsVary(t *testing.T) {
	g := New(1000, time.Now(), 9)
	names, texts := map[string]string{}, map[string]bool{}
	var ev event.Event
	for i := range 20_000 {
		if i == 10_000 {
			g.Live(100, 2)
		}
		g.Next(&ev)
		if ev.Name == "" {
			t.Fatalf("event %+v: no name", ev)
		}
		if n, ok := names[ev.Viewer]; ok && n != ev.Name {
			t.Fatalf("%s named %q and %q", ev.Viewer, n, ev.Name)
		}
		names[ev.Viewer] = ev.Name
		if ev.Type == event.Danmaku {
			texts[ev.Text] = true
		}
	}
	distinct := map[string]bool{}
	for _, n := range names {
		distinct[n] = true
	}
	if len(distinct) != len(names) || len(texts) < 1000 {
		t.Fatalf("%d names for %d viewers, %d distinct comments", len(distinct), len(names), len(texts))
	}
}
