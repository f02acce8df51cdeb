package chat

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// An idle connection parks: when its client has sent nothing more, its reader
// goroutine arms a watch on the socket (the parker: one epoll instance per hub on
// Linux) and ends, so that an idle connection holds no goroutine and no stack, only its
// state and a small read buffer. When the client sends something, or the connection
// must end, a new reader resumes it. The read deadline still bounds a silent client:
// the room's ping cycles wake a parked connection whose deadline has passed, and its
// reader fails at once.

// readBuffer is the size of gorilla's read buffer for chat connections. gorilla reads
// through a hijacked reader only when it is larger than 256 bytes; 288 is the next
// allocation size class. Client messages are small (a danmaku is ≤ 200 characters).
const readBuffer = 288

// opPong is the WebSocket pong opcode (RFC 6455 §5.5.3).
const opPong = 0xA

// hijacker hands gorilla a read buffer of our own at the upgrade, so that the reader
// can tell whether a frame is still buffered before it parks.
type hijacker struct {
	http.ResponseWriter
	br *bufio.Reader
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return nc, brw, err // gorilla refuses data sent before the handshake's end
	}
	h.br = bufio.NewReaderSize(nc, readBuffer)
	return nc, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// Accept upgrades the admitted request to a WebSocket with up and serves it in the
// background; since < 0 means a fresh join, otherwise a resume after that seq. The
// ticket is released when the connection ends (at once when the upgrade fails: the
// upgrader has answered the client).
func (t *Ticket) Accept(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request, since int64) {
	own := *up
	own.ReadBufferSize = 0 // gorilla then reads through the hijacked reader: ours
	hj := &hijacker{ResponseWriter: w}
	ws, err := own.Upgrade(hj, r, nil)
	if err != nil {
		t.Release()
		return
	}
	t.serve(ws, hj.br, since)
}

// park arms the watch on c's socket, for a reader that has consumed every buffered
// byte. It returns true when this reader must end (c is parked, or another reader has
// taken over); false when c cannot park and the reader reads on.
func (c *conn) park() bool {
	if c.raw == nil || c.br == nil {
		return false
	}
	p := c.hub.parkerFor()
	if p == nil {
		return false
	}
	c.parked.Store(true) // before arming: the wake-up may come at once
	c.hub.m.parked.Inc() // each change of parked from true to false takes it back
	if p.arm(c) == nil {
		return true
	}
	// Not armed (the socket is closed): read on and meet the error, unless a wake-up
	// has already started another reader.
	if c.parked.CompareAndSwap(true, false) {
		c.hub.m.parked.Dec()
		return false
	}
	return true
}

// resume starts a new reader for c if it is parked. It is safe from any goroutine and
// starts at most one reader per park.
func (c *conn) resume() {
	if c.parked.CompareAndSwap(true, false) {
		c.hub.m.parked.Dec()
		go c.read(true)
	}
}

// wakeIfSilent resumes a parked c whose read deadline has passed: its reader fails at
// once and ends the connection, as a blocked read would have.
func (c *conn) wakeIfSilent() {
	if c.parked.Load() && time.Now().UnixNano() > c.readBy.Load() {
		c.resume()
	}
}

// extendRead moves the read deadline PongWait ahead (on every frame from the client).
func (c *conn) extendRead() {
	by := time.Now().Add(c.hub.cfg.PongWait)
	c.readBy.Store(by.UnixNano())
	_ = c.ws.SetReadDeadline(by)
}

// skipControl takes a client's whole pong or ping off the read buffer (a ping is
// answered through the queue). gorilla would handle them too, then go on waiting for
// the next data frame, which would keep this reader from parking; anything else is
// left to gorilla.
func (c *conn) skipControl() bool {
	if c.br == nil {
		return false
	}
	op, n := controlLen(c.br)
	if n == 0 {
		return false
	}
	if op == opPing {
		h, _ := c.br.Peek(n)
		payload := make([]byte, n-6)
		for i := range payload {
			payload[i] = h[6+i] ^ h[2+i%4]
		}
		c.queuePong(payload)
	}
	_, _ = c.br.Discard(n)
	c.extendRead()
	return true
}

// controlLen is the opcode and length of the client pong or ping frame at the head of
// br (final, masked, no reserved bits, payload ≤ 125 bytes), or 0 if there is none
// there whole. It may wait for the first two bytes and for the rest of the frame.
func controlLen(br *bufio.Reader) (byte, int) {
	h, err := br.Peek(2)
	if err != nil || (h[0] != 0x80|opPong && h[0] != 0x80|opPing) || h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		return 0, 0
	}
	op := h[0] & 0xf
	n := 2 + 4 + int(h[1]&0x7f) // header, mask key, payload
	if _, err := br.Peek(n); err != nil {
		return 0, 0
	}
	return op, n
}

// pollParked resumes the parked connections that have something to read (the
// fan-out's yields; see parker.poll).
func (h *Hub) pollParked() {
	if p := h.parker.Load(); p != nil {
		p.poll()
	}
}

// parkerFor returns the hub's parker, made on first use (a hub whose connections are
// not sockets, as in tests over pipes, never makes one); nil if it cannot be made.
func (h *Hub) parkerFor() *parker {
	h.parkerOnce.Do(func() {
		p, err := newParker()
		if err != nil {
			h.log.Info("chat: idle connections keep a goroutine each", "reason", err)
			return
		}
		h.parker.Store(p)
	})
	return h.parker.Load()
}
