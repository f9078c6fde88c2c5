// Package remediate stops containers that break the policy: a stop or a
// kill first, then the restart policy, with a loop breaker for workloads
// that an orchestrator keeps recreating.
package remediate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/watcher"
)

// callSlack is added to a stop's timeout for the engine's own work.
const callSlack = 30 * time.Second

// Engine is the part of the engine client that remediation uses.
// *client.Client implements it.
type Engine interface {
	ContainerStop(context.Context, string, client.ContainerStopOptions) (
		client.ContainerStopResult, error)
	ContainerKill(context.Context, string, client.ContainerKillOptions) (
		client.ContainerKillResult, error)
	ContainerUpdate(context.Context, string, client.ContainerUpdateOptions) (
		client.ContainerUpdateResult, error)
	ContainerInspect(context.Context, string, client.ContainerInspectOptions) (
		client.ContainerInspectResult, error)
}

// Options say how to act. Enforcer.SetOptions swaps them on a reload.
type Options struct {
	Action         string        // stop or kill
	StopTimeout    time.Duration // how long a stop waits before it kills
	DisableRestart bool          // set the restart policy to "no" after the stop
	DryRun         bool          // decide, but call nothing
	LoopMaxStops   int           // stops of one workload within LoopWindow before a pause
	LoopWindow     time.Duration
}

// Verdict says what became of an enforceable evaluation.
type Verdict string

// The verdicts of Enforce.
const (
	Stopped    Verdict = "stopped"     // the container was stopped
	WouldStop  Verdict = "would-stop"  // dry run: it would have been
	StopFailed Verdict = "stop-failed" // the engine refused or timed out
	Gone       Verdict = "gone"        // it was removed before the stop
	Exited     Verdict = "exited"      // it had stopped by itself: nothing to stop
	Loop       Verdict = "loop"        // the loop breaker holds this workload
)

// Outcome is what one Enforce did.
type Outcome struct {
	Verdict  Verdict
	Action   string        // stop, kill, or "" when nothing was called
	Duration time.Duration // of the stop or kill call
	Err      error         // why a stop failed, or why the restart policy stayed
	// LoopTripped is true for the first start a loop breaker holds, the one
	// to alert about loudly.
	LoopTripped     bool
	RestartDisabled bool // the restart policy was set to "no"
}

// Enforcer stops containers, and counts the stops of each workload.
type Enforcer struct {
	engine Engine
	opts   atomic.Pointer[Options]
	now    func() time.Time

	mu      sync.Mutex
	stops   map[watcher.Workload][]time.Time // recent stops, oldest first
	tripped map[watcher.Workload]bool        // breaker held since its last stop
}

// NewEnforcer returns an Enforcer that acts through engine.
func NewEnforcer(engine Engine, opts Options) *Enforcer {
	e := &Enforcer{
		engine:  engine,
		now:     time.Now,
		stops:   map[watcher.Workload][]time.Time{},
		tripped: map[watcher.Workload]bool{},
	}
	e.SetOptions(opts)
	return e
}

// SetOptions puts opts in force for the next Enforce.
func (e *Enforcer) SetOptions(opts Options) {
	e.opts.Store(&opts)
}

// Enforce stops the container of ev, unless the loop breaker holds its
// workload or this is a dry run. The caller decides that ev is to be
// enforced; Enforce does not look at the findings again. A container that
// has exited is not stopped, but its restart policy is still set to "no",
// so that the engine does not start it again.
func (e *Enforcer) Enforce(ctx context.Context, ev watcher.Evaluation) Outcome {
	opts := *e.opts.Load()
	if ev.Exited {
		return e.exited(ctx, ev, opts, Outcome{})
	}
	if held, first := e.held(ev.Workload, opts); held {
		return Outcome{Verdict: Loop, LoopTripped: first}
	}
	if opts.DryRun {
		return Outcome{Verdict: WouldStop, Action: opts.Action}
	}

	out := Outcome{Action: opts.Action}
	start := time.Now()
	err := e.stop(ctx, ev.ID, opts)
	out.Duration = time.Since(start)
	switch {
	case cerrdefs.IsNotFound(err):
		out.Verdict = Gone
		return out
	case cerrdefs.IsConflict(err) && e.notRunning(ctx, ev.ID):
		// It exited between the inspect and the stop.
		return e.exited(ctx, ev, opts, out)
	case err != nil:
		out.Verdict, out.Err = StopFailed, fmt.Errorf("%s: %w", opts.Action, err)
		return out
	}
	out.Verdict = Stopped
	e.count(ev.Workload)

	// The engine does not restart a container stopped through its API
	// until the engine itself restarts, so the policy can wait for the
	// stop rather than add to the exposure.
	out.RestartDisabled, out.Err = e.disableRestart(ctx, ev, opts)
	return out
}

// exited settles a container that stopped by itself: there is nothing to
// stop, and its restart policy is set to "no" unless this is a dry run.
func (e *Enforcer) exited(ctx context.Context, ev watcher.Evaluation, opts Options,
	out Outcome) Outcome {
	out.Verdict = Exited
	if !opts.DryRun {
		out.RestartDisabled, out.Err = e.disableRestart(ctx, ev, opts)
	}
	return out
}

// disableRestart sets the restart policy of ev's container to "no", when
// opts say so and it has another. It reports whether it did.
func (e *Enforcer) disableRestart(ctx context.Context, ev watcher.Evaluation,
	opts Options) (bool, error) {
	if !opts.DisableRestart || ev.RestartPolicy == "" || ev.RestartPolicy == "no" {
		return false, nil
	}
	_, err := e.engine.ContainerUpdate(ctx, ev.ID, client.ContainerUpdateOptions{
		RestartPolicy: &container.RestartPolicy{Name: container.RestartPolicyDisabled},
	})
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("setting restart policy to no: %w", err)
	}
	return true, nil
}

// notRunning reports whether the container id is known to have stopped:
// the engine's word on a refused stop, checked before it is believed.
func (e *Enforcer) notRunning(ctx context.Context, id string) bool {
	res, err := e.engine.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return err == nil && res.Container.State != nil && !res.Container.State.Running
}

func (e *Enforcer) stop(ctx context.Context, id string, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.StopTimeout+callSlack)
	defer cancel()
	// A stop with no grace is a kill: SIGTERM and an immediate SIGKILL
	// close the port no sooner, and the engine's stop waits for more.
	if opts.Action == "kill" || opts.StopTimeout < time.Second {
		_, err := e.engine.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
		return err
	}
	seconds := int(opts.StopTimeout.Round(time.Second) / time.Second)
	_, err := e.engine.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &seconds})
	return err
}

// held reports whether the loop breaker holds w, and whether this is the
// first start it holds since w's last stop.
func (e *Enforcer) held(w watcher.Workload, opts Options) (held, first bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	recent := e.recent(w, opts.LoopWindow)
	if len(recent) < opts.LoopMaxStops {
		delete(e.tripped, w)
		return false, false
	}
	first = !e.tripped[w]
	e.tripped[w] = true
	return true, first
}

func (e *Enforcer) count(w watcher.Workload) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stops[w] = append(e.stops[w], e.now())
}

// recent drops the stops of w older than window and returns the rest.
func (e *Enforcer) recent(w watcher.Workload, window time.Duration) []time.Time {
	cutoff := e.now().Add(-window)
	kept := e.stops[w]
	for len(kept) > 0 && kept[0].Before(cutoff) {
		kept = kept[1:]
	}
	if len(kept) == 0 {
		delete(e.stops, w)
		return nil
	}
	e.stops[w] = kept
	return kept
}
