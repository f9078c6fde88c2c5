//go:build integration

// Package integration runs portwarden against a real Docker Engine. The
// tests build their own image and binary, and remove every container they
// start, even when they fail.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portwarden/portwarden/test/enginetest"
)

var (
	engine     *enginetest.Engine // the machine's engine, for check
	own        *enginetest.Engine // an engine of this run's own, for run
	ownDaemon  *enginetest.Daemon
	portwarden string // the binary under test
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var err error
	if engine, err = enginetest.Connect(ctx, ""); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer engine.Cleanup(context.Background(), func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	})

	bin, err := os.MkdirTemp("", "portwarden-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(bin)
	portwarden = filepath.Join(bin, "portwarden")
	if err := enginetest.GoBuild("cmd/portwarden", portwarden); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	if err := engine.BuildImage(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}

	// portwarden run stops containers: it gets an engine of its own, so
	// that it never touches containers nobody gave it.
	if ownDaemon, err = enginetest.StartDaemon(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "integration: starting a dockerd of our own:", err)
		return 1
	}
	defer func() {
		if err := ownDaemon.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "integration: cleanup:", err)
		}
	}()
	if own, err = enginetest.Connect(ctx, ownDaemon.Host); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer own.Cleanup(context.Background(), func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	})
	if err := own.BuildImage(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	return m.Run()
}
