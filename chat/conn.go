package chat

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/liveroom/liveroom/event"
)

// frameKind says how a queued frame is written and whether it may be dropped.
type frameKind uint8

const (
	frameUnicast frameKind = iota // this connection's own events (welcome, error, dm...)
	frameRaw                      // room events (or their rest) as a ready WebSocket frame
	framePing
	framePong
	frameClose
)

// outFrame is one queued write. The room's events are not queued: the connection
// pulls them from the room's log (fanout.go).
type outFrame struct {
	kind   frameKind
	data   []byte
	at     time.Time // when its oldest event happened (fan-out delay), for frameRaw
	code   int
	reason string
	merged bool // data was built here by merging unicast frames: this queue owns it
	locked bool // frameRaw: the rest of a frame whose write already holds wmu
}

// maxMerged bounds a frame built by merging queued unicast frames.
const maxMerged = 128 << 10

// closeGrace bounds the write of a close frame and unsticks a writer blocked on a full socket.
const closeGrace = time.Second

// conn is one WebSocket connection. A reader goroutine exists only while the client
// is sending (an idle connection parks, park.go); a writer goroutine only while its
// own frames are queued (or the rest of a frame the socket did not take at once). So
// an idle connection costs no goroutine, only its state and buffers, and the room's
// events reach it from the fan-out.
type conn struct {
	hub       *Hub
	room      *room
	ticket    *Ticket
	ws        *websocket.Conn
	raw       syscall.RawConn // the socket, for the fan-out's non-blocking writes and parking
	br        *bufio.Reader   // gorilla's read buffer (nil: the reader never parks)
	parkID    uint64
	parked    atomic.Bool  // no reader runs; the parker or a wake-up starts one
	readBy    atomic.Int64 // the read deadline, Unix ns
	forgotten bool         // the connection has ended: the parker must not keep it (parker.mu)
	// wmu is held while a frame is written, so that frames never interleave: across
	// the fan-out's write, the writer goroutine's and the reader's close echo (pongs
	// go through the queue). gorilla's own 1002 close on a client's protocol error is
	// the one write outside it.
	wmu   sync.Mutex
	user  event.User
	abuse *rate.Limiter // created on the first refusal; guarded by mu
	pings *rate.Limiter // created on the first ping message; readers only (one at a time)

	mu      sync.Mutex
	cursor  *batch // the last room batch this connection was sent (nil before it joined)
	queue   []outFrame
	writing bool // the fan-out or the writer goroutine is writing
	closing bool // a close frame is queued; nothing else is accepted
	dead    bool // the reader has ended; no writer may start
	writer  sync.WaitGroup
}

// push queues f without ever blocking: past QueueFrames the connection is closed with
// 1013 so the client resumes with since.
func (c *conn) push(f outFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.dead {
		return
	}
	if c.mergeLocked(f) {
		return // it joined the frame waiting at the tail: the queue did not grow
	}
	if len(c.queue) >= c.hub.cfg.QueueFrames {
		c.hub.m.drops.WithLabelValues("slow_close").Inc()
		c.startCloseLocked(websocket.CloseTryAgainLater, "too slow: resume with since", false)
		return
	}
	c.queue = append(c.queue, f)
	c.kickLocked()
}

// mergeLocked appends unicast frame f's events to a unicast frame still waiting at the
// tail of the queue, so that a burst for one connection (an agent getting thousands of
// prompts at once, a flood of DMs) takes frames only as fast as they are written
// instead of filling the queue and closing the connection as too slow.
func (c *conn) mergeLocked(f outFrame) bool {
	n := len(c.queue)
	if f.kind != frameUnicast || n == 0 {
		return false
	}
	tail := &c.queue[n-1]
	if tail.kind != frameUnicast || len(tail.data)+len(f.data) > maxMerged || len(tail.data) <= 2 || len(f.data) <= 2 {
		return false
	}
	if !tail.merged { // the first merge copies: a frame's data may be shared by several queues
		tail.data = append(make([]byte, 0, 2*(len(tail.data)+len(f.data))), tail.data...)
		tail.merged = true
	}
	// "[a,b]" + "[c]" → "[a,b,c]"
	tail.data = append(append(tail.data[:len(tail.data)-1], ','), f.data[1:]...)
	return true
}

