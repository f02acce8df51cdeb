package segment

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// session is a viewer watching live from at for watch, commenting n times.
func session(viewer, live string, at time.Time, watch time.Duration, comments int) []event.Event {
	start := ev(event.WatchStart, viewer, at)
	start.Live = live
	out := []event.Event{start}
	for i := range comments {
		c := ev(event.Danmaku, viewer, at.Add(time.Duration(i+1)*time.Second))
		c.Live, c.Text = live, "hi"
		out = append(out, c)
	}
	stop := ev(event.WatchStop, viewer, at.Add(watch))
	stop.Live = live
	return append(out, stop)
}

// sessions is n sessions a day apart ending daysAgo days before t0.
func sessions(viewer string, n, daysAgo int, watch time.Duration, comments int) []event.Event {
	var out []event.Event
	for i := range n {
		at := t0.Add(-time.Duration(daysAgo+i) * 24 * time.Hour)
		out = append(out, session(viewer, fmt.Sprintf("live-%d", daysAgo+i), at, watch, comments)...)
	}
	return out
}

// orderJSON is an import item for one order daysAgo days before t0.
func orderJSON(id, viewer string, daysAgo int, total, category string) string {
	at := t0.Add(-time.Duration(daysAgo) * 24 * time.Hour).Format(time.RFC3339)
	return fmt.Sprintf(`{"id":%q,"type":"order","viewer":%q,"at":%q,"order_id":"o-%s","total":%q,"currency":"USD","items":[{"sku":"sku-%s","category":%q,"price":%q,"quantity":1}]}`,
		id, viewer, at, id, total, category, category, total)
}

func orders(viewer string, days ...int) string {
	var items []string
	for i, d := range days {
		items = append(items, orderJSON(fmt.Sprintf("%s-%d", viewer, i), viewer, d, "20.00", "shoes"))
	}
	return "[" + strings.Join(items, ",") + "]"
}

func TestTags(t *testing.T) {
	for _, c := range []struct {
		name                string
		events              []event.Event
		orders              string
		activity, lifecycle string
		value               string
		prefContains        string
	}{
		{name: "one session", events: sessions("v", 1, 1, 5*time.Minute, 0), activity: Low, lifecycle: NewViewer, value: "potential"},
		{name: "two sessions", events: sessions("v", 2, 1, 5*time.Minute, 0), activity: Medium, lifecycle: NewViewer, value: "potential"},
		{name: "one session with a comment", events: sessions("v", 1, 1, 5*time.Minute, 1), activity: Medium, lifecycle: NewViewer, value: "potential"},
		{name: "high", events: sessions("v", 4, 1, 12*time.Minute, 2), activity: High, lifecycle: NewViewer, value: "potential"},
		{name: "short watches are not high", events: sessions("v", 4, 1, 8*time.Minute, 2), activity: Medium, lifecycle: NewViewer, value: "potential"},
		{name: "too few interactions are not high", events: sessions("v", 4, 1, 12*time.Minute, 1), activity: Medium, lifecycle: NewViewer, value: "potential"},
		{name: "sessions outside the window", events: sessions("v", 4, 28, 12*time.Minute, 2), activity: Medium, lifecycle: NewViewer, value: "potential"},
		{name: "30 days idle is not dormant", events: sessions("v", 1, 30, 0, 0), activity: Low, lifecycle: NewViewer, value: "potential"},
		{name: "dormant", events: sessions("v", 1, 31, 5*time.Minute, 0), activity: Dormant, lifecycle: Dormant, value: "potential"},
		{name: "90 days idle is dormant", events: sessions("v", 1, 90, 0, 0), activity: Dormant, lifecycle: Dormant, value: "potential"},
		{name: "churned", events: sessions("v", 1, 91, 5*time.Minute, 0), activity: Churned, lifecycle: Churned, value: "potential"},
		{name: "first purchase", orders: orders("v", 2), activity: Low, lifecycle: FirstPurchase, value: "ordinary", prefContains: "shoes"},
		{name: "repeat", orders: orders("v", 2, 10), activity: Low, lifecycle: Repeat, value: "ordinary"},
		{name: "loyal", orders: orders("v", 2, 10, 20, 29), activity: Low, lifecycle: Loyal, value: "ordinary"},
		{name: "old orders do not make loyal", orders: orders("v", 2, 400, 500, 600), activity: Low, lifecycle: FirstPurchase, value: "ordinary"},
		{name: "an old order does not make repeat", orders: orders("v", 2, 400), activity: Low, lifecycle: FirstPurchase, value: "ordinary"},
		{name: "old orders do not make repeat of loyal", orders: orders("v", 2, 10, 400, 500), activity: Low, lifecycle: Repeat, value: "ordinary"},
		{name: "an order is a visit", orders: orders("v", 45), activity: Dormant, lifecycle: Dormant, value: "ordinary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, nil, &clock{t: t0})
			for _, x := range c.events {
				e.Apply(x)
			}
			if c.orders != "" {
				importJSON(t, e, c.orders)
			}
			e.Sweep()
			v := viewer(t, e, "v")
			got := []string{v.Tags[DimActivity].(string), v.Tags[DimLifecycle].(string), v.Tags[DimValue].(string)}
			want := []string{c.activity, c.lifecycle, c.value}
			if !slices.Equal(got, want) {
				t.Errorf("tags activity/lifecycle/value = %v, want %v; reasons %v", got, want, v.Reasons)
			}
			for _, d := range Dimensions {
				if v.Reasons[d] == "" {
					t.Errorf("no reason for %s", d)
				}
			}
			if c.prefContains != "" && !slices.Contains(v.Tags[DimPreference].([]string), c.prefContains) {
				t.Errorf("preference %v lacks %q", v.Tags[DimPreference], c.prefContains)
			}
		})
	}
}

