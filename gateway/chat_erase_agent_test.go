package gateway_test

import (
	"context"
	"testing"

	"github.com/liveroom/liveroom/event"
)

// TestChatEraseForgetsWhoWroteToTheViewer: which agent last wrote to a viewer is part
// of its private conversation; an erasure forgets the conversation, so a DM the
// viewer writes afterwards without `to` goes to the room's agents, as a new viewer's
// does, not to the agent of the erased conversation.
func TestChatEraseForgetsWhoWroteToTheViewer(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	defer h.close()
	a1 := h.join("lw", event.RoleAgent, "a1")
	h.join("lw", event.RoleAgent, "a2")
	v := h.join("lw", event.RoleViewer, "v")
	a1.send(map[string]any{"type": "dm", "to": "v", "text": "my secret offer"})
	v.expect("dm")
	a1.expect("dm") // its own copy
	if err := h.hub.EraseViewer(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	v.send(map[string]any{"type": "dm", "text": "hello?"})
	if got := a1.expect("dm"); got["to"] != "" {
		t.Errorf("after the erasure the viewer's DM went to %v, the agent of the erased conversation, not to the room's agents", got["to"])
	}
}
