// Package lognotify is the notifier that writes each alert as one
// structured log line.
package lognotify

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/portwarden/portwarden/notify"
)

// Notifier logs alerts to a *slog.Logger.
type Notifier struct {
	log *slog.Logger
}

// New returns a Notifier that logs to log.
func New(log *slog.Logger) *Notifier {
	return &Notifier{log: log}
}

// Name returns "log".
func (n *Notifier) Name() string { return "log" }

// Notify writes a as one line: Warn for anything on-call must see, Error
// for a failed stop or a loop, Info for allowed findings.
func (n *Notifier) Notify(ctx context.Context, a notify.Alert) error {
	level := slog.LevelWarn
	switch a.Verdict {
	case notify.VerdictAllowed:
		level = slog.LevelInfo
	case notify.VerdictStopFailed, notify.VerdictLoop:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("verdict", a.Verdict),
		slog.String("host", a.Host),
		slog.String("mode", a.Mode),
		slog.String("container_id", a.Container.ID),
		slog.String("container_name", a.Container.Name),
		slog.String("image", a.Container.Image),
		slog.String("workload", a.Workload.String()),
		slog.String("bindings", strings.Join(a.Bindings(), " ")),
		slog.String("rules", strings.Join(a.RuleIDs(), ",")),
	}
	if !a.StartedAt.IsZero() {
		attrs = append(attrs, slog.String("started_at", a.StartedAt.UTC().Format(time.RFC3339Nano)))
	}
	if a.Action != "" {
		attrs = append(attrs, slog.String("action", a.Action),
			slog.Int64("duration_ms", a.Duration.Milliseconds()))
	}
	if a.RestartDisabled {
		attrs = append(attrs, slog.Bool("restart_disabled", true))
	}
	if a.Exposure > 0 {
		attrs = append(attrs, slog.Int64("exposure_ms", a.Exposure.Milliseconds()))
	}
	if a.Err != "" {
		attrs = append(attrs, slog.String("err", a.Err))
	}
	if a.Repeats > 0 {
		attrs = append(attrs, slog.Int("repeats", a.Repeats),
			slog.String("repeat_window", a.RepeatWindow.String()))
	}
	if a.Dropped > 0 {
		attrs = append(attrs, slog.Int("dropped_before", a.Dropped))
	}
	msg := "alert"
	if a.LoopTripped {
		msg = "alert: an orchestrator keeps recreating this workload; enforcement paused"
	}
	n.log.LogAttrs(ctx, level, msg, attrs...)
	return nil
}
