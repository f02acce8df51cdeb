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

// liveProfiles answers snapshots of viewers watching one live since start, and counts
// the snapshots taken of each.
type liveProfiles struct {
	mu       sync.Mutex
	start    time.Time
	comments map[string]int
	taken    map[string]int
}

func newLiveProfiles() *liveProfiles {
	return &liveProfiles{start: time.Now(), comments: map[string]int{}, taken: map[string]int{}}
}

func (p *liveProfiles) Snapshot(_ context.Context, id, live string) (Viewer, Session, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.taken[id]++
	now := time.Now()
	watched := now.Sub(p.start).Seconds()
	return viewer(id), Session{Room: "r1", Live: live, Watching: true, WatchSeconds: watched, Comments: p.comments[id], AsOf: now}, true
}

func (p *liveProfiles) snapshots(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken[id]
}

func (p *liveProfiles) comment(id string) Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.comments[id]++
	return Session{Room: "r1", Live: "L", Watching: true, WatchSeconds: time.Since(p.start).Seconds(), Comments: p.comments[id], AsOf: time.Now()}
}

// TestStayPreparedAhead: a stay firing is made ready Config.StayPrepare before the
// threshold and sent at the threshold, as if made there; whatever happens to the
// viewer in between (an order, a leave, another event, an erasure, new rules) is
// honoured.
func TestStayPreparedAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cfg := DefaultConfig() // StayPrepare: 1 s
		out, st, lp := newOutbox(), NewMemoryState(), newLiveProfiles()
		rules := DefaultRules(3 * time.Second)
		e, err := New(cfg, Deps{Outbox: out, State: st, Rules: mustCompile(t, rules), Profiles: lp})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
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
		out, lp := newOutbox(), newLiveProfiles()
		e, err := New(DefaultConfig(), Deps{Outbox: out, State: NewMemoryState(), Rules: mustCompile(t, DefaultRules(3*time.Second)), Profiles: lp})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
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
		st, lp := NewMemoryState(), newLiveProfiles()
		e, err := New(DefaultConfig(), Deps{Outbox: newOutbox(), State: st, Rules: mustCompile(t, doc), Profiles: lp})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
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
		e, err := New(DefaultConfig(), Deps{Outbox: out, State: NewMemoryState(), Rules: mustCompile(t, DefaultRules(3*time.Second)), Profiles: lp})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
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
