package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwarden/portwarden/test/testlog"
	"github.com/portwarden/portwarden/watcher"
)

// scripted is a notifier whose answers a test sets, recording deliveries.
type scripted struct {
	mu        sync.Mutex
	answer    func(a Alert, try int) error
	tries     int
	delivered []Alert
	at        []time.Time
	got       chan struct{}
}

func newScripted(answer func(Alert, int) error) *scripted {
	return &scripted{answer: answer, got: make(chan struct{}, 100)}
}

func (s *scripted) Name() string { return "scripted" }

func (s *scripted) Notify(_ context.Context, a Alert) error {
	s.mu.Lock()
	s.tries++
	s.at = append(s.at, time.Now())
	err := s.answer(a, s.tries)
	if err == nil {
		s.delivered = append(s.delivered, a)
	}
	s.mu.Unlock()
	if err == nil {
		s.got <- struct{}{}
	}
	return err
}

func (s *scripted) wait(t *testing.T, n int) []string {
	t.Helper()
	for range n {
		select {
		case <-s.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("delivered %d of %d alerts", len(s.ids()), n)
		}
	}
	return s.ids()
}

func (s *scripted) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, a := range s.delivered {
		ids = append(ids, a.Container.ID)
	}
	return ids
}

var errServer = errors.New("slack server error: 500 Internal Server Error")

func fast() Options {
	return Options{MinRetry: time.Millisecond, MaxRetry: 5 * time.Millisecond}
}

