package event

import (
	"context"
	"sync/atomic"
)

// Queue is a bounded tap: Publish never blocks the publisher (chat, media); when the
// consumer falls behind, events are dropped and counted instead.
type Queue struct {
	ch      chan Event
	dropped atomic.Uint64
	sent    atomic.Uint64
}

// NewQueue returns a queue holding up to size events (at least 1).
func NewQueue(size int) *Queue {
	if size < 1 {
		size = 1
	}
	return &Queue{ch: make(chan Event, size)}
}

// Publish offers e to the consumer and reports whether it was taken.
func (q *Queue) Publish(e Event) bool {
	select {
	case q.ch <- e:
		q.sent.Add(1)
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// Next waits for the next event or for ctx to end.
func (q *Queue) Next(ctx context.Context) (Event, error) {
	select {
	case e := <-q.ch:
		return e, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// C exposes the receive side for consumers that select on several sources.
func (q *Queue) C() <-chan Event { return q.ch }

// Dropped is how many events were refused because the queue was full.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Published is how many events were accepted.
func (q *Queue) Published() uint64 { return q.sent.Load() }

// Publisher is what chat and media need from the tap.
type Publisher interface {
	Publish(Event) bool
}

var _ Publisher = (*Queue)(nil)

// Discard is a Publisher that drops everything (no consumer wired).
type Discard struct{}

// Publish drops e.
func (Discard) Publish(Event) bool { return false }
