package app

import (
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

func TestTagTrend(t *testing.T) {
	tr := newTagTrend()
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := range 40 { // 40 days, one change each, plus a second on the last day
		tr.add(event.Event{Type: event.TagChange, At: day.AddDate(0, 0, i), Tag: &event.TagInfo{Dimension: "activity", To: "high"}})
	}
	tr.add(event.Event{Type: event.TagChange, At: day.AddDate(0, 0, 39), Tag: &event.TagInfo{Dimension: "lifecycle", To: "repeat"}})
	tr.add(event.Event{Type: event.TagChange, At: day, Tag: nil}) // ignored
	got := tr.TagChanges(14)
	if len(got) != 14 || got[13].Day != "2026-12-10" || got[0].Day != "2026-11-27" {
		t.Fatalf("days: %+v", got)
	}
	if c := got[13].Changes; c["activity:high"] != 1 || c["lifecycle:repeat"] != 1 {
		t.Fatalf("last day: %v", c)
	}
	if n := len(tr.TagChanges(100)); n != trendDays {
		t.Fatalf("kept %d days, want %d", n, trendDays)
	}
}
