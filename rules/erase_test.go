package rules

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liveroom/liveroom/event"
	bolt "go.etcd.io/bbolt"
)

// TestEraseViewer: on every state, erasing the ids of a viewer (two here, erased in
// one call) removes their action logs, the prompts about them (from the room's queue
// too), their counters and their jobs, and leaves another viewer's alone.
func TestEraseViewer(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	for name, open := range allStates(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			for _, v := range []string{"v1", "v2", "v3"} {
				p := &Prompt{ID: "p-" + v, Room: "r1", Viewer: PromptUser{ID: v}, RuleID: "stay", CreatedAt: at}
				f := Firing{At: at, Limits: []Limit{{Key: "r\x00stay\x00" + v, Cap: 1}},
					Rec: &Record{Action: Action{At: at, Viewer: v, RuleID: "stay", Type: ActPrompt, Detail: p.ID}, Prompt: p}}
				if ok, err := st.Commit(ctx, f); err != nil || !ok[0] {
					t.Fatalf("commit %s: %v %v", v, ok, err)
				}
				if err := st.PutJob(ctx, Job{ID: "j-" + v, RuleID: "followup", Due: at.Add(time.Hour), Env: Env{Viewer: Viewer{ID: v}}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Erase(ctx, "v1", "v3"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				viewer string
				held   int
			}{{"v1", 0}, {"v2", 1}, {"v3", 0}} {
				acts, _ := st.Actions(ctx, c.viewer)
				prompts, _ := st.AboutPrompts(ctx, c.viewer)
				if len(acts) != c.held || len(prompts) != c.held {
					t.Errorf("%s: %d actions and %d prompts left, want %d", c.viewer, len(acts), len(prompts), c.held)
				}
				again := Firing{At: at, Limits: []Limit{{Key: "r\x00stay\x00" + c.viewer, Cap: 1}}}
				if ok, _ := st.Commit(ctx, again); ok[0] != (c.held == 0) {
					t.Errorf("%s: counter kept %v, want %v", c.viewer, !ok[0], c.held == 1)
				}
			}
			if room, _ := st.Prompts(ctx, "r1"); len(room) != 1 || room[0].Viewer.ID != "v2" {
				t.Errorf("room queue: %+v", room)
			}
			if all, _ := st.Prompts(ctx, ""); len(all) != 1 || all[0].Viewer.ID != "v2" {
				t.Errorf("every room's prompts: %+v", all)
			}
			if about, _ := st.AboutPrompts(ctx, ""); len(about) != 0 {
				t.Errorf("prompts about the viewer \"\": %+v", about)
			}
			if jobs, _ := st.Jobs(ctx); len(jobs) != 1 || jobs[0].ID != "j-v2" {
				t.Errorf("jobs: %+v", jobs)
			}
		})
	}
}

// TestEraseWhileFiring: a firing and a job about the viewer committed while the erase
// runs, and a flush that the write-behind's ticker tries meanwhile, leave nothing about
// the viewer once both are done: the flush waits for the erase to drop what memory holds.
// The same goes for an ended live's once counters: one committed meanwhile is dropped
// from memory and the key set together, so a later firing reads the file right.
func TestEraseWhileFiring(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	st := heldState(t)
	firing := func(v string, at time.Time, key string) Firing {
		p := &Prompt{ID: "p-" + v + at.String(), Room: "r1", Viewer: PromptUser{ID: v}, RuleID: "stay", CreatedAt: at}
		return Firing{At: at, Limits: []Limit{{Key: key, Cap: 1}},
			Rec: &Record{Action: Action{At: at, Viewer: v, RuleID: "stay", Type: ActPrompt, Detail: p.ID}, Prompt: p}}
	}
	commit := func(f Firing) bool {
		ok, err := st.Commit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return ok[0]
	}
	commit(firing("v1", at, "r\x00stay\x00v1"))
	flushed := make(chan error, 1)
	st.afterRewrite = func() {
		commit(firing("v1", at.Add(time.Second), "r\x00other\x00v1"))
		if err := st.PutJob(ctx, Job{ID: "j-v1", Env: Env{Viewer: Viewer{ID: "v1"}}}); err != nil {
			t.Error(err)
		}
		go func() { flushed <- st.flush() }() // the ticker
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.Erase(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	nothingAbout(t, st, "v1")

	key := onceKey(stayKey("stay", "v1", "l1"))
	if !commit(Firing{At: at, Limits: []Limit{{Key: key, Cap: 1}}}) {
		t.Fatal("first firing refused")
	}
	st.afterRewrite = func() {
		if !commit(Firing{At: at.Add(time.Second), Limits: []Limit{{Key: key, Cap: 1}}}) {
			t.Error("the ended live's counter was not forgotten")
		}
		go func() { flushed <- st.flush() }()
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.ForgetLive(ctx, "l1"); err != nil {
		t.Fatal(err)
	}
	st.afterRewrite = nil
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if !commit(Firing{At: at.Add(2 * time.Second), Limits: []Limit{{Key: key, Cap: 1}}}) {
		t.Fatal("a counter dropped from memory was written after all")
	}
	if commit(Firing{At: at.Add(3 * time.Second), Limits: []Limit{{Key: key, Cap: 1}}}) {
		t.Fatal("cap 1 let a second firing through after the flush")
	}
}

// TestEraseMatchesOnlyTheViewersKeys: erasing a viewer whose id is also a rule id
// leaves the other viewers' counters of that rule alone.
func TestEraseMatchesOnlyTheViewersKeys(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	for name, open := range allStates(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			f := Firing{At: at, Limits: []Limit{{Key: "r\x00stay\x00v2", Cap: 1}}, Rec: &Record{Action: Action{At: at, Viewer: "v2", RuleID: "stay", Type: ActDM}}}
			if ok, err := st.Commit(ctx, f); err != nil || !ok[0] {
				t.Fatal(ok, err)
			}
			if err := st.Erase(ctx, "stay"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := st.Commit(ctx, f); ok[0] {
				t.Fatal(`erasing viewer "stay" reset v2's cap on rule stay`)
			}
		})
	}
}

// blockingProfiles holds each snapshot until told to answer.
type blockingProfiles struct{ in, out chan struct{} }

func (b blockingProfiles) Snapshot(_ context.Context, id, live string) (Viewer, Session, bool) {
	b.in <- struct{}{}
	<-b.out
	return viewer(id), Session{Room: "r1", Live: live, Watching: true, WatchSeconds: 3}, true
}

func (b blockingProfiles) Version(context.Context, string) (uint64, bool) { return 0, true }

// TestEngineEraseWaitsForFiring: a stay timer a worker is firing when the viewer is
// erased is waited for, so that what it commits is erased too. A firing being made
// ready ahead of the threshold is dropped by the erase.
func TestEngineEraseWaitsForFiring(t *testing.T) {
	forEachStayMode(t, func(t *testing.T, cfg Config) {
		ctx := context.Background()
		bp := blockingProfiles{make(chan struct{}), make(chan struct{})}
		e, out, st := start(t, mustCompile(t, DefaultRules(2*time.Second)), nil, withConfig(cfg), withProfiles(bp))
		e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: 1.95}, event.Event{Type: event.WatchStart, At: time.Now()})
		<-bp.in // a worker is firing (or preparing) v1's timer
		erased := make(chan error, 1)
		go func() { erased <- e.Erase(ctx, "v1") }()
		select {
		case err := <-erased:
			t.Fatalf("the erase did not wait for the firing (%v)", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(bp.out)
		if err := <-erased; err != nil {
			t.Fatal(err)
		}
		nothingAbout(t, st, "v1")
		want := 1 // the one being fired
		if cfg.StayPrepare > 0 {
			want = 0 // made ready, not sent: the erase disarmed it
		}
		time.Sleep(200 * time.Millisecond) // past the threshold
		if sent, _ := out.sent(); len(sent) != want {
			t.Fatalf("%d prompts sent, want %d", len(sent), want)
		}
		if n := e.wheel.len(); n != 0 {
			t.Fatalf("%d timers armed after the erase", n)
		}
	})
}

// forEachStayMode runs f with stay firings made at the threshold and made ready ahead.
func forEachStayMode(t *testing.T, f func(*testing.T, Config)) {
	for _, prepare := range []time.Duration{0, time.Second} {
		t.Run("prepare="+prepare.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.StayPrepare = prepare
			f(t, cfg)
		})
	}
}

// gateProfiles holds the first snapshot until told to answer; later ones answer at once.
type gateProfiles struct {
	in, out chan struct{}
	n       int
}

func (b *gateProfiles) Snapshot(_ context.Context, id, live string) (Viewer, Session, bool) {
	b.n++
	if b.n == 1 {
		b.in <- struct{}{}
		<-b.out
	}
	return viewer(id), Session{Room: "r1", Live: live, Watching: true, WatchSeconds: 3}, true
}

func (b *gateProfiles) Version(context.Context, string) (uint64, bool) { return 0, true }

// TestEngineEraseDuringFiringThatDefers: a stay timer being fired in the viewer's
// quiet hours defers its DM as a job while the erase waits; the erase disarms that job
// too, so nothing reaches the erased viewer when the quiet hours end.
func TestEngineEraseDuringFiringThatDefers(t *testing.T) {
	forEachStayMode(t, func(t *testing.T, cfg Config) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			doc, err := Parse([]byte(`{"quiet_hours":{"start":"00:00","end":"08:00"},"rules":[{"id":"stay",
			"trigger":{"timer":{"kind":"stay","threshold":"2s"}},"action":{"type":"dm","text":"hi"}}]}`))
			if err != nil {
				t.Fatal(err)
			}
			bp := &gateProfiles{in: make(chan struct{}), out: make(chan struct{})}
			e, out, st := start(t, mustCompile(t, doc), nil, withConfig(cfg), withProfiles(bp))
			e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: 1.95}, event.Event{Type: event.WatchStart, At: time.Now()})
			<-bp.in // the bubble's clock starts at midnight UTC: in the quiet hours
			// The erase waits for the chunk under way on a mutex, which the bubble does not
			// count as durably blocked: the firing is let go at once, not after a sleep.
			erased := make(chan error, 1)
			go func() { erased <- e.Erase(ctx, "v1") }()
			close(bp.out)
			if err := <-erased; err != nil {
				t.Fatal(err)
			}
			if n := e.wheel.len(); n != 0 {
				t.Fatalf("%d timers still armed after the erase", n)
			}
			time.Sleep(10 * time.Hour)
			synctest.Wait()
			_, dms := out.sent()
			acts, _ := st.Actions(ctx, "v1")
			if len(dms)+len(acts) > 0 {
				t.Fatalf("after the erase: %d DMs sent to v1, %d actions about v1", len(dms), len(acts))
			}
		})
	})
}

