package segment

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/rules"
)

// heldEngine is an engine on store (nil: a memory store) and clk whose imports are held in a
// rules' state file, and a queue subscribed to what it hands over. The state is
// closed when the test ends, unless the test closed it.
func heldEngine(t *testing.T, store Store, clk *clock) (*Engine, *rules.BoltState, *event.Queue) {
	t.Helper()
	e := newEngine(t, store, clk)
	st, err := rules.OpenBolt(filepath.Join(t.TempDir(), "rules.db"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.SetHolder(st, rules.StaleAfter)
	q := event.NewQueue(64)
	e.Subscribe(q)
	return e, st, q
}

// An import holds its events and tag changes in the holder (the rules' state) before
// it is answered; the last event it hands over names the hold, and the hold decodes to
// what was handed over, in its order, but for the tag changes caused by history,
// which the rules do not act on.
func TestImportHeldUntilReleased(t *testing.T) {
	e, st, q := heldEngine(t, nil, &clock{t: t0})
	body := `[{"id":"old","type":"like","viewer":"v0","at":"2026-06-15T10:00:00Z"},
	 {"id":"a","type":"like","viewer":"v1","at":"2026-06-15T11:30:00Z"},
	 {"id":"b","type":"order","viewer":"v2","at":"2026-06-15T11:30:00Z","order_id":"o1","total":"10.00","currency":"EUR"}]`
	if _, err := e.ImportJSON(context.Background(), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	for ev, ok := q.TryNext(); ok; ev, ok = q.TryNext() {
		got = append(got, ev)
	}
	held, err := st.Held(context.Background())
	if err != nil || len(held) != 1 {
		t.Fatalf("holds %d (%v), want 1", len(held), err)
	}
	if got[0].ID != "old" || got[1].Type != event.TagChange {
		t.Fatalf("handed over first %+v, %+v; want old and its tag change", got[0], got[1])
	}
	for got[1].Type == event.TagChange {
		got = append(got[:1], got[2:]...) // the changes history caused: not held
	}
	if len(got) < 3 || got[len(got)-1].Held != held[0].Seq || got[0].Held != 0 {
		t.Fatalf("handed over %d events, the last naming hold %d (want %d)", len(got), got[len(got)-1].Held, held[0].Seq)
	}
	evs, ids, err := HeldEvents(held[0].Seq, held[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, " ") != "old a b" || len(evs) != len(got) {
		t.Fatalf("the hold: ids %v, %d events; want old a b and the %d handed over less old's changes", ids, len(evs), len(got))
	}
	for i := range evs {
		if evs[i].ID != got[i].ID || evs[i].Type != got[i].Type || evs[i].Held != got[i].Held ||
			(evs[i].Tag == nil) != (got[i].Tag == nil) || evs[i].Tag != nil && *evs[i].Tag != *got[i].Tag {
			t.Errorf("held event %d: %+v, handed over %+v", i, evs[i], got[i])
		}
	}
	if ok, err := e.Imported(context.Background(), ids); !ok || err != nil {
		t.Errorf("the hold's import not found committed (%v)", err)
	}
	if ok, _ := e.Imported(context.Background(), []string{"a", "never"}); ok {
		t.Error("an import never committed found committed")
	}

	// An item with no JSON as sent (a shop's webhook order) is held as its event,
	// with the time it was received.
	received := t0.Add(-time.Minute)
	webhook := event.Event{ID: "shop:1", Type: event.Order, Viewer: "v3", At: t0.Add(-3 * time.Hour), Received: received,
		Order: &event.OrderInfo{OrderID: "shop-o1", Total: "5.00", Currency: "EUR"}}
	if _, err := e.Import(context.Background(), []Item{{Event: webhook}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ok := q.TryNext(); ok; _, ok = q.TryNext() {
	}
	if held, err = st.Held(context.Background()); err != nil || len(held) != 2 {
		t.Fatalf("holds %d (%v), want 2", len(held), err)
	}
	evs, ids, err = HeldEvents(held[1].Seq, held[1].Data)
	if err != nil || len(ids) != 1 || ids[0] != "shop:1" || !evs[0].Received.Equal(received) || evs[0].Order == nil ||
		evs[0].Order.Total != "5.00" || evs[len(evs)-1].Held != held[1].Seq {
		t.Fatalf("the webhook's hold: %+v %v (%v)", evs, ids, err)
	}

	// A holder that fails does not fail the import: its events go over unheld.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ImportJSON(context.Background(), strings.NewReader(`[{"id":"c","type":"like","viewer":"v1","at":"2026-06-15T11:00:00Z"}]`)); err != nil {
		t.Fatalf("an import with the holder failing: %v", err)
	}
	if ev, ok := q.TryNext(); !ok || ev.ID != "c" || ev.Held != 0 {
		t.Errorf("handed over %+v (%v), want c unheld", ev, ok)
	}
}

// FuzzHeldEvents: any bytes in the rules' file where a hold was (a damaged disk) are
// refused or decoded, never a panic; what decodes names the hold on its last event
// and gives an id per imported event.
func FuzzHeldEvents(f *testing.F) {
	f.Add([]byte(`[{"raw":{"id":"a","type":"like","viewer":"v1","at":"2026-06-15T11:30:00Z"},` +
		`"changes":[{"id":"a/activity","type":"tag_change","at":"2026-06-15T11:30:00Z","viewer":"v1","tag":{"dimension":"activity","from":"","to":"low","reason":""}}]},` +
		`{"event":{"id":"shop:1","type":"order","at":"2026-06-15T11:30:00Z","viewer":"v2","order":{"order_id":"o","total":"5.00","currency":"EUR"}},"received":"2026-06-15T11:40:00Z"}]`))
	f.Add([]byte(`[{}]`))
	f.Add([]byte(`[{"raw":"x"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, ids, err := HeldEvents(7, data)
		if err != nil {
			return
		}
		if len(evs) > 0 && evs[len(evs)-1].Held != 7 {
			t.Fatalf("the last event names hold %d, want 7", evs[len(evs)-1].Held)
		}
		imported := 0
		for _, ev := range evs {
			if ev.Held != 0 && ev.Held != 7 {
				t.Fatalf("an event names hold %d", ev.Held)
			}
			if ev.Type != event.TagChange || ev.Tag == nil {
				imported++
			}
		}
		if len(ids) > imported {
			t.Fatalf("%d ids for %d events", len(ids), imported)
		}
	})
}

// An erased viewer leaves nothing in the holds: a hold that names it goes whole.
func TestErasureDropsTheViewersHolds(t *testing.T) {
	ctx := context.Background()
	e, st, _ := heldEngine(t, nil, &clock{t: t0})
	importJSON(t, e, `[{"id":"a","type":"order","viewer":"email:Ann@Example.com","name":"Ann Secret","at":"2026-06-15T11:59:00Z","order_id":"o1","total":"10.00"}]`)
	importJSON(t, e, `[{"id":"b","type":"like","viewer":"v2","at":"2026-06-15T11:59:00Z"}]`)
	if err := st.Erase(ctx, "email:ann@example.com"); err != nil {
		t.Fatal(err)
	}
	held, err := st.Held(ctx)
	if err != nil || len(held) != 1 || strings.Contains(string(held[0].Data), "Ann") {
		t.Fatalf("after the erasure, holds %d (%v): %+v", len(held), err, held)
	}
}

// An import whose commit fails is answered 503, but its events stay applied (a later
// commit stores them, a retry is answered as duplicates): the subscribers get them at
// once, held, as after a commit that worked.
func TestImportWhoseCommitFailedIsHandedOver(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{MemoryStore: NewMemoryStore()}
	e, _, q := heldEngine(t, store, &clock{t: t0})
	body := `[{"id":"a","type":"order","viewer":"v1","at":"2026-06-15T11:59:00Z","order_id":"o1","total":"10.00"}]`
	store.fail.Store(true)
	if _, err := e.ImportJSON(ctx, strings.NewReader(body)); err == nil {
		t.Fatal("an import on a failing store was answered")
	}
	var got []event.Event
	for ev, ok := q.TryNext(); ok; ev, ok = q.TryNext() {
		got = append(got, ev)
	}
	if len(got) == 0 || got[0].ID != "a" || got[len(got)-1].Held == 0 {
		t.Fatalf("handed over %+v, want a, its changes, the last naming the hold", got)
	}
	store.fail.Store(false)
	if res := importJSON(t, e, body); res.Duplicates != 1 || q.Len() != 0 {
		t.Errorf("the retry: %+v, %d handed over again", res, q.Len())
	}
}

// A sweep's tag changes (a viewer gone dormant on the clock: no event caused them) are
// held too, the last one handed over naming the hold, which decodes to them.
func TestSweepChangesHeld(t *testing.T) {
	clk := &clock{t: t0}
	e, st, q := heldEngine(t, nil, clk)
	e.Apply(event.Event{ID: "w", Type: event.Watch, Viewer: "v", At: t0, Seconds: 60})
	for _, ok := q.TryNext(); ok; _, ok = q.TryNext() {
	}
	clk.Add(40 * 24 * time.Hour)
	e.Sweep()
	var got []event.Event
	for ev, ok := q.TryNext(); ok; ev, ok = q.TryNext() {
		got = append(got, ev)
	}
	held, err := st.Held(context.Background())
	if err != nil || len(held) != 1 || len(got) == 0 || got[len(got)-1].Held != held[0].Seq {
		t.Fatalf("handed over %+v, holds %+v (%v): want the dormant changes, the last naming the one hold", got, held, err)
	}
	evs, ids, err := HeldEvents(held[0].Seq, held[0].Data)
	if err != nil || len(ids) != 0 || len(evs) != len(got) || evs[0].Tag == nil || evs[0].Tag.To != Dormant {
		t.Fatalf("the hold: %+v, ids %v (%v)", evs, ids, err)
	}
	if ok, err := e.Imported(context.Background(), ids); !ok || err != nil {
		t.Errorf("a sweep's hold is not handed over again (%v)", err)
	}
}
