package rules

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestQuietHoursRemovedMidFiring: act reads the set in force to find the message
// in quiet hours, then holdBack reads it again for its mode. A PUT /api/rules that drops
// quiet_hours in between (a new set whose quiet is nil) makes holdBack dereference nil:
// the panic takes down the goroutine that feeds the rules (and the node with it).
func TestQuietHoursRemovedMidFiring(t *testing.T) {
	rule := RuleSpec{ID: "hi", Trigger: TriggerSpec{Event: []string{"danmaku"}}, Cap: 1,
		Action: ActionSpec{Type: ActDM, Text: "hi"}}
	quietSet := mustCompile(t, Document{QuietHours: &QuietSpec{Start: "00:00", End: "23:59", Mode: "drop"}, Rules: []RuleSpec{rule}})
	plainSet := mustCompile(t, Document{Rules: []RuleSpec{rule}})
	clock := &manualClock{t: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)}
	e, _, _ := start(t, quietSet, clock)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the admin's PUTs, taking quiet hours out and back in
		for {
			select {
			case <-done:
				return
			default:
			}
			e.Use(plainSet)
			e.Use(quietSet)
		}
	})
	defer func() { close(done); wg.Wait() }()
	v := viewer("v1")
	v.TimeZone = "Nowhere/Zone" // not a zone: looked up (and missed) on every firing, inside the window
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r)
				}
			}()
			e.OnEvent(context.Background(), v, Session{Room: "r1"}, event.Event{Type: event.Danmaku, Text: "x"})
			return nil
		}(); err != nil {
			t.Fatalf("OnEvent panicked after %d events while the rules were replaced: %v", i, err)
		}
	}
}
