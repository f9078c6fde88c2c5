package watcher

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeEngine serves a list and inspects from memory.
type fakeEngine struct {
	list    []container.Summary
	inspect func(id string) (container.InspectResponse, error)

	listAll   bool // what the last list asked for
	inspected sync.Map
	inFlight  atomic.Int32
	maxFlight atomic.Int32
}

func (e *fakeEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (
	client.ContainerListResult, error) {
	e.listAll = o.All
	return client.ContainerListResult{Items: e.list}, nil
}

func (e *fakeEngine) ContainerInspect(_ context.Context, id string,
	_ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	n := e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	for {
		m := e.maxFlight.Load()
		if n <= m || e.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond) // let calls overlap
	e.inspected.Store(id, true)
	c, err := e.inspect(id)
	return client.ContainerInspectResult{Container: c}, err
}

// summaryOf is what a list shows of an inspected container.
func summaryOf(c container.InspectResponse) container.Summary {
	s := container.Summary{ID: c.ID, Names: []string{c.Name}, State: c.State.Status}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	if c.State.Running {
		for port, bs := range c.NetworkSettings.Ports {
			for _, b := range bs {
				s.Ports = append(s.Ports, container.PortSummary{PrivatePort: port.Num(),
					PublicPort: parsePublic(b.HostPort), Type: string(port.Proto())})
			}
		}
		if len(c.NetworkSettings.Ports) > 0 && len(s.Ports) == 0 {
			s.Ports = []container.PortSummary{{PrivatePort: 80, Type: "tcp"}} // exposed only
		}
	}
	return s
}

func parsePublic(s string) uint16 {
	lo, _, _ := parseHostPorts(s)
	return uint16(lo)
}

func newFakeEngine(t *testing.T, fixtures ...string) *fakeEngine {
	byID := map[string]container.InspectResponse{}
	e := &fakeEngine{}
	for _, name := range fixtures {
		c := loadInspect(t, name)
		byID[c.ID] = c
		e.list = append(e.list, summaryOf(c))
	}
	e.inspect = func(id string) (container.InspectResponse, error) {
		return byID[id], nil
	}
	return e
}

func TestScanInspectsOnlyWhatCanHaveAFinding(t *testing.T) {
	e := newFakeEngine(t, "web", "unprivileged", "exposed-only", "hostnet", "exited",
		"stopped-range", "publish-all")
	res, err := Scan(context.Background(), e, defaultPolicy, ScanOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if !e.listAll {
		t.Error("Scan(All) listed only running containers")
	}
	var inspected []string
	e.inspected.Range(func(k, _ any) bool {
		inspected = append(inspected, k.(string)[:12])
		return true
	})
	slices.Sort(inspected)
	// exposed-only (58082d968870) publishes nothing and is the one skipped.
	want := []string{"0b5289a476d1", "6312857d952d", "a36e0ac0696c", "d6c184c5c03d",
		"e04e3d33324d", "feafba9a6de6"}
	if !slices.Equal(inspected, want) {
		t.Errorf("inspected %v, want %v", inspected, want)
	}
	if res.Listed != 7 || res.Inspected != 6 || res.Vanished != 0 {
		t.Errorf("listed, inspected, vanished = %d, %d, %d; want 7, 6, 0",
			res.Listed, res.Inspected, res.Vanished)
	}
	var names []string
	for _, f := range res.Findings {
		names = append(names, f.Name)
	}
	wantNames := []string{"exited", "hostnet", "stopped-range", "stopped-range",
		"web", "web", "web", "web", "web", "web"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("findings by container = %v, want %v", names, wantNames)
	}
}

func TestScanBoundsConcurrency(t *testing.T) {
	e := newFakeEngine(t)
	c := loadInspect(t, "exited")
	for i := range 40 {
		s := summaryOf(c)
		s.ID = strings.Repeat(string(rune('a'+i%26)), 12) + string(rune('0'+i/26))
		e.list = append(e.list, s)
	}
	e.inspect = func(string) (container.InspectResponse, error) { return c, nil }
	res, err := Scan(context.Background(), e, defaultPolicy, ScanOptions{All: true, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.maxFlight.Load(); got > 3 || got < 2 {
		t.Errorf("inspects in flight peaked at %d, want 2 or 3 with a limit of 3", got)
	}
	if len(res.Findings) != 40 {
		t.Errorf("findings = %d, want 40", len(res.Findings))
	}
}

func TestScanSkipsVanishedContainers(t *testing.T) {
	e := newFakeEngine(t, "web", "exited")
	web := loadInspect(t, "web")
	e.inspect = func(id string) (container.InspectResponse, error) {
		if id == web.ID {
			return web, nil
		}
		return container.InspectResponse{}, cerrdefs.ErrNotFound
	}
	res, err := Scan(context.Background(), e, defaultPolicy, ScanOptions{All: true})
	if err != nil {
		t.Fatalf("Scan with a vanished container = %v, want no error", err)
	}
	if res.Vanished != 1 || res.Inspected != 1 || len(res.Findings) != 6 {
		t.Errorf("vanished, inspected, findings = %d, %d, %d; want 1, 1, 6",
			res.Vanished, res.Inspected, len(res.Findings))
	}
}

func TestScanFailsOnInspectError(t *testing.T) {
	e := newFakeEngine(t, "web", "exited")
	refused := errors.New("engine says no")
	e.inspect = func(string) (container.InspectResponse, error) {
		return container.InspectResponse{}, refused
	}
	_, err := Scan(context.Background(), e, defaultPolicy, ScanOptions{All: true})
	if !errors.Is(err, refused) || !strings.Contains(err.Error(), "inspecting container") {
		t.Errorf("Scan = %v, want an inspect error wrapping %v", err, refused)
	}
}
