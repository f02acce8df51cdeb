package segment

import (
	"context"
	"slices"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Brief is what the rules need of a viewer, built without the figures and reasons of
// ViewerView: the rules take one for every event segment applies and for every timer
// that fires, so it must cost little (a ViewerView takes ~16 µs).
type Brief struct {
	ID, Name                   string
	Sessions, Orders           int
	Comments, Likes            int
	Watch                      time.Duration // lifetime, to the millisecond
	Spend, AOV                 Money
	LastOrder                  time.Time // zero: never ordered
	Consent                    *bool
	Activity, Value, Lifecycle string
	Preference                 []string
	// Live is the viewer's session in the live asked for (Live.Live empty when the
	// viewer has none in it); LiveComments counts the danmaku among the latest events
	// since it started.
	Live         LiveBrief
	LiveComments int
	// LastComment is the latest danmaku's text and LastSKU the latest clicked product,
	// among the latest events.
	LastComment, LastSKU string
	// LastRoom is the room of the viewer's latest live session, else the last room
	// it was first seen in ("" when none): where to reach a viewer whose event names
	// no room (an order from the shop).
	LastRoom string
}

// LiveBrief is a viewer's session in one live. Watch is to the millisecond: the stay
// rule's timer is set from it.
type LiveBrief struct {
	Live, Room string
	Start      time.Time
	Watch      time.Duration
	AsOf       time.Time // when Watch was measured
	Watching   bool
}

// Stamp is what Version tells of a profile: the stamp of its latest change, the id it
// is kept under (the one id leads to, after a merge) and its last clicked product.
type Stamp struct {
	Version uint64
	ID      string
	LastSKU string
}

// Version stamps id's profile: any event applied to it, a sweep's retagging or closing
// of a vanished presence, a live's end, a merge moves Version. Equal versions mean the
// profile id leads to has not changed in between (unless 2^20 changes of its shard did:
// see shardBits). false when id has no profile (erased).
func (e *Engine) Version(id string) (Stamp, bool) {
	sh, p := e.lookup(id, false)
	if p == nil {
		return Stamp{}, false
	}
	defer sh.mu.Unlock()
	return Stamp{Version: uint64(p.ver), ID: p.ID, LastSKU: p.lastClicked()}, true
}

// lastClicked is the latest product clicked among the latest events.
func (p *Profile) lastClicked() string {
	sku := ""
	var buf [maxRecent]Recent
	for _, r := range p.recentInOrder(&buf) { // oldest first: the latest wins
		if r.Type() == event.ProductClick {
			sku = r.detail()
		}
	}
	return sku
}

// Brief returns what the rules need of id, with its session in live (if any).
func (e *Engine) Brief(_ context.Context, id, live string) (Brief, error) {
	sh, p := e.lookup(id, false)
	if p == nil {
		return Brief{}, notFound(id)
	}
	defer sh.mu.Unlock()
	asOf := e.now()
	now := asOf.UnixMilli()
	b := Brief{ID: p.ID, Name: p.Name, Sessions: int(p.Sessions), Orders: int(p.Orders),
		Comments: int(p.Comments), Likes: int(p.Likes), Watch: time.Duration(p.WatchMs) * time.Millisecond,
		Spend: p.Spend, AOV: p.Spend.Div(int64(p.Orders)), Consent: p.Consent.get(),
		Activity: p.Tags.Activity.String(), Value: p.Tags.Value.String(), Lifecycle: p.Tags.Lifecycle.String(),
		Preference: slices.Clone(p.Tags.Preference.get()), LastSKU: p.lastClicked()}
	if p.LastOrder != 0 {
		b.LastOrder = msTime(p.LastOrder)
	}
	b.LastRoom = p.lastRoom()
	if live != "" {
		for _, l := range p.Lives.get() {
			if l.Live() != live {
				continue
			}
			b.Live = LiveBrief{Live: live, Room: l.Room(), Start: msTime(l.Start), AsOf: asOf,
				Watch: time.Duration(l.WatchMs()) * time.Millisecond}
			for _, s := range p.Open.get() {
				if s.Live() == live {
					b.Live.Watching = true
					b.Live.Watch += time.Duration(max(0, now-s.Start)) * time.Millisecond
				}
			}
		}
	}
	var buf [maxRecent]Recent
	for _, r := range p.recentInOrder(&buf) { // oldest first: the latest wins
		if r.Type() == event.Danmaku {
			b.LastComment = r.detail()
			if b.Live.Live != "" && r.At() >= b.Live.Start.UnixMilli() {
				b.LiveComments++
			}
		}
	}
	return b, nil
}

// lastRoom is the room of p's latest live session, else the last room p was first
// seen in, else "".
func (p *Profile) lastRoom() string {
	var latest *LiveSession
	for i, l := range p.Lives.get() {
		if latest == nil || l.Start > latest.Start {
			latest = &p.Lives.get()[i]
		}
	}
	if latest != nil {
		return latest.Room()
	}
	if rooms := p.Rooms.get(); len(rooms) > 0 {
		return rooms[len(rooms)-1]
	}
	return ""
}
