package segment

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveroom/liveroom/event"
)

// gatedPublisher holds each Publish until its gate opens.
type gatedPublisher struct {
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedPublisher) Publish(event.Event) bool {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return true
}

// watchedPublisher notes an event that reaches it after its subscription's cancel
// returned.
type watchedPublisher struct{ cancelled, late atomic.Bool }

func (w *watchedPublisher) Publish(event.Event) bool {
	if w.cancelled.Load() {
		w.late.Store(true)
	}
	return true
}

// Once a cancel returns, nothing more reaches its subscriber, though a publish that
// took the list of subscribers before was still under way (held here by a slow
// subscriber ahead of it): the rules drain their queue after the cancel at a stop.
func TestNothingArrivesAfterCancelReturns(t *testing.T) {
	e := newEngine(t, nil, &clock{t: t0})
	slow := &gatedPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	defer e.Subscribe(slow)()
	watched := &watchedPublisher{}
	cancel := e.Subscribe(watched)
	applied := make(chan struct{})
	go func() {
		e.Apply(ev(event.Like, "v", t0))
		close(applied)
	}()
	<-slow.entered // the publish is under way, the watched subscriber still to come
	cancelled := make(chan struct{})
	go func() {
		cancel()
		watched.cancelled.Store(true)
		close(cancelled)
	}()
	select { // a cancel that does not wait returns at once
	case <-cancelled:
	case <-time.After(200 * time.Millisecond):
	}
	close(slow.gate)
	<-applied
	<-cancelled
	if watched.late.Load() {
		t.Fatal("an event reached the subscriber after its cancel returned")
	}
}
