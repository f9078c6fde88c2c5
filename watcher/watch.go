package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/internal/backoff"
)

// Defaults of WatchOptions.
const (
	DefaultWorkers      = 16
	DefaultQueueSize    = 256 // per worker
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 30 * time.Second
	DefaultResumeWindow = 2 * time.Second // replayed before the last event seen
	DefaultRetryDelay   = 5 * time.Second // before a failed inspect is tried again
	inspectTimeout      = 10 * time.Second
)

// StreamAPI is the part of the engine client that a watch uses.
// *client.Client implements it.
type StreamAPI interface {
	EngineAPI
	Ping(context.Context, client.PingOptions) (client.PingResult, error)
	ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error)
	Events(context.Context, client.EventsListOptions) client.EventsResult
}

// ServicesAPI is the part of the engine client that watching services
// uses. *client.Client implements it.
type ServicesAPI interface {
	ServiceAPI
	ServiceInspect(context.Context, string, client.ServiceInspectOptions) (
		client.ServiceInspectResult, error)
}

// Origin says how a watch came to evaluate a container.
type Origin string

// The origins of an evaluation.
const (
	OriginEvent     Origin = "event"     // a start event from the stream
	OriginReconcile Origin = "reconcile" // a list of what runs, outside the stream
)

// Evaluation is one started container judged under the policy: what a
// watch hands to its Handler when the container has findings.
type Evaluation struct {
	Container
	Service       *Service // set, without Container, when a Swarm service is evaluated
	StartedAt     time.Time
	Workload      Workload
	RestartPolicy string    // the container's restart policy: no, always, ...
	Findings      []Finding // allowed ones included, marked
	Enforceable   bool      // a finding that is not allowed is one enforce mode acts on
	Origin        Origin
	EventTime     time.Time // when the engine emitted the start; zero for a reconcile
	// Exited is true when the container had stopped by the time it was
	// inspected: it was judged by the bindings it declares, and there is
	// nothing left to stop.
	Exited bool
}

// Violations returns the findings of e that no allow rule matched.
func (e Evaluation) Violations() []Finding {
	var out []Finding
	for _, f := range e.Findings {
		if !f.Allowed {
			out = append(out, f)
		}
	}
	return out
}

// Handler acts on evaluations. Handle runs on the worker that owns the
// container, so calls for one container come in order. It returns whether
// the start is settled; an unsettled one is evaluated again at the next
// reconcile.
type Handler interface {
	Handle(ctx context.Context, e Evaluation) (settled bool)
}

// WatchOptions configure a Watcher. Zero values mean the defaults.
type WatchOptions struct {
	Engine       StreamAPI
	Services     ServicesAPI   // nil: containers only; else services too, on a Swarm manager
	Host         string        // the engine's address, for logs
	Policy       func() Policy // the policy in force; read for every evaluation
	Handler      Handler
	Logger       *slog.Logger
	Workers      int
	QueueSize    int
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	ResumeWindow time.Duration
	RetryDelay   time.Duration // before a reconcile retries a failed inspect
	// ReconcileInterval is how often a reconcile runs while the stream is
	// up, besides at each connect and overflow; 0 never.
	ReconcileInterval time.Duration
	// Since is where an earlier run left the stream (its ResumePoint):
	// the first stream asks the engine for the events after it, which the
	// engine still holds if it has not restarted. Zero starts from now.
	Since time.Time
}

// Stats counts what a watch has done.
type Stats struct {
	Events     int64 // events read from the stream
	Dropped    int64 // events not queued because a worker's queue was full
	Reconciles int64 // reconciles finished
	Evaluated  int64 // containers inspected and judged
	Reconnects int64 // streams opened after a loss
	Queued     int   // events and reconcile jobs waiting for a worker
	Running    int   // containers running at the last reconcile
	// LastReconcile is how long the last reconcile took to list and queue.
	LastReconcile time.Duration
}

