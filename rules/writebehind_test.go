package rules

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestWriteBehindCapsUnderConcurrentFlushes: workers read uncached counters outside
// the lock while flushes write and forget them; every cap must still hold exactly,
// in memory and in the file.
func TestWriteBehindCapsUnderConcurrentFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.db")
	st, err := OpenBolt(path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	const keys, capN, workers, tries = 5, 40, 8, 150
	var taken [keys]atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flusher := sync.WaitGroup{}
	flusher.Go(func() { // extra flushes, besides the 1 ms ticker
		for {
			select {
			case <-stop:
				return
			default:
				if err := st.flush(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	at := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := range tries {
				k := (w + i) % keys
				ok, err := st.Commit(context.Background(), Firing{At: at.Add(time.Duration(i)), Limits: []Limit{{Key: fmt.Sprint("k", k), Cap: capN}}})
				if err != nil {
					t.Error(err)
					return
				}
				if ok[0] {
					taken[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flusher.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenBolt(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for k := range keys {
		if n := taken[k].Load(); n != capN {
			t.Errorf("key %d: %d firings allowed, cap %d", k, n, capN)
		}
		more := Firing{At: at.Add(time.Hour), Limits: []Limit{{Key: fmt.Sprint("k", k), Cap: capN + 1}}}
		ok, err := st.Commit(context.Background(), more)
		if err != nil || !ok[0] {
			t.Fatalf("key %d: one more under cap+1: %v %v", k, ok, err)
		}
		ok, _ = st.Commit(context.Background(), more)
		if ok[0] {
			t.Errorf("key %d: the file did not keep %d firings", k, capN)
		}
	}
}

// TestWriteBehindRereadsAfterFlush: a counter read from the file goes stale when,
// before the lock is taken again, another firing counts it and a flush writes and
// forgets it; the commit must see the newer count.
func TestWriteBehindRereadsAfterFlush(t *testing.T) {
	st := heldState(t)
	ctx, at := context.Background(), time.Now()
	once := Firing{At: at, Limits: []Limit{{Key: "once", Cap: 1}}}
	var inner []bool
	st.wb.afterRead = func() {
		st.wb.afterRead = nil
		var err error
		if inner, err = st.Commit(ctx, once); err != nil {
			t.Error(err)
		}
		if err := st.flush(); err != nil {
			t.Error(err)
		}
	}
	outer, err := st.Commit(ctx, once)
	if err != nil {
		t.Fatal(err)
	}
	if !inner[0] || outer[0] {
		t.Fatalf("cap 1: the inner commit got %v and the outer %v; want exactly the inner", inner, outer)
	}
}

// TestCommitBatchInOrder: the firings of one Commit are taken in order, each after
// the ones before it, on every State.
func TestCommitBatchInOrder(t *testing.T) {
	states := allStates(t)
	for name, open := range states {
		t.Run(name, func(t *testing.T) {
			st, at := open(), time.Now()
			rec := func(v string) *Record {
				return &Record{Action: Action{At: at, Viewer: v, RuleID: "r", Type: ActPrompt}}
			}
			capped := []Limit{{Key: "a", Cap: 1}}
			cooled := []Limit{{Key: "b", Cooldown: time.Minute}}
			ok, err := st.Commit(context.Background(),
				Firing{At: at, Limits: capped, Rec: rec("v1")},
				Firing{At: at, Limits: capped, Rec: rec("v2")},
				Firing{At: at, Limits: cooled, Rec: rec("v3")},
				Firing{At: at.Add(30 * time.Second), Limits: cooled, Rec: rec("v4")},
				Firing{At: at.Add(time.Minute), Limits: cooled, Rec: rec("v5")},
				Firing{At: at, Rec: rec("v6")})
			if err != nil {
				t.Fatal(err)
			}
			if want := []bool{true, false, true, false, true, true}; fmt.Sprint(ok) != fmt.Sprint(want) {
				t.Fatalf("ok = %v, want %v", ok, want)
			}
			for v, n := range map[string]int{"v1": 1, "v2": 0, "v3": 1, "v4": 0, "v5": 1, "v6": 1} {
				if acts, err := st.Actions(context.Background(), v); err != nil || len(acts) != n {
					t.Errorf("%s: %d actions (%v), want %d", v, len(acts), err, n)
				}
			}
		})
	}
}

// TestWriteBehindKnowsStoredKeys: the write-behind state reads from the file only the
// counter keys the file may hold (those there when it opened and those it has
// flushed since), and still enforces the limits of the others.
func TestWriteBehindKnowsStoredKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.db")
	ctx, at := context.Background(), time.Now()
	once := func(key string) Firing { return Firing{At: at, Limits: []Limit{{Key: key, Cap: 1}}} }
	st, err := OpenBolt(path, 0) // write-through: "old" is in the file before the write-behind opens it
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Commit(ctx, once("old")); err != nil || !ok[0] {
		t.Fatalf("first firing: %v %v", ok, err)
	}
	st.Close()
	if st, err = OpenBolt(path, time.Hour); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.wb.inFile("old") || st.wb.inFile("new") {
		t.Fatalf("keys in the file: old %v, new %v", st.wb.inFile("old"), st.wb.inFile("new"))
	}
	for _, c := range []struct {
		key  string
		want bool
	}{{"old", false}, {"new", true}, {"new", false}} {
		if ok, err := st.Commit(ctx, once(c.key)); err != nil || ok[0] != c.want {
			t.Fatalf("%s: allowed %v (%v), want %v", c.key, ok, err, c.want)
		}
	}
	if st.wb.inFile("new") {
		t.Fatal("a counter not flushed yet is taken for one in the file")
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	if !st.wb.inFile("new") || len(st.wb.cache) != 0 {
		t.Fatalf("after a flush: new in file %v, %d counters cached", st.wb.inFile("new"), len(st.wb.cache))
	}
	if ok, _ := st.Commit(ctx, once("new")); ok[0] {
		t.Fatal("the flushed counter was not read back: cap exceeded")
	}
}

// allStates makes each kind of State, empty.
func allStates(t *testing.T) map[string]func() State {
	bolt := func(flushEvery time.Duration) func() State {
		return func() State {
			st, err := OpenBolt(filepath.Join(t.TempDir(), "rules.db"), flushEvery)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}
	return map[string]func() State{
		"memory":             func() State { return NewMemoryState() },
		"bolt-write-through": bolt(0),
		"bolt-write-behind":  bolt(time.Hour),
	}
}

// TestAnyTagged: only a tag action in some viewer's log makes AnyTagged true, whether
// it is written yet or not.
func TestAnyTagged(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	for name, open := range allStates(t) {
		st := open()
		for _, c := range []struct {
			typ  string
			want bool
		}{{ActPrompt, false}, {ActDM, false}, {ActTag, true}} {
			rec := &Record{Action: Action{At: at, Viewer: "v-" + c.typ, RuleID: "r", Type: c.typ, Detail: `"type":"x"`}}
			if _, err := st.Commit(ctx, Firing{At: at, Rec: rec}); err != nil {
				t.Fatal(err)
			}
			if got, err := st.AnyTagged(ctx); err != nil || got != c.want {
				t.Fatalf("%s: after a %s action: AnyTagged %v (%v), want %v", name, c.typ, got, err, c.want)
			}
		}
	}
}

// TestActionsSeePendingWithoutFlushing: a viewer's log read from the write-behind state
// holds the firings not yet written, in order and once, and does not write them.
func TestActionsSeePendingWithoutFlushing(t *testing.T) {
	st, commit, details := actionLog(t)
	commit("a")
	commit("b")
	if got := details(); got != "[a b]" {
		t.Fatalf("pending actions: %s", got)
	}
	if n := len(st.wb.recs); n != 2 {
		t.Fatalf("reading the log wrote it: %d firings still pending, want 2", n)
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	commit("c")
	if got := details(); got != "[a b c]" {
		t.Fatalf("written and pending actions: %s", got)
	}
}

// TestActionsDuringFlush: a viewer's log read while a flush is writing it returns at
// once (the rules' event bridge reads logs, and a flush of a burst takes hundreds of
// milliseconds), with every firing once; so does a read that a whole flush overtakes
// between reading the file and the firings not yet written.
func TestActionsDuringFlush(t *testing.T) {
	st, commit, read := actionLog(t)
	details := func() string {
		t.Helper()
		got := make(chan string, 1)
		go func() { got <- read() }()
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("reading the log waited for the flush")
			return ""
		}
	}
	commit("a")
	inFlush, release := make(chan struct{}), make(chan struct{})
	st.wb.duringFlush = func() {
		close(inFlush)
		<-release
	}
	flushed := make(chan error, 1)
	go func() { flushed <- st.flush() }()
	<-inFlush
	commit("b") // lands after the flush took its records
	if got := details(); got != "[a b]" {
		t.Fatalf("during the flush: %s", got)
	}
	close(release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	st.wb.duringFlush = nil
	if got := details(); got != "[a b]" {
		t.Fatalf("after the flush: %s", got)
	}

	// A flush that starts and ends between the two reads: the read is done again.
	reads := 0
	st.afterViewerRead = func() {
		if reads++; reads == 1 {
			if err := st.flush(); err != nil {
				t.Error(err)
			}
		}
	}
	if got := details(); got != "[a b]" {
		t.Fatalf("overtaken by a flush: %s", got)
	}
	if reads != 2 {
		t.Fatalf("%d reads, want 2 (the first was overtaken)", reads)
	}
}

// TestViewerPromptsSeePendingWithoutFlushing: the rules look for a viewer's recent
// prompts on every order; those not yet written are found without writing them (a
// flush, an fsync, per order paced an import of a shop's orders).
func TestViewerPromptsSeePendingWithoutFlushing(t *testing.T) {
	st := heldState(t)
	ctx, at := context.Background(), time.Now()
	p := &Prompt{ID: "p1", Room: "r1", Viewer: PromptUser{ID: "v1"}, RuleID: "stay", CreatedAt: at}
	rec := &Record{Action: Action{At: at, Viewer: "v1", RuleID: "stay", Type: ActPrompt, Detail: p.ID}, Prompt: p}
	if _, err := st.Commit(ctx, Firing{At: at, Rec: rec}); err != nil {
		t.Fatal(err)
	}
	for since, want := range map[time.Time]string{at.Add(-time.Hour): "[p1]", at.Add(time.Second): "[]"} {
		if ids, err := st.ViewerPrompts(ctx, "v1", since); err != nil || fmt.Sprint(ids) != want {
			t.Errorf("prompts since %v: %v %v, want %s", since.Sub(at), ids, err, want)
		}
	}
	if n := len(st.wb.recs); n != 1 {
		t.Fatalf("looking for the prompts wrote them: %d firings pending, want 1", n)
	}
}

// TestJobsWrittenBehind: with a flush interval, jobs scheduled and deleted are written
// together in one transaction, and Close writes them: the rules schedule one per
// order, and a transaction (an fsync) each made them fall behind an import of orders.
func TestJobsWrittenBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.db")
	st, err := OpenBolt(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lastTx := func() (id int) {
		st.db.View(func(tx *bolt.Tx) error { id = st.db.TxID(tx); return nil })
		return id
	}
	before := lastTx()
	for i := range 100 {
		if err := st.PutJob(ctx, Job{ID: fmt.Sprint("j", i), Due: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteJob(ctx, "j0"); err != nil {
		t.Fatal(err)
	}
	if n := lastTx() - before; n != 0 {
		t.Fatalf("%d transactions for jobs written behind an hourly flush", n)
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	if n := lastTx() - before; n != 1 {
		t.Fatalf("%d transactions wrote the jobs, want 1", n)
	}
	if err := st.DeleteJob(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = OpenBolt(path, 0); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs, err := st.Jobs(ctx)
	if err != nil || len(jobs) != 98 || slices.ContainsFunc(jobs, func(j Job) bool { return j.ID == "j0" || j.ID == "j1" }) {
		t.Fatalf("after Close: %d jobs (%v), want j2…j99", len(jobs), err)
	}
}

// heldState opens a write-behind state that flushes only when told, closed when the
// test ends.
func heldState(t *testing.T) *BoltState {
	t.Helper()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "rules.db"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// actionLog opens a write-behind state that flushes only when told; commit records
// an action for viewer v1 and details lists v1's actions as read from the state.
func actionLog(t *testing.T) (st *BoltState, commit func(detail string), details func() string) {
	st = heldState(t)
	ctx, at := context.Background(), time.Now()
	commit = func(detail string) {
		t.Helper()
		rec := &Record{Action: Action{At: at, Viewer: "v1", RuleID: "r", Type: ActDM, Detail: detail}}
		if _, err := st.Commit(ctx, Firing{At: at, Rec: rec}); err != nil {
			t.Fatal(err)
		}
	}
	details = func() string {
		acts, err := st.Actions(ctx, "v1")
		if err != nil {
			t.Error(err)
		}
		var out []string
		for _, a := range acts {
			out = append(out, a.Detail)
		}
		return fmt.Sprint(out)
	}
	return st, commit, details
}

// TestFlushFailureMakesStateUnready: after a failed write-behind flush, firings are
// still taken (kept for the next flush) and Ready reports the failure until a flush
// succeeds.
func TestFlushFailureMakesStateUnready(t *testing.T) {
	st := heldState(t)
	ctx := context.Background()
	st.wb.mu.Lock()
	st.wb.err = errors.New("disk full") // as the flusher records a failed flush
	st.wb.mu.Unlock()
	rec := &Record{Action: Action{At: time.Now(), Viewer: "v1", RuleID: "r", Type: ActDM}}
	ok, err := st.Commit(ctx, Firing{At: time.Now(), Limits: []Limit{{Key: "k", Cap: 1}}, Rec: rec})
	if err != nil || !ok[0] {
		t.Fatalf("commit after a failed flush: %v %v", ok, err)
	}
	if err := st.Ready(ctx); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Ready after a failed flush: %v", err)
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	if err := st.Ready(ctx); err != nil {
		t.Fatalf("Ready after a good flush: %v", err)
	}
	if acts, _ := st.Actions(ctx, "v1"); len(acts) != 1 {
		t.Fatalf("the firing taken during the failure was not written: %v", acts)
	}
}
