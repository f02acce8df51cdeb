package segment

import (
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/segment/synth"
)

// BenchmarkApply folds synthetic live events into 100,000 profiles on one goroutine
// (no write-through during the loop: the flusher ticks once a minute here).
func BenchmarkApply(b *testing.B) {
	cfg := testConfig()
	cfg.FlushInterval = time.Minute
	cfg.SweepInterval = time.Hour
	cfg.Shards = 64
	e, err := New(cfg, Deps{Store: NewMemoryStore(), Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(b.Context())
	g := synth.New(100_000, time.Now(), 1)
	var x event.Event
	for range 200_000 { // warm up: create the profiles
		g.Next(&x)
		e.Apply(x)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.Next(&x)
		e.Apply(x)
	}
}
