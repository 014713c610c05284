package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry builds the collector's Prometheus registry: its own counters,
// the ring's (read from the ring header at scrape time, so producers'
// drops show even between drains), and the Go runtime's.
func (c *Collector) Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ns := "restrack_collector"
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, f)
	}
	u := func(a interface{ Load() uint64 }) func() float64 { return func() float64 { return float64(a.Load()) } }
	reg.MustRegister(
		counter("records_total", "Records committed to the store by this collector.", u(&c.records)),
		counter("bytes_total", "Record bytes committed to the store by this collector.", u(&c.bytes)),
		counter("drains_total", "Batches drained and committed.", u(&c.drains)),
		counter("commit_errors_total", "Failed store commits (retried).", u(&c.commitErrors)),
		counter("abandoned_records_total", "Records skipped because their producer died mid-append.", u(&c.abandoned)),
		counter("corrupted_records_total", "Records skipped because they failed validation.", u(&c.corrupted)),
		gauge("ring_used_bytes", "Bytes of the ring holding unreleased records.", func() float64 { return float64(c.src.Counters().UsedBytes) }),
		gauge("ring_size_bytes", "Size of the ring's data area.", func() float64 { return float64(c.src.Counters().SizeBytes) }),
		counter("ring_full_waits_total", "Appends that found the ring full and waited (cumulative since ring creation).",
			func() float64 { return float64(c.src.Counters().FullWaits) }),
	)
	reg.MustRegister(&dropCollector{c: c, desc: prometheus.NewDesc(ns+"_dropped_records_total",
		"Records producers dropped, by cause (cumulative since ring creation).", []string{"cause"}, nil)})

	batch := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "drain_batch_records",
		Help: "Records per drained batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)})
	drain := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "drain_seconds",
		Help: "Time to copy one batch out of the ring.", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)})
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "commit_seconds",
		Help: "Time to commit one batch to the store.", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 12)})
	reg.MustRegister(batch, drain, commit)
	c.obsMu.Lock()
	c.observer = func(n int, d, cm time.Duration) {
		batch.Observe(float64(n))
		drain.Observe(d.Seconds())
		commit.Observe(cm.Seconds())
	}
	c.obsMu.Unlock()
	return reg
}

type dropCollector struct {
	c    *Collector
	desc *prometheus.Desc
}

func (d *dropCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *dropCollector) Collect(ch chan<- prometheus.Metric) {
	sc := d.c.src.Counters()
	ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(sc.DroppedFull), "full")
	ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(sc.DroppedTooBig), "toobig")
}

// ServeMetrics serves /metrics on addr until ctx is done.
func ServeMetrics(ctx context.Context, addr string, reg *prometheus.Registry) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics on %s: %w", addr, err)
	}
	return nil
}
