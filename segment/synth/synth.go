package synth

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/event"
)

// Gen produces events; it is not safe for concurrent use.
type Gen struct {
	Viewers []string
	names   []string // each viewer's display name, as chat events carry it
	lives   []string
	cats    []string
	orders  []*event.OrderInfo
	// comments are what viewers write: a few thousand texts of a real comment's
	// length, made once (a comment's own string each time would be the generator's
	// garbage, collected on the engine's time).
	comments []string
	rng      *rand.Rand
	now      time.Time
	seq      uint64
	ids      []string  // the next events' ids, cut from one string
	next     int       // index of the next id in ids
	ends     []int     // scratch for cutting ids
	live     *liveRoom // set by Live: the events that follow are a live room's
}

// New makes a generator over viewers viewer ids, with times up to now.
func New(viewers int, now time.Time, seed uint64) *Gen {
	g := &Gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: now}
	g.Viewers, g.names = make([]string, viewers), make([]string, viewers)
	for i := range g.Viewers {
		g.Viewers[i] = "viewer-" + strconv.Itoa(i)
		g.names[i] = "Fan " + strconv.Itoa(i*7919%1_000_003)
	}
	for i := range 64 {
		g.lives = append(g.lives, "live-"+strconv.Itoa(i))
	}
	g.cats = []string{"shoes", "bags", "hats", "coats", "socks", "watches", "rings", "scarves"}
	for i := range 4096 {
		g.comments = append(g.comments, "so pretty! is the "+g.cats[i%len(g.cats)]+" in size "+strconv.Itoa(i%50)+" still there? #"+strconv.Itoa(i))
	}
	for i := range 16 {
		g.orders = append(g.orders, &event.OrderInfo{Total: strconv.Itoa(5+i*7) + ".90", Currency: "USD",
			Items: []event.Item{{SKU: "sku-" + strconv.Itoa(i), Category: g.cats[i%len(g.cats)], Quantity: 1}}})
	}
	return g
}

// share is an event type's share of a mix, in thousandths.
type share struct {
	t event.Type
	n int
}

// pick is the type that r (0–999) falls on in mix.
func pick(mix []share, r int) event.Type {
	for _, m := range mix {
		if r < m.n {
			return m.t
		}
		r -= m.n
	}
	return mix[len(mix)-1].t
}

// mix is the share of each type, in thousandths.
var mix = []share{
	{event.Join, 100}, {event.WatchStart, 50}, {event.Danmaku, 300}, {event.Like, 300},
	{event.ProductClick, 90}, {event.WatchStop, 50}, {event.Leave, 100}, {event.Order, 10},
}

// Seq is how many events have been generated; event ids are "b" + Seq in base 36.
func (g *Gen) Seq() uint64 { return g.seq }

// Next fills ev with the next event and returns its sequence number.
func (g *Gen) Next(ev *event.Event) uint64 {
	g.seq++
	if g.live != nil {
		g.nextLive(ev)
		return g.seq
	}
	t := pick(mix, g.rng.IntN(1000))
	v := g.rng.IntN(len(g.Viewers))
	at := g.now.Add(-time.Duration(g.rng.Int64N(int64(60 * 24 * time.Hour))))
	*ev = event.Event{
		ID:     g.nextID(),
		Type:   t,
		At:     at,
		Viewer: g.Viewers[v],
		Name:   g.names[v],
		Role:   event.RoleViewer,
		Room:   "room-1",
		// One live a day per viewer, so joins and leaves of a day meet.
		Live: g.lives[(v+int(at.Unix()/86400))%len(g.lives)],
	}
	g.fill(ev)
	return g.seq
}

// Live turns the events that follow into live traffic: present viewers at a time (at
// most the population), drawn from those not present, spread over rooms that are live now, each visit a join,
// a watch start, likes, comments, gifts, product clicks and now and then an order,
// then a watch stop and a leave, after which another viewer takes the place. Events
// carry the wall clock's time. What Next made before (the history of the last 60
// days) is the population's past.
func (g *Gen) Live(present, rooms int) {
	present = min(max(present, 1), len(g.Viewers))
	rooms = min(max(rooms, 1), present)
	l := &liveRoom{slots: make([]slot, present), absent: make([]int32, len(g.Viewers))}
	for i := range l.absent {
		l.absent[i] = int32(i)
	}
	for r := range rooms {
		l.rooms = append(l.rooms, "room-"+strconv.Itoa(r+1))
		l.lives = append(l.lives, "live-now-"+strconv.Itoa(r+1))
	}
	for i := range l.slots {
		l.slots[i].viewer = g.arrive(l)
	}
	g.live = l
}

