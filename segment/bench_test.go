package segment

import (
	"context"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/synth"
)

// BenchmarkApply folds synthetic live events into 100,000 profiles on one goroutine
// (no write-through during the loop: the flusher ticks once a minute here).
func BenchmarkApply(b *testing.B) { benchmarkApply(b, false) }

// BenchmarkApplyTagged is BenchmarkApply with a subscriber to tag changes (as the rules
// are in a node): every change is built as an event with its reason.
func BenchmarkApplyTagged(b *testing.B) { benchmarkApply(b, true) }

func benchmarkApply(b *testing.B, tagged bool) {
	cfg := testConfig()
	cfg.Shards = 64
	e, g := syntheticEngine(b, cfg, 100_000, 200_000, time.Now(), nil) // the warm-up creates the profiles
	if tagged {
		b.Cleanup(e.Subscribe(event.Discard{}, event.TagChange))
	}
	var x event.Event
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.Next(&x)
		e.Apply(x)
	}
}

// BenchmarkApplyBatch is BenchmarkApply the way the tap's consumer applies events: in
// batches, warming the cache for the events ahead.
func BenchmarkApplyBatch(b *testing.B) {
	cfg := testConfig()
	cfg.Shards = 64
	e, g := syntheticEngine(b, cfg, 100_000, 200_000, time.Now(), nil)
	batch := make([]event.Event, consumeBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		n := min(len(batch), b.N-i)
		for j := range n {
			g.Next(&batch[j])
		}
		e.applyBatch(batch[:n])
	}
}

// BenchmarkBrief is what the rules pay per event and per fired timer for a viewer's
// snapshot (segment.Brief), beside the profile page's Viewer.
func BenchmarkBrief(b *testing.B) {
	e, g := syntheticEngine(b, testConfig(), 10_000, 100_000, time.Now(), nil)
	for _, kind := range []string{"brief", "viewer"} {
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := g.Viewers[i%len(g.Viewers)]
				i++
				var err error
				if kind == "brief" {
					_, err = e.Brief(b.Context(), id, "")
				} else {
					_, err = e.Viewer(b.Context(), id)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// syntheticEngine is an engine on a memory store, with no timed writes or sweeps, that
// has applied events synthetic events of viewers viewers; g goes on from there.
func syntheticEngine(tb testing.TB, cfg Config, viewers, events int, start time.Time, now func() time.Time) (e *Engine, g *synth.Gen) {
	tb.Helper()
	cfg.FlushInterval = time.Minute
	cfg.SweepInterval = time.Hour
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Log: quiet, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close(context.Background()) })
	g = synth.New(viewers, start, 1)
	var x event.Event
	for range events {
		g.Next(&x)
		e.Apply(x)
	}
	return e, g
}