// Watcher follows the engine's events and evaluates every container start,
// and reconciles what runs when it connects, reconnects or falls behind.
type Watcher struct {
	opts  WatchOptions
	log   *slog.Logger
	queue []chan job

	reconcileNow chan struct{}
	ready        chan struct{} // closed after the first reconcile

	events, dropped, reconciles, evaluated, reconnects atomic.Int64
	overflowing                                        atomic.Bool  // since the last reconcile
	connected                                          atomic.Bool  // a stream is open
	lastEvent                                          atomic.Int64 // unix nanoseconds
	resume                                             atomic.Int64 // unix nanoseconds: read up to
	lastReconcile                                      atomic.Int64 // nanoseconds
	manager                                            atomic.Bool  // the engine is a Swarm manager
	workerLogged                                       atomic.Bool
	running                                            atomic.Int64 // at the last reconcile

	// retry counts the failed inspects of each container whose start is
	// not judged yet (0: judged, but not settled), for every reconcile to
	// try again until one answers: a start seen is never given up on.
	retryMu sync.Mutex
	retry   map[string]int
}

// job is one thing for a worker: a container to evaluate, or to forget,
// or a heartbeat to answer.
type job struct {
	id        string
	origin    Origin
	eventTime time.Time
	destroyed bool
	service   bool // id is a Swarm service's
	retried   bool // its inspect failed before
	heartbeat chan<- struct{}
}

// NewWatcher returns a Watcher for opts; Run starts it.
func NewWatcher(opts WatchOptions) *Watcher {
	opts.Workers = cmp.Or(opts.Workers, DefaultWorkers)
	opts.QueueSize = cmp.Or(opts.QueueSize, DefaultQueueSize)
	opts.MinBackoff = cmp.Or(opts.MinBackoff, DefaultMinBackoff)
	opts.MaxBackoff = cmp.Or(opts.MaxBackoff, DefaultMaxBackoff)
	opts.ResumeWindow = cmp.Or(opts.ResumeWindow, DefaultResumeWindow)
	opts.RetryDelay = cmp.Or(opts.RetryDelay, DefaultRetryDelay)
	w := &Watcher{
		opts:         opts,
		log:          opts.Logger,
		reconcileNow: make(chan struct{}, 1),
		ready:        make(chan struct{}),
		retry:        map[string]int{},
	}
	for range opts.Workers {
		w.queue = append(w.queue, make(chan job, opts.QueueSize))
	}
	return w
}

// Stats returns the counts so far.
func (w *Watcher) Stats() Stats {
	queued := 0
	for _, q := range w.queue {
		queued += len(q)
	}
	return Stats{
		Events: w.events.Load(), Dropped: w.dropped.Load(), Reconciles: w.reconciles.Load(),
		Evaluated: w.evaluated.Load(), Reconnects: w.reconnects.Load(), Queued: queued,
		LastReconcile: time.Duration(w.lastReconcile.Load()), Running: int(w.running.Load()),
	}
}

// Ready is closed once the first reconcile has finished.
func (w *Watcher) Ready() <-chan struct{} {
	return w.ready
}

// Connected reports whether an event stream is open.
func (w *Watcher) Connected() bool {
	return w.connected.Load()
}

