package segment

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	dto "github.com/prometheus/client_model/go"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/synth"
)

// TestCompactionChangesNothing feeds the same synthetic events (their lists growing,
// shrinking and moving) to two engines, one of which compacts every few hundred events,
// and checks that every profile encodes the same in both: after a compaction, and
// after more events have appended to lists that have no spare room in their chunk.
func TestCompactionChangesNothing(t *testing.T) {
	clk := &clock{t: t0}
	plain, compacted := newEngine(t, nil, clk), newEngine(t, nil, clk)
	g := synth.New(300, t0, 7)
	var x event.Event
	same := func(when string) {
		t.Helper()
		n := 0
		for _, sh := range plain.shards {
			sh.mu.Lock()
			for p := range sh.profiles.all() {
				want := marshalProfile(p)
				csh, q := compacted.lookup(p.ID, false)
				if q == nil {
					sh.mu.Unlock()
					t.Fatalf("%s: %q missing from the compacted engine", when, p.ID)
				}
				got := marshalProfile(q)
				csh.mu.Unlock()
				if !bytes.Equal(got, want) {
					sh.mu.Unlock()
					t.Fatalf("%s: %q differs:\n got %s\nwant %s", when, p.ID, got, want)
				}
				n++
			}
			sh.mu.Unlock()
		}
		if n != compacted.Count() || n == 0 {
			t.Fatalf("%s: %d profiles against %d", when, n, compacted.Count())
		}
	}
	for i := range 20_000 {
		g.Next(&x)
		plain.Apply(x)
		compacted.Apply(x)
		if i%500 == 499 {
			compacted.Compact()
			same("after a compaction")
			clk.Add(time.Minute)
		}
	}
	same("after the last events")
}

// An erased viewer's recent events, in a chunk that other profiles' lists keep alive,
// are cleared, not left in memory.
func TestEraseClearsCompactedRecentEvents(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for _, v := range []string{"a", "zed", "b"} {
		x := ev(event.Danmaku, v, t0)
		x.Text = "secret of " + v
		e.Apply(x)
	}
	e.Compact()
	sh, p := e.lookup("zed", false)
	recent := p.Recent.get()
	sh.mu.Unlock()
	if len(recent) != 1 || recent[0].Detail() != "secret of zed" {
		t.Fatalf("recent events before erasure: %+v", recent)
	}
	if err := e.Erase(context.Background(), "zed"); err != nil {
		t.Fatal(err)
	}
	if recent[0] != (Recent{}) {
		t.Errorf("the erased viewer's recent event is still in memory: %+v", recent[0])
	}
	if v := viewer(t, e, "a"); len(v.Recent) != 1 || v.Recent[0].Detail != "secret of a" {
		t.Errorf("another viewer's recent events changed: %+v", v.Recent)
	}
}

// The lists moved into chunks of plain words must hold no pointers: the collector does
// not look inside those chunks, so a pointer there would not keep its target alive.
func TestWordListsHoldNoPointers(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Bucket](), reflect.TypeFor[CatDay](), reflect.TypeFor[Count](),
		reflect.TypeFor[LiveSession](), reflect.TypeFor[Span]()} {
		if path := pointerIn(typ); path != "" {
			t.Errorf("%s holds a pointer at %s", typ, path)
		}
		if typ.Align() > 8 {
			t.Errorf("%s needs %d-byte alignment", typ, typ.Align())
		}
	}
	if pointerIn(reflect.TypeFor[Recent]()) == "" { // the check itself
		t.Error("no pointer found in Recent, whose detail is a string")
	}
}

// pointerIn names a field of typ that is or holds a pointer, "" when none does.
func pointerIn(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Struct:
		for i := range typ.NumField() {
			if p := pointerIn(typ.Field(i).Type); p != "" {
				return typ.Field(i).Name + "." + p
			}
		}
		return ""
	case reflect.Array:
		return pointerIn(typ.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	}
	return typ.Kind().String()
}

