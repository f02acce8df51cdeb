package gateway_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/config"
	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// The per-address connection cap holds an IPv6 client by its /64, as the guest limit
// does (docs/tokens.md): one host usually holds a whole /64 and can take a new address
// for every connection, so counting full addresses is no cap at all.
func TestChatConnCapTakesAnIPv6SlashSixtyFour(t *testing.T) {
	cfg := testChatConfig()
	cfg.ConnsPerAddr = 2
	h := harnessWith(t, cfg, nil, func(c *config.Core) { c.TrustProxy = true })
	admitted := 0
	for i := 1; i <= 6; i++ {
		hdr := http.Header{"X-Forwarded-For": {fmt.Sprintf("2001:db8:1:1::%x", i)}}
		ws, resp, err := h.dialRaw("v6", h.token(event.RoleViewer, fmt.Sprintf("u%d", i), "v6"), nil, hdr)
		if err == nil {
			admitted++
			defer ws.Close()
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("dial %d: %v %v", i, err, resp)
		}
	}
	if admitted > cfg.ConnsPerAddr {
		t.Fatalf("one /64 holds %d chat connections at chat-conns-per-addr %d", admitted, cfg.ConnsPerAddr)
	}
}

// A ban ends the banned user's part in the room at once: nothing it sends after the
// moderator's notice reaches the room, even while its connection is still closing (a
// client that does not read keeps its close frame waiting up to a second).
func TestChatBannedUserSilencedAtTheNotice(t *testing.T) {
	cfg := testChatConfig()
	cfg.DanmakuRate, cfg.DanmakuBurst = 1e5, 100000
	cfg.QueueFrames = 65536 // no slow close: the client's socket fills
	h := newHarness(t, cfg, nil)
	host := h.join("ban", event.RoleHost, "h")
	// The banned client reads nothing, through a small receive buffer.
	d := websocket.Dialer{HandshakeTimeout: waitLimit, NetDial: func(network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		return nd.Dial(network, addr)
	}}
	vws, _, err := d.Dial(h.wsURL("ban", h.token(event.RoleViewer, "bad", "ban"), nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &client{t: t, ws: vws}
	// The banned client floods and never reads.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		big := make([]rune, 200)
		for i := range big {
			big[i] = '😀'
		}
		frame := []byte(`{"type":"danmaku","text":"` + string(big) + `"}`)
		for !stop.Load() {
			_ = v.ws.SetWriteDeadline(time.Now().Add(time.Second))
			if v.ws.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		}
	}()
	defer func() { stop.Store(true); v.ws.Close(); <-done }()
	// Let the flood fill the client's socket.
	deadline := time.Now().Add(time.Second)
	seen := 0
	for time.Now().Before(deadline) {
		host.expect("danmaku")
		seen++
	}
	t.Logf("flood: %d danmaku seen in 1s", seen)
	agent := h.join("ban", event.RoleAgent, "ag")
	agent.send(map[string]any{"type": "ban", "user": "bad"})
	var noticeSeq float64
	for noticeSeq == 0 {
		ev, err := host.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev["type"] == "notice" && ev["action"] == "ban" {
			noticeSeq = num(ev["seq"])
		}
	}
	after := 0
	quiet := time.Now().Add(3 * time.Second)
	for time.Now().Before(quiet) {
		_ = host.ws.SetReadDeadline(quiet)
		if len(host.pending) == 0 {
			_, data, err := host.ws.ReadMessage()
			if err != nil {
				break
			}
			host.pending = nil
			if err := json.Unmarshal(data, &host.pending); err != nil {
				t.Fatal(err)
			}
		}
		ev := host.pending[0]
		host.pending = host.pending[1:]
		if ev["type"] == "danmaku" && num(ev["seq"]) > noticeSeq {
			if f, _ := ev["from"].(map[string]any); f["id"] == "bad" {
				after++
			}
		}
	}
	if after > 0 {
		t.Fatalf("%d danmaku of the banned user reached the room after the ban notice", after)
	}
}

// Text shown to the whole room holds no bidi embedding, override or isolate controls
// (U+202A–U+202E, U+2066–U+2069) nor line/paragraph separators: docs/chat.md refuses
// control characters, and these are Unicode's directional *controls*; an unterminated
// U+202E reverses whatever a page puts after it on the line (a name, a price).
func TestChatRefusesBidiControls(t *testing.T) {
	h := newHarness(t, fastSenders(testChatConfig()), nil)
	v := h.join("bidi", event.RoleViewer, "v")
	for _, text := range []string{"price \u202e001$", "a\u2066b", "line\u2028break"} {
		v.send(map[string]any{"type": "danmaku", "text": text})
		ev, err := v.next()
		for err == nil && (ev["type"] == "presence" || ev["type"] == "likes") {
			ev, err = v.next()
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev["type"] != "error" || ev["code"] != "bad_request" {
			t.Errorf("danmaku %+q: got %v, want a bad_request error", text, ev)
		}
	}
}

// Every DM within the documented field limits (text of 1,000 characters, `to` a user id
// of up to 128 bytes, `id` of up to 64 bytes) is taken: a frame built from them must not
// close the connection with 1009.
func TestChatLongestValidDMFitsAFrame(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	viewer := strings.Repeat("v", token.MaxUserLen)
	agent := h.join("dmsize", event.RoleAgent, "ag")
	v := h.join("dmsize", event.RoleViewer, viewer)
	text := strings.Repeat("😀", 1000)
	agent.send(map[string]any{"type": "dm", "to": viewer, "text": text, "id": strings.Repeat("i", 64)})
	ev, err := agent.next()
	for err == nil && ev["type"] != "dm" {
		ev, err = agent.next()
	}
	if err != nil {
		t.Fatalf("agent's valid DM (1000 characters, 128-byte to, 64-byte id): %v", err)
	}
	if d := v.expect("dm"); d["text"] != text {
		t.Fatalf("dm text %v", d["text"])
	}
}

// A guest's name is shown beside its comments and gifts (the player's "NAME → Rose ×3"):
// like the comments, it holds no bidi controls, which would reverse the rest of the line.
func TestGuestNameRefusesBidiControls(t *testing.T) {
	h := newHarness(t, testChatConfig(), nil)
	resp, err := http.Post(h.srv.URL+"/api/rooms/gn/guest", "application/json", strings.NewReader(`{"name":"\u202e3× esoR"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("guest name with U+202E: status %d, want 400", resp.StatusCode)
	}
}
