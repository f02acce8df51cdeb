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
	lives   []string
	cats    []string
	orders  []*event.OrderInfo
	rng     *rand.Rand
	now     time.Time
	seq     uint64
	ids     []string // the next events' ids, cut from one string
	next    int      // index of the next id in ids
	ends    []int    // scratch for cutting ids
}

// New makes a generator over viewers viewer ids, with times up to now.
func New(viewers int, now time.Time, seed uint64) *Gen {
	g := &Gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: now}
	g.Viewers = make([]string, viewers)
	for i := range g.Viewers {
		g.Viewers[i] = "viewer-" + strconv.Itoa(i)
	}
	for i := range 64 {
		g.lives = append(g.lives, "live-"+strconv.Itoa(i))
	}
	g.cats = []string{"shoes", "bags", "hats", "coats", "socks", "watches", "rings", "scarves"}
	for i := range 16 {
		g.orders = append(g.orders, &event.OrderInfo{OrderID: "order-" + strconv.Itoa(i), Total: strconv.Itoa(5+i*7) + ".90", Currency: "USD",
			Items: []event.Item{{SKU: "sku-" + strconv.Itoa(i), Category: g.cats[i%len(g.cats)], Quantity: 1}}})
	}
	return g
}

// mix is the share of each type, in thousandths.
var mix = []struct {
	t event.Type
	n int
}{
	{event.Join, 100}, {event.WatchStart, 50}, {event.Danmaku, 300}, {event.Like, 300},
	{event.ProductClick, 90}, {event.WatchStop, 50}, {event.Leave, 100}, {event.Order, 10},
}

// Seq is how many events have been generated; event ids are "b" + Seq in base 36.
func (g *Gen) Seq() uint64 { return g.seq }

// Next fills ev with the next event and returns its sequence number.
func (g *Gen) Next(ev *event.Event) uint64 {
	g.seq++
	r := g.rng.IntN(1000)
	t := mix[len(mix)-1].t
	for _, m := range mix {
		if r < m.n {
			t = m.t
			break
		}
		r -= m.n
	}
	v := g.rng.IntN(len(g.Viewers))
	at := g.now.Add(-time.Duration(g.rng.Int64N(int64(60 * 24 * time.Hour))))
	*ev = event.Event{
		ID:     g.nextID(),
		Type:   t,
		At:     at,
		Viewer: g.Viewers[v],
		Role:   event.RoleViewer,
		Room:   "room-1",
		// One live a day per viewer, so joins and leaves of a day meet.
		Live: g.lives[(v+int(at.Unix()/86400))%len(g.lives)],
	}
	switch t {
	case event.Danmaku:
		ev.Text = "nice!"
	case event.Like:
		ev.Count = 1 + g.rng.IntN(5)
	case event.ProductClick:
		ev.SKU, ev.Category = "sku-1", g.cats[g.rng.IntN(len(g.cats))]
	case event.Order:
		ev.Order = g.orders[g.rng.IntN(len(g.orders))]
	}
	return g.seq
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
		for s := g.seq; s < g.seq+idBatch; s++ {
			b.WriteByte('b')
			b.WriteString(strconv.FormatUint(s, 36))
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
