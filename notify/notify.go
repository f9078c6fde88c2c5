// Package notify delivers alerts: one queue, one spool and one worker per
// notifier, so that a slow or failing notifier never delays a stop or
// another notifier, and an alert that could not be delivered is retried,
// not lost.
package notify

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwarden/portwarden/internal/backoff"
	"github.com/portwarden/portwarden/watcher"
)

// Verdicts an alert can carry.
const (
	VerdictAlert      = "alert"       // alert mode, or a finding enforce mode does not act on
	VerdictAllowed    = "allowed"     // every finding is allowed; sent only with notify.allowed
	VerdictStopped    = "stopped"     // enforce mode stopped the container
	VerdictWouldStop  = "would-stop"  // enforce mode, dry run
	VerdictStopFailed = "stop-failed" // enforce mode tried and failed
	VerdictExited     = "exited"      // enforce mode found it exited: nothing to stop
	VerdictLoop       = "enforcement-loop"
	VerdictScaled     = "scaled-to-zero" // enforce mode scaled a Swarm service to zero
	VerdictPortGone   = "port-removed"   // enforce mode took a service's published port out
	VerdictTest       = "test"           // a synthetic alert from portwarden notify test
)

// Alert is one message to on-call about one container start.
type Alert struct {
	Host      string            `json:"host"`
	Time      time.Time         `json:"time"`
	Mode      string            `json:"mode"` // alert or enforce
	Verdict   string            `json:"verdict"`
	Action    string            `json:"action,omitempty"`   // stop or kill; "" if none was called
	Duration  time.Duration     `json:"duration,omitempty"` // of the stop or kill
	Exposure  time.Duration     `json:"exposure,omitempty"` // from the start event to the stop
	Err       string            `json:"err,omitempty"`      // why a stop failed
	Workload  watcher.Workload  `json:"workload"`
	Container watcher.Container `json:"container"`
	StartedAt time.Time         `json:"started_at"`
	Findings  []watcher.Finding `json:"findings"`
	// LoopTripped marks the first alert of a workload the loop breaker
	// holds: an orchestrator keeps recreating it.
	LoopTripped bool `json:"loop_tripped,omitempty"`
	// RestartDisabled says that enforce mode set the restart policy to no.
	RestartDisabled bool `json:"restart_disabled,omitempty"`
	// Repeats counts the starts of Workload folded into this alert, over
	// RepeatWindow, by de-duplication.
	Repeats      int           `json:"repeats,omitempty"`
	RepeatWindow time.Duration `json:"repeat_window,omitempty"`
	// Dropped counts the alerts this notifier dropped, its spool full,
	// since the last one it delivered. Set at delivery.
	Dropped int `json:"-"`
}

// Notifier delivers alerts somewhere. Notify must return when ctx ends.
// An error wrapped with Permanent is not retried; a *RetryAfterError is
// retried after the time it gives; any other error is retried with
// backoff.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, a Alert) error
}

// Route is one notifier and where its undelivered alerts are kept.
type Route struct {
	Notifier Notifier
	SpoolDir string // "" keeps them in memory only, lost with the process
}

// Options configure a Dispatcher; zero values mean the defaults.
type Options struct {
	Logger      *slog.Logger
	SpoolSize   int           // alerts kept per notifier before the oldest are dropped
	MinRetry    time.Duration // the first wait after a failure
	MaxRetry    time.Duration // the longest wait between tries
	DedupWindow time.Duration // 0 sends every alert
	StateDir    string        // where the ledger of alerted starts is kept; "" for memory
}

// Defaults of Options.
const (
	DefaultSpoolSize = 10000
	DefaultMinRetry  = time.Second
	DefaultMaxRetry  = 5 * time.Minute
	intakeSize       = 4096
	attemptTimeout   = 30 * time.Second
)

// SpoolDir returns the spool folder of the notifier name under stateDir.
func SpoolDir(stateDir, name string) string {
	return filepath.Join(stateDir, "spool", name)
}

// Dispatcher fans alerts out to notifiers.
type Dispatcher struct {
	opts   Options
	log    *slog.Logger
	dedup  *deduper
	ledger *ledger
	routes []*route
	stop   context.CancelFunc // ends delivery attempts at the end of Close
	ctx    context.Context

	persisters, deliverers sync.WaitGroup
}

// route is the queue, spool and counters of one notifier.
type route struct {
	n      Notifier
	log    *slog.Logger
	intake chan Alert
	spool  *spool

	delivered, refused, retries, overflow atomic.Int64
}

// RouteStats counts what one notifier did.
type RouteStats struct {
	Delivered int64 // alerts delivered
	Refused   int64 // alerts refused for good (a permanent error)
	Retries   int64 // failed tries that were retried
	Queued    int   // alerts waiting, in the spool
}

