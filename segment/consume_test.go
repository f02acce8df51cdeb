package segment

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/liveroom/liveroom/event"
)

// The tap's consumer takes events in batches and warms the cache ahead of them; it
// still applies every event once, in the tap's order, and on Close applies what was
// queued before it.
func TestTapEventsAppliedInOrderAcrossBatches(t *testing.T) {
	tap := &checkedTap{Queue: event.NewQueue(1 << 12)}
	// Published before the engine exists: five full blocks, taken where they lie
	// (SwapFull), then seven taken as a batch.
	const n = 5*event.BlockLen + 7
	for i := range n {
		x := ev(event.Danmaku, fmt.Sprintf("v%d", i%3), t0) // one time: order of arrival decides
		x.Text = fmt.Sprintf("m%d", i)
		if !tap.Publish(x) {
			t.Fatal("tap full")
		}
	}
	e := tapEngine(t, tap, (&clock{t: t0}).Now)
	deadline := time.Now().Add(10 * time.Second)
	for e.Consumed() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := e.Consumed(); got != n {
		t.Fatalf("consumed %d of %d", got, n)
	}
	if got := tap.swaps.Load(); got != 5 {
		t.Errorf("%d blocks taken whole, want 5", got)
	}
	if got := tap.uncleared.Load(); got != 0 {
		t.Errorf("%d blocks handed back to the tap with events in them", got)
	}
	for v := range 3 {
		p := viewer(t, e, fmt.Sprintf("v%d", v))
		want := (n - v + 2) / 3
		if p.Comments != want {
			t.Errorf("v%d: %d comments, want %d", v, p.Comments, want)
		}
		// The recent events are the viewer's last, newest first.
		last := n - 1 - (n-1-v)%3
		if len(p.Recent) != maxRecent {
			t.Fatalf("v%d: %d recent events", v, len(p.Recent))
		}
		for i, r := range p.Recent {
			if want := fmt.Sprintf("m%d", last-3*i); r.Detail != want {
				t.Errorf("v%d recent %d: %q, want %q", v, i, r.Detail, want)
			}
		}
	}
}

// checkedTap counts the blocks the consumer takes whole, and those it hands back to
// the tap with events still in them (a spare chunk would keep their strings alive).
type checkedTap struct {
	*event.Queue
	calls, swaps, uncleared atomic.Int64
}

func (c *checkedTap) SwapFull(b **event.Block) bool {
	c.calls.Add(1)
	if *b != nil && slices.ContainsFunc((*b)[:], func(x event.Event) bool { return x != event.Event{} }) {
		c.uncleared.Add(1)
	}
	ok := c.Queue.SwapFull(b)
	if ok {
		c.swaps.Add(1)
	}
	return ok
}

// stuckTap hands out nothing through Next until the engine stops, like a tap whose
// wake-up was missed; TryNext gives what was queued.
type stuckTap struct {
	mu     sync.Mutex
	queued []event.Event
}

func (s *stuckTap) Next(ctx context.Context) (event.Event, error) {
	<-ctx.Done()
	return event.Event{}, ctx.Err()
}

func (s *stuckTap) TryNext() (event.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queued) == 0 {
		return event.Event{}, false
	}
	ev := s.queued[0]
	s.queued = s.queued[1:]
	return ev, true
}

