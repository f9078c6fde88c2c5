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
	engine     *enginetest.Engine
	portwarden string // the binary under test
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var err error
	if engine, err = enginetest.Connect(ctx); err != nil {
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
	return m.Run()
}