// A viewer's recent events that moved out of a chunk as the list grew leave nothing
// behind there: erasing the viewer later must not leave their words in the chunk that
// other profiles keep alive.
func TestRecentEventsLeaveNoCopyInAChunk(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	say := func(v, text string, at time.Time) {
		x := ev(event.Danmaku, v, at)
		x.Text = text
		e.Apply(x)
	}
	for _, v := range []string{"a", "zed", "b"} {
		say(v, "secret of "+v, t0)
	}
	e.Compact()
	sh, p := e.lookup("zed", false)
	inChunk := p.Recent.get() // capacity 1: the next event moves the list out
	sh.mu.Unlock()
	say("zed", "more", t0.Add(time.Second))
	if inChunk[0] != (Recent{}) {
		t.Errorf("the chunk still holds the viewer's moved recent event: %+v", inChunk[0])
	}
	if v := viewer(t, e, "zed"); len(v.Recent) != 2 {
		t.Errorf("after the move: %d recent events, want 2", len(v.Recent))
	}
}

// Erasure clears every list of the viewer, which may lie in chunks others keep alive.
func TestEraseClearsCompactedLists(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for _, v := range []string{"a", "zed"} {
		for _, x := range session(v, "L1", t0.Add(-time.Hour), 10*time.Minute, 2) {
			e.Apply(x)
		}
	}
	e.Compact()
	sh, p := e.lookup("zed", false)
	days, lives := p.Days.get(), p.Lives.get()
	sh.mu.Unlock()
	if len(days) == 0 || len(lives) == 0 {
		t.Fatalf("days %v, lives %v before erasure", days, lives)
	}
	if err := e.Erase(context.Background(), "zed"); err != nil {
		t.Fatal(err)
	}
	if days[0] != (Bucket{}) || lives[0] != (LiveSession{}) {
		t.Errorf("erased viewer's lists still in memory: %+v %+v", days[0], lives[0])
	}
}

// The sweep compacts once compactEvery has passed since the engine started or last
// compacted, and not before.
func TestSweepCompactsEveryHalfHour(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	for _, x := range session("v", "L1", t0.Add(-time.Hour), 10*time.Minute, 2) {
		e.Apply(x)
	}
	for _, step := range []struct {
		after time.Duration
		want  float64
	}{
		{time.Minute, 0}, // an empty store loads nothing to compact
		{compactEvery - 2*time.Minute, 0},
		{time.Minute, 1}, // compactEvery since the start
		{time.Minute, 1},
		{compactEvery, 2},
	} {
		clk.Add(step.after)
		e.Sweep()
		if got := compactions(t, e); got != step.want {
			t.Fatalf("at %s: %v compactions, want %v", clk.Now().Sub(t0), got, step.want)
		}
	}
	if v := viewer(t, e, "v"); v.Sessions != 1 || v.Comments != 2 {
		t.Fatalf("after compactions: %+v", v)
	}
}

// A restart compacts what it loaded in its first sweep, which New runs: decoded
// profiles lie among the decoding's garbage. An empty store calls for none.
func TestRestartCompactsWhatItLoaded(t *testing.T) {
	store := NewMemoryStore()
	clk := &clock{t: t0}
	e := newEngine(t, store, clk)
	if got := compactions(t, e); got != 0 {
		t.Fatalf("an empty store: %v compactions", got)
	}
	x := ev(event.Danmaku, "v", t0)
	x.Text = "a comment"
	e.Apply(x)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e2 := newEngine(t, store, clk)
	if got := compactions(t, e2); got != 1 {
		t.Fatalf("after loading a profile: %v compactions, want 1", got)
	}
	sh, p := e2.lookup("v", false)
	recent := slices.Clone(p.Recent.get())
	sh.mu.Unlock()
	if len(recent) != 1 || recent[0].Detail() != "a comment" || !recent[0].inChunk() {
		t.Fatalf("the loaded comment was not compacted into a chunk: %+v", recent)
	}
	clk.Add(compactEvery - time.Minute)
	e2.Sweep()
	if got := compactions(t, e2); got != 1 {
		t.Fatalf("%v compactions before the half hour since the one after the load", got)
	}
}

