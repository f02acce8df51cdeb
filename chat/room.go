package chat

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
)

// seqBlock is how many seqs a room reserves in the store at a time: one durable write
// per block keeps seq strictly increasing across restarts.
const seqBlock = 1000

// room is one live room. Its goroutine (run) owns every field below the line; other
// goroutines hand it work through inbox and never touch its state.
type room struct {
	id    string
	hub   *Hub
	inbox chan func(*room)
	done  chan struct{} // closed when run returns
	refs  int           // holders (tickets, calls); guarded by hub.mu

	// --- owned by run ---
	conns     map[*conn]int // → index in order
	order     []*conn       // every connection, in a stable order: each is written once per cycle at the same place
	users     map[string]*member
	limits    map[string]*userLimits // by user id: outlives the member (limits.go)
	lastSweep time.Time              // of limits
	viewers   int                    // distinct users with a viewer-role connection
	seq       uint64
	ceiling   uint64
	flushed   uint64 // every seq ≤ flushed is in the log
	hist      history
	likes     int64
	giftValue map[string]float64 // per currency, saved with the likes
	newLikes  int
	lastLikes time.Time // when the last likes event went out
	pinned    *Product
	live      bool
	liveID    string
	slow      time.Duration
	sanctions map[string]Sanction // sanctionKey → sanction
	lastAgent map[string]string   // viewer → agent who wrote to them last

	promptMu sync.Mutex
	prompts  [][]byte // encoded prompts waiting for deliverPrompts (guarded by promptMu)

	pending    [][]byte // encoded room events not yet in the log (the next flush)
	pendingAt  time.Time
	armed      bool
	flushTimer *time.Timer

	// The room's log (fanout.go): tail is its newest batch (the workers follow the
	// connections' cursors, never this); a cycle is running while cycling, and cycled
	// is the tail it started from; pingDue asks the next cycle to ping every connection.
	tail    *batch
	cycling bool
	cycled  *batch
	pingDue bool
	// cycleStart is when the last cycle began; the next waits on cycleTimer until
	// FrameInterval after it (cycleArmed).
	cycleStart time.Time
	cycleEnd   chan struct{} // the last worker of a cycle reports here
	cycleTimer *time.Timer
	cycleArmed bool

	sentViewers  int
	lastPresence time.Time
	lastPing     time.Time
	lastSave     time.Time
	dirty        bool // likes or gift totals changed since the last save
	emptySince   time.Time
}

// member is one user present in the room with one or more connections. Each
// connection has its own token's role; user is the first connection's.
type member struct {
	user  event.User
	conns []*conn // a user rarely has more than a few tabs
}

func newRoom(h *Hub, id string) *room {
	cfg := &h.cfg
	return &room{
		id: id, hub: h,
		inbox:     make(chan func(*room), 256),
		cycleEnd:  make(chan struct{}, 1),
		done:      make(chan struct{}),
		conns:     map[*conn]int{},
		users:     map[string]*member{},
		limits:    map[string]*userLimits{},
		sanctions: map[string]Sanction{},
		lastAgent: map[string]string{},
		giftValue: map[string]float64{},
		slow:      cfg.SlowMode,
		hist:      history{keep: cfg.History, max: cfg.HistoryMax, age: cfg.HistoryAge},
		tail:      &batch{},
	}
}

// send hands fn to the room goroutine; false when the room has stopped.
func (r *room) send(fn func(*room)) bool {
	select {
	case r.inbox <- fn:
		return true
	case <-r.done:
		return false
	}
}

