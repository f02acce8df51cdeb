package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

func openBolt(t *testing.T, path string) *BoltStore {
	t.Helper()
	s, err := OpenBolt(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openStore opens the product's default store: the journal in front of bbolt.
func openStore(t *testing.T, path string) *JournalStore {
	t.Helper()
	s, err := OpenJournal(path, time.Second, JournalLimit, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyFile snapshots the store file as a crash would leave it: only what was
// committed (fsynced) is in it.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

// copyStore copies the store's files (the bbolt file and the journal's) as a crash
// would leave them, to the store at path to.
func copyStore(t *testing.T, from, to string) {
	t.Helper()
	copyFile(t, from, to)
	for _, j := range journalFiles(t, from) {
		copyFile(t, j, to+strings.TrimPrefix(j, from))
	}
}

// Both stores answer the same contract.
func TestStores(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) Store{
		"memory": func(t *testing.T) Store { return NewMemoryStore() },
		"bolt": func(t *testing.T) Store {
			s := openBolt(t, filepath.Join(t.TempDir(), "segment.db"))
			t.Cleanup(func() { s.Close() })
			return s
		},
		"journal": func(t *testing.T) Store {
			s := openStore(t, filepath.Join(t.TempDir(), "segment.db"))
			t.Cleanup(func() { s.Close() })
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t), context.Background()
			b := &Batch{Profiles: []Record{{Key: "v1", Data: []byte(`{"id":"v1"}`)}, {Key: "v2", Data: []byte(`{"id":"v2"}`)}}}
			b.own(KindEvent, Record{Key: "e1", Owner: "v1", Data: []byte(`{"id":"e1"}`)})
			b.own(KindEvent, Record{Key: "e2", Owner: "v2", Data: []byte(`{"id":"e2"}`)})
			b.own(KindOrder, Record{Key: "o1", Owner: "v1", Data: []byte(`{"order_id":"o1"}`)})
			if err := s.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
			seen, _ := s.Seen(ctx, KindEvent, []string{"e1", "e2", "e3", "o1"})
			if !seen["e1"] || !seen["e2"] || seen["e3"] || seen["o1"] {
				t.Errorf("seen %v", seen)
			}
			held, _ := s.Held(ctx, []string{"v1"})
			if len(held[KindEvent]) != 1 || len(held[KindOrder]) != 1 || held[KindEvent][0].Key != "e1" {
				t.Errorf("held %+v", held)
			}
			if err := s.Erase(ctx, []string{"v1"}); err != nil {
				t.Fatal(err)
			}
			var ids []string
			s.Load(ctx, func(k string, _ []byte) error { ids = append(ids, k); return nil }, func(string, []byte) error { return nil })
			seen, _ = s.Seen(ctx, KindEvent, []string{"e1", "e2"})
			if !slices.Equal(ids, []string{"v2"}) || seen["e1"] || !seen["e2"] {
				t.Errorf("after erase: profiles %v, seen %v", ids, seen)
			}
		})
	}
}

func TestRestartKeepsEverythingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "segment.db")
	store := openStore(t, path)
	clk := &clock{t: t0}
	e := newEngine(t, store, clk)
	body := "[" + orderJSON("e1", "v", 3, "19.99", "shoes") + `,{"id":"c1","type":"consent","viewer":"v","at":"2026-06-14T10:00:00Z","messages":false}]`
	importJSON(t, e, body)
	for _, x := range session("v", "L1", t0.Add(-time.Hour), 10*time.Minute, 1) {
		e.Apply(x) // live events: written through by the flusher, not acknowledged
	}
	// "Crash" right after the import was answered: copy the files as they are on disk.
	crashed := filepath.Join(dir, "crashed.db")
	copyStore(t, path, crashed)

	s2 := openStore(t, crashed)
	e2 := newEngine(t, s2, clk)
	v := viewer(t, e2, "v")
	if v.Orders != 1 || v.Spend.String() != "19.99" || v.Consent == nil || *v.Consent || v.Tags[DimLifecycle] != FirstPurchase {
		t.Fatalf("after crash: %+v", v)
	}
	res := importJSON(t, e2, body)
	if res.Duplicates != 2 {
		t.Fatalf("re-import after restart: %+v", res)
	}
	e2.Close(context.Background())
	s2.Close()

	// A clean stop writes the live events too.
	e3, _ := restart(t, e, store, path, clk)
	v = viewer(t, e3, "v")
	if v.Orders != 1 || v.WatchSeconds != 600 || v.Comments != 1 || v.Sessions != 1 {
		t.Fatalf("after clean restart: %+v", v)
	}
}

