package rules

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liveroom/liveroom/event"
)

// liveProfiles answers snapshots of viewers watching one live since start, as segment
// would: with a version stamp that every change bumps (ProfileVersions). It counts the
// snapshots taken of each viewer.
type liveProfiles struct {
	mu    sync.Mutex
	start time.Time
	state map[string]*liveViewer
	taken map[string]int
}

type liveViewer struct {
	comments, orders int
	left, optedOut   bool
	version          uint64
}

func newLiveProfiles() *liveProfiles {
	return &liveProfiles{start: time.Now(), state: map[string]*liveViewer{}, taken: map[string]int{}}
}

func (p *liveProfiles) viewerLocked(id string) *liveViewer {
	v := p.state[id]
	if v == nil {
		v = &liveViewer{version: 1}
		p.state[id] = v
	}
	return v
}

func (p *liveProfiles) sessionLocked(id, live string) Session {
	v := p.viewerLocked(id)
	return Session{Room: "r1", Live: live, Watching: !v.left, WatchSeconds: time.Since(p.start).Seconds(),
		Comments: v.comments, Orders: v.orders, AsOf: time.Now()}
}

func (p *liveProfiles) Snapshot(_ context.Context, id, live string) (Viewer, Session, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.taken[id]++
	v := viewer(id)
	lv := p.viewerLocked(id)
	v.Consent = !lv.optedOut
	return v, p.sessionLocked(id, live), true
}

func (p *liveProfiles) Version(_ context.Context, id string) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.viewerLocked(id).version, true
}

func (p *liveProfiles) snapshots(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken[id]
}

// change applies a change to id's profile (as segment applies an event) and returns
// the session after it.
func (p *liveProfiles) change(id string, f func(*liveViewer)) Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.viewerLocked(id)
	f(v)
	v.version++
	return p.sessionLocked(id, "L")
}

func (p *liveProfiles) comment(id string) Session {
	return p.change(id, func(v *liveViewer) { v.comments++ })
}

// TestStayPreparedAhead: a stay firing is made ready Config.StayPrepare before the
// threshold and sent at the threshold, as if made there; whatever happens to the
// viewer in between (an order, a leave, another event, an erasure, new rules) is
// honoured.
func TestStayPreparedAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		lp := newLiveProfiles()
		e, out, st := start(t, mustCompile(t, DefaultRules(3*time.Second)), nil, withProfiles(lp))
		live := Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}
		ids := []string{"stays", "buys", "leaves", "comments", "erased"}
		for _, id := range ids {
			e.OnEvent(ctx, viewer(id), live, event.Event{Type: event.WatchStart, At: time.Now()})
		}
		threshold := lp.start.Add(3 * time.Second)

		time.Sleep(2*time.Second - 20*time.Millisecond)
		synctest.Wait()
		for _, id := range ids {
			if n := lp.snapshots(id); n != 0 {
				t.Fatalf("%s: %d snapshots before the firing was due to be made ready", id, n)
			}
		}
		time.Sleep(100 * time.Millisecond) // made ready
		synctest.Wait()
		for _, id := range ids {
			if n := lp.snapshots(id); n != 1 {
				t.Fatalf("%s: %d snapshots once made ready, want 1", id, n)
			}
		}
		if prompts, _ := out.sent(); len(prompts) != 0 {
			t.Fatalf("sent when made ready, before the threshold: %+v", prompts)
		}
		if acts, _ := st.Actions(ctx, "stays"); len(acts) != 0 {
			t.Fatalf("recorded when made ready, before the threshold: %+v", acts)
		}

		// Between making ready and the threshold.
		bought := live
		bought.Orders = 1
		e.OnEvent(ctx, viewer("buys"), bought, orderEvent("o1", time.Now()))
		e.OnEvent(ctx, viewer("leaves"), Session{Room: "r1", Live: "L"}, event.Event{Type: event.WatchStop, At: time.Now()})
		e.OnEvent(ctx, viewer("comments"), lp.comment("comments"), event.Event{Type: event.Danmaku, Text: "in red?", At: time.Now()})
		if err := e.Erase(ctx, "erased"); err != nil {
			t.Fatal(err)
		}

		time.Sleep(time.Until(threshold) - 20*time.Millisecond)
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 0 {
			t.Fatalf("sent before the threshold: %+v", prompts)
		}
		time.Sleep(40 * time.Millisecond) // the threshold plus the wheel's tick
		synctest.Wait()
		prompts, _ := out.sent()
		got := map[string]Prompt{}
		for _, p := range prompts {
			got[p.Viewer.ID] = p
		}
		if len(prompts) != 2 || got["stays"].ID == "" || got["comments"].ID == "" {
			t.Fatalf("prompts at the threshold: %+v, want one each for stays and comments", prompts)
		}
		if p := got["stays"]; !p.CreatedAt.Equal(threshold) || !strings.HasPrefix(p.Reason, "watched 3s") {
			t.Fatalf("the prompt made ready: created %v (threshold %v), reason %q", p.CreatedAt, threshold, p.Reason)
		}
		if n := lp.snapshots("stays"); n != 1 {
			t.Fatalf("stays: %d snapshots, want the one made ready ahead", n)
		}
		// The comment came after the firing was made ready: it was made again at the
		// threshold, from a fresh snapshot.
		if n := lp.snapshots("comments"); n != 2 || !strings.Contains(got["comments"].Reason, "1 comment") {
			t.Fatalf("comments: %d snapshots, reason %q; want a fresh one at the threshold", n, got["comments"].Reason)
		}
		nothingAbout(t, st, "erased")
		if n := e.wheel.len(); n != 0 {
			t.Fatalf("%d timers armed after the threshold", n)
		}
	})
}

