package segment

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applied, invalid, tagChanges, imported, duplicates, flushed, storeErrors, compactions, quarantined prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, e *Engine) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "liveroom", Subsystem: "segment", Name: name, Help: help})
	}
	m := &metrics{
		applied:     c("events_applied_total", "Events folded into profiles (tap and imports)."),
		invalid:     c("events_invalid_total", "Tap events that could not be applied (no viewer, bad order)."),
		tagChanges:  c("tag_changes_total", "Tag changes on any dimension."),
		imported:    c("events_imported_total", "Imported events accepted and stored."),
		duplicates:  c("events_duplicate_total", "Imported events ignored because their id (or order id) was seen."),
		flushed:     c("profiles_written_total", "Profiles written through to the store."),
		storeErrors: c("store_errors_total", "Failed store writes (retried)."),
		compactions: c("compactions_total", "Times every profile's lists were moved into large dense chunks (the sweep does it every half hour)."),
		quarantined: c("profiles_quarantined_total", "Stored profiles that did not decode at load and were set aside (kind quarantine) so that the node could start."),
	}
	if reg == nil {
		return m, nil
	}
	profiles := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "liveroom", Subsystem: "segment", Name: "profiles", Help: "Profiles held in memory."},
		func() float64 { return float64(e.Count()) })
	cols := []prometheus.Collector{m.applied, m.invalid, m.tagChanges, m.imported, m.duplicates, m.flushed, m.storeErrors, m.compactions, m.quarantined, profiles}
	if st, ok := e.store.(interface{ Collectors() []prometheus.Collector }); ok {
		cols = append(cols, st.Collectors()...) // the journal's
	}
	// The process-wide tables never shrink, and past their capacity a new category or
	// (live, room) pair is counted nowhere: operators can watch them fill.
	for _, t := range []struct {
		name     string
		size     func() int
		capacity int
	}{
		{"category", func() int { return categories.size() }, maxCategories},
		{"place", func() int { return places.size() }, maxPlaces},
	} {
		opts := func(name, help string) prometheus.GaugeOpts {
			return prometheus.GaugeOpts{Namespace: "liveroom", Subsystem: "segment", Name: name, Help: help, ConstLabels: prometheus.Labels{"table": t.name}}
		}
		cols = append(cols,
			prometheus.NewGaugeFunc(opts("table_entries", "Names numbered by a process-wide table (categories, live and room pairs)."), func() float64 { return float64(t.size()) }),
			prometheus.NewGaugeFunc(opts("table_capacity", "The most names the table numbers; past it a new one is counted nowhere."), func() float64 { return float64(t.capacity) }))
	}
	for _, col := range cols {
		if err := reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
