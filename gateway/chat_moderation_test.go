package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// TestChatModerationRoleMatrix: every moderation message by every role; viewers get
// forbidden, host/agent/admin are obeyed (pin: host and admin only).
func TestChatModerationRoleMatrix(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	actions := []struct {
		msg     map[string]any
		allowed map[string]bool
		answer  string // event the sender sees when allowed
	}{
		{map[string]any{"type": "mute", "user": "target", "for": "1m"}, mods, "notice"},
		{map[string]any{"type": "unmute", "user": "target"}, mods, "notice"},
		{map[string]any{"type": "slow", "for": 0}, mods, "notice"},
		{map[string]any{"type": "pin", "product": map[string]any{"sku": "S", "title": "T", "price": 1}}, map[string]bool{"host": true, "admin": true}, "pin"},
		{map[string]any{"type": "ban", "user": "target", "for": "1m"}, mods, "notice"},
		{map[string]any{"type": "unban", "user": "target"}, mods, "notice"},
	}
	for _, role := range []string{event.RoleViewer, event.RoleHost, event.RoleAgent, event.RoleAdmin} {
		c := h.join("m", role, "u-"+role)
		for _, a := range actions {
			c.send(a.msg)
			if a.allowed[role] {
				c.expect(a.answer)
			} else {
				c.expectError("forbidden")
			}
		}
	}
}

var mods = map[string]bool{"host": true, "agent": true, "admin": true}

func TestChatMuteDeleteSlowBan(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	host := h.join("mod", event.RoleHost, "h")
	agent := h.join("mod", event.RoleAgent, "ag")
	v := h.join("mod", event.RoleViewer, "v")

	// Mute: the viewer's danmaku are refused with `muted`, and the connection stays.
	agent.send(map[string]any{"type": "mute", "user": "v", "for": 600})
	n := v.expect("notice")
	if n["action"] != "mute" || n["user"] != "v" || num(n["until"]) == 0 {
		t.Fatalf("mute notice = %v", n)
	}
	v.send(map[string]any{"type": "danmaku", "text": "hello?"})
	if e := v.expectError("muted"); num(e["until"]) != num(n["until"]) {
		t.Fatalf("muted error until %v, want the mute's %v", e["until"], n["until"])
	}
	if room := h.dial("mod", event.RoleViewer, "v", nil).expect("welcome")["room"].(map[string]any); num(room["muted_until"]) == 0 {
		t.Fatalf("a muted viewer's welcome lacks muted_until: %v", room)
	}
	agent.send(map[string]any{"type": "unmute", "user": "v"})
	v.expect("notice")
	v.send(map[string]any{"type": "danmaku", "text": "free again"})
	d := host.expect("danmaku")
	v.expect("danmaku")

	// Delete: everyone gets `deleted`; later welcomes leave the message out.
	host.send(map[string]any{"type": "delete", "seq": d["seq"]})
	if del := v.expect("deleted"); num(del["target"]) != num(d["seq"]) || num(del["seq"]) <= num(d["seq"]) {
		t.Fatalf("deleted = %v", del)
	}
	host.expect("deleted")
	host.send(map[string]any{"type": "delete", "seq": 999999})
	host.expectError("bad_request")
	for _, e := range h.dial("mod", event.RoleViewer, "late", nil).expect("welcome")["history"].([]any) {
		if e.(map[string]any)["text"] == "free again" {
			t.Fatal("a deleted message is still in the welcome history")
		}
	}

	// Slow mode: viewers wait between messages; the host does not.
	agent.send(map[string]any{"type": "slow", "for": "1h"})
	if n := v.expect("notice"); n["action"] != "slow" || num(n["slow_ms"]) != 3600000 {
		t.Fatalf("slow notice = %v", n)
	}
	host.expect("notice")
	fresh := h.join("mod", event.RoleViewer, "fresh")
	fresh.send(map[string]any{"type": "danmaku", "text": "first"})
	fresh.expect("danmaku")
	host.expect("danmaku")
	v.expect("danmaku")
	fresh.send(map[string]any{"type": "danmaku", "text": "second"})
	fresh.expectError("rate_limited")
	v.send(map[string]any{"type": "danmaku", "text": "v again"}) // wrote "free again" < 1h ago
	v.expectError("rate_limited")
	host.send(map[string]any{"type": "danmaku", "text": "host 1"})
	host.send(map[string]any{"type": "danmaku", "text": "host 2"})
	v.expect("danmaku")
	v.expect("danmaku")

	// Ban: the viewer's connection closes with 1008 and it cannot come back.
	host.send(map[string]any{"type": "ban", "user": "v"})
	if code := v.expectClose(); code != websocket.ClosePolicyViolation {
		t.Fatalf("banned close code %d, want 1008", code)
	}
	_, resp, err := h.dialRaw("mod", h.token(event.RoleViewer, "v", "mod"), nil, nil)
	if err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("banned redial: %v %v, want 403", err, resp)
	}
	host.expect("danmaku")
	host.expect("danmaku")
	host.send(map[string]any{"type": "ban", "user": "h"})
	host.expectError("bad_request")
	host.send(map[string]any{"type": "unban", "user": "v"})
	// The ban's own notice may still be waiting: an error is written straight to its
	// connection and can overtake the room's events. Redial after the unban's notice.
	for ev := host.expect("notice"); ev["action"] != "unban"; ev = host.expect("notice") {
	}
	h.dial("mod", event.RoleViewer, "v", nil).expect("welcome")
}

