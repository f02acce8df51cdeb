package app

import (
	"testing"

	"github.com/liveroom/liveroom/event"
)

// goLive (temporary until media is merged) announces a broadcast as media would.
func goLive(t *testing.T, a *App, base, room, hostTok string) func() {
	a.pub.Publish(event.Event{ID: "ls-" + room, Type: event.LiveStart, Room: room, Live: "L-" + room})
	a.liveHook(room, true)
	return func() {}
}
