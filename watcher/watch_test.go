package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/testlog"
)

// fakeStream is an engine whose events, list and inspects a test drives.
type fakeStream struct {
	mu         sync.Mutex
	containers map[string]container.InspectResponse // running ones are listed
	down       bool
	failing    map[string]bool // inspects that fail, by container ID
	opened     chan fakeEvents
}

type fakeEvents struct {
	opts     client.EventsListOptions
	messages chan events.Message
	errs     chan error
}

func newFakeStream() *fakeStream {
	return &fakeStream{containers: map[string]container.InspectResponse{},
		opened: make(chan fakeEvents, 16)}
}

func (f *fakeStream) set(c container.InspectResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[c.ID] = c
}

func (f *fakeStream) failInspect(id string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing == nil {
		f.failing = map[string]bool{}
	}
	f.failing[id] = fail
}

func (f *fakeStream) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

var errDown = errors.New("dial unix /fake.sock: connect: connection refused")

func (f *fakeStream) Ping(context.Context, client.PingOptions) (client.PingResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return client.PingResult{}, errDown
	}
	return client.PingResult{APIVersion: "1.41"}, nil
}

func (f *fakeStream) ServerVersion(context.Context, client.ServerVersionOptions) (
	client.ServerVersionResult, error) {
	return client.ServerVersionResult{Version: "20.10.24", APIVersion: "1.41"}, nil
}

func (f *fakeStream) Events(ctx context.Context, o client.EventsListOptions) client.EventsResult {
	s := fakeEvents{opts: o, messages: make(chan events.Message), errs: make(chan error, 1)}
	go func() {
		<-ctx.Done()
		s.errs <- ctx.Err()
	}()
	f.opened <- s
	return client.EventsResult{Messages: s.messages, Err: s.errs}
}

func (f *fakeStream) ContainerList(context.Context, client.ContainerListOptions) (
	client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return client.ContainerListResult{}, errDown
	}
	var res client.ContainerListResult
	for _, c := range f.containers {
		if c.State.Running {
			res.Items = append(res.Items, summaryOf(c))
		}
	}
	return res, nil
}

func (f *fakeStream) ContainerInspect(_ context.Context, id string,
	_ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing[id] {
		return client.ContainerInspectResult{}, errors.New("context deadline exceeded")
	}
	c, ok := f.containers[id]
	if !ok {
		return client.ContainerInspectResult{}, errNotFound
	}
	return client.ContainerInspectResult{Container: c}, nil
}

// recorder is a Handler that records what it is handed.
type recorder struct {
	mu      sync.Mutex
	got     []Evaluation
	settle  bool
	handled chan Evaluation
}

func newRecorder(settle bool) *recorder {
	return &recorder{settle: settle, handled: make(chan Evaluation, 64)}
}

func (r *recorder) Handle(_ context.Context, e Evaluation) bool {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	r.handled <- e
	return r.settle
}

// watchHarness runs a Watcher on a fakeStream until the test ends.
type watchHarness struct {
	engine *fakeStream
	rec    *recorder
	w      *Watcher
	logs   *testlog.Buffer
}

func startWatch(t *testing.T, engine *fakeStream, rec *recorder, queueSize int) *watchHarness {
	t.Helper()
	logs := &testlog.Buffer{}
	w := NewWatcher(WatchOptions{
		Engine: engine, Host: "unix:///fake.sock", Handler: rec,
		Policy:  func() Policy { return defaultPolicy },
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Workers: 2, QueueSize: queueSize,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		RetryDelay: 10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &watchHarness{engine: engine, rec: rec, w: w, logs: logs}
}

// nextStream waits for the watcher to open an event stream.
func (h *watchHarness) nextStream(t *testing.T) fakeEvents {
	t.Helper()
	select {
	case s := <-h.engine.opened:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no event stream opened")
		return fakeEvents{}
	}
}

func (h *watchHarness) nextEvaluation(t *testing.T) Evaluation {
	t.Helper()
	select {
	case e := <-h.rec.handled:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no evaluation handled")
		return Evaluation{}
	}
}

// quiet checks that nothing more is handled for a while.
func (h *watchHarness) quiet(t *testing.T) {
	t.Helper()
	select {
	case e := <-h.rec.handled:
		t.Fatalf("unexpected evaluation of %s (%s)", e.Name, e.Origin)
	case <-time.After(50 * time.Millisecond):
	}
}

func (h *watchHarness) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-h.w.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("watcher never reconciled")
	}
}