func TestEraseReallyErases(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "segment.db")
	store := openStore(t, path)
	e := newEngine(t, store, &clock{t: t0})
	importJSON(t, e, `[{"id":"secret-event","type":"order","viewer":"zed-viewer","at":"2026-06-01T10:00:00Z","order_id":"zed-order","total":"9","customer":{"email":"zed@example.com"}},
	 {"id":"other","type":"watch","viewer":"keep","at":"2026-06-01T10:00:00Z","seconds":5}]`)
	g := ev(event.Danmaku, "zed-guest", t0)
	e.Apply(g)
	importJSON(t, e, `[{"id":"e2","type":"order","viewer":"zed-guest","at":"2026-06-02T10:00:00Z","order_id":"zed-order-2","total":"1","customer":{"email":"zed@example.com"}}]`)
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp, err := e.Export(context.Background(), "zed-guest")
	if err != nil || len(exp.Events) != 2 || len(exp.Orders) != 2 || exp.View == nil || exp.View.ID != "zed-viewer" {
		t.Fatalf("export %+v %v", exp, err)
	}
	if err := e.Erase(context.Background(), "zed-guest"); err != nil {
		t.Fatal(err)
	}
	// The erased viewer's connections close afterwards: their leaves create nothing.
	e.Apply(ev(event.Leave, "zed-guest", t0.Add(time.Minute)))
	e.Apply(ev(event.WatchStop, "zed-viewer", t0.Add(time.Minute)))
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"zed-viewer", "zed-guest", "email:zed@example.com"} {
		if _, err := e.Viewer(context.Background(), id); err == nil {
			t.Errorf("%s still found", id)
		}
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	// Read the file back: no key or value anywhere mentions the viewer.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	found := 0
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if bytes.Contains(k, []byte("zed")) || bytes.Contains(v, []byte("zed")) {
					t.Errorf("bucket %s still holds %q = %q", name, k, v)
				}
				if bytes.Contains(k, []byte("keep")) {
					found++
				}
				return nil
			})
		})
	})
	if found == 0 {
		t.Error("the other viewer was erased too")
	}
	// Not even in free pages of the file, nor in the journal's files.
	assertNoFileHolds(t, dir, "zed")
}

// assertNoFileHolds fails if any file in dir holds marker, anywhere in its bytes.
func assertNoFileHolds(t *testing.T, dir, marker string) {
	t.Helper()
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		raw, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		if n := bytes.Count(raw, []byte(marker)); n > 0 {
			t.Errorf("%s still holds %q %d times", f.Name(), marker, n)
		}
	}
}

func TestBoltLockedByAnotherHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segment.db")
	s := openBolt(t, path)
	defer s.Close()
	// bbolt's flock is per open file description, so a second open in-process blocks too.
	if _, err := OpenBolt(path, 50*time.Millisecond); err == nil {
		t.Fatal("second open succeeded")
	}
}

func TestProfileCodecRoundTrip(t *testing.T) {
	p := richProfile()
	got, err := unmarshalProfile(marshalProfile(p))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip:\n%s\n%s", a, b)
	}
	// Lives and open presences hold a place number; their JSON spells out the names.
	for _, want := range []string{`"lives":[{"live":"L","room":"r","start":7,"watch_ms":8}]`,
		`"open":[{"live":"L","room":"r","start":1,"last":2,"refs":2}]`,
		`"recent":[{"at":9,"type":"like","detail":"x"}]`,
		// The buyer's lists sit apart in memory; the JSON (the export) still holds them.
		`"aliases":["g1","email:a@b.c"]`, `"bought":[{"c":"bags","n":1}]`, `"order_ids":["o1","o2"]`,
		// Categories are numbers in memory; the JSON names them.
		`"clicks":[{"c":"shoes","n":3}]`, `"cats":[{"c":"shoes","d":20000,"n":3}]`} {
		if !bytes.Contains(a, []byte(want)) {
			t.Fatalf("JSON lacks %s:\n%s", want, a)
		}
	}
	var fromJSON Profile
	if err := json.Unmarshal(a, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromJSON.OrderIDs(), []string{"o1", "o2"}) {
		t.Fatalf("order ids from JSON: %q", fromJSON.OrderIDs())
	}
	if byValue, _ := json.Marshal(*p); !bytes.Equal(a, byValue) { // a copy keeps the buyer's lists
		t.Fatalf("marshalled by value:\n%s\n%s", a, byValue)
	}
	if c, _ := json.Marshal(&fromJSON); !bytes.Equal(a, c) {
		t.Fatalf("JSON round trip:\n%s\n%s", a, c)
	}
	data := marshalProfile(p)
	for i := range data {
		unmarshalProfile(data[:i]) // truncated records fail without panicking
	}
}

