package remediate

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/watcher"
)

// fakeEngine records the calls made to it, in order.
type fakeEngine struct {
	calls   []string
	stopErr error
	running bool // what an inspect says
}

func (f *fakeEngine) ContainerStop(_ context.Context, id string, o client.ContainerStopOptions) (
	client.ContainerStopResult, error) {
	f.calls = append(f.calls, "stop "+id+" t="+strconv.Itoa(*o.Timeout))
	return client.ContainerStopResult{}, f.stopErr
}

func (f *fakeEngine) ContainerKill(_ context.Context, id string, o client.ContainerKillOptions) (
	client.ContainerKillResult, error) {
	f.calls = append(f.calls, "kill "+id+" "+o.Signal)
	return client.ContainerKillResult{}, f.stopErr
}

func (f *fakeEngine) ContainerUpdate(_ context.Context, id string,
	o client.ContainerUpdateOptions) (client.ContainerUpdateResult, error) {
	f.calls = append(f.calls, "update "+id+" restart="+string(o.RestartPolicy.Name))
	return client.ContainerUpdateResult{}, nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string,
	_ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.calls = append(f.calls, "inspect "+id)
	return client.ContainerInspectResult{Container: container.InspectResponse{
		ID: id, State: &container.State{Running: f.running}}}, nil
}

var defaults = Options{Action: "stop", DisableRestart: true, LoopMaxStops: 3,
	LoopWindow: 10 * time.Minute}

func evaluation(id, restart string) watcher.Evaluation {
	return watcher.Evaluation{
		Container:     watcher.Container{ID: id, Name: id},
		Workload:      watcher.Workload{Kind: "container", Name: id},
		RestartPolicy: restart,
	}
}

func TestEnforce(t *testing.T) {
	kill := defaults
	kill.Action = "kill"
	keep := defaults
	keep.DisableRestart = false
	dry := defaults
	dry.DryRun = true
	slow := defaults
	slow.StopTimeout = 5 * time.Second

	tests := []struct {
		name        string
		opts        Options
		restart     string
		stopErr     error
		exited      bool // the evaluation found it exited
		running     bool // an inspect after a refused stop finds it running
		wantVerdict Verdict
		wantCalls   []string
	}{
		{"stop with no grace is a kill, then the restart policy", defaults, "always", nil,
			false, false, Stopped, []string{"kill c1 KILL", "update c1 restart=no"}},
		{"no restart policy to change", defaults, "no", nil, false, false, Stopped,
			[]string{"kill c1 KILL"}},
		{"kill", kill, "unless-stopped", nil, false, false, Stopped,
			[]string{"kill c1 KILL", "update c1 restart=no"}},
		{"restart policy kept", keep, "always", nil, false, false, Stopped,
			[]string{"kill c1 KILL"}},
		{"stop timeout", slow, "no", nil, false, false, Stopped, []string{"stop c1 t=5"}},
		{"dry run calls nothing", dry, "always", nil, false, false, WouldStop, nil},
		{"engine refuses", defaults, "always", errors.New("boom"), false, false, StopFailed,
			[]string{"kill c1 KILL"}},
		{"container gone", defaults, "always", cerrdefs.ErrNotFound, false, false, Gone,
			[]string{"kill c1 KILL"}},
		{"exited: only the restart policy", defaults, "always", nil, true, false, Exited,
			[]string{"update c1 restart=no"}},
		{"exited with no restart policy", defaults, "no", nil, true, false, Exited, nil},
		{"exited, dry run", dry, "on-failure", nil, true, false, Exited, nil},
		{"exited between the inspect and the stop", defaults, "always", cerrdefs.ErrConflict,
			false, false, Exited, []string{"kill c1 KILL", "inspect c1", "update c1 restart=no"}},
		{"a refused stop of a running container", defaults, "always", cerrdefs.ErrConflict,
			false, true, StopFailed, []string{"kill c1 KILL", "inspect c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := &fakeEngine{stopErr: tt.stopErr, running: tt.running}
			ev := evaluation("c1", tt.restart)
			ev.Exited = tt.exited
			out := NewEnforcer(engine, tt.opts).Enforce(context.Background(), ev)
			if out.Verdict != tt.wantVerdict || !slices.Equal(engine.calls, tt.wantCalls) {
				t.Errorf("Enforce = %s with calls %q, want %s with %q", out.Verdict, engine.calls,
					tt.wantVerdict, tt.wantCalls)
			}
			if (out.Verdict == StopFailed) != (out.Err != nil) {
				t.Errorf("Enforce err = %v with verdict %s", out.Err, out.Verdict)
			}
		})
	}
}

func TestLoopBreaker(t *testing.T) {
	engine := &fakeEngine{}
	e := NewEnforcer(engine, defaults)
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return now }
	web := evaluation("web-1", "no")
	web.Workload = watcher.Workload{Kind: "compose-service", Name: "shop/web"}
	other := evaluation("db-1", "no")

	var got []string
	enforce := func(ev watcher.Evaluation) {
		out := e.Enforce(context.Background(), ev)
		s := string(out.Verdict)
		if out.LoopTripped {
			s += " (tripped)"
		}
		got = append(got, s)
		now = now.Add(time.Minute)
	}
	for range 5 {
		enforce(web)
	}
	enforce(other) // another workload is not held
	now = now.Add(10 * time.Minute)
	enforce(web) // the window has passed

	want := []string{"stopped", "stopped", "stopped", "loop (tripped)", "loop", "stopped",
		"stopped"}
	if !slices.Equal(got, want) {
		t.Errorf("verdicts = %q, want %q", got, want)
	}
}
