package segment

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Dormant and churned come from the clock alone: the sweep changes them with no event.
func TestSweepMovesIdleViewersOnTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.SweepInterval = time.Hour
		cfg.FlushInterval = time.Minute
		cfg.Shards = 1
		e, err := New(cfg, Deps{Store: NewMemoryStore(), Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		q := event.NewQueue(64)
		e.Subscribe(q, event.TagChange)
		start := time.Now()
		for _, x := range session("v", "L1", start, 15*time.Minute, 0) {
			e.Apply(x)
		}
		for _, ok := q.TryNext(); ok; _, ok = q.TryNext() {
		}

		changed := func() map[string]event.TagInfo {
			synctest.Wait()
			out := map[string]event.TagInfo{}
			for x, ok := q.TryNext(); ok; x, ok = q.TryNext() {
				out[x.Tag.Dimension] = *x.Tag
			}
			return out
		}
		// 30 days and 15 minutes later: not dormant yet (idle must exceed 30 days).
		time.Sleep(30*24*time.Hour + 10*time.Minute)
		if c := changed(); c[DimActivity].To == Dormant {
			t.Fatalf("dormant too early: %+v", c)
		}
		// The first sweep past 30 days since the visit's end makes it dormant.
		time.Sleep(time.Hour)
		c := changed()
		if c[DimActivity].To != Dormant || c[DimLifecycle].To != Dormant || c[DimActivity].Cause != "" {
			t.Fatalf("after 30 days: %+v", c)
		}
		if v := viewer(t, e, "v"); v.TagsSince[DimActivity] != time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339) {
			t.Errorf("since %s, now %s", v.TagsSince[DimActivity], time.Now().UTC())
		}
		time.Sleep(60 * 24 * time.Hour)
		if c := changed(); c[DimActivity].To != Churned || c[DimActivity].From != Dormant {
			t.Fatalf("after 90 days: %+v", c)
		}
		// Coming back moves it at once, on the event.
		w := ev(event.Watch, "v", time.Now())
		w.Seconds = 60
		e.Apply(w)
		if c := changed(); c[DimActivity].To != Low || c[DimActivity].Cause != w.ID {
			t.Fatalf("on return: %+v", c)
		}
	})
}

// TestSweepYields: the sweep offers to yield before each shard it takes, in both its
// passes.
func TestSweepYields(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	var n atomic.Int64
	e.SetYield(func() { n.Add(1) })
	e.Apply(ev(event.Like, "v1", t0))
	e.Sweep()
	if want := int64(2 * testConfig().Shards); n.Load() != want {
		t.Fatalf("%d yields in a sweep, want %d", n.Load(), want)
	}
}

// TestSweepYieldBudget: a sweep stops yielding once it has waited its budget (5 s).
func TestSweepYieldBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEngine(t, nil, &clock{t: t0})
		var n atomic.Int64
		e.SetYield(func() { n.Add(1); time.Sleep(time.Second) })
		e.Apply(ev(event.Like, "v1", t0))
		start := time.Now()
		e.Sweep()
		if n.Load() != 5 || time.Since(start) != 5*time.Second {
			t.Fatalf("%d yields of 1 s over %d shards, %v waited; want 5 and 5s", n.Load(), testConfig().Shards, time.Since(start))
		}
	})
}

// TestImportRerankCarriesCause: the value changes of the sweep that re-ranks RFM after
// an import of old orders carry the import's newest order time as their cause, so the
// rules see old news.
func TestImportRerankCarriesCause(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	sub := event.NewQueue(1024)
	defer e.Subscribe(sub, event.TagChange)()
	importJSON(t, e, oldOrders())
	e.Sweep()
	newest := t0.Add(-200 * 24 * time.Hour)
	rerank := 0
	for c, ok := sub.TryNext(); ok; c, ok = sub.TryNext() {
		if c.Tag.CauseAt.IsZero() || c.Tag.CauseAt.After(newest) {
			t.Errorf("%s %s %s→%s caused at %v, want at most %v", c.Viewer, c.Tag.Dimension, c.Tag.From, c.Tag.To, c.Tag.CauseAt, newest)
		}
		if c.Tag.Cause == "" {
			rerank++
		}
	}
	if rerank == 0 {
		t.Fatal("the sweep re-ranked nobody: the test shows nothing")
	}
}

