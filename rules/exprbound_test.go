package rules

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestConditionStringGrowthBounded: expr's memory budget counts the elements of
// ranges, arrays and maps but not the bytes of strings, so a short condition that
// doubles a string (reduce's accumulator, or a chain of let) is accepted and
// allocates 2^n bytes on every event: with 1..40 instead of 1..20 below, a
// terabyte, and the node dies on the first order.
func TestConditionStringGrowthBounded(t *testing.T) {
	lets := []string{"let a0 = viewer.name"}
	for i := range 20 {
		lets = append(lets, fmt.Sprintf("let a%d = a%d + a%d", i+1, i, i))
	}
	for name, when := range map[string]string{
		"reduce": `len(reduce(1..20, #acc + #acc, viewer.name)) > 0`,
		"let":    strings.Join(lets, "; ") + "; len(a20) > 0",
	} {
		t.Run(name, func(t *testing.T) {
			set, err := CompileDocument(Document{Rules: []RuleSpec{{ID: "r1", Trigger: TriggerSpec{Event: []string{"order"}},
				When: when, Action: ActionSpec{Type: ActTag, Tag: "big"}}}})
			if err != nil {
				return // refused: fine
			}
			e, _, _ := start(t, set, nil)
			ev := event.Event{ID: "o1", Type: event.Order, Viewer: "v1", At: time.Now(), Order: &event.OrderInfo{OrderID: "o1", Total: "5"}}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e.OnEvent(context.Background(), viewer("v1"), Session{Room: "r"}, ev)
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Fatalf("a %d-byte condition, accepted, allocated %d MiB for one event", len(when), got>>20)
			}
		})
	}
}
