package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/portwarden/portwarden/cmd/portwarden/config"
	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/notify/journald"
	"github.com/portwarden/portwarden/remediate"
	"github.com/portwarden/portwarden/systemd"
	"github.com/portwarden/portwarden/watcher"
)

// Daemon timings.
const (
	// shutdownTimeout bounds how long SIGTERM waits for stops in flight and
	// for queued alerts.
	shutdownTimeout = 10 * time.Second
	// statusInterval is how often the systemd status line is refreshed.
	statusInterval = 10 * time.Second
)

func newRunCommand(g *globalFlags, reload <-chan os.Signal) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Watch the engine and act on every container start (the daemon)",
		Long: "run follows the engine's events, evaluates every container start, and in\n" +
			"enforce mode stops a violator before it alerts. It reconciles everything that\n" +
			"runs at start-up and after each reconnect. SIGHUP reloads the config; SIGINT\n" +
			"and SIGTERM stop it after the stops in flight.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := loadConfig(cmd, g)
			if err != nil {
				return codedError{exitConfig, err}
			}
			d, err := newDaemon(cmd, g, cfg, path, cmd.ErrOrStderr())
			if err != nil {
				return codedError{exitConfig, err}
			}
			return d.run(cmd.Context(), reload)
		},
	}
}

// daemon is one `portwarden run`.
type daemon struct {
	reloadConfig func() (config.Config, string, error)
	cfg          config.Config
	level        *slog.LevelVar
	log          *slog.Logger
	host         string
	alerts       *notify.Dispatcher
	pipeline     *pipeline
	live         *live
	systemd      *systemd.Notifier
	readyOnce    sync.Once
}

func newDaemon(cmd *cobra.Command, g *globalFlags, cfg config.Config, path string,
	stderr io.Writer) (*daemon, error) {
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	if journald.UnderJournal() { // a systemd service: native journal fields
		h = journald.NewHandler(level, h)
	}
	log := slog.New(h)
	host, err := os.Hostname()
	if err != nil {
		log.Warn("host name unknown; alerts say \"unknown\"", "err", err)
		host = "unknown"
	}
	log.Info("starting", "version", version, "config", describePath(path), "mode", cfg.Mode,
		"dry_run", cfg.Enforce.DryRun)
	if w := config.PermissionWarning(path); w != "" {
		log.Warn(w)
	}

	routes, err := notifierRoutes(cfg, log)
	if err != nil {
		return nil, err
	}
	alerts := notify.NewDispatcher(
		notify.Options{Logger: log, DedupWindow: cfg.Notify.DedupWindow,
			StateDir: cfg.StateDir}, routes...)
	return &daemon{
		reloadConfig: func() (config.Config, string, error) { return loadConfig(cmd, g) },
		cfg:          cfg, level: level, log: log, host: host, alerts: alerts,
		systemd: systemd.New(log), live: &live{alerts: alerts},
	}, nil
}

func logLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s)) // validated already
	return l
}

func decisionOf(cfg config.Config) *decision {
	return &decision{mode: cfg.Mode, notifyAllowed: cfg.Notify.Allowed,
		policy: cfg.WatcherPolicy(), services: cfg.Enforce.Services}
}

func enforceOptions(cfg config.Config) remediate.Options {
	e := cfg.Enforce
	return remediate.Options{Action: e.Action, StopTimeout: e.StopTimeout,
		DisableRestart: e.DisableRestart, DryRun: e.DryRun,
		LoopMaxStops: e.Loop.MaxStops, LoopWindow: e.Loop.Window}
}

// readyTimeout bounds how long start-up waits for the engine before it
// tells systemd it is ready anyway: a node whose engine is down must not
// fail its boot because of portwarden. A variable for tests.
var readyTimeout = 20 * time.Second

// run watches until ctx ends. Each pass of its loop is one engine address;
// a reload that changes docker.* starts the next.
func (d *daemon) run(ctx context.Context, reload <-chan os.Signal) error {
	defer d.flushAlerts()
	if d.cfg.Metrics.Listen != "" {
		metricsCtx, stop := context.WithCancel(ctx)
		defer stop()
		go serveMetrics(metricsCtx, d.cfg.Metrics.Listen, d.live, d.log)
	}
	for {
		changed, err := d.watchEngine(ctx, reload)
		if err != nil || !changed {
			return err
		}
	}
}

