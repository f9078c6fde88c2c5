package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/watcher"
)

// healthTimeout bounds the heartbeat that /healthz sends through the
// pipeline.
const healthTimeout = 2 * time.Second

// live is what metrics and /healthz read: the watcher and pipeline of the
// engine connection in use, swapped on reconnect.
type live struct {
	watcher  atomic.Pointer[watcher.Watcher]
	pipeline atomic.Pointer[pipeline]
	alerts   *notify.Dispatcher
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("portwarden_"+name, help, labels, nil)
}

var (
	descEvents  = desc("events_received_total", "Engine events read from the stream.")
	descDropped = desc("events_dropped_total",
		"Events not queued because a worker's queue was full; each triggered a reconcile.")
	descFindings = desc("findings_total", "Findings that no allow entry matched, by kind.",
		"kind")
	descStops = desc("stops_total",
		"Enforcement outcomes: stopped, stop-failed, would-stop, loop, gone.", "outcome")
	descNotified = desc("notifications_total",
		"Alerts by notifier and outcome: delivered, refused (permanent error), retried.",
		"notifier", "outcome")
	descQueue = desc("queue_depth",
		"Jobs waiting: events for the workers, alerts in each notifier's spool.", "queue")
	descConnected = desc("stream_connected", "1 while the engine's event stream is open.")
	descLastEvent = desc("last_event_age_seconds",
		"Seconds since the last event was read; -1 before the first.")
	descReconcile = desc("reconcile_duration_seconds",
		"How long the last reconcile took to list and queue what runs.")
	descReconciles = desc("reconciles_total", "Reconciles finished.")
)

// Describe implements prometheus.Collector.
func (l *live) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descDropped, descFindings, descStops,
		descNotified, descQueue, descConnected, descLastEvent, descReconcile, descReconciles} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, reading the counters at scrape
// time.
func (l *live) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if w := l.watcher.Load(); w != nil {
		s := w.Stats()
		counter(descEvents, float64(s.Events))
		counter(descDropped, float64(s.Dropped))
		counter(descReconciles, float64(s.Reconciles))
		gauge(descQueue, float64(s.Queued), "events")
		gauge(descReconcile, s.LastReconcile.Seconds())
		connected := 0.0
		if w.Connected() {
			connected = 1
		}
		gauge(descConnected, connected)
		age := -1.0
		if last := w.LastEvent(); !last.IsZero() {
			age = time.Since(last).Seconds()
		}
		gauge(descLastEvent, age)
	}
	if p := l.pipeline.Load(); p != nil {
		findings, outcomes := p.counts.snapshot()
		for kind, n := range findings {
			counter(descFindings, float64(n), string(kind))
		}
		for outcome, n := range outcomes {
			counter(descStops, float64(n), outcome)
		}
	}
	for name, s := range l.alerts.Stats() {
		counter(descNotified, float64(s.Delivered), name, "delivered")
		counter(descNotified, float64(s.Refused), name, "refused")
		counter(descNotified, float64(s.Retries), name, "retried")
		gauge(descQueue, float64(s.Queued), "notify_"+name)
	}
}

// healthz answers 200 while the stream is open and a heartbeat passes
// through the pipeline, else 503 with the reason.
func (l *live) healthz(w http.ResponseWriter, r *http.Request) {
	wt := l.watcher.Load()
	switch {
	case wt == nil || !wt.Connected():
		http.Error(w, "not ok: the engine's event stream is not connected",
			http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := wt.Heartbeat(ctx); err != nil {
		http.Error(w, "not ok: the pipeline makes no progress: "+err.Error(),
			http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// serveMetrics serves /metrics and /healthz on addr until ctx ends. A
// port it cannot listen on is logged once as an error; enforcement goes
// on without metrics.
func serveMetrics(ctx context.Context, addr string, l *live, log *slog.Logger) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", l.healthz)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("metrics endpoint not started; enforcement goes on without it",
			"metrics_listen", addr, "err", err)
		return
	}
	log.Info("serving metrics", "metrics_listen", ln.Addr().String())
	go func() { //nolint:gosec // the shutdown outlives ctx, which has ended
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown) // the server is going either way
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics endpoint stopped", "err", err)
	}
}
