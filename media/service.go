package media

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
)

// LiveNotifier hears that a room went live or ended (chat turns it into a `live`
// event). Calls come from media's goroutines and must not block.
type LiveNotifier interface {
	SetLive(room string, live bool)
}

// Deps are what the media service uses from the rest of the node.
type Deps struct {
	Log *slog.Logger
	// Registry takes the media metrics; nil registers nothing.
	Registry prometheus.Registerer
	// Tap receives LiveStart/LiveEnd and WatchStart/WatchStop; nil drops them.
	Tap event.Publisher
	// Live is told about going live and ending; may be nil.
	Live LiveNotifier
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Kind tells publishing (WHIP) and watching (WHEP) sessions apart.
type Kind int

// Session kinds.
const (
	Publish Kind = iota
	Watch
)

func (k Kind) String() string {
	if k == Publish {
		return "whip"
	}
	return "whep"
}

// Answer is a new session: its unguessable id (the capability in its Location), the
// SDP answer and the entity tag of its ICE session (see etagOf).
type Answer struct {
	ID   string
	SDP  string
	ETag string
}

// Service is the media relay: it holds one Stream per live room and every WHIP/WHEP
// session.
type Service struct {
	cfg        Config
	log        *slog.Logger
	tap        event.Publisher
	live       LiveNotifier
	now        func() time.Time
	apis       *apis
	iceServers []iceServerConf
	metrics    *metrics

	mu       sync.Mutex
	rooms    map[string]*publisher // the room's publisher, live or connecting
	sessions map[string]session
	closed   bool
	wg       sync.WaitGroup // goroutines reading peers
}

// session is a WHIP or WHEP peer.
type session interface {
	info() *sessionInfo
	end(async bool)
}

// sessionInfo is what every session has.
type sessionInfo struct {
	id, room string
	user     event.User
	kind     Kind
	pc       *webrtc.PeerConnection
	frag     sync.Mutex // serialises PATCHes
	trickled int        // remote candidates the PATCHes added (under frag)
}

func (i *sessionInfo) info() *sessionInfo { return i }

// New binds the WebRTC listeners and returns the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: deps.Log, tap: deps.Tap, live: deps.Live, now: deps.Now,
		rooms: map[string]*publisher{}, sessions: map[string]session{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.tap == nil {
		s.tap = event.Discard{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, u := range cfg.ICEServers {
		c, err := parseICEServer(u)
		if err != nil {
			return nil, err
		}
		s.iceServers = append(s.iceServers, c)
	}
	a, err := newAPIs(cfg)
	if err != nil {
		return nil, err
	}
	s.apis = a
	s.metrics = newMetrics(s)
	if deps.Registry != nil {
		if err := deps.Registry.Register(s.metrics); err != nil {
			a.close()
			return nil, err
		}
	}
	s.log.Info("media listening", "webrtc-udp", a.udp.LocalAddr().String(), "webrtc-tcp", s.TCPAddr())
	return s, nil
}

// UDPAddr is the bound ICE UDP address.
func (s *Service) UDPAddr() net.Addr { return s.apis.udp.LocalAddr() }

// TCPAddr is the bound ICE-TCP address, or "" when off.
func (s *Service) TCPAddr() string {
	if s.apis.tcp == nil {
		return ""
	}
	return s.apis.tcp.Addr().String()
}

// Close ends every session, then stops the listeners and waits for every goroutine.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	all := make([]session, 0, len(s.sessions))
	for _, x := range s.sessions {
		all = append(all, x)
	}
	s.mu.Unlock()
	for _, x := range all {
		x.end(false)
		// A peer whose own callback ended it first may still be closing in the
		// background: GracefulClose waits for that close to finish.
		if pc := x.info().pc; pc != nil {
			_ = pc.GracefulClose()
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.apis.close()
	return err
}

// End closes a session (WHIP/WHEP DELETE): a publisher's end ends the broadcast.
func (s *Service) End(ctx context.Context, kind Kind, room, id string, user event.User) error {
	x, err := s.lookup(kind, room, id, user)
	if err != nil {
		return err
	}
	x.end(false)
	return nil
}

// lookup finds a session and checks that user may act on it (its owner or an admin).
func (s *Service) lookup(kind Kind, room, id string, user event.User) (session, error) {
	s.mu.Lock()
	x, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok || x.info().kind != kind || x.info().room != room {
		return nil, noSession()
	}
	if i := x.info(); i.user.ID != user.ID && user.Role != event.RoleAdmin {
		return nil, notYours()
	}
	return x, nil
}

// Stats reports the room's media.
func (s *Service) Stats(room string) Stats {
	st := Stats{Room: room}
	s.mu.Lock()
	p := s.rooms[room]
	s.mu.Unlock()
	if p == nil {
		return st
	}
	stream, since := p.liveStream()
	if stream == nil {
		return st
	}
	ps, vs := stream.stats(s.now())
	st.Live, st.LiveID, st.Since, st.Publisher, st.Viewers = true, stream.live, &since, &ps, vs
	return st
}

// newID returns an unguessable id (128 random bits).
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// register adds a session unless the service is closing.
// track runs fn on a goroutine that Close waits for, unless Close has begun: adding to
// a WaitGroup that is being waited on is a race. It reports whether fn was started.
func (s *Service) track(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(fn)
	return true
}

func (s *Service) register(x session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closed()
	}
	s.sessions[x.info().id] = x
	return nil
}

// unregister removes a session that is ending; call the returned func once its peer is
// closed (see closingLocked).
func (s *Service) unregister(id string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return s.closingLocked()
}

// closingLocked counts the close of a session just removed from s.sessions, so that
// Close waits for it, and returns the func that marks it done. A session removed after
// Close took its list was in that list, and Close closes and waits for its peer itself.
// s.mu is held.
func (s *Service) closingLocked() func() {
	if s.closed {
		return func() {}
	}
	s.wg.Add(1)
	return s.wg.Done
}

// answer applies the offer, creates and applies the answer and waits until every
// local candidate is in it (host candidates on the muxed ports gather at once).
func answer(ctx context.Context, pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", badSDP(err)
	}
	return finishAnswer(ctx, pc)
}

// finishAnswer runs prepare (adding tracks), then creates the answer.
func finishAnswer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", badSDP(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", badSDP(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// publish puts an event on the tap with the common fields filled in.
func (s *Service) publish(t event.Type, room, live string, user event.User, secs float64) {
	s.tap.Publish(event.Event{
		ID: newID(), Type: t, At: s.now(), Room: room, Live: live,
		Viewer: user.ID, Name: user.Name, Role: user.Role, Seconds: secs,
	})
}

// Offer starts a WHIP (Publish) or WHEP (Watch) session.
func (s *Service) Offer(ctx context.Context, kind Kind, room string, user event.User, offer string) (Answer, error) {
	if kind == Publish {
		return s.Publish(ctx, room, user, offer)
	}
	return s.Watch(ctx, room, user, offer)
}

// LiveRooms lists the rooms live now, by room id.
func (s *Service) LiveRooms() []Stats {
	s.mu.Lock()
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	slices.Sort(rooms)
	var out []Stats
	for _, r := range rooms {
		if st := s.Stats(r); st.Live {
			out = append(out, st)
		}
	}
	return out
}
