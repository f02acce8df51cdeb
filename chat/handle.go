package chat

import (
	"context"
	"errors"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/liveroom/liveroom/event"
)

// An application ping answers with a write, so it is rate limited like anything else.
const (
	pingRate  = 2
	pingBurst = 10
)

var (
	everyone   = []string{event.RoleViewer, event.RoleHost, event.RoleAgent, event.RoleAdmin}
	viewers    = []string{event.RoleViewer}
	moderators = []string{event.RoleHost, event.RoleAgent, event.RoleAdmin}
)

// mayUse is the role matrix: which roles may send each client message.
var mayUse = map[string][]string{
	msgDanmaku:      everyone,
	msgLike:         viewers,
	msgGift:         viewers,
	msgProductClick: viewers,
	msgDM:           {event.RoleViewer, event.RoleAgent, event.RoleAdmin},
	msgMute:         moderators,
	msgUnmute:       moderators,
	msgBan:          moderators,
	msgUnban:        moderators,
	msgDelete:       moderators,
	msgSlow:         moderators,
	msgPin:          {event.RoleHost, event.RoleAdmin},
	msgPing:         everyone,
}

// handle decodes and routes one client frame on the reader goroutine. It returns false
// when the room is gone (the hub is closing).
func (c *conn) handle(data []byte) bool {
	m, err := decodeFrame(data)
	if err != nil {
		var fe *frameError
		errors.As(err, &fe)
		c.reject(fe.Code, fe.Message)
		return true
	}
	c.hub.m.in.WithLabelValues(m.Type).Inc()
	if !slices.Contains(mayUse[m.Type], c.user.Role) {
		c.reject(codeForbidden, "a "+c.user.Role+" may not send "+m.Type)
		return true
	}
	switch m.Type {
	case msgPing:
		if c.pings == nil { // only the reader touches it (one at a time: park.go)
			c.pings = rate.NewLimiter(pingRate, pingBurst)
		}
		if !c.pings.Allow() {
			c.reject(codeRateLimited, "at most 2 pings per second")
			return true
		}
		c.send(outEvent{Type: evPong, At: ms(time.Now())})
		return true
	case msgMute, msgBan, msgUnmute, msgUnban:
		return c.sanction(m)
	}
	return c.room.send(func(r *room) { r.message(c, m) })
}

// sanction makes a mute or ban durable before the room applies and announces it, so
// the moderator's acknowledgement (the notice) never precedes the write.
func (c *conn) sanction(m clientMsg) bool {
	if m.User == c.user.ID {
		c.reject(codeBadRequest, "you cannot "+m.Type+" yourself")
		return true
	}
	s := Sanction{User: m.User, Kind: SanctionMute}
	switch m.Type {
	case msgMute:
		d := m.For
		if d == 0 {
			d = c.hub.cfg.MuteFor
		}
		s.Until = time.Now().Add(d)
	case msgBan:
		s.Kind = SanctionBan
		if m.For > 0 {
			s.Until = time.Now().Add(m.For)
		}
	case msgUnmute:
		s.Lift = true
	case msgUnban:
		s.Kind, s.Lift = SanctionBan, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.cfg.WriteWait)
	defer cancel()
	if err := c.hub.store.SetSanction(ctx, c.room.id, s); err != nil {
		c.hub.log.Error("chat: saving a sanction failed", "room", c.room.id, "err", err)
		c.reject(codeUnavailable, "could not save the "+m.Type+"; try again")
		return true
	}
	return c.room.send(func(r *room) { r.applySanction(c.user, s) })
}
