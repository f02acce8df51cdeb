package chat

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A client that sends WebSocket pings and does not read: each ping now queues a pong
// (conn.go SetPingHandler) with no bound, while push bounds every other frame by
// QueueFrames (1013). Before this commit gorilla's default handler wrote the pong on
// the reader goroutine, which gave backpressure.
func TestPingFloodKeepsOnePong(t *testing.T) {
	rs := startTCPHub(t, DefaultConfig(), 4096)
	ws := rs.dial(t, "r1", "v1", 4096)
	if _, _, err := ws.ReadMessage(); err != nil { // the welcome
		t.Fatal(err)
	}
	c := rs.serverConn(t, "r1", "v1")
	payload := bytes.Repeat([]byte("p"), 120)
	const pings = 20000
	for i := range pings {
		if err := ws.WriteControl(websocket.PingMessage, payload, time.Now().Add(5*time.Second)); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the reader take them in
	c.mu.Lock()
	n, closing, dead := len(c.queue), c.closing, c.dead
	c.mu.Unlock()
	t.Logf("after %d pings: %d frames queued (QueueFrames %d), closing %v, dead %v", pings, n, rs.hub.cfg.QueueFrames, closing, dead)
	if n > rs.hub.cfg.QueueFrames {
		t.Fatalf("queue grew to %d frames (QueueFrames %d) without the connection being closed", n, rs.hub.cfg.QueueFrames)
	}
}
