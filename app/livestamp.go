package app

import (
	"sync"

	"github.com/liveroom/liveroom/event"
)

// liveStamp sits in front of the tap and stamps each event of a room with the id of
// the room's current broadcast, learnt from media's live_start/live_end on the same
// tap. Chat knows whether a room is live but not media's id for the broadcast; with one
// id, chat presence and WHEP watching count toward the same "current live".
type liveStamp struct {
	next  event.Publisher
	mu    sync.RWMutex
	lives map[string]string // room → live id
}

func newLiveStamp(next event.Publisher) *liveStamp {
	return &liveStamp{next: next, lives: map[string]string{}}
}

// fromMedia reports whether media publishes events of type t: they carry media's own
// live id, which they keep (a player's stop may come after its live's end).
func fromMedia(t event.Type) bool {
	switch t {
	case event.WatchStart, event.WatchStop, event.Watch, event.LiveStart, event.LiveEnd:
		return true
	}
	return false
}

// Publish stamps ev and hands it on; it never blocks.
func (l *liveStamp) Publish(ev event.Event) bool {
	switch {
	case ev.Type == event.LiveStart && ev.Room != "":
		l.mu.Lock()
		l.lives[ev.Room] = ev.Live
		l.mu.Unlock()
	case ev.Type == event.LiveEnd && ev.Room != "":
		l.mu.Lock()
		if l.lives[ev.Room] == ev.Live {
			delete(l.lives, ev.Room)
		}
		l.mu.Unlock()
	case ev.Room != "":
		l.mu.RLock()
		if live, ok := l.lives[ev.Room]; ok {
			ev.Live = live // media's id wins over the one chat made up for the broadcast
		} else if !fromMedia(ev.Type) {
			// Chat learns of a live's end a little after the tap: its own id in the
			// meantime would open a presence and count a session in a live that
			// media never had.
			ev.Live = ""
		}
		l.mu.RUnlock()
	}
	return l.next.Publish(ev)
}

// current is the id of room's broadcast now, or "".
func (l *liveStamp) current(room string) string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lives[room]
}