// TestChatEraseViewer: erasing a viewer takes what it said out of the room: connected
// clients get `deleted` for it, a later welcome leaves it out, and a resume replays a
// tombstone under its seq (every seq once) instead of the text.
func TestChatEraseViewer(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	defer h.close()
	v := h.join("gdpr", event.RoleViewer, "v")
	w := h.join("gdpr", event.RoleViewer, "w")
	v.send(map[string]any{"type": "danmaku", "text": "my secret"})
	said := w.expect("danmaku")
	w.send(map[string]any{"type": "danmaku", "text": "still here"})
	w.expect("danmaku")
	if err := h.hub.EraseViewer(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	if del := w.expect("deleted"); num(del["target"]) != num(said["seq"]) {
		t.Fatalf("deleted = %v, want the target %v", del, said["seq"])
	}
	hist := h.dial("gdpr", event.RoleViewer, "late", nil).expect("welcome")["history"].([]any)
	texts := ""
	for _, e := range hist {
		texts += fmt.Sprint(e.(map[string]any)["text"], ";")
	}
	if strings.Contains(texts, "my secret") || !strings.Contains(texts, "still here") {
		t.Fatalf("welcome history after the erase: %s", texts)
	}
	r := h.dial("gdpr", event.RoleViewer, "w", url.Values{"since": {strconv.Itoa(int(num(said["seq"])) - 1)}})
	r.expect("welcome")
	if e := r.expect("deleted"); num(e["seq"]) != num(said["seq"]) || e["text"] != nil {
		t.Fatalf("replayed at the erased seq: %v", e)
	}
}

// TestChatEraseViewerUnflushed: a danmaku the room has taken but not yet sent out when
// its author is erased never reaches anyone: the room's outgoing batch gets the
// tombstone too, and nobody is told to delete what they never saw.
func TestChatEraseViewerUnflushed(t *testing.T) {
	cfg := testChatConfig()
	cfg.FlushInterval = time.Second
	h := newHarness(t, cfg, nil)
	defer h.close()
	v := h.join("p", event.RoleViewer, "v")
	w := h.join("p", event.RoleViewer, "w")
	h.tapEvents()
	v.send(map[string]any{"type": "danmaku", "text": "my secret"})
	eventually(t, "the room to take the danmaku", func() bool {
		return slices.ContainsFunc(h.tapEvents(), func(e event.Event) bool { return e.Type == event.Danmaku })
	})
	if err := h.hub.EraseViewer(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	w.send(map[string]any{"type": "danmaku", "text": "after"})
	for {
		e := nextRoomEvent(t, w)
		if e["text"] == "my secret" {
			t.Fatalf("the erased text was sent: %v", e)
		}
		if e["text"] == "after" {
			break
		}
	}
}

// TestChatEraseModeratorAndNamed: erasing a host's id keeps the meaning of what it
// did (a deleted danmaku stays deleted on resume) without its name, and erasing a
// viewer blanks it from the notices that named it; the erasure's own `deleted`
// events do not crowd other viewers' messages out of a new welcome.
func TestChatEraseModeratorAndNamed(t *testing.T) {
	cfg := testChatConfig()
	cfg.WelcomeHistory = 6
	h := newHarness(t, cfg, nil)
	defer h.close()
	host := h.join("m", event.RoleHost, "hst")
	v := h.join("m", event.RoleViewer, "v")
	v.send(map[string]any{"type": "danmaku", "text": "abusive"})
	d := host.expect("danmaku")
	host.send(map[string]any{"type": "delete", "seq": d["seq"]})
	host.expect("deleted")
	host.send(map[string]any{"type": "mute", "user": "v", "for": 60})
	host.expect("notice")
	w := h.join("m", event.RoleViewer, "w")
	for i := range 3 {
		w.send(map[string]any{"type": "danmaku", "text": fmt.Sprint("w", i)})
		host.expect("danmaku")
	}
	for _, id := range []string{"hst", "v"} {
		if err := h.hub.EraseViewer(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	r := h.dial("m", event.RoleViewer, "r", url.Values{"since": {strconv.Itoa(int(num(d["seq"])) - 1)}})
	r.expect("welcome")
	if e := nextRoomEvent(t, r); e["type"] != "deleted" || e["text"] != nil { // the danmaku's seq: a tombstone
		t.Fatalf("replayed at the danmaku's seq: %v", e)
	}
	if e := nextRoomEvent(t, r); e["type"] != "deleted" || num(e["target"]) != num(d["seq"]) || e["from"] != nil {
		t.Fatalf("the host's deletion, replayed: %v", e)
	}
	if e := nextRoomEvent(t, r); e["type"] != "notice" || e["user"] != nil || e["from"] != nil {
		t.Fatalf("the mute notice, replayed: %v", e)
	}
	var texts []string
	for _, e := range h.dial("m", event.RoleViewer, "late", nil).expect("welcome")["history"].([]any) {
		m := e.(map[string]any)
		if m["type"] == "danmaku" {
			texts = append(texts, m["text"].(string))
		}
	}
	if fmt.Sprint(texts) != "[w0 w1 w2]" {
		t.Fatalf("danmaku in a new welcome after the erasures: %v", texts)
	}
}

// nextRoomEvent returns c's next event other than presence, likes and pong.
func nextRoomEvent(t *testing.T, c *client) map[string]any {
	t.Helper()
	for {
		e, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		switch e["type"] {
		case "presence", "likes", "pong":
			continue
		}
		return e
	}
}

// TestChatLongestUserID: a user with the longest id a token takes can be muted,
// written to, have its conversation read and be banned like any other.
func TestChatLongestUserID(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	long := strings.Repeat("u", token.MaxUserLen)
	agent := h.join("long", event.RoleAgent, "ag")
	v := h.join("long", event.RoleViewer, long)

	agent.send(map[string]any{"type": "mute", "user": long, "for": "1m"})
	if n := agent.expect("notice"); n["action"] != "mute" || n["user"] != long {
		t.Fatalf("mute notice = %v", n)
	}
	agent.send(map[string]any{"type": "dm", "to": long, "text": "hello"})
	v.expect("dm")
	agent.expect("dm")
	eventually(t, "the conversation over HTTP", func() bool {
		var body struct{ Messages []chat.DM }
		getJSON(t, h, "/api/rooms/long/dm/"+long, h.token(event.RoleAgent, "ag", "long"), http.StatusOK, &body)
		return len(body.Messages) == 1
	})
	agent.send(map[string]any{"type": "ban", "user": long})
	if code := v.expectClose(); code != websocket.ClosePolicyViolation {
		t.Fatalf("banned viewer closed with %d, want 1008", code)
	}
}
