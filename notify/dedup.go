package notify

import (
	"sync"
	"time"

	"github.com/portwarden/portwarden/watcher"
)

// deduper folds alerts about one workload within a window into a count.
// The first alert of a workload goes out at once; those that follow within
// the window are held as a count, which goes out with the last of them
// when the window ends. Failures and loop alerts always go out.
type deduper struct {
	window time.Duration
	send   func(Alert)
	now    func() time.Time

	mu     sync.Mutex
	open   map[watcher.Workload]*dedupWindow
	done   chan struct{}
	closed bool
}

type dedupWindow struct {
	start  time.Time
	held   int   // alerts folded since start
	latest Alert // the last of them
}

func newDeduper(window time.Duration, send func(Alert)) *deduper {
	d := &deduper{window: window, send: send, now: time.Now,
		open: map[watcher.Workload]*dedupWindow{}, done: make(chan struct{})}
	if window > 0 {
		go d.tick(min(window/10, time.Second))
	}
	return d
}

func (d *deduper) offer(a Alert) {
	always := a.Verdict == VerdictStopFailed || a.Verdict == VerdictTest || a.LoopTripped
	if d.window <= 0 || always {
		d.send(a)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	now := d.now()
	w, ok := d.open[a.Workload]
	if ok && now.Sub(w.start) < d.window {
		w.held++
		w.latest = a
		return
	}
	if ok {
		d.flushLocked(a.Workload, w)
	}
	d.open[a.Workload] = &dedupWindow{start: now}
	d.send(a)
}

// tick sends the counts of windows that have ended.
func (d *deduper) tick(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
		}
		d.expire()
	}
}

// expire sends the counts of the windows that have ended, and closes them.
func (d *deduper) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for k, w := range d.open {
		if now.Sub(w.start) >= d.window {
			d.flushLocked(k, w)
			delete(d.open, k)
		}
	}
}

func (d *deduper) flushLocked(_ watcher.Workload, w *dedupWindow) {
	if w.held == 0 {
		return
	}
	a := w.latest
	a.Repeats, a.RepeatWindow = w.held, d.window
	d.send(a)
}

// close sends every count still held and stops the ticker.
func (d *deduper) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	close(d.done)
	for k, w := range d.open {
		d.flushLocked(k, w)
	}
	d.open = nil
}
