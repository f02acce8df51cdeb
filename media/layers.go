package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// Simulcast: a publisher's section may carry up to maxLayers layers of one video
// (RFC 8853), each its own RTP stream. All of them are kept in the ring; each viewer
// gets one at a time on its one video track, chosen from its own feedback, and moves
// to another only at a keyframe of that layer, with sequence numbers and timestamps
// rewritten so that the viewer sees one continuous stream (docs/media.md, "Simulcast").

// maxLayers bounds the layers of one simulcast section (browsers send up to three).
const maxLayers = 3

// The layer choice. Thresholds on loss are GCC's loss-based controller's
// (draft-ietf-rmcat-gcc-02 §6): above 10 % the sender must go down, below 2 % it may
// go up. REMB (goog-remb) is read as libwebrtc's receive-side estimator makes it: it
// falls only when it sees overuse, to 0.85 × what arrived, and never climbs past 1.5 ×
// what arrives (plus 10 kbit/s), so an estimate near that cap says "more would fit"
// without saying how much: moving up is then a probe, undone and backed off if the
// viewer's feedback turns bad.
const (
	lossHigh = 0.10 // fraction lost in a receiver report that moves a viewer down
	lossLow  = 0.02 // the most loss with which a viewer may move up
	// rembFit is the share of a REMB estimate a layer's bitrate may take: after
	// overuse the estimate is 0.85 × the rate that arrived, so a layer above that
	// is what overused
	rembFit = 0.85
	// rembCapped is how close to libwebrtc's cap (1.5 × what arrives) an estimate
	// must be to say the viewer would take more than it gets
	rembCapped = 1.4
	// minDwell is the least time on a layer before feedback moves the viewer again:
	// feedback from just after a switch still describes the layer before
	minDwell = 2 * time.Second
	// upHoldMin is how long a viewer's feedback must stay good before it moves up;
	// each probe undone within probeWindow doubles it, up to upHoldMax, and a probe
	// that holds for probeWindow sets it back
	upHoldMin   = 4 * time.Second
	upHoldMax   = 64 * time.Second
	probeWindow = 10 * time.Second
)

// layerGroup is one simulcast section: its layers in the order they were declared
// (fixed once the stream is built).
type layerGroup struct {
	layers []*Track
}

// rateWindow is the span over which a layer's bitrate is measured; layerStale is how
// long a layer may send nothing before it counts as stopped (browsers stop their
// higher layers when their uplink cannot carry them).
const (
	rateWindow = time.Second
	layerStale = time.Second
)

// layerRate measures a layer's bitrate: the source's goroutine adds, viewers' RTCP
// readers read.
type layerRate struct {
	winStart time.Time // source goroutine only
	winBytes int
	bps      atomic.Uint64
	last     atomic.Int64 // when the latest packet arrived (Unix ns)
}

func (r *layerRate) add(now time.Time, n int) {
	r.last.Store(now.UnixNano())
	if r.winStart.IsZero() {
		r.winStart = now
	}
	r.winBytes += n
	if d := now.Sub(r.winStart); d >= rateWindow {
		r.bps.Store(uint64(float64(r.winBytes) * 8 / d.Seconds()))
		r.winStart, r.winBytes = now, 0
	}
}

// get is the layer's bitrate and whether it is flowing at all.
func (r *layerRate) get(now time.Time) (bps float64, flowing bool) {
	if !r.flowing(now) {
		return 0, false
	}
	return float64(r.bps.Load()), true
}

// flowing says whether the layer sent a packet in the last layerStale.
func (r *layerRate) flowing(now time.Time) bool {
	last := r.last.Load()
	return last != 0 && now.UnixNano()-last <= int64(layerStale)
}

// layerInfo is one flowing layer as the choice sees it.
type layerInfo struct {
	t      *Track
	bps    float64
	pixels int
}

// ranked lists the flowing layers from the lowest to the highest, in buf: by picture
// size once every one has shown a keyframe, else by bitrate (RIDs are names, not an
// order).
func (g *layerGroup) ranked(now time.Time, buf *[maxLayers]layerInfo) []layerInfo {
	r := buf[:0]
	sized := true
	for _, t := range g.layers {
		bps, ok := t.rate.get(now)
		if !ok {
			continue
		}
		px := int(t.width.Load()) * int(t.height.Load())
		sized = sized && px > 0
		r = append(r, layerInfo{t: t, bps: bps, pixels: px})
	}
	less := func(a, b layerInfo) bool {
		if sized && a.pixels != b.pixels {
			return a.pixels < b.pixels
		}
		return a.bps < b.bps
	}
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && less(r[j], r[j-1]); j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
	return r
}

