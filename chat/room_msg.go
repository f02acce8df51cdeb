package chat

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
)

// message applies one validated client message (role already checked).
func (r *room) message(c *conn, m clientMsg) {
	now := time.Now()
	if r.users[c.user.ID] == nil { // the connection left (or was dropped: banned) while its message was queued
		return
	}
	lim := r.limitsOf(c.user.ID)
	from := c.user
	switch m.Type {
	case msgDanmaku:
		r.danmaku(c, lim, m, now)
	case msgLike:
		if !r.allow(c, &lim.like, r.hub.cfg.LikeRate, int(r.hub.cfg.LikeRate)) {
			return
		}
		r.likes += int64(m.Count)
		r.newLikes += m.Count
		r.dirty = true
		r.arm()
		r.publish(event.Event{Type: event.Like, Count: m.Count}, from)
	case msgGift:
		g, ok := r.hub.gifts[m.Gift]
		if !ok {
			c.reject(codeUnknownGift, fmt.Sprintf("gift %q is not in the catalog", clip(m.Gift, 32)))
			return
		}
		if !r.allow(c, &lim.gift, r.hub.cfg.GiftRate, int(r.hub.cfg.GiftRate)) {
			return
		}
		value := money(g.Value * float64(m.Count))
		total := money(r.giftValue[g.Currency] + value)
		r.giftValue[g.Currency] = total
		r.dirty = true
		r.emit(outEvent{Type: evGift, At: ms(now), From: &from, Gift: g.ID, Name: g.Name, Count: m.Count,
			Value: value, Currency: g.Currency, Animation: g.Animation, GiftTotal: &total})
		r.publish(event.Event{ID: r.seqID(r.seq), Type: event.Gift, Gift: g.ID, Count: m.Count, Value: value, Currency: g.Currency}, from)
	case msgProductClick:
		if !r.allow(c, &lim.click, clickRate, clickBurst) {
			return
		}
		e := event.Event{Type: event.ProductClick, SKU: m.SKU}
		if r.pinned != nil && r.pinned.SKU == m.SKU {
			e.Category = r.pinned.Category
		}
		r.publish(e, from)
	case msgDM:
		if !r.allow(c, &lim.dm, r.hub.cfg.DMRate, int(r.hub.cfg.DMRate)) {
			return
		}
		if _, err := r.dm(from, m.To, m.Text, m.ID, now); err != nil {
			c.reject(err.Code, err.Message)
		}
	case msgDelete:
		e := r.hist.find(m.Seq)
		if e == nil || e.typ != evDanmaku {
			c.reject(codeBadRequest, fmt.Sprintf("seq %d is not a danmaku in the room's history", m.Seq))
			return
		}
		if !e.deleted {
			e.deleted = true
			r.emit(outEvent{Type: evDeleted, At: ms(now), From: &from, Target: m.Seq})
		}
	case msgSlow:
		r.slow = m.For
		r.emit(outEvent{Type: evNotice, At: ms(now), From: &from, Action: msgSlow, Slow: ptr(m.For.Milliseconds())})
	case msgPin:
		r.pinned = m.Product
		r.save() // a pin is rare and must survive a restart
		r.emit(outEvent{Type: evPin, At: ms(now), From: &from, Product: m.Product})
		if p := m.Product; p != nil {
			r.publish(event.Event{ID: r.seqID(r.seq), Type: event.Pin, SKU: p.SKU, Category: p.Category,
				Text: p.Title, Value: p.Price, Currency: p.Currency}, from)
		}
	}
}

func (r *room) danmaku(c *conn, lim *userLimits, m clientMsg, now time.Time) {
	if s, ok := r.sanction(SanctionMute, c.user.ID, now); ok {
		c.refuse(outEvent{Code: codeMuted, Message: "you are muted until " + s.Until.UTC().Format(time.RFC3339), Until: ms(s.Until)})
		return
	}
	if r.slow > 0 && c.user.Role == event.RoleViewer {
		if wait := r.slow - now.Sub(lim.lastDanmaku); wait > 0 {
			c.reject(codeRateLimited, fmt.Sprintf("slow mode: one message every %s; wait %s", r.slow, wait.Round(100*time.Millisecond)))
			return
		}
	}
	if !r.allow(c, &lim.danmaku, r.hub.cfg.DanmakuRate, r.hub.cfg.DanmakuBurst) {
		return
	}
	text, blocked := r.hub.filter.apply(m.Text)
	if blocked {
		c.reject(codeBlocked, "the message holds a blocked word")
		return
	}
	lim.lastDanmaku = now
	from := c.user
	r.emit(outEvent{Type: evDanmaku, At: ms(now), From: &from, ID: m.ID, Text: text})
	r.publish(event.Event{ID: r.seqID(r.seq), Type: event.Danmaku, Text: text}, from)
}

