package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
)

// queueMetrics reports what a queue between the node's parts took and what it dropped
// because it was full: a drop loses an event for good (a full tap, a full rules'
// queue), and only these counters show it.
func queueMetrics(reg prometheus.Registerer, subsystem, what string, q *event.Queue) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "liveroom", Subsystem: subsystem, Name: name, Help: help}
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(opts("events_total", "Events "+what+" took."), func() float64 { return float64(q.Published()) }),
		prometheus.NewCounterFunc(opts("dropped_total", "Events "+what+" dropped because it was full (lost)."), func() float64 { return float64(q.Dropped()) }),
	)
}