// call runs fn on the room goroutine and waits for it.
func (r *room) call(ctx context.Context, fn func(*room)) error {
	fin := make(chan struct{})
	if !r.send(func(r *room) { fn(r); close(fin) }) {
		return ErrUnavailable
	}
	select {
	case <-fin:
		return nil
	case <-r.done:
		return ErrUnavailable
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run loads the room's durable state and serves it until the hub closes or the room
// has been empty for RoomIdle and its last event is older than HistoryAge (its
// history goes with it).
func (r *room) run() {
	defer close(r.done)
	h := r.hub
	log := h.log.With("room", r.id)
	r.load()
	r.live, r.liveID = h.liveState(r.id)
	r.flushTimer = time.NewTimer(time.Hour)
	r.flushTimer.Stop()
	r.cycleTimer = time.NewTimer(time.Hour)
	r.cycleTimer.Stop()
	tick := time.NewTicker(min(h.cfg.PresenceInterval, time.Second))
	defer tick.Stop()
	now := time.Now()
	r.emptySince, r.lastPing, r.lastSave = now, now, now
	for {
		select {
		case fn := <-r.inbox:
			fn(r)
		case <-r.flushTimer.C:
			r.armed = false
			r.flush()
		case <-r.cycleTimer.C:
			r.cycleArmed = false
			r.fanOut()
		case <-r.cycleEnd:
			r.cycleDone()
		case now := <-tick.C:
			r.housekeep(now)
			if len(r.conns) == 0 && now.Sub(r.emptySince) >= h.cfg.RoomIdle && len(r.inbox) == 0 && !r.hist.fresh(now) {
				r.save()
				if h.unload(r) {
					return
				}
			}
		case <-h.quit:
			r.flush()
			for c := range r.conns {
				c.close(websocket.CloseGoingAway, "server going away: reconnect")
			}
			r.save()
			log.Debug("chat room stopped", "seq", r.seq)
			return
		}
	}
}

func (r *room) load() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := r.hub.store.LoadRoom(ctx, r.id)
	if err != nil {
		r.hub.log.Error("chat: loading room state failed; starting empty", "room", r.id, "err", err)
	}
	r.likes, r.pinned = rec.Likes, rec.Pin
	maps.Copy(r.giftValue, rec.GiftValue)
	r.seq, r.ceiling, r.flushed = rec.SeqCeiling, rec.SeqCeiling, rec.SeqCeiling
	now := time.Now()
	for _, s := range rec.Sanctions {
		if s.Active(now) {
			r.sanctions[sanctionKey(s)] = s
		}
	}
}

// save writes the likes and gift totals, pin and seq ceiling.
func (r *room) save() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := RoomRecord{Likes: r.likes, GiftValue: r.giftValue, Pin: r.pinned, SeqCeiling: r.ceiling}
	if err := r.hub.store.SaveRoom(ctx, r.id, rec); err != nil {
		r.hub.log.Error("chat: saving room state failed", "room", r.id, "err", err)
		// Tried again at the room's next tick a second on (a pin, a seq block that
		// nothing else would save: a restart would hand out those seqs again).
		r.dirty, r.lastSave = true, time.Now()
		return
	}
	r.dirty = false
	r.lastSave = time.Now()
}

// nextSeq hands out the next seq, reserving a new block durably when the last is used up.
func (r *room) nextSeq() uint64 {
	r.seq++
	if r.seq > r.ceiling {
		r.ceiling = r.seq + seqBlock - 1
		r.save()
	}
	return r.seq
}

// emit gives ev the next seq, keeps it in the history and queues it for the flush.
func (r *room) emit(ev outEvent) {
	ev.Seq = r.nextSeq()
	raw := mustJSON(&ev)
	at := time.UnixMilli(ev.At)
	e := entry{seq: ev.Seq, at: at, typ: ev.Type, raw: raw}
	if ev.From != nil {
		e.user = ev.From.ID
	}
	e.about = ev.User
	r.hist.add(e)
	r.hub.m.out.WithLabelValues(ev.Type).Inc()
	r.queue(raw, at)
}

// queue adds an encoded event to the next flush.
func (r *room) queue(raw []byte, at time.Time) {
	if len(r.pending) == 0 {
		r.pendingAt = at
	}
	r.pending = append(r.pending, raw)
	r.arm()
}

func (r *room) arm() {
	if !r.armed {
		r.armed = true
		r.flushTimer.Reset(r.hub.cfg.FlushInterval)
	}
}

// flush appends what accumulated since the last tick to the room's log as one batch
// and has the connections pull it (fanout.go).
func (r *room) flush() {
	// Likes are summed over a frame interval, not a flush: a storm of taps costs each
	// connection one likes event per frame, and the history one seq per interval.
	if now := time.Now(); r.newLikes > 0 && now.Sub(r.lastLikes) >= r.hub.cfg.FrameInterval {
		r.emit(outEvent{Type: evLikes, At: ms(now), Count: r.newLikes, Total: ptr(r.likes)})
		r.newLikes, r.lastLikes = 0, now
	} else if r.newLikes > 0 {
		r.arm() // they go with a later flush
	}
	if len(r.pending) > 0 {
		b := &batch{items: r.pending, at: r.pendingAt}
		for _, it := range b.items {
			b.size += len(it)
		}
		r.pending = nil // the batch owns the slice now
		r.tail.next.Store(b)
		r.tail = b
	}
	r.flushed = r.seq
	r.fanOut()
}

