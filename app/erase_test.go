package app

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
)

// gateChat is a chat that records what it is sent and holds the first erasure.
type gateChat struct {
	mu      sync.Mutex
	dms     []string // viewer ids
	prompts []string
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (c *gateChat) Prompt(_ context.Context, room string, p chat.Prompt) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prompts = append(c.prompts, p.Viewer.ID)
	return nil
}
func (c *gateChat) SendEncodedPrompt(_ context.Context, room string, e chat.EncodedPrompt) error {
	var ev struct{ Viewer struct{ ID string } }
	if err := json.Unmarshal(e.JSON(), &ev); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prompts = append(c.prompts, ev.Viewer.ID)
	return nil
}
func (c *gateChat) PromptChanged(context.Context, string, chat.PromptUpdate) error { return nil }
func (c *gateChat) SendDM(_ context.Context, room string, from event.User, to, text string) (chat.DM, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dms = append(c.dms, to)
	return chat.DM{}, nil
}
func (c *gateChat) ViewerDMs(context.Context, string) (map[string][]chat.DM, error) { return nil, nil }
func (c *gateChat) EraseViewer(context.Context, ...string) error {
	c.once.Do(func() { close(c.entered); <-c.gate })
	return nil
}

// TestAppEraseHoldsTheViewer: while the node erases a viewer (the rules first, then
// chat, the profile last), an event for the viewer that segment applied before the
// erase and the rules handle meanwhile fires, schedules and arms nothing.
func TestAppEraseHoldsTheViewer(t *testing.T) {
	ctx := context.Background()
	doc := `{"rules":[
	 {"id":"thanks","trigger":{"event":["danmaku"]},"action":{"type":"dm","text":"thanks"}},
	 {"id":"later","trigger":{"timer":{"kind":"after","event":"danmaku","delay":"1h"}},"action":{"type":"dm","text":"later"}},
	 {"id":"stay","trigger":{"timer":{"kind":"stay","threshold":"1s"}},"action":{"type":"prompt","text":"hi {{.Viewer.Name}}"}}]}`
	set, err := rules.Compile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	seg, st, ch, p, a := gatedNode(t, set, nil)
	now := time.Now().UTC()
	seg.Apply(event.Event{ID: "e1", Type: event.WatchStart, Viewer: "v1", Name: "Alice", Room: "r1", Live: "L1", At: now})
	erased := make(chan error, 1)
	go func() { erased <- a.Erase(ctx, "v1") }()
	<-ch.entered // rules.Erase done; chat and segment not yet
	// An event segment applied before the erase (queued in p.in) or during it.
	p.handle(ctx, event.Event{ID: "e2", Type: event.Danmaku, Viewer: "v1", Name: "Alice", Room: "r1", Live: "L1", Text: "hi", At: time.Now().UTC()})
	close(ch.gate)
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	t.Logf("erase returned at %v", time.Now().Format("15:04:05.000"))
	if _, err := seg.Identities(ctx, "v1"); err == nil {
		t.Fatal("segment profile not erased")
	}
	time.Sleep(1500 * time.Millisecond) // a stay timer armed in the window would fire
	acts, _ := st.Actions(ctx, "v1")
	jobs, _ := st.Jobs(ctx)
	prompts, _ := st.AboutPrompts(ctx, "v1")
	ch.mu.Lock()
	defer ch.mu.Unlock()
	t.Logf("after the erase: %d actions, %d jobs, %d prompts in rules state; chat got DMs %v prompts %v", len(acts), len(jobs), len(prompts), ch.dms, ch.prompts)
	for _, pr := range prompts {
		t.Logf("  prompt about %s name=%q created %v (erase finished before)", pr.Viewer.ID, pr.Viewer.Name, pr.CreatedAt.Format("15:04:05.000"))
	}
	for _, j := range jobs {
		t.Logf("  job %s rule %s due %v viewer %s", j.ID, j.RuleID, j.Due.Format("15:04:05"), j.Env.Viewer.ID)
	}
	for _, a := range acts {
		t.Logf("  action %s %s %q", a.RuleID, a.Type, a.Detail)
	}
	if len(acts)+len(jobs)+len(prompts) > 0 {
		t.Errorf("rules state holds data about the erased viewer")
	}
}

