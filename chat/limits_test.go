package chat_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
)

// TestLimitsOutliveReconnect: a viewer who leaves and comes back is still in slow mode
// and still has spent its danmaku: rate limits belong to the user, not to its
// connections, or reconnecting would beat them.
func TestLimitsOutliveReconnect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		slow  string // set by the host first ("" for none)
		spend int    // danmaku accepted before the reconnect
	}{
		{"slow mode", "1h", 1},
		{"danmaku bucket", "", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := chat.DefaultConfig()
				cfg.DanmakuRate, cfg.DanmakuBurst = 0.001, 5 // spent tokens stay spent
				b := startBubble(t, cfg)
				host := b.dial("r", event.RoleHost, "h")
				go readAll(host, make(chan timed, 1024))
				if tc.slow != "" {
					_ = host.WriteJSON(map[string]any{"type": "slow", "for": tc.slow})
				}
				v := b.dial("r", event.RoleViewer, "v")
				for range tc.spend {
					_ = v.WriteJSON(map[string]any{"type": "danmaku", "text": "hi"})
					if ev := nextOf(t, v, "danmaku", "error"); ev["type"] != "danmaku" {
						t.Fatalf("before the reconnect: %v", ev)
					}
				}
				v.Close()
				b.expectConns(1, "after the viewer left") // the room forgot the member

				v = b.dial("r", event.RoleViewer, "v")
				_ = v.WriteJSON(map[string]any{"type": "danmaku", "text": "back again"})
				if ev := nextOf(t, v, "danmaku", "error"); ev["code"] != "rate_limited" {
					t.Fatalf("after the reconnect: %v, want a rate_limited error", ev)
				}
				v.Close()
				host.Close()
				b.stop()
			})
		})
	}
}

// nextOf reads ws until an event of one of types arrives and returns it.
func nextOf(t *testing.T, ws *websocket.Conn, types ...string) map[string]any {
	t.Helper()
	evs := readUntil(t, ws, types...)
	return evs[len(evs)-1]
}

// readUntil reads ws until an event of one of types arrives and returns the events
// read, that one last. It waits a minute of the bubble's clock at most: an event that
// never comes fails the test instead of hanging it.
func readUntil(t *testing.T, ws *websocket.Conn, types ...string) []map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	var read []map[string]any
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %v: %v", types, err)
		}
		var evs []map[string]any
		_ = json.Unmarshal(data, &evs)
		for _, e := range evs {
			read = append(read, e)
			if typ, _ := e["type"].(string); slices.Contains(types, typ) {
				return read
			}
		}
	}
}

// TestProductClickFloodRefusedThenClosed: product clicks go through a per-user bucket
// like every other viewer message, so a flood is refused and, as abuse, closed with
// 1008, instead of filling the event tap at wire speed.
func TestProductClickFloodRefusedThenClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := chat.DefaultConfig()
		cfg.AbuseLimit = 5
		b := startBubble(t, cfg)
		v := b.dial("c", event.RoleViewer, "v")
		go func() { // the writes fail once the server closes
			for range 100 {
				if v.WriteJSON(map[string]any{"type": "product_click", "product": "SKU-1"}) != nil {
					return
				}
			}
		}()
		// Refused (rate_limited errors, each written before the close), then closed
		// as abuse: the close names the refusals.
		var ce *websocket.CloseError
		refusals := 0
		for {
			_, b, err := v.ReadMessage()
			if err != nil {
				if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "refused") {
					t.Fatalf("the flood ended with %v, want a 1008 close for refused messages", err)
				}
				break
			}
			if strings.Contains(string(b), `"error"`) && !strings.Contains(string(b), "rate_limited") {
				t.Fatalf("a flood of clicks: %s, want rate_limited", b)
			}
			refusals += strings.Count(string(b), "rate_limited")
		}
		// The abuse limit's burst of 5 refusals, and the one that went past it.
		if refusals < cfg.AbuseLimit+1 {
			t.Errorf("%d rate_limited errors before the close, want %d", refusals, cfg.AbuseLimit+1)
		}
		v.Close()
		b.stop()
	})
}