// LastEvent returns when the last event was read, or the zero time.
func (w *Watcher) LastEvent() time.Time {
	n := w.lastEvent.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// ResumePoint returns the time up to which the events have been read, for
// a later run to resume from (WatchOptions.Since): now while a stream is
// open, else when the last one was lost. It is the zero time before the
// first stream.
func (w *Watcher) ResumePoint() time.Time {
	if w.connected.Load() {
		return time.Now()
	}
	n := w.resume.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Heartbeat passes a token through every worker's queue and waits for
// each to come back: it proves that the pipeline makes progress. It fails
// when ctx ends first.
func (w *Watcher) Heartbeat(ctx context.Context) error {
	acks := make(chan struct{}, len(w.queue))
	for i, q := range w.queue {
		select {
		case q <- job{heartbeat: acks}:
		case <-ctx.Done():
			return fmt.Errorf("worker %d takes no work: %w", i, ctx.Err())
		}
	}
	for range w.queue {
		select {
		case <-acks:
		case <-ctx.Done():
			return fmt.Errorf("a worker is stuck: %w", ctx.Err())
		}
	}
	return nil
}

// Run watches until ctx ends, then lets the workers finish what they hold
// and returns. It never gives up on an engine that is down: it retries
// with backoff and says so once.
func (w *Watcher) Run(ctx context.Context) {
	var workers sync.WaitGroup
	for i := range w.queue {
		workers.Go(func() { w.work(ctx, w.queue[i]) })
	}
	var reconciler sync.WaitGroup
	reconciler.Go(func() { w.reconcileLoop(ctx) })

	w.follow(ctx)

	reconciler.Wait()
	for _, q := range w.queue {
		close(q)
	}
	workers.Wait()
}

// follow keeps one event stream open at a time, reopening it with backoff
// after a loss and resuming from just before the last event it read.
func (w *Watcher) follow(ctx context.Context) {
	var (
		since    = w.opts.Since // resume point; zero: from the first stream's opening
		lostAt   time.Time      // when the stream was lost; zero while it is up
		failures int
	)
	for ctx.Err() == nil {
		opened, err := w.stream(ctx, &since, func() {
			if !lostAt.IsZero() {
				w.reconnects.Add(1)
				w.log.Info("stream back", "outage_ms", time.Since(lostAt).Milliseconds())
			}
			lostAt, failures = time.Time{}, 0
			w.requestReconcile()
		})
		if ctx.Err() != nil {
			return
		}
		if lostAt.IsZero() {
			lostAt = time.Now()
			if opened {
				w.log.Warn("stream lost", "host", w.opts.Host, "err", err)
			} else {
				w.log.Warn("engine unreachable, retrying", "host", w.opts.Host, "err", err)
			}
		}
		failures++
		wait := backoff.Wait(failures, w.opts.MinBackoff, w.opts.MaxBackoff)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// stream connects, opens one event stream and reads it until it fails.
// onOpen runs once the stream is open. It reports whether the stream
// opened, and why it ended.
func (w *Watcher) stream(ctx context.Context, since *time.Time, onOpen func()) (bool, error) {
	_, err := w.opts.Engine.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return false, err
	}
	v, err := w.opts.Engine.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return false, err
	}

	manager, err := w.swarmRole(ctx)
	if err != nil {
		return false, err
	}

	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	filters := make(client.Filters).
		Add("type", string(events.ContainerEventType)).
		Add("event", string(events.ActionStart), string(events.ActionDestroy))
	if manager {
		filters.Add("type", string(events.ServiceEventType)).
			Add("event", string(events.ActionCreate), string(events.ActionUpdate))
	}
	opts := client.EventsListOptions{Filters: filters}
	if !since.IsZero() {
		from := since.Add(-w.opts.ResumeWindow)
		opts.Since = fmt.Sprintf("%d.%09d", from.Unix(), from.Nanosecond())
	} else {
		*since = time.Now()
	}
	res := w.opts.Engine.Events(streamCtx, opts)
	select {
	case err := <-res.Err: // the stream failed to open
		return false, err
	default:
	}
	w.log.Info("connected to engine", "host", w.opts.Host, "version", v.Version,
		"api_version", v.APIVersion)
	w.connected.Store(true)
	defer func() {
		w.resume.Store(time.Now().UnixNano())
		w.connected.Store(false)
	}()
	onOpen()

	for {
		select {
		case msg := <-res.Messages:
			w.read(msg, since)
		case err := <-res.Err:
			return true, cmp.Or(err, errors.New("stream closed"))
		}
	}
}

// swarmRole finds out whether the engine is a Swarm manager, whose
// services are watched too. A worker, which cannot see services, is said
// once.
func (w *Watcher) swarmRole(ctx context.Context) (bool, error) {
	if w.opts.Services == nil {
		return false, nil
	}
	info, err := w.opts.Services.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, fmt.Errorf("reading engine info: %w", err)
	}
	s := info.Info.Swarm
	manager := s.LocalNodeState == "active" && s.ControlAvailable
	w.manager.Store(manager)
	if s.LocalNodeState == "active" && !manager && !w.workerLogged.Swap(true) {
		w.log.Info("this node is a Swarm worker, which cannot see services: " +
			"checking containers only")
	}
	return manager, nil
}

// read hands one event to the worker that owns its container. It never
// blocks: the engine drops events for a subscriber that is slow to read.
func (w *Watcher) read(msg events.Message, since *time.Time) {
	w.events.Add(1)
	w.lastEvent.Store(time.Now().UnixNano())
	t := time.Unix(0, msg.TimeNano)
	if msg.TimeNano == 0 {
		t = time.Unix(msg.Time, 0)
	}
	if t.After(*since) {
		*since = t
	}
	j := job{id: msg.Actor.ID, origin: OriginEvent, eventTime: t,
		destroyed: msg.Action == events.ActionDestroy,
		service:   msg.Type == events.ServiceEventType}
	if !j.service && msg.Action != events.ActionStart && !j.destroyed {
		return // a container's create or update, let in by the service filter
	}
	select {
	case w.queue[w.shard(j.id)] <- j:
	default:
		w.dropped.Add(1)
		if !w.overflowing.Swap(true) {
			w.log.Warn("event queue full, reconciling", "container_id", j.id,
				"dropped_total", w.dropped.Load())
		}
		w.requestReconcile()
	}
}

func (w *Watcher) shard(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id)) // a hash never fails to write
	return int(h.Sum32()) % len(w.queue)
}

