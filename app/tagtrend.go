package app

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
)

// trendDays is how many days of tag changes the dashboard can chart.
const trendDays = 30

// TrendFile keeps the dashboard's tag-change counts between runs, under --data.
const TrendFile = "tagtrend.json"

// trendSaveEvery is how often changed counts are written: a crash loses at most that
// much of the chart (a clean stop loses nothing).
const trendSaveEvery = 10 * time.Second

// tagTrend counts tag changes per UTC day and "dimension:tag" reached, for the
// dashboard's "tag changes over time".
type tagTrend struct {
	// saving makes saves one at a time: a save returns once the file holds at least
	// the counts as they were when it was called (a backup copies the file then), and
	// an older save never renames its file over a newer one's.
	saving sync.Mutex
	mu     sync.Mutex
	days   map[string]map[string]int
	dirty  bool // changed since the last save
}

func newTagTrend() *tagTrend { return &tagTrend{days: map[string]map[string]int{}} }

// loadTagTrend reads the counts saved at path; a missing file is an empty chart. An
// unreadable one is reported and replaced by an empty chart: it is only a chart.
func loadTagTrend(path string, log *slog.Logger) *tagTrend {
	t := newTagTrend()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t
	}
	if err == nil {
		err = json.Unmarshal(data, &t.days)
	}
	if err != nil || t.days == nil {
		log.Warn("tag-change chart not restored; it starts empty", "file", path, "err", err)
		t.days = map[string]map[string]int{}
	}
	return t
}

// save writes the counts to path (durably, replacing it whole) if they changed.
func (t *tagTrend) save(path string) error {
	t.saving.Lock()
	defer t.saving.Unlock()
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	data, err := json.Marshal(t.days)
	t.dirty = false
	t.mu.Unlock()
	if err == nil {
		err = writeFileSync(path, data)
	}
	if err != nil {
		t.mu.Lock()
		t.dirty = true // try again next time
		t.mu.Unlock()
	}
	return err
}

// keep saves the counts to path every trendSaveEvery until ctx ends (the caller saves
// once more after the last event is counted).
func (t *tagTrend) keep(ctx context.Context, path string, log *slog.Logger) {
	tick := time.NewTicker(trendSaveEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.saveOrWarn(path, log)
		}
	}
}

func (t *tagTrend) saveOrWarn(path string, log *slog.Logger) {
	if err := t.save(path); err != nil {
		log.Warn("tag-change chart not saved", "file", path, "err", err)
	}
}

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
	t.dirty = true
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
