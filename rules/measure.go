package rules

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/liveroom/liveroom/event"
)

// MeasureStay arms the stay timers of viewers viewers, all due at the same instant, on a
// fresh engine with the default rules and st, and returns, sorted, each viewer's delay
// from its threshold to its prompt reaching the outbox. It is the load test behind
// BenchmarkStayDelay and `liveroom bench rules`.
func MeasureStay(ctx context.Context, cfg Config, st State, viewers int, threshold time.Duration) ([]time.Duration, error) {
	set, err := CompileDocument(DefaultRules(threshold))
	if err != nil {
		return nil, err
	}
	out := &timingOutbox{at: make(map[string]time.Time, viewers), done: make(chan struct{}), want: viewers}
	e, err := New(cfg, Deps{Outbox: out, State: st, Rules: set})
	if err != nil {
		return nil, err
	}
	defer e.Close(context.Background())
	due := make(map[string]time.Time, viewers)
	// Every viewer started watching at the same instant, as far as the engine can
	// tell: each is armed with the time already watched since start, so all the
	// thresholds fall due together however long the arming takes.
	start := time.Now()
	for i := range viewers {
		v := Viewer{ID: fmt.Sprintf("v%d", i), Name: "Viewer", Consent: true}
		sess := Session{Room: "r1", Live: "l1", Watching: true, WatchSeconds: time.Since(start).Seconds()}
		due[v.ID] = start.Add(threshold)
		e.OnEvent(ctx, v, sess, event.Event{Type: event.WatchStart})
	}
	select {
	case <-out.done:
	case <-time.After(threshold + time.Minute):
		out.mu.Lock()
		defer out.mu.Unlock()
		return nil, fmt.Errorf("only %d of %d prompts arrived", len(out.at), viewers)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	delays := make([]time.Duration, 0, viewers)
	for id, at := range out.at {
		delays = append(delays, at.Sub(due[id]))
	}
	slices.Sort(delays)
	return delays, nil
}

// timingOutbox records when each viewer's prompt arrives.
type timingOutbox struct {
	mu   sync.Mutex
	at   map[string]time.Time
	done chan struct{}
	want int
}

func (o *timingOutbox) SendPrompt(_ context.Context, _ string, p Prompt) error {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, dup := o.at[p.Viewer.ID]; dup {
		return nil
	}
	o.at[p.Viewer.ID] = now
	if len(o.at) == o.want {
		close(o.done)
	}
	return nil
}

func (o *timingOutbox) SendDM(context.Context, string, string, string, string) error { return nil }
