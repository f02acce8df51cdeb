package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/media"
)

// minimalOffer is a syntactically valid offer with one sendonly video section.
const minimalOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"

func (r *mediaRig) do(method, path, tok, ctype, body string) (*http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMediaAuthMatrix(t *testing.T) {
	checkMediaLeaks(t)
	r := newMediaRig(t, func(c *media.Config) {
		c.ICEServers = []string{"stun:stun.example.com:3478", "turn:turn.example.com:3478?transport=udp"}
		c.TURNSecret = "coturn-secret"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := r.token(event.RoleHost, "shop1", "h1")
	otherHost := r.token(event.RoleHost, "shop2", "h2")
	viewer := r.token(event.RoleViewer, "shop1", "v1")
	sdpType := "application/sdp"

	// Before anyone publishes: WHEP is 404 with a JSON body.
	cases := []struct {
		name, method, path, tok, ctype, body string
		want                                 int
	}{
		{"whip no token", "POST", "/whip/shop1", "", sdpType, minimalOffer, 401},
		{"whip bad token", "POST", "/whip/shop1", "garbage", sdpType, minimalOffer, 401},
		{"whip viewer token", "POST", "/whip/shop1", viewer, sdpType, minimalOffer, 403},
		{"whip other room", "POST", "/whip/shop1", otherHost, sdpType, minimalOffer, 403},
		{"whip wrong type", "POST", "/whip/shop1", host, "text/plain", minimalOffer, 415},
		{"whip no type", "POST", "/whip/shop1", host, "", minimalOffer, 415},
		{"whip garbage sdp", "POST", "/whip/shop1", host, sdpType, "hello", 400},
		{"whip empty sdp", "POST", "/whip/shop1", host, sdpType, "", 400},
		{"whip too large", "POST", "/whip/shop1", host, sdpType, strings.Repeat("a", 2<<20), 413},
		{"whip bad room", "POST", "/whip/bad%20room", host, sdpType, minimalOffer, 400},
		{"whep not live", "POST", "/whep/shop1", viewer, sdpType, minimalOffer, 404},
		{"whep no token", "POST", "/whep/shop1", "", sdpType, minimalOffer, 401},
		{"delete unknown session", "DELETE", "/whip/shop1/nope", host, "", "", 404},
		{"stats as viewer", "GET", "/api/rooms/shop1/stats", viewer, "", "", 403},
		{"stats as host", "GET", "/api/rooms/shop1/stats", host, "", "", 200},
	}
	for _, c := range cases {
		resp, body := r.do(c.method, c.path, c.tok, c.ctype, c.body)
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, resp.StatusCode, c.want, body)
			continue
		}
		if c.want >= 400 {
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
				t.Errorf("%s: error body is not the contract's JSON: %q", c.name, body)
			}
		}
	}

	// OPTIONS: STUN for anyone, TURN with coturn credentials only with a token.
	resp, _ := r.do("OPTIONS", "/whip/shop1", "", "", "")
	if links := resp.Header.Values("Link"); resp.StatusCode != 204 || len(links) != 1 || !strings.Contains(links[0], "stun:stun.example.com") {
		t.Errorf("anonymous OPTIONS: %d %q", resp.StatusCode, links)
	}
	resp, _ = r.do("OPTIONS", "/whip/shop1", host, "", "")
	links := strings.Join(resp.Header.Values("Link"), "\n")
	if !strings.Contains(links, `<turn:turn.example.com:3478?transport=udp>; rel="ice-server"; username="`) || !strings.Contains(links, `:h1"; credential="`) {
		t.Errorf("authorized OPTIONS links: %s", links)
	}

	// A live room: a second publisher is refused with 409.
	pub := r.publish(ctx, "shop1")
	resp, body := r.do("POST", "/whip/shop1", host, sdpType, minimalOffer)
	if resp.StatusCode != 409 {
		t.Errorf("second publisher: %d %s", resp.StatusCode, body)
	}
	// Another user's token cannot end the publisher's session.
	other := r.token(event.RoleHost, "shop1", "someone-else")
	resp, _ = r.do("DELETE", strings.TrimPrefix(pub.Session, r.srv.URL), other, "", "")
	if resp.StatusCode != 403 {
		t.Errorf("DELETE by another user: %d", resp.StatusCode)
	}
	host = r.token(event.RoleHost, "shop1", "host-shop1") // the publisher's own token
	// PATCH: wrong type 415, malformed fragment 400, a valid candidate 204.
	path := strings.TrimPrefix(pub.Session, r.srv.URL)
	frag := "application/trickle-ice-sdpfrag"
	if resp, _ = r.do("PATCH", path, host, "application/sdp", "a=end-of-candidates"); resp.StatusCode != 415 {
		t.Errorf("PATCH wrong type: %d", resp.StatusCode)
	}
	if resp, _ = r.do("PATCH", path, host, frag, "a=candidate:garbage"); resp.StatusCode != 400 {
		t.Errorf("PATCH bad candidate: %d", resp.StatusCode)
	}
	ok := "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
	if resp, body = r.do("PATCH", path, host, frag, ok); resp.StatusCode != 204 {
		t.Errorf("PATCH candidate: %d %s", resp.StatusCode, body)
	}
	// Stats for the host while live.
	resp, body = r.do("GET", "/api/rooms/shop1/stats", host, "", "")
	var st media.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != 200 || !st.Live || st.Publisher == nil {
		t.Errorf("stats: %d %s", resp.StatusCode, body)
	}
	// WHEP with a valid but unusable offer (VP8 only, the stream is H.264): 400.
	recv := strings.Replace(minimalOffer, "a=sendonly", "a=recvonly", 1)
	if resp, body = r.do("POST", "/whep/shop1", viewer, sdpType, recv); resp.StatusCode != 400 {
		t.Errorf("WHEP without a common codec: %d %s", resp.StatusCode, body)
	}
	if err := pub.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
}

