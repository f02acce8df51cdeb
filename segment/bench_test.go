package segment

import (
	"context"
	"math/rand/v2"
	"path/filepath"
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

// BenchmarkWriteThrough writes changed profiles through to the bbolt store, per
// profile: write-throughs of 10,000 changed profiles out of 100,000 (a busy live
// room's changes between two), the snapshot's encoding and bbolt's transaction
// together.
func BenchmarkWriteThrough(b *testing.B) {
	store, err := OpenBolt(filepath.Join(b.TempDir(), "segment.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg := testConfig()
	cfg.Shards = 64
	cfg.FlushInterval = time.Minute // only the Flush calls below write
	cfg.SweepInterval = time.Hour
	e, err := New(cfg, Deps{Store: store, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	g := synth.New(100_000, time.Now(), 1)
	var x event.Event
	for range 300_000 {
		g.Next(&x)
		e.Apply(x)
	}
	if err := e.Flush(b.Context()); err != nil { // every profile once: the file's size
		b.Fatal(err)
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(g.Viewers))
	const changed = 10_000
	next := 0
	b.ResetTimer()
	for i := 0; i < b.N; i += changed {
		b.StopTimer()
		for range min(changed, b.N-i) {
			e.Apply(ev(event.Like, g.Viewers[order[next%len(order)]], time.Now()))
			next++
		}
		b.StartTimer()
		if err := e.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
