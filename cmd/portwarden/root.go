package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/portwarden/portwarden/cmd/portwarden/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, the same for every command.
const (
	exitOK       = 0  // done, and nothing breaks a rule
	exitFindings = 1  // done, and something breaks a rule (or a notifier failed its test)
	exitError    = 2  // not done: bad config, engine unreachable, bad usage
	exitConfig   = 78 // the daemon's config is invalid (EX_CONFIG): do not restart
)

// codedError ends the process with its own exit code.
type codedError struct {
	code int
	err  error
}

// Error returns the wrapped error's text.
func (e codedError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e codedError) Unwrap() error { return e.err }

// errFindings ends a check that found violations: exit 1, no message.
var errFindings = errors.New("findings")

// run executes the command line args and returns the process's exit code.
// It writes results to stdout and one line per error to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	defer signal.Stop(reload)

	root := newRootCommand(reload)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFindings), errors.Is(err, errNotifyFailed):
		return exitFindings
	}
	fmt.Fprintf(stderr, "portwarden: %v\n", err)
	var coded codedError
	if errors.As(err, &coded) {
		return coded.code
	}
	return exitError
}

// globalFlags are the flags every command takes.
type globalFlags struct {
	configPath string
}

func newRootCommand(reload <-chan os.Signal) *cobra.Command {
	var g globalFlags
	root := &cobra.Command{
		Use:   "portwarden",
		Short: "Keep containers off privileged host ports (STIG V-260924, V-260929)",
		Long: "portwarden finds, reports and stops containers that map a host port below 1024,\n" +
			"as DISA STIG rules V-260924 (CNTR-MK-000570) and V-260929 (CNTR-MK-000650) require.",
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	f := root.PersistentFlags()
	f.StringVar(&g.configPath, "config", "",
		"config file (default "+config.DefaultPath+", which may be missing)")
	f.String("mode", "", "override mode: alert or enforce")
	f.String("docker-host", "", "override docker.host, the engine's address")
	f.String("log-level", "", "override log.level: debug, info, warn or error")
	f.String("log-format", "", "override log.format: text or json")

	root.AddCommand(newCheckCommand(&g), newRunCommand(&g, reload), newConfigCommand(&g),
		newNotifyCommand(&g), newVersionCommand())
	root.AddCommand(newGenDocsCommand(root))
	return root
}

// loadConfig loads the configuration that the command line names.
func loadConfig(cmd *cobra.Command, g *globalFlags) (config.Config, string, error) {
	return config.Load(config.Source{Path: g.configPath, Flags: cmd.Flags()})
}
