package app

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
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
	seg, err := segment.New(segment.DefaultConfig(), segment.Deps{Store: segment.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close(ctx)
	st := rules.NewMemoryState()
	doc := `{"rules":[
	 {"id":"thanks","trigger":{"event":["danmaku"]},"action":{"type":"dm","text":"thanks"}},
	 {"id":"later","trigger":{"timer":{"kind":"after","event":"danmaku","delay":"1h"}},"action":{"type":"dm","text":"later"}},
	 {"id":"stay","trigger":{"timer":{"kind":"stay","threshold":"1s"}},"action":{"type":"prompt","text":"hi {{.Viewer.Name}}"}}]}`
	set, err := rules.Compile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	ch := &gateChat{entered: make(chan struct{}), gate: make(chan struct{})}
	p := &playbook{seg: seg, zones: newViewerMap[string](), custom: newViewerMap[[]string](), firings: st, trend: newTagTrend()}
	cfg := rules.DefaultConfig()
	eng, err := rules.New(cfg, rules.Deps{Outbox: outbox{ch}, State: st, Profiles: p, Tagger: p, Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	p.rules = eng
	now := time.Now().UTC()
	seg.Apply(event.Event{ID: "e1", Type: event.WatchStart, Viewer: "v1", Name: "Alice", Room: "r1", Live: "L1", At: now})
	a := analytics{Engine: seg, rules: eng, chat: ch, book: p}
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
