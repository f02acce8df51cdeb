package segment

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/liveroom/liveroom/event"
)

// Warming is a hint: it ends for any range, and never faults, even on memory that is
// not mapped (a profile freed since its address was taken).
func TestWarmingNeverFaults(t *testing.T) {
	buf := make([]byte, 1<<16)
	start := uintptr(unsafe.Pointer(&buf[0]))
	for _, n := range []uintptr{1, cacheLine, cacheLine + 1, 1 << 16} {
		warmBytes(start, n)
	}
	warmBytes(start+1, cacheLine) // two lines
	warmBytes(0x1000, 1<<20)      // the first pages of the address space are never mapped
	warmTail(buf, 4)
	warmTail([]int(nil), 4)
}

// The consumer warms the cache through the tables and profiles without the shards'
// locks, while imports grow the same tables and erasures move their slots. Every
// event still lands where it belongs. Under -race, with the warming's reads left to
// the race detector (no go:norace), it reported them in some runs (checked: in three
// runs of six, on two cores), so the test does reach them. (It would pass with the
// locks too: it guards against a crash or a lost event, not for the speed.)
func TestWarmingBesideAnImportAndErasures(t *testing.T) {
	tap := event.NewQueue(1 << 16)
	e := tapEngine(t, tap, (&clock{t: t0}).Now)
	const live, imported, rounds = 200, 20000, 50
	done := make(chan error, 2)
	go func() { // imports of new viewers, growing every shard's table
		for start := 0; start < imported; start += 10_000 { // a request's most
			var b strings.Builder
			b.WriteString("[")
			for i := start; i < start+10_000; i++ {
				if i > start {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"id":"imp%d","type":"like","viewer":"new%d","at":%q}`, i, i, t0.Add(-time.Hour).Format(time.RFC3339))
			}
			b.WriteString("]")
			if _, err := e.ImportJSON(context.Background(), strings.NewReader(b.String())); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() { // erasures of other viewers, moving slots back
		for i := range 50 {
			e.Apply(ev(event.Like, fmt.Sprintf("gone%d", i), t0))
			if err := e.Erase(context.Background(), fmt.Sprintf("gone%d", i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for r := range rounds {
		for v := range live {
			x := ev(event.Danmaku, fmt.Sprintf("v%d", v), t0)
			x.Text = fmt.Sprint(r)
			for !tap.Publish(x) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.Consumed() < live*rounds && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for v := range live {
		if p := viewer(t, e, fmt.Sprintf("v%d", v)); p.Comments != rounds {
			t.Fatalf("v%d: %d comments, want %d", v, p.Comments, rounds)
		}
	}
	for _, id := range []string{"new0", fmt.Sprintf("new%d", imported-1)} {
		if p := viewer(t, e, id); p.Likes != 1 {
			t.Fatalf("%s: %d likes", id, p.Likes)
		}
	}
}
