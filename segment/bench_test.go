package segment

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
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
	var keys warmKeys
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		n := min(len(batch), b.N-i)
		for j := range n {
			g.Next(&batch[j])
		}
		e.applyBatch(batch[:n], &keys)
	}
}

// BenchmarkApplyBatchLive is BenchmarkApplyBatch on live traffic over 2,000 viewers
// (1,000 present in ten rooms, after 6,000 events of history), with the events made
// before the timer starts: the engine's work alone, everything in the cache. Under
// callgrind, collecting inside applyBatch only, it counts the instructions an event
// takes, a figure the host's other tenants do not move (docs/benchmarks.md); with the
// collector off, whose assists would land in applyBatch at times that vary:
//
//	go test -c -o seg.test ./segment
//	GOGC=off GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --toggle-collect='*Engine).applyBatch' \
//	  ./seg.test -test.run '^$' -test.bench 'ApplyBatchLive$' -test.benchtime 200000x
func BenchmarkApplyBatchLive(b *testing.B) {
	const viewers = 2_000
	cfg := testConfig()
	cfg.Shards = 64
	e, g := syntheticEngine(b, cfg, viewers, 3*viewers, time.Now(), nil)
	g.Live(viewers/2, 10)
	evs := make([]event.Event, b.N)
	for i := range evs {
		g.Next(&evs[i])
	}
	var keys warmKeys
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += consumeBatch {
		e.applyBatch(evs[i:min(i+consumeBatch, b.N)], &keys)
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

// BenchmarkWriteThrough writes changed profiles through, per profile: write-throughs
// of 10,000 changed profiles out of 100,000 (a busy live room's changes between two),
// the snapshot's encoding and the store's commit together. It runs on the bbolt file
// alone and on the journal in front of it, the journal's folds included (the last one
// inside the timer). Run it on one core (taskset) so the background folds count in
// the wall clock.
func BenchmarkWriteThrough(b *testing.B) {
	for _, name := range []string{"bolt", "journal"} {
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "segment.db")
			var store Store
			var fold func() error
			if name == "bolt" {
				s, err := OpenBolt(path, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				store, fold = s, func() error { return nil }
			} else {
				s, err := OpenJournal(path, time.Second, JournalLimit, quiet)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				store, fold = s, func() error { return s.Fold(context.Background()) }
			}
			benchWriteThrough(b, store, fold)
		})
	}
}

func benchWriteThrough(b *testing.B, store Store, fold func() error) {
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
	if err := fold(); err != nil {
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
	if err := fold(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFold folds a journal in which every one of 200,000 stored profiles changed
// once, per profile; "fold-batches" one in which each changed twice, journaled as
// twenty write-throughs of a tenth each, as a node's are; "commit" is the bbolt
// commit of the same batch alone, the part of a fold that is bbolt's; "bulk" a bulk
// commit of all of them over a journal holding a fifth of them.
func BenchmarkFold(b *testing.B) {
	const n = 200_000
	batch := &Batch{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		data := make([]byte, 380)
		for j := range data {
			data[j] = byte(rng.IntN(256))
		}
		batch.Profiles = append(batch.Profiles, Record{Key: fmt.Sprintf("viewer-%08d", rng.IntN(1<<30)+i), Data: data})
	}
	for _, name := range []string{"commit", "fold", "fold-batches", "bulk"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "segment.db")
				s, err := OpenJournal(path, time.Second, 1<<40, quiet)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.base.Commit(context.Background(), batch); err != nil { // the store before
					b.Fatal(err)
				}
				switch name {
				case "fold":
					err = s.Commit(context.Background(), batch)
				case "fold-batches": // as twenty write-throughs of a tenth each: each profile twice
					for i := 0; i < 20 && err == nil; i++ {
						part := batch.Profiles[i%10*(n/10) : (i%10+1)*(n/10)]
						err = s.Commit(context.Background(), &Batch{Profiles: part})
					}
				case "bulk": // a fifth of them journaled before
					err = s.Commit(context.Background(), &Batch{Profiles: batch.Profiles[:n/5]})
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				switch name {
				case "fold", "fold-batches":
					err = s.Fold(context.Background())
				case "bulk":
					err = s.CommitBulk(context.Background(), batch)
				default:
					err = s.base.Commit(context.Background(), batch)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/profile")
		})
	}
}

// BenchmarkBackup copies a store of 200,000 profiles of 400 bytes, a fifth of them
// in the journal, into a folder (what GET /api/backup does before it streams).
func BenchmarkBackup(b *testing.B) {
	const n = 200_000
	batch := &Batch{}
	data := bytes.Repeat([]byte("p"), 400)
	for i := range n {
		batch.Profiles = append(batch.Profiles, Record{Key: fmt.Sprintf("viewer-%08d", i), Data: data})
	}
	s, err := OpenJournal(filepath.Join(b.TempDir(), "segment.db"), time.Second, 1<<40, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.base.Commit(ctx, batch); err != nil {
		b.Fatal(err)
	}
	if err := s.Commit(ctx, &Batch{Profiles: batch.Profiles[:n/5]}); err != nil {
		b.Fatal(err)
	}
	var size int64
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "copy")
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Backup(ctx, dir); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		size = 0
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			info, _ := e.Info()
			size += info.Size()
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.SetBytes(size)
}

// BenchmarkPass times the passes over every profile, per profile, at 300,000 profiles
// (about 300 MB, ten times the test machine's L3 cache, so most are read from
// memory): "sweep" is a whole sweep; "snapshot" encodes every profile for a
// write-through (each marked changed first, outside the timer, in random order).
func BenchmarkPass(b *testing.B) {
	cfg := testConfig()
	cfg.Shards = 64
	const viewers = 300_000
	e, g := syntheticEngine(b, cfg, viewers, 3*viewers, time.Now(), nil)
	order := rand.New(rand.NewPCG(3, 4)).Perm(len(g.Viewers))
	b.Run("sweep", func(b *testing.B) {
		for b.Loop() {
			e.Sweep()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*e.Count()), "ns/profile")
	})
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			for _, i := range order {
				sh, p := e.lookup(g.Viewers[i], false)
				if p != nil {
					sh.markDirty(p)
					sh.mu.Unlock()
				}
			}
			b.StartTimer()
			e.commitMu.Lock()
			var a arena
			e.snapshotDirty(&Batch{}, &a)
			e.commitMu.Unlock()
			a.release()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*e.Count()), "ns/profile")
	})
}
