package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// burst is what one burst of N starts showed.
type burst struct {
	N          int
	Exposures  []time.Duration // one per violator
	LastStop   time.Duration   // from the first start event to the last port closed
	Stopped    int             // violators stopped
	Untouched  int             // compliant containers still running
	Dropped    float64         // events portwarden dropped
	Violators  int
	Compliants int
}

// bursts starts N containers at once, half of them violators, with
// portwarden watching, for each N.
func (l *lab) bursts(ctx context.Context, sizes []int) ([]burst, error) {
	var out []burst
	for _, n := range sizes {
		b, err := l.burst(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("burst of %d: %w", n, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func (l *lab) burst(ctx context.Context, n int) (burst, error) {
	p, err := l.startPortwarden()
	if err != nil {
		return burst{}, err
	}
	defer p.stop()

	b := burst{N: n}
	type violator struct {
		id   string
		port int
	}
	var violators []violator
	var compliant, all []string
	for i := range n {
		if i%2 == 0 {
			port := l.nextPort()
			id, err := l.createViolator(ctx, fmt.Sprintf("burst%d-v%d", n, i), port)
			if err != nil {
				return b, err
			}
			violators = append(violators, violator{id, port})
			all = append(all, id)
		} else {
			id, err := l.createCompliant(ctx, fmt.Sprintf("burst%d-c%d", n, i))
			if err != nil {
				return b, err
			}
			compliant = append(compliant, id)
			all = append(all, id)
		}
	}
	defer l.remove(context.Background(), all...)
	b.Violators, b.Compliants = len(violators), len(compliant)

	var mu sync.Mutex
	var wg sync.WaitGroup
	var first time.Time
	var last time.Time
	errs := make(chan error, n)
	for _, v := range violators {
		wg.Go(func() {
			// A probe of its own for each violator: every 20 ms, so that the
			// probes do not load the engine's proxies more than the burst.
			got, err := l.measure(ctx, v.id, v.port, false, 20*time.Millisecond, 2*time.Minute)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			b.Exposures = append(b.Exposures, got.Exposure)
			closedAt := time.Now()
			if first.IsZero() || closedAt.Add(-got.Exposure).Before(first) {
				first = closedAt.Add(-got.Exposure)
			}
			if closedAt.After(last) {
				last = closedAt
			}
		})
	}
	for _, id := range compliant {
		wg.Go(func() {
			_, err := l.engine.ContainerStart(ctx, id, client.ContainerStartOptions{})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return b, err
	}
	b.LastStop = last.Sub(first)
	time.Sleep(time.Second) // room for a wrong stop to show
	for _, v := range violators {
		if !running(ctx, l.engine, v.id) {
			b.Stopped++
		}
	}
	for _, id := range compliant {
		if running(ctx, l.engine, id) {
			b.Untouched++
		}
	}
	b.Dropped, err = p.metric("portwarden_events_dropped_total")
	return b, err
}
