package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// TestEraseLeavesNothingOnDisk: after DELETE /api/viewers/{id}, no file of the node's
// data directory holds the viewer's id, its private messages, the agent's note about it
// or its danmaku — not even in the free pages of the stores (bbolt keeps deleted bytes
// there until they are reused). What it touched: a danmaku, DMs both ways, a note, a
// Shopify order with its thank-you DM and 7-day follow-up job from the default rules.
func TestEraseLeavesNothingOnDisk(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.ShopSecret = shopSecret
	a := runningApp(t, cfg)
	stopped := false
	defer func() {
		if !stopped {
			a.Shutdown(context.Background())
		}
	}()
	base := a.BaseURL()
	const room = "shop"
	agentTok, _ := a.Signer().Issue(token.Spec{User: "agent1", Name: "Ann", Role: event.RoleAgent, Room: room, TTL: time.Hour})
	root, _ := a.Signer().Issue(token.Spec{User: "root", Role: event.RoleAdmin, Room: token.AnyRoom, TTL: time.Hour})
	viewerTok, viewer := guest(t, base, room)
	keepTok, keeper := guest(t, base, room)

	agent := dialRoom(t, base, room, agentTok)
	v := dialRoom(t, base, room, viewerTok)
	k := dialRoom(t, base, room, keepTok)
	v.send(t, map[string]any{"type": "danmaku", "text": "zanzibar-danmaku"})
	k.send(t, map[string]any{"type": "danmaku", "text": "kept-danmaku"})
	agent.send(t, map[string]any{"type": "dm", "to": viewer, "text": "zanzibar-agent-dm"})
	waitUntil(t, "the agent's DM", func() bool { return len(v.of("dm")) >= 1 })
	v.send(t, map[string]any{"type": "dm", "text": "zanzibar-viewer-dm"})
	waitUntil(t, "the viewer's DM", func() bool { return len(agent.of("dm")) >= 2 })
	if code, b := api(t, "POST", base+"/api/viewers/"+viewer+"/notes", agentTok, `{"text":"zanzibar-note"}`); code != 204 {
		t.Fatalf("note: %d %s", code, b)
	}
	if code, b := shopifyOrder(t, base, "2001", viewer, room, true); code != 200 {
		t.Fatalf("order: %d %s", code, b)
	}
	waitUntil(t, "the thank-you DM", func() bool { return len(v.of("dm")) >= 2 })
	waitUntil(t, "the other viewer's danmaku", func() bool { return len(agent.of("danmaku")) >= 2 })
	if code, b := api(t, "DELETE", base+"/api/viewers/"+viewer, root, ""); code != 204 {
		t.Fatalf("erase: %d %s", code, b)
	}
	agent.close()
	v.close()
	k.close()
	stopped = true
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	secrets := []string{viewer, "zanzibar"}
	kept := 0
	err := filepath.WalkDir(cfg.Data, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if n := bytes.Count(raw, []byte(s)); n > 0 {
				t.Errorf("%s still holds %q %d times", filepath.Base(path), s, n)
			}
		}
		kept += bytes.Count(raw, []byte(keeper))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if kept == 0 {
		t.Errorf("no file holds the other viewer %s: the check would pass on empty files", keeper)
	}
}
