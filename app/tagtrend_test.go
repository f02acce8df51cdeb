package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/token"
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

// TestTagTrendSurvivesRestart: the counts are saved under --data and read back by the
// next run; an unreadable file gives an empty chart, not a refusal to start.
func TestTagTrendSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), TrendFile)
	tr := loadTagTrend(path, quietLog())
	if err := tr.save(path); err != nil { // nothing changed: nothing written
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an unchanged chart was written: %v", err)
	}
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	tr.add(event.Event{Type: event.TagChange, At: day, Tag: &event.TagInfo{Dimension: "activity", To: "high"}})
	tr.add(event.Event{Type: event.TagChange, At: day, Tag: &event.TagInfo{Dimension: "activity", To: "high"}})
	if err := tr.save(path); err != nil {
		t.Fatal(err)
	}
	again := loadTagTrend(path, quietLog())
	if got := again.TagChanges(10); len(got) != 1 || got[0].Day != "2026-11-01" || got[0].Changes["activity:high"] != 2 {
		t.Fatalf("after a restart: %+v", got)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := loadTagTrend(path, quietLog()).TagChanges(10); len(got) != 0 {
		t.Fatalf("from a corrupt file: %+v", got)
	}
}

// TestTagTrendKeptAcrossNodeRestart: a node that stops cleanly leaves its tag-change
// chart in --data, and the next node on the same folder serves it.
func TestTagTrendKeptAcrossNodeRestart(t *testing.T) {
	cfg := testConfig(t)
	chart := func(a *App) string {
		t.Helper()
		admin, err := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		code, body := api(t, "GET", a.BaseURL()+"/api/segments/changes?days=7", admin, "")
		if code != 200 {
			t.Fatalf("chart: %d %s", code, body)
		}
		return string(body)
	}
	a := runningApp(t, cfg)
	a.pub.Publish(event.Event{ID: "w1", Type: event.WatchStart, At: time.Now(), Room: "shop", Viewer: "v1", Role: event.RoleViewer})
	// All three of the first event's changes: a stop handles what is still queued for
	// the rules (and the chart), so a chart read before them all would differ after.
	waitUntil(t, "the event's tag changes on the chart", func() bool {
		c := chart(a)
		return strings.Contains(c, "activity:") && strings.Contains(c, "value:") && strings.Contains(c, "lifecycle:")
	})
	before := chart(a)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := runningApp(t, cfg)
	defer b.Shutdown(context.Background())
	if after := chart(b); after != before {
		t.Fatalf("chart after a restart:\n %s\nwant\n %s", after, before)
	}
}

// Saves that overlap leave the file with the last counts: an older save does not
// rename its file over a newer one's while the counts are marked saved.
func TestTagTrendConcurrentSaves(t *testing.T) {
	path := filepath.Join(t.TempDir(), TrendFile)
	tr := newTagTrend()
	day := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				tr.add(event.Event{Type: event.TagChange, At: day, Tag: &event.TagInfo{Dimension: "activity", To: "high"}})
				if err := tr.save(path); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := tr.save(path); err != nil {
		t.Fatal(err)
	}
	saved := loadTagTrend(path, quietLog())
	if got := saved.days["2026-06-01"]["activity:high"]; got != 800 {
		t.Errorf("the file holds %d changes, 800 were counted", got)
	}
}

// FuzzTagTrendFile: any saved chart (damaged, hand-edited, from another version) loads
// without a panic; counting after it keeps at most trendDays days once a new day starts,
// and the chart lists at most the days asked for, oldest first.
func FuzzTagTrendFile(f *testing.F) {
	f.Add([]byte(`{"2026-11-01":{"activity:high":2}}`), int64(0))
	f.Add([]byte(`{"2026-11-01":null,"zzz":{"":-1}}`), int64(86400))
	f.Add([]byte(`{not json`), int64(-1))
	f.Add([]byte(`null`), int64(1e9))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, secs int64) {
		path := filepath.Join(dir, TrendFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tr := loadTagTrend(path, quietLog())
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(secs%(1<<40)) * time.Second)
		started := tr.days[at.Format(time.DateOnly)] == nil
		tr.add(event.Event{Type: event.TagChange, At: at, Tag: &event.TagInfo{Dimension: "activity", To: "high"}})
		if n := len(tr.days); started && n > trendDays {
			t.Fatalf("%d days kept", n)
		}
		got := tr.TagChanges(14)
		if len(got) > 14 || !slicesSortedByDay(got) {
			t.Fatalf("chart %+v", got)
		}
	})
}

func slicesSortedByDay(days []gateway.DayChanges) bool {
	for i := 1; i < len(days); i++ {
		if days[i-1].Day >= days[i].Day {
			return false
		}
	}
	return true
}
