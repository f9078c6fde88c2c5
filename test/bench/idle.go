package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// idle is portwarden's cost over a quiet minute and a busy one.
type idle struct {
	Span               time.Duration
	QuietCPU, BusyCPU  time.Duration
	QuietRSS, BusyRSS  int // KiB at the end
	BusyEvents         int // events that are not starts, during the busy span
	BusyStartExposure  time.Duration
	QuietStartExposure time.Duration
}

// idleCost runs portwarden for span with no events, then for span with 50
// events a second that are not starts (execs), and measures a violator's
// exposure at the end of each.
func (l *lab) idleCost(ctx context.Context, span time.Duration) (idle, error) {
	r := idle{Span: span}
	p, err := l.startPortwarden()
	if err != nil {
		return r, err
	}
	defer p.stop()
	busy, _, err := l.engine.Create(ctx, enginetest.Spec{Name: "exec-target", Start: true})
	if err != nil {
		return r, err
	}
	defer l.remove(context.Background(), busy)

	cpu0, _, err := p.usage()
	if err != nil {
		return r, err
	}
	time.Sleep(span)
	cpu1, rss1, err := p.usage()
	if err != nil {
		return r, err
	}
	r.QuietCPU, r.QuietRSS = cpu1-cpu0, rss1
	if r.QuietStartExposure, err = l.oneViolator(ctx, "quiet"); err != nil {
		return r, err
	}

	loadCtx, stop := context.WithCancel(ctx)
	done := make(chan int)
	go func() { done <- l.execLoad(loadCtx, busy) }()
	cpu2, _, _ := p.usage()
	time.Sleep(span - 2*time.Second)
	if r.BusyStartExposure, err = l.oneViolator(ctx, "busy"); err != nil {
		stop()
		return r, err
	}
	time.Sleep(2 * time.Second)
	stop()
	r.BusyEvents = <-done
	cpu3, rss3, err := p.usage()
	r.BusyCPU, r.BusyRSS = cpu3-cpu2, rss3
	return r, err
}

func (l *lab) oneViolator(ctx context.Context, name string) (time.Duration, error) {
	port := l.nextPort()
	id, err := l.createViolator(ctx, "idle-"+name, port)
	if err != nil {
		return 0, err
	}
	defer l.remove(context.Background(), id)
	v, err := l.measure(ctx, id, port, false, time.Millisecond, 10*time.Second)
	return v.Exposure, err
}

// execLoad creates and starts an exec in container id 25 times a second
// (two events each, 50 a second) until ctx ends, and returns how many
// events it made. Each exec runs on its own, so that a slow one does not
// slow the rate.
func (l *lab) execLoad(ctx context.Context, id string) int {
	t := time.NewTicker(40 * time.Millisecond)
	defer t.Stop()
	var events atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return int(events.Load())
		case <-t.C:
		}
		wg.Go(func() {
			ex, err := l.engine.ExecCreate(ctx, id, client.ExecCreateOptions{
				Cmd: []string{"/sleeper", "--version"}})
			if err != nil {
				return
			}
			events.Add(1)
			if _, err := l.engine.ExecStart(ctx, ex.ID,
				client.ExecStartOptions{Detach: true}); err == nil {
				events.Add(1)
			}
		})
	}
}
