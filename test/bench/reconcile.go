package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/portwarden/portwarden/test/enginetest"
)

// reconcileRun is the start-up reconcile with N containers running.
type reconcileRun struct {
	N        int
	Duration time.Duration // median of three starts of portwarden
}

// reconciles measures the start-up reconcile with more and more running
// containers, each publishing an unprivileged port so that each is
// inspected.
func (l *lab) reconciles(ctx context.Context, sizes []int) ([]reconcileRun, error) {
	var out []reconcileRun
	var ids []string
	defer func() { l.remove(context.Background(), ids...) }()
	for _, n := range sizes {
		more, err := l.startCompliantPublishing(ctx, len(ids), n-len(ids))
		ids = append(ids, more...)
		if err != nil {
			return nil, err
		}
		var runs []time.Duration
		for range 3 {
			p, err := l.startPortwarden()
			if err != nil {
				return nil, err
			}
			line, err := p.waitFor("reconciled", time.Minute)
			p.stop()
			if err != nil {
				return nil, err
			}
			ms, _ := line["duration_ms"].(float64)
			runs = append(runs, time.Duration(ms*float64(time.Millisecond)))
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
		out = append(out, reconcileRun{N: n, Duration: runs[1]})
	}
	return out, nil
}

// startCompliantPublishing starts n containers that publish ports from
// 20000+from, eight at a time.
func (l *lab) startCompliantPublishing(ctx context.Context, from, n int) ([]string, error) {
	ids := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p := network.MustParsePort("8080/tcp")
			spec := enginetest.Spec{Name: fmt.Sprintf("scale-%d", from+i), Start: true}
			spec.Config.ExposedPorts = network.PortSet{p: {}}
			spec.HostConfig.PortBindings = network.PortMap{p: {{
				HostPort: fmt.Sprint(20000 + from + i)}}}
			id, _, err := l.engine.Create(ctx, spec)
			ids[i] = id
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return ids, err
	}
	return ids, nil
}
