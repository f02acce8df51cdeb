package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// BenchmarkEvaluate runs the default rules over a mix of events for 10,000 viewers
// (orders, joins, comments, watch heartbeats, tag changes) and reports condition
// evaluations per second. Most conditions do not hold (repeat buyers, active fans),
// so it measures evaluation, not actions.
func BenchmarkEvaluate(b *testing.B) {
	e, _, _ := start(b, mustCompile(b, DefaultRules(5*time.Minute)), &manualClock{t: t0})
	ctx := context.Background()
	const viewers = 10_000
	vs := make([]Viewer, viewers)
	for i := range vs {
		vs[i] = Viewer{ID: fmt.Sprintf("v%d", i), Name: "Viewer", Orders: 3, Consent: true,
			Tags: Tags{Activity: "medium", Value: "ordinary", Lifecycle: "repeat", Preference: []string{"shoes", "price:mid"}}}
	}
	sess := Session{Room: "r1", Live: "l1", Watching: true, Orders: 1}
	events := []event.Event{
		orderEvent("x", t0),
		{Type: event.Join, At: t0},
		{Type: event.Danmaku, Text: "how much?", At: t0},
		{Type: event.Watch, Seconds: 30, At: t0},
	}
	change := TagChange{Dimension: "activity", From: "medium", To: "low", At: t0}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		v := &vs[i%viewers]
		if i%5 == 4 {
			e.OnTagChange(ctx, *v, sess, change)
			continue
		}
		ev := events[i%5]
		ev.ID = ""
		e.OnEvent(ctx, *v, sess, ev)
	}
	b.StopTimer()
	el := b.Elapsed().Seconds()
	b.ReportMetric(float64(e.Stats().Evaluated)/el, "evals/s")
	b.ReportMetric(float64(b.N)/el, "events/s")
}

// BenchmarkStayDelay arms 10,000 viewers' stay timers at once (real time, not a
// bubble) and reports the delay from each viewer's threshold to its prompt reaching
// the Outbox, p50 and p99, with the memory state and with bbolt.
func BenchmarkStayDelay(b *testing.B) {
	for _, store := range []string{"memory", "bolt-write-behind", "bolt-write-through"} {
		b.Run(store, func(b *testing.B) {
			var p50, p99, worst []time.Duration
			for range b.N {
				a, c, d := stayRound(b, store, 10_000, 2*time.Second)
				p50, p99, worst = append(p50, a), append(p99, c), append(worst, d)
			}
			b.ReportMetric(float64(slices.Max(p50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(slices.Max(p99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(slices.Max(worst).Microseconds())/1000, "max-ms")
		})
	}
}

func stayRound(b *testing.B, store string, viewers int, threshold time.Duration) (p50, p99, worst time.Duration) {
	b.Helper()
	var st State = NewMemoryState()
	if store != "memory" {
		every := DefaultConfig().FlushEvery
		if store == "bolt-write-through" {
			every = 0
		}
		bs, err := OpenBolt(filepath.Join(b.TempDir(), "rules.db"), every)
		if err != nil {
			b.Fatal(err)
		}
		defer bs.Close()
		st = bs
	}
	cfg := DefaultConfig()
	if w := os.Getenv("RULES_BENCH_WORKERS"); w != "" {
		fmt.Sscan(w, &cfg.Workers)
	}
	b.ResetTimer()
	delays, err := MeasureStay(context.Background(), cfg, st, viewers, threshold)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if os.Getenv("RULES_BENCH_VERBOSE") != "" {
		b.Logf("%s: first %v, p50 %v, p99 %v, max %v", store, delays[0], delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1])
	}
	return delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
}

// BenchmarkFireStay is the CPU cost of one stay firing on one goroutine (condition,
// limits, prompt rendering, the state's commit a chunk at a time, the hand-off), the
// unit of work behind BenchmarkStayDelay's burst. "whole" makes each firing at the
// threshold; "ready" is what is left at the threshold of a firing made ready ahead
// (Config.StayPrepare), the preparing done before the clock starts.
func BenchmarkFireStay(b *testing.B) {
	for _, store := range []string{"memory", "bolt-write-behind"} {
		for _, mode := range []string{"whole", "ready"} {
			b.Run(store+"/"+mode, func(b *testing.B) { benchFireStay(b, store, mode == "ready") })
		}
	}
}

func benchFireStay(b *testing.B, store string, ready bool) {
	var st State = NewMemoryState()
	if store != "memory" {
		bs, err := OpenBolt(filepath.Join(b.TempDir(), "rules.db"), DefaultConfig().FlushEvery)
		if err != nil {
			b.Fatal(err)
		}
		defer bs.Close()
		st = bs
	}
	set := mustCompile(b, DefaultRules(time.Minute))
	e, err := New(DefaultConfig(), Deps{Outbox: &timingOutbox{at: map[string]time.Time{}, done: make(chan struct{}), want: -1}, State: st, Rules: set})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	ctx, now := context.Background(), time.Now()
	timers := make([]*stayTimer, b.N)
	readies := make([]*readyStay, b.N)
	for i := range timers {
		v := Viewer{ID: fmt.Sprintf("v%d", i), Name: "Viewer", Consent: true, LastComment: "is it waterproof?"}
		env := Env{Viewer: v, Session: Session{Room: "r1", Live: "l1", Watching: true}}
		timers[i] = &stayTimer{key: stayKey(RuleStay, v.ID, "l1"), rule: RuleStay, viewer: v.ID, env: env, armedAt: now, final: true}
		if ready {
			p := batch{prep: true}
			final := *timers[i]
			e.fireStay(ctx, timers[i], now, &p)
			if len(p.pending) != 1 {
				b.Fatalf("preparing %s made %d firings", v.ID, len(p.pending))
			}
			readies[i] = &readyStay{timer: &final, p: p.pending[0]}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += fireChunk { // a chunk at a time, as a worker does
		batch := &batch{}
		for j := i; j < min(i+fireChunk, b.N); j++ {
			if ready {
				e.fireReady(ctx, readies[j], now, batch)
			} else {
				e.fireStay(ctx, timers[j], time.Now(), batch)
			}
		}
		e.commit(ctx, batch.pending)
	}
	b.StopTimer()
	if got := e.Stats().Prompts; got != uint64(b.N) {
		b.Fatalf("%d prompts for %d firings", got, b.N)
	}
}