// watchEngine runs one watcher on the engine of d.cfg until ctx ends or a
// reload changes the engine. It reports whether the engine changed.
func (d *daemon) watchEngine(ctx context.Context, reload <-chan os.Signal) (bool, error) {
	cli, err := watcher.NewClient(engineOptions(d.cfg))
	if err != nil {
		return false, err
	}
	defer cli.Close()
	d.pipeline = &pipeline{host: d.host, log: d.log, alerts: d.alerts, now: time.Now,
		enforcer: remediate.NewEnforcer(cli, enforceOptions(d.cfg))}
	d.pipeline.decision.Store(decisionOf(d.cfg))
	host := cli.DaemonHost()
	w := watcher.NewWatcher(watcher.WatchOptions{
		Engine: cli, Services: cli, Host: host, Policy: d.pipeline.policy,
		Handler: d.pipeline, Logger: d.log, Since: resumeSince(d.log, d.cfg.StateDir, host),
		ReconcileInterval: d.cfg.ReconcileInterval,
	})
	resume := &resumeKeeper{log: d.log, stateDir: d.cfg.StateDir, host: host, w: w}

	d.live.watcher.Store(w)
	d.live.pipeline.Store(d.pipeline)

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(watchCtx)
	}()
	go d.tellSystemd(watchCtx, w, d.pipeline, host)
	go resume.keep(watchCtx)

	for {
		select {
		case <-ctx.Done():
			d.systemd.Stopping()
			d.log.Info("stopping: finishing stops in flight")
			err := d.wait(stop, done)
			resume.save()
			return false, err
		case <-reload:
			d.systemd.Reloading()
			engineChanged := d.reload()
			d.systemd.Ready(status(w, d.pipeline, host))
			if engineChanged {
				d.log.Info("engine address changed: reconnecting", "host", d.cfg.Docker.Host)
				err := d.wait(stop, done)
				resume.save()
				return true, err
			}
		}
	}
}

// tellSystemd sends READY once the first reconcile is done, or after
// readyTimeout with the engine still away; then keeps the status line
// fresh, and feeds the watchdog while the pipeline passes its heartbeat.
func (d *daemon) tellSystemd(ctx context.Context, w *watcher.Watcher, p *pipeline,
	host string) {
	select {
	case <-w.Ready():
	case <-time.After(readyTimeout):
	case <-ctx.Done():
		return
	}
	d.readyOnce.Do(func() { d.systemd.Ready(status(w, p, host)) })
	if interval := systemd.WatchdogInterval(); interval > 0 {
		go d.systemd.Watchdog(ctx, interval, w.Heartbeat)
	}
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.systemd.Status(status(w, p, host))
		}
	}
}

// status is the one line systemctl status shows.
func status(w *watcher.Watcher, p *pipeline, host string) string {
	if !w.Connected() {
		return "waiting for Docker Engine at " + host
	}
	s := w.Stats()
	violations, stops := p.counts.totals()
	line := fmt.Sprintf("%s mode, watching %s: %d containers, %d events, %d findings, %d stops",
		p.decision.Load().mode, host, s.Running, s.Events, violations, stops)
	if last := w.LastEvent(); !last.IsZero() {
		line += fmt.Sprintf("; last event %s ago", time.Since(last).Round(time.Second))
	}
	return line
}

// reload loads the config again and puts it in force, or refuses it and
// keeps the one running. It reports whether the engine address changed.
func (d *daemon) reload() bool {
	cfg, path, err := d.reloadConfig()
	if err != nil {
		d.log.Error("config reload refused; the running config stays", "err", err)
		return false
	}
	if cfg.Log.Format != d.cfg.Log.Format {
		d.log.Warn("log.format changes at the next restart", "log_format", d.cfg.Log.Format)
	}
	if cfg.Notify.Slack != d.cfg.Notify.Slack || cfg.Notify.Syslog != d.cfg.Notify.Syslog ||
		cfg.Notify.DedupWindow != d.cfg.Notify.DedupWindow || cfg.StateDir != d.cfg.StateDir ||
		cfg.Metrics != d.cfg.Metrics || cfg.ReconcileInterval != d.cfg.ReconcileInterval {
		d.log.Warn("notifier, state_dir, metrics and reconcile_interval settings change at " +
			"the next restart")
	}
	old := d.cfg
	d.cfg = cfg
	d.level.Set(logLevel(cfg.Log.Level))
	d.pipeline.decision.Store(decisionOf(cfg))
	d.pipeline.enforcer.SetOptions(enforceOptions(cfg))
	d.log.Info("config reloaded", "config", describePath(path), "mode", cfg.Mode,
		"dry_run", cfg.Enforce.DryRun)
	return cfg.Docker != old.Docker
}

// wait stops the watcher and waits for it, at most shutdownTimeout.
func (d *daemon) wait(stop func(), done <-chan struct{}) error {
	stop()
	select {
	case <-done:
		return nil
	case <-time.After(shutdownTimeout):
		return fmt.Errorf("stops still in flight after %s", shutdownTimeout)
	}
}

func (d *daemon) flushAlerts() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := d.alerts.Close(ctx); errors.Is(err, notify.ErrFlushTimeout) {
		d.log.Error("alerts still queued at shutdown", "after", shutdownTimeout)
	}
}

func engineOptions(cfg config.Config) watcher.EngineOptions {
	return watcher.EngineOptions{Host: cfg.Docker.Host, CertPath: cfg.Docker.CertPath,
		TLSVerify: cfg.Docker.TLSVerify}
}
