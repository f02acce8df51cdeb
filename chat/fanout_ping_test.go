package chat

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A client that sends WebSocket pings and does not read keeps one pong queued at most
// (the latest ping's), not one per ping.
func TestPingFloodKeepsOnePong(t *testing.T) {
	ws, c := welcomed(t, DefaultConfig(), 4096, 4096)
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
	t.Logf("after %d pings: %d frames queued (QueueFrames %d), closing %v, dead %v", pings, n, c.hub.cfg.QueueFrames, closing, dead)
	if n > c.hub.cfg.QueueFrames {
		t.Fatalf("queue grew to %d frames (QueueFrames %d) without the connection being closed", n, c.hub.cfg.QueueFrames)
	}
}