func TestPreferenceTopCategoriesAndPriceBand(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	// The catalog: nine pinned products priced 10..90, and the order's own line at 75:
	// ten prices, terciles (nearest rank) 40 and 70.
	for i := 1; i <= 9; i++ {
		p := ev(event.Pin, "", t0)
		p.SKU, p.Category, p.Value = fmt.Sprintf("p%d", i), "misc", float64(i*10)
		e.Apply(p)
	}
	click := func(cat string, daysAgo int) {
		c := ev(event.ProductClick, "v", t0.Add(-time.Duration(daysAgo)*24*time.Hour))
		c.SKU, c.Category = "x", cat
		e.Apply(c)
	}
	click("shoes", 1)
	click("shoes", 2)
	click("shoes", 3)
	click("bags", 1)
	click("bags", 2)
	click("hats", 1)
	click("socks", 1)
	click("coats", 100) // outside the 90-day window
	click("coats", 100)
	click("coats", 100)
	importJSON(t, e, "["+orderJSON("o1", "v", 1, "75.00", "hats")+"]")
	e.Sweep()
	v := viewer(t, e, "v")
	want := []string{"shoes", "bags", "hats", PriceHigh}
	if got := v.Tags[DimPreference].([]string); !slices.Equal(got, want) {
		t.Fatalf("preference = %v, want %v (%s)", got, want, v.Reasons[DimPreference])
	}
	if !strings.Contains(v.Reasons[DimPreference], "shoes (3)") {
		t.Errorf("reason %q", v.Reasons[DimPreference])
	}
}

func TestTagChangeEventsAndSince(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	q := event.NewQueue(64)
	stop := e.SubscribeWithReasons(q, event.TagChange)
	defer stop()
	for _, x := range sessions("v", 1, 0, time.Minute, 0) {
		e.Apply(x)
	}
	got := map[string]event.TagInfo{}
	for x, ok := q.TryNext(); ok; x, ok = q.TryNext() {
		got[x.Tag.Dimension] = *x.Tag
	}
	if got[DimActivity].To != Low || got[DimLifecycle].To != NewViewer || got[DimActivity].Reason == "" || got[DimActivity].Cause == "" {
		t.Fatalf("first tag changes: %+v", got)
	}
	clk.Add(time.Hour)
	c := ev(event.Danmaku, "v", clk.Now())
	c.ID = "chat-1"
	e.Apply(c)
	x, _ := q.Next(context.Background())
	if x.Tag.Dimension != DimActivity || x.Tag.From != Low || x.Tag.To != Medium || x.Tag.Cause != "chat-1" {
		t.Fatalf("change on comment: %+v", x.Tag)
	}
	v := viewer(t, e, "v")
	if v.TagsSince[DimActivity] != clk.Now().Format(time.RFC3339) {
		t.Fatalf("since = %s, want %s", v.TagsSince[DimActivity], clk.Now())
	}
	// Without a subscriber that asks for reasons, a change carries none.
	stop()
	plain := event.NewQueue(64)
	defer e.Subscribe(plain, event.TagChange)()
	for _, x := range sessions("w", 1, 0, time.Minute, 0) {
		e.Apply(x)
	}
	if x, ok := plain.TryNext(); !ok || x.Tag.To == "" || x.Tag.Reason != "" {
		t.Fatalf("tag change without reasons asked for: %+v %v", x.Tag, ok)
	}
}

// tags_since is to the millisecond on the profile page, as its other times are (and
// the member list's since).
func TestTagsSinceToTheMillisecond(t *testing.T) {
	clk := &clock{t: t0.Add(123 * time.Millisecond)}
	e := newEngine(t, nil, clk)
	e.Apply(ev(event.Like, "v", clk.Now()))
	v := viewer(t, e, "v")
	if want := clk.Now().UTC().Format(time.RFC3339Nano); v.TagsSince[DimActivity] != want {
		t.Fatalf("tags_since %s, want %s", v.TagsSince[DimActivity], want)
	}
}