func TestMediaICERestart(t *testing.T) {
	r, ctx, pub := liveRig(t, 30*time.Second)
	host := r.token(event.RoleHost, "shop1", "host-shop1")
	path := strings.TrimPrefix(pub.Session, r.srv.URL)
	resp, body := r.do("PATCH", path, host, "application/trickle-ice-sdpfrag",
		"a=ice-ufrag:newufrag1\r\na=ice-pwd:newpasswordnewpasswordxx\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n")
	if resp.StatusCode != 200 || !strings.Contains(body, "a=ice-ufrag:") || !strings.Contains(body, "a=candidate:") {
		t.Fatalf("ICE restart: %d %q", resp.StatusCode, body)
	}
	_ = pub.Close(ctx, true)
}

// RFC 9725 §4.3: a PATCH whose If-Match is not the session's entity tag is refused
// with 412; an ICE restart (If-Match: "*") renews the tag, so a client that missed it
// cannot trickle candidates for the ICE session that is gone.
func TestMediaPatchIfMatch(t *testing.T) {
	checkMediaLeaks(t)
	r := newMediaRig(t, nil)
	pc := testPeer(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	host := r.token(event.RoleHost, "shop1", "host-shop1")
	resp, body := r.do("POST", "/whip/shop1", host, "application/sdp", gatheredOffer(t, pc))
	if resp.StatusCode != 201 || resp.Header.Get("ETag") == "" {
		t.Fatalf("WHIP: %d, ETag %q, %s", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
	path, first := resp.Header.Get("Location"), resp.Header.Get("ETag")
	patch := func(ifMatch, frag string, want int) string {
		t.Helper()
		req, _ := http.NewRequest("PATCH", r.srv.URL+path, strings.NewReader(frag))
		req.Header.Set("Authorization", "Bearer "+host)
		req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("PATCH If-Match %s: %d, want %d", ifMatch, resp.StatusCode, want)
		}
		return resp.Header.Get("ETag")
	}
	const trickle = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
	const restart = "a=ice-ufrag:newufrag1\r\na=ice-pwd:newpasswordnewpasswordxx\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"

	patch(`"not-the-tag"`, trickle, 412)
	if got := patch(first, trickle, 204); got != first {
		t.Fatalf("trickle changed the ETag %s to %s", first, got)
	}
	second := patch("*", restart, 200)
	if second == "" || second == first {
		t.Fatalf("ICE restart: ETag %q after %q, want a new one", second, first)
	}
	patch(first, trickle, 412)
	patch(`"x", `+second, trickle, 204)
	patch("", trickle, 204) // no If-Match: unconditional

	// A session takes 200 trickled candidates in all (three so far): each is a STUN
	// target of the client's choosing.
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("a=mid:0\r\n")
		for i := range n {
			fmt.Fprintf(&b, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", i+2, 41000+i)
		}
		return b.String()
	}
	patch("", many(197), 204)
	patch("", many(1), 400)
}

// A viewer's ICE restart deselects its pair in pion without a callback: the relay's
// direct path must stop sending to the old address too, as pion's path does, until a
// pair is selected again (this test's client never answers the new credentials).
func TestMediaViewerICERestartStopsTheOldRoute(t *testing.T) {
	r, ctx, _ := liveRig(t, 30*time.Second)
	tok := r.token(event.RoleViewer, "shop1", "v1")
	v, err := r.client(event.RoleViewer, "shop1", "v1").Watch(ctx, r.srv.URL+"/whep/shop1")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx, true)
	waitFor(t, 15*time.Second, "packets", func() bool { return v.Stats().Video.Packets > 100 })
	resp, body := r.do("PATCH", strings.TrimPrefix(v.Session, r.srv.URL), tok, "application/trickle-ice-sdpfrag",
		"a=ice-ufrag:newufrag1\r\na=ice-pwd:newpasswordnewpasswordxx\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("restart: %d %s", resp.StatusCode, body)
	}
	time.Sleep(300 * time.Millisecond) // packets already on their way
	p0 := v.Stats().Video.Packets
	time.Sleep(2 * time.Second)
	if p := v.Stats().Video.Packets - p0; p != 0 {
		t.Fatalf("%d video packets went to the old address after the restart", p)
	}
}

// TestWHIPPublisherThatNeverStartsFreesTheRoom: a WHIP publisher whose peer connects
// but never sends media holds the room (409 for another publisher) only until
// connect-timeout; then its session is ended and the room takes a new publisher.
func TestWHIPPublisherThatNeverStartsFreesTheRoom(t *testing.T) {
	r := newMediaRig(t, func(c *media.Config) { c.ConnectTimeout = 1500 * time.Millisecond })
	pc := testPeer(t)
	silent, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "silent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(silent); err != nil {
		t.Fatal(err)
	}
	session := r.connectWHIP(pc, "shop9")
	host := r.token(event.RoleHost, "shop9", "host-shop9")
	if resp, body := r.do("POST", "/whip/shop9", host, "application/sdp", minimalOffer); resp.StatusCode != 409 {
		t.Fatalf("second WHIP while the first holds the room: %d %s", resp.StatusCode, body)
	}
	// Another user's DELETE answers 403 while the session lasts (and changes nothing),
	// 404 once it has ended.
	other := r.token(event.RoleHost, "shop9", "someone-else")
	if resp, _ := r.do("DELETE", session, other, "", ""); resp.StatusCode != 403 {
		t.Fatalf("another user's DELETE on the connected session: %d", resp.StatusCode)
	}
	waitFor(t, 10*time.Second, "the silent publisher to be ended", func() bool {
		resp, _ := r.do("DELETE", session, other, "", "")
		return resp.StatusCode == 404
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := r.publish(ctx, "shop9") // fails the test unless the room goes live
	if err := pub.Close(ctx, true); err != nil {
		t.Error(err)
	}
}

// A WHIP offer whose only codec the relay cannot carry (VP9) is refused with 400
// no_common_codec, as WHEP does, and leaves the room free: accepted, it would have held
// the room (409 for the real publisher) until connect-timeout.
func TestWHIPOfferWithNoCommonCodecLeavesTheRoomFree(t *testing.T) {
	checkMediaLeaks(t)
	r := newMediaRig(t, func(c *media.Config) { c.ConnectTimeout = 20 * time.Second })
	pc := testPeer(t)
	vp9 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}
	track, err := webrtc.NewTrackLocalStaticSample(vp9, "video", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	if err := pc.GetTransceivers()[0].SetCodecPreferences([]webrtc.RTPCodecParameters{{RTPCodecCapability: vp9, PayloadType: 98}}); err != nil {
		t.Fatal(err)
	}
	host := r.token(event.RoleHost, "shop1", "host-shop1")
	resp, body := r.do("POST", "/whip/shop1", host, "application/sdp", gatheredOffer(t, pc))
	if resp.StatusCode != 400 || !strings.Contains(body, `"no_common_codec"`) {
		t.Fatalf("VP9-only WHIP offer: %d %s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.publish(ctx, "shop1").Close(ctx, true); err != nil { // r.publish fails the test unless the room goes live
		t.Error(err)
	}
}