// close queues a close frame with code, dropping whatever else was queued.
func (c *conn) close(code int, reason string) { c.closeKeeping(code, reason, false) }

// closeAfterOwn is close that writes the connection's own queued events first (the
// refusals that explain a policy close), dropping only pings and pongs.
func (c *conn) closeAfterOwn(code int, reason string) { c.closeKeeping(code, reason, true) }

func (c *conn) closeKeeping(code int, reason string, own bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing && !c.dead {
		c.startCloseLocked(code, reason, own)
	}
}

// startCloseLocked queues the close frame in place of what was queued: the rest of a
// half-written frame stays ahead of it, and with own the connection's own events too
// (unicast frames, merged: at most QueueFrames of them, whose writes the close's
// deadline bounds).
func (c *conn) startCloseLocked(code int, reason string, own bool) {
	c.closing = true
	keep := 0
	if len(c.queue) > 0 && c.queue[0].locked {
		keep = 1 // the rest of a half-written frame goes first
	}
	q := c.queue[:keep]
	if own {
		for _, f := range c.queue[keep:] {
			if f.kind == frameUnicast {
				q = append(q, f)
			}
		}
	}
	c.queue = append(q, outFrame{kind: frameClose, code: code, reason: reason})
	// A writer blocked on a full socket gives up now instead of after WriteWait.
	_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(closeGrace))
	c.kickLocked()
}

func (c *conn) kickLocked() {
	if !c.writing {
		c.writing = true
		c.writer.Go(c.writeLoop)
	}
}

// writeLoop drains the queue, then ends; before it ends it pulls the room's events
// the fan-out skipped while it was busy (under mu, so a cycle that skipped it is
// never missed).
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 && !c.dead && !c.closing && c.cursor != nil {
			if data, last, oldest := pull(c.cursor, nil); !oldest.IsZero() {
				c.cursor = last
				c.queue = append(c.queue, outFrame{kind: frameRaw, data: data, at: oldest})
			}
		}
		if c.dead || len(c.queue) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		f := c.queue[0]
		c.queue[0] = outFrame{}
		c.queue = c.queue[1:]
		if len(c.queue) == 0 {
			c.queue = nil // an idle connection holds no queue (nor a burst's backlog)
		}
		c.mu.Unlock()
		if err := c.writeLocked(f); err != nil || f.kind == frameClose {
			c.closeSocket()
			c.mu.Lock()
			c.closing, c.writing, c.queue = true, false, nil
			c.mu.Unlock()
			return
		}
	}
}

// writeLocked writes f under wmu (already held for the rest of a frame). Then the
// socket has no deadline again: the fan-out's non-blocking writes would fail on one
// that passed.
func (c *conn) writeLocked(f outFrame) error {
	if !f.locked {
		c.wmu.Lock()
	}
	defer c.wmu.Unlock()
	err := c.write(f)
	if err == nil {
		err = c.ws.NetConn().SetWriteDeadline(time.Time{})
	}
	return err
}

func (c *conn) write(f outFrame) error {
	cfg := &c.hub.cfg
	switch f.kind {
	case framePing:
		return c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait))
	case framePong:
		return c.ws.WriteControl(websocket.PongMessage, f.data, time.Now().Add(cfg.WriteWait))
	case frameClose:
		return c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(f.code, f.reason), time.Now().Add(closeGrace))
	}
	deadline := time.Now().Add(cfg.WriteWait)
	var err error
	if f.kind == frameUnicast {
		if err = c.ws.SetWriteDeadline(deadline); err == nil {
			err = c.ws.WriteMessage(websocket.TextMessage, f.data)
		}
	} else { // a ready frame, past gorilla: the socket's own deadline
		if err = c.ws.NetConn().SetWriteDeadline(deadline); err == nil {
			_, err = c.ws.NetConn().Write(f.data)
		}
		if err == nil && !f.at.IsZero() {
			c.hub.m.delay.Observe(time.Since(f.at).Seconds())
		}
	}
	if err == nil {
		c.hub.m.frames.Inc()
	}
	return err
}

// send queues this connection's own events as one frame.
func (c *conn) send(evs ...outEvent) {
	items := make([][]byte, len(evs))
	for i := range evs {
		items[i] = mustJSON(&evs[i])
	}
	c.push(outFrame{kind: frameUnicast, data: jsonArray(items)})
}

