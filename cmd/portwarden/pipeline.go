package main

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/remediate"
	"github.com/portwarden/portwarden/watcher"
)

// decision is the part of the config that decides what to do with an
// evaluation. A reload swaps it whole.
type decision struct {
	mode          string // alert or enforce
	notifyAllowed bool
	policy        watcher.Policy
	services      string // enforce.services: alert, scale-to-zero, remove-published-port
}

// pipeline is what the watcher hands evaluations to: it logs each finding,
// stops the container first when enforce mode says so, then queues the
// alert.
type pipeline struct {
	host     string
	log      *slog.Logger
	decision atomic.Pointer[decision]
	enforcer *remediate.Enforcer
	alerts   *notify.Dispatcher
	now      func() time.Time

	counts counts
}

// counts are what the pipeline did, for the status line and metrics.
type counts struct {
	mu       sync.Mutex
	findings map[watcher.Kind]int64 // violations, by kind
	outcomes map[string]int64       // enforcement outcomes
}

func (c *counts) add(fs []watcher.Finding, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.findings == nil {
		c.findings, c.outcomes = map[watcher.Kind]int64{}, map[string]int64{}
	}
	for _, f := range fs {
		c.findings[f.Kind]++
	}
	if outcome != "" {
		c.outcomes[outcome]++
	}
}

// snapshot returns copies of the counts.
func (c *counts) snapshot() (map[watcher.Kind]int64, map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.findings), maps.Clone(c.outcomes)
}

// totals returns the violations and the stops so far.
func (c *counts) totals() (violations, stops int64) {
	findings, outcomes := c.snapshot()
	for _, n := range findings {
		violations += n
	}
	return violations, outcomes[string(remediate.Stopped)]
}

func (p *pipeline) policy() watcher.Policy {
	return p.decision.Load().policy
}

// Handle implements watcher.Handler: it logs the findings, acts first
// when enforce mode says so, then queues the alert. A container is
// stopped; a Swarm service is acted on only with an enforce.services
// action other than alert.
func (p *pipeline) Handle(ctx context.Context, ev watcher.Evaluation) bool {
	d := p.decision.Load()
	log := p.logger(ev)
	logFindings(ctx, log, ev.Findings)

	violations := ev.Violations()
	if len(violations) == 0 {
		if d.notifyAllowed {
			p.alerts.Send(p.alert(ev, d.mode, ev.Findings, notify.VerdictAllowed))
		}
		return true
	}
	act := d.mode == "enforce" && ev.Enforceable
	if ev.Service != nil {
		act = act && d.services != remediate.ServiceAlert
	}
	if !act {
		p.counts.add(violations, "")
		p.alerts.Send(p.alert(ev, d.mode, violations, notify.VerdictAlert))
		return true
	}

	var out remediate.Outcome
	if ev.Service != nil {
		out = p.enforcer.EnforceService(ctx, ev, d.services)
	} else {
		out = p.enforcer.Enforce(ctx, ev)
	}
	if out.Verdict == remediate.AlreadyDone { // the update portwarden made, seen again
		log.Info("service scaled to zero by portwarden already")
		return true
	}
	p.counts.add(violations, string(out.Verdict))
	a := p.alert(ev, d.mode, violations, verdictOf(out))
	a.Action, a.Duration, a.LoopTripped = out.Action, out.Duration, out.LoopTripped
	a.RestartDisabled = out.RestartDisabled
	if out.Err != nil {
		a.Err = out.Err.Error()
	}
	if out.Verdict == remediate.Stopped && !ev.EventTime.IsZero() {
		a.Exposure = p.now().Sub(ev.EventTime)
	}
	logOutcome(ctx, log, out, a.Exposure)
	p.alerts.Send(a)
	return out.Verdict != remediate.StopFailed
}

// logger is p's logger with the keys that name what ev is about.
func (p *pipeline) logger(ev watcher.Evaluation) *slog.Logger {
	if s := ev.Service; s != nil {
		return p.log.With("service_id", s.ID, "service_name", s.Name, "image", s.Image,
			"workload", ev.Workload.String(), "origin", ev.Origin)
	}
	log := p.log.With("container_id", ev.ID, "container_name", ev.Name, "image", ev.Image,
		"workload", ev.Workload.String(), "origin", ev.Origin)
	if !ev.StartedAt.IsZero() { // tells one start of a container from the next
		log = log.With("started_at", ev.StartedAt.UTC().Format(time.RFC3339Nano))
	}
	return log
}

