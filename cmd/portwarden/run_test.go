package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portwarden/portwarden/test/testlog"
)

func TestRunRefusesABadConfigWithExConfig(t *testing.T) {
	code, _, stderr := runCLI(t, "mode: enforse", "run")
	if code != exitConfig || !strings.Contains(stderr, `mode: "enforse": must be one of`) {
		t.Errorf("run with a bad config = %d, %q; want 78 and the key", code, stderr)
	}
}

// With the engine down, the daemon still tells systemd it is ready, and
// says what it waits for.
func TestReadyWhileTheEngineIsDown(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)
	old := readyTimeout
	readyTimeout = 50 * time.Millisecond
	defer func() { readyTimeout = old }()

	missing := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := l.Addr().String()
	l.Close()
	cfg := filepath.Join(t.TempDir(), "portwarden.yaml")
	body := fmt.Sprintf("metrics: {listen: %q}\nstate_dir: %q\n", metrics, t.TempDir())
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCommand(nil)
	var stderr testlog.Buffer
	root.SetErr(&stderr)
	root.SetArgs([]string{"run", "--config", cfg, "--docker-host", missing})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	buf := make([]byte, 4096)
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := sock.Read(buf)
	want := "READY=1\nSTATUS=waiting for Docker Engine at " + missing
	if err != nil || string(buf[:n]) != want {
		t.Errorf("systemd was told %q, %v; want %q", buf[:n], err, want)
	}
	resp, err := http.Get("http://" + metrics + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	health, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(string(health), "event stream is not connected") {
		t.Errorf("/healthz = %d %q, want 503 and the reason", resp.StatusCode, health)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
	if !strings.Contains(stderr.String(), "engine unreachable, retrying") {
		t.Errorf("log does not say the engine is unreachable:\n%s", stderr.String())
	}
}