func TestRetriesUntilDeliveredOnceInOrder(t *testing.T) {
	n := newScripted(func(_ Alert, try int) error {
		if try <= 5 {
			return errServer // the receiver is down for a while
		}
		return nil
	})
	logs := &testlog.Buffer{}
	opts := fast()
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	d := newTestDispatcher(t, opts, Route{Notifier: n})
	for _, id := range []string{"a", "b", "c"} {
		d.Send(alertFor(id))
	}
	if got := n.wait(t, 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("delivered %q, want a, b, c once each in order", got)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats()["scripted"]; s.Delivered != 3 || s.Retries != 5 || s.Queued != 0 {
		t.Errorf("stats = %+v, want 3 delivered after 5 retries", s)
	}
	if c := strings.Count(logs.String(), "notifier failing; retrying"); c != 1 {
		t.Errorf("logged the outage %d times, want once:\n%s", c, logs)
	}
	if !strings.Contains(logs.String(), "notifier delivering again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	n := newScripted(func(_ Alert, try int) error {
		if try == 1 {
			return &RetryAfterError{After: 200 * time.Millisecond, Err: errors.New("429")}
		}
		return nil
	})
	d := newTestDispatcher(t, fast(), Route{Notifier: n})
	defer d.Close(context.Background())
	d.Send(alertFor("a"))
	n.wait(t, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if gap := n.at[1].Sub(n.at[0]); gap < 200*time.Millisecond {
		t.Errorf("retried after %s, want at least the 200ms Retry-After", gap)
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	n := newScripted(func(a Alert, _ int) error {
		if a.Container.ID == "bad" {
			return Permanent(errors.New("invalid_auth"))
		}
		return nil
	})
	d := newTestDispatcher(t, fast(), Route{Notifier: n})
	d.Send(alertFor("bad"))
	d.Send(alertFor("good"))
	n.wait(t, 1)
	d.Close(context.Background())
	if s := d.Stats()["scripted"]; s.Refused != 1 || s.Delivered != 1 || n.tries != 2 {
		t.Errorf("stats = %+v after %d tries, want 1 refused, 1 delivered, 2 tries", s, n.tries)
	}
}

func TestSpoolSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	down := newScripted(func(Alert, int) error { return errServer })
	d := newTestDispatcher(t, fast(), Route{Notifier: down, SpoolDir: dir})
	for _, id := range []string{"a", "b", "c"} {
		d.Send(alertFor(id))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); !errors.Is(err, ErrFlushTimeout) {
		t.Fatalf("Close with the receiver down = %v, want ErrFlushTimeout", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 3 {
		t.Fatalf("spool holds %d files after the restart, want 3", len(files))
	}

	up := newScripted(func(Alert, int) error { return nil })
	d = newTestDispatcher(t, fast(), Route{Notifier: up, SpoolDir: dir})
	if got := up.wait(t, 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("after the restart delivered %q, want a, b, c", got)
	}
	d.Close(context.Background())
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 0 {
		t.Errorf("spool still holds %q after delivery", files)
	}
}

func TestFullSpoolDropsOldestAndSaysSo(t *testing.T) {
	var release sync.Once
	open := make(chan struct{})
	n := newScripted(func(Alert, int) error {
		select {
		case <-open:
			return nil
		default:
			return errServer
		}
	})
	opts := fast()
	opts.SpoolSize = 3
	d := newTestDispatcher(t, opts, Route{Notifier: n, SpoolDir: t.TempDir()})
	for i := range 5 {
		d.Send(alertFor(fmt.Sprint(i)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats()["scripted"].Queued != 3 || len(d.routes[0].intake) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("alerts never reached the spool")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the persister finish
	release.Do(func() { close(open) })
	got := n.wait(t, 3)
	d.Close(context.Background())
	if !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Errorf("delivered %q, want the newest three: 2, 3, 4", got)
	}
	var dropped []int
	for _, a := range n.delivered {
		dropped = append(dropped, a.Dropped)
	}
	if !slices.Equal(dropped, []int{2, 0, 0}) {
		t.Errorf("dropped counts carried = %v, want [2 0 0]: the first says so, once", dropped)
	}
}

func TestCorruptSpoolFileIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, fmt.Sprintf("%020d.json", 7))
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileSync(filepath.Join(dir, fmt.Sprintf("%020d.json", 8)),
		alertFor("kept")); err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	n := newScripted(func(Alert, int) error { return nil })
	opts := fast()
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	d := newTestDispatcher(t, opts, Route{Notifier: n, SpoolDir: dir})
	if got := n.wait(t, 1); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("delivered %q, want the readable alert", got)
	}
	d.Close(context.Background())
	if _, err := os.Stat(bad + corruptSuffix); err != nil {
		t.Errorf("corrupt file not moved aside: %v", err)
	}
	if !strings.Contains(logs.String(), "corrupt spool file moved aside") {
		t.Errorf("no warning for the corrupt file:\n%s", logs)
	}
}

// A spool that cannot be written keeps alerts in memory, warns once, and
// says so when it works again.
func TestUnwritableSpoolKeepsDelivering(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	logs := &testlog.Buffer{}
	open := make(chan struct{})
	n := newScripted(func(Alert, int) error {
		<-open
		return nil
	})
	opts := fast()
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	d := newTestDispatcher(t, opts, Route{Notifier: n, SpoolDir: dir})

	// The spool's folder becomes a file: no write can succeed.
	os.RemoveAll(dir)
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Send(alertFor("a"))
	d.Send(alertFor("b"))
	waitFor(t, func() bool { return d.Stats()["scripted"].Queued == 2 })

	os.Remove(dir) // space is back
	d.Send(alertFor("c"))
	waitFor(t, func() bool { return strings.Contains(logs.String(), "spool writable again") })
	close(open)
	if got := n.wait(t, 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("delivered %q, want a, b, c", got)
	}
	d.Close(context.Background())
	if c := strings.Count(logs.String(), "spool write failed"); c != 1 {
		t.Errorf("warned %d times, want once:\n%s", c, logs)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDeduper(t *testing.T) {
	var sent []string
	d := &deduper{window: 10 * time.Minute, open: map[watcher.Workload]*dedupWindow{},
		done: make(chan struct{}), send: func(a Alert) {
			s := a.Container.ID
			if a.Repeats > 0 {
				s += fmt.Sprintf(" +%d in %s", a.Repeats, a.RepeatWindow)
			}
			sent = append(sent, s)
		}}
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	web := watcher.Workload{Kind: "compose-service", Name: "shop/web"}
	alert := func(id string, w watcher.Workload, verdict string) Alert {
		return Alert{Verdict: verdict, Workload: w, Container: watcher.Container{ID: id}}
	}

	d.offer(alert("web-1", web, VerdictStopped))
	for i := 2; i <= 15; i++ {
		now = now.Add(time.Second)
		d.offer(alert(fmt.Sprintf("web-%d", i), web, VerdictStopped))
	}
	d.offer(alert("db-1", watcher.Workload{Kind: "container", Name: "db"}, VerdictStopped))
	d.offer(alert("web-16", web, VerdictStopFailed)) // failures always go out
	now = now.Add(10 * time.Minute)
	d.expire()
	d.offer(alert("web-17", web, VerdictStopped)) // a new window
	d.close()

	want := []string{"web-1", "db-1", "web-16", "web-15 +14 in 10m0s", "web-17"}
	if !slices.Equal(sent, want) {
		t.Errorf("sent %q, want %q", sent, want)
	}
}

// A start alerted before a restart is not alerted again after it; the same
// start with another verdict is, but "exited" after "stopped" is not: that
// is portwarden's own stop, seen again.
func TestLedgerAlertsAStartOnce(t *testing.T) {
	state := t.TempDir()
	started := time.Date(2026, 12, 3, 3, 0, 0, 123, time.UTC)
	alert := func(id, verdict string) Alert {
		a := alertFor(id)
		a.StartedAt, a.Verdict = started, verdict
		return a
	}
	n := newScripted(func(Alert, int) error { return nil })
	opts := fast()
	opts.StateDir = state
	d := newTestDispatcher(t, opts, Route{Notifier: n})
	d.Send(alert("c1", VerdictAlert))
	d.Send(alert("c1", VerdictAlert)) // a replay
	n.wait(t, 1)
	d.Close(context.Background())

	n2 := newScripted(func(Alert, int) error { return nil })
	d = newTestDispatcher(t, opts, Route{Notifier: n2})
	d.Send(alert("c1", VerdictAlert))      // the reconcile after a restart
	d.Send(alert("c1", VerdictStopped))    // enforce mode now stops it
	d.Send(alert("c1", VerdictExited))     // its start replayed, found exited
	d.Send(alert("c2", VerdictStopFailed)) // a stop that failed ...
	d.Send(alert("c2", VerdictExited))     // ... and how that start ended
	n2.wait(t, 3)
	d.Close(context.Background())
	var got []string
	for _, a := range n2.delivered {
		got = append(got, a.Container.ID+" "+a.Verdict)
	}
	want := []string{"c1 stopped", "c2 stop-failed", "c2 exited"}
	if len(n.delivered) != 1 || !slices.Equal(got, want) {
		t.Errorf("delivered %d before and %q after the restart; want 1, then %q",
			len(n.delivered), got, want)
	}
}

func TestLedgerCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerted")
	l := openLedger(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 3*ledgerSize + 7 {
		l.first(fmt.Sprint("key-", i))
	}
	l.close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(data), "\n")
	if lines > 2*ledgerSize+1 || lines < ledgerSize {
		t.Errorf("ledger file has %d lines, want between %d and %d", lines, ledgerSize,
			2*ledgerSize)
	}
	reopened := openLedger(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer reopened.close()
	if reopened.first(fmt.Sprint("key-", 3*ledgerSize+6)) || !reopened.first("key-0") {
		t.Error("reopened ledger forgot a recent key or kept the oldest")
	}
}
