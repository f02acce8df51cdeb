package media

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/setting"
)

func TestH264SPSSizeFromClip(t *testing.T) {
	b, err := os.ReadFile("peer/testdata/clip.h264")
	if err != nil {
		t.Fatal(err)
	}
	for _, nal := range bytes.Split(b, []byte{0, 0, 0, 1}) {
		if len(nal) > 0 && nal[0]&0x1f == 7 {
			w, h, ok := videoSize(codecH264, nal)
			if !ok || w != 320 || h != 240 {
				t.Fatalf("SPS size %dx%d ok=%v", w, h, ok)
			}
			if !isKeyframe(codecH264, nal) {
				t.Fatal("SPS not seen as keyframe start")
			}
			return
		}
	}
	t.Fatal("no SPS in clip")
}

func TestKeyframeDetection(t *testing.T) {
	cases := []struct {
		name   string
		family int
		p      []byte
		want   bool
	}{
		{"h264 idr", codecH264, []byte{0x65, 0}, true},
		{"h264 p", codecH264, []byte{0x41, 0}, false},
		{"h264 stap-a sps", codecH264, []byte{0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68}, true},
		{"h264 stap-a truncated", codecH264, []byte{0x78, 0, 9}, false},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05}, false},
		{"vp8 key", codecVP8, []byte{0x10, 0x00}, true},
		{"vp8 inter", codecVP8, []byte{0x10, 0x01}, false},
		{"vp8 ext picture id", codecVP8, []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true},
		{"vp8 not start", codecVP8, []byte{0x00, 0x00}, false},
		{"empty", codecH264, nil, false},
	}
	for _, c := range cases {
		if got := isKeyframe(c.family, c.p); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
	vp8 := []byte{0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01}
	if w, h, ok := videoSize(codecVP8, vp8); !ok || w != 640 || h != 360 {
		t.Errorf("vp8 size %dx%d %v", w, h, ok)
	}
}

func TestCodecMatches(t *testing.T) {
	h := func(f string) webrtc.RTPCodecCapability {
		return webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000, SDPFmtpLine: f}
	}
	if !codecMatches(h("packetization-mode=1;profile-level-id=42e01f"), h("profile-level-id=42E034;packetization-mode=1")) {
		t.Error("level must not matter")
	}
	if codecMatches(h("packetization-mode=1;profile-level-id=42e01f"), h("packetization-mode=1;profile-level-id=640c1f")) {
		t.Error("profiles differ")
	}
	if codecMatches(h("packetization-mode=1;profile-level-id=42e01f"), h("packetization-mode=0;profile-level-id=42e01f")) {
		t.Error("packetization modes differ")
	}
	opus := webrtc.RTPCodecCapability{MimeType: "audio/opus", ClockRate: 48000}
	if !codecMatches(opus, webrtc.RTPCodecCapability{MimeType: "audio/OPUS", ClockRate: 48000, SDPFmtpLine: "x"}) {
		t.Error("opus")
	}
}

func TestTURNCredentials(t *testing.T) {
	// coturn: username "expiry:user", password base64(HMAC-SHA1(secret, username)).
	// expected: printf '1700000000:alice' | openssl dgst -sha1 -hmac north -binary | base64
	u, p := TURNCredentials("north", "alice", time.Unix(1700000000, 0))
	if u != "1700000000:alice" || p != "Cd/49soE35ICqcJF/bCTn8Z4OyE=" {
		t.Fatalf("got %s %s", u, p)
	}
}

func TestParseICEServerAndFrag(t *testing.T) {
	for _, ok := range []string{"stun:stun.l.google.com:19302", "turn:turn.example.com:3478?transport=udp", "turns:a:b@turn.example.com:5349?transport=tcp"} {
		if _, err := parseICEServer(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://x", "stun:u:p@host:1", "turn:@host", "turn:"} {
		if _, err := parseICEServer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	f, err := parseICEFrag([]byte("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"))
	if err != nil || f.ufrag != "abcd" || f.mid != "0" || len(f.candidates) != 1 || !f.end {
		t.Fatalf("frag %+v %v", f, err)
	}
	for _, bad := range []string{"a=candidate:nonsense", "a=ice-ufrag:x", "garbage line",
		"a=ice-ufrag:ab\rcd\na=ice-pwd:0123456789012345678901", "a=ice-ufrag:abcd\na=ice-pwd:short", "a=ice-ufrag:ab\na=ice-pwd:0123456789012345678901", strings.Repeat("a=mid:0\n", 300)} {
		if _, err := parseICEFrag([]byte(bad)); !errors.Is(err, ErrBadFrag) {
			t.Errorf("%.30q: %v", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.WebRTCUDP = "nope" },
		func(c *Config) { c.PublicIP = "1.2.3" },
		func(c *Config) { c.ICEServers = []string{"ftp://x"} },
		func(c *Config) { c.TURNTTL = time.Second },
		func(c *Config) { c.JoinKeyframe = "maybe" },
		func(c *Config) { c.Writers = -1 },
		func(c *Config) { c.Backlog = 1 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, setting.ErrInvalid) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzSDP feeds offers to WHIP and WHEP: every input is either answered or refused
// with a bad-request error, never a panic or an internal error.
func FuzzSDP(f *testing.F) {
	valid := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n" +
		"a=fingerprint:sha-256 8E:82:E4:6D:35:88:12:D2:0D:47:69:D5:46:D1:69:70:45:43:C2:BF:C3:DC:77:79:03:77:4C:86:2D:62:88:AE\r\n" +
		"a=setup:actpass\r\na=rtpmap:96 VP8/90000\r\n"
	for _, s := range []string{valid, "", "v=0", "hello", strings.Replace(valid, "a=sendonly", "a=recvonly", 1),
		strings.Replace(valid, "m=video 9", "m=video 0", 1), valid + "m=audio 9 RTP/AVP 0\r\n", strings.Replace(valid, "VP8", "H265", 1)} {
		f.Add(s)
	}
	cfg := DefaultConfig()
	cfg.WebRTCUDP, cfg.WebRTCTCP = "127.0.0.1:0", ""
	s, err := New(cfg, Deps{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close(context.Background()) })
	host := event.User{ID: "h", Role: event.RoleHost}
	f.Fuzz(func(t *testing.T, offer string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, k := range []Kind{Publish, Watch} {
			a, err := s.Offer(ctx, k, "fuzz", host, offer)
			if err == nil {
				_ = s.End(ctx, k, "fuzz", a.ID, host)
				continue
			}
			if kind := problem.KindOf(err); kind != problem.BadRequest && kind != problem.NotFound {
				t.Fatalf("%v offer gave %v (kind %d)", k, err, kind)
			}
		}
	})
}
