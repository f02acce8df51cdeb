package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestGracefulStopKeepsConnectedViewersWatch: a viewer still in a room's chat when the
// node is stopped (SIGTERM: a deploy, a restart) keeps the time it was there, as one
// that left a moment before does. The stop closes the connections (clients told to
// reconnect) and each one's leave goes onto the tap, so segment must still take it.
func TestGracefulStopKeepsConnectedViewersWatch(t *testing.T) {
	cfg := testConfig(t)
	a := runningApp(t, cfg)
	base := a.BaseURL()
	root := issuer(t, a, "*")("admin", "root")
	tok, viewer := guest(t, base, "shop")
	dialRoom(t, base, "shop", tok)
	time.Sleep(3 * time.Second)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := runningApp(t, cfg)
	defer b.Shutdown(context.Background())
	code, body := api(t, "GET", b.BaseURL()+"/api/viewers/"+viewer, root, "")
	var p struct {
		WatchSeconds float64 `json:"watch_seconds"`
	}
	if code != 200 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("profile after the restart: %d %.300s", code, body)
	}
	if p.WatchSeconds < 2 {
		t.Errorf("watch_seconds after a graceful stop = %v, want about 3 (the viewer was in the room 3 s when the node stopped)", p.WatchSeconds)
	}
}
