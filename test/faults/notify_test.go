//go:build faults

package faults

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// slackStandIn is a Slack that hangs, then rate-limits once, then takes
// every message; it records the container IDs it took, in order.
type slackStandIn struct {
	mu      sync.Mutex
	hang    chan struct{} // closed to stop hanging
	limited bool
	got     []string
}

func (s *slackStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.hang:
	case <-r.Context().Done():
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.limited {
		s.limited = true
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	var msg struct{ Text string }
	json.NewDecoder(r.Body).Decode(&msg)
	s.got = append(s.got, msg.Text[len(msg.Text)-13:len(msg.Text)-1])
	w.Write([]byte("ok"))
}

// Slack hangs while violators start: they are stopped all the same, and
// syslog gets every record at once. Then Slack rate-limits, then answers:
// every alert is delivered once, in order.
func TestSlackDownThenBack(t *testing.T) {
	d, e := engine(t)
	slack := &slackStandIn{hang: make(chan struct{})}
	srv := httptest.NewServer(slack)
	defer srv.Close()
	defer func() {
		select {
		case <-slack.hang:
		default:
			close(slack.hang)
		}
	}()
	sockPath := filepath.Join(t.TempDir(), "log")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	p := start(t, d.Host, fmt.Sprintf("mode: enforce\nnotify:\n  dedup_window: 0s\n"+
		"  slack: {webhook_url: %q}\n  syslog: {enabled: true, network: unixgram, address: %q}\n",
		srv.URL+"/hook", sockPath))
	p.waitFor(t, "reconciled", 30*time.Second)

	var ids []string
	for i := range 3 {
		id := violator(t, e, fmt.Sprintf("while-slack-hangs-%d", i), fmt.Sprint(190+i))
		if !stoppedWithin(e, id, 10*time.Second) {
			t.Fatalf("violator %d not stopped while Slack hangs", i)
		}
		ids = append(ids, id[:12])
	}
	buf := make([]byte, 8192)
	for i := range 3 {
		sock.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("syslog record %d: %v (blocked behind Slack?)", i, err)
		}
		if !strings.Contains(string(buf[:n]), "stopped: container pwtest-") {
			t.Errorf("syslog record %q, want a stop", buf[:n])
		}
	}

	close(slack.hang) // Slack is back: one 429, then 200s
	deadline := time.Now().Add(60 * time.Second)
	for {
		slack.mu.Lock()
		got := slices.Clone(slack.got)
		slack.mu.Unlock()
		if len(got) >= 3 {
			time.Sleep(2 * time.Second) // room for a duplicate
			slack.mu.Lock()
			got = slices.Clone(slack.got)
			slack.mu.Unlock()
			if !slices.Equal(got, ids) {
				t.Errorf("Slack got %q, want %q once each, in order", got, ids)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Slack got %q of %q after it came back", got, ids)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The state_dir's disk fills up, then turns read-only: the daemon keeps
// enforcing, warns once each time, and writes its spool again when it can.
func TestStateDiskFullOrReadOnly(t *testing.T) {
	d, e := engine(t)
	state := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
		state).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs for state_dir: %v: %s", err, out)
	}
	defer exec.Command("umount", state).Run()
	filler := filepath.Join(state, "filler")
	os.WriteFile(filler, make([]byte, 512<<10), 0o600) // fails part way: the disk is full
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable) // alerts stay in the spool
	}))
	defer srv.Close()

	p := start(t, d.Host, fmt.Sprintf("mode: enforce\nstate_dir: %q\n"+
		"notify: {dedup_window: 0s, slack: {webhook_url: %q}}\n", state, srv.URL+"/hook"))
	p.waitFor(t, "reconciled", 30*time.Second)
	first := violator(t, e, "disk-full", "193")
	if !stoppedWithin(e, first, 10*time.Second) {
		t.Fatal("a violator was not stopped with the state disk full")
	}
	p.waitFor(t, "spool write failed; alerts kept in memory until it works", 10*time.Second)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	second := violator(t, e, "disk-back", "194")
	if !stoppedWithin(e, second, 10*time.Second) {
		t.Fatal("a violator was not stopped after the disk had room again")
	}
	p.waitFor(t, "spool writable again", 10*time.Second)
	if n := p.count("spool write failed; alerts kept in memory until it works"); n != 1 {
		t.Errorf("warned %d times, want once", n)
	}

	// Then read-only: the same, as a second episode.
	if out, err := exec.Command("mount", "-o", "remount,ro", state).CombinedOutput(); err != nil {
		t.Fatalf("remounting state_dir read-only: %v: %s", err, out)
	}
	third := violator(t, e, "disk-read-only", "195")
	if !stoppedWithin(e, third, 10*time.Second) {
		t.Fatal("a violator was not stopped with state_dir read-only")
	}
	waitCount(t, p, "spool write failed; alerts kept in memory until it works", 2)
	if out, err := exec.Command("mount", "-o", "remount,rw", state).CombinedOutput(); err != nil {
		t.Fatalf("remounting state_dir read-write: %v: %s", err, out)
	}
	fourth := violator(t, e, "disk-writable", "196")
	if !stoppedWithin(e, fourth, 10*time.Second) {
		t.Fatal("a violator was not stopped after state_dir was writable again")
	}
	waitCount(t, p, "spool writable again", 2)
}

// waitCount waits until p has logged msg n times, and fails if it logs
// it more often.
func waitCount(t *testing.T, p *proc, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.count(msg) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if got := p.count(msg); got != n {
		t.Errorf("logged %q %d times, want %d", msg, got, n)
	}
}

// The syslog receiver dies and comes back: the alerts of the violators
// stopped meanwhile reach it once it is back.
func TestSyslogDiesAndReturns(t *testing.T) {
	d, e := engine(t)
	sockPath := filepath.Join(t.TempDir(), "log")
	listen := func() *net.UnixConn {
		t.Helper()
		os.Remove(sockPath)
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sock := listen()
	p := start(t, d.Host, fmt.Sprintf("mode: enforce\nnotify:\n  dedup_window: 0s\n"+
		"  syslog: {enabled: true, network: unixgram, address: %q}\n", sockPath))
	p.waitFor(t, "reconciled", 30*time.Second)

	sock.Close() // the receiver dies
	os.Remove(sockPath)
	var ids []string
	for i := range 2 {
		id := violator(t, e, fmt.Sprintf("while-syslog-dead-%d", i), fmt.Sprint(195+i))
		if !stoppedWithin(e, id, 10*time.Second) {
			t.Fatalf("violator %d not stopped while syslog is down", i)
		}
		ids = append(ids, id)
	}
	p.waitFor(t, "notifier failing; retrying", 10*time.Second)

	sock = listen() // and comes back
	defer sock.Close()
	seen := map[string]bool{}
	buf := make([]byte, 8192)
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < len(ids) && time.Now().Before(deadline) {
		sock.SetReadDeadline(deadline)
		n, err := sock.Read(buf)
		if err != nil {
			break
		}
		for _, id := range ids {
			if strings.Contains(string(buf[:n]), id[:12]) {
				seen[id] = true
			}
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("syslog got %d of the %d alerts after it came back", len(seen), len(ids))
	}
}
