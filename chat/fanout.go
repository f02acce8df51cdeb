package chat

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A room's events reach its connections by pull, not push. Each flush appends one
// immutable batch to the room's log; a cycle then visits every connection once, on a
// few fan-out workers, and writes it everything after its cursor up to the newest
// batch at that moment, in one frame, with a non-blocking write. So an event waits
// for at most one cycle, however long a cycle takes, and a cycle costs one write per
// connection: no goroutine is woken per connection and per flush. A connection that
// is busy (its writer goroutine is sending its own frames, or its socket was full) is
// skipped; its writer pulls the batches itself once done.

// batch is one flush of a room's events, encoded; next links the log.
type batch struct {
	items [][]byte  // JSON events, in seq order
	size  int       // bytes of items
	at    time.Time // when its oldest event happened
	next  atomic.Pointer[batch]
}

// pull appends to buf, as one text frame, what follows cursor up to the newest batch
// (one JSON array), and returns the new cursor and the time of the oldest event in it;
// buf is returned as it was when nothing follows.
func pull(cursor *batch, buf []byte) (out []byte, last *batch, oldest time.Time) {
	last, size := cursor, 1 // "[" … "]" with a comma between items: 1 + Σ(len+1)
	for b := cursor.next.Load(); b != nil; b = b.next.Load() {
		if len(b.items) > 0 && oldest.IsZero() {
			oldest = b.at
		}
		size += b.size + len(b.items)
		last = b
	}
	if oldest.IsZero() {
		return buf, last, oldest
	}
	buf = appendHeader(buf, opText, size)
	buf = append(buf, '[')
	for b := cursor.next.Load(); b != nil; b = b.next.Load() {
		for _, it := range b.items {
			buf = append(append(buf, it...), ',')
		}
		if b == last {
			break
		}
	}
	buf[len(buf)-1] = ']'
	return buf, last, oldest
}

// appendHeader appends the header of a final unmasked WebSocket frame of kind op
// whose payload is n bytes.
func appendHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

const (
	opText = 0x1
	opPing = 0x9
)

// errWouldBlock: the socket took part of a write or none of it.
var errWouldBlock = errors.New("socket full")

// sock is a fan-out worker's non-blocking write. Its write method, bound once per
// worker, is what a socket's RawConn calls: a closure made per write would be an
// allocation per delivery frame.
type sock struct {
	b       []byte
	written int
	err     error
	fn      func(fd uintptr) bool
}

func newSock() *sock {
	s := &sock{}
	s.fn = s.write
	return s
}

func (s *sock) write(fd uintptr) bool {
	for s.written < len(s.b) {
		n, err := syscall.Write(int(fd), s.b[s.written:])
		if n > 0 {
			s.written += n
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			s.err = errWouldBlock
		case err != nil:
			s.err = err
		case n <= 0:
			s.err = errWouldBlock
		}
		if s.err != nil {
			break
		}
	}
	return true // never wait for the socket: the writer goroutine does that
}

// writeNow writes b to c's socket through s without waiting: it returns how much the
// kernel took, and errWouldBlock when that is not all of it.
func (c *conn) writeNow(s *sock, b []byte) (int, error) {
	if c.raw == nil {
		return 0, errWouldBlock // not a socket (tests): the writer goroutine writes it
	}
	s.b, s.written, s.err = b, 0, nil
	err := c.raw.Write(s.fn)
	s.b = nil
	if err != nil {
		return s.written, err
	}
	return s.written, s.err
}

// cycle is one visit of a room's connections.
type cycle struct {
	room  *room
	conns []*conn
	ping  bool // also ping every connection
	left  atomic.Int32
}

// yieldEvery is how many connections a worker writes between yields (a few ms).
const yieldEvery = 128

// fanout runs cycles on a few workers: each takes every n-th connection of a cycle.
type fanout struct {
	jobs chan fanJob
	quit <-chan struct{}
}

type fanJob struct {
	c     *cycle
	part  int
	parts int
}

func newFanout(quit <-chan struct{}, wg *sync.WaitGroup) *fanout {
	f := &fanout{jobs: make(chan fanJob, 64), quit: quit}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var buf []byte
			s := newSock()
			for {
				select {
				case <-quit:
					return
				case j := <-f.jobs:
					buf = j.run(buf, s)
				}
			}
		})
	}
	return f
}