// A large import (an event or more per profile held, and minImportToCompact) is
// compacted by the first sweep importQuiet after it was stored, not up to half an
// hour later; a smaller one, or one that is still going on, is not, and single
// imported events meanwhile do not put it off.
func TestSweepCompactsOnceALargeImportSettles(t *testing.T) {
	clk := &clock{t: t0}
	e := newEngine(t, nil, clk)
	n := 0
	imports := func(events int) {
		var b strings.Builder
		b.WriteString("[")
		for i := range events {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":"i%d","type":"like","viewer":"v%d","at":"%s"}`, n, n%500, t0.Add(-time.Hour).Format(time.RFC3339))
			n++
		}
		b.WriteString("]")
		importJSON(t, e, b.String())
	}
	sweepAfter := func(d time.Duration, want float64) {
		t.Helper()
		clk.Add(d)
		e.Sweep()
		if got := compactions(t, e); got != want {
			t.Fatalf("after %d imported events, at %s: %v compactions, want %v", n, clk.Now().Sub(t0), got, want)
		}
	}
	imports(minImportToCompact - importPart)
	sweepAfter(importQuiet, 0) // too few to be worth a pass
	imports(importPart)
	sweepAfter(0, 0) // enough, but just stored: more may follow
	// Single events imported meanwhile (a shop's order webhooks) do not put it off.
	imports(1)
	sweepAfter(importQuiet/2, 0)
	imports(1)
	sweepAfter(importQuiet/2, 1) // settled: a minute after the last part of the import
	sweepAfter(importQuiet, 1)   // counted afresh from the compaction
	// Fewer events than profiles held do not call for one either.
	e.Apply(ev(event.Like, "many", t0))
	for i := range minImportToCompact + 1 {
		e.Apply(ev(event.Like, fmt.Sprint("other", i), t0))
	}
	imports(minImportToCompact)
	sweepAfter(importQuiet, 1)
}

