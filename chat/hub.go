package chat

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
)

// DMKeep is how many messages of each conversation are kept.
const DMKeep = 100

// Deps are what the hub needs from outside.
type Deps struct {
	// Store keeps durable state (required; use NewMemoryStore in tests).
	Store Store
	// Tap receives every interaction (nil: discarded).
	Tap event.Publisher
	// Registry receives chat's metrics (nil: a private registry).
	Registry *prometheus.Registry
	Log      *slog.Logger
}

// Hub is the chat service: it owns the rooms and the connections.
type Hub struct {
	cfg    Config
	store  Store
	tap    event.Publisher
	log    *slog.Logger
	m      *metrics
	gifts  map[string]Gift
	filter *keywordFilter
	boot   string
	nextID atomic.Uint64

	mu     sync.Mutex
	closed bool
	rooms  map[string]*room
	addrs  map[string]int
	live   map[string]string // live room → live id
	quit   chan struct{}
	wg     sync.WaitGroup // rooms, connections and fan-out workers
	fan    *fanout
	// parker is made at the first park (parkerOnce): nil when it cannot be made, and
	// then connections keep their readers.
	parker     atomic.Pointer[parker]
	parkerOnce sync.Once

	dmq    chan dmWrite
	dmDone chan struct{}
	// convs lists each room's recent conversations; the DM writer keeps it.
	convs *conversationIndex
}

type dmWrite struct {
	room string
	dm   DM
	// erase, with done, is an erasure of a viewer's conversations, queued behind the
	// DMs already waiting so that none of them is written after it.
	erase []string
	done  chan error
}

// New builds a hub; Close stops it.
func New(cfg Config, deps Deps) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, errors.New("chat: a store is required")
	}
	if deps.Tap == nil {
		deps.Tap = event.Discard{}
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	filter, err := newKeywordFilter(cfg.Keywords, cfg.KeywordAction)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	h := &Hub{
		cfg: cfg, store: deps.Store, tap: deps.Tap, log: deps.Log, m: m, filter: filter,
		gifts: map[string]Gift{}, boot: hex.EncodeToString(b),
		rooms: map[string]*room{}, addrs: map[string]int{}, live: map[string]string{},
		quit: make(chan struct{}), dmq: make(chan dmWrite, 4096), dmDone: make(chan struct{}),
		convs: newConversationIndex(),
	}
	for _, g := range cfg.Gifts {
		h.gifts[g.ID] = g
	}
	h.fan = newFanout(h.quit, &h.wg)
	go h.writeDMs()
	return h, nil
}

// Gifts returns the gift catalog.
func (h *Hub) Gifts() []Gift { return append([]Gift(nil), h.cfg.Gifts...) }

// Ticket is an admitted, not yet upgraded, connection. Accept or Release it.
type Ticket struct {
	hub  *Hub
	room *room
	user event.User
	addr string
	once sync.Once
}

// Admit checks that user may open a connection to room from addr: it refuses a banned
// user (403) and an address past its cap (429), and reserves the slot. Call it before
// upgrading so refusals are plain HTTP answers.
func (h *Hub) Admit(ctx context.Context, roomID string, user event.User, addr string) (*Ticket, error) {
	h.mu.Lock()
	if h.cfg.ConnsPerAddr > 0 && h.addrs[addr] >= h.cfg.ConnsPerAddr {
		h.mu.Unlock()
		h.m.refused.WithLabelValues("too_many_connections").Inc()
		return nil, ErrTooManyConns
	}
	r, err := h.acquireLocked(roomID)
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	h.addrs[addr]++
	h.mu.Unlock()
	t := &Ticket{hub: h, room: r, user: user, addr: addr}
	var banned bool
	if err := r.call(ctx, func(r *room) { banned = r.isBanned(user.ID) }); err != nil {
		t.Release()
		return nil, err
	}
	if banned {
		t.Release()
		h.m.refused.WithLabelValues("banned").Inc()
		return nil, ErrBanned
	}
	return t, nil
}

