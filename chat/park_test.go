package chat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
)

// parkConfig pings often and waits little for pongs, so parked connections see
// several rounds of pings (and silent ones are ended) within a test.
func parkConfig() Config {
	cfg := DefaultConfig()
	cfg.PresenceInterval = 50 * time.Millisecond
	cfg.PingInterval = 200 * time.Millisecond
	cfg.PongWait = 2 * time.Second // room for a loaded machine: the clients must answer in time
	return cfg
}

// readers counts the goroutines running a connection's reader.
func readers() int {
	buf := make([]byte, 8<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "chat.(*conn).read(")
}

// eventually polls cond every 20 ms until it holds or 10 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func (rs *tcpHub) conns(t *testing.T, roomID string) int {
	t.Helper()
	rs.hub.mu.Lock()
	r := rs.hub.rooms[roomID]
	rs.hub.mu.Unlock()
	n := 0
	if r != nil {
		_ = r.call(context.Background(), func(r *room) { n = len(r.conns) })
	}
	return n
}

// danmakuTexts reads ws's events into a channel of the danmaku texts it receives.
func danmakuTexts(ws *websocket.Conn) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		for {
			_, data, err := ws.ReadMessage() // answers the server's pings meanwhile
			if err != nil {
				return
			}
			var evs []struct{ Type, Text string }
			_ = json.Unmarshal(data, &evs)
			for _, e := range evs {
				if e.Type == "danmaku" {
					ch <- e.Text
				}
			}
		}
	}()
	return ch
}

func expectTexts(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-ch:
			if got != w {
				t.Fatalf("danmaku %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("danmaku %q never came", w)
		}
	}
}

