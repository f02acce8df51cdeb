package app

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/hugepage"
)

// hugeMetrics shows operators how much of the process's memory is in huge pages and
// what the watcher (started by Run, with --huge-pages) has done; its counters stay 0
// while no watcher runs.
func hugeMetrics(reg prometheus.Registerer, watcher *atomic.Pointer[hugepage.Watcher]) {
	stats := func() hugepage.Stats {
		if w := watcher.Load(); w != nil {
			return w.Stats()
		}
		return hugepage.Stats{}
	}
	opts := func(name, help string) prometheus.GaugeOpts {
		return prometheus.GaugeOpts{Namespace: "liveroom", Subsystem: "huge_pages", Name: name, Help: help}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(opts("bytes", "Anonymous memory of the process in transparent huge pages (AnonHugePages of /proc/self/smaps_rollup)."),
			func() float64 {
				_, huge, err := hugepage.Resident()
				if err != nil {
					return 0
				}
				return float64(huge)
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("collapses_total", "Requests to collapse a 2 MiB region that the kernel granted (a region still huge counts again at each 10 s recheck).")),
			func() float64 { return float64(stats().Collapsed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("refusals_total", "Requests to collapse a 2 MiB region that the kernel refused (busy or pinned pages, no huge page free, a container's memory limit).")),
			func() float64 { return float64(stats().Failed) }),
	)
}
