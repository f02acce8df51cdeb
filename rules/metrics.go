package rules

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes e's Stats as liveroom_rules_* metrics, read once per scrape.
func (e *Engine) Collector() prometheus.Collector { return statsCollector{e} }

type statsCollector struct{ e *Engine }

type statMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Stats) float64
}

func counter(name, help string, v func(Stats) uint64) statMetric {
	return statMetric{prometheus.NewDesc("liveroom_rules_"+name, help, nil, nil), prometheus.CounterValue,
		func(s Stats) float64 { return float64(v(s)) }}
}

var statMetrics = []statMetric{
	counter("evaluated_total", "Rule conditions evaluated.", func(s Stats) uint64 { return s.Evaluated }),
	counter("fired_total", "Actions that passed the limits (a send that then failed is in errors_total too).", func(s Stats) uint64 { return s.Fired }),
	counter("prompts_total", "Prompts sent to agents.", func(s Stats) uint64 { return s.Prompts }),
	counter("dms_total", "Automatic private messages sent.", func(s Stats) uint64 { return s.DMs }),
	counter("tags_total", "Custom tags given.", func(s Stats) uint64 { return s.Tags }),
	counter("webhooks_total", "Webhook deliveries made by rules (delivered + failed + dropped, once done).", func(s Stats) uint64 { return s.Webhooks }),
	counter("consent_skipped_total", "Messages not sent because the viewer opted out.", func(s Stats) uint64 { return s.ConsentSkipped }),
	counter("quiet_deferred_total", "Messages deferred past the viewer's quiet hours.", func(s Stats) uint64 { return s.QuietDeferred }),
	counter("quiet_dropped_total", "Messages dropped in the viewer's quiet hours.", func(s Stats) uint64 { return s.QuietDropped }),
	counter("webhooks_delivered_total", "Webhook deliveries answered 2xx.", func(s Stats) uint64 { return s.WebhooksDelivered }),
	counter("webhooks_failed_total", "Webhook deliveries given up after their attempts or a final 4xx.", func(s Stats) uint64 { return s.WebhooksFailed }),
	counter("history_skipped_total", "Rules not fired because their event (or the event behind their tag change) was over an hour old: imported history.", func(s Stats) uint64 { return s.History }),
	counter("no_room_skipped_total", "Messages not sent because no room was known for them: an order or import naming no room, from a viewer never seen in one.", func(s Stats) uint64 { return s.NoRoom }),
	counter("webhooks_dropped_total", "Webhook deliveries dropped: queue full, or their viewer erased.", func(s Stats) uint64 { return s.WebhooksDropped }),
	counter("errors_total", "Failed conditions, renders, sends and state writes.", func(s Stats) uint64 { return s.Errors }),
	{prometheus.NewDesc("liveroom_rules_armed_timers", "Stay timers and scheduled jobs armed.", nil, nil), prometheus.GaugeValue,
		func(s Stats) float64 { return float64(s.ArmedTimers) }},
}

func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range statMetrics {
		ch <- m.desc
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.Stats()
	for _, m := range statMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
