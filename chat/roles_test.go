package chat_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
)

// A user may connect with tokens of two roles at once (an agent with a viewer tab, a
// host watching as a viewer); each connection counts and receives by its own role.

// TestViewerCountByConnectionRole: the user is one viewer while it has a viewer-role
// connection, whichever role it came with first, and none once that has gone.
func TestViewerCountByConnectionRole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubble(t, chat.DefaultConfig())
		agent := b.dial("m", event.RoleAgent, "x")
		viewer := b.dial("m", event.RoleViewer, "x")
		for _, step := range []struct {
			close *websocket.Conn
			conns float64
			want  float64
		}{
			{nil, 2, 1},
			{agent, 1, 1},
			{viewer, 0, 0},
		} {
			if step.close != nil {
				step.close.Close()
			}
			b.expectConns(step.conns, "after a close")
			probe := b.dial("m", event.RoleHost, "probe") // hosts are not counted
			room := nextOf(t, probe, "welcome")["room"].(map[string]any)
			if room["viewers"] != step.want {
				t.Fatalf("with %v connections of x: %v viewers, want %v", step.conns, room["viewers"], step.want)
			}
			probe.Close()
		}
		b.stop()
	})
}

// TestAgentOnlyFramesSkipViewerConnection: prompts and a viewer's DM to the agents
// reach the agent connection of a user, not its viewer connection.
func TestAgentOnlyFramesSkipViewerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubble(t, chat.DefaultConfig())
		agent := b.dial("a", event.RoleAgent, "x")
		tab := b.dial("a", event.RoleViewer, "x")
		v := b.dial("a", event.RoleViewer, "v")
		synctest.Wait() // all three joined
		if err := b.hub.Prompt(context.Background(), "a", chat.Prompt{Viewer: chat.PromptViewer{ID: "v"}, PromptID: "p1"}); err != nil {
			t.Fatal(err)
		}
		nextOf(t, agent, "prompt")
		_ = v.WriteJSON(map[string]any{"type": "dm", "text": "a question"})
		nextOf(t, agent, "dm")
		synctest.Wait() // every frame for x is queued: a pong asked for now comes after them
		_ = tab.WriteJSON(map[string]any{"type": "ping"})
		for _, ev := range readUntil(t, tab, "pong") {
			if ev["type"] == "prompt" || ev["type"] == "dm" {
				t.Fatalf("x's viewer connection got %v", ev)
			}
		}
		agent.Close()
		tab.Close()
		v.Close()
		b.stop()
	})
}
