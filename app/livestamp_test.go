package app

import (
	"context"
	"testing"

	"github.com/liveroom/liveroom/event"
)

func TestLiveStamp(t *testing.T) {
	q := event.NewQueue(16)
	l := newLiveStamp(q)
	l.Publish(event.Event{Type: event.Join, Room: "r1", Viewer: "v"})
	l.Publish(event.Event{Type: event.LiveStart, Room: "r1", Live: "L1"})
	l.Publish(event.Event{Type: event.Danmaku, Room: "r1", Viewer: "v"})
	l.Publish(event.Event{Type: event.Danmaku, Room: "r2", Viewer: "v"})
	l.Publish(event.Event{Type: event.Join, Room: "r1", Viewer: "v", Live: "chat-made"}) // media's id wins
	l.Publish(event.Event{Type: event.LiveEnd, Room: "r1", Live: "L1"})
	l.Publish(event.Event{Type: event.Leave, Room: "r1", Viewer: "v"})
	// Chat has not heard of the end yet: its own id is dropped; a player's stop keeps
	// media's.
	l.Publish(event.Event{Type: event.Danmaku, Room: "r1", Viewer: "v", Live: "chat-made"})
	l.Publish(event.Event{Type: event.WatchStop, Room: "r1", Viewer: "v", Live: "L1"})
	want := []string{"", "L1", "L1", "", "L1", "L1", "", "", "L1"}
	for i, w := range want {
		ev, _ := q.Next(context.Background())
		if ev.Live != w {
			t.Fatalf("event %d (%s %s): live %q, want %q", i, ev.Type, ev.Room, ev.Live, w)
		}
	}
}