// NewDispatcher opens each route's spool and starts its workers. Close
// stops them.
func NewDispatcher(opts Options, routes ...Route) *Dispatcher {
	opts.SpoolSize = cmp.Or(opts.SpoolSize, DefaultSpoolSize)
	opts.MinRetry = cmp.Or(opts.MinRetry, DefaultMinRetry)
	opts.MaxRetry = cmp.Or(opts.MaxRetry, DefaultMaxRetry)
	ctx, stop := context.WithCancel(context.Background())
	d := &Dispatcher{opts: opts, log: opts.Logger, ctx: ctx, stop: stop}
	ledgerPath := ""
	if opts.StateDir != "" {
		ledgerPath = filepath.Join(opts.StateDir, "alerted")
	}
	d.ledger = openLedger(ledgerPath, opts.Logger)
	for _, r := range routes {
		log := opts.Logger.With("notifier", r.Notifier.Name())
		sp := openSpool(r.SpoolDir, opts.SpoolSize, log)
		if n := sp.len(); n > 0 {
			log.Info("undelivered alerts from an earlier run", "alerts", n)
		}
		d.routes = append(d.routes, &route{n: r.Notifier, log: log,
			intake: make(chan Alert, intakeSize), spool: sp})
	}
	d.dedup = newDeduper(opts.DedupWindow, d.fanOut)
	for _, r := range d.routes {
		d.persisters.Go(func() { d.persist(r) })
		d.deliverers.Go(func() { d.deliver(r) })
	}
	return d
}

// Send queues a for every notifier and returns at once. An alert about a
// start that was alerted already, with the same verdict, by this process
// or an earlier one, is not sent again.
func (d *Dispatcher) Send(a Alert) {
	if key := alertKey(a); key != "" && !d.ledger.first(key) {
		d.log.Debug("start alerted already", "container_id", a.Container.ID,
			"verdict", a.Verdict)
		return
	}
	d.dedup.offer(a)
}

func (d *Dispatcher) fanOut(a Alert) {
	for _, r := range d.routes {
		select {
		case r.intake <- a:
		default:
			n := r.overflow.Add(1)
			r.log.Error("alert intake full, alert dropped", "container_id", a.Container.ID,
				"dropped_total", n)
		}
	}
}

// Stats returns the counters of each notifier, by name.
func (d *Dispatcher) Stats() map[string]RouteStats {
	out := map[string]RouteStats{}
	for _, r := range d.routes {
		out[r.n.Name()] = RouteStats{Delivered: r.delivered.Load(), Refused: r.refused.Load(),
			Retries: r.retries.Load(), Queued: r.spool.len()}
	}
	return out
}

// persist moves alerts from the intake to the spool, so that writing the
// spool never runs on the caller of Send.
func (d *Dispatcher) persist(r *route) {
	for a := range r.intake {
		r.spool.push(a)
	}
}

// deliver sends the spool's alerts in order, retrying failures.
func (d *Dispatcher) deliver(r *route) {
	var (
		failures  int
		failingAt time.Time
	)
	for {
		e, dropped, ok := r.spool.peek()
		if !ok {
			select {
			case <-r.spool.ready:
				continue
			case <-d.ctx.Done():
				return
			}
		}
		a := e.alert
		a.Dropped = dropped
		ctx, cancel := context.WithTimeout(d.ctx, attemptTimeout)
		err := r.n.Notify(ctx, a)
		cancel()

		switch {
		case err == nil:
			r.delivered.Add(1)
			r.spool.done(e.seq, dropped)
			if failures > 0 {
				r.log.Info("notifier delivering again", "failed_tries", failures,
					"outage_ms", time.Since(failingAt).Milliseconds())
			}
			failures = 0
		case IsPermanent(err):
			r.refused.Add(1)
			r.spool.done(e.seq, 0)
			r.log.Error("alert refused; not retried", "container_id", a.Container.ID,
				"err", err)
		case d.ctx.Err() != nil:
			return
		default:
			r.retries.Add(1)
			if failures == 0 {
				failingAt = time.Now()
				r.log.Warn("notifier failing; retrying", "container_id", a.Container.ID,
					"err", err)
			}
			failures++
			if !backoff.Sleep(d.ctx, d.retryWait(failures, err)) {
				return
			}
		}
	}
}

// retryWait is the wait before try n+1: what the receiver asked for, or
// doubling backoff from MinRetry to MaxRetry with jitter.
func (d *Dispatcher) retryWait(failures int, err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > 0 {
		return ra.After
	}
	return backoff.Wait(failures, d.opts.MinRetry, d.opts.MaxRetry)
}

// ErrFlushTimeout is returned by Close when alerts remain undelivered.
var ErrFlushTimeout = errors.New("alerts still undelivered at shutdown")

// Close stops taking alerts, sends what de-duplication holds back, and
// delivers what is queued until ctx ends. What a spool folder holds then
// is delivered at the next start.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.dedup.close()
	for _, r := range d.routes {
		close(r.intake)
	}
	d.persisters.Wait()
	var err error
	for _, r := range d.routes {
		for r.spool.len() > 0 && err == nil {
			select {
			case <-ctx.Done():
				err = ErrFlushTimeout
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	d.stop()
	d.deliverers.Wait()
	d.ledger.close()
	return err
}

// Bindings returns each finding's binding as host_ip:host_port->port/proto,
// or the finding's kind when it has none (a host-network container).
func (a Alert) Bindings() []string {
	var out []string
	for _, f := range a.Findings {
		if f.Binding != nil {
			out = append(out, f.Binding.String())
		} else {
			out = append(out, string(f.Kind))
		}
	}
	return out
}

// RuleIDs returns the STIG rules that a's findings break, each once.
func (a Alert) RuleIDs() []string {
	var out []string
	for _, f := range a.Findings {
		for _, r := range f.Rules {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}
