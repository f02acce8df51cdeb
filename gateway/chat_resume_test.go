package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/event"
)

func fastSenders(cfg chat.Config) chat.Config {
	cfg.DanmakuRate, cfg.DanmakuBurst = 1e6, 1<<20
	return cfg
}

// TestChatResumeProperty: clients drop their connections at random and resume with
// since; each must see every seq exactly once, in order.
func TestChatResumeProperty(t *testing.T) {
	h := newHarness(t, fastSenders(testChatConfig()), nil)
	const messages, readers = 400, 4
	host := h.join("res", event.RoleHost, "h")

	var finalSeq atomic.Uint64
	var wg, joined sync.WaitGroup
	errs := make(chan error, readers)
	joined.Add(readers)
	for i := range readers {
		wg.Go(func() {
			done := sync.OnceFunc(joined.Done) // also on an early error, so nobody waits forever
			defer done()
			errs <- resumeReader(h, fmt.Sprintf("r%d", i), int64(i), &finalSeq, done)
		})
	}
	joined.Wait() // every reader has its first welcome before the first message
	for i := range messages {
		host.send(map[string]any{"type": "danmaku", "text": "m" + strconv.Itoa(i)})
	}
	for {
		ev := host.expect("danmaku")
		if ev["text"] == "m"+strconv.Itoa(messages-1) {
			finalSeq.Store(uint64(num(ev["seq"])))
			// Wakes readers that got the last message before finalSeq was known.
			host.send(map[string]any{"type": "danmaku", "text": "end"})
			break
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// resumeReader reads until finalSeq, dropping the connection at random and resuming.
func resumeReader(h *harness, user string, seed int64, finalSeq *atomic.Uint64, joined func()) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	var last uint64
	fresh, reconnects := true, 0
	for {
		extra := url.Values{}
		if !fresh {
			extra.Set("since", strconv.FormatUint(last, 10))
		}
		ws, _, err := h.dialRaw("res", h.token(event.RoleViewer, user, "res"), extra, nil)
		if err != nil {
			return fmt.Errorf("%s: dial: %w", user, err)
		}
		c := &client{t: h.t, ws: ws}
		dropped := false
		for !dropped {
			ev, err := c.next()
			if err != nil {
				ws.Close()
				return fmt.Errorf("%s: read: %w", user, err)
			}
			switch ev["type"] {
			case "welcome":
				seq := uint64(num(ev["room"].(map[string]any)["seq"]))
				if fresh {
					last, fresh = seq, false
					joined()
				} else if seq < last {
					return fmt.Errorf("%s: resumed welcome at seq %d, behind %d", user, seq, last)
				}
			case "reset":
				return fmt.Errorf("%s: reset although the history holds everything", user)
			case "danmaku":
				seq := uint64(num(ev["seq"]))
				if seq != last+1 {
					return fmt.Errorf("%s: seq %d after %d (reconnects %d)", user, seq, last, reconnects)
				}
				last = seq
			}
			if f := finalSeq.Load(); f != 0 && last >= f {
				ws.Close()
				if reconnects == 0 {
					return fmt.Errorf("%s: never reconnected", user)
				}
				return nil
			}
			if rng.IntN(25) == 0 || (reconnects == 0 && last%100 == 50) {
				ws.NetConn().Close() // abrupt: no close frame
				dropped = true
				reconnects++
			}
		}
	}
}

// TestChatResumePastHistory: a since older than the history gets reset + welcome.
func TestChatResumePastHistory(t *testing.T) {
	cfg := fastSenders(testChatConfig())
	cfg.History, cfg.HistoryMax, cfg.HistoryAge, cfg.WelcomeHistory = 5, 5, 0, 5
	h := newHarness(t, cfg, nil)
	host := h.join("old", event.RoleHost, "h")
	for i := range 20 {
		host.send(map[string]any{"type": "danmaku", "text": "m" + strconv.Itoa(i)})
		host.expect("danmaku")
	}
	v := h.dial("old", event.RoleViewer, "v", url.Values{"since": {"1"}})
	v.expect("reset")
	w := v.expect("welcome")
	if hist := w["history"].([]any); len(hist) != 5 {
		t.Fatalf("fresh welcome history has %d events, want 5", len(hist))
	}
	// Within the history: no reset, the missing events follow the welcome.
	seq := num(w["room"].(map[string]any)["seq"])
	v2 := h.dial("old", event.RoleViewer, "v2", url.Values{"since": {strconv.Itoa(int(seq) - 2)}})
	v2.expect("welcome")
	for want := seq - 1; want <= seq; want++ {
		if got := num(v2.expect("danmaku")["seq"]); got != want {
			t.Fatalf("replayed seq %v, want %v", got, want)
		}
	}
}

// TestChatSlowConsumer: a client that never reads falls behind and is closed
// with 1013, and never holds up the others, who get every message.
func TestChatSlowConsumer(t *testing.T) {
	cfg := fastSenders(testChatConfig())
	// The client that never reads is closed once its oldest unsent event is 64 frame
	// intervals old; the clients that read are written every cycle. (When this bounded
	// a queue of frames, 4 and 16 closed a reading client too on a loaded CI machine.)
	cfg.QueueFrames = 64
	cfg.LikeRate = 1e6
	h := newHarness(t, cfg, nil)
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}).DialContext}
	slow, _, err := d.Dial(h.wsURL("slow", h.token(event.RoleViewer, "slow", "slow"), nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	good := h.join("slow", event.RoleViewer, "good")
	host := h.join("slow", event.RoleHost, "h")
	liker := h.join("slow", event.RoleViewer, "liker")

	// The sender goes in chunks that the good client has read, so only the slow client
	// ever falls behind; 16 MB in all overflows any socket buffer.
	text := strings.Repeat("𝄞", 200) // 800 bytes of UTF-8 per event
	const messages, chunk = 20000, 100
	read := make(chan struct{})
	var drains sync.WaitGroup
	defer drains.Wait()
	for _, c := range []*client{host, liker} { // they get every frame too: keep them read
		defer c.ws.Close()
		drains.Go(func() {
			for {
				if _, _, err := c.ws.NextReader(); err != nil {
					return
				}
			}
		})
	}
	go func() {
		for i := range messages {
			if i%chunk == 0 && i > 0 {
				<-read
			}
			if i%10 == 0 {
				_ = liker.ws.WriteJSON(map[string]any{"type": "like"})
			}
			if err := host.ws.WriteJSON(map[string]any{"type": "danmaku", "text": text, "id": strconv.Itoa(i)}); err != nil {
				t.Errorf("the sender was cut off at message %d: %v", i, err) // else the good client just times out
				return
			}
		}
	}()
	var last float64
	for i := range messages {
		ev := good.expect("danmaku")
		if ev["id"] != strconv.Itoa(i) || (last != 0 && num(ev["seq"]) <= last) {
			t.Fatalf("good client: event %v after seq %v, want id %d", ev["id"], last, i)
		}
		last = num(ev["seq"])
		if i%chunk == chunk-1 && i < messages-1 {
			read <- struct{}{}
		}
	}
	eventually(t, "the slow client closed", func() bool {
		return counter(t, h.reg, "liveroom_chat_drops_total", map[string]string{"reason": "slow_close"}) == 1
	})
	// What the slow client eventually reads ends in a close frame (1013) when the server
	// could still write it, else in a cut connection (1006 or a reset).
	sc := &client{t: t, ws: slow}
	if code := sc.expectClose(); code != websocket.CloseTryAgainLater && code != websocket.CloseAbnormalClosure && code != -1 {
		t.Fatalf("slow client closed with %d, want 1013", code)
	}
}

// TestChatConnectCycles: 10,000 connect/disconnect cycles leave no goroutine, no
// connection and no memory behind.
func TestChatConnectCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections")
	}
	cfg := testChatConfig()
	// The per-address cap counts a connection until the server has seen it close, which
	// eight clients reconnecting at once outrun now and then (429): not what this tests.
	cfg.ConnsPerAddr = 0
	h := newHarness(t, cfg, nil)
	tok := h.token(event.RoleViewer, "cyc", "cyc")
	warm := func(n int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					ws, _, err := h.dialRaw("cyc", tok, nil, nil)
					if err != nil {
						t.Error(err)
						return
					}
					c := &client{t: t, ws: ws}
					if _, err := c.next(); err != nil { // the welcome
						t.Error(err)
					}
					if i%2 == 0 {
						_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
					}
					ws.Close()
				}
			})
		}
		wg.Wait()
	}
	settle := func() (int, uint64) {
		eventually(t, "connections closed", func() bool {
			return counter(t, h.reg, "liveroom_chat_connections", nil) == 0
		})
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse
	}
	warm(200)
	g0, m0 := settle()
	warm(10000)
	var g1 int
	var m1 uint64
	eventually(t, "goroutines back to the baseline", func() bool {
		g1, m1 = settle()
		return g1 <= g0
	})
	if m1 > m0+4<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 10,000 cycles", m0, m1)
	}
	if n := counter(t, h.reg, "liveroom_chat_connections", nil); n != 0 {
		t.Fatalf("%v connections still counted", n)
	}
}