// TestStayPreparedUnderNewRules: a firing made ready under one rule set is made afresh
// at the threshold when the rules were replaced in between.
func TestStayPreparedUnderNewRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		lp := newLiveProfiles()
		e, out, _ := start(t, mustCompile(t, DefaultRules(3*time.Second)), nil, withProfiles(lp))
		e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
		time.Sleep(2*time.Second + 100*time.Millisecond)
		synctest.Wait()
		doc := DefaultRules(3 * time.Second)
		for i := range doc.Rules {
			if doc.Rules[i].ID == RuleStay {
				doc.Rules[i].Action.Text = "new line for {{.Viewer.Name}}"
			}
		}
		e.Use(mustCompile(t, doc))
		time.Sleep(time.Second)
		synctest.Wait()
		prompts, _ := out.sent()
		if len(prompts) != 1 || !strings.HasPrefix(prompts[0].Suggested, "new line for") || lp.snapshots("v1") != 2 {
			t.Fatalf("after new rules: %+v (%d snapshots), want one prompt with the new line", prompts, lp.snapshots("v1"))
		}
	})
}

// TestStayPreparedInQuietHours: a firing that would be deferred past quiet hours is not
// deferred when made ready, only at the threshold, so a viewer who leaves in between
// gets nothing scheduled.
func TestStayPreparedInQuietHours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		doc, err := Parse([]byte(`{"quiet_hours":{"start":"00:00","end":"08:00"},"rules":[{"id":"stay",
			"trigger":{"timer":{"kind":"stay","threshold":"3s"}},"action":{"type":"dm","text":"hi"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		lp := newLiveProfiles()
		e, _, st := start(t, mustCompile(t, doc), nil, withProfiles(lp))
		// The bubble's clock starts at midnight UTC: in the quiet hours.
		for _, id := range []string{"stays", "leaves"} {
			e.OnEvent(ctx, viewer(id), Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
		}
		time.Sleep(2*time.Second + 100*time.Millisecond)
		synctest.Wait()
		if jobs, _ := st.Jobs(ctx); len(jobs) != 0 || lp.snapshots("stays") != 1 {
			t.Fatalf("made ready (%d snapshots): %d jobs deferred before the threshold", lp.snapshots("stays"), len(jobs))
		}
		e.OnEvent(ctx, viewer("leaves"), Session{Room: "r1", Live: "L"}, event.Event{Type: event.WatchStop, At: time.Now()})
		time.Sleep(time.Second)
		synctest.Wait()
		jobs, _ := st.Jobs(ctx)
		if len(jobs) != 1 || jobs[0].Env.Viewer.ID != "stays" || !jobs[0].Deferred {
			t.Fatalf("jobs after the threshold: %+v, want stays' deferred DM", jobs)
		}
	})
}

// encodingOutbox is an outbox that encodes prompts ahead (PromptEncoder) and counts
// what it sent encoded.
type encodingOutbox struct {
	*outbox
	mu      sync.Mutex
	encoded []string // viewer ids
}

type encodedPrompt struct{ p Prompt }

func (o *encodingOutbox) EncodePrompt(p Prompt) (any, error) { return encodedPrompt{p}, nil }

func (o *encodingOutbox) SendEncodedPrompt(ctx context.Context, room string, encoded any) error {
	p := encoded.(encodedPrompt).p
	o.mu.Lock()
	o.encoded = append(o.encoded, p.Viewer.ID)
	o.mu.Unlock()
	return o.SendPrompt(ctx, room, p)
}

// TestStayPreparedEncoded: an Outbox that can encode a prompt ahead gets a ready
// firing's prompt encoded when it is made ready and only hands it over at the
// threshold; a firing made at the threshold goes out plainly.
func TestStayPreparedEncoded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		out, lp := &encodingOutbox{outbox: newOutbox()}, newLiveProfiles()
		e, _, _ := start(t, mustCompile(t, DefaultRules(3*time.Second)), nil, withProfiles(lp), func(_ *Config, d *Deps) { d.Outbox = out })
		for _, id := range []string{"quiet", "comments"} {
			e.OnEvent(ctx, viewer(id), Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
		}
		time.Sleep(2*time.Second + 100*time.Millisecond)
		synctest.Wait()
		e.OnEvent(ctx, viewer("comments"), lp.comment("comments"), event.Event{Type: event.Danmaku, Text: "hi", At: time.Now()})
		time.Sleep(time.Second)
		synctest.Wait()
		prompts, _ := out.sent()
		if len(prompts) != 2 || len(out.encoded) != 1 || out.encoded[0] != "quiet" {
			t.Fatalf("%d prompts, encoded ahead for %v; want 2, one encoded ahead for quiet", len(prompts), out.encoded)
		}
	})
}

// TestStayPreparedProfileChanged: a firing made ready is made afresh at the threshold
// when the viewer's profile changed without the engine seeing an event (an order with
// no live on it, an opt-out, a live's end, an event still queued for the engine): the
// fresh snapshot decides, as it would have without preparing.
func TestStayPreparedProfileChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		lp := newLiveProfiles()
		e, out, _ := start(t, mustCompile(t, DefaultRules(3*time.Second)), nil, withProfiles(lp))
		ids := []string{"stays", "orders", "opts-out", "left", "likes"}
		for _, id := range ids {
			e.OnEvent(ctx, viewer(id), Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
		}
		time.Sleep(2*time.Second + 100*time.Millisecond)
		synctest.Wait()
		for _, id := range ids {
			if lp.snapshots(id) != 1 {
				t.Fatalf("%s: %d snapshots, want 1 (made ready)", id, lp.snapshots(id))
			}
		}
		// Segment applies these; the engine hears of none of them before the threshold.
		lp.change("orders", func(v *liveViewer) { v.orders = 1 })
		lp.change("opts-out", func(v *liveViewer) { v.optedOut = true })
		lp.change("left", func(v *liveViewer) { v.left = true })
		lp.change("likes", func(*liveViewer) {})
		time.Sleep(time.Second)
		synctest.Wait()
		prompts, _ := out.sent()
		got := map[string]bool{}
		for _, p := range prompts {
			got[p.Viewer.ID] = true
		}
		if len(prompts) != 2 || !got["stays"] || !got["likes"] {
			t.Fatalf("prompts for %v, want stays and likes only", got)
		}
		if lp.snapshots("stays") != 1 || lp.snapshots("likes") != 2 {
			t.Fatalf("snapshots: stays %d (want 1: unchanged), likes %d (want 2: made afresh)", lp.snapshots("stays"), lp.snapshots("likes"))
		}
	})
}

// TestStayPreparedLate: a stay timer reached at or after its threshold (a viewer who
// joins having watched past it) fires in the same tick, not a tick later.
func TestStayPreparedLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		lp := newLiveProfiles()
		e, out, _ := start(t, mustCompile(t, DefaultRules(3*time.Second)), nil, withProfiles(lp))
		e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: 10, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
		time.Sleep(DefaultConfig().Tick)
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 1 {
			t.Fatalf("%d prompts one tick after arming past the threshold, want 1", len(prompts))
		}
	})
}

// TestStayPreparedCountsOnce: a firing that is not made ready ahead (no consent) is
// decided at the threshold, and counted there only.
func TestStayPreparedCountsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		lp := newLiveProfiles()
		e, _, _ := start(t, mustCompile(t, DefaultRules(3*time.Second)), nil, withProfiles(lp))
		lp.change("opted-out", func(v *liveViewer) { v.optedOut = true })
		for _, id := range []string{"opted-out", "stays"} {
			e.OnEvent(ctx, viewer(id), Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
		}
		before := e.Stats() // the watch_start events' own rules
		time.Sleep(4 * time.Second)
		synctest.Wait()
		s := e.Stats()
		evaluated, skipped := s.Evaluated-before.Evaluated, s.ConsentSkipped-before.ConsentSkipped
		if evaluated != 2 || skipped != 1 || s.Prompts != 1 {
			t.Fatalf("stay firings: %d evaluated, %d skipped for consent, %d prompts; want 2, 1, 1", evaluated, skipped, s.Prompts)
		}
	})
}

// TestWaitIdle: WaitIdle returns at once while no timer is being fired, waits while a
// firing is under way, and gives up after its bound.
func TestWaitIdle(t *testing.T) {
	ctx := context.Background()
	bp := blockingProfiles{make(chan struct{}), make(chan struct{})}
	e, _, _ := start(t, mustCompile(t, DefaultRules(2*time.Second)), nil, withProfiles(bp))
	began := time.Now()
	e.WaitIdle(time.Minute)
	if time.Since(began) > 5*time.Second {
		t.Fatal("WaitIdle waited on an idle engine")
	}
	e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: 1.95}, event.Event{Type: event.WatchStart, At: time.Now()})
	<-bp.in // a worker is on v1's timer
	idle := make(chan struct{})
	go func() { e.WaitIdle(time.Minute); close(idle) }()
	select {
	case <-idle:
		t.Fatal("WaitIdle returned while a timer was being fired")
	case <-time.After(100 * time.Millisecond):
	}
	e.WaitIdle(10 * time.Millisecond) // bounded
	close(bp.out)
	<-idle
}

// TestStayPreparedRenderErrorCountedOnce: a prompt whose text fails to render is
// counted (and logged) once, by the firing at the threshold, made ready ahead or not.
func TestStayPreparedRenderErrorCountedOnce(t *testing.T) {
	forEachStayMode(t, func(t *testing.T, cfg Config) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			doc := Document{Rules: []RuleSpec{{ID: "stay", Trigger: TriggerSpec{Timer: &TimerSpec{Kind: TimerStay, Threshold: "3s"}},
				Action: ActionSpec{Type: ActPrompt, Text: `{{index .Viewer.Tags.Preference 1}}`}}}}
			e, _, _ := start(t, mustCompile(t, doc), nil, withConfig(cfg), withProfiles(newLiveProfiles()))
			e.OnEvent(ctx, viewer("v1"), Session{Room: "r1", Live: "L", Watching: true, AsOf: time.Now()}, event.Event{Type: event.WatchStart, At: time.Now()})
			before := e.Stats().Errors
			time.Sleep(4 * time.Second)
			synctest.Wait()
			if n := e.Stats().Errors - before; n != 1 {
				t.Fatalf("%d errors counted for one failing firing, want 1", n)
			}
		})
	})
}