func (p *pipeline) alert(ev watcher.Evaluation, mode string, fs []watcher.Finding,
	verdict string) notify.Alert {
	a := notify.Alert{
		Host: p.host, Time: p.now().UTC(), Mode: mode, Verdict: verdict,
		Workload: ev.Workload, Container: ev.Container, StartedAt: ev.StartedAt, Findings: fs,
	}
	if s := ev.Service; s != nil { // the notifiers show the service where a container goes
		a.Container = watcher.Container{ID: s.ID, Name: s.Name, Image: s.Image}
	}
	return a
}

func verdictOf(out remediate.Outcome) string {
	switch out.Verdict {
	case remediate.Stopped:
		return notify.VerdictStopped
	case remediate.WouldStop:
		return notify.VerdictWouldStop
	case remediate.StopFailed:
		return notify.VerdictStopFailed
	case remediate.Exited:
		return notify.VerdictExited
	case remediate.Loop:
		return notify.VerdictLoop
	case remediate.ScaledToZero:
		return notify.VerdictScaled
	case remediate.PortRemoved:
		return notify.VerdictPortGone
	}
	return notify.VerdictAlert // gone before the stop, or skipped: exposed all the same
}

// logFindings writes one line per finding: Warn for a violation, Info for
// an allowed one.
func logFindings(ctx context.Context, log *slog.Logger, fs []watcher.Finding) {
	for _, f := range fs {
		attrs := []slog.Attr{slog.String("kind", string(f.Kind)),
			slog.String("source", string(f.Source))}
		if b := f.Binding; b != nil {
			attrs = append(attrs, slog.String("host_ip", b.HostIP),
				slog.String("host_port", b.HostPorts()), slog.String("protocol", b.Protocol),
				slog.Int("container_port", b.ContainerPort))
		}
		if f.Allowed {
			log.LogAttrs(ctx, slog.LevelInfo, "allowed finding",
				append(attrs, slog.String("allowed_by", f.AllowedBy))...)
			continue
		}
		log.LogAttrs(ctx, slog.LevelWarn, "finding", attrs...)
	}
}

// logOutcome writes the one line that says what enforcement did.
func logOutcome(ctx context.Context, log *slog.Logger, out remediate.Outcome,
	exposure time.Duration) {
	attrs := []slog.Attr{slog.String("action", out.Action),
		slog.String("outcome", string(out.Verdict)),
		slog.Int64("duration_ms", out.Duration.Milliseconds())}
	if exposure > 0 {
		attrs = append(attrs, slog.Int64("exposure_ms", exposure.Milliseconds()))
	}
	if out.Err != nil {
		attrs = append(attrs, slog.String("err", out.Err.Error()))
	}
	switch out.Verdict {
	case remediate.Stopped:
		if out.Err != nil { // stopped, but the restart policy could not be changed
			log.LogAttrs(ctx, slog.LevelError, "container stopped", attrs...)
			return
		}
		log.LogAttrs(ctx, slog.LevelInfo, "container stopped",
			append(attrs, slog.Bool("restart_disabled", out.RestartDisabled))...)
	case remediate.WouldStop:
		log.LogAttrs(ctx, slog.LevelInfo, "dry run: container would be stopped", attrs...)
	case remediate.StopFailed:
		log.LogAttrs(ctx, slog.LevelError, "stop failed", attrs...)
	case remediate.Gone:
		log.LogAttrs(ctx, slog.LevelInfo, "gone before the action", attrs...)
	case remediate.Exited:
		level := slog.LevelInfo
		if out.Err != nil { // its restart policy could not be changed
			level = slog.LevelError
		}
		log.LogAttrs(ctx, level, "container exited before it could be stopped",
			append(attrs, slog.Bool("restart_disabled", out.RestartDisabled))...)
	case remediate.ScaledToZero:
		log.LogAttrs(ctx, slog.LevelInfo, "service scaled to zero", attrs...)
	case remediate.PortRemoved:
		log.LogAttrs(ctx, slog.LevelInfo, "service published port removed", attrs...)
	case remediate.Skipped:
		log.LogAttrs(ctx, slog.LevelWarn, "service not acted on", attrs...)
	case remediate.Loop:
		level := slog.LevelWarn
		if out.LoopTripped {
			level = slog.LevelError
		}
		log.LogAttrs(ctx, level, "loop breaker holds this workload; not stopped", attrs...)
	}
}