// serve runs the upgraded connection ws in the background, reading through br
// (gorilla's read buffer; nil: it never parks).
func (t *Ticket) serve(ws *websocket.Conn, br *bufio.Reader, since int64) {
	h := t.hub
	c := &conn{hub: h, room: t.room, ticket: t, ws: ws, br: br, user: t.user, parkID: h.nextID.Add(1)}
	if sc, ok := ws.NetConn().(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	h.mu.Lock()
	if !h.closed {
		h.wg.Add(1) // done when the connection ends (conn.end)
		h.mu.Unlock()
		go c.run(since)
		return
	}
	h.mu.Unlock()
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server going away"), time.Now().Add(closeGrace))
	ws.Close()
	t.Release()
}

// Release gives the ticket's slot back; Serve does it when the connection ends.
func (t *Ticket) Release() {
	t.once.Do(func() {
		h := t.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.addrs[t.addr]--; h.addrs[t.addr] <= 0 {
			delete(h.addrs, t.addr)
		}
		t.room.refs--
	})
}

// acquireLocked returns the room, starting it if needed, with one more holder.
func (h *Hub) acquireLocked(id string) (*room, error) {
	if h.closed {
		return nil, ErrUnavailable
	}
	r := h.rooms[id]
	if r == nil {
		r = newRoom(h, id)
		h.rooms[id] = r
		h.m.rooms.Inc()
		h.wg.Go(r.run)
	}
	r.refs++
	return r, nil
}

// withRoom runs fn on the room's goroutine, loading the room if needed.
func (h *Hub) withRoom(ctx context.Context, id string, fn func(*room)) error {
	r, release, err := h.hold(id)
	if err != nil {
		return err
	}
	defer release()
	return r.call(ctx, fn)
}

// hold loads the room if needed and keeps it loaded until release.
func (h *Hub) hold(id string) (*room, func(), error) {
	h.mu.Lock()
	r, err := h.acquireLocked(id)
	h.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return r, func() {
		h.mu.Lock()
		r.refs--
		h.mu.Unlock()
	}, nil
}

// unload removes an idle room unless someone holds it; true means it is gone.
func (h *Hub) unload(r *room) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.refs > 0 || h.closed {
		return false
	}
	delete(h.rooms, r.id)
	h.m.rooms.Dec()
	return true
}

func (h *Hub) liveState(id string) (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	liveID, ok := h.live[id]
	return ok, liveID
}

