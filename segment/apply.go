package segment

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
)

// matches tells whether span s is the presence of (live, room): per live when the
// room is live, else per room.
func (s *Span) matches(live, room string) bool {
	at := s.at.pair()
	return at[0] == live && (live != "" || at[1] == room)
}

// applyTo folds one event into p at now (Unix ms, the engine's clock). It reports
// whether the event touched categories or orders (preference and value must then be
// recomputed).
func (e *Engine) applyTo(sh *shard, p *Profile, ev *event.Event, o *orderIn, now int64) (cats, ordered bool) {
	oldest := e.oldest(now) // the last day that has no bucket any more
	at := ev.At.UnixMilli()
	day := dayOf(at)
	// The room is kept (rooms, recent events), so it is interned, from the profile's
	// own list when it is there (no map lookup); the live is only compared and
	// numbered (placeOf copies it), so it is used as it came.
	room := p.knownRoom(ev.Room)
	if room == "" && ev.Room != "" {
		room = sh.intern(ev.Room)
		if len(p.Rooms.get()) < maxRooms {
			// A first visit: the new list is shared with the shard's viewers who were
			// in the same rooms too, as the first one was (a private copy per viewer
			// took memory and a cache miss per event).
			var buf [maxRooms]string
			p.Rooms = packedOf(sh.sharedList(append(append(buf[:0], p.Rooms.get()...), room)))
		}
	}
	live := ev.Live
	p.seen(at)
	// A DM from staff carries the sender's name. The same name is not taken again: the
	// event's string would replace the compaction's copy (compact.go).
	if ev.Name != "" && !staffRole(ev.Role) && ev.Name != p.Name {
		p.Name = ev.Name
	}
	detail := room
	interaction := false
	code := typeCode(ev.Type)
	switch code {
	case codeJoin, codeWatchStart:
		p.visit(at)
		if live != "" {
			p.liveSession(live, room, at, oldest)
		}
		e.openSpan(sh, p, live, room, at, code == codeWatchStart)
		if code == codeJoin && ev.SKU != "" {
			detail = clip(room+" pinned "+ev.SKU+" "+ev.Text, 80) // what they saw as they came in
		}
	case codeLeave, codeWatchStop:
		p.visit(at)
		e.closeSpan(sh, p, live, room, at, oldest, code == codeWatchStop)
	case codeWatch:
		p.visit(at)
		if live != "" && p.touchSpan(live, room, at) {
			break // a heartbeat of a presence already counted
		}
		ms := int64(ev.Seconds * 1000)
		p.addWatch(at-ms, at, oldest)
		if live != "" {
			if s := p.liveSession(live, room, at-ms, oldest); s != nil {
				s.addWatch(ms)
			}
		} else {
			p.Sessions++
			if b := p.bucket(dayOf(at-ms), oldest); b != nil {
				b.Sessions = sat16(uint32(b.Sessions) + 1)
			}
		}
		var buf [24]byte
		detail = string(append(strconv.AppendInt(buf[:0], ms/1000, 10), 's'))
	case codeDanmaku:
		p.Comments++
		interaction = true
		detail = clip(ev.Text, 80)
	case codeLike:
		p.Likes += uint32(max(ev.Count, 1))
		interaction = true
	case codeGift:
		p.Gifts += uint32(max(ev.Count, 1))
		if v, err := e.toBase(ev.Value, ev.Currency); err == nil { // in the base currency, as spend
			p.GiftValue = p.GiftValue.add(v)
		}
		interaction = true
		detail = ev.Gift
	case codeProductClick:
		c := e.categoryFor(ev.Category, ev.SKU)
		p.Clicks = packedOf(addCount(p.Clicks.get(), c, 1))
		p.addCat(day, e.oldestCat(now), c, 1)
		interaction, cats = true, true
		detail = ev.SKU
	case codeDM:
		if ev.Role != event.RoleViewer {
			e.texts.wipeRecent(p.remember(newRecent(at, code, "from "+ev.Peer)))
			return false, false
		}
		interaction = true
	case codeConsent:
		if ev.Consent != nil {
			v := *ev.Consent
			// Stamped no later than now: an answer imported with a time ahead (a shop's
			// clock, a time zone) must not hide the next one an agent records now.
			p.answer(consentOf(v), min(at, now))
			detail = strconv.FormatBool(v)
		}
	case codeOrder:
		if o != nil {
			e.applyOrder(p, o, at, oldest, e.oldestCat(now))
			cats, ordered = true, true
			detail = o.id + " " + o.base.String() + " " + e.cfg.Currency
		}
	}
	if interaction {
		p.Interactions++
		if b := p.bucket(day, oldest); b != nil {
			b.Interactions++
		}
		if live != "" {
			p.liveSession(live, room, at, oldest)
		}
		p.touchSpan(live, room, at) // a presence in the room between lives too
	}
	e.texts.wipeRecent(p.remember(newRecent(at, code, detail)))
	return cats, ordered
}