// compactions is how many compactions e counted.
func compactions(t *testing.T, e *Engine) float64 {
	t.Helper()
	var m dto.Metric
	if err := e.metrics.compactions.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// buyIn applies an order of one item of category cat by viewer, linked to customer
// "c-" and the viewer's id.
func buyIn(e *Engine, viewer, orderID, cat string) {
	x := ev(event.Order, viewer, t0)
	x.Order = &event.OrderInfo{OrderID: orderID, Total: "20", Currency: "EUR", Customer: &event.Person{ID: "c-" + viewer},
		Items: []event.Item{{SKU: "s-" + cat, Category: cat, Price: "20"}}}
	e.Apply(x)
}

// A buyer's facts and lists, and the details of orders among recent events, are
// compacted too (they were the largest gaps left in the heap's spans), and, in chunks
// that other profiles keep alive, they are cleared when the viewer is erased.
func TestEraseClearsCompactedBuyerFacts(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for _, v := range []string{"a", "zed", "b"} {
		buyIn(e, v, "o-"+v, "shoes")
	}
	sh, p := e.lookup("zed", false)
	before := p.buy
	sh.mu.Unlock()
	e.Compact()
	sh, p = e.lookup("zed", false)
	facts, bought, ids, aliases := p.buy, p.buy.Bought.get(), p.buy.OrderIDs, p.buy.Aliases.get()
	detail := p.Recent.get()[0].Detail() // the order's, in a chunk of text now
	sh.mu.Unlock()
	if !strings.HasPrefix(detail, "o-zed ") {
		t.Fatalf("the order's detail: %q", detail)
	}
	if facts == before || !reflect.ValueOf(*before).IsZero() {
		t.Fatalf("the compaction left the buyer's facts where they were, or a copy there: %+v", *before)
	}
	if len(bought) != 1 || ids.count() != 1 || len(aliases) != 1 {
		t.Fatalf("compacted buyer facts: bought %v, order ids %q, aliases %v", bought, ids.list(), aliases)
	}
	if err := e.Erase(context.Background(), "zed"); err != nil {
		t.Fatal(err)
	}
	if !reflect.ValueOf(*facts).IsZero() || bought[0] != (Count{}) || aliases[0] != "" {
		t.Errorf("erased buyer's facts still in memory: %+v, bought %v, aliases %q", *facts, bought, aliases)
	}
	wiped(t, "the erased buyer's order detail", detail)
	if v := viewer(t, e, "a"); len(v.Recent) != 1 || !strings.HasPrefix(v.Recent[0].Detail, "o-a ") {
		t.Errorf("another buyer's recent order: %+v", v.Recent)
	}
	sh, a := e.lookup("a", false)
	orderIDs := a.OrderIDs()
	bought, aliases = slices.Clone(a.Bought()), slices.Clone(a.Aliases())
	sh.mu.Unlock()
	if len(orderIDs) != 1 || orderIDs[0] != "o-a" || len(bought) != 1 || len(aliases) != 1 {
		t.Errorf("another buyer's facts changed: order ids %q, bought %v, aliases %q", orderIDs, bought, aliases)
	}
}

// A shard's shared room lists move with the compaction and stay shared: the profiles
// that shared one share its moved copy, and the shard hands that copy to the next
// viewer of the same rooms.
func TestCompactionKeepsRoomListsShared(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	var ids []string
	for i := 0; len(ids) < 3; i++ {
		if id := fmt.Sprintf("v%d", i); e.shardOf(id) == e.shardOf("v0") {
			ids = append(ids, id)
		}
	}
	visit := func(id string) {
		for _, room := range []string{"r1", "r2"} {
			x := ev(event.Join, id, t0)
			x.Room = room
			e.Apply(x)
		}
	}
	rooms := func(id string) []string { return held(e, id, func(p *Profile) []string { return p.Rooms.get() }) }
	visit(ids[0])
	visit(ids[1])
	before := rooms(ids[0])
	if len(before) != 2 || unsafe.SliceData(rooms(ids[1])) != unsafe.SliceData(before) {
		t.Fatalf("rooms before the compaction: %q and %q, not one shared list", before, rooms(ids[1]))
	}
	e.Compact()
	after := rooms(ids[0])
	if unsafe.SliceData(after) == unsafe.SliceData(before) || !slices.Equal(after, before) {
		t.Fatalf("rooms after the compaction: %q, moved: %v", after, unsafe.SliceData(after) != unsafe.SliceData(before))
	}
	visit(ids[2])
	for _, id := range ids[1:] {
		if unsafe.SliceData(rooms(id)) != unsafe.SliceData(after) {
			t.Errorf("%s's rooms are not the moved shared list", id)
		}
	}
}

// An order's detail is in one place at a time, and cleared there when it leaves its
// profile: dropped from the recent events, moved by a later compaction, or merged
// away (found by a review: each of these left the bytes in a chunk of text that other
// profiles keep alive, past the viewer's erasure).
func TestOrderDetailsLeaveNothingInTheirChunk(t *testing.T) {
	e := compactedBuyers(t, "a", "dropped", "moved", "src", "dst", "b")
	detail := func(v string) string {
		return held(e, v, func(p *Profile) string { return p.Recent.get()[0].Detail() })
	}
	d := detail("dropped")
	for i := range maxRecent { // newer events push the order out of the six kept
		x := ev(event.Danmaku, "dropped", t0.Add(time.Duration(i+1)*time.Second))
		x.Text = "hi"
		e.Apply(x)
	}
	wiped(t, "dropped from the recent events: the order's detail", d)

	d = detail("moved")
	e.Compact()
	wiped(t, "moved by a later compaction: the order's detail", d)
	if now := detail("moved"); !strings.HasPrefix(now, "o-moved ") {
		t.Errorf("the moved detail reads %q", now)
	}

	sh, p := e.lookup("src", false)
	srcBuy := p.buy
	sh.mu.Unlock()
	if !e.merge("src", "dst", nil) {
		t.Fatal("no merge")
	}
	if !reflect.ValueOf(*srcBuy).IsZero() {
		t.Errorf("the merged-away profile's facts are still in their chunk: %+v", *srcBuy)
	}
	d = detail("dst")
	if err := e.Erase(context.Background(), "dst"); err != nil {
		t.Fatal(err)
	}
	wiped(t, "erased after a merge: the order's detail", d)
	if v := viewer(t, e, "a"); len(v.Recent) != 1 || !strings.HasPrefix(v.Recent[0].Detail, "o-a ") {
		t.Errorf("another buyer's recent order: %+v", v.Recent)
	}
}

// A buyer's counts that grow out of their chunk clear their old place there.
func TestBoughtCountsLeaveNothingInTheirChunk(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for _, v := range []string{"a", "zed", "b"} {
		buyIn(e, v, "o-"+v, "shoes")
	}
	e.Compact()
	sh, p := e.lookup("zed", false)
	old := p.Bought()
	sh.mu.Unlock()
	buyIn(e, "zed", "o-zed-hats", "hats") // a second category: the list outgrows its place
	if len(old) != 1 || old[0] != (Count{}) {
		t.Errorf("the chunk still holds the moved counts: %+v", old)
	}
}

// A chunk of text registered where a collected one lay (its memory reused, from a
// different start) is found by wipe: the collected one, still registered until the
// next compaction, is forgotten when the new one comes (found by a review; the
// allocator did this within a few rounds of chunks and collections).
func TestTextChunkOverADeadOneIsWiped(t *testing.T) {
	var tc textChunks
	chunk := make([]byte, compactChunk)
	start := uintptr(unsafe.Pointer(&chunk[0]))
	for _, dead := range []uintptr{start - compactChunk/2, start + compactChunk/2} {
		tc.starts = append(tc.starts, dead)
		tc.chunks = append(tc.chunks, weak.Pointer[byte]{}) // collected: Value is nil
	}
	tc.add(chunk)
	if len(tc.starts) != 1 || tc.starts[0] != start {
		t.Errorf("registered starts %x, want only %x", tc.starts, start)
	}
	at := compactChunk/2 + 16 // past the dead one's start
	copy(chunk[at:], "o-secret 20 EUR")
	text := unsafe.String(&chunk[at], len("o-secret 20 EUR"))
	tc.wipe(text)
	wiped(t, "text in a registered chunk", text)
	runtime.KeepAlive(chunk)
}

// The compaction copies each profile's id and name, and a buyer's order ids, one after
// another, so that they leave the pages they were made in among their events'
// garbage; the profile is still found by its id.
func TestCompactionCopiesIdsAndNames(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	type held struct{ id, name *byte }
	before := map[string]held{}
	for i := range 50 {
		x := ev(event.Danmaku, fmt.Sprintf("viewer-%d", i), t0)
		x.Name = fmt.Sprintf("Name %d", i)
		e.Apply(x)
	}
	for i := range 50 {
		sh, p := e.lookup(fmt.Sprintf("viewer-%d", i), false)
		before[p.ID] = held{unsafe.StringData(p.ID), unsafe.StringData(p.Name)}
		sh.mu.Unlock()
	}
	buyIn(e, "buyer", "order-7", "shoes")
	sh, p := e.lookup("buyer", false)
	orderID := unsafe.StringData(p.OrderIDs()[0])
	sh.mu.Unlock()
	e.Compact()
	sh, p = e.lookup("buyer", false)
	got := slices.Clone(p.OrderIDs())
	moved := len(got) == 1 && unsafe.StringData(got[0]) != orderID
	sh.mu.Unlock()
	if len(got) != 1 || got[0] != "order-7" || !moved {
		t.Errorf("the compaction left the order id where it was made, or changed it: %q", got)
	}
	for id, old := range before {
		sh, p := e.lookup(id, false)
		if p == nil {
			t.Fatalf("%q not found after the compaction", id)
		}
		gotID, gotName := p.ID, p.Name
		moved := unsafe.StringData(p.ID) != old.id && unsafe.StringData(p.Name) != old.name
		sh.mu.Unlock()
		if want := "Name " + strings.TrimPrefix(id, "viewer-"); gotID != id || gotName != want {
			t.Fatalf("after the compaction: id %q name %q, want %q %q", gotID, gotName, id, want)
		}
		if !moved {
			t.Errorf("%q: the compaction left its id or name where it was made", id)
		}
	}
	// The same name on a later event (a string of its own) keeps the compaction's copy.
	sh, p = e.lookup("viewer-3", false)
	copied := unsafe.StringData(p.Name)
	sh.mu.Unlock()
	x := ev(event.Like, "viewer-3", t0.Add(time.Minute))
	x.Name = strings.Clone("Name 3")
	e.Apply(x)
	sh, p = e.lookup("viewer-3", false)
	kept := unsafe.StringData(p.Name) == copied
	sh.mu.Unlock()
	if !kept {
		t.Error("an event with the same name replaced the compaction's copy of it")
	}
}

// A buyer's order ids are copied into a chunk of text, and leave nothing there when
// they move out of it (a new order, a later compaction, a merge either way) or the
// buyer is erased; a merge into a viewer with none keeps them.
func TestOrderIDsLeaveNothingInTheirChunk(t *testing.T) {
	e := compactedBuyers(t, "a", "grows", "moved", "src", "dst", "b")
	ids := func(v string) idList { return held(e, v, (*Profile).orderIDList) }
	l := ids("grows")
	buyIn(e, "grows", "o-grows-2", "hats")
	wiped(t, "after another order: the order ids", string(l))
	if got := ids("grows").list(); !slices.Equal(got, []string{"o-grows", "o-grows-2"}) {
		t.Errorf("after another order: %q", got)
	}

	l = ids("moved")
	e.Compact()
	wiped(t, "moved by a later compaction: the order ids", string(l))
	if got := ids("moved").list(); !slices.Equal(got, []string{"o-moved"}) {
		t.Errorf("after a later compaction: %q", got)
	}

	e.Compact()
	src, dst := ids("src"), ids("dst")
	if !e.merge("src", "dst", nil) {
		t.Fatal("no merge")
	}
	wiped(t, "merged away: the order ids", string(src))
	wiped(t, "merged into: the order ids", string(dst))
	if got := ids("dst").list(); !slices.Equal(got, []string{"o-dst", "o-src"}) {
		t.Errorf("after the merge: %q", got)
	}

	// Into a viewer with no orders: dst then holds src's list itself, which must not
	// be cleared.
	e.Apply(ev(event.Like, "no-orders", t0))
	e.Compact()
	if !e.merge("a", "no-orders", nil) {
		t.Fatal("no merge")
	}
	if got := ids("no-orders").list(); !slices.Equal(got, []string{"o-a"}) {
		t.Errorf("merged into a viewer with no orders: %q", got)
	}

	e.Compact()
	l = ids("dst")
	if err := e.Erase(context.Background(), "dst"); err != nil {
		t.Fatal(err)
	}
	wiped(t, "erased: the order ids", string(l))
	if got := ids("b").list(); !slices.Equal(got, []string{"o-b"}) {
		t.Errorf("another buyer's order ids: %q", got)
	}
}

// Every recent event's detail but a room is copied into a chunk of text (a comment's
// text is made among its event's garbage, as an order's detail is); it is cleared
// there when it leaves the recent events or the viewer is erased, and what readers
// keep (the brief's last comment) is a copy. A room stays the profile's shared string.
func TestCommentsLeaveNothingInTheirChunk(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for _, v := range []string{"a", "zed", "b"} {
		e.Apply(ev(event.Like, v, t0))
		x := ev(event.Danmaku, v, t0.Add(time.Second))
		x.Text = "secret of " + v
		e.Apply(x)
	}
	e.Compact()
	sh, p := e.lookup("zed", false)
	recent := slices.Clone(p.Recent.get())
	room := p.Rooms.get()[0]
	sh.mu.Unlock()
	if len(recent) != 2 || recent[0].Detail() != room || unsafe.StringData(recent[0].Detail()) != unsafe.StringData(room) || recent[0].inChunk() {
		t.Fatalf("the like's detail is not the profile's room: %+v (room %q)", recent, room)
	}
	comment := recent[1].Detail()
	if comment != "secret of zed" || !recent[1].inChunk() {
		t.Fatalf("the comment was not copied into a chunk: %+v", recent[1])
	}
	b, err := e.Brief(t.Context(), "zed", "")
	if err != nil || b.LastComment != "secret of zed" {
		t.Fatalf("brief: %+v, %v", b, err)
	}
	for i := range maxRecent { // the comment leaves the recent events
		e.Apply(ev(event.Like, "zed", t0.Add(time.Duration(i+2)*time.Second)))
	}
	wiped(t, "a comment that left the recent events", comment)
	if b.LastComment != "secret of zed" {
		t.Errorf("the brief's last comment was cleared with the chunk: %q", b.LastComment)
	}

	sh, p = e.lookup("a", false)
	comment = p.Recent.get()[1].Detail()
	sh.mu.Unlock()
	if err := e.Erase(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	wiped(t, "an erased viewer's comment", comment)
	if v := viewer(t, e, "b"); len(v.Recent) != 2 || v.Recent[0].Detail != "secret of b" { // newest first
		t.Errorf("another viewer's recent events: %+v", v.Recent)
	}
}

// compactedBuyers is an engine where each of viewers bought once (order "o-" and the
// viewer), compacted since.
func compactedBuyers(t *testing.T, viewers ...string) *Engine {
	e := newEngine(t, nil, &clock{t: t0})
	for _, v := range viewers {
		buyIn(e, v, "o-"+v, "shoes")
	}
	e.Compact()
	return e
}

// held is what read takes from viewer id's profile, under its shard's lock.
func held[T any](e *Engine, id string, read func(*Profile) T) T {
	sh, p := e.lookup(id, false)
	defer sh.mu.Unlock()
	return read(p)
}

// wiped fails t unless text's bytes were cleared where they lie (a chunk of text).
func wiped(t *testing.T, what, text string) {
	t.Helper()
	if strings.Trim(text, "\x00") != "" {
		t.Errorf("%s: still in its chunk: %q", what, text)
	}
}