func (w *Watcher) requestReconcile() {
	select {
	case w.reconcileNow <- struct{}{}:
	default: // one is already due
	}
}

// reconcileLoop runs a reconcile each time one is requested, and every
// ReconcileInterval while the stream is up.
func (w *Watcher) reconcileLoop(ctx context.Context) {
	var tick <-chan time.Time
	if w.opts.ReconcileInterval > 0 {
		t := time.NewTicker(w.opts.ReconcileInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		level := slog.LevelInfo
		select {
		case <-ctx.Done():
			return
		case <-w.reconcileNow:
		case <-tick:
			if !w.connected.Load() {
				continue // the reconnect reconciles
			}
			level = slog.LevelDebug // routine: said only when it finds something
		}
		start := time.Now()
		w.overflowing.Store(false)
		n, err := w.reconcile(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("reconcile failed; the next reconnect retries it", "err", err)
			}
			continue
		}
		w.reconciles.Add(1)
		took := time.Since(start)
		w.lastReconcile.Store(int64(took))
		w.running.Store(int64(n))
		w.log.Log(ctx, level, "reconciled", "containers", n, "duration_ms", took.Milliseconds())
		select {
		case <-w.ready:
		default:
			close(w.ready)
		}
	}
}

// reconcile queues every running container for evaluation and returns how
// many there were. Queueing waits for room: a reconcile must not skip any.
func (w *Watcher) reconcile(ctx context.Context) (int, error) {
	list, err := w.opts.Engine.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return 0, fmt.Errorf("listing running containers: %w", err)
	}
	retry := w.retries()
	var jobs []job
	for _, s := range list.Items {
		if mayHaveFinding(s) || retry[s.ID] {
			jobs = append(jobs, job{id: s.ID, origin: OriginReconcile, retried: retry[s.ID]})
			delete(retry, s.ID)
		}
	}
	for id := range retry { // stopped or removed since: judged all the same
		jobs = append(jobs, job{id: id, origin: OriginReconcile, retried: true})
	}
	if w.manager.Load() {
		services, err := w.opts.Services.ServiceList(ctx, client.ServiceListOptions{})
		if err != nil {
			return 0, fmt.Errorf("listing services: %w", err)
		}
		for _, s := range services.Items {
			jobs = append(jobs, job{id: s.ID, origin: OriginReconcile, service: true})
		}
	}
	for _, j := range jobs {
		select {
		case w.queue[w.shard(j.id)] <- j:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return len(list.Items), nil
}

// retryLater keeps id for the reconciles to come, and asks for one soon
// while the stream is up. It reports whether this is id's first failure.
func (w *Watcher) retryLater(id string) bool {
	w.retryMu.Lock()
	w.retry[id]++
	first := w.retry[id] == 1
	w.retryMu.Unlock()
	if w.connected.Load() {
		time.AfterFunc(w.opts.RetryDelay, w.requestReconcile)
	}
	return first
}

// unsettled keeps id for the next reconcile, whether it runs by then or
// not, without asking for one.
func (w *Watcher) unsettled(id string) {
	w.retryMu.Lock()
	if _, ok := w.retry[id]; !ok {
		w.retry[id] = 0
	}
	w.retryMu.Unlock()
}

// retried forgets id once an inspect of it has answered.
func (w *Watcher) retried(id string) {
	w.retryMu.Lock()
	delete(w.retry, id)
	w.retryMu.Unlock()
}

// retries returns the containers whose inspect is to be tried again.
func (w *Watcher) retries() map[string]bool {
	w.retryMu.Lock()
	defer w.retryMu.Unlock()
	r := make(map[string]bool, len(w.retry))
	for id := range w.retry {
		r[id] = true
	}
	return r
}

// work evaluates the jobs of one queue in order. seen holds the start time
// of each container whose start is settled; only this worker touches it.
func (w *Watcher) work(ctx context.Context, q <-chan job) {
	seen := map[string]time.Time{}
	seenServices := map[string]uint64{} // service ID: the spec version settled
	for j := range q {
		if j.heartbeat != nil {
			j.heartbeat <- struct{}{}
			continue
		}
		if ctx.Err() != nil && j.origin == OriginReconcile {
			continue // shutting down: finish events in hand, skip the sweep
		}
		if j.destroyed {
			delete(seen, j.id)
			continue
		}
		if j.service {
			w.evaluateService(ctx, seenServices, j)
			continue
		}
		w.evaluate(ctx, seen, j)
	}
}

func (w *Watcher) evaluate(ctx context.Context, seen map[string]time.Time, j job) {
	log := w.log.With("container_id", j.id, "origin", j.origin)
	inspectCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inspectTimeout)
	res, err := w.opts.Engine.ContainerInspect(inspectCtx, j.id, client.ContainerInspectOptions{})
	cancel()
	if err == nil || cerrdefs.IsNotFound(err) {
		w.retried(j.id)
	}
	switch {
	case cerrdefs.IsNotFound(err) && j.retried:
		log.Warn("container removed before a failed inspect could be retried; " +
			"its bindings are unknown")
		return
	case cerrdefs.IsNotFound(err):
		log.Debug("container gone before inspect")
		return
	case err != nil:
		if w.retryLater(j.id) {
			log.Error("inspect failed; retried at the next reconcile", "err", err)
		} else {
			log.Debug("inspect failed again; retried at the next reconcile", "err", err)
		}
		return
	}
	c := res.Container
	if c.State == nil {
		log.Error("inspect has no state; not acting on this container")
		return
	}
	started, _ := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	if started.IsZero() {
		log.Debug("container never started")
		return
	}
	if prev, ok := seen[j.id]; ok && prev.Equal(started) {
		log.Debug("start already handled")
		return
	}

	policy := w.opts.Policy()
	findings, err := Detect(c, policy)
	w.evaluated.Add(1)
	if err != nil {
		log.Error("detection failed", "err", err)
		return
	}
	if w.manager.Load() && len(findings) > 0 && ServiceTask(findings[0].Container) != "" {
		findings = slices.DeleteFunc(findings, func(f Finding) bool {
			return f.Kind != KindHostNetwork // its ports are the service's, judged there
		})
	}
	if len(findings) == 0 {
		seen[j.id] = started
		log.Debug("no findings")
		return
	}
	e := Evaluation{
		Container: findings[0].Container,
		StartedAt: started,
		Findings:  findings,
		Origin:    j.origin,
		EventTime: j.eventTime,
		Exited:    !c.State.Running,
	}
	e.Workload = WorkloadOf(e.Container)
	if c.HostConfig != nil {
		e.RestartPolicy = string(c.HostConfig.RestartPolicy.Name)
	}
	for _, f := range e.Violations() {
		e.Enforceable = e.Enforceable || policy.Enforces(f.Kind)
	}
	// A stop under way finishes even when the watch is shutting down.
	if w.opts.Handler.Handle(context.WithoutCancel(ctx), e) {
		seen[j.id] = started
	} else {
		w.unsettled(j.id) // judged again by the next reconcile, running or not
	}
}