// reject answers a refused message with an error event; a client that keeps sending
// refused messages is closed with 1008.
func (c *conn) reject(code, message string) {
	c.refuse(outEvent{Code: code, Message: message})
}

// refuse is reject with more of the error event filled in (until, for muted).
func (c *conn) refuse(e outEvent) {
	c.hub.m.refused.WithLabelValues(e.Code).Inc()
	e.Type, e.At = evError, ms(time.Now())
	c.send(e)
	c.mu.Lock()
	if c.abuse == nil { // most connections never need one
		lim := c.hub.cfg.AbuseLimit
		c.abuse = rate.NewLimiter(rate.Every(time.Minute/time.Duration(lim)), lim)
	}
	abuse := c.abuse
	c.mu.Unlock()
	if !abuse.Allow() {
		c.closeAfterOwn(websocket.ClosePolicyViolation, "too many refused messages") // the refusals first
	}
}

// run joins the room, then reads the client's frames until the connection ends.
func (c *conn) run(since int64) {
	// The read limit is kept here, not by gorilla, which would write its 1009 close
	// itself, outside wmu, possibly into the middle of a frame.
	c.ws.SetReadLimit(0)
	c.extendRead()
	c.ws.SetPongHandler(func(string) error { c.extendRead(); return nil })
	// The reader never writes between the parts of a frame (wmu): a pong goes through
	// the queue, the echo of a close under wmu.
	c.ws.SetPingHandler(func(data string) error { c.queuePong([]byte(data)); return nil })
	c.ws.SetCloseHandler(func(code int, _ string) error {
		c.closeNow(code, "")
		return nil
	})
	joined := make(chan struct{})
	if !c.room.send(func(r *room) { r.join(c, since); close(joined) }) {
		c.end()
		return
	}
	select {
	case <-joined:
	case <-c.room.done:
		select {
		case <-joined:
		default: // the room stopped (Close) with the join still in its inbox: no one would close or ping c
			c.closeNow(websocket.CloseGoingAway, "server going away: reconnect")
			c.end()
			return
		}
	}
	c.read(false)
}

// queuePong answers a client's ping through the queue. One pong waits at most,
// answering the latest ping (RFC 6455 allows it): a client that pings and never reads
// cannot grow the queue.
func (c *conn) queuePong(data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.dead {
		return
	}
	for i := range c.queue {
		if c.queue[i].kind == framePong {
			c.queue[i].data = data
			return
		}
	}
	c.queue = append(c.queue, outFrame{kind: framePong, data: data})
	c.kickLocked()
}

// read reads client frames until the connection ends, or until every byte the
// client sent is consumed and the connection parks. resumed: a wake-up started this
// reader, so it reads before it may park again.
func (c *conn) read(resumed bool) {
	cfg := &c.hub.cfg
	for {
		if !resumed && c.br != nil && c.br.Buffered() == 0 && c.park() {
			return
		}
		resumed = false
		if c.skipControl() {
			continue
		}
		kind, r, err := c.ws.NextReader()
		if err != nil {
			c.end()
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, cfg.ReadLimit+1))
		if err != nil {
			c.end()
			return
		}
		if int64(len(data)) > cfg.ReadLimit {
			c.closeNow(websocket.CloseMessageTooBig, "message too big")
			c.end()
			return
		}
		c.extendRead()
		if kind != websocket.TextMessage {
			c.reject(codeBadRequest, "frames must be text (JSON)")
			continue
		}
		if !c.handle(data) {
			c.end()
			return
		}
	}
}

// closeNow writes a close frame from the reader, under wmu (never inside a frame).
func (c *conn) closeNow(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeGrace))
}

// closeSocket closes the socket from outside the reader; a parked connection is woken
// so that a reader meets the closed socket and ends it.
func (c *conn) closeSocket() {
	c.ws.NetConn().Close()
	c.resume()
}

// end leaves the room, waits for the writer, closes the socket and releases the
// connection's slot: the last thing its last reader does.
func (c *conn) end() {
	c.room.send(func(r *room) { r.leave(c) })
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
	if p := c.hub.parker.Load(); p != nil {
		p.forget(c)
	}
	c.ws.NetConn().Close()
	c.writer.Wait()
	c.ws.Close()
	c.ticket.Release()
	c.hub.wg.Done()
}
