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
// doubles a string (reduce's accumulator, or a chain of let) allocated 2^n bytes on
// every event (with 1..40 instead of 1..20 below, a terabyte, and the node died on the
// first order), and toJSON or string of a list of long strings made megabytes before
// any check of the result: each is refused as it would pass the bound.
func TestConditionStringGrowthBounded(t *testing.T) {
	lets := func(n int) string {
		l := []string{"let a0 = viewer.name"}
		for i := range n {
			l = append(l, fmt.Sprintf("let a%d = a%d + a%d", i+1, i, i))
		}
		return strings.Join(l, "; ") + "; "
	}
	for name, when := range map[string]string{
		"reduce": `len(reduce(1..20, #acc + #acc, viewer.name)) > 0`,
		"let":    lets(20) + "len(a20) > 0",
		// A list of a few thousand copies of a string just under the bound, turned
		// into one string.
		"toJSON": lets(9) + "len(toJSON(map(1..3000, a9))) > 0",
		"string": lets(9) + "len(string(map(1..3000, a9))) > 0",
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