// SetLive tells the room that its broadcast started or ended: the room announces a
// `live` event and new welcomes carry the state. Media calls it through app.
func (h *Hub) SetLive(roomID string, live bool) {
	liveID := ""
	h.mu.Lock()
	if live {
		liveID = roomID + "-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
		h.live[roomID] = liveID
	} else {
		delete(h.live, roomID)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.withRoom(ctx, roomID, func(r *room) { r.setLive(live, liveID) }); err != nil && !errors.Is(err, ErrClosed) {
		h.log.Warn("chat: announcing live state failed", "room", roomID, "live", live, "err", err)
	}
}

// Prompt hands a prompt to the room for its connected agents and returns without
// waiting for the room goroutine: a wave of viewers crossing the stay threshold
// together must not queue behind it one prompt at a time. The prompt is encoded here;
// the room pushes every prompt that has gathered to each agent connection in one go.
func (h *Hub) Prompt(ctx context.Context, roomID string, p Prompt) error {
	return h.SendEncodedPrompt(ctx, roomID, EncodePrompt(p, time.Now()))
}

// EncodedPrompt is a prompt event encoded ahead of its sending.
type EncodedPrompt struct{ item []byte }

// EncodePrompt encodes p's event stamped at, for SendEncodedPrompt: a prompt made
// ready ahead of the moment it is for costs no encoding then.
func EncodePrompt(p Prompt, at time.Time) EncodedPrompt {
	return EncodedPrompt{appendPromptEvent(make([]byte, 0, 512), ms(at), &p)}
}

// JSON is the encoded event.
func (e EncodedPrompt) JSON() []byte { return e.item }

// SendEncodedPrompt is Prompt for an event encoded by EncodePrompt.
func (h *Hub) SendEncodedPrompt(_ context.Context, roomID string, e EncodedPrompt) error {
	if len(e.item) == 0 {
		return errors.New("chat: empty encoded prompt")
	}
	item := e.item
	r, release, err := h.hold(roomID)
	if err != nil {
		return err
	}
	defer release()
	r.promptMu.Lock()
	first := len(r.prompts) == 0
	r.prompts = append(r.prompts, item)
	r.promptMu.Unlock()
	if first && !r.send(func(r *room) { r.deliverPrompts() }) {
		return ErrUnavailable
	}
	return nil
}

// PromptUpdate is a prompt's new state: claimed by an agent, or resolved.
type PromptUpdate struct {
	PromptID  string
	ClaimedBy string
	Resolved  bool
}

// PromptChanged tells the room's agents that a prompt was claimed or resolved (a
// `prompt_update` event), so that every console shows it at once and no second agent
// writes to a viewer someone already took.
func (h *Hub) PromptChanged(_ context.Context, roomID string, u PromptUpdate) error {
	r, release, err := h.hold(roomID)
	if err != nil {
		return err
	}
	defer release()
	raw := mustJSON(&outEvent{Type: evPromptUpdate, At: ms(time.Now()), PromptID: u.PromptID, ClaimedBy: u.ClaimedBy, Resolved: &u.Resolved})
	if !r.send(func(r *room) {
		r.toAgents(outFrame{kind: frameUnicast, data: jsonArray([][]byte{raw})})
		r.hub.m.out.WithLabelValues(evPromptUpdate).Inc()
	}) {
		return ErrUnavailable
	}
	return nil
}

// SendDM sends a private message from an agent or the system (from) to the viewer to,
// exactly as if an agent had written it on its connection.
func (h *Hub) SendDM(ctx context.Context, roomID string, from event.User, to, text string) (DM, error) {
	clean, ferr := cleanText(&text, maxDMRunes)
	if ferr != nil {
		return DM{}, ErrBadText
	}
	if from.Role == event.RoleViewer || from.ID == "" {
		return DM{}, problem.New(problem.BadRequest, "a DM on behalf of someone needs an agent or system sender")
	}
	var d DM
	var fe *frameError
	err := h.withRoom(ctx, roomID, func(r *room) { d, fe = r.dm(from, to, clean, "", time.Now()) })
	if err != nil {
		return DM{}, err
	}
	if fe != nil {
		return DM{}, problem.New(problem.BadRequest, "%s", fe.Message)
	}
	return d, nil
}

// DMHistory returns the last DMKeep messages between the room's agents and viewer.
func (h *Hub) DMHistory(ctx context.Context, roomID, viewer string) ([]DM, error) {
	msgs, err := h.store.DMs(ctx, roomID, viewer)
	if err != nil {
		return nil, problem.Wrap(problem.Unavailable, err, "chat history is unavailable")
	}
	if msgs == nil {
		msgs = []DM{}
	}
	return msgs, nil
}

// ViewerDMs returns every conversation kept with viewer, by room (GDPR access).
func (h *Hub) ViewerDMs(ctx context.Context, viewer string) (map[string][]DM, error) {
	out, err := h.store.ViewerDMs(ctx, viewer)
	if err != nil {
		return nil, problem.Wrap(problem.Unavailable, err, "chat history is unavailable")
	}
	return out, nil
}

// EraseViewer removes every conversation kept with each of viewers (the ids of one
// person) and what they said in the history of every loaded room (GDPR erasure). The
// conversations go through the DM writer's queue, after the DMs already waiting to be
// written.
func (h *Hub) EraseViewer(ctx context.Context, viewers ...string) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrUnavailable
	}
	h.wg.Add(1) // Close closes the queue only after this
	loaded := slices.Collect(maps.Keys(h.rooms))
	h.mu.Unlock()
	defer h.wg.Done()
	for _, id := range loaded {
		err := h.withRoom(ctx, id, func(r *room) {
			for _, v := range viewers {
				r.eraseUser(v)
			}
		})
		if err != nil {
			return err
		}
	}
	done := make(chan error, 1)
	select {
	case h.dmq <- dmWrite{erase: viewers, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		if err != nil {
			return problem.Wrap(problem.Unavailable, err, "could not erase the chat history; retry")
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// persistDM queues d for the DM history; the writer keeps conversation order. The DM
// itself is already delivered; when 4,096 writes are waiting (the store is failing) the
// room does not wait: the write is dropped and counted (drops{reason="dm_history"}), and
// the writer's errors are logged.
func (h *Hub) persistDM(room string, d DM) {
	select {
	case h.dmq <- dmWrite{room: room, dm: d}:
	default:
		h.m.drops.WithLabelValues("dm_history").Inc()
	}
}

// dmBatch bounds the DMs written in one transaction: the queue behind the first,
// taken at once, so that a burst (a rule writing to thousands of viewers) costs an
// fsync per batch, not per message, and does not overflow the queue.
const dmBatch = 512

func (h *Hub) writeDMs() {
	defer close(h.dmDone)
	batch := make([]RoomDM, 0, dmBatch)
	for w := range h.dmq {
		if w.done != nil {
			h.eraseDMs(w)
			continue
		}
		batch = append(batch[:0], RoomDM{w.room, w.dm})
		var erase *dmWrite // an erasure queued behind the batch: written after it
	more:
		for len(batch) < dmBatch {
			select {
			case x, ok := <-h.dmq:
				switch {
				case !ok:
					break more
				case x.done != nil:
					erase = &x
					break more
				}
				batch = append(batch, RoomDM{x.room, x.dm})
			default:
				break more
			}
		}
		h.saveDMs(batch)
		if erase != nil {
			h.eraseDMs(*erase)
		}
	}
}

func (h *Hub) saveDMs(batch []RoomDM) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.store.AppendDMs(ctx, batch, DMKeep); err != nil {
		h.log.Error("chat: saving DMs failed", "dms", len(batch), "room", batch[0].Room, "err", err)
		return
	}
	for _, d := range batch {
		h.convs.note(d.Room, d.DM)
	}
}

func (h *Hub) eraseDMs(w dmWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.store.EraseViewer(ctx, w.erase...)
	h.convs.erase(w.erase) // even if the store failed: the list shows no erased viewer
	w.done <- err
}

// publish puts e on the tap, counting a refusal.
func (h *Hub) publish(e event.Event) {
	if !h.tap.Publish(e) {
		h.m.drops.WithLabelValues("tap").Inc()
	}
}

// eventID is unique for this process (random boot prefix + counter).
func (h *Hub) eventID() string {
	return "c" + h.boot + "-" + strconv.FormatUint(h.nextID.Add(1), 36)
}

// Close tells every client to reconnect elsewhere (1001), saves every room and waits
// for every goroutine, then for the queued DMs to be written.
// Disconnect tells every client to reconnect elsewhere (1001) and lets its user
// leave the room (a leave on the tap, so its time in the room is kept), at the start
// of a node's stop. The rooms keep running until Close: a DM or a prompt the rules
// still send goes into the history, as to anyone offline.
func (h *Hub) Disconnect(ctx context.Context) error {
	h.mu.Lock()
	loaded := slices.Collect(maps.Keys(h.rooms))
	h.mu.Unlock()
	var errs []error
	for _, id := range loaded {
		errs = append(errs, h.withRoom(ctx, id, func(r *room) {
			r.flush()
			for c := range r.conns {
				r.drop(c, websocket.CloseGoingAway, "server going away: reconnect")
			}
		}))
	}
	return errors.Join(errs...)
}

func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.quit)
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		if p := h.parker.Load(); p != nil {
			p.close()
		}
		close(h.dmq)
		<-h.dmDone
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