// A write-through larger than one transaction part is committed in parts, all of it.
func TestFlushInPartsKeepsEveryProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segment.db")
	store := openStore(t, path)
	clk := &clock{t: t0}
	cfg := testConfig()
	cfg.FlushInterval = time.Minute // only the Flush below writes
	e, err := New(cfg, Deps{Store: store, Now: clk.Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n := flushPart + flushPart/2
	for i := range n {
		e.Apply(event.Event{ID: fmt.Sprint("p", i), Type: event.Like, At: t0.Add(-time.Minute), Viewer: fmt.Sprint("v", i), Room: "r"})
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	store = openStore(t, path)
	defer store.Close()
	again := newEngine(t, store, clk)
	defer again.Close(context.Background())
	if got := again.Count(); got != n {
		t.Fatalf("after restart: %d profiles, want %d", got, n)
	}
	if v, err := again.Viewer(context.Background(), fmt.Sprint("v", n-1)); err != nil || v.Likes != 1 {
		t.Fatalf("last viewer after restart: %+v, %v", v, err)
	}
}

// pausedHeldStore holds each Held (what an export reads of the store) until released.
type pausedHeldStore struct {
	*MemoryStore
	asked, release chan struct{}
}

func (s *pausedHeldStore) Held(ctx context.Context, owners []string) (map[Kind][]Record, error) {
	s.asked <- struct{}{}
	<-s.release
	return s.MemoryStore.Held(ctx, owners)
}

// An erasure waits for an export under way, so the export holds the viewer whole. It
// did not: an export read the profile, an erasure ran meanwhile, and the export then
// read the store, which held none of the viewer's events any more: a profile without
// its events.
func TestErasureWaitsForAnExportUnderWay(t *testing.T) {
	store := &pausedHeldStore{MemoryStore: NewMemoryStore(), asked: make(chan struct{}), release: make(chan struct{})}
	e := newEngine(t, store, &clock{t: t0})
	importJSON(t, e, `[{"id":"zed-event","type":"like","viewer":"zed","at":"2026-06-01T10:00:00Z"}]`)
	ctx := context.Background()
	type answer struct {
		exp Export
		err error
	}
	exported := make(chan answer, 1)
	go func() {
		exp, err := e.Export(ctx, "zed")
		exported <- answer{exp, err}
	}()
	<-store.asked // the export has the profile and reads the store
	erased := make(chan error, 1)
	go func() { erased <- e.Erase(ctx, "zed") }()
	select {
	case err := <-erased:
		t.Errorf("an erasure ran during an export (%v)", err)
	case <-time.After(300 * time.Millisecond): // it waits, as it should (a wait on a lock cannot be seen)
	}
	close(store.release)
	a := <-exported
	if a.err != nil || string(a.exp.Profile) == "null" || len(a.exp.Events) != 1 {
		t.Fatalf("export: profile %s, %d events, %v; want the profile and its event", a.exp.Profile, len(a.exp.Events), a.err)
	}
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	go func() { <-store.asked }() // the next export's read of the store (it finds no profile)
	if _, err := e.Export(ctx, "zed"); problem.KindOf(err) != problem.NotFound {
		t.Fatalf("export after the erasure: %v", err)
	}
}

// A write-through's lists of records and profiles are kept for the next one, emptied
// (an erased viewer's id must not stay in them), unless a past spike would keep them
// far larger than the write-throughs since need.
func TestWriteThroughKeepsItsListsEmptied(t *testing.T) {
	cfg := testConfig()
	cfg.FlushInterval = time.Minute // only the Flushes below write
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	likes := func(from, n int) {
		for i := range n {
			e.Apply(event.Event{ID: fmt.Sprint("l", from, "/", i), Type: event.Like, At: t0.Add(-time.Minute), Viewer: fmt.Sprint("v", from+i), Room: "r"})
		}
		if err := e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	spare := func() snapshotLists {
		e.commitMu.Lock()
		defer e.commitMu.Unlock()
		l := e.spare
		for _, r := range l.records[:cap(l.records)] {
			if r.Key != "" || r.Data != nil {
				t.Fatalf("the kept records still hold %q", r.Key)
			}
		}
		for _, p := range l.profiles[:cap(l.profiles)] {
			if p != nil {
				t.Fatalf("the kept list still holds profile %q", p.ID)
			}
		}
		return l
	}
	likes(0, 100)
	first := spare()
	if cap(first.records) < 100 || cap(first.profiles) < 100 {
		t.Fatalf("kept lists of %d and %d, want room for the 100 profiles written", cap(first.records), cap(first.profiles))
	}
	likes(100, 100)
	if again := spare(); unsafe.SliceData(again.records) != unsafe.SliceData(first.records) ||
		unsafe.SliceData(again.profiles) != unsafe.SliceData(first.profiles) {
		t.Fatal("a write-through of as many profiles made new lists")
	}
	likes(1000, 5000) // a spike, then small write-throughs
	likes(0, 10)
	likes(0, 10)
	if l := spare(); cap(l.records) > 2000 || cap(l.profiles) > 2000 {
		t.Fatalf("after a spike of 5000, small write-throughs keep lists of %d and %d", cap(l.records), cap(l.profiles))
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := spare(); l.records != nil || l.profiles != nil {
		t.Fatalf("a closed engine keeps lists of %d and %d", cap(l.records), cap(l.profiles))
	}
}

// The write-through's key order agrees with byte order, zero bytes and prefixes included.
func TestSortedByKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []Record
	for range 5000 {
		b := make([]byte, rng.IntN(24))
		for j := range b {
			b[j] = byte(rng.IntN(3))
		}
		recs = append(recs, Record{Key: string(b)})
	}
	var keys []string
	for _, k := range sortedByKey(recs) {
		keys = append(keys, recs[k.i].Key)
	}
	if !slices.IsSorted(keys) {
		t.Fatal("keys out of order")
	}
}

// Categories are numbered by a process-wide table of bounded size. A stored record
// decoded once it is full loses the categories it cannot number, rather than keep them
// under "" (written back so, and summed into one nameless preference).
func TestCategoriesPastAFullTableAreDropped(t *testing.T) {
	today := dayOf(t0.UnixMilli())
	p := &Profile{ID: "v", Clicks: packedOf([]Count{newCount("shoes", 2), newCount("hats", 1)}),
		Cats: packedOf([]CatDay{catDay(today, categoryOf("shoes"), 2), catDay(today, categoryOf("hats"), 1)})}
	p.setBuyer(buyerFacts{Bought: packedOf([]Count{newCount("hats", 1)}), OrderIDs: idListOf([]string{"o1"})})
	bin := marshalProfile(p)
	js, _ := json.Marshal(p)
	saved := categories
	t.Cleanup(func() { categories = saved })
	categories = newTable[string](2) // "" and one name
	categoryOf("shoes")
	if categoryOf("hats") != 0 {
		t.Fatal("setup: the table is not full")
	}
	e := newEngine(t, nil, &clock{t: t0})
	for name, rec := range map[string][]byte{"binary": bin, "JSON": js} {
		got, err := unmarshalProfile(rec)
		if err != nil {
			t.Fatal(name, err)
		}
		if len(got.Clicks.get()) != 1 || got.Clicks.get()[0].Cat() != "shoes" || len(got.Cats.get()) != 1 || got.Cats.get()[0].Cat() != "shoes" || len(got.Bought()) != 0 {
			t.Errorf("%s: clicks %v, cats %v, bought %v; want shoes only", name, got.Clicks.get(), got.Cats.get(), got.Bought())
		}
		if words, _, _ := e.preferenceWords(got, t0.UnixMilli(), nil); slices.Contains(words, "") || !slices.Contains(words, "shoes") {
			t.Errorf("%s: preference %q (%s)", name, words, e.preferenceReason(got, t0.UnixMilli()))
		}
		if again, _ := json.Marshal(got); bytes.Contains(again, []byte(`"c":""`)) {
			t.Errorf("%s: written back with an empty category: %s", name, again)
		}
	}
}

// A write-through encodes a shard's changed profiles lockBatch at a time: an event for
// that shard is applied in between, not after the whole shard (at a million profiles
// that was 50–170 ms per event, and seconds of backlog). A profile changed after its
// batch was encoded is written by the next write-through.
func TestWriteThroughLetsEventsInBetweenItsBatches(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	store := NewMemoryStore()
	e, err := New(cfg, Deps{Store: store, Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	for i := range 3 * lockBatch {
		e.Apply(ev(event.Like, fmt.Sprintf("v%d", i), t0))
	}
	gaps := 0
	batchGap = func() {
		if gaps++; gaps > 1 {
			return
		}
		applied := make(chan struct{})
		go func() { e.Apply(ev(event.Like, "v0", t0)); close(applied) }()
		select {
		case <-applied:
		case <-time.After(10 * time.Second):
			t.Error("an event waited for the whole shard's write-through")
		}
	}
	t.Cleanup(func() { batchGap = nil })
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	batchGap = nil
	if gaps != 2 {
		t.Fatalf("%d gaps between the batches of %d profiles, want 2", gaps, 3*lockBatch)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := New(cfg, Deps{Store: store, Now: (&clock{t: t0}).Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(context.Background())
	if v := viewer(t, again, "v0"); v.Likes != 2 {
		t.Fatalf("v0 has %d likes in the store, want 2 (the second came during the write-through)", v.Likes)
	}
}

// TestLoadSharesRecentRooms checks that a loaded profile's recent events whose detail is
// a room hold the profile's copy of the room, as the running engine's do, not a string
// of their own each.
func TestLoadSharesRecentRooms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segment.db")
	store := openStore(t, path)
	clk := &clock{t: t0}
	e := newEngine(t, store, clk)
	for i, typ := range []event.Type{event.Join, event.Like, event.Like, event.Leave} {
		e.Apply(ev(typ, "v", t0.Add(time.Duration(i)*time.Second)))
	}
	e2, _ := restart(t, e, store, path, clk)
	sh, p := e2.lookup("v", false)
	if p == nil {
		t.Fatal("profile not loaded")
	}
	defer sh.mu.Unlock()
	if len(p.Rooms.get()) != 1 || len(p.Recent.get()) != 4 {
		t.Fatalf("rooms %v, %d recent events", p.Rooms.get(), len(p.Recent.get()))
	}
	room := unsafe.StringData(p.Rooms.get()[0])
	for _, r := range p.Recent.get() {
		if r.Detail() != "r1" {
			t.Fatalf("recent %s: detail %q", r.Type(), r.Detail())
		}
		if unsafe.StringData(r.Detail()) != room {
			t.Errorf("recent %s: its detail is a copy of the room, not the profile's", r.Type())
		}
	}
}

// restart stops e cleanly, closes its store at path, and returns a new engine on the
// store reopened (closed when the test ends), and that store.
func restart(t *testing.T, e *Engine, store io.Closer, path string, clk *clock) (*Engine, *JournalStore) {
	t.Helper()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	s := openStore(t, path)
	t.Cleanup(func() { s.Close() })
	return newEngine(t, s, clk), s
}

// slowStore's commits take delay, and it notes when each began.
type slowStore struct {
	*MemoryStore
	delay  atomic.Int64 // nanoseconds
	mu     sync.Mutex
	begins []time.Time
}

func (s *slowStore) Commit(ctx context.Context, b *Batch) error {
	s.mu.Lock()
	s.begins = append(s.begins, time.Now())
	s.mu.Unlock()
	time.Sleep(time.Duration(s.delay.Load()))
	return s.MemoryStore.Commit(ctx, b)
}

// The write-through loop waits four times as long as the last write-through took,
// whoever asked for it: after a slow one it holds off, and after a quick one asked for
// elsewhere it writes every FlushInterval again, not when the slow one's pause ends.
func TestWriteThroughPausesAfterTheLastOneWhoeverAskedForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.FlushInterval = time.Second
		store := &slowStore{MemoryStore: NewMemoryStore()}
		e, err := New(cfg, Deps{Store: store, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		start := time.Now()
		store.delay.Store(int64(10 * time.Second))
		e.Apply(ev(event.Like, "v1", start))
		time.Sleep(12 * time.Second) // the loop's write-through: from 1 s to 11 s
		store.delay.Store(0)
		e.Apply(ev(event.Like, "v2", time.Now()))
		time.Sleep(8 * time.Second)                           // the loop waits (until 51 s)
		if err := e.Flush(context.Background()); err != nil { // at 20 s, quick
			t.Fatal(err)
		}
		e.Apply(ev(event.Like, "v3", time.Now()))
		time.Sleep(5 * time.Second)
		synctest.Wait()

		store.mu.Lock()
		defer store.mu.Unlock()
		var at []time.Duration
		for _, b := range store.begins {
			at = append(at, b.Sub(start))
		}
		want := []time.Duration{time.Second, 20 * time.Second, 21 * time.Second}
		if !slices.Equal(at, want) {
			t.Fatalf("write-throughs began at %v, want %v", at, want)
		}
	})
}

// A long pass over the shards yields the core between its batches while it has had
// at least a tenth of the time since it began, and stops yielding below that, so that
// a write-through on a busy core still gets written. A wait it chose (the sweep's, for
// a burst of rule firings) is no sign of a busy core.
func TestPassYieldsOnlyWhileItHasItsShare(t *testing.T) {
	for _, c := range []struct {
		work, waited time.Duration
		yield        bool
	}{
		{0, 0, false}, // no batch yet: nothing had
		{time.Millisecond, 0, false},
		{9 * time.Millisecond, 0, false},
		{10 * time.Millisecond, 0, true},
		{100 * time.Millisecond, 0, true}, // alone on its core
		{5 * time.Millisecond, 40 * time.Millisecond, false},
		{5 * time.Millisecond, 60 * time.Millisecond, true},
	} {
		s := pace{begin: t0, work: c.work}
		s.waited(c.waited)
		if got := s.yields(t0.Add(100 * time.Millisecond)); got != c.yield {
			t.Errorf("%v of work in 100 ms, %v of it waited: yields %v, want %v", c.work, c.waited, got, c.yield)
		}
	}
}

// The loop's write-through may wait for the store behind another caller's: when that
// one was slow, the loop's keeps the pause it calls for, and writes nothing yet.
func TestLoopWriteThroughKeepsThePauseAfterWaitingForTheStore(t *testing.T) {
	cfg := testConfig()
	cfg.FlushInterval = time.Minute // the loop itself stays out of the way
	store := NewMemoryStore()
	e, err := New(cfg, Deps{Store: store, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	e.Apply(ev(event.Like, "v1", time.Now()))
	stored := func() bool {
		found := false
		store.Load(context.Background(), func(k string, _ []byte) error {
			found = found || k == "v1"
			return nil
		}, func(string, []byte) error { return nil })
		return found
	}
	// As if another caller's write-through had just ended after 10 s, while the loop's
	// waited for the store.
	e.lastFlush.Store(&flushTiming{end: time.Now(), took: 10 * time.Second})
	if err := e.flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if stored() {
		t.Fatal("the loop wrote through during the pause after a slow write-through")
	}
	if err := e.Flush(context.Background()); err != nil { // anyone else's writes at once
		t.Fatal(err)
	}
	if !stored() {
		t.Fatal("Flush wrote nothing")
	}
}

// A pass keeps one pace across the shards it visits: its work on every shard counts
// towards its share (a pace begun afresh per shard gave a snapshot of many small
// shards a few percent of a busy core).
func TestPassCountsItsWorkAcrossShards(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	for i := range 64 {
		e.Apply(ev(event.Like, fmt.Sprintf("v%d", i), t0))
	}
	pass := newPace()
	visited, shards := 0, 0
	for _, sh := range e.shards {
		list := sh.profileList(nil)
		if len(list) == 0 {
			continue
		}
		shards++
		sh.inBatches(list, pass, func(*Profile) {
			visited++
			time.Sleep(time.Millisecond)
		})
	}
	if shards < 2 || visited != 64 {
		t.Fatalf("%d profiles over %d shards, want 64 over several", visited, shards)
	}
	if pass.work < 64*time.Millisecond {
		t.Errorf("the pass counted %v of work over %d shards, want at least 64 ms", pass.work, shards)
	}
}

// inBatches visits each profile of its list once, in order, skipping the gone ones,
// however the list's length falls against its batches and its warming's distances.
func TestInBatchesVisitsEachProfileOnceInOrder(t *testing.T) {
	sh := &shard{}
	for _, n := range []int{0, 1, passListsAhead, passProfileAhead + 1, lockBatch - 1, lockBatch, 2*lockBatch + passProfileAhead + 3} {
		list := make([]*Profile, n)
		var want []*Profile
		for i := range list {
			list[i] = &Profile{ID: fmt.Sprint(i), Days: packedOf(make([]Bucket, i%5)), Recent: packedOf(make([]Recent, i%7))}
			list[i].mark(gone, i%11 == 3)
			if !list[i].is(gone) {
				want = append(want, list[i])
			}
		}
		var got []*Profile
		sh.inBatches(list, newPace(), func(p *Profile) { got = append(got, p) })
		if !slices.Equal(got, want) {
			t.Errorf("a list of %d: visited %d profiles, want %d in order", n, len(got), len(want))
		}
	}
}

// A profile written twice in one batch keeps the later record, whether the batch comes
// in key order (a fold's parts, written as they are) or not (sorted by the commit).
func TestBoltCommitKeepsTheLaterOfTwoWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"in key order", []string{"a", "b", "b", "c"}},
		{"out of order", []string{"c", "b", "a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openBolt(t, filepath.Join(t.TempDir(), "segment.db"))
			defer s.Close()
			b := &Batch{}
			for i, k := range tc.keys {
				b.Profiles = append(b.Profiles, Record{Key: k, Data: []byte(fmt.Sprintf("%s%d", k, i))})
			}
			if got := putOrder(b.Profiles) == nil; got != slices.IsSorted(tc.keys) {
				t.Fatalf("putOrder left the batch as it is: %v, want %v", got, slices.IsSorted(tc.keys))
			}
			if err := s.Commit(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			err := s.Load(context.Background(), func(id string, data []byte) error {
				got[id] = string(data)
				return nil
			}, func(string, []byte) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for i, k := range tc.keys {
				want[k] = fmt.Sprintf("%s%d", k, i)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("stored %v, want %v", got, want)
			}
		})
	}
}

// An erasure whose store part fails answers "retry", and the retry finishes it,
// though the profile left memory at the first try: nothing of the viewer (or of an id
// merged into it) stays stored to come back at a restart. A profile the viewer made
// again in between goes with it.
func TestEraseRetriedAfterStoreFailure(t *testing.T) {
	for _, again := range []bool{false, true} {
		store := &failingStore{MemoryStore: NewMemoryStore()}
		clk := &clock{t: t0}
		e := newEngine(t, store, clk)
		importJSON(t, e, `[`+orderJSON("e1", "guest", 3, "10.00", "shoes")+`,
		 {"id":"e2","type":"order","viewer":"v","at":"2026-06-14T10:00:00Z","order_id":"O2","total":"5.00","customer":{"id":"K"}},
		 {"id":"e3","type":"like","viewer":"guest","at":"2026-06-14T11:00:00Z"},
		 {"id":"e4","type":"order","viewer":"guest","at":"2026-06-14T12:00:00Z","order_id":"O4","total":"5.00","customer":{"id":"K"}}]`)
		owner := e.ownerOf("guest")
		if err := e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		store.failErase.Store(true)
		if err := e.Erase(context.Background(), "guest"); problem.KindOf(err) != problem.Unavailable {
			t.Fatalf("erase on a failing store: %v", err)
		}
		store.failErase.Store(false)
		if again {
			e.Apply(ev(event.Like, "guest", t0))
			if err := e.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ids := []string{"guest", "v", "customer:K", owner}
		// What a node erases elsewhere (the rules' state, DMs) before the retry.
		if got, err := e.Identities(context.Background(), "guest"); err != nil || !sameSet(got, ids) {
			t.Errorf("again %v: identities to retry the erasure of: %q (%v), want %q", again, got, err, ids)
		}
		if err := e.Erase(context.Background(), "guest"); err != nil {
			t.Fatalf("again %v: the retry: %v", again, err)
		}
		held, err := store.Held(context.Background(), ids)
		seen, _ := store.Seen(context.Background(), KindOrder, []string{"O2", "O4", "o-e1"})
		if err != nil || len(held[KindEvent])+len(held[KindOrder]) > 0 || len(seen) > 0 {
			t.Errorf("again %v: after the retried erasure the store holds %d events, %d orders of %v; orders seen %v (%v)",
				again, len(held[KindEvent]), len(held[KindOrder]), ids, seen, err)
		}
		e.Close(context.Background())
		if n := newEngine(t, store, clk).Count(); n != 0 {
			t.Errorf("again %v: %d profiles after a restart, want none", again, n)
		}
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