// fanOut starts a cycle over the connections if there is something to send and none
// is running; a running one is followed by another when it ends (cycleDone).
func (r *room) fanOut() {
	if r.cycling || r.cycleArmed || len(r.conns) == 0 || (r.tail == r.cycled && !r.pingDue) {
		return
	}
	// Cycles are spaced by FrameInterval, however often the room flushes: each frame
	// costs a write on both ends, and fewer, fuller frames cost less to send and read.
	if wait := r.hub.cfg.FrameInterval - time.Since(r.cycleStart); wait > 0 {
		r.cycleArmed = true
		r.cycleTimer.Reset(wait)
		return
	}
	r.cycleStart = time.Now()
	// The same order every cycle: a connection is written at the same point of each,
	// so its frames are a cycle apart, not anywhere from nothing to two cycles.
	cy := &cycle{room: r, conns: slices.Clone(r.order), ping: r.pingDue}
	r.cycling, r.cycled, r.pingDue = true, r.tail, false
	r.hub.fan.start(cy)
}

// cycleDone is called when a cycle has visited every connection.
func (r *room) cycleDone() {
	r.hub.m.cycle.Observe(time.Since(r.cycleStart).Seconds())
	r.cycling = false
	r.fanOut()
}

// presenceHeartbeat × PresenceInterval (20 s by default) is the longest a connected
// room goes without a presence event.
const presenceHeartbeat = 10

// housekeep runs on the room's ticker: presence, pings, saving likes, history age.
func (r *room) housekeep(now time.Time) {
	cfg := &r.hub.cfg
	// When the count changed, at most every PresenceInterval, and every
	// presenceHeartbeat intervals all the same while anyone is connected.
	since := now.Sub(r.lastPresence)
	if (r.viewers != r.sentViewers && since >= cfg.PresenceInterval) ||
		(len(r.conns) > 0 && since >= presenceHeartbeat*cfg.PresenceInterval) {
		r.sentViewers, r.lastPresence = r.viewers, now
		raw := mustJSON(&outEvent{Type: evPresence, At: ms(now), Viewers: ptr(r.viewers)})
		r.hub.m.out.WithLabelValues(evPresence).Inc()
		r.queue(raw, now)
	}
	if now.Sub(r.lastPing) >= cfg.PingInterval {
		r.lastPing = now
		r.pingDue = true
		r.fanOut()
	}
	if r.dirty && now.Sub(r.lastSave) >= time.Second {
		r.save()
	}
	r.hist.trim(now)
	if now.Sub(r.lastSweep) >= limitSweep {
		r.lastSweep = now
		r.sweepLimits(now)
	}
}

// join admits c: the welcome (with recent history, or the replay after since) is
// queued before c receives any live frame, so nothing is missed or repeated.
func (r *room) join(c *conn, since int64) {
	now := time.Now()
	if _, ok := r.sanction(SanctionBan, c.user.ID, now); ok {
		c.close(websocket.ClosePolicyViolation, "banned")
		return
	}
	c.mu.Lock()
	c.cursor = r.tail // what was flushed is in the welcome; the rest follows
	c.mu.Unlock()
	r.addConn(c)
	r.hub.m.conns.Inc()
	m := r.users[c.user.ID]
	if m == nil {
		m = &member{user: c.user}
		r.users[c.user.ID] = m
		join := event.Event{Type: event.Join}
		if p := r.pinned; p != nil {
			join.SKU, join.Text = p.SKU, p.Title // what was pinned when they came in
		}
		r.publish(join, c.user)
	}
	// A user may connect with tokens of two roles (a host with a viewer tab): it is a
	// viewer while one of its connections is.
	if c.user.Role == event.RoleViewer && !m.hasRole(event.RoleViewer) {
		r.viewers++
	}
	m.conns = append(m.conns, c)

	var evs []outEvent
	var replay [][]byte
	switch {
	case since < 0:
		evs = append(evs, r.welcome(c, now, true))
	case r.canResume(uint64(since)):
		evs = append(evs, r.welcome(c, now, false))
		replay = r.hist.after(uint64(since), r.flushed)
	default:
		evs = append(evs, outEvent{Type: evReset, At: ms(now)}, r.welcome(c, now, true))
	}
	items := make([][]byte, 0, len(evs)+len(replay))
	for i := range evs {
		items = append(items, mustJSON(&evs[i]))
	}
	c.push(outFrame{kind: frameUnicast, data: jsonArray(append(items, replay...))})
}

