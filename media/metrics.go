package media

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is a collector that reads the live streams' counters at scrape time, so the
// packet path only touches per-viewer counters.
type metrics struct {
	s        *Service
	sessions *prometheus.CounterVec

	mu      sync.Mutex
	retired [7]uint64        // finished streams: received, lost, sent, dropped, retransmitted, keyframe requests, layer switches
	ended   map[*Stream]bool // streams of ended rooms not yet retired

	live, viewers                               *prometheus.Desc
	recv, lost, sent, dropped, retrans, keyReqs *prometheus.Desc
	switches                                    *prometheus.Desc
	udpWrites, udpDatagrams                     *prometheus.Desc
}

func newMetrics(s *Service) *metrics {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("liveroom_media_"+name, help, nil, nil)
	}
	return &metrics{
		s:        s,
		ended:    map[*Stream]bool{},
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liveroom_media_sessions_total", Help: "WHIP/WHEP sessions started."}, []string{"kind"}),
		live:     d("live_rooms", "Rooms live now."),
		viewers:  d("viewers", "WHEP viewers receiving now."),
		recv:     d("packets_received_total", "RTP packets received from publishers."),
		lost:     d("packets_lost_total", "RTP packets missing in publishers' sequence numbers."),
		sent:     d("packets_sent_total", "RTP packets sent to viewers."),
		dropped:  d("packets_dropped_total", "RTP packets skipped for viewers that lagged."),
		retrans:  d("packets_retransmitted_total", "RTP packets resent to viewers on NACK."),
		keyReqs:  d("keyframe_requests_total", "Keyframe requests (PLI) sent to publishers."),
		switches: d("layer_switches_total", "Viewers' moves from one simulcast layer to another."),
		udpWrites: d("udp_writes_total", "System calls that wrote viewers' media to the shared UDP socket directly "+
			"(several datagrams each where the kernel segments them)."),
		udpDatagrams: d("udp_datagrams_total", "Datagrams of viewers' media those writes carried."),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.sessions.Describe(ch)
	for _, d := range []*prometheus.Desc{m.live, m.viewers, m.recv, m.lost, m.sent, m.dropped, m.retrans, m.keyReqs, m.switches, m.udpWrites, m.udpDatagrams} {
		ch <- d
	}
}

// figures sums a stream's counters in the order of metrics.retired.
func figures(st *Stream) (f [7]uint64, viewers int) {
	for _, t := range st.Tracks() {
		f[0] += t.packets.Load()
		f[1] += t.lost.Load()
	}
	// A leaving viewer moves from st.viewers to st.gone under st.mu (removeViewer):
	// read both under it, so its counts are in one or the other.
	var c viewerCounters
	st.mu.Lock()
	c.add(&st.gone)
	for v := range st.viewers {
		c.add(&v.counters)
	}
	viewers = len(st.viewers)
	st.mu.Unlock()
	f[2], f[3], f[4], f[5], f[6] = c.sent.Load(), c.dropped.Load(), c.retransmitted.Load(), st.keyReqs.Load(), c.switches.Load()
	return f, viewers
}

// ending keeps counting the stream of a room that has just ended until it is retired;
// s.mu is held (the room leaves s.rooms in the same step).
func (m *metrics) ending(st *Stream) {
	m.mu.Lock()
	m.ended[st] = true
	m.mu.Unlock()
}

// retire keeps a finished stream's counters in the totals.
func (m *metrics) retire(st *Stream) {
	f, _ := figures(st)
	m.mu.Lock()
	for i := range f {
		m.retired[i] += f[i]
	}
	delete(m.ended, st)
	m.mu.Unlock()
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.sessions.Collect(ch)
	// One look under both locks: each stream is then live, ending or retired, so the
	// totals never lose one between two places (and a counter never falls).
	m.s.mu.Lock()
	var streams []*Stream
	for _, p := range m.s.rooms {
		if st, _ := p.liveStream(); st != nil {
			streams = append(streams, st)
		}
	}
	live := len(streams)
	m.mu.Lock()
	total := m.retired
	for st := range m.ended {
		streams = append(streams, st)
	}
	m.mu.Unlock()
	m.s.mu.Unlock()
	viewers := 0
	for k, st := range streams {
		f, n := figures(st)
		for i := range f {
			total[i] += f[i]
		}
		if k < live {
			viewers += n
		}
	}
	ch <- prometheus.MustNewConstMetric(m.live, prometheus.GaugeValue, float64(live))
	ch <- prometheus.MustNewConstMetric(m.viewers, prometheus.GaugeValue, float64(viewers))
	for i, d := range []*prometheus.Desc{m.recv, m.lost, m.sent, m.dropped, m.retrans, m.keyReqs, m.switches} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(total[i]))
	}
	var writes, datagrams uint64
	if out := m.s.apis.out; out != nil {
		writes, datagrams = out.writes.Load(), out.datagrams.Load()
	}
	ch <- prometheus.MustNewConstMetric(m.udpWrites, prometheus.CounterValue, float64(writes))
	ch <- prometheus.MustNewConstMetric(m.udpDatagrams, prometheus.CounterValue, float64(datagrams))
}
