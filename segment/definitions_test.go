package segment

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/rfm"
)

func drainTags(q *event.Queue) []event.TagInfo {
	var out []event.TagInfo
	for x, ok := q.TryNext(); ok; x, ok = q.TryNext() {
		if x.Tag != nil {
			out = append(out, *x.Tag)
		}
	}
	return out
}

// A tag-change event is emitted only for a real change: never one whose from and
// to are the same.
func TestNoTagChangeWithoutChange(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	q := event.NewQueue(64)
	defer e.Subscribe(q, event.TagChange)()
	e.Apply(ev(event.Like, "v", t0))
	for _, c := range drainTags(q) {
		if c.From == c.To {
			t.Errorf("tag change %s %q→%q: nothing changed", c.Dimension, c.From, c.To)
		}
	}
}

// liveOrder is a tap order event of viewer at at.
func liveOrder(viewer, orderID string, at time.Time, total string) event.Event {
	o := ev(event.Order, viewer, at)
	o.Order = &event.OrderInfo{OrderID: orderID, Total: total, Currency: "USD",
		Items: []event.Item{{SKU: "s-" + orderID, Category: "x", Price: total, Quantity: 1}}}
	return o
}

// A buyer already ranked who orders again between sweeps is scored against the last
// sweep's ranking; its own old value there is not a buyer strictly worse than it.
// a: one order of 20 ten days ago; b: three orders of 100 in all five days ago. a
// orders 20 more today: of the two buyers, b is strictly worse than a on recency only,
// so a scores R = 1+⌊5·1/2⌋ = 3, F = M = 1: About To Sleep, ordinary, as before.
func TestLiveScoreDoesNotCountItselfWorse(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	q := event.NewQueue(64)
	defer e.Subscribe(q, event.TagChange)()
	e.Apply(liveOrder("a", "a1", t0.Add(-10*24*time.Hour), "20"))
	for i, total := range []string{"30", "30", "40"} {
		e.Apply(liveOrder("b", fmt.Sprint("b", i), t0.Add(-5*24*time.Hour), total))
	}
	e.Sweep()
	drainTags(q)
	e.Apply(liveOrder("a", "a2", t0, "20"))
	want := RFM{R: 3, F: 1, M: 1, Segment: wordOf(rfm.AboutToSleep)}
	if got := viewer(t, e, "a").RFM; got != want {
		t.Errorf("rfm after a live order %d/%d/%d %s, want %d/%d/%d %s", got.R, got.F, got.M, got.Segment, want.R, want.F, want.M, want.Segment)
	}
	for _, c := range drainTags(q) {
		if c.Dimension == DimValue {
			t.Errorf("value %s→%s on the live order; the ranking says ordinary", c.From, c.To)
		}
	}
	// A second order the same day: a's recency is unchanged by it but still above the
	// ranked one; F = 3 ties b's (none strictly worse), M = 60 < 100: still 3/1/1.
	e.Apply(liveOrder("a", "a3", t0, "20"))
	if got := viewer(t, e, "a").RFM; got != want {
		t.Errorf("rfm after a second live order %d/%d/%d %s, want %d/%d/%d %s", got.R, got.F, got.M, got.Segment, want.R, want.F, want.M, want.Segment)
	}
	e.Sweep()
	if got := viewer(t, e, "a").RFM; got != want {
		t.Errorf("rfm after the sweep %+v, want %+v", got, want)
	}
}

// Orders sliding out of the year: loyal becomes repeat at the sweep, with an event.
func TestLoyalSlidesToRepeat(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	importJSON(t, e, orders("v", 1, 10, 20, 363))
	e.Sweep()
	if v := viewer(t, e, "v"); v.Tags[DimLifecycle] != Loyal {
		t.Fatalf("lifecycle %v", v.Tags[DimLifecycle])
	}
	q := event.NewQueue(64)
	defer e.Subscribe(q, event.TagChange)()
	clk.Add(2 * 24 * time.Hour)
	e.Sweep()
	var got []string
	for _, c := range drainTags(q) {
		got = append(got, c.Dimension+":"+c.From+"→"+c.To)
	}
	v := viewer(t, e, "v")
	if v.Tags[DimLifecycle] != Repeat || v.TagsSince[DimLifecycle] != clk.Now().Format(time.RFC3339Nano) || !slices.Contains(got, "lifecycle:loyal→repeat") {
		t.Errorf("after 2 days: %v since %v, changes %v", v.Tags[DimLifecycle], v.TagsSince[DimLifecycle], got)
	}
}

func TestHighAtItsThresholds(t *testing.T) {
	for _, c := range []struct {
		watch time.Duration
		likes int
		want  string
	}{{10 * time.Minute, 5, High}, {10*time.Minute - time.Second, 5, Medium}, {10 * time.Minute, 4, Medium}} {
		e := newEngine(t, nil, &clock{t: t0})
		for _, x := range sessions("v", 4, 1, c.watch, 0) {
			e.Apply(x)
		}
		for i := range c.likes {
			e.Apply(ev(event.Like, "v", t0.Add(-time.Duration(i+1)*time.Hour)))
		}
		e.Sweep()
		if v := viewer(t, e, "v"); v.Tags[DimActivity] != c.want {
			t.Errorf("%v watch, %d likes: %v, want %s (%s)", c.watch, c.likes, v.Tags[DimActivity], c.want, v.Reasons[DimActivity])
		}
	}
}
