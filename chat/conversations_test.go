package chat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// TestConversationBounds: the list holds the viewers who wrote in the last 24 h, the
// 100 most recent, newest first; an agent's message moves a conversation up but starts
// none.
func TestConversationBounds(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	now := mustTime("2030-01-01T00:00:00Z")
	// Read from the store: one viewer inside the window, one outside it.
	for _, d := range []DM{
		{ID: "1", Viewer: "old", From: event.User{ID: "old", Role: event.RoleViewer}, Text: "a day ago", At: now.Add(-ConversationWindow - time.Minute)},
		{ID: "2", Viewer: "recent", From: event.User{ID: "recent", Role: event.RoleViewer}, Text: "an hour ago", At: now.Add(-time.Hour)},
	} {
		if err := store.AppendDMs(ctx, []RoomDM{{"r", d}}, DMKeep); err != nil {
			t.Fatal(err)
		}
	}
	x := newConversationIndex()
	got, err := x.list(ctx, store, "r", now)
	if err != nil || len(got) != 1 || got[0].Viewer != "recent" {
		t.Fatalf("read from the store: %+v, %v", got, err)
	}
	// Then kept by the writer: 105 more viewers write (the index keeps the 100 most
	// recent), and an agent writes to one of them and to someone who never wrote.
	for i := range 105 {
		v := fmt.Sprintf("v%03d", i)
		x.note("r", DM{Viewer: v, From: event.User{ID: v, Name: "N" + v, Role: event.RoleViewer}, Text: "hi", At: now.Add(time.Duration(i) * time.Second)})
	}
	agent := event.User{ID: "ag", Role: event.RoleAgent}
	x.note("r", DM{Viewer: "v050", From: agent, Text: "answer", At: now.Add(time.Hour)})
	x.note("r", DM{Viewer: "nobody", From: agent, Text: "hello?", At: now.Add(time.Hour)})
	got, err = x.list(ctx, store, "r", now.Add(time.Hour))
	if err != nil || len(got) != ConversationLimit {
		t.Fatalf("%d conversations, want %d: %v", len(got), ConversationLimit, err)
	}
	if c := got[0]; c.Viewer != "v050" || c.Name != "Nv050" || c.Text != "answer" || c.From != agent || got[1].Viewer != "v104" || got[99].Viewer != "v005" {
		t.Fatalf("order: %+v %s … %s", c, got[1].Viewer, got[99].Viewer)
	}
	// A day after v050 last wrote, its conversation leaves, although an agent wrote later.
	got, _ = x.list(ctx, store, "r", now.Add(ConversationWindow+50*time.Second+time.Millisecond))
	if len(got) != 54 || got[0].Viewer != "v104" || got[53].Viewer != "v051" {
		t.Fatalf("a day later: %d conversations, %s … %s", len(got), got[0].Viewer, got[len(got)-1].Viewer)
	}
}