// rewrite is what is added to a layer's sequence numbers and timestamps to put its
// packets on a viewer's one track.
type rewrite struct {
	seq uint16
	ts  uint32
}

// segment is a run of one layer on a viewer's track, from a switch to the next.
type segment struct {
	t        *Track
	startIn  uint16 // the layer's sequence number of the run's first packet
	startOut uint16 // the viewer's sequence number of it
	off      rewrite
}

// segments is how many runs a NACK may reach back into: a NACK comes within a few
// round trips, and switches are seconds apart.
const segments = 4

// simulcast is one viewer's state for a simulcast section: the layer it gets and
// where that layer's packets go on its track (under its binding's mu, moved by the
// owning shard), and the choice of layer (under mu, made by its RTCP reader).
type simulcast struct {
	group  *layerGroup
	target atomic.Pointer[Track] // the layer to get: the viewer switches at its next keyframe
	cur    atomic.Pointer[Track] // the layer it gets now (nil before its first keyframe)

	// under the binding's mu
	runs    [segments]segment
	nRuns   int    // runs started; the newest is runs[nRuns%segments]
	sent    bool   // a packet was sent: lastSeq and lastTS hold
	lastSeq uint16 // the newest sent
	lastTS  uint32
	lastAt  time.Time // when the packet with lastTS was first sent

	mu       sync.Mutex
	movedAt  time.Time // when target last changed
	up       bool      // the last move was up (a probe until probeWindow passes)
	hold     time.Duration
	loss     float64 // fraction lost in the latest receiver report
	haveLoss bool
	remb     float64 // the latest REMB estimate, bits/s (0: none)
	fell     bool    // the estimate fell, and has not risen since

	stopCheck atomic.Int64 // when forward last re-decided for a stopped layer (Unix ns)
}

func newSimulcast(g *layerGroup) *simulcast {
	m := &simulcast{group: g, hold: upHoldMin}
	m.target.Store(g.layers[0])
	return m
}

// start picks a joining viewer's first layer: the middle one of those flowing (the
// lower of two), as nothing is known of the viewer's bandwidth yet; its feedback
// moves it from there.
func (m *simulcast) start(now time.Time) *Track {
	var buf [maxLayers]layerInfo
	t := m.group.layers[0]
	if r := m.group.ranked(now, &buf); len(r) > 0 {
		t = r[(len(r)-1)/2].t
	}
	m.mu.Lock()
	m.movedAt, m.hold, m.up = now, upHoldMin, false
	m.target.Store(t)
	m.mu.Unlock()
	return t
}

// estimate takes a REMB estimate (bits/s) from the viewer.
func (m *simulcast) estimate(bps float32, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := float64(bps)
	switch {
	case m.remb > 0 && r < m.remb*0.97:
		m.fell = true
	case r > m.remb:
		m.fell = false
	}
	m.remb = r
	m.decide(now)
}

// lossReport takes the fraction lost (×256) of a receiver report on the viewer's video.
func (m *simulcast) lossReport(fraction uint8, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loss, m.haveLoss = float64(fraction)/256, true
	m.decide(now)
}

// decide moves the viewer's target layer on its latest feedback; m.mu is held.
func (m *simulcast) decide(now time.Time) {
	var buf [maxLayers]layerInfo
	r := m.group.ranked(now, &buf)
	if len(r) == 0 {
		return
	}
	target := m.target.Load()
	i := -1
	for k := range r {
		if r[k].t == target {
			i = k
		}
	}
	if i < 0 {
		// the layer wanted stopped: the highest that the estimate carries, else the
		// lowest; feedback moves the viewer up from there
		j := 0
		for k := range r {
			if m.remb > 0 && r[k].bps <= rembFit*m.remb {
				j = k
			}
		}
		m.move(r[j].t, now, false)
		return
	}
	if m.cur.Load() != target {
		target.RequestKeyframe() // still waiting for its keyframe (rate-limited)
		return
	}
	if m.up && now.Sub(m.movedAt) >= probeWindow {
		m.hold, m.up = upHoldMin, false // the probe held
	}
	if now.Sub(m.movedAt) < minDwell {
		return
	}
	rate := r[i].bps
	overused := m.fell && m.remb < rembFit*rate
	switch {
	case i > 0 && (overused || m.haveLoss && m.loss > lossHigh):
		j := i - 1
		for overused && j > 0 && r[j].bps > rembFit*m.remb {
			j--
		}
		if m.up {
			m.hold = min(2*m.hold, upHoldMax) // a probe undone
		}
		m.move(r[j].t, now, false)
	case i < len(r)-1 && r[i+1].bps > rate && !overused && (!m.haveLoss || m.loss <= lossLow) && now.Sub(m.movedAt) >= m.hold:
		// (a larger picture that carries fewer bits, as a busy browser's starved top
		// layer does, is no move up)
		// an estimate at its cap is never below what arrives: it says more would fit
		// even just after a fall (the layer it fell on was left)
		if m.remb == 0 || m.remb >= r[i+1].bps || m.remb >= rembCapped*rate {
			m.move(r[i+1].t, now, true)
		}
	}
}

