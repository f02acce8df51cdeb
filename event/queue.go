package event

import (
	"context"
	"sync"
	"sync/atomic"
)

// Queue is a bounded tap: Publish never blocks the publisher (chat, media); when the
// consumer falls behind, events are dropped and counted instead.
//
// It holds its events in chunks taken as the backlog grows and given back as it
// drains, not in one buffer of its full size: a tap is nearly always empty, and a
// 65,536-event buffer (about 19 MiB) kept for nothing would double the collector's
// heap goal of a small node and so the memory its garbage may take.
type Queue struct {
	mu         sync.Mutex
	head, tail *chunk // events are taken from head and added at tail
	spare      *chunk // emptied chunks kept for reuse, linked by next (see take)
	spares     int    // chunks in spare
	inUse      int    // chunks linked from head to tail
	peak, last int    // the most chunks in use since the queue last drained, and before that
	n, size    int
	ready      chan struct{} // holds a token while events may be waiting
	dropped    atomic.Uint64
	sent       atomic.Uint64
}

// chunkLen is how many events a chunk holds (≈ 75 KiB).
const chunkLen = BlockLen

// BlockLen is how many events a Block holds: a chunk's.
const BlockLen = 256

// Block is a consumer's buffer of a chunk's size, which SwapFull trades for a full
// chunk's events.
type Block [BlockLen]Event

// keepSpares is how many emptied chunks a drained queue keeps at least (≈ 300 KiB): a
// consumer that takes a burst at a time (the segment engine's subscribers get up to
// four tag changes per event) would otherwise drain its queue after each burst and
// leave the burst's chunks to the collector, hundreds of megabytes a minute under
// load. A queue whose last two bursts both needed more keeps as many as the smaller
// of them did: bursts that recur are served from spares, while one large burst (a
// stall) does not leave its chunks kept for good. The chunks a queue lets go wait in
// chunkPool, so that the next burst of any queue takes them rather than new ones,
// until the collector empties the pool.
const keepSpares = 4

// chunkPool holds emptied chunks (their slots zero) that queues let go. A subscriber
// of every event whose bursts vary (a node's rules, on a busy core) otherwise left
// about 60 bytes of garbage per event in chunks allocated and dropped again, which
// doubled the segment engine's garbage (docs/benchmarks.md, twenty-second session).
var chunkPool = sync.Pool{New: func() any { return &chunk{ev: new(Block)} }}

type chunk struct {
	ev   *Block // by pointer, so that SwapFull can hand it over
	r, w int    // next to take, next to fill
	next *chunk
}

// NewQueue returns a queue holding up to size events (at least 1).
func NewQueue(size int) *Queue {
	return &Queue{size: max(size, 1), ready: make(chan struct{}, 1)}
}

// Publish offers e to the consumer and reports whether it was taken.
func (q *Queue) Publish(e Event) bool {
	q.mu.Lock()
	if q.n == q.size {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	q.put(&e)
	q.mu.Unlock()
	q.sent.Add(1)
	q.signal()
	return true
}

// PublishAll offers the events in order, as a Publish of each would, under one hold
// of the lock and with one wake-up (a lock, two atomic adds and a channel operation
// per event otherwise). It returns how many it took: the first ones; the rest found
// the queue full and were dropped and counted.
func (q *Queue) PublishAll(evs []*Event) int {
	if len(evs) == 0 {
		return 0
	}
	q.mu.Lock()
	n := min(len(evs), q.size-q.n)
	for _, e := range evs[:n] {
		q.put(e)
	}
	q.mu.Unlock()
	if n < len(evs) {
		q.dropped.Add(uint64(len(evs) - n))
	}
	if n > 0 {
		q.sent.Add(uint64(n))
		q.signal()
	}
	return n
}

// put adds a copy of *e at the tail, taking a chunk when the tail's is full; q.mu is
// held and the queue is not full.
func (q *Queue) put(e *Event) {
	if q.tail == nil || q.tail.w == chunkLen {
		c := q.spare
		if c != nil {
			q.spare, c.next = c.next, nil
			q.spares--
		} else {
			c = chunkPool.Get().(*chunk)
		}
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
		q.inUse++
		q.peak = max(q.peak, q.inUse)
	}
	q.tail.ev[q.tail.w] = *e
	q.tail.w++
	q.n++
}

// TryNext takes the oldest event, if there is one, without waiting.
func (q *Queue) TryNext() (Event, bool) {
	e, _, ok := q.take()
	return e, ok
}

// take takes the oldest event, and says how many are left.
func (q *Queue) take() (e Event, left int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ok = q.moveOldest(&e)
	return e, q.n, ok
}

// TryNextBatch moves up to len(dst) of the oldest events into dst, in order, under
// one lock, and says how many it moved (0 when none wait). A consumer that takes
// events in batches saves a lock and two copies of each event (a few hundred bytes).
func (q *Queue) TryNextBatch(dst []Event) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < len(dst) && q.moveOldest(&dst[n]) {
		n++
	}
	return n
}

