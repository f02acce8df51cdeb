package chat

import "github.com/prometheus/client_golang/prometheus"

// metrics are chat's Prometheus series (liveroom_chat_*).
type metrics struct {
	conns   prometheus.Gauge
	parked  prometheus.Gauge // connections without a reader goroutine (park.go)
	rooms   prometheus.Gauge
	in      *prometheus.CounterVec // client messages accepted for processing, by type
	out     *prometheus.CounterVec // server events created, by type
	refused *prometheus.CounterVec // refusals, by error code
	frames  prometheus.Counter     // frames written to sockets
	drops   *prometheus.CounterVec // by reason: slow_close, tap
	delay   prometheus.Histogram   // event → frame written
	cycle   prometheus.Histogram   // one fan-out cycle over a room's connections
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "liveroom_chat_connections", Help: "Open chat WebSocket connections."}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "liveroom_chat_parked_connections",
			Help: "Chat connections idle without a reader goroutine (their socket watched by epoll)."}),
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{Name: "liveroom_chat_rooms", Help: "Chat rooms loaded."}),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liveroom_chat_events_in_total",
			Help: "Client messages received, by type (after decoding)."}, []string{"type"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liveroom_chat_events_out_total",
			Help: "Server events created, by type (each fanned out once per recipient)."}, []string{"type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liveroom_chat_refused_total",
			Help: "Refused client messages and connections, by error code."}, []string{"code"}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "liveroom_chat_frames_written_total",
			Help: "WebSocket data frames written (each holds one or more events)."}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liveroom_chat_drops_total",
			Help: "Dropped work: slow connections closed, tap events refused."}, []string{"reason"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "liveroom_chat_fanout_delay_seconds",
			Help:    "Time from a room event to its frame being written to a connection.",
			Buckets: []float64{.001, .005, .01, .025, .05, .075, .1, .125, .15, .2, .25, .3, .4, .5, 1, 2.5, 5}}),
		cycle: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "liveroom_chat_cycle_seconds",
			Help:    "Time a fan-out cycle takes to visit every connection of a room once; near chat-frame-interval, the node's chat is saturated.",
			Buckets: []float64{.001, .005, .01, .02, .03, .04, .05, .06, .07, .08, .09, .1, .125, .15, .2, .3, .5, 1}}),
	}
	for _, c := range []prometheus.Collector{m.conns, m.parked, m.rooms, m.in, m.out, m.refused, m.frames, m.drops, m.delay, m.cycle} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
