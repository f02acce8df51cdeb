package main

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The receivers of bench chat. With one goroutine per connection the generator spent
// its core on Go's scheduler and on two reads per frame (the one that returns the
// frame and the one that finds the socket empty), and fell tens of milliseconds
// behind the server at the end of each of its cycles: that lag was counted as
// fan-out delay. On Linux the receivers are one goroutine reading every socket it
// is told is readable by an epoll instance (bench_chat_linux.go); this file holds the
// frame parsing they share.

// maxBenchFrame bounds a server frame the generator accepts (a welcome with history
// is the largest).
const maxBenchFrame = 16 << 20

var errBadFrame = errors.New("bad WebSocket frame from the server")

// nextFrame parses the server frame at the start of b (RFC 6455 §5.2: server frames
// are unmasked). n is the frame's whole length, 0 while b holds only part of it.
func nextFrame(b []byte) (op byte, fin bool, payload []byte, n int, err error) {
	if len(b) < 2 {
		return 0, false, nil, 0, nil
	}
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 { // reserved bits, or a masked server frame
		return 0, false, nil, 0, errBadFrame
	}
	op, fin = b[0]&0x0f, b[0]&0x80 != 0
	size, head := uint64(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return 0, false, nil, 0, nil
		}
		size, head = uint64(b[2])<<8|uint64(b[3]), 4
	case 127:
		if len(b) < 10 {
			return 0, false, nil, 0, nil
		}
		size = 0
		for _, c := range b[2:10] {
			size = size<<8 | uint64(c)
		}
		head = 10
	}
	if size > maxBenchFrame {
		return 0, false, nil, 0, errBadFrame
	}
	if uint64(len(b)-head) < size {
		return 0, false, nil, 0, nil
	}
	n = head + int(size)
	return op, fin, b[head:n], n, nil
}

// rawReceiver is one connection's receiving state when the generator reads its
// socket itself.
type rawReceiver struct {
	pong    func(payload []byte) // answers a ping
	pending []byte               // the start of a frame not yet whole
	message []byte               // the fragments of a message not yet final
	done    bool                 // closed by the server, or broken
}

// feed takes bytes read from the socket and counts the benchmark messages of every
// whole message in them.
func (r *rawReceiver) feed(data []byte, now int64, d *benchDelays, delivered, refused *atomic.Uint64) {
	if len(r.pending) > 0 {
		r.pending = append(r.pending, data...)
		data = r.pending
	}
	for !r.done {
		op, fin, payload, n, err := nextFrame(data)
		if err != nil {
			r.done = true
			return
		}
		if n == 0 {
			break
		}
		data = data[n:]
		switch op {
		case websocket.TextMessage, websocket.BinaryMessage, 0: // 0: a continuation
			whole := payload
			if !fin || len(r.message) > 0 {
				r.message = append(r.message, payload...)
				if !fin {
					continue
				}
				whole = r.message
			}
			m, errs := scanBench(whole, now, d)
			delivered.Add(m)
			refused.Add(errs)
			r.message = r.message[:0]
		case websocket.PingMessage:
			r.pong(payload)
		case websocket.CloseMessage:
			r.done = true
		}
	}
	// Keep what is left of a partial frame (copied: data may be the caller's buffer).
	r.pending = append(r.pending[:0], data...)
}

// pongTo answers pings on ws.
func pongTo(ws *websocket.Conn) func([]byte) {
	return func(payload []byte) {
		_ = ws.WriteControl(websocket.PongMessage, payload, time.Now().Add(5*time.Second))
	}
}

// byteConn hands the WebSocket handshake its response one byte at a time, so the
// dialer's buffer ends exactly where the response does: what the server sends next
// (its welcome) stays in the socket for the generator's own reads.
type byteConn struct {
	net.Conn
	whole atomic.Bool // set after the handshake
}

func (c *byteConn) Read(p []byte) (int, error) {
	if !c.whole.Load() && len(p) > 1 {
		p = p[:1]
	}
	return c.Conn.Read(p)
}