// TestChatRestartKeepsState: likes and gift totals, bans, DM history and a rising seq survive
// closing and reopening the bbolt store.
func TestChatRestartKeepsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	store, err := chat.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, testChatConfig(), store)
	host := h.join("rs", event.RoleHost, "h")
	agent := h.join("rs", event.RoleAgent, "ag")
	v := h.join("rs", event.RoleViewer, "v")
	v.send(map[string]any{"type": "like", "count": 7})
	host.expect("likes")
	v.send(map[string]any{"type": "gift", "gift": "rocket"})
	host.expect("gift")
	v.expect("gift")
	agent.send(map[string]any{"type": "dm", "to": "v", "text": "kept"})
	v.expect("dm")
	host.send(map[string]any{"type": "danmaku", "text": "before"})
	before := num(host.expect("danmaku")["seq"])
	host.send(map[string]any{"type": "ban", "user": "troll"})
	host.expect("notice")
	h2 := reopen(t, h, store, path)
	host = h2.dial("rs", event.RoleHost, "h", nil)
	if room := host.expect("welcome")["room"].(map[string]any); num(room["likes"]) != 7 || fmt.Sprint(room["gift_value"]) != "map[USD:20]" {
		t.Fatalf("likes and gift value after restart: %v", room)
	}
	host.send(map[string]any{"type": "danmaku", "text": "after"})
	if after := num(host.expect("danmaku")["seq"]); after <= before {
		t.Fatalf("seq went from %v to %v across a restart", before, after)
	}
	if _, resp, err := h2.dialRaw("rs", h2.token(event.RoleViewer, "troll", "rs"), nil, nil); err == nil || resp.StatusCode != 403 {
		t.Fatalf("banned user after restart: %v %v", err, resp)
	}
	msgs, err := h2.hub.DMHistory(context.Background(), "rs", "v")
	if err != nil || len(msgs) != 1 || msgs[0].Text != "kept" {
		t.Fatalf("dm history after restart: %+v %v", msgs, err)
	}
	h2.close()
}