// Events queued when the engine closes are applied before it stops, batch after batch.
func TestCloseAppliesWhatTheTapHolds(t *testing.T) {
	tap := &stuckTap{}
	e, err := New(testConfig(), Deps{Store: NewMemoryStore(), Tap: tap, Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*consumeBatch + 5
	tap.mu.Lock()
	for i := range n {
		tap.queued = append(tap.queued, ev(event.Like, fmt.Sprintf("late%d", i%7), t0))
	}
	tap.mu.Unlock()
	if got := e.Consumed(); got != 0 {
		t.Fatalf("consumed %d before close", got)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.Consumed(); got != n {
		t.Fatalf("consumed %d after close, want %d", got, n)
	}
	likes := 0
	for i := range 7 {
		likes += viewer(t, e, fmt.Sprintf("late%d", i)).Likes
	}
	if likes != n {
		t.Fatalf("%d likes applied, want %d", likes, n)
	}
}

// Viewers who visited the same rooms in the same order share one list of them.
func TestRoomListsShared(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	for _, id := range []string{"a", "b"} {
		for _, room := range []string{"r1", "r2"} {
			x := ev(event.Like, id, t0)
			x.Room = room
			e.Apply(x)
		}
	}
	x := ev(event.Like, "c", t0)
	e.Apply(x) // r1 only
	rooms := func(id string) []string {
		_, p := e.lookup(id, false)
		defer e.shardOf(id).mu.Unlock()
		return p.Rooms.get()
	}
	a, b, c := rooms("a"), rooms("b"), rooms("c")
	if fmt.Sprint(a) != "[r1 r2]" || fmt.Sprint(c) != "[r1]" {
		t.Fatalf("rooms a %v, c %v", a, c)
	}
	if unsafe.SliceData(a) != unsafe.SliceData(b) {
		t.Fatal("a and b, in the same rooms, each hold their own list")
	}
	// At most maxRooms are kept; later rooms still count as the event's.
	for i := range maxRooms + 4 {
		x := ev(event.Like, "d", t0)
		x.Room = fmt.Sprintf("room-%d", i)
		e.Apply(x)
	}
	if d := rooms("d"); len(d) != maxRooms || d[0] != "room-0" {
		t.Fatalf("d's rooms: %v", d)
	}
	// A merge into a, and a's next first visit, leave the list b shares alone.
	x = ev(event.Like, "c", t0)
	x.Room = "r9"
	e.Apply(x)
	if !e.merge("c", "a", nil) {
		t.Fatal("no merge")
	}
	x = ev(event.Like, "a", t0)
	x.Room = "r3"
	e.Apply(x)
	if a, b := fmt.Sprint(rooms("a")), fmt.Sprint(rooms("b")); a != "[r1 r2 r9 r3]" || b != "[r1 r2]" {
		t.Fatalf("after the merge and a visit: a %s, b %s", a, b)
	}
}

// Events taken from the tap in batches reach the subscribers as applied: under the
// viewer's canonical id, with the engine's time when they came without one, in order.
func TestTapEventsPublishedAsApplied(t *testing.T) {
	tap := event.NewQueue(1 << 12)
	clk := &clock{t: t0}
	e := tapEngine(t, tap, clk.Now)
	// The guest's order names a known customer: the guest's id becomes the customer's.
	importJSON(t, e, `[{"id":"o1","type":"order","viewer":"shop-42","at":"2026-06-14T10:00:00Z","order_id":"s1","total":"3","customer":{"id":"42"}},
	 {"id":"o2","type":"order","viewer":"guest-1","at":"2026-06-15T10:00:00Z","order_id":"s2","total":"3","customer":{"id":"42"}}]`)
	canonical := viewer(t, e, "guest-1").ID
	if canonical == "guest-1" {
		t.Fatal("the guest was not linked to the customer")
	}
	out := event.NewQueue(1 << 12)
	defer e.Subscribe(out, event.Danmaku)()
	const n = 3*consumeBatch + 5
	for i := range n {
		x := ev(event.Danmaku, "guest-1", t0.Add(-time.Minute))
		x.Text = fmt.Sprintf("m%d", i)
		if i%2 == 1 {
			x.At = time.Time{} // no time of its own: the engine's
		}
		if !tap.Publish(x) {
			t.Fatal("tap full")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for out.Len() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for i := range n {
		got, ok := out.TryNext()
		if !ok {
			t.Fatalf("%d of %d events published", i, n)
		}
		want := t0.Add(-time.Minute)
		if i%2 == 1 {
			want = t0
		}
		if got.Text != fmt.Sprintf("m%d", i) || got.Viewer != canonical || !got.At.Equal(want) {
			t.Fatalf("published %d: %q by %q at %s, want m%d by %q at %s", i, got.Text, got.Viewer, got.At, i, canonical, want)
		}
	}
}

// TestConsumerAsksForBlocksOnlyWhenBehind: a consumer that keeps up takes events one
// by one without asking the tap for a whole chunk each time (a lock per event).
func TestConsumerAsksForBlocksOnlyWhenBehind(t *testing.T) {
	tap := &checkedTap{Queue: event.NewQueue(1 << 12)}
	e := tapEngine(t, tap, (&clock{t: t0}).Now)
	const n = 50
	for i := range n {
		tap.Publish(ev(event.Like, "v", t0))
		deadline := time.Now().Add(10 * time.Second)
		for e.Consumed() < uint64(i+1) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if e.Consumed() != n {
		t.Fatalf("consumed %d of %d", e.Consumed(), n)
	}
	if calls := tap.calls.Load(); calls > 1 {
		t.Errorf("asked for a whole chunk %d times while taking %d events one by one", calls, n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// The tap's consumer counts a batch's events and tag changes at its end, not one by
// one; the counts still come out whole, as they do for Apply and an import.
func TestAppliedAndTagChangesCounted(t *testing.T) {
	tap := event.NewQueue(1 << 12)
	e := tapEngine(t, tap, (&clock{t: t0}).Now)
	changes := event.NewQueue(1 << 12)
	defer e.Subscribe(changes, event.TagChange)()
	const n = 3*event.BlockLen + 10 // whole blocks and a batch
	for i := range n {
		x := ev(event.Like, fmt.Sprintf("v%d", i%40), t0)
		if i == 5 || i == 300 { // a live's start and a pin: in the metric, not in Applied
			x = event.Event{ID: fmt.Sprint("e", i), Type: event.LiveStart, At: t0, Room: "r", Live: "L"}
			if i == 300 {
				x = event.Event{ID: fmt.Sprint("e", i), Type: event.Pin, At: t0, Room: "r", SKU: "s1", Category: "shoes", Value: 10, Currency: "USD"}
			}
		}
		if !tap.Publish(x) {
			t.Fatal("tap full")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Consumed() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	e.Apply(ev(event.Like, "v-apply", t0))
	importJSON(t, e, `[{"id":"i1","type":"like","viewer":"v-import","at":"`+t0.Add(-time.Hour).Format(time.RFC3339)+`"}]`)
	const want = n - 2 + 2
	if got := e.Applied(); got != want {
		t.Errorf("Applied %d, want %d", got, want)
	}
	if got := counterValue(t, e.metrics.applied); got != want+2 {
		t.Errorf("applied metric %v, want %d", got, want+2)
	}
	published := 0
	for {
		if _, ok := changes.TryNext(); !ok {
			break
		}
		published++
	}
	if published == 0 {
		t.Fatal("no tag changes: the test counts nothing")
	}
	if got := counterValue(t, e.metrics.tagChanges); got != float64(published) {
		t.Errorf("tag changes metric %v, %d published", got, published)
	}
}

// recorder is a Publisher that takes one event at a time (no PublishAll).
type recorder struct {
	mu  sync.Mutex
	evs []event.Event
}

func (r *recorder) Publish(e event.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	return true
}

// The tap's consumer hands its subscribers a batch's events and tag changes at the
// end of the batch, each subscriber's in one go: they get exactly what Apply, event
// by event, hands them, in the same order (each event, then its tag changes), whether
// they take batches or one event at a time.
func TestBatchPublishesWhatApplyWould(t *testing.T) {
	var evs []event.Event
	for i := range 2*event.BlockLen + 40 {
		v := fmt.Sprintf("v%d", i%37)
		x := ev([]event.Type{event.WatchStart, event.Danmaku, event.ProductClick, event.Like, event.Order, event.Leave}[i%6], v, t0.Add(-time.Duration(i)*time.Second))
		x.Live, x.Category = "L1", []string{"shoes", "hats", "bags"}[i%3]
		switch {
		case x.Type == event.Order:
			x.Order = &event.OrderInfo{OrderID: fmt.Sprint("o", i), Total: fmt.Sprint(5 + i%50)}
		case i%50 == 7:
			x.Role = event.RoleHost // staff: applied to nothing, published to no one
		case i%50 == 9:
			x.Viewer = "" // invalid: counted, and published as it came
		}
		evs = append(evs, x)
	}
	clk := &clock{t: t0}
	start := func(tap event.Source) (*Engine, *event.Queue, *recorder) {
		e := tapEngine(t, tap, clk.Now)
		all, changes := event.NewQueue(1<<14), &recorder{}
		t.Cleanup(e.Subscribe(all))
		t.Cleanup(e.Subscribe(changes, event.TagChange))
		return e, all, changes
	}
	one, oneAll, oneChanges := start(nil)
	for _, x := range evs {
		one.Apply(x)
	}
	// The consumer waits at the gate until the subscribers are in, then finds the tap
	// full: whole blocks.
	tap := &gatedTap{Queue: event.NewQueue(1 << 14), open: make(chan struct{})}
	for _, x := range evs {
		tap.Publish(x)
	}
	batched, batchedAll, batchedChanges := start(tap)
	close(tap.open)
	deadline := time.Now().Add(10 * time.Second)
	for batched.Consumed() < uint64(len(evs)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	key := func(x event.Event) string {
		k := fmt.Sprint(x.Type, " ", x.ID, " ", x.Viewer)
		if x.Tag != nil {
			k += fmt.Sprint(" ", x.Tag.Dimension, ":", x.Tag.From, "→", x.Tag.To)
		}
		return k
	}
	drain := func(q *event.Queue) (keys []string) {
		for {
			x, ok := q.TryNext()
			if !ok {
				return keys
			}
			keys = append(keys, key(x))
		}
	}
	keys := func(r *recorder) (out []string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, x := range r.evs {
			out = append(out, key(x))
		}
		return out
	}
	want, got := drain(oneAll), drain(batchedAll)
	wantChanges := keys(oneChanges)
	if len(wantChanges) < 20 || len(want) < len(evs) {
		t.Fatalf("%d events and %d tag changes published by Apply: too few to compare", len(want), len(wantChanges))
	}
	if !slices.Equal(got, want) {
		t.Errorf("a subscriber to every type got %d events from the tap's batches, %d from Apply:\n%v\n%v", len(got), len(want), got, want)
	}
	if got := keys(batchedChanges); !slices.Equal(got, wantChanges) {
		t.Errorf("a subscriber to tag changes without PublishAll got %d, %d from Apply", len(got), len(wantChanges))
	}
}

// gatedTap holds its consumer until open is closed.
type gatedTap struct {
	*event.Queue
	open chan struct{}
}

func (g *gatedTap) SwapFull(b **event.Block) bool { <-g.open; return g.Queue.SwapFull(b) }

func (g *gatedTap) Next(ctx context.Context) (event.Event, error) {
	<-g.open
	return g.Queue.Next(ctx)
}

// A subscriber that comes while the consumer is in the middle of a batch gets the
// events the batch applies after it came.
func TestSubscriberMidBatchGetsWhatFollows(t *testing.T) {
	// The engine's clock is read at a batch's start and again after an order: the
	// test holds the consumer in those readings.
	var calls atomic.Int32
	hold, held, resume := map[int32]bool{1: true, 3: true}, make(chan struct{}, 1), make(chan struct{})
	armed := atomic.Bool{}
	now := func() time.Time {
		if armed.Load() && hold[calls.Add(1)] {
			held <- struct{}{}
			<-resume
		}
		return t0
	}
	tap := event.NewQueue(1 << 10)
	e := tapEngine(t, tap, now)
	armed.Store(true)
	tap.Publish(ev(event.Like, "v0", t0)) // its batch's start holds the consumer (1)
	<-held
	o := ev(event.Order, "v1", t0)
	o.Order = &event.OrderInfo{OrderID: "o1", Total: "5"}
	tap.Publish(o) // the next batch: the order and a comment after it
	tap.Publish(ev(event.Danmaku, "v2", t0))
	resume <- struct{}{}
	<-held // after the order (3; 2 was the batch's start)
	q := event.NewQueue(100)
	defer e.Subscribe(q)()
	close(resume)
	deadline := time.Now().Add(10 * time.Second)
	for e.Consumed() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var got []string
	for {
		x, ok := q.TryNext()
		if !ok {
			break
		}
		got = append(got, fmt.Sprint(x.Type, " ", x.Viewer))
	}
	if !slices.Contains(got, "danmaku v2") {
		t.Errorf("a subscriber that came after the order got %q, not the comment after it", got)
	}
}

// The consumer looks a viewer up by the hash it worked out to warm the cache; an
// e-mail key in mixed case is the lower-case key's profile all the same (event.EmailKey
// changes the id after the hash was taken).
func TestTapEmailKeysInAnyCaseAreOneProfile(t *testing.T) {
	tap := event.NewQueue(1 << 8)
	e := tapEngine(t, tap, (&clock{t: t0}).Now)
	ids := []string{"email:ann@shop.com", "email:Ann@Shop.com", "EMAIL:ANN@SHOP.COM"}
	for _, id := range ids {
		if !tap.Publish(ev(event.Like, id, t0)) {
			t.Fatal("tap full")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Consumed() < uint64(len(ids)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	v, err := e.Viewer(context.Background(), "email:ann@shop.com")
	if err != nil || v.Likes != len(ids) || e.Count() != 1 {
		t.Fatalf("%v: %d likes on email:ann@shop.com, %d profiles; want %d likes on one", err, v.Likes, e.Count(), len(ids))
	}
}
