//go:build faults

package faults

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// startViolators starts a violator every interval until ctx ends, on host
// ports from 230 up, every other one with restart policy always. Calls
// the engine refuses, while it is down, are counted and go on.
func startViolators(ctx context.Context, t *testing.T, e *enginetest.Engine,
	interval time.Duration) (refused func() int) {
	t.Helper()
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; i < 60 && ctx.Err() == nil; i++ {
			p := network.MustParsePort("8080/tcp")
			spec := enginetest.Spec{Name: fmt.Sprintf("restart-%d", i), Start: true}
			spec.Config.ExposedPorts = network.PortSet{p: {}}
			spec.Config.Cmd = []string{"tcp:8080"}
			spec.HostConfig.PortBindings = network.PortMap{p: {{HostPort: fmt.Sprint(230 + i)}}}
			if i%2 == 0 {
				spec.HostConfig.RestartPolicy = container.RestartPolicy{
					Name: container.RestartPolicyAlways}
			}
			if _, _, err := e.Create(context.WithoutCancel(ctx), spec); err != nil {
				mu.Lock()
				n++
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	})
	t.Cleanup(wg.Wait)
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// The engine restarts while violators are being started, some of them
// still running when it goes down because portwarden's stops are held
// back just before. Every violator ends up stopped and is alerted; no
// start of one is stopped or alerted twice; and none is left with a
// restart policy that would bring it back.
func TestEngineRestartsWhileViolatorsStart(t *testing.T) {
	d, e := engine(t)
	proxy := proxied(t, d)
	p := start(t, "unix://"+proxy.Socket, "mode: enforce\n")
	p.waitFor(t, "reconciled", 30*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	refused := startViolators(ctx, t, e, 150*time.Millisecond)
	time.Sleep(2 * time.Second)
	proxy.Stall(`/containers/[^/]+/kill$`) // the stops of the last ones never arrive
	time.Sleep(time.Second)
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	proxy.Release() // to an engine that is gone
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	cancel()
	p.waitFor(t, "stream back", 30*time.Second)

	list, err := e.ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", enginetest.RunLabel+"="+e.Run),
	})
	if err != nil {
		t.Fatal(err)
	}
	ran, verdicts := 0, map[string]int{}
	for _, c := range list.Items {
		if !stoppedWithin(e, c.ID, 30*time.Second) {
			t.Errorf("violator %s still running after the engine restart", c.Names)
		}
	}
	time.Sleep(2 * time.Second) // the last alerts are written
	for _, c := range list.Items {
		res, err := e.ContainerInspect(context.Background(), c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ic := res.Container
		if ic.State.StartedAt == "" || ic.State.StartedAt == "0001-01-01T00:00:00Z" {
			continue // its start was refused, and the engine did not start it either
		}
		ran++
		stops := perStart(p.logged("container stopped",
			map[string]any{"container_id": c.ID}))
		alerts := p.logged("alert", map[string]any{"container_id": c.ID})
		if len(alerts) == 0 {
			t.Errorf("violator %s ran and was never alerted", c.Names)
		}
		for startedAt, n := range stops {
			if n != 1 {
				t.Errorf("violator %s: its start at %s was stopped %d times", c.Names, startedAt, n)
			}
		}
		byVerdict := map[string]int{}
		settled := false // its last start is alerted as stopped, or as exited
		last, _ := time.Parse(time.RFC3339Nano, ic.State.StartedAt)
		for _, a := range alerts {
			byVerdict[fmt.Sprint(a["started_at"], " ", a["verdict"])]++
			verdicts[fmt.Sprint(a["verdict"])]++
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(a["started_at"]))
			if at.Equal(last) && (a["verdict"] == "stopped" || a["verdict"] == "exited") {
				settled = true
			}
		}
		if !settled {
			t.Errorf("violator %s: no alert says its last start (%s) ended; alerts: %v",
				c.Names, ic.State.StartedAt, alerts)
		}
		for k, n := range byVerdict {
			if n != 1 {
				t.Errorf("violator %s: %d alerts for %s, want one", c.Names, n, k)
			}
		}
		if policy := ic.HostConfig.RestartPolicy.Name; policy != "" && policy != "no" {
			t.Errorf("violator %s ran, and keeps restart policy %q", c.Names, policy)
		}
	}
	t.Logf("%d violators created, %d ran, %d refused while the engine was down; alerts: %v",
		len(list.Items), ran, refused(), verdicts)
	if refused() == 0 || ran == 0 || p.count("stop failed") == 0 {
		t.Fatal("no violator was refused while the engine was down, none ran, or none " +
			"was running when it went down: the case proves nothing")
	}
	if n := p.count("stream lost"); n != 1 {
		t.Errorf("logged stream lost %d times, want once", n)
	}
}

// perStart counts lines by their started_at.
func perStart(lines []map[string]any) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		n[fmt.Sprint(l["started_at"])]++
	}
	return n
}