// moveOldest moves the oldest event into *dst and reports whether there was one;
// q.mu is held.
func (q *Queue) moveOldest(dst *Event) bool {
	if q.n == 0 {
		return false
	}
	c := q.head
	*dst = c.ev[c.r]
	c.ev[c.r] = Event{} // let its strings go
	c.r++
	q.n--
	if c.r == c.w && (c.w == chunkLen || q.n == 0) {
		q.release(c)
	}
	return true
}

// release unlinks the head chunk c, drained, and keeps it as a spare; q.mu is held.
// While a backlog lasts the publisher refills the chunks the consumer empties, so they
// are reused rather than allocated, zeroed and scanned anew; once the queue is empty,
// keepSpares are kept for the next burst and the rest go to chunkPool.
func (q *Queue) release(c *chunk) {
	q.head = c.next
	if q.head == nil {
		q.tail = nil
	}
	q.inUse--
	c.r, c.w = 0, 0 // its slots were cleared as they were taken
	c.next = q.spare
	q.spare = c
	q.spares++
	if q.n == 0 {
		keep := max(keepSpares, min(q.peak, q.last))
		q.last, q.peak = q.peak, 0
		if q.spares > keep {
			last := q.spare
			for range keep - 1 {
				last = last.next
			}
			for c := last.next; c != nil; {
				next := c.next
				c.next = nil
				chunkPool.Put(c)
				c = next
			}
			last.next = nil
			q.spares = keep
		}
	}
}

// SwapFull takes the oldest chunk's events without copying them, when that chunk is
// full and none of its events has been taken yet: *b gets the chunk's events and the
// chunk gets *b's array (a new one when *b is nil), whose events must all be zero (the
// consumer clears what it took: a spare chunk would keep their strings alive). It
// reports whether it swapped. A consumer taking events as fast as they come finds no
// full chunk and takes them with TryNextBatch; under a backlog, moving each event out
// and clearing it twice took about a twentieth of the segment engine's time.
func (q *Queue) SwapFull(b **Block) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.head
	if c == nil || c.r != 0 || c.w != chunkLen {
		return false
	}
	if *b == nil {
		*b = new(Block) // a chunk without an array would fail the next publisher
	}
	c.ev, *b = *b, c.ev
	q.n -= chunkLen
	q.release(c)
	return true
}

// Next waits for the next event or for ctx to end; once ctx has ended it returns
// its error, even while events wait (a consumer that stops must not work through the
// backlog: drain with TryNext instead).
func (q *Queue) Next(ctx context.Context) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	for {
		if e, left, ok := q.take(); ok {
			if left > 0 {
				q.signal() // the token was taken for this event: leave one for the rest
			}
			return e, nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// signal leaves the wake-up token, unless one is there already.
func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Len is how many events wait.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Dropped is how many events were refused because the queue was full.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Published is how many events were accepted.
func (q *Queue) Published() uint64 { return q.sent.Load() }

// Source is how a consumer reads a queue: Next waits, TryNext does not.
type Source interface {
	Next(ctx context.Context) (Event, error)
	TryNext() (Event, bool)
}

// BatchSource is a Source that can also hand over what waits in batches (Queue is one).
type BatchSource interface {
	Source
	TryNextBatch(dst []Event) int
}

var _ BatchSource = (*Queue)(nil)

// BlockSource is a BatchSource that can also hand over a full block of waiting events
// without copying them (Queue is one).
type BlockSource interface {
	BatchSource
	SwapFull(b **Block) bool
}

var _ BlockSource = (*Queue)(nil)

// Publisher is what chat and media need from the tap.
type Publisher interface {
	Publish(Event) bool
}

var _ Publisher = (*Queue)(nil)

// BatchPublisher is a Publisher that can also take several events at once, in order
// (Queue is one).
type BatchPublisher interface {
	Publisher
	PublishAll(evs []*Event) int
}

var _ BatchPublisher = (*Queue)(nil)

// Discard is a Publisher that drops everything (no consumer wired).
type Discard struct{}

// Publish drops e.
func (Discard) Publish(Event) bool { return false }