// dm delivers a private message to the addressee(s) and the sender's other tabs,
// records it and puts it on the tap. Agents (and admins, and the system) write to a
// viewer named in to; a viewer writes to the named agent, else to the agent who wrote
// last, else to every agent in the room. A connection gets it only under the role in
// which its user takes part (a user may hold connections of two roles): a viewer's
// DM reaches its agents' agent and admin connections, and the sender's copies its
// connections of the role it wrote with.
func (r *room) dm(from event.User, to, text, id string, now time.Time) (DM, *frameError) {
	var viewer string
	var targets []*conn
	if from.Role == event.RoleViewer {
		viewer = from.ID
		if to == "" {
			if last := r.lastAgent[viewer]; isAgent(r.users[last]) {
				to = last // else that agent left: the room's agents get it
			}
		} else if to != r.lastAgent[viewer] && !isAgent(r.users[to]) {
			return DM{}, &frameError{Code: codeForbidden, Message: "a viewer may write only to the room's agents"}
		}
		if to == "" {
			targets = agentConns(targets, r.order)
		} else if m := r.users[to]; m != nil {
			targets = agentConns(targets, m.conns)
		}
	} else {
		if to == "" {
			return DM{}, badRequest("to: the viewer's id is required")
		}
		if to == from.ID {
			return DM{}, badRequest("to: you cannot write to yourself")
		}
		viewer = to
		if agentRole(from.Role) {
			r.lastAgent[viewer] = from.ID // a system sender is nobody a viewer can answer
		}
		if m := r.users[to]; m != nil {
			targets = append(targets, m.conns...)
		}
	}
	if id == "" {
		id = r.hub.eventID()
	}
	d := DM{ID: id, At: now, From: from, To: to, Viewer: viewer, Text: text}
	f := outFrame{kind: frameUnicast, data: jsonArray([][]byte{mustJSON(&outEvent{
		Type: evDM, At: ms(now), From: &d.From, To: &to, ID: id, Text: text,
	})})}
	if self := r.users[from.ID]; self != nil {
		for _, c := range self.conns {
			if c.user.Role == from.Role {
				targets = append(targets, c)
			}
		}
	}
	sent := map[*conn]bool{}
	for _, c := range targets {
		if !sent[c] {
			sent[c] = true
			c.push(f)
		}
	}
	r.hub.m.out.WithLabelValues(evDM).Inc()
	r.hub.persistDM(r.id, d)
	if m := r.users[viewer]; m != nil && !m.hasRole(event.RoleViewer) {
		return d, nil // between staff (an agent to the host): no viewer's conversation to tap
	}
	peer := to
	if viewer != from.ID {
		peer = from.ID
	}
	r.publish(event.Event{Type: event.DM, Viewer: viewer, Peer: peer, Text: text}, from)
	return d, nil
}

// agentRole reports whether a connection of role gets agent-only frames (prompts,
// viewers' DMs).
func agentRole(role string) bool { return role == event.RoleAgent || role == event.RoleAdmin }

// isAgent reports whether m has a connection of an agent role.
func isAgent(m *member) bool { return m.hasRole(event.RoleAgent, event.RoleAdmin) }

// agentConns appends the connections of cs that have an agent role to to.
func agentConns(to, cs []*conn) []*conn {
	for _, c := range cs {
		if agentRole(c.user.Role) {
			to = append(to, c)
		}
	}
	return to
}

// applySanction enforces a mute or ban that is already durable and announces it.
func (r *room) applySanction(by event.User, s Sanction) {
	k := sanctionKey(s)
	action := s.Kind
	if s.Lift {
		delete(r.sanctions, k)
		action = "un" + s.Kind
	} else {
		r.sanctions[k] = s
	}
	ev := outEvent{Type: evNotice, At: ms(time.Now()), From: &by, Action: action, User: s.User}
	if !s.Lift && !s.Until.IsZero() {
		ev.Until = ms(s.Until)
	}
	r.emit(ev)
	if s.Kind == SanctionBan && !s.Lift {
		if m := r.users[s.User]; m != nil {
			// Out of the room at once: a full socket holds the close up to closeGrace,
			// and nothing the user sends after the notice may reach the room meanwhile.
			for _, c := range slices.Clone(m.conns) {
				r.drop(c, websocket.ClosePolicyViolation, "banned")
			}
		}
	}
}