// A shop's order that is news (a webhook's, received now) imported with the history
// does not make the history's re-ranking news: the sweep's value changes cannot tell
// whose orders moved them, and carry the oldest cause. (In one import: the engine's
// own sweeper may run between two, see TestRerankCausesKeepTheOldest for that.)
func TestImportRerankStaysOldNewsBesideAWebhookOrder(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	sub := event.NewQueue(4096)
	defer e.Subscribe(sub, event.TagChange)()
	items, errs, err := DecodeJSON(strings.NewReader(oldOrders()), t0)
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	live := event.Event{ID: "shopify:webhook:w1", Type: event.Order, Viewer: "live-buyer", At: t0.Add(-time.Minute), Received: t0,
		Order: &event.OrderInfo{OrderID: "live-1", Total: "5.00", Currency: "USD"}}
	items = append(items, Item{Index: len(items), Event: live})
	if _, err := e.Import(context.Background(), items, nil); err != nil {
		t.Fatal(err)
	}
	e.Sweep()
	newest := t0.Add(-200 * 24 * time.Hour)
	rerank := 0
	for c, ok := sub.TryNext(); ok; c, ok = sub.TryNext() {
		if c.Tag.Dimension != DimValue || c.Tag.Cause != "" {
			continue // the live buyer's own change is its order's
		}
		rerank++
		if c.Tag.CauseAt.IsZero() || c.Tag.CauseAt.After(newest) {
			t.Errorf("%s value %s→%s caused at %v: news to the rules", c.Viewer, c.Tag.From, c.Tag.To, c.Tag.CauseAt)
		}
	}
	if rerank == 0 {
		t.Fatal("the sweep re-ranked nobody: the test shows nothing")
	}
}

// Imports noted between two sweeps give the oldest cause; a sweep forgets them only
// if none was noted while it ran (the sweep an import requested must still carry it).
func TestRerankCausesKeepTheOldest(t *testing.T) {
	var r rerankCauses
	news, old, older := t0, t0.Add(-200*24*time.Hour), t0.Add(-300*24*time.Hour)
	r.note(news)
	r.note(old)
	r.note(news)
	if got := r.cause(); !got.Equal(old) {
		t.Fatalf("cause %v, want the oldest, %v", got, old)
	}
	during := r.notesSoFar()
	r.note(older) // an import while the sweep ran
	r.clearUnless(during)
	if got := r.cause(); !got.Equal(older) {
		t.Fatalf("after a sweep during which an import came: cause %v, want %v kept", got, older)
	}
	r.clearUnless(r.notesSoFar())
	if got := r.cause(); !got.IsZero() {
		t.Fatalf("after a sweep with no import meanwhile: cause %v, want none", got)
	}
}

// TestImportDuringSweepKeepsCause: an import of old orders that lands while a sweep is
// ranking keeps its cause for the sweep it requested: no value change reaches the
// rules as news.
func TestImportDuringSweepKeepsCause(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	sub := event.NewQueue(4096)
	defer e.Subscribe(sub, event.TagChange)()
	pauses, at := 0, len(e.shards) // during the ranking, before its last shard
	e.SetYield(func() {
		if pauses++; pauses == at {
			importJSON(t, e, oldOrders())
		}
	})
	e.Sweep()
	e.SetYield(func() {})
	e.Sweep() // the one the import requested
	newest := t0.Add(-200 * 24 * time.Hour)
	rerank := 0
	for c, ok := sub.TryNext(); ok; c, ok = sub.TryNext() {
		if c.Tag.Dimension != DimValue {
			continue
		}
		if c.Tag.CauseAt.IsZero() || c.Tag.CauseAt.After(newest) {
			t.Errorf("%s value %s→%s caused at %v: news to the rules", c.Viewer, c.Tag.From, c.Tag.To, c.Tag.CauseAt)
		}
		if c.Tag.Cause == "" {
			rerank++
		}
	}
	if rerank == 0 {
		t.Fatal("no re-ranking happened: the test shows nothing")
	}
}

// oldOrders is an import of ten customers' orders of 200-209 days ago.
func oldOrders() string {
	var items []string
	for i := range 10 {
		items = append(items, orderJSON(fmt.Sprintf("o%d", i), fmt.Sprintf("c%d", i), 200+i, fmt.Sprintf("%d.00", 10*(i+1)), "shoes"))
	}
	return "[" + strings.Join(items, ",") + "]"
}