// checkStopped re-decides when the layer the viewer is to get has sent nothing for
// layerStale while another layer flows (forward has its packet): decide runs on the
// viewer's RTCP, which a viewer that gets nothing may stop sending, or never sent.
// At most once per layerStale per viewer; the check is an atomic load per packet of
// the layers the viewer does not get.
func (m *simulcast) checkStopped(t *Track, now time.Time) {
	if t.rate.flowing(now) {
		return
	}
	n := now.UnixNano()
	if last := m.stopCheck.Load(); n-last < int64(layerStale) || !m.stopCheck.CompareAndSwap(last, n) {
		return
	}
	m.mu.Lock()
	m.decide(now)
	m.mu.Unlock()
}

// move sets the viewer's target layer and asks for its keyframe; m.mu is held.
func (m *simulcast) move(t *Track, now time.Time, up bool) {
	m.movedAt, m.up = now, up
	m.target.Store(t)
	t.RequestKeyframe()
}

// forward sends one packet of a simulcast section to the viewer: a packet of the
// layer it gets, on its track; the first packet of a keyframe of the layer it is to
// get switches it there, with its sequence numbers following on from the last sent
// (no gap that would read as loss) and its timestamps from the last sent plus the
// time since (never back). Other layers' packets are not for this viewer.
func (b *binding) forward(v *viewer, sl *slot, q *udpBatch, now time.Time, live bool) {
	b.mu.Lock()
	m := b.sim
	if cur := m.cur.Load(); cur == nil || sl.track != cur.idx {
		t := m.target.Load()
		if sl.track != t.idx || !sl.key {
			b.mu.Unlock()
			if sl.track != t.idx {
				m.checkStopped(t, now)
			}
			return
		}
		var off rewrite
		if cur != nil {
			off.seq = m.lastSeq + 1 - sl.seq
			gap := uint32(now.Sub(m.lastAt).Seconds() * float64(b.clock))
			off.ts = m.lastTS + max(gap, 1) - sl.ts
			v.counters.switches.Add(1)
		}
		m.nRuns++
		m.runs[m.nRuns%segments] = segment{t: t, startIn: sl.seq, startOut: sl.seq + off.seq, off: off}
		m.cur.Store(t)
		v.key = &t.key
	}
	run := &m.runs[m.nRuns%segments]
	if int16(sl.seq-run.startIn) < 0 {
		b.mu.Unlock()
		return // the layer's packets from before the switch, reordered
	}
	seq, ts := sl.seq+run.off.seq, sl.ts+run.off.ts
	if !m.sent || int16(seq-m.lastSeq) > 0 {
		if !m.sent || ts != m.lastTS {
			m.lastTS, m.lastAt = ts, now
		}
		m.sent, m.lastSeq = true, seq
	}
	// unlocked for write, which takes the lock itself: the plain path's one call per
	// packet stays as it was (only this goroutine changes runs)
	b.mu.Unlock()
	b.write(v, sl, q, now, live, &run.off)
}

// origin maps a sequence number the viewer got back to the layer, sequence number
// and rewrite it was sent from, for a NACK; mu is the binding's.
func (m *simulcast) origin(mu *sync.Mutex, seq uint16) (t *Track, in uint16, off rewrite, ok bool) {
	mu.Lock()
	defer mu.Unlock()
	back := m.lastSeq - seq
	if !m.sent || back >= 0x8000 {
		return nil, 0, rewrite{}, false
	}
	for i := 0; i < segments && i < m.nRuns; i++ {
		r := &m.runs[(m.nRuns-i)%segments]
		if back <= m.lastSeq-r.startOut {
			return r.t, seq - r.off.seq, r.off, true
		}
	}
	return nil, 0, rewrite{}, false
}