// TestEngineEraseAfterCancelOfFiringTimer: the viewer leaves (which cancels the key of
// the stay timer a worker is firing) and is then erased: what that firing commits is
// erased too.
func TestEngineEraseAfterCancelOfFiringTimer(t *testing.T) {
	forEachStayMode(t, func(t *testing.T, cfg Config) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			bp := &gateProfiles{in: make(chan struct{}), out: make(chan struct{})}
			e, _, st := start(t, mustCompile(t, DefaultRules(2*time.Second)), nil, withConfig(cfg), withProfiles(bp))
			e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: 1.95}, event.Event{Type: event.WatchStart, At: time.Now()})
			<-bp.in // the worker is taking its snapshot (still watching)
			e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: false, WatchSeconds: 2}, event.Event{Type: event.Leave, At: time.Now()})
			erased := make(chan error, 1)
			go func() { erased <- e.Erase(ctx, "v1") }()
			close(bp.out) // see TestEngineEraseDuringFiringThatDefers
			if err := <-erased; err != nil {
				t.Fatal(err)
			}
			nothingAbout(t, st, "v1")
		})
	})
}

// TestEraseRereadsCounters: a commit that read a viewer's counter from the file just
// before the viewer was erased reads it again, so the erased count is not written
// back plus one.
func TestEraseRereadsCounters(t *testing.T) {
	ctx, at := context.Background(), time.Now()
	st := heldState(t)
	key := "r\x00thanks\x00v1"
	f := func(at time.Time) Firing { return Firing{At: at, Limits: []Limit{{Key: key, Cap: 10}}} }
	for i := range 3 {
		if ok, err := st.Commit(ctx, f(at.Add(time.Duration(i)*time.Second))); err != nil || !ok[0] {
			t.Fatal(ok, err)
		}
	}
	if err := st.flush(); err != nil { // the file holds 3, memory nothing
		t.Fatal(err)
	}
	st.wb.afterRead = func() {
		st.wb.afterRead = nil
		if err := st.Erase(ctx, "v1"); err != nil {
			t.Error(err)
		}
	}
	if _, err := st.Commit(ctx, f(at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	var c Counter
	if err := st.db.View(func(tx *bolt.Tx) (err error) { c, err = readCounter(tx.Bucket(bCounters), key); return err }); err != nil {
		t.Fatal(err)
	}
	if c.N != 1 {
		t.Fatalf("after the erase and one firing the file holds v1's counter at %d, want 1", c.N)
	}
}

// nothingAbout fails t if st holds an action or a prompt about viewer.
func nothingAbout(t *testing.T, st State, viewer string) {
	t.Helper()
	acts, _ := st.Actions(context.Background(), viewer)
	prompts, _ := st.AboutPrompts(context.Background(), viewer)
	jobs, _ := st.Jobs(context.Background())
	jobs = slices.DeleteFunc(jobs, func(j Job) bool { return j.Env.Viewer.ID != viewer })
	if len(acts)+len(prompts)+len(jobs) > 0 {
		t.Fatalf("after the erase: %d actions, %d prompts and %d jobs about %s", len(acts), len(prompts), len(jobs), viewer)
	}
}

// gatedState holds the first Commit until gate is closed, and says when it is held.
type gatedState struct {
	*MemoryState
	held, gate chan struct{}
	once       sync.Once
}

func (g *gatedState) Commit(ctx context.Context, fs ...Firing) ([]bool, error) {
	g.once.Do(func() {
		close(g.held)
		<-g.gate
	})
	return g.MemoryState.Commit(ctx, fs...)
}

// TestEngineEraseWaitsForEventFiring: a rule an event fired for the viewer, whose
// commit is under way when the viewer is erased, lands before the erase and is erased
// with the rest; an event for the viewer during the erase fires nothing.
func TestEngineEraseWaitsForEventFiring(t *testing.T) {
	ctx := context.Background()
	doc, err := Parse([]byte(`{"rules":[{"id":"thanks","trigger":{"event":["danmaku"]},"action":{"type":"dm","text":"thanks"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	st := &gatedState{MemoryState: NewMemoryState(), held: make(chan struct{}), gate: make(chan struct{})}
	out := newOutbox()
	e, err := New(DefaultConfig(), Deps{Outbox: out, State: st, Rules: mustCompile(t, doc)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	comment := event.Event{Type: event.Danmaku, Text: "hi", At: time.Now()}
	fired := make(chan struct{})
	go func() {
		defer close(fired)
		e.OnEvent(ctx, viewer("v1"), Session{Room: "r1"}, comment)
	}()
	<-st.held // the DM's firing is being committed
	erased := make(chan error, 1)
	go func() { erased <- e.Erase(ctx, "v1") }()
	select {
	case err := <-erased:
		t.Fatalf("the erase did not wait for the firing under way (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(st.gate)
	<-fired
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	nothingAbout(t, st, "v1")

	// While an erase holds the mark, an event for the viewer fires nothing.
	e.eraseMu.Lock()
	e.erasing["v2"] = 1
	e.eraseMu.Unlock()
	e.OnEvent(ctx, viewer("v2"), Session{Room: "r1"}, comment)
	if acts, _ := st.Actions(ctx, "v2"); len(acts) != 0 {
		t.Fatalf("an event during the erase fired %d actions", len(acts))
	}
}

// viewerGates holds the snapshot of each gated viewer until its gate is closed.
type viewerGates struct {
	mu    sync.Mutex
	held  map[string]chan struct{}
	gates map[string]chan struct{}
}

func (g *viewerGates) Snapshot(_ context.Context, id, live string) (Viewer, Session, bool) {
	g.mu.Lock()
	held, gate := g.held[id], g.gates[id]
	g.mu.Unlock()
	if gate != nil {
		close(held)
		<-gate
	}
	return viewer(id), Session{Room: "r1", Live: live, Watching: true, WatchSeconds: 5}, true
}

// TestEngineEraseWaitsForQueuedChunk: the viewer's timer waits in the workers' queue,
// in a chunk behind others, while the erase runs; the erase waits for it (the read
// lock alone does not cover a chunk not started yet).
func TestEngineEraseWaitsForQueuedChunk(t *testing.T) {
	doc := Document{Rules: []RuleSpec{{ID: "stay", Trigger: TriggerSpec{Timer: &TimerSpec{Kind: TimerStay, Threshold: "1s"}}, Action: ActionSpec{Type: ActPrompt, Text: "hi"}}}}
	gp := &viewerGates{held: map[string]chan struct{}{"A": make(chan struct{}), "B": make(chan struct{})},
		gates: map[string]chan struct{}{"A": make(chan struct{}), "B": make(chan struct{})}}
	e, _, st := start(t, mustCompile(t, doc), nil, func(c *Config, d *Deps) {
		d.Profiles, c.Workers = gp, 1
		c.StayPrepare = 0 // one timer per tick, fired at its threshold
	})
	ctx := context.Background()
	arm := func(id string, in time.Duration) {
		now := time.Now()
		e.OnEvent(ctx, viewer(id), Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: (time.Second - in).Seconds(), AsOf: now}, event.Event{Type: event.WatchStart, At: now})
	}
	arm("A", 20*time.Millisecond)
	arm("B", 50*time.Millisecond)
	arm("v1", 80*time.Millisecond)
	<-gp.held["A"]
	time.Sleep(150 * time.Millisecond) // B's and v1's chunks wait in e.fires
	erased := make(chan error, 1)
	go func() { erased <- e.Erase(ctx, "v1") }()
	time.Sleep(50 * time.Millisecond)
	close(gp.gates["A"])
	<-gp.held["B"]
	time.Sleep(50 * time.Millisecond)
	close(gp.gates["B"])
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	nothingAbout(t, st, "v1")
}

// TestLiveEndDuringHostErase: a live_end still ends the live when the user it carries
// (media sets the host) is being erased.
func TestLiveEndDuringHostErase(t *testing.T) {
	e, _, _ := start(t, mustCompile(t, Document{}), nil)
	e.markStay("L", "s\x00stay\x00v9\x00L")
	e.eraseMu.Lock()
	e.erasing["host"] = 1
	e.eraseMu.Unlock()
	e.OnEvent(context.Background(), viewer("host"), Session{Room: "r1", Live: "L"}, event.Event{Type: event.LiveEnd, At: time.Now()})
	if e.stayFired("L", "s\x00stay\x00v9\x00L") {
		t.Fatal("the live's stay marks survive its live_end")
	}
}
