package app

import (
	"context"

	"github.com/liveroom/liveroom/gateway"
	"github.com/liveroom/liveroom/media"
)

// liveRelay hands media's live/ended announcements to chat in order on a goroutine of
// its own, so media never waits on a chat room (it announces while holding its
// publisher's lock, inside pion's callbacks).
type liveRelay struct {
	hook func(room string, live bool)
	ch   chan liveChange
	done chan struct{}
}

type liveChange struct {
	room string
	live bool
}

func newLiveRelay(hook func(room string, live bool)) *liveRelay {
	l := &liveRelay{hook: hook, ch: make(chan liveChange, 1024), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for c := range l.ch {
			if l.hook != nil {
				l.hook(c.room, c.live)
			}
		}
	}()
	return l
}

// SetLive queues the change; it blocks only if a thousand are already waiting.
func (l *liveRelay) SetLive(room string, live bool) { l.ch <- liveChange{room, live} }

// stop delivers what is queued, then ends the goroutine.
func (l *liveRelay) stop(context.Context) error {
	close(l.ch)
	<-l.done
	return nil
}

// wireMedia builds the media service (binding the WebRTC ports) and hands it to the
// gateway; it reports going live to chat and watch time to the tap.
func (a *App) wireMedia(deps *gateway.Deps) error {
	relay := newLiveRelay(a.liveHook)
	m, err := media.New(a.cfg.Media, media.Deps{
		Log: a.log.With("part", "media"), Registry: deps.Registry, Tap: a.pub, Live: relay,
	})
	if err != nil {
		relay.stop(context.Background())
		return err
	}
	deps.Media = m
	a.stops = append(a.stops, relay.stop, m.Close) // media stops first, then the relay drains
	return nil
}
