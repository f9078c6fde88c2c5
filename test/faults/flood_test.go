//go:build faults

package faults

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// floodRate is how many events a second the flood asks the engine for.
const floodRate = 1000

// flood makes the engine emit container events that are not starts, at
// floodRate a second, until ctx ends, with one goroutine per container of
// ids (running, with no ports): execs created and never started, renames,
// and a share of containers created and removed unstarted, whose destroy
// events pass portwarden's filter and reach its workers.
func flood(ctx context.Context, t *testing.T, e *enginetest.Engine,
	ids []string) (renames, execs, churned *atomic.Int64) {
	t.Helper()
	tokens := make(chan struct{}, floodRate)
	go func() { // floodRate tokens a second, in steps of 10 ms
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				close(tokens)
				return
			case <-tick.C:
			}
			for range floodRate / 100 {
				select {
				case tokens <- struct{}{}:
				default: // the engine is behind; the rate is what it is
				}
			}
		}
	}()

	renames, execs, churned = new(atomic.Int64), new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			for n := 0; ; n++ {
				if _, ok := <-tokens; !ok {
					return
				}
				switch i % 8 {
				case 0: // create and remove, unstarted
					if churn(ctx, e, fmt.Sprintf("churn-%d-%d", i, n)) {
						churned.Add(1)
					}
				case 1:
					name := fmt.Sprintf("pwtest-%s-idle-%d-%d", e.Run, i, n%2)
					opts := client.ContainerRenameOptions{NewName: name}
					if _, err := e.ContainerRename(ctx, id, opts); err == nil {
						renames.Add(1)
					}
				default: // an exec created, never started: the engine's cheapest event
					opts := client.ExecCreateOptions{Cmd: []string{"/sleeper"}}
					if _, err := e.ExecCreate(ctx, id, opts); err == nil {
						execs.Add(1)
					}
				}
			}
		})
	}
	t.Cleanup(wg.Wait)
	return renames, execs, churned
}

// idle starts n containers with no ports, for the flood to work on.
func idle(t *testing.T, e *enginetest.Engine, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		spec := enginetest.Spec{Name: fmt.Sprintf("idle-%d", i), Start: true}
		id, _, err := e.Create(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// churn creates a container and removes it without starting it.
func churn(ctx context.Context, e *enginetest.Engine, name string) bool {
	id, _, err := e.Create(ctx, enginetest.Spec{Name: name})
	if err != nil {
		return false
	}
	_, err = e.ContainerRemove(context.WithoutCancel(ctx), id,
		client.ContainerRemoveOptions{Force: true})
	return err == nil
}

// countEvents counts, until ctx ends, the container events the engine
// emits that are not starts: what the flood achieved, as the engine saw it.
func countEvents(ctx context.Context, t *testing.T, e *enginetest.Engine) *atomic.Int64 {
	t.Helper()
	res := e.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type", string(events.ContainerEventType)),
	})
	n := new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-res.Messages:
				if m.Action != events.ActionStart {
					n.Add(1)
				}
			case <-res.Err:
				return
			}
		}
	}()
	t.Cleanup(func() { <-done })
	return n
}

// A flood of 1,000 container events a second that are not starts, with
// violators started among them: every violator is stopped, on its own
// start event, once.
func TestFloodOfOtherEvents(t *testing.T) {
	d, e := engine(t)
	p := start(t, d.Host, "mode: enforce\n")
	p.waitFor(t, "reconciled", 30*time.Second)

	idlers := idle(t, e, 32)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := countEvents(ctx, t, e)
	began := time.Now()
	renames, execs, churned := flood(ctx, t, e, idlers)
	time.Sleep(2 * time.Second) // the flood is at full rate

	var ids []string
	for i := range 10 {
		ids = append(ids, violator(t, e, fmt.Sprintf("in-flood-%d", i), fmt.Sprint(200+i)))
		time.Sleep(700 * time.Millisecond)
	}
	time.Sleep(time.Second)
	cancel()
	took := time.Since(began)
	rate := float64(seen.Load()) / took.Seconds()
	t.Logf("flood: %d events in %s (%.0f/s): %d execs created, %d renames, "+
		"%d containers created and removed", seen.Load(), took.Round(time.Millisecond), rate,
		execs.Load(), renames.Load(), churned.Load())
	// The engine must have been flooded for the case to mean anything; a
	// machine too slow for it fails here rather than pass unproved.
	if rate < 0.8*floodRate {
		t.Fatalf("the flood reached %.0f events/s, under 80%% of %d/s: the case proves nothing",
			rate, floodRate)
	}

	for _, id := range ids {
		if !stoppedWithin(e, id, 30*time.Second) {
			t.Fatalf("violator %.12s still running after the flood", id)
		}
	}
	time.Sleep(time.Second)
	var exposures []any
	for _, id := range ids {
		stops := p.logged("container stopped", map[string]any{"container_id": id})
		if len(stops) != 1 {
			t.Errorf("violator %.12s: stopped %d times, want once", id, len(stops))
			continue
		}
		if stops[0]["origin"] != "event" {
			t.Errorf("violator %.12s: stopped by %v, want by its start event", id,
				stops[0]["origin"])
		}
		exposures = append(exposures, stops[0]["exposure_ms"])
	}
	t.Logf("exposure of each violator, start event to stopped (ms): %v", exposures)
	if n := p.count("event queue full, reconciling"); n != 0 {
		t.Errorf("the event queue overflowed %d times", n)
	}
}
