// Package systemd tells systemd how portwarden is doing: READY, RELOADING
// and STOPPING around its life, a one-line STATUS, and WATCHDOG only
// while a check of the event pipeline passes. Outside systemd (no
// $NOTIFY_SOCKET) it does nothing.
package systemd

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to systemd.
type Notifier struct {
	log  *slog.Logger
	send func(state string) (bool, error)
}

// New returns a Notifier that logs to log what systemd refused.
func New(log *slog.Logger) *Notifier {
	return &Notifier{log: log, send: func(state string) (bool, error) {
		return daemon.SdNotify(false, state)
	}}
}

func (n *Notifier) notify(state string) {
	if _, err := n.send(state); err != nil {
		n.log.Warn("telling systemd failed", "state", state, "err", err)
	}
}

// Ready says that start-up (or a reload) is done, with a status line.
func (n *Notifier) Ready(status string) {
	n.notify(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// Reloading says that a reload has begun; Ready ends it.
func (n *Notifier) Reloading() {
	n.notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping says that shutdown has begun.
func (n *Notifier) Stopping() {
	n.notify(daemon.SdNotifyStopping)
}

// Status replaces the one-line status that systemctl status shows.
func (n *Notifier) Status(status string) {
	n.notify("STATUS=" + status)
}

// WatchdogInterval returns how often the watchdog must be fed, half of
// WatchdogSec, or 0 when systemd set no watchdog for this process.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// Watchdog feeds systemd's watchdog every interval, but only when check
// passes within that interval: a pipeline that makes no progress stops the
// feeding, and systemd restarts the daemon. It returns when ctx ends.
func (n *Notifier) Watchdog(ctx context.Context, interval time.Duration,
	check func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, interval)
		err := check(checkCtx)
		cancel()
		switch {
		case err == nil:
			if failing {
				n.log.Info("pipeline check passes again; feeding the watchdog")
			}
			failing = false
			n.notify(daemon.SdNotifyWatchdog)
		case ctx.Err() != nil:
			return
		case !failing:
			failing = true
			n.log.Error("pipeline check failed; not feeding the watchdog", "err", err)
		}
	}
}
