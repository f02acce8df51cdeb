package segment

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a fixed clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func testConfig() Config {
	c := DefaultConfig()
	c.Rates = map[string]string{"EUR": "1.1", "JPY": "0.0067"}
	c.SweepInterval = 24 * time.Hour // tests sweep by hand
	c.Shards = 4
	return c
}

// newEngine builds an engine on store (a MemoryStore when nil) at a fixed clock.
func newEngine(t testing.TB, store Store, clk *clock) *Engine {
	t.Helper()
	if store == nil {
		store = NewMemoryStore()
	}
	e, err := New(testConfig(), Deps{Store: store, Now: clk.Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// tapEngine is an engine on a memory store that consumes tap, at the clock now;
// closed when the test ends.
func tapEngine(t testing.TB, tap event.Source, now func() time.Time) *Engine {
	t.Helper()
	e, err := New(testConfig(), Deps{Store: NewMemoryStore(), Tap: tap, Now: now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// importJSON imports a JSON array and fails the test on a refused item.
func importJSON(t testing.TB, e *Engine, body string) ImportResult {
	t.Helper()
	res, err := e.ImportJSON(context.Background(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("import refused items: %+v", res.Errors)
	}
	return res
}

func viewer(t *testing.T, e *Engine, id string) ViewerView {
	t.Helper()
	v, err := e.Viewer(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var evSeq atomic.Int64

// ev is a tap event with a fresh id.
func ev(typ event.Type, viewer string, at time.Time) event.Event {
	id := fmt.Sprintf("tap-%d", evSeq.Add(1))
	return event.Event{ID: id, Type: typ, Viewer: viewer, At: at, Role: event.RoleViewer, Room: "r1"}
}
