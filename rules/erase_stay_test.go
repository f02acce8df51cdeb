package rules

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestEraseForgetsWhichStayPromptsFired: an erasure forgets the viewer's once-per-live
// counter of its stay prompt (aboutViewer's "onces" keys), so the rules start afresh
// for it; the engine's in-memory record of the stay keys that fired in the live must
// go too, or the viewer, back in the same live after its erasure, is treated by what
// was erased.
func TestEraseForgetsWhichStayPromptsFired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		doc := Document{Rules: []RuleSpec{{ID: "stay", Trigger: TriggerSpec{Timer: &TimerSpec{Kind: TimerStay, Threshold: "2s"}},
			Action: ActionSpec{Type: ActPrompt, Text: "hi"}}}}
		e, out, _ := start(t, mustCompile(t, doc), nil)
		ctx := context.Background()
		live := Session{Room: "r1", Live: "live-1", Watching: true}
		v := viewer("v1")
		e.OnEvent(ctx, v, live, event.Event{Type: event.WatchStart, At: time.Now()})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 1 {
			t.Fatalf("%d prompts, want 1", len(prompts))
		}
		if err := e.Erase(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
		// The erased viewer's id comes back (the erase does not disconnect it): a new
		// profile, with nothing of the old one.
		e.OnEvent(ctx, v, live, event.Event{Type: event.WatchStart, At: time.Now()})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if prompts, _ := out.sent(); len(prompts) != 2 {
			t.Errorf("%d prompts after the erased viewer stayed again in the live, want 2: the engine still remembers the erased viewer's stay prompt", len(prompts))
		}
	})
}
