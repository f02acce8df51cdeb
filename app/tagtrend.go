package app

import (
	"slices"
	"sync"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
)

// trendDays is how many days of tag changes the dashboard can chart.
const trendDays = 30

// tagTrend counts tag changes per UTC day and "dimension:tag" reached, for the
// dashboard's "tag changes over time". It is kept in memory: after a restart the chart
// starts again from that day.
type tagTrend struct {
	mu   sync.Mutex
	days map[string]map[string]int
}

func newTagTrend() *tagTrend { return &tagTrend{days: map[string]map[string]int{}} }

// add counts a tag change event.
func (t *tagTrend) add(ev event.Event) {
	if ev.Tag == nil || ev.Tag.To == "" {
		return
	}
	day := ev.At.UTC().Format(time.DateOnly)
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.days[day]
	if m == nil {
		m = map[string]int{}
		t.days[day] = m
		for len(t.days) > trendDays { // keep the last trendDays days
			oldest := day
			for d := range t.days {
				oldest = min(oldest, d)
			}
			delete(t.days, oldest)
		}
	}
	m[ev.Tag.Dimension+":"+ev.Tag.To]++
}

// TagChanges returns up to the last n days that saw tag changes, oldest first.
func (t *tagTrend) TagChanges(n int) []gateway.DayChanges {
	t.mu.Lock()
	defer t.mu.Unlock()
	days := slices.Sorted(func(yield func(string) bool) {
		for d := range t.days {
			if !yield(d) {
				return
			}
		}
	})
	if len(days) > n {
		days = days[len(days)-n:]
	}
	out := make([]gateway.DayChanges, 0, len(days))
	for _, d := range days {
		c := make(map[string]int, len(t.days[d]))
		for k, v := range t.days[d] {
			c[k] = v
		}
		out = append(out, gateway.DayChanges{Day: d, Changes: c})
	}
	return out
}