// isBanned reports whether user is banned now.
func (r *room) isBanned(user string) bool {
	_, ok := r.sanction(SanctionBan, user, time.Now())
	return ok
}

// deliverPrompts pushes the prompts gathered since the last call to every agent
// connection, as frames of at most maxMerged bytes.
func (r *room) deliverPrompts() {
	r.promptMu.Lock()
	items := r.prompts
	r.prompts = nil
	r.promptMu.Unlock()
	for len(items) > 0 {
		n, size := 0, 2
		for n < len(items) && (n == 0 || size+len(items[n])+1 <= maxMerged) {
			size += len(items[n]) + 1
			n++
		}
		r.toAgents(outFrame{kind: frameUnicast, data: jsonArray(items[:n])})
		r.hub.m.out.WithLabelValues(evPrompt).Add(float64(n))
		items = items[n:]
	}
}

// money rounds an amount to a millionth of its unit: the sums of float values stay
// free of binary noise (3 × 0.1 is 0.3, not 0.30000000000000004) while keeping
// three-decimal currencies (BHD, KWD) and fractional-cent gifts exact.
func money(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// toAgents queues f on every agent and admin connection of the room (not on a viewer
// connection of a user who is also an agent).
func (r *room) toAgents(f outFrame) {
	for _, c := range r.order {
		if agentRole(c.user.Role) {
			c.push(f)
		}
	}
}

// eraseUser takes user out of the room's history (GDPR erasure). Its danmaku and gifts
// become tombstones under the same seqs (a resume still sees every seq once), also in
// the batch not yet sent, and a `deleted` event tells connected clients to take those
// they saw off their screens; what it did as a moderator (deletions, notices, pins)
// keeps its meaning without its name, and notices naming it lose the name.
func (r *room) eraseUser(user string) {
	now := time.Now()
	var visible []uint64
	swap := map[*byte][]byte{}   // unflushed raw -> its replacement in r.pending
	for v := range r.lastAgent { // who wrote to the viewer last is of its conversation
		if sameViewer(v, user) {
			delete(r.lastAgent, v)
		}
	}
	for i := r.hist.head; i < len(r.hist.items); i++ {
		e := &r.hist.items[i]
		byUser, aboutUser := e.user != "" && sameViewer(e.user, user), e.about != "" && sameViewer(e.about, user)
		if !byUser && !aboutUser {
			continue
		}
		old := e.raw
		switch {
		case byUser && (e.typ == evDanmaku || e.typ == evGift):
			if !e.deleted && e.seq <= r.flushed {
				visible = append(visible, e.seq)
			}
			e.raw = mustJSON(&outEvent{Type: evDeleted, Seq: e.seq, At: ms(e.at), Target: e.seq})
			e.typ, e.deleted, e.user, e.about = evDeleted, true, "", ""
		default: // deleted/notice/pin the user made, or a notice naming it: keep the meaning
			var ev outEvent
			if err := json.Unmarshal(e.raw, &ev); err != nil {
				continue
			}
			if byUser {
				ev.From, e.user = nil, ""
			}
			if aboutUser { // the other id stays, for its own erasure
				ev.User, e.about = "", ""
			}
			e.raw = mustJSON(&ev)
		}
		if len(old) > 0 && e.seq > r.flushed {
			swap[&old[0]] = e.raw
		}
	}
	for i, raw := range r.pending {
		if n, ok := swap[&raw[0]]; ok {
			r.pending[i] = n
		}
	}
	for _, seq := range visible {
		r.emit(outEvent{Type: evDeleted, At: ms(now), Target: seq})
		r.hist.items[len(r.hist.items)-1].deleted = true // replayed on resume, not in welcomes
	}
}

// setLive records the live state and announces it as a room event.
func (r *room) setLive(live bool, liveID string) {
	if r.live == live {
		return
	}
	r.live, r.liveID = live, liveID
	r.emit(outEvent{Type: evLive, At: ms(time.Now()), Live: ptr(live)})
}
