package fleet

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the publisher's Prometheus metrics, for the collector's
// registry: the backlog and its age are what an operator alerts on.
func (p *Publisher) Metrics() []prometheus.Collector {
	const ns = "restrack_fleet"
	st := func(f func(Status) float64) func() float64 { return func() float64 { return f(p.Status()) } }
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "pending_rows",
			Help: "Rows (processes, files, accesses) changed locally and not yet in the fleet database, as of the last pass."},
			st(func(s Status) float64 { return float64(s.Pending) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "lag_seconds",
			Help: "How long the oldest unpublished change has waited (0 when none waits)."},
			st(func(s Status) float64 { return s.Lag(time.Now()).Seconds() })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "last_success_timestamp_seconds",
			Help: "Unix time of the last pass that published everything (0: never)."},
			st(func(s Status) float64 {
				if s.LastSuccess.IsZero() {
					return 0
				}
				return float64(s.LastSuccess.UnixNano()) / 1e9
			})),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "published_rows_total",
			Help: "Rows upserted into the fleet database by this publisher."},
			st(func(s Status) float64 { return float64(s.PublishedRows) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "errors_total",
			Help: "Publishing passes that failed (database down, slow, refused)."},
			st(func(s Status) float64 { return float64(s.Errors) })),
	}
}
