package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/watcher"
)

// notifyTestTimeout bounds each notifier's try in portwarden notify test.
const notifyTestTimeout = 30 * time.Second

// errNotifyFailed ends a notify test in which a notifier failed; each
// failure was printed already.
var errNotifyFailed = errors.New("a notifier failed")

func newNotifyCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "notify", Short: "Work with the notifiers"}
	cmd.AddCommand(&cobra.Command{
		Use:   "test",
		Short: "Send one synthetic alert through every configured notifier",
		Long: "test sends one synthetic alert through every notifier the config sets up,\n" +
			"directly, without the spool, and prints ok or failed with the reason for each.\n" +
			"It exits 1 if any notifier failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			routes, err := notifierRoutes(cfg, log)
			if err != nil {
				return err
			}
			return notifyTest(cmd.Context(), cmd, routes)
		},
	})
	return cmd
}

func notifyTest(ctx context.Context, cmd *cobra.Command, routes []notify.Route) error {
	host, _ := os.Hostname()
	a := notify.Alert{
		Host: host, Time: time.Now().UTC(), Mode: "test", Verdict: notify.VerdictTest,
		Workload: watcher.Workload{Kind: "container", Name: "portwarden-notify-test"},
		Container: watcher.Container{ID: "000000000000", Name: "portwarden-notify-test",
			Image: "none"},
		Findings: []watcher.Finding{{Kind: watcher.KindPrivilegedPort,
			Binding: &watcher.Binding{HostIP: "127.0.0.1", HostPort: 1, ContainerPort: 1,
				Protocol: "tcp"},
			Source: watcher.SourceRuntime, Rules: watcher.KindPrivilegedPort.RuleIDs()}},
	}
	failed := false
	for _, r := range routes {
		tryCtx, cancel := context.WithTimeout(ctx, notifyTestTimeout)
		err := r.Notifier.Notify(tryCtx, a)
		cancel()
		if err != nil {
			failed = true
			fmt.Fprintf(cmd.OutOrStdout(), "%s: failed: %v\n", r.Notifier.Name(), err)
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", r.Notifier.Name())
	}
	if failed {
		return errNotifyFailed
	}
	return nil
}