// evaluateService judges one Swarm service, once per version of its spec.
func (w *Watcher) evaluateService(ctx context.Context, seen map[string]uint64, j job) {
	log := w.log.With("service_id", j.id, "origin", j.origin)
	inspectCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inspectTimeout)
	res, err := w.opts.Services.ServiceInspect(inspectCtx, j.id, client.ServiceInspectOptions{})
	cancel()
	switch {
	case cerrdefs.IsNotFound(err):
		log.Debug("service gone before inspect")
		return
	case err != nil:
		log.Error("service inspect failed; not acting on this service", "err", err)
		return
	}
	version := res.Service.Version.Index
	if seen[j.id] == version {
		log.Debug("service version already handled")
		return
	}
	policy := w.opts.Policy()
	findings := DetectService(res.Service, policy)
	w.evaluated.Add(1)
	if len(findings) == 0 {
		seen[j.id] = version
		log.Debug("no findings")
		return
	}
	svc := *findings[0].Service
	e := Evaluation{
		Service:   &svc,
		Workload:  Workload{Kind: "swarm-service", Name: svc.Name},
		Findings:  findings,
		Origin:    j.origin,
		EventTime: j.eventTime,
	}
	e.Enforceable = len(e.Violations()) > 0
	if w.opts.Handler.Handle(context.WithoutCancel(ctx), e) {
		seen[j.id] = version
	}
}

var _ StreamAPI = (*client.Client)(nil)