// canResume reports whether every room event after since is still in the history.
func (r *room) canResume(since uint64) bool {
	if since > r.flushed {
		return false
	}
	oldest := r.hist.oldest()
	return since == r.flushed || (oldest != 0 && since >= oldest-1)
}

func (r *room) welcome(c *conn, now time.Time, withHistory bool) outEvent {
	st := &roomState{
		ID: r.id, Live: r.live, Viewers: r.viewers, Pinned: r.pinned,
		Likes: r.likes, GiftValue: maps.Clone(r.giftValue), Seq: r.flushed, SlowMs: r.slow.Milliseconds(), Gifts: r.hub.cfg.Gifts,
	}
	if s, ok := r.sanction(SanctionMute, c.user.ID, now); ok {
		st.MutedUntil = ms(s.Until)
	}
	u := c.user
	ev := outEvent{Type: evWelcome, At: ms(now), You: &u, Room: st}
	hist := []json.RawMessage{} // on a resume the replay follows instead
	if withHistory {
		if h := r.hist.recent(r.hub.cfg.WelcomeHistory, r.flushed); h != nil {
			hist = h
		}
	}
	ev.History = &hist
	return ev
}

// drop closes c and takes it out of the room now, not when its close is done: its
// user leaves with its last connection, and what it still sends is not applied.
func (r *room) drop(c *conn, code int, reason string) {
	c.close(code, reason)
	r.leave(c)
}

func (r *room) leave(c *conn) {
	if !r.removeConn(c) {
		return
	}
	r.hub.m.conns.Dec()
	if len(r.conns) == 0 {
		r.emptySince = time.Now()
	}
	m := r.users[c.user.ID]
	m.conns = slices.DeleteFunc(m.conns, func(x *conn) bool { return x == c })
	if c.user.Role == event.RoleViewer && !m.hasRole(event.RoleViewer) {
		r.viewers--
	}
	if len(m.conns) == 0 {
		delete(r.users, c.user.ID)
		r.publish(event.Event{Type: event.Leave}, m.user) // as it joined
	}
}

// hasRole reports whether one of m's connections has one of roles (m may be nil).
func (m *member) hasRole(roles ...string) bool {
	return m != nil && slices.ContainsFunc(m.conns, func(c *conn) bool { return slices.Contains(roles, c.user.Role) })
}

// addConn puts c last in the order of the cycles.
func (r *room) addConn(c *conn) {
	r.conns[c] = len(r.order)
	r.order = append(r.order, c)
}

// removeConn takes c out; the last connection takes its place in the order (one
// connection moves, the others keep theirs). false: c was not in the room.
func (r *room) removeConn(c *conn) bool {
	i, ok := r.conns[c]
	if !ok {
		return false
	}
	last := r.order[len(r.order)-1]
	r.order[i], r.conns[last] = last, i
	r.order[len(r.order)-1] = nil
	r.order = r.order[:len(r.order)-1]
	delete(r.conns, c)
	return true
}

// sanction returns the user's active sanction of kind, forgetting an expired one.
func (r *room) sanction(kind, user string, now time.Time) (Sanction, bool) {
	k := sanctionKey(Sanction{Kind: kind, User: user})
	s, ok := r.sanctions[k]
	if ok && !s.Active(now) {
		delete(r.sanctions, k)
		return Sanction{}, false
	}
	return s, ok
}

// publish puts e on the tap with the room, the user and a unique id filled in.
func (r *room) publish(e event.Event, u event.User) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.ID == "" {
		e.ID = r.hub.eventID()
	}
	if e.Viewer == "" {
		e.Viewer = u.ID
	}
	e.Name, e.Role, e.Room = u.Name, u.Role, r.id
	if r.live {
		e.Live = r.liveID
	}
	r.hub.publish(e)
}

// seqID is the tap id of an event that has a room seq: unique across restarts.
func (r *room) seqID(seq uint64) string { return r.id + ":" + strconv.FormatUint(seq, 10) }