// An export asked for while the node erases the viewer waits for the erasure, and
// then finds nothing. It did not: the erasure goes through the rules and chat before
// the profile, and an export in between answered with the profile but nothing of
// what the rules and chat had held.
func TestAppExportWaitsForAnErasure(t *testing.T) {
	ctx := context.Background()
	seg, _, ch, _, a := gatedNode(t, nil, nil)
	seg.Apply(event.Event{ID: "e1", Type: event.Danmaku, Viewer: "v1", Room: "r1", Text: "hi", At: time.Now().UTC()})
	erased := make(chan error, 1)
	go func() { erased <- a.Erase(ctx, "v1") }()
	<-ch.entered // the rules' part erased; chat's and the profile not yet
	type answer struct {
		exp segment.Export
		err error
	}
	exported := make(chan answer, 1)
	go func() {
		exp, err := a.Export(ctx, "v1")
		exported <- answer{exp, err}
	}()
	select {
	case ans := <-exported:
		close(ch.gate)
		<-erased
		t.Fatalf("an export answered during the erasure: profile %s, %v", ans.exp.Profile, ans.err)
	case <-time.After(300 * time.Millisecond): // it waits, as it should (a wait on a lock cannot be seen)
	}
	close(ch.gate)
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	select {
	case ans := <-exported:
		if ans.err == nil {
			t.Fatalf("export after the erasure: profile %s", ans.exp.Profile)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the export did not answer after the erasure")
	}
}

// TestErasureWaitsForQueuedLiveEvents: an erasure waits for segment to apply the live
// events already queued on the tap; before, one of the viewer's, applied after the
// erasure had answered, made its profile again.
func TestErasureWaitsForQueuedLiveEvents(t *testing.T) {
	ctx := context.Background()
	tap := &gatedTap{Queue: event.NewQueue(64), open: make(chan struct{})}
	seg, _, ch, _, a := gatedNode(t, nil, tap)
	close(ch.gate) // chat's part does not wait here
	seg.Apply(event.Event{ID: "e1", Type: event.Danmaku, Viewer: "v1", Room: "r1", Text: "hi", At: time.Now().UTC()})
	tap.Publish(event.Event{ID: "e2", Type: event.Danmaku, Viewer: "v1", Room: "r1", Text: "still queued", At: time.Now().UTC()})
	erased := make(chan error, 1)
	go func() { erased <- a.Erase(ctx, "v1") }()
	select {
	case err := <-erased:
		t.Fatalf("the erasure answered (%v) with the viewer's event still queued", err)
	case <-time.After(300 * time.Millisecond): // it waits, as it should
	}
	// One that cannot wait so long is told to retry (503).
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var pe *problem.Error
	if err := caughtUp(short, tap.Queue, seg); !errors.As(err, &pe) || pe.Kind != problem.Unavailable {
		t.Fatalf("a wait cut short: %v, want unavailable", err)
	}
	close(tap.open)
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	if _, err := seg.Viewer(ctx, "v1"); !errors.Is(err, segment.ErrUnknownViewer) {
		t.Fatalf("after the erasure: %v, want no profile", err)
	}
}

// gatedTap is a tap whose events the consumer gets only once open is closed.
type gatedTap struct {
	*event.Queue
	open chan struct{}
}

func (g *gatedTap) Next(ctx context.Context) (event.Event, error) {
	select {
	case <-g.open:
		return g.Queue.Next(ctx)
	case <-ctx.Done():
		return event.Event{}, ctx.Err()
	}
}

func (g *gatedTap) TryNext() (event.Event, bool) {
	select {
	case <-g.open:
		return g.Queue.TryNext()
	default:
		return event.Event{}, false
	}
}

// gatedNode is segment (on tap, if any) and the rules (with set) on memory stores,
// with a chat that holds the first erasure until its gate opens, put together as the
// node does; closed when the test ends.
func gatedNode(t *testing.T, set *rules.Set, tap *gatedTap) (*segment.Engine, *rules.MemoryState, *gateChat, *playbook, analytics) {
	t.Helper()
	deps := segment.Deps{Store: segment.NewMemoryStore()}
	if tap != nil {
		deps.Tap = source{tap} // Next and TryNext only: not the queue's batch methods
	}
	seg, err := segment.New(segment.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close(context.Background()) })
	st := rules.NewMemoryState()
	ch := &gateChat{entered: make(chan struct{}), gate: make(chan struct{})}
	p := &playbook{seg: seg, zones: newViewerMap[string](), custom: newViewerMap[[]string](), firings: st, trend: newTagTrend()}
	eng, err := rules.New(rules.DefaultConfig(), rules.Deps{Outbox: outbox{ch}, State: st, Profiles: p, Tagger: p, Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	p.rules = eng
	a := analytics{Engine: seg, rules: eng, chat: ch, book: p}
	if tap != nil {
		a.caughtUp = func(ctx context.Context) error { return caughtUp(ctx, tap.Queue, seg) }
	}
	return seg, st, ch, p, a
}

// source hides all but a Source's methods.
type source struct{ event.Source }
