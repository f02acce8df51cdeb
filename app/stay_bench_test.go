package app

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// BenchmarkStayDelayApp measures the stay prompt's whole path in a running node:
// 10,000 viewers start watching a live room (watch_start events on the tap, as the
// WHEP relay sends them) at once, and an agent's WebSocket in the room reads the
// prompts. Delay = the prompt's arrival at the agent minus the viewer's threshold:
// segment applies the events, the rules bridge arms the timers, the wheel fires them,
// each firing reads the viewer from segment, renders, commits to the bbolt state and
// hands the prompt to chat, which batches it into the agents' next frame. Each round
// reports p50/p99/max; the benchmark line has the worst round.
func BenchmarkStayDelayApp(b *testing.B) {
	const viewers, threshold, room = 10_000, 3 * time.Second, "bench"
	cfg := testConfig(b)
	cfg.Segment.StayThreshold = threshold
	a, base := startApp(b, cfg)
	issue := func(role, user string) string {
		raw, err := a.Signer().Issue(token.Spec{User: user, Name: user, Role: role, Room: room, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	stop := goLive(b, a, base, room, issue(event.RoleHost, "host"))
	defer stop()
	live := a.pub.(*liveStamp).current(room)
	agent := newPromptReader(b, base, room, issue(event.RoleAgent, "agent"))
	defer agent.close()

	var p50s, p99s, maxes []time.Duration
	for round := range b.N {
		due := make(map[string]time.Time, viewers)
		for i := range viewers {
			id := fmt.Sprintf("r%d-v%d", round, i)
			due[id] = time.Now().Add(threshold)
			a.pub.Publish(event.Event{ID: "bench-" + id, Type: event.WatchStart, At: time.Now(), Room: room,
				Live: live, Viewer: id, Name: "Viewer", Role: event.RoleViewer})
		}
		delays := agent.wait(b, due, threshold+time.Minute)
		p50, p99, worst := delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
		b.Logf("round %d: p50 %v p99 %v max %v", round+1, p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
		p50s, p99s, maxes = append(p50s, p50), append(p99s, p99), append(maxes, worst)
	}
	b.ReportMetric(float64(slices.Max(p50s).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(slices.Max(p99s).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(slices.Max(maxes).Microseconds())/1000, "max-ms")
}

// promptReader is an agent's WebSocket that notes when each viewer's prompt arrives.
type promptReader struct {
	conn *websocket.Conn
	mu   sync.Mutex
	at   map[string]time.Time // every prompt's arrival, by viewer
	done chan struct{}
}

func newPromptReader(tb testing.TB, base, room, tok string) *promptReader {
	tb.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(wsURL(base, room, tok), nil)
	if err != nil {
		tb.Fatal(err)
	}
	r := &promptReader{conn: conn, at: map[string]time.Time{}, done: make(chan struct{})}
	// Frames are stamped as they are read and parsed on another goroutine, so that
	// parsing one large frame does not delay the next one's stamp.
	type frame struct {
		at   time.Time
		data []byte
	}
	frames := make(chan frame, 1024)
	go func() {
		defer close(frames)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			frames <- frame{time.Now(), data}
		}
	}()
	go func() {
		defer close(r.done)
		for f := range frames {
			ids := promptViewers(f.data)
			r.mu.Lock()
			for _, id := range ids {
				if _, seen := r.at[id]; !seen {
					r.at[id] = f.at
				}
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// promptViewers lists the viewer ids of the prompt events in a frame. Only a prompt
// carries a viewer object ("viewer":{"id":...}); a byte scan keeps the agent's side of
// the benchmark from taking the CPU the node needs (a full JSON decode of the burst
// took a tenth of it).
func promptViewers(frame []byte) []string {
	marker := []byte(`"viewer":{"id":"`)
	var ids []string
	for {
		i := bytes.Index(frame, marker)
		if i < 0 {
			return ids
		}
		frame = frame[i+len(marker):]
		end := bytes.IndexByte(frame, '"')
		if end < 0 {
			return ids
		}
		ids = append(ids, string(frame[:end]))
		frame = frame[end:]
	}
}

// wait returns, sorted, each viewer's delay from due to its prompt's arrival. Each
// poll looks only at the viewers still missing, so that the waiting does not take the
// node's CPU.
func (r *promptReader) wait(tb testing.TB, due map[string]time.Time, limit time.Duration) []time.Duration {
	tb.Helper()
	deadline := time.Now().Add(limit)
	missing := slices.Collect(maps.Keys(due))
	delays := make([]time.Duration, 0, len(due))
	for len(missing) > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d prompts arrived", len(due)-len(missing), len(due))
		}
		time.Sleep(50 * time.Millisecond)
		r.mu.Lock()
		missing = slices.DeleteFunc(missing, func(id string) bool {
			at, ok := r.at[id]
			if ok {
				delays = append(delays, at.Sub(due[id]))
			}
			return ok
		})
		r.mu.Unlock()
	}
	slices.Sort(delays)
	return delays
}

func (r *promptReader) close() {
	r.conn.Close()
	<-r.done
}