// applyOrder folds a parsed order into p; oldest and oldestCat are the last days with
// no bucket and no category count any more.
func (e *Engine) applyOrder(p *Profile, o *orderIn, at int64, oldest, oldestCat int32) {
	p.visit(at)
	p.Orders++
	p.Spend = p.Spend.add(o.base)
	p.addOrderTime(at)
	buy := p.buyer()
	// Each id takes a byte at least: only a list that long is counted (a scan).
	if old := buy.OrderIDs; len(old) < maxOrders || old.count() < maxOrders {
		buy.OrderIDs = old.add(o.id)
		e.texts.wipeReplaced(old, buy.OrderIDs) // it may be in a chunk others keep (compact.go)
	}
	if b := p.bucket(dayOf(at), oldest); b != nil {
		b.Orders = sat16(uint32(b.Orders) + 1)
		b.Spend = b.Spend.add(o.base)
	}
	for _, it := range o.items {
		c, n := e.categoryFor(it.category, it.sku), sat32(uint64(max(it.quantity, 1)))
		buy.Bought = packedOf(addCount(buy.Bought.get(), c, n))
		p.addCat(dayOf(at), oldestCat, c, n)
	}
}

// categoryFor numbers cat, or when it is empty the catalog's category of sku. A
// category that reads like a price band (from a pin in chat: the import refuses them)
// counts as none.
func (e *Engine) categoryFor(cat, sku string) category {
	if cat == "" || priceBandWord(cat) {
		cat = e.catalog.category(sku)
	}
	return categoryOf(cat)
}

// openSpan starts (or joins) the viewer's presence in a live or room with one more
// connection, a WHEP player's when player.
func (e *Engine) openSpan(sh *shard, p *Profile, live, room string, at int64, player bool) {
	players := int16(0)
	if player {
		players = 1
	}
	p.enter(sh, live, room, at, 1, players)
}

// enter adds refs connections (players of them WHEP players) to p's presence in a
// live or room, opening it at at when there is none.
func (p *Profile) enter(sh *shard, live, room string, at int64, refs, players int16) {
	if i := p.openIndex(live, room); i >= 0 {
		p.Open.get()[i].add(Span{Refs: refs, Players: players, Start: at, Last: at})
		return
	}
	// Nearly every open presence is a viewer's only one: its array holds one span.
	open := append(p.Open.get(), Span{at: placeOf(live, room), Start: at, Last: at, Refs: refs, Players: players})
	p.Open = packedOf(open)
	if len(open) == 1 { // with more, p is in the set already
		sh.open[p] = struct{}{}
	}
}

// openIndex is the index of p's presence in a live or (live "") room, -1 if none.
func (p *Profile) openIndex(live, room string) int {
	open := p.Open.get()
	for i := range open {
		if open[i].matches(live, room) {
			return i
		}
	}
	return -1
}

// add puts o's connections and times into s, one presence of the same place.
func (s *Span) add(o Span) {
	s.Refs = min(s.Refs, math.MaxInt16-o.Refs) + o.Refs
	s.Players = min(s.Players, math.MaxInt16-o.Players) + o.Players
	s.Start = min(s.Start, o.Start)
	s.Last = max(s.Last, o.Last)
}

// closeSpan ends one connection of a presence, a WHEP player's when player; the last
// one credits the watch time.
func (e *Engine) closeSpan(sh *shard, p *Profile, live, room string, at int64, oldest int32, player bool) {
	i := p.openIndex(live, room)
	if i < 0 && !player && live != "" {
		// A chat leave stamped with a live that has ended (chat learns of the end a
		// little after segment): its connection went on in the room (endLive).
		i = p.openIndex("", room)
	}
	if i < 0 {
		return
	}
	s := &p.Open.get()[i]
	s.Last = max(s.Last, at)
	if player && s.Players > 0 {
		s.Players--
	}
	if s.Refs--; s.Refs > 0 {
		s.Players = min(s.Players, s.Refs) // mis-stamped events must not leave more players than connections
		return
	}
	p.endSpan(i, at, oldest)
	if len(p.Open.get()) == 0 {
		delete(sh.open, p)
	}
}

// endSpan credits span i up to end and removes it.
func (p *Profile) endSpan(i int, end int64, oldest int32) {
	open := p.Open.get()
	s := open[i]
	end = max(end, s.Start)
	p.addWatch(s.Start, end, oldest)
	if live := s.Live(); live != "" {
		lives := p.Lives.get()
		for j := range lives {
			if lives[j].Live() == live {
				lives[j].addWatch(end - s.Start)
			}
		}
	}
	p.Open = packedOf(append(open[:i], open[i+1:]...))
	if len(open) == 1 {
		p.Open = packed[Span]{} // most viewers have no open presence: do not keep the array
	}
}

// touchSpan notes activity in an open presence; it reports whether one is open.
func (p *Profile) touchSpan(live, room string, at int64) bool {
	i := p.openIndex(live, room)
	if i >= 0 {
		s := &p.Open.get()[i]
		s.Last = max(s.Last, at)
	}
	return i >= 0
}

// closeStale ends presences with no event since before cutoff (vanished clients),
// counting them up to their last event.
func (p *Profile) closeStale(cutoff int64, oldest int32) bool {
	changed := false
	for i := len(p.Open.get()) - 1; i >= 0; i-- {
		if s := p.Open.get()[i]; s.Last < cutoff {
			p.endSpan(i, s.Last, oldest)
			changed = true
		}
	}
	return changed
}

// clip cuts s to n characters, marking the cut with "…". Without a copy when it fits:
// a conversion to runes allocated for every comment longer than 32 bytes (60 bytes an
// event of the bench's live traffic with comments of a real length).
func clip(s string, n int) string {
	if len(s) <= n {
		return s // n bytes or fewer are n characters or fewer
	}
	chars := 0
	for i := range s {
		if chars == n {
			return s[:i] + "…"
		}
		chars++
	}
	return s
}

// cutBytes cuts s to at most n bytes, at the start of a character.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