// start hands cy to the workers; the last part to finish tells the room.
func (f *fanout) start(cy *cycle) {
	parts := min(runtime.GOMAXPROCS(0), max(1, len(cy.conns)/64))
	cy.left.Store(int32(parts))
	for p := range parts {
		select {
		case f.jobs <- fanJob{c: cy, part: p, parts: parts}:
		case <-f.quit:
			return
		}
	}
}

func (j fanJob) run(buf []byte, s *sock) []byte {
	cy := j.c
	for i, k := j.part, 0; i < len(cy.conns); i, k = i+j.parts, k+1 {
		if k%yieldEvery == yieldEvery-1 {
			// Let the readers and the room in: a cycle takes a while. Go's poller is
			// not consulted while goroutines are runnable, so the parked sockets are
			// polled here, and the readers they wake run before this worker resumes.
			cy.room.hub.pollParked()
			runtime.Gosched()
		}
		buf = cy.conns[i].visit(cy.ping, buf[:0], s)
	}
	if cy.left.Add(-1) == 0 {
		// Never blocks (one cycle at a time, room for one): a worker waiting on a room's
		// full inbox while that room waits for a worker to take its next cycle would
		// hang both.
		cy.room.cycleEnd <- struct{}{}
	}
	return buf
}

// visit writes c what it has not been sent of the room (and a ping), unless its
// writer goroutine is busy, which then sends it all itself.
func (c *conn) visit(ping bool, buf []byte, s *sock) []byte {
	if ping {
		c.wakeIfSilent()
	}
	c.mu.Lock()
	if c.closing || c.dead || c.cursor == nil {
		c.mu.Unlock()
		return buf
	}
	if c.writing || len(c.queue) > 0 {
		// Its writer goroutine pulls the new batches itself before it ends.
		if ping {
			c.queue = append(c.queue, outFrame{kind: framePing})
		}
		c.checkLagLocked()
		c.mu.Unlock()
		return buf
	}
	buf, last, oldest := pull(c.cursor, buf)
	if oldest.IsZero() && !ping {
		c.cursor = last
		c.mu.Unlock()
		return buf
	}
	c.writing = true
	c.mu.Unlock()

	if ping {
		buf = appendHeader(buf, opPing, 0)
	}
	c.wmu.Lock()
	n, err := c.writeNow(s, buf)
	if !errors.Is(err, errWouldBlock) {
		c.wmu.Unlock()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.cursor = last
	if !oldest.IsZero() && n == len(buf) {
		c.hub.m.delay.Observe(time.Since(oldest).Seconds())
		c.hub.m.frames.Inc()
	}
	switch {
	case c.dead:
		c.writing = false // the reader has ended: finish closes the socket
		if errors.Is(err, errWouldBlock) {
			c.wmu.Unlock()
		}
	case n == len(buf):
		c.writing = false
		if len(c.queue) > 0 {
			c.writing = true
			c.writer.Go(c.writeLoop)
		}
	case errors.Is(err, errWouldBlock):
		// The rest must go before anything else: the writer goroutine takes over,
		// and wmu with it.
		c.queue = append([]outFrame{{kind: frameRaw, data: append([]byte(nil), buf[n:]...), at: oldest, locked: true}}, c.queue...)
		c.writer.Go(c.writeLoop)
	default:
		c.writing = false
		c.startCloseLocked(1011, "write failed", false)
	}
	return buf
}

// checkLagLocked closes c (busy writing) as too slow when the oldest room event it has
// not been sent is more than QueueFrames frame intervals old: the client resumes
// with since. A connection that keeps up is written every cycle, so its oldest unsent
// event is at most about one interval old.
func (c *conn) checkLagLocked() {
	if c.closing || c.cursor == nil {
		return
	}
	next := c.cursor.next.Load()
	for next != nil && len(next.items) == 0 {
		next = next.next.Load()
	}
	if next != nil && time.Since(next.at) > time.Duration(c.hub.cfg.QueueFrames)*c.hub.cfg.FrameInterval {
		c.hub.m.drops.WithLabelValues("slow_close").Inc()
		c.startCloseLocked(1013, "too slow: resume with since", false)
	}
}
