package rules

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/liveroom/liveroom/event"
)

// TestConcurrentClaimsOneWinner: many agents claim a prompt still written behind at
// once: exactly one wins, every other gets ErrPromptClaimed.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	states(t, func(t *testing.T, st State) {
		clock := &manualClock{t: t0}
		e, _, _ := start(t, mustCompile(t, promptRule()), clock, func(_ *Config, d *Deps) { d.State = st })
		ctx := context.Background()
		for round := range 20 {
			e.OnEvent(ctx, viewer(fmt.Sprint("v", round)), Session{Room: "r1"}, event.Event{Type: event.ProductClick, SKU: "s", At: clock.Now()})
			list := mustPrompts(t, e, "r1")
			id := list[len(list)-1].ID
			var wg sync.WaitGroup
			var mu sync.Mutex
			won, lost := 0, 0
			for a := range 8 {
				wg.Go(func() {
					_, err := e.Claim(ctx, id, fmt.Sprint("agent-", a))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						won++
					case errors.Is(err, ErrPromptClaimed):
						lost++
					default:
						t.Errorf("claim: %v", err)
					}
				})
			}
			wg.Wait()
			if won != 1 || lost != 7 {
				t.Fatalf("round %d: %d won, %d got 409", round, won, lost)
			}
		}
	})
}
