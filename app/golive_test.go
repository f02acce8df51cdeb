package app

import (
	"context"
	"testing"

	"github.com/liveroom/liveroom/media/peer"
)

// goLive publishes the test clip to room over WHIP with a real pion peer, as OBS or
// the studio would, and waits until the room is live; the returned func ends it.
func goLive(t testing.TB, a *App, base, room, hostTok string) func() {
	t.Helper()
	clip, err := peer.DefaultClip()
	if err != nil {
		t.Fatal(err)
	}
	c := &peer.Client{Token: hostTok}
	pub, err := c.Publish(context.Background(), base+"/whip/"+room, clip)
	if err != nil {
		t.Fatalf("WHIP publish: %v", err)
	}
	waitUntil(t, "the room to go live", func() bool { return a.pub.(*liveStamp).current(room) != "" })
	return func() { pub.Close(context.Background(), true) }
}

// watch opens a real WHEP viewer of room with tok; the returned func leaves.
func watch(t *testing.T, base, room, tok string) func() {
	t.Helper()
	c := &peer.Client{Token: tok}
	v, err := c.Watch(context.Background(), base+"/whep/"+room)
	if err != nil {
		t.Fatalf("WHEP watch: %v", err)
	}
	return func() { v.Close(context.Background(), true) }
}
