package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/remediate"
	"github.com/portwarden/portwarden/watcher"
)

// journal records, in order, what the engine and the notifier were asked.
type journal struct {
	mu      sync.Mutex
	entries []string
	alerts  []notify.Alert
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) ContainerStop(_ context.Context, id string, _ client.ContainerStopOptions) (
	client.ContainerStopResult, error) {
	j.add("stop " + id)
	return client.ContainerStopResult{}, nil
}

func (j *journal) ContainerKill(_ context.Context, id string, _ client.ContainerKillOptions) (
	client.ContainerKillResult, error) {
	j.add("kill " + id)
	return client.ContainerKillResult{}, nil
}

func (j *journal) ContainerUpdate(_ context.Context, id string, _ client.ContainerUpdateOptions) (
	client.ContainerUpdateResult, error) {
	j.add("update " + id)
	return client.ContainerUpdateResult{}, nil
}

func (j *journal) ContainerInspect(_ context.Context, id string,
	_ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	j.add("inspect " + id)
	return client.ContainerInspectResult{}, errors.New("not asked for in these tests")
}

func (j *journal) Name() string { return "journal" }

func (j *journal) Notify(_ context.Context, a notify.Alert) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, "alert "+a.Verdict)
	j.alerts = append(j.alerts, a)
	return nil
}

func privileged(allowed bool) watcher.Finding {
	f := watcher.Finding{Kind: watcher.KindPrivilegedPort,
		Binding: &watcher.Binding{HostIP: "0.0.0.0", HostPort: 80, ContainerPort: 8080,
			Protocol: "tcp"},
		Source: watcher.SourceRuntime, Rules: []string{"V-260924", "V-260929"}}
	if allowed {
		f.Allowed, f.AllowedBy = true, "mke"
	}
	return f
}

func TestPipelineServices(t *testing.T) {
	svc := &watcher.Service{ID: "s1", Name: "shop-web", Image: "shop/web", Mode: "replicated"}
	finding := func(allowed bool) watcher.Finding {
		f := privileged(allowed)
		f.Kind, f.Service = watcher.KindServicePublishedPort, svc
		return f
	}
	tests := []struct {
		name, mode, services string
		findings             []watcher.Finding
		want                 []string
	}{
		{"alert mode", "alert", "scale-to-zero", []watcher.Finding{finding(false)},
			[]string{"alert alert"}},
		{"enforce mode, services alerted", "enforce", "alert",
			[]watcher.Finding{finding(false)}, []string{"alert alert"}},
		{"an allowed service is left alone", "enforce", "scale-to-zero",
			[]watcher.Finding{finding(true)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			alerts := notify.NewDispatcher(notify.Options{Logger: log}, notify.Route{Notifier: j})
			p := &pipeline{host: "node-1", log: log, alerts: alerts, now: time.Now,
				enforcer: remediate.NewEnforcer(j, remediate.Options{Action: "stop",
					LoopMaxStops: 3, LoopWindow: time.Minute})}
			p.decision.Store(&decision{mode: tt.mode, services: tt.services})
			ev := watcher.Evaluation{Service: svc, Findings: tt.findings,
				Workload:    watcher.Workload{Kind: "swarm-service", Name: "shop-web"},
				Enforceable: true}
			if !p.Handle(context.Background(), ev) {
				t.Error("Handle = unsettled")
			}
			alerts.Close(context.Background())
			if !slices.Equal(j.entries, tt.want) {
				t.Errorf("did %q, want %q", j.entries, tt.want)
			}
			for _, a := range j.alerts {
				if a.Container.ID != "s1" || a.Container.Name != "shop-web" {
					t.Errorf("alert names %+v, want the service", a.Container)
				}
			}
		})
	}
}

func TestPipeline(t *testing.T) {
	hostNet := watcher.Finding{Kind: watcher.KindHostNetwork, Source: watcher.SourceRuntime}
	tests := []struct {
		name        string
		mode        string
		dryRun      bool
		notifyAllow bool
		exited      bool
		findings    []watcher.Finding
		enforceable bool
		want        []string
		settled     bool
	}{
		{"alert mode alerts only", "alert", false, false, false,
			[]watcher.Finding{privileged(false)}, true, []string{"alert alert"}, true},
		{"enforce mode stops first", "enforce", false, false, false,
			[]watcher.Finding{privileged(false)}, true,
			[]string{"kill c1", "update c1", "alert stopped"}, true},
		{"dry run", "enforce", true, false, false,
			[]watcher.Finding{privileged(false)}, true, []string{"alert would-stop"}, true},
		{"allowed is never stopped nor alerted", "enforce", false, false, false,
			[]watcher.Finding{privileged(true)}, false, nil, true},
		{"allowed alerted with notify.allowed", "enforce", false, true, false,
			[]watcher.Finding{privileged(true)}, false, []string{"alert allowed"}, true},
		{"reported kind not enforced", "enforce", false, false, false,
			[]watcher.Finding{hostNet}, false, []string{"alert alert"}, true},
		{"exited: not stopped, restart disabled, alerted", "enforce", false, false, true,
			[]watcher.Finding{privileged(false)}, true,
			[]string{"update c1", "alert exited"}, true},
		{"exited in alert mode", "alert", false, false, true,
			[]watcher.Finding{privileged(false)}, true, []string{"alert alert"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			alerts := notify.NewDispatcher(notify.Options{Logger: log}, notify.Route{Notifier: j})
			p := &pipeline{host: "node-1", log: log, alerts: alerts, now: time.Now,
				enforcer: remediate.NewEnforcer(j, remediate.Options{Action: "stop",
					DisableRestart: true, DryRun: tt.dryRun, LoopMaxStops: 3,
					LoopWindow: time.Minute})}
			p.decision.Store(&decision{mode: tt.mode, notifyAllowed: tt.notifyAllow})
			ev := watcher.Evaluation{
				Container: watcher.Container{ID: "c1", Name: "web"},
				Workload:  watcher.Workload{Kind: "container", Name: "web"},
				Findings:  tt.findings, Enforceable: tt.enforceable, RestartPolicy: "always",
				Origin: watcher.OriginEvent, EventTime: time.Now(), Exited: tt.exited,
			}
			settled := p.Handle(context.Background(), ev)
			if err := alerts.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if settled != tt.settled || !slices.Equal(j.entries, tt.want) {
				t.Errorf("Handle = %v with %q, want %v with %q", settled, j.entries, tt.settled,
					tt.want)
			}
			for _, a := range j.alerts {
				if a.Host != "node-1" || a.Container.ID != "c1" || len(a.Findings) == 0 {
					t.Errorf("alert %+v lacks the host, container or findings", a)
				}
				if a.Verdict == notify.VerdictStopped && (a.Action != "stop" || a.Exposure <= 0) {
					t.Errorf("stop alert %+v lacks the action or the exposure", a)
				}
				if a.Verdict == notify.VerdictExited && (!a.RestartDisabled || a.Exposure != 0) {
					t.Errorf("exited alert %+v: want the restart policy disabled, no exposure", a)
				}
			}
		})
	}
}