func startEvent(c container.InspectResponse) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: events.ActionStart,
		Actor: events.Actor{ID: c.ID}, TimeNano: time.Now().UnixNano()}
}

// restarted returns c as it is after another start.
func restarted(c container.InspectResponse) container.InspectResponse {
	state := *c.State
	state.StartedAt = time.Now().UTC().Format(time.RFC3339Nano)
	c.State = &state
	return c
}

// exited returns c as it is after it stopped.
func exited(c container.InspectResponse) container.InspectResponse {
	state := *c.State
	state.Running = false
	c.State = &state
	return c
}

var errNotFound = notFound{}

type notFound struct{}

func (notFound) Error() string { return "no such container" }
func (notFound) NotFound()     {}

func TestWatchReconcilesAtStartThenFollowsStarts(t *testing.T) {
	engine := newFakeStream()
	web := loadInspect(t, "web")
	engine.set(web)
	engine.set(loadInspect(t, "unprivileged"))
	h := startWatch(t, engine, newRecorder(true), 16)

	s := h.nextStream(t)
	if s.opts.Since != "" {
		t.Errorf("first stream since = %q, want none", s.opts.Since)
	}
	if e := h.nextEvaluation(t); e.ID != web.ID || e.Origin != OriginReconcile ||
		len(e.Violations()) != 6 || !e.Enforceable || e.Workload.Name != "web" {
		t.Errorf("reconcile evaluation = %s %s, %d violations, enforceable %v; want web "+
			"reconcile with 6", e.Name, e.Origin, len(e.Violations()), e.Enforceable)
	}
	h.waitReady(t)

	rng := loadInspect(t, "range")
	engine.set(rng)
	s.messages <- startEvent(rng)
	if e := h.nextEvaluation(t); e.ID != rng.ID || e.Origin != OriginEvent ||
		e.EventTime.IsZero() {
		t.Errorf("event evaluation = %s %s at %v, want range from an event", e.Name, e.Origin,
			e.EventTime)
	}
	s.messages <- startEvent(web) // a replay of a settled start
	h.quiet(t)

	engine.set(restarted(web))
	s.messages <- startEvent(web)
	if e := h.nextEvaluation(t); e.ID != web.ID {
		t.Errorf("after a restart evaluated %s, want web again", e.Name)
	}
}

func TestWatchRetriesUnsettledStartsAtReconcile(t *testing.T) {
	engine := newFakeStream()
	web := loadInspect(t, "web")
	engine.set(web)
	h := startWatch(t, engine, newRecorder(false), 16)
	s := h.nextStream(t)
	h.nextEvaluation(t)
	h.waitReady(t)

	s.errs <- errors.New("unexpected EOF") // the stream breaks: reconnect, reconcile
	s2 := h.nextStream(t)
	if e := h.nextEvaluation(t); e.ID != web.ID || e.Origin != OriginReconcile {
		t.Errorf("after reconnect evaluated %s %s, want web by reconcile", e.Name, e.Origin)
	}
	if s2.opts.Since == "" {
		t.Error("reconnected stream has no since, want a resume point")
	}
}

// A start left unsettled is judged again at the next reconcile even if
// it has exited since, which a list of what runs would not show.
func TestWatchRetriesAnUnsettledStartThatExited(t *testing.T) {
	engine := newFakeStream()
	h := startWatch(t, engine, newRecorder(false), 16)
	s := h.nextStream(t)
	h.waitReady(t)
	web := loadInspect(t, "web")
	engine.set(web)
	s.messages <- startEvent(web)
	h.nextEvaluation(t) // its stop fails

	engine.set(exited(web))
	s.errs <- errors.New("unexpected EOF")
	h.nextStream(t)
	if e := h.nextEvaluation(t); e.ID != web.ID || e.Origin != OriginReconcile || !e.Exited {
		t.Errorf("after reconnect evaluated %s %s exited %v, want web by reconcile, exited",
			e.Name, e.Origin, e.Exited)
	}
}

