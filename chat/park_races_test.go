//go:build linux

package chat

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
)

// A connection whose join is still in its room's inbox when Close stops the room is
// never joined, so no ping cycle would wake it: it must not park and hold Hub.Close
// (found in review: it did, forever).
func TestCloseWithJoinQueued(t *testing.T) {
	cfg := parkConfig() // PongWait 1 s
	h, err := New(cfg, Deps{Store: NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var admitted sync.WaitGroup
	up := &websocket.Upgrader{WriteBufferPool: &sync.Pool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("u")
		tk, err := h.Admit(r.Context(), "r1", event.User{ID: id, Name: id, Role: event.RoleViewer}, id)
		admitted.Done()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		<-gate // upgrade only once the room is held up
		tk.Accept(up, w, r, -1)
	}))
	defer srv.Close()

	const n = 8
	admitted.Add(n)
	wss := make(chan *websocket.Conn, n)
	for i := range n {
		go func() {
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/?u="+fmt.Sprint("v", i), nil)
			if err != nil {
				t.Error(err)
			}
			wss <- ws
		}()
	}
	admitted.Wait()
	h.mu.Lock()
	r := h.rooms["r1"]
	h.mu.Unlock()
	held, release := make(chan struct{}), make(chan struct{})
	r.send(func(*room) { close(held); <-release })
	<-held
	close(gate)
	for range n {
		if ws := <-wss; ws != nil {
			defer ws.Close() // the clients stay connected and quiet
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(r.inbox) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d joins queued", len(r.inbox))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*cfg.PongWait)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- h.Close(ctx) }()
	for { // quit is closed: the room now picks between its inbox and quit at random
		h.mu.Lock()
		c := h.closed
		h.mu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	start := time.Now()
	if err := <-closed; err != nil {
		t.Fatalf("Hub.Close: %v after %v (reader goroutines: %d)", err, time.Since(start).Round(time.Millisecond), readers())
	}
	t.Logf("Hub.Close returned after %v", time.Since(start).Round(time.Millisecond))
}

// A client that pings (many client libraries keep a connection alive this way) gets
// its pong and still parks: gorilla would answer the ping inside NextReader and go on
// waiting for a data frame, keeping the reader.
func TestClientPingDoesNotPinReader(t *testing.T) {
	rs := startTCPHub(t, parkConfig(), 0)
	ws := rs.dial(t, "r1", "v1", 0)
	pongs := make(chan string, 8)
	ws.SetPongHandler(func(s string) error { pongs <- s; return nil })
	danmakuTexts(ws) // reads (and answers the server's pings)
	eventually(t, "the reader parked", func() bool { return readers() == 0 })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-pongs:
		if s != "hi" {
			t.Fatalf("pong %q, want %q", s, "hi")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	time.Sleep(time.Second) // five server ping rounds, answered
	if n := readers(); n != 0 {
		t.Fatalf("%d reader goroutine(s) still running a second after one client ping", n)
	}
}

// Replays one interleaving step by step, this goroutine standing in for a reader R1
// between park's parked.Store(true) and its p.arm(c): the writer closes the socket
// (closeSocket → resume starts R2), R2 ends the connection (end → forget), then R1
// arms. arm must not put c back in the parker's map, where it would stay for the
// hub's life.
func TestArmAfterEndKeepsNoConn(t *testing.T) {
	rs := startTCPHub(t, parkConfig(), 0)
	ws := rs.dial(t, "r1", "v1", 0)
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	c := rs.serverConn(t, "r1", "v1")
	eventually(t, "parked", func() bool { return c.parked.Load() && readers() == 0 })
	p := rs.hub.parker.Load()
	// R1: c.parked.Store(true) — already true here.
	c.closeSocket() // the writer, after a close frame or a failed write
	eventually(t, "R2 ended the connection", func() bool { return rs.conns(t, "r1") == 0 && readers() == 0 })
	p.mu.Lock()
	_, before := p.conns[c.parkID]
	p.mu.Unlock()
	// R1 goes on: p.arm(c), then (arm failed) parked.CompareAndSwap(true, false).
	err := p.arm(c)
	cas := c.parked.CompareAndSwap(true, false)
	p.mu.Lock()
	_, after := p.conns[c.parkID]
	p.mu.Unlock()
	t.Logf("in map after end: %v; arm: %v; R1's CAS: %v (false: R1 returns, nothing ends c again)", before, err, cas)
	if after {
		t.Fatalf("the ended connection is back in the parker's map (%d entries) and is never forgotten", len(p.conns))
	}
}

// A parked connection ends on a client close frame, on a half-close (FIN),
// and a fragmented message split around a pause and an interleaved pong is read whole.
func TestParkedCloseHalfCloseFragments(t *testing.T) {
	rs := startTCPHub(t, parkConfig(), 0)

	a := rs.dial(t, "r1", "a", 0)
	a.ReadMessage()
	b := rs.dial(t, "r1", "b", 0)
	b.ReadMessage()
	f := rs.dial(t, "r1", "f", 0)
	f.ReadMessage()
	got := danmakuTexts(f)
	eventually(t, "all parked", func() bool { return rs.conns(t, "r1") == 3 && readers() == 0 })

	if err := a.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a ended", func() bool { return rs.conns(t, "r1") == 2 })
	_ = b.NetConn().(interface{ CloseWrite() error }).CloseWrite()
	eventually(t, "b ended", func() bool { return rs.conns(t, "r1") == 1 })

	msg := `{"type":"danmaku","text":"frag"}`
	key := []byte{1, 2, 3, 4}
	frame := func(b0 byte, payload string) []byte {
		out := append([]byte{b0, 0x80 | byte(len(payload))}, key...)
		for i := range len(payload) {
			out = append(out, payload[i]^key[i%4])
		}
		return out
	}
	raw := f.NetConn()
	raw.Write(frame(opText, msg[:10])) // FIN=0
	time.Sleep(300 * time.Millisecond)
	raw.Write(maskedFrame(opPong, ""))
	time.Sleep(300 * time.Millisecond)
	raw.Write(frame(0x80, msg[10:])) // continuation, FIN=1
	expectTexts(t, got, "frag")
	eventually(t, "f parked again", func() bool { return readers() == 0 })
}

// The fan-out's poll wakes a parked connection by itself: here the parker's own loop,
// which waits in Go's poller, is not running, so nothing else could.
func TestPollWakesParkedConnection(t *testing.T) {
	rs := startTCPHub(t, parkConfig(), 0)
	p, err := openParker()
	if err != nil {
		t.Fatal(err)
	}
	rs.hub.parkerOnce.Do(func() { rs.hub.parker.Store(p) })
	defer func() { go p.run(p.raw) }() // the hub's Close waits for the loop to end

	texts := danmakuTexts(rs.dial(t, "r1", "v1", 0))
	ws := rs.dial(t, "r1", "sender", 0)
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	c := rs.serverConn(t, "r1", "sender")
	eventually(t, "both parked", func() bool { return c.parked.Load() && readers() == 0 })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"danmaku","text":"polled"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if !c.parked.Load() {
		t.Fatal("something other than the poll woke the sender")
	}
	rs.hub.pollParked()
	expectTexts(t, texts, "polled")
}