// Idle connections hold no reader goroutine, through rounds of pings and pongs, and
// stay connected (the pongs reach a parked connection); a message from any of them
// wakes its reader and reaches everyone.
func TestIdleConnectionsPark(t *testing.T) {
	rs := startTCPHub(t, parkConfig(), 0)
	const n = 100
	texts := make([]<-chan string, n)
	for i := range n {
		texts[i] = danmakuTexts(rs.dial(t, "r1", fmt.Sprintf("v%d", i), 0))
	}
	eventually(t, "all joined", func() bool { return rs.conns(t, "r1") == n })
	eventually(t, "the readers parked", func() bool { return readers() <= n/20 })
	time.Sleep(2 * parkConfig().PongWait) // pings every 200 ms, pongs answered by parked connections
	if got := rs.conns(t, "r1"); got != n {
		t.Fatalf("%d of %d connections left after 2 pong waits: parked connections miss pongs", got, n)
	}
	eventually(t, "the readers parked after the pings", func() bool { return readers() <= n/20 })
	// Operators see it: the parked-connections gauge counts them (all but the few awake;
	// a ping round wakes some for a moment, so the count is read until it settles).
	parked := func() float64 {
		var g dto.Metric
		if err := rs.hub.m.parked.Write(&g); err != nil {
			t.Fatal(err)
		}
		return g.GetGauge().GetValue()
	}
	eventually(t, "the gauge counts the parked connections", func() bool {
		got := parked()
		return got >= n-n/20 && got <= n
	})
	if got := parked(); got > n {
		t.Fatalf("liveroom_chat_parked_connections = %v with %d idle connections", got, n)
	}

	ws := rs.dial(t, "r1", "sender", 0)
	sent := danmakuTexts(ws)
	eventually(t, "the sender parked", func() bool { return readers() <= n/20 })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"danmaku","text":"wake up"}`)); err != nil {
		t.Fatal(err)
	}
	expectTexts(t, sent, "wake up")
	for i := range n {
		expectTexts(t, texts[i], "wake up")
	}
}

// A parked client that never answers pings is ended once its read deadline passes,
// as a blocked reader's would be; one that answers stays.
func TestParkedSilentClientEnded(t *testing.T) {
	rs := startTCPHub(t, parkConfig(), 0)
	silent := rs.dial(t, "r1", "silent", 0)
	if _, _, err := silent.ReadMessage(); err != nil { // the welcome; then it never reads
		t.Fatal(err)
	}
	danmakuTexts(rs.dial(t, "r1", "alive", 0))
	eventually(t, "both joined", func() bool { return rs.conns(t, "r1") == 2 })
	eventually(t, "the silent client ended", func() bool { return rs.conns(t, "r1") == 1 })
	time.Sleep(2 * parkConfig().PongWait)
	if got := rs.conns(t, "r1"); got != 1 {
		t.Fatalf("%d connections, want the answering one", got)
	}
}

// maskedFrame is a client's final frame of kind op (payload < 126 bytes).
func maskedFrame(op byte, payload string) []byte {
	key := []byte{0x1f, 0x2e, 0x3d, 0x4c}
	b := append([]byte{0x80 | op, 0x80 | byte(len(payload))}, key...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// Frames that arrive together are all read before the reader parks (the ones left in
// the read buffer raise no readiness on the socket), and frames split across writes
// are read whole, a pong included.
func TestFramesSharingAWriteAndSplitFrames(t *testing.T) {
	// The default config pings every 25 s: no pong from the client's own reader comes
	// between the raw writes below (it would interleave with them).
	rs := startTCPHub(t, DefaultConfig(), 0)
	ws := rs.dial(t, "r1", "v1", 0)
	if _, _, err := ws.ReadMessage(); err != nil { // the welcome, before the reader below
		t.Fatal(err)
	}
	got := danmakuTexts(ws)
	eventually(t, "the reader parked", func() bool { return readers() == 0 })
	danmaku := func(text string) []byte {
		return maskedFrame(opText, `{"type":"danmaku","text":"`+text+`"}`)
	}
	raw := ws.NetConn()
	var together []byte
	together = append(together, maskedFrame(opPong, "x")...)
	together = append(together, danmaku("one")...)
	together = append(together, maskedFrame(opPong, "")...)
	together = append(together, danmaku("two")...)
	if _, err := raw.Write(together); err != nil {
		t.Fatal(err)
	}
	expectTexts(t, got, "one", "two")

	eventually(t, "the reader parked again", func() bool { return readers() == 0 })
	split := append(maskedFrame(opPong, "abc"), danmaku("three")...)
	for _, cut := range []int{1, 5, 12} { // in the pong's header, its mask key, the danmaku
		if _, err := raw.Write(split[:cut]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		split = split[cut:]
	}
	if _, err := raw.Write(split); err != nil {
		t.Fatal(err)
	}
	expectTexts(t, got, "three")
}

// controlLen finds only a whole, masked, final pong or ping without reserved bits.
func TestControlLen(t *testing.T) {
	pong := maskedFrame(opPong, "hi")
	for _, c := range []struct {
		name   string
		in     []byte
		op     byte
		length int
	}{
		{"pong", pong, opPong, len(pong)},
		{"ping", maskedFrame(opPing, "hi"), opPing, len(pong)},
		{"empty pong then more", append(maskedFrame(opPong, ""), pong...), opPong, 6},
		{"cut pong", pong[:len(pong)-1], 0, 0},
		{"unmasked", []byte{0x8A, 0x00}, 0, 0},
		{"reserved bit", append([]byte{0xCA}, pong[1:]...), 0, 0},
		{"not final", append([]byte{0x0A}, pong[1:]...), 0, 0},
		{"126-byte length", []byte{0x8A, 0xFE, 0, 126}, 0, 0},
		{"close", maskedFrame(0x8, "hi"), 0, 0},
		{"text", maskedFrame(opText, "hi"), 0, 0},
		{"nothing", nil, 0, 0},
	} {
		if op, n := controlLen(bufio.NewReaderSize(bytes.NewReader(c.in), readBuffer)); op != c.op || n != c.length {
			t.Errorf("%s: op %#x length %d, want %#x %d", c.name, op, n, c.op, c.length)
		}
	}
}
