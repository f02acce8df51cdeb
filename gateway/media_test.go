package gateway

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media/peer"
)

// mediaLeakOpts ignores the HTTP test client's idle keep-alive readers.
var mediaLeakOpts = []goleak.Option{
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
}

// checkMediaLeaks verifies, after every cleanup of the test has run, that no
// goroutine is left behind.
func checkMediaLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, mediaLeakOpts...) })
}

func TestMediaRelayPionPeers(t *testing.T) {
	r, ctx, pub := liveRig(t, 30*time.Second)

	const n = 4
	var viewers []*peer.Viewer
	for i := range n {
		v, err := r.client(event.RoleViewer, "shop1", "viewer"+string(rune('a'+i))).Watch(ctx, r.srv.URL+"/whep/shop1")
		if err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
		viewers = append(viewers, v)
	}
	for i, v := range viewers {
		defer func() {
			if t.Failed() {
				t.Logf("viewer %d: %+v; room: %+v %+v", i, v.Stats(), r.media.Stats("shop1").Publisher, r.media.Stats("shop1").Viewers)
			}
		}()
		waitFor(t, 15*time.Second, "keyframe and steady packets", func() bool {
			s := v.Stats()
			return s.KeyframeSeen && s.Video.Packets > 100 && s.Audio.Packets > 50
		})
		s := v.Stats()
		if s.Video.Lost() != 0 || s.Audio.Lost() != 0 {
			t.Errorf("viewer %d lost packets over loopback: video %+v audio %+v", i, s.Video, s.Audio)
		}
	}
	waitFor(t, 10*time.Second, "RTT from receiver reports", func() bool { return r.media.Stats("shop1").Viewers.RTTMs > 0 })
	st := r.media.Stats("shop1")
	if st.Viewers.Count != n || st.Publisher == nil || len(st.Publisher.Tracks) != 2 {
		t.Fatalf("stats: %+v", st)
	}
	var sawSize bool
	for _, tr := range st.Publisher.Tracks {
		if tr.Kind == "video" && tr.Width == 320 && tr.Height == 240 {
			sawSize = true
		}
	}
	if !sawSize {
		t.Errorf("video size not read from SPS: %+v", st.Publisher.Tracks)
	}
	// Every packet the viewers decrypted left on the relay's direct path, with runs of
	// a frame's packets sharing one system call.
	var received uint64
	for _, v := range viewers {
		s := v.Stats()
		received += s.Video.Packets + s.Audio.Packets
	}
	writes := metricValue(t, r.srv.URL, "liveroom_media_udp_writes_total")
	datagrams := metricValue(t, r.srv.URL, "liveroom_media_udp_datagrams_total")
	if datagrams < float64(received) || writes >= datagrams {
		t.Errorf("direct path: %v writes carried %v datagrams; the viewers received %d packets", writes, datagrams, received)
	}
	for _, v := range viewers {
		if err := v.Close(ctx, true); err != nil {
			t.Errorf("viewer DELETE: %v", err)
		}
	}
	if err := pub.Close(ctx, true); err != nil {
		t.Fatalf("publisher DELETE: %v", err)
	}
	waitFor(t, 5*time.Second, "room ended", func() bool { return !r.media.Stats("shop1").Live })

	counts := map[event.Type]int{}
	var live string
	for _, e := range r.events() {
		counts[e.Type]++
		if e.Type == event.LiveStart {
			live = e.Live
		}
		if e.Type == event.WatchStop && (e.Seconds <= 0 || e.Live != live || e.Room != "shop1" || e.Viewer == "") {
			t.Errorf("watch stop event incomplete: %+v", e)
		}
	}
	if counts[event.LiveStart] != 1 || counts[event.LiveEnd] != 1 || counts[event.WatchStart] != n || counts[event.WatchStop] != n {
		t.Errorf("tap events: %v", counts)
	}
	if got := r.live.list(); len(got) != 2 || got[0] != "shop1:on" || got[1] != "shop1:off" {
		t.Errorf("live notifier calls: %v", got)
	}
}

// A light viewer (the load generator's) decrypts until its first keyframe, then counts
// the relay's packets from their RTP headers on its own socket: every one arrives.
func TestMediaLightViewerCounts(t *testing.T) {
	r, ctx, pub := liveRig(t, 30*time.Second)
	defer pub.Close(ctx, true)
	c := r.client(event.RoleViewer, "shop1", "light")
	c.Light = true
	v, err := c.Watch(ctx, r.srv.URL+"/whep/shop1")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx, true)
	var at peer.ViewerStats
	waitFor(t, 15*time.Second, "light counting", func() bool { at = v.Stats(); return at.Light })
	waitFor(t, 15*time.Second, "packets counted from headers", func() bool {
		s := v.Stats()
		return s.Video.Packets > at.Video.Packets+100 && s.Audio.Packets > at.Audio.Packets+50
	})
	if s := v.Stats(); s.Video.Lost() != 0 || s.Audio.Lost() != 0 || !s.KeyframeSeen {
		t.Errorf("light viewer: %+v", s)
	}
}