// liveRoom is the state of Live's traffic.
type liveRoom struct {
	rooms, lives []string
	slots        []slot
	absent       []int32 // the viewers not present, in no order
}

// arrive takes a random viewer who is not present.
func (g *Gen) arrive(l *liveRoom) int32 {
	i := g.rng.IntN(len(l.absent))
	v := l.absent[i]
	last := len(l.absent) - 1
	l.absent[i], l.absent = l.absent[last], l.absent[:last]
	return v
}

// slot is one present viewer's place in a room and how far their visit has come.
type slot struct {
	viewer int32
	stage  uint8
}

// A visit's stages: each event of a slot moves it on, except interactions, which go on
// until a visit's end is drawn.
const (
	arriving uint8 = iota // next: join the chat
	joined                // next: start watching
	watching              // next: an interaction, or stop watching
	stopped               // next: leave; then a new viewer takes the slot
)

// liveMix is the share of each interaction while watching, in thousandths.
var liveMix = []share{
	{event.Like, 500}, {event.Danmaku, 300}, {event.ProductClick, 120}, {event.Gift, 40}, {event.Order, 20},
}

// visitEnd is the chance, in thousandths, that a watching viewer's next event ends the
// visit: a visit holds about 50 interactions.
const visitEnd = 20

func (g *Gen) nextLive(ev *event.Event) {
	l := g.live
	i := g.rng.IntN(len(l.slots))
	s := &l.slots[i]
	room := i % len(l.rooms)
	*ev = event.Event{
		ID: g.nextID(), At: time.Now(), Viewer: g.Viewers[s.viewer], Name: g.names[s.viewer], Role: event.RoleViewer,
		Room: l.rooms[room], Live: l.lives[room],
	}
	switch s.stage {
	case arriving:
		ev.Type, s.stage = event.Join, joined
	case joined:
		ev.Type, s.stage = event.WatchStart, watching
	case stopped:
		ev.Type, s.stage = event.Leave, arriving
		l.absent = append(l.absent, s.viewer)
		s.viewer = g.arrive(l)
	default:
		if g.rng.IntN(1000) < visitEnd {
			ev.Type, s.stage = event.WatchStop, stopped
			return
		}
		ev.Type = pick(liveMix, g.rng.IntN(1000))
		g.fill(ev)
	}
}

// fill sets what an event of ev.Type carries besides who, where and when.
func (g *Gen) fill(ev *event.Event) {
	switch ev.Type {
	case event.Danmaku:
		ev.Text = g.comments[g.rng.IntN(len(g.comments))]
	case event.Like:
		ev.Count = 1 + g.rng.IntN(5)
	case event.Gift:
		ev.Gift, ev.Count, ev.Value = "rose", 1, 0.99
	case event.ProductClick:
		ev.SKU, ev.Category = "sku-1", g.cats[g.rng.IntN(len(g.cats))]
	case event.Order:
		// Each order its own id, as a shop's are: a consumer that keeps order ids
		// (the segment engine does, per buyer) keeps one string per order.
		o := *g.orders[g.rng.IntN(len(g.orders))]
		var b [32]byte
		o.OrderID = string(strconv.AppendUint(append(b[:0], "order-"...), g.seq, 36))
		ev.Order = &o
	}
}

// idBatch is how many ids are made at once: one allocation for all of them instead
// of two per event, which the engine's benchmark would otherwise count as its own.
const idBatch = 1024

// nextID returns the id of event g.seq, making the next idBatch ids when none is left.
func (g *Gen) nextID() string {
	if g.next == len(g.ids) {
		var b strings.Builder
		b.Grow(idBatch * 8)
		g.ends = g.ends[:0]
		var digits [16]byte
		for s := g.seq; s < g.seq+idBatch; s++ {
			b.WriteByte('b')
			b.Write(strconv.AppendUint(digits[:0], s, 36)) // FormatUint allocated a string each
			g.ends = append(g.ends, b.Len())
		}
		all, start := b.String(), 0
		g.ids, g.next = g.ids[:0], 0
		for _, end := range g.ends {
			g.ids = append(g.ids, all[start:end])
			start = end
		}
	}
	g.next++
	return g.ids[g.next-1]
}

// SeqOf parses the sequence number back from an event id ("b" + base 36).
func SeqOf(id string) (uint64, bool) {
	if len(id) < 2 || id[0] != 'b' {
		return 0, false
	}
	v, err := strconv.ParseUint(id[1:], 36, 64)
	return v, err == nil
}
