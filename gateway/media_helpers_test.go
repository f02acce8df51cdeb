package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media"
	"github.com/liveroom/liveroom/media/peer"
	"github.com/liveroom/liveroom/token"
)

// mediaRig is a real gateway with a real media service on loopback ports.
type mediaRig struct {
	t      *testing.T
	srv    *httptest.Server
	media  *media.Service
	signer *token.Signer
	tap    *event.Queue
	live   *liveLog
	clip   *peer.Clip
}

// liveLog records the media service's SetLive calls.
type liveLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *liveLog) SetLive(room string, live bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := room + ":off"
	if live {
		s = room + ":on"
	}
	l.calls = append(l.calls, s)
}

func (l *liveLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func newMediaRig(t *testing.T, tweak func(*media.Config)) *mediaRig {
	t.Helper()
	signer, err := token.NewSigner("test-secret-test-secret-test-secret!")
	if err != nil {
		t.Fatal(err)
	}
	mc := media.DefaultConfig()
	mc.WebRTCUDP, mc.WebRTCTCP, mc.RTSP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if tweak != nil {
		tweak(&mc)
	}
	r := &mediaRig{t: t, signer: signer, tap: event.NewQueue(1 << 14), live: &liveLog{}}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r.media, err = media.New(mc, media.Deps{Log: log, Registry: reg, Tap: r.tap, Live: r.live})
	if err != nil {
		t.Fatal(err)
	}
	core := config.DefaultCore()
	gw, err := New(core, Deps{Signer: signer, Registry: reg, Media: r.media, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(gw.Handler())
	if r.clip, err = peer.DefaultClip(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.media.Close(ctx); err != nil {
			t.Errorf("media close: %v", err)
		}
	})
	return r
}

func (r *mediaRig) token(role, room, user string) string {
	r.t.Helper()
	tok, err := r.signer.Issue(token.Spec{User: user, Role: role, Room: room, TTL: time.Hour})
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

func (r *mediaRig) client(role, room, user string) *peer.Client {
	return &peer.Client{HTTP: r.srv.Client(), Token: r.token(role, room, user)}
}

// publish starts a pion publisher on room and waits until the room is live.
// liveRig is a media rig with room shop1 live, for a test of at most d; the test's
// end checks for leaked goroutines.
func liveRig(t *testing.T, d time.Duration) (*mediaRig, context.Context, *peer.Publisher) {
	t.Helper()
	checkMediaLeaks(t)
	r := newMediaRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return r, ctx, r.publish(ctx, "shop1")
}

func (r *mediaRig) publish(ctx context.Context, room string) *peer.Publisher {
	r.t.Helper()
	p, err := r.client(event.RoleHost, room, "host-"+room).Publish(ctx, r.srv.URL+"/whip/"+room, r.clip)
	if err != nil {
		r.t.Fatalf("publish: %v", err)
	}
	r.t.Cleanup(func() { _ = p.Close(context.Background(), false) })
	waitFor(r.t, 10*time.Second, "room live", func() bool { return r.media.Stats(room).Live })
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// events drains the tap.
func (r *mediaRig) events() []event.Event {
	var out []event.Event
	for {
		e, ok := r.tap.TryNext()
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

// metricValue reads one unlabelled metric from the node's /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// gatheredOffer makes pc's offer with all its candidates in it.
func gatheredOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// connectWHIP publishes pc's tracks on room with the room host's token, applies the
// answer and waits until pc connects; it returns the session's path.
func (r *mediaRig) connectWHIP(pc *webrtc.PeerConnection, room string) string {
	r.t.Helper()
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	host := r.token(event.RoleHost, room, "host-"+room)
	resp, body := r.do("POST", "/whip/"+room, host, "application/sdp", gatheredOffer(r.t, pc))
	if resp.StatusCode != 201 {
		r.t.Fatalf("WHIP: %d %s", resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		r.t.Fatal("the publisher did not connect")
	}
	return strings.TrimPrefix(resp.Header.Get("Location"), r.srv.URL)
}

// hasAudioAndVideo reports whether the room is live with both an audio and a video track.
func (r *mediaRig) hasAudioAndVideo(room string) bool {
	st := r.media.Stats(room)
	if st.Publisher == nil {
		return false
	}
	kinds := map[string]bool{}
	for _, tr := range st.Publisher.Tracks {
		kinds[tr.Kind] = true
	}
	return kinds["audio"] && kinds["video"]
}

// requireFFmpeg skips a test that encodes a clip when ffmpeg is missing, and fails it
// in CI (LIVEROOM_REQUIRE_ALL=1), which must have it.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("LIVEROOM_REQUIRE_ALL") == "1" {
			t.Fatal("ffmpeg is required (LIVEROOM_REQUIRE_ALL=1) but not installed: apt-get install ffmpeg")
		}
		t.Skip("ffmpeg is not installed")
	}
}
