package segment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestOpenSetFollowsOpenSpans drives random presences, orders that merge profiles,
// erasures, sweeps, a live's end and restarts, and checks after every step that each
// shard's set of open presences is exactly its profiles with an open span: the sweep
// and a live's end only visit that set, so a profile left out would never be closed.
func TestOpenSetFollowsOpenSpans(t *testing.T) {
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 3))
		path := filepath.Join(t.TempDir(), "segment.db")
		store := openStore(t, path)
		clk := &clock{t: t0}
		e := newEngine(t, store, clk)
		for step := range 1500 {
			v, live := fmt.Sprintf("v%d", r.IntN(12)), fmt.Sprintf("L%d", r.IntN(3))
			presence := func(typ event.Type) event.Event {
				x := ev(typ, v, clk.Now())
				x.Room = fmt.Sprintf("r%d", r.IntN(2))
				if r.IntN(2) == 0 {
					x.Live = live
				}
				return x
			}
			var what string
			switch k := r.IntN(100); {
			case k < 30:
				what = "watch start or join"
				e.Apply(presence([]event.Type{event.WatchStart, event.Join}[r.IntN(2)]))
			case k < 50:
				what = "watch stop or leave"
				e.Apply(presence([]event.Type{event.WatchStop, event.Leave}[r.IntN(2)]))
			case k < 60:
				what = "imported order (merges)"
				importJSON(t, e, fmt.Sprintf(`[{"id":"o%d","type":"order","viewer":%q,"at":%q,"order_id":"s%d","total":"3","customer":{"id":"c%d"}}]`,
					step, v, clk.Now().Format(time.RFC3339), step, r.IntN(4)))
			case k < 65:
				what = "live order (merges)"
				x := ev(event.Order, v, clk.Now())
				x.Order = &event.OrderInfo{OrderID: fmt.Sprintf("lo%d", step), Total: "2", Customer: &event.Person{ID: fmt.Sprintf("c%d", r.IntN(4))}}
				e.Apply(x)
			case k < 68:
				what = "erase"
				e.Erase(context.Background(), v)
			case k < 74:
				what = "sweep"
				clk.Add(time.Duration(r.IntN(40)) * time.Minute)
				e.Sweep()
			case k < 78:
				what = "live end"
				x := ev(event.LiveEnd, "", clk.Now())
				x.Live = live
				e.Apply(x)
			case k < 80:
				what = "restart"
				e, store = restart(t, e, store, path, clk)
			default:
				what = "like"
				x := ev(event.Like, v, clk.Now())
				x.Live = live
				e.Apply(x)
			}
			clk.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			checkOpenSet(t, e, fmt.Sprintf("seed %d, step %d (%s)", seed, step, what))
		}
	}
}

func checkOpenSet(t *testing.T, e *Engine, at string) {
	t.Helper()
	for i, sh := range e.shards {
		sh.mu.Lock()
		open := 0
		for p := range sh.profiles.all() {
			if len(p.Open.get()) == 0 {
				continue
			}
			open++
			if _, ok := sh.open[p]; !ok {
				sh.mu.Unlock()
				t.Fatalf("%s: shard %d: %q has %d open spans but is not in the open set", at, i, p.ID, len(p.Open.get()))
			}
		}
		n := len(sh.open)
		sh.mu.Unlock()
		if n != open { // the set holds only profiles of the table with open spans
			t.Fatalf("%s: shard %d: open set of %d, but %d profiles with open spans", at, i, n, open)
		}
	}
}
