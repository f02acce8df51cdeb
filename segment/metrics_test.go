package segment

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveroom/liveroom/event"
)

// The process-wide name tables are watched through two gauges each: how full they are,
// and their capacity.
func TestMetricsShowTheNameTables(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, err := New(testConfig(), Deps{Store: NewMemoryStore(), Now: (&clock{t: t0}).Now, Log: quiet, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	e.Apply(event.Event{ID: "m1", Type: event.ProductClick, Viewer: "v", At: t0, Category: "metrics-test-category", Room: "r", Live: "metrics-test-live"})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" {
					got[f.GetName()+"/"+l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	want := map[string]float64{
		"liveroom_segment_table_entries/category":  float64(categories.size()),
		"liveroom_segment_table_capacity/category": maxCategories,
		"liveroom_segment_table_entries/place":     float64(places.size()),
		"liveroom_segment_table_capacity/place":    maxPlaces,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	// The click numbered its category, and the tables hold more than the zero value.
	if got["liveroom_segment_table_entries/category"] < 2 || got["liveroom_segment_table_entries/place"] < 2 {
		t.Errorf("tables: %v", got)
	}
}
