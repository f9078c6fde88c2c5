package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/portwarden/portwarden/watcher"
)

// checkFlags are the flags of portwarden check.
type checkFlags struct {
	all     bool
	format  string
	timeout time.Duration
	files   []string // Compose or stack files, checked without an engine
}

func newCheckCommand(g *globalFlags) *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run the STIG's check once: exit 0 compliant, 1 findings, 2 error",
		Long: "check lists the engine's containers and reports every host port binding below\n" +
			"policy.privileged_below (STIG V-260924, V-260929), as the STIG's manual check\n" +
			"does, but from declared bindings too. It exits 0 when no finding is left that\n" +
			"is not allowed, 1 when one is, and 2 on any error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd, g, f)
		},
	}
	cmd.Flags().BoolVar(&f.all, "all", false,
		"also check created and stopped containers, by their declared bindings")
	cmd.Flags().StringVar(&f.format, "format", "text", "output format: text or json")
	cmd.Flags().DurationVar(&f.timeout, "timeout", time.Minute,
		"give up when the engine has not answered everything by then")
	cmd.Flags().StringArrayVarP(&f.files, "file", "f", nil,
		"check this Compose or stack file instead of the engine; repeat to merge overrides "+
			"in order")
	return cmd
}

func runCheck(cmd *cobra.Command, g *globalFlags, f checkFlags) error {
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--format: %q: must be text or json", f.format)
	}
	cfg, _, err := loadConfig(cmd, g)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	if len(f.files) > 0 {
		return checkFiles(ctx, cmd, cfg.WatcherPolicy(), f)
	}

	engine, info, err := watcher.Connect(ctx, engineOptions(cfg))
	if err != nil {
		return err
	}
	defer engine.Close()

	policy := cfg.WatcherPolicy()
	checkedAt := time.Now().UTC()
	res, err := watcher.Scan(ctx, engine, policy, watcher.ScanOptions{All: f.all})
	if err != nil {
		return fmt.Errorf("checking containers at %s: %w", info.Host, err)
	}
	services, err := checkServices(ctx, engine, policy, &res)
	if err != nil {
		return fmt.Errorf("checking services at %s: %w", info.Host, err)
	}

	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("reading the host name: %w", err)
	}
	r := newReport(host, checkedAt, &info, policy, f.all, res)
	r.addServices(services)
	if err := r.write(cmd.OutOrStdout(), f.format); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if r.Summary.Violations > 0 {
		return errFindings
	}
	return nil
}

// checkServices returns the findings of the services when the engine is a
// Swarm manager, or nil with swarm unknown to it. It drops the container
// findings of their tasks, which the service's findings account for.
func checkServices(ctx context.Context, api watcher.ServiceAPI, p watcher.Policy,
	res *watcher.ScanResult) (*serviceScan, error) {
	manager, err := watcher.IsManager(ctx, api)
	if err != nil || !manager {
		return nil, err
	}
	findings, n, err := watcher.ScanServices(ctx, api, p)
	if err != nil {
		return nil, err
	}
	covered := map[string]bool{}
	for _, f := range findings {
		covered[f.Service.ID] = true
	}
	kept := res.Findings[:0]
	for _, f := range res.Findings {
		if !covered[watcher.ServiceTask(f.Container)] {
			kept = append(kept, f)
		}
	}
	res.Findings = kept
	return &serviceScan{listed: n, findings: findings}, nil
}

// serviceScan is what a check found of the services.
type serviceScan struct {
	listed   int
	findings []watcher.Finding
}

// checkFiles checks Compose files, merged in order, as the STIG's clause on
// configuration files asks: no engine is needed.
func checkFiles(ctx context.Context, cmd *cobra.Command, p watcher.Policy, f checkFlags) error {
	logrus.SetOutput(io.Discard) // the loader's own warnings; its errors are returned
	project, err := watcher.LoadCompose(ctx, f.files)
	if err != nil {
		return err
	}
	findings, err := watcher.DetectCompose(project, f.files, p)
	if err != nil {
		return fmt.Errorf("checking %s: %w", strings.Join(f.files, ", "), err)
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("reading the host name: %w", err)
	}
	r := newReport(host, time.Now().UTC(), nil, p, false, watcher.ScanResult{Findings: findings})
	r.Scope, r.Files = "files", f.files
	if err := r.write(cmd.OutOrStdout(), f.format); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if r.Summary.Violations > 0 {
		return errFindings
	}
	return nil
}
