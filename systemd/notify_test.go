package systemd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// notifySocket listens where systemd would, and returns what it receives.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return got
}

func next(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("systemd was told nothing")
		return ""
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLifecycleMessages(t *testing.T) {
	got := notifySocket(t)
	n := New(quietLog())
	n.Ready("watching unix:///var/run/docker.sock")
	n.Reloading()
	n.Status("reloaded")
	n.Stopping()
	if s := next(t, got); s != "READY=1\nSTATUS=watching unix:///var/run/docker.sock" {
		t.Errorf("ready = %q", s)
	}
	if s := next(t, got); !strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reloading = %q", s)
	}
	if s := next(t, got); s != "STATUS=reloaded" {
		t.Errorf("status = %q", s)
	}
	if s := next(t, got); s != "STOPPING=1" {
		t.Errorf("stopping = %q", s)
	}
}

// The watchdog is fed while the check passes, and not while it fails.
func TestWatchdogFollowsTheCheck(t *testing.T) {
	got := notifySocket(t)
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go New(quietLog()).Watchdog(ctx, 10*time.Millisecond, func(context.Context) error {
		if healthy.Load() {
			return nil
		}
		return errors.New("pipeline stuck")
	})
	if s := next(t, got); s != "WATCHDOG=1" {
		t.Fatalf("watchdog = %q", s)
	}
	healthy.Store(false)
	time.Sleep(30 * time.Millisecond)
	for len(got) > 0 { // what was sent before the check failed
		<-got
	}
	select {
	case s := <-got:
		t.Fatalf("fed the watchdog (%q) while the check failed", s)
	case <-time.After(100 * time.Millisecond):
	}
	healthy.Store(true)
	if s := next(t, got); s != "WATCHDOG=1" {
		t.Errorf("after recovery = %q", s)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := WatchdogInterval(); d != 15*time.Second {
		t.Errorf("WatchdogInterval() = %s, want 15s", d)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Errorf("WatchdogInterval() without a watchdog = %s, want 0", d)
	}
}
