package chat

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readAll reads ws until it fails and returns the close code (0 if none).
func readAll(ws *websocket.Conn, frames *atomic.Int64) <-chan int {
	done := make(chan int, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					done <- ce.Code
				} else {
					done <- 0
				}
				return
			}
			frames.Add(1)
		}
	}()
	return done
}

// busyRoom emits one room event per flush for d (SetLive on/off).
func busyRoom(rs *tcpHub, room string, d time.Duration) {
	live := false
	for end := time.Now().Add(d); time.Now().Before(end); {
		live = !live
		rs.hub.SetLive(room, live)
		time.Sleep(rs.hub.cfg.FlushInterval + 5*time.Millisecond)
	}
}

// In an active room an idle connection has no writer goroutine: the fan-out writes it.
// (When writers lingered after each frame, every cycle woke one per connection and the
// non-blocking write went unused.)
func TestFanOutWritesIdleConnections(t *testing.T) {
	rs := startTCPHub(t, DefaultConfig(), 0)
	ws := rs.dial(t, "r1", "v1", 0)
	var frames atomic.Int64
	readAll(ws, &frames)
	c := rs.serverConn(t, "r1", "v1")
	stop := make(chan struct{})
	go func() { busyRoom(rs, "r1", 2*time.Second); close(stop) }()
	time.Sleep(500 * time.Millisecond) // past the welcome's own writer
	samples, busy := 0, 0
	for loop := true; loop; {
		select {
		case <-stop:
			loop = false
		case <-time.After(5 * time.Millisecond):
			c.mu.Lock()
			if c.writing {
				busy++
			}
			c.mu.Unlock()
			samples++
		}
	}
	t.Logf("%d frames read; writer goroutine present in %d of %d samples", frames.Load(), busy, samples)
	if busy*10 > samples*9 {
		t.Fatalf("the connection's writer goroutine never ended (%d/%d samples): every cycle wakes it instead of writing from the fan-out", busy, samples)
	}
}

// A connection that reads everything is never closed as slow, even when cycles are
// far apart (chat-frame-interval 2s, which Validate accepts): the lag is the age of its
// oldest unsent event, not the batches published since the last cycle (which closed
// such connections once).
func TestLagKeepsHealthyConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FrameInterval = 2 * time.Second
	rs := startTCPHub(t, cfg, 0)
	ws := rs.dial(t, "r1", "v1", 0)
	var frames atomic.Int64
	closed := readAll(ws, &frames)
	rs.serverConn(t, "r1", "v1")
	busyRoom(rs, "r1", 3*time.Second)
	select {
	case code := <-closed:
		t.Fatalf("a client reading everything was closed with %d after %d frames", code, frames.Load())
	case <-time.After(500 * time.Millisecond):
	}
}
