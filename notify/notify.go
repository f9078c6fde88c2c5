// Package notify delivers alerts: one queue and one worker per notifier,
// so that a slow or failing notifier never delays a stop or another
// notifier.
package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwarden/portwarden/watcher"
)

// Verdicts an alert can carry.
const (
	VerdictAlert      = "alert"       // alert mode, or a finding enforce mode does not act on
	VerdictAllowed    = "allowed"     // every finding is allowed; sent only with notify.allowed
	VerdictStopped    = "stopped"     // enforce mode stopped the container
	VerdictWouldStop  = "would-stop"  // enforce mode, dry run
	VerdictStopFailed = "stop-failed" // enforce mode tried and failed
	VerdictLoop       = "enforcement-loop"
)

// Alert is one message to on-call about one container start.
type Alert struct {
	Host      string
	Time      time.Time
	Mode      string // alert or enforce
	Verdict   string
	Action    string        // stop or kill; "" when nothing was called
	Duration  time.Duration // of the stop or kill
	Exposure  time.Duration // from the start event to the end of the stop; 0 if unknown
	Err       string        // why a stop failed
	Workload  watcher.Workload
	Container watcher.Container
	Findings  []watcher.Finding
	// LoopTripped marks the first alert of a workload the loop breaker
	// holds: an orchestrator keeps recreating it.
	LoopTripped bool
}

// Notifier delivers alerts somewhere. Notify must return when ctx ends.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, a Alert) error
}

// Defaults of a Dispatcher.
const (
	DefaultQueueSize = 1024
	notifyTimeout    = 30 * time.Second
)

// Dispatcher fans alerts out to notifiers, each through its own queue.
type Dispatcher struct {
	log    *slog.Logger
	queues []*queue
	wg     sync.WaitGroup
}

type queue struct {
	n       Notifier
	alerts  chan Alert
	dropped atomic.Int64
}

// NewDispatcher starts one worker per notifier. Close stops them.
func NewDispatcher(log *slog.Logger, queueSize int, notifiers ...Notifier) *Dispatcher {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	d := &Dispatcher{log: log}
	for _, n := range notifiers {
		q := &queue{n: n, alerts: make(chan Alert, queueSize)}
		d.queues = append(d.queues, q)
		d.wg.Go(func() { d.deliver(q) })
	}
	return d
}

// Send queues a for every notifier and returns at once.
//
// TODO: a full queue drops the alert, counted and logged; alerts are to
// be spooled to state_dir and retried instead.
func (d *Dispatcher) Send(a Alert) {
	for _, q := range d.queues {
		select {
		case q.alerts <- a:
		default:
			n := q.dropped.Add(1)
			d.log.Error("alert queue full, alert dropped", "notifier", q.n.Name(),
				"container_id", a.Container.ID, "dropped_total", n)
		}
	}
}

func (d *Dispatcher) deliver(q *queue) {
	log := d.log.With("notifier", q.n.Name())
	for a := range q.alerts {
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		err := q.n.Notify(ctx, a)
		cancel()
		if err != nil {
			log.Error("alert not delivered", "container_id", a.Container.ID, "err", err)
		}
	}
}

// ErrFlushTimeout is returned by Close when queued alerts remain.
var ErrFlushTimeout = errors.New("alerts still queued at shutdown")

// Close stops taking alerts and waits for the queues to drain, until ctx
// ends.
func (d *Dispatcher) Close(ctx context.Context) error {
	for _, q := range d.queues {
		close(q.alerts)
	}
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ErrFlushTimeout
	}
}
