package rules

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// outbox records what the engine sends; it is the in-memory stand-in for chat.
type outbox struct {
	mu      sync.Mutex
	prompts []Prompt
	dms     []sentDM
	notify  chan struct{}
}

type sentDM struct{ room, viewer, text, rule string }

func newOutbox() *outbox { return &outbox{notify: make(chan struct{}, 1<<16)} }

func (o *outbox) SendPrompt(_ context.Context, room string, p Prompt) error {
	o.mu.Lock()
	o.prompts = append(o.prompts, p)
	o.mu.Unlock()
	o.notify <- struct{}{}
	return nil
}

func (o *outbox) SendDM(_ context.Context, room, viewer, text, rule string) error {
	o.mu.Lock()
	o.dms = append(o.dms, sentDM{room, viewer, text, rule})
	o.mu.Unlock()
	o.notify <- struct{}{}
	return nil
}

func (o *outbox) sent() ([]Prompt, []sentDM) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Prompt(nil), o.prompts...), append([]sentDM(nil), o.dms...)
}

// manualClock is a clock the test moves by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustCompile(t testing.TB, doc Document) *Set {
	t.Helper()
	s, err := CompileDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start returns an engine over a memory state, closed when the test ends.
func start(t testing.TB, set *Set, clock Clock, opts ...func(*Config, *Deps)) (*Engine, *outbox, *MemoryState) {
	t.Helper()
	out, st := newOutbox(), NewMemoryState()
	cfg := DefaultConfig()
	deps := Deps{Outbox: out, State: st, Clock: clock, Rules: set}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	e, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e, out, st
}

// withProfiles and withConfig are options of start.
func withProfiles(p Profiles) func(*Config, *Deps) {
	return func(_ *Config, d *Deps) { d.Profiles = p }
}

func withConfig(c Config) func(*Config, *Deps) { return func(cc *Config, _ *Deps) { *cc = c } }

func viewer(id string) Viewer {
	return Viewer{ID: id, Name: "Name " + id, Consent: true}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
