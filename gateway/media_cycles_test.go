package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media/peer"
)

// testPeer is a pion peer connection on loopback, closed when the test ends.
func testPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	api, err := peer.NewAPI(true, true)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.GracefulClose() })
	return pc
}

// viewerOffer is a real pion receive-only offer (audio + video).
func viewerOffer(t *testing.T) string {
	t.Helper()
	pc := testPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMediaJoinLeaveCycles runs 1,000 WHEP join/leave cycles (offer, answer, DELETE)
// plus fully connected ones, and checks nothing is left: no session, no goroutine,
// no retained memory beyond noise.
func TestMediaJoinLeaveCycles(t *testing.T) {
	r, ctx, pub := liveRig(t, 100*time.Second)
	offer := viewerOffer(t)
	tok := r.token(event.RoleViewer, "shop1", "cycler")
	cycle := func() {
		resp, body := r.do("POST", "/whep/shop1", tok, "application/sdp", offer)
		if resp.StatusCode != 201 {
			t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
		}
		if resp, _ = r.do("DELETE", resp.Header.Get("Location"), tok, "", ""); resp.StatusCode != 200 {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
	}
	for range 50 { // warm up pools and caches
		cycle()
	}
	goroutines, heap := runtime.NumGoroutine(), heapInUse()
	for range 1000 {
		cycle()
	}
	// Connected viewers too: media flows, then they leave.
	for i := range 10 {
		v, err := r.client(event.RoleViewer, "shop1", fmt.Sprint("c", i)).Watch(ctx, r.srv.URL+"/whep/shop1")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "packets", func() bool { return v.Stats().Video.Packets > 5 })
		if err := v.Close(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "viewers gone", func() bool { return r.media.Stats("shop1").Viewers.Count == 0 })
	waitFor(t, 10*time.Second, "goroutines back", func() bool { return runtime.NumGoroutine() <= goroutines+5 })
	after := heapInUse()
	t.Logf("goroutines %d → %d, heap in use %d KiB → %d KiB", goroutines, runtime.NumGoroutine(), heap>>10, after>>10)
	if after > heap+8<<20 {
		t.Errorf("heap grew by %d KiB over 1,000 cycles", (after-heap)>>10)
	}
	_ = pub.Close(ctx, true)
}