// With a resume point from an earlier run, the first stream asks for the
// events after it; ResumePoint moves with the stream and stops when it is
// lost.
func TestWatchResumesWhereAnEarlierRunLeft(t *testing.T) {
	engine := newFakeStream()
	since := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	w := NewWatcher(WatchOptions{
		Engine: engine, Handler: newRecorder(true), Policy: func() Policy { return defaultPolicy },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Since: since,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	if !w.ResumePoint().IsZero() {
		t.Errorf("ResumePoint before any stream = %v, want zero", w.ResumePoint())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	s := <-engine.opened
	want := since.Add(-DefaultResumeWindow)
	if s.opts.Since != fmt.Sprintf("%d.%09d", want.Unix(), want.Nanosecond()) {
		t.Errorf("first stream since = %q, want %v", s.opts.Since, want)
	}
	<-w.Ready()
	if p := w.ResumePoint(); time.Since(p) > time.Second {
		t.Errorf("ResumePoint with a stream open = %v, want now", p)
	}
	engine.setDown(true)
	lost := time.Now()
	s.errs <- errors.New("unexpected EOF")
	for w.Connected() {
		time.Sleep(time.Millisecond)
	}
	p := w.ResumePoint()
	time.Sleep(20 * time.Millisecond) // retries fail meanwhile
	if p.Before(lost) || !w.ResumePoint().Equal(p) {
		t.Errorf("ResumePoint after the loss = %v, then %v; want when it was lost (after %v), "+
			"held", p, w.ResumePoint(), lost)
	}
}

// A periodic reconcile finds a violator whose start event never came,
// as when the engine drops events for a reader that fell behind; it says
// so at Debug only.
func TestWatchReconcilesPeriodically(t *testing.T) {
	engine := newFakeStream()
	logs := &testlog.Buffer{}
	rec := newRecorder(true)
	w := NewWatcher(WatchOptions{
		Engine: engine, Handler: rec, Policy: func() Policy { return defaultPolicy },
		Logger: slog.New(slog.NewTextHandler(logs,
			&slog.HandlerOptions{Level: slog.LevelDebug})),
		ReconcileInterval: 20 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-engine.opened
	<-w.Ready()

	web := loadInspect(t, "web")
	engine.set(web) // no event
	select {
	case e := <-rec.handled:
		if e.ID != web.ID || e.Origin != OriginReconcile {
			t.Errorf("evaluated %s %s, want web by reconcile", e.Name, e.Origin)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no periodic reconcile found the violator")
	}
	time.Sleep(100 * time.Millisecond) // several more rounds: the start is settled
	select {
	case e := <-rec.handled:
		t.Errorf("evaluated %s again", e.Name)
	default:
	}
	if n := strings.Count(logs.String(), `level=INFO msg=reconciled`); n != 1 {
		t.Errorf("%d reconciles at Info, want only the first:\n%s", n, logs)
	}
}

func TestWatchSurvivesAnOutageAndLogsItOnce(t *testing.T) {
	engine := newFakeStream()
	h := startWatch(t, engine, newRecorder(true), 16)
	s := h.nextStream(t)
	h.waitReady(t)

	engine.setDown(true)
	s.errs <- errors.New("unexpected EOF")
	time.Sleep(40 * time.Millisecond) // several failed retries
	web := loadInspect(t, "web")
	engine.set(web) // started while the engine was unreachable to us
	engine.setDown(false)

	h.nextStream(t)
	if e := h.nextEvaluation(t); e.ID != web.ID || e.Origin != OriginReconcile {
		t.Errorf("after the outage evaluated %s %s, want web by reconcile", e.Name, e.Origin)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, `msg="stream lost"`); n != 1 {
		t.Errorf("logged stream lost %d times, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs, `msg="stream back"`); n != 1 {
		t.Errorf("logged stream back %d times, want once:\n%s", n, logs)
	}
	if h.w.Stats().Reconnects != 1 {
		t.Errorf("reconnects = %d, want 1", h.w.Stats().Reconnects)
	}
}

// A worker stuck on a slow stop must not hold up the reader: events that
// do not fit are counted, and a reconcile picks their containers up.
func TestWatchOverflowTriggersReconcile(t *testing.T) {
	engine := newFakeStream()
	rec := &blockingRecorder{release: make(chan struct{}), handled: make(chan string, 256)}
	logs := &testlog.Buffer{}
	w := NewWatcher(WatchOptions{
		Engine: engine, Host: "unix:///fake.sock", Handler: rec,
		Policy: func() Policy { return defaultPolicy },
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Workers: 1, QueueSize: 1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	s := <-engine.opened
	<-w.Ready()
	base := loadInspect(t, "web")
	var ids []string
	for i := range 20 {
		c := base
		c.ID = strings.Repeat(string(rune('a'+i)), 64)
		engine.set(c)
		ids = append(ids, c.ID)
		s.messages <- startEvent(c) // never blocks, even with the worker stuck
	}
	if w.Stats().Dropped == 0 {
		t.Fatal("no event dropped with a queue of 1 and a stuck worker")
	}
	close(rec.release)
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for len(seen) < len(ids) {
		select {
		case id := <-rec.handled:
			seen[id] = true
		case <-deadline:
			t.Fatalf("handled %d of %d containers after the overflow", len(seen), len(ids))
		}
	}
	if !strings.Contains(logs.String(), "event queue full, reconciling") {
		t.Errorf("overflow not logged:\n%s", logs)
	}
}

type blockingRecorder struct {
	release chan struct{}
	handled chan string
}

func (b *blockingRecorder) Handle(_ context.Context, e Evaluation) bool {
	<-b.release
	b.handled <- e.ID
	return true
}

// A container that exited before its start could be inspected ran with
// its ports open all the same: it is judged by what it declares. One that
// is gone has nothing to judge.
func TestWatchJudgesAStartThatExitedBeforeInspect(t *testing.T) {
	engine := newFakeStream()
	h := startWatch(t, engine, newRecorder(true), 16)
	s := h.nextStream(t)
	h.waitReady(t)
	ghost := loadInspect(t, "web")
	ghost.ID = strings.Repeat("f", 64) // never set: inspect says not found
	s.messages <- startEvent(ghost)
	h.quiet(t)

	stopped := loadInspect(t, "exited")
	engine.set(stopped)
	s.messages <- startEvent(stopped)
	e := h.nextEvaluation(t)
	if e.ID != stopped.ID || !e.Exited || e.Origin != OriginEvent || len(e.Violations()) != 1 ||
		e.Violations()[0].Source != SourceDeclared || !e.Enforceable {
		t.Errorf("evaluation = %s exited %v %s, %+v; want the exited container, judged by "+
			"its declared binding", e.Name, e.Exited, e.Origin, e.Violations())
	}
	s.messages <- startEvent(stopped) // the same start again
	h.quiet(t)
}

// An inspect that fails is tried again by a reconcile soon after, even
// when the container has exited by then; it is said once.
func TestWatchRetriesAFailedInspect(t *testing.T) {
	engine := newFakeStream()
	h := startWatch(t, engine, newRecorder(true), 16)
	s := h.nextStream(t)
	h.waitReady(t)

	web := loadInspect(t, "web")
	engine.set(web)
	engine.failInspect(web.ID, true)
	s.messages <- startEvent(web)
	time.Sleep(50 * time.Millisecond) // several retries fail
	h.quiet(t)
	engine.set(exited(web)) // no longer listed by a reconcile
	engine.failInspect(web.ID, false)
	e := h.nextEvaluation(t)
	if e.ID != web.ID || e.Origin != OriginReconcile || !e.Exited {
		t.Errorf("retried evaluation = %s %s exited %v, want web by reconcile, exited",
			e.Name, e.Origin, e.Exited)
	}
	h.quiet(t)
	said := `msg="inspect failed; retried at the next reconcile"`
	if n := strings.Count(h.logs.String(), said); n != 1 {
		t.Errorf("said the inspect failed %d times, want once:\n%s", n, h.logs)
	}
}

func TestHeartbeat(t *testing.T) {
	engine := newFakeStream()
	rec := &blockingRecorder{release: make(chan struct{}), handled: make(chan string, 8)}
	w := NewWatcher(WatchOptions{
		Engine: engine, Handler: rec, Policy: func() Policy { return defaultPolicy },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 2, QueueSize: 4,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	s := <-engine.opened
	<-w.Ready()
	if !w.Connected() {
		t.Error("Connected() = false with a stream open")
	}

	hb := func() error {
		c, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer stop()
		return w.Heartbeat(c)
	}
	if err := hb(); err != nil {
		t.Fatalf("Heartbeat of an idle pipeline = %v", err)
	}
	web := loadInspect(t, "web")
	engine.set(web)
	s.messages <- startEvent(web) // its worker now hangs in the handler
	for w.Stats().Evaluated == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := hb(); err == nil {
		t.Error("Heartbeat with a stuck worker = nil, want an error")
	}
	if w.LastEvent().IsZero() {
		t.Error("LastEvent() is zero after an event")
	}
	close(rec.release)
	deadline := time.Now().Add(5 * time.Second)
	for hb() != nil {
		if time.Now().After(deadline) {
			t.Fatal("Heartbeat never passed again after the worker was released")
		}
	}
}
