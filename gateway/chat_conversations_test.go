package gateway_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
)

type conversationsBody struct {
	Room          string              `json:"room"`
	Conversations []chat.Conversation `json:"conversations"`
}

// viewersOf is the viewers of the list, in its order.
func viewersOf(convs []chat.Conversation) string {
	ids := make([]string, len(convs))
	for i, c := range convs {
		ids[i] = c.Viewer
	}
	return strings.Join(ids, ",")
}

// TestChatDMConversations: GET /api/rooms/{room}/dm lists, newest first, the viewers
// who wrote to the room's agents with each conversation's last message, for the room's
// agents and admins only; an erased viewer leaves it; after a restart the list is read
// from the store.
func TestChatDMConversations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	store, err := chat.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, testChatConfig(), store)
	agentTok := h.token(event.RoleAgent, "ag", "cl")
	list := func(h *harness) conversationsBody {
		var body conversationsBody
		getJSON(t, h, "/api/rooms/cl/dm", agentTok, http.StatusOK, &body)
		return body
	}
	if got := list(h); got.Room != "cl" || got.Conversations == nil || len(got.Conversations) != 0 {
		t.Fatalf("before any DM: %+v", got)
	}

	agent := h.join("cl", event.RoleAgent, "ag")
	agent2 := h.join("cl", event.RoleAgent, "ag2")
	ann := h.join("cl", event.RoleViewer, "va")
	bob := h.join("cl", event.RoleViewer, "vb")
	cat := h.join("cl", event.RoleViewer, "vc")
	long := strings.Repeat("é", 150)
	ann.send(map[string]any{"type": "dm", "text": "hello"})
	agent.expect("dm")
	bob.send(map[string]any{"type": "dm", "text": long})
	agent.expect("dm")
	agent.send(map[string]any{"type": "dm", "to": "va", "text": "how can I help?"})
	ann.expect("dm")
	// Neither a conversation the viewer never wrote in nor one between agents is listed.
	agent.send(map[string]any{"type": "dm", "to": "vc", "text": "a coupon for you"})
	cat.expect("dm")
	agent.send(map[string]any{"type": "dm", "to": "ag2", "text": "cover me"})
	agent2.expect("dm")

	var got conversationsBody
	eventually(t, "the list of conversations", func() bool {
		got = list(h)
		return len(got.Conversations) == 2 && got.Conversations[0].Text == "how can I help?"
	})
	a, b := got.Conversations[0], got.Conversations[1]
	if a.Viewer != "va" || a.Name != "name-va" || a.From.ID != "ag" || a.At.IsZero() {
		t.Errorf("Ann's conversation = %+v", a)
	}
	if b.Viewer != "vb" || b.Name != "name-vb" || b.From.ID != "vb" || b.Text != strings.Repeat("é", 100)+"…" || !b.At.Before(a.At) {
		t.Errorf("Bob's conversation = %+v", b)
	}

	// Only the room's agents and admins read it.
	getJSON(t, h, "/api/rooms/cl/dm", h.token(event.RoleAdmin, "ad", "*"), http.StatusOK, nil)
	getJSON(t, h, "/api/rooms/cl/dm", h.token(event.RoleViewer, "va", "cl"), http.StatusForbidden, nil)
	getJSON(t, h, "/api/rooms/cl/dm", h.token(event.RoleHost, "h", "cl"), http.StatusForbidden, nil)
	getJSON(t, h, "/api/rooms/cl/dm", h.token(event.RoleAgent, "ag", "other"), http.StatusForbidden, nil)
	getJSON(t, h, "/api/rooms/cl/dm", "", http.StatusUnauthorized, nil)

	// An erased viewer is gone from the list at once; writing again brings Bob up.
	if err := h.hub.EraseViewer(context.Background(), "va"); err != nil {
		t.Fatal(err)
	}
	if got := list(h); viewersOf(got.Conversations) != "vb" {
		t.Fatalf("after erasing Ann: %+v", got.Conversations)
	}
	cat.send(map[string]any{"type": "dm", "text": "thanks!"})
	agent.expect("dm")
	eventually(t, "Cat in the list", func() bool { return viewersOf(list(h).Conversations) == "vc,vb" })

	h2 := reopen(t, h, store, path)
	after := list(h2).Conversations
	if viewersOf(after) != "vc,vb" || after[0].Name != "name-vc" || after[0].Text != "thanks!" || after[1].Text != b.Text {
		t.Fatalf("after a restart: %+v", after)
	}
	h2.close()
}
