package remediate

import (
	"context"
	"errors"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/watcher"
)

// fakeServices is an engine with one service, recording its updates.
type fakeServices struct {
	fakeEngine
	service   swarm.Service
	updated   *swarm.ServiceSpec
	updateErr error
}

func (f *fakeServices) ServiceInspect(context.Context, string, client.ServiceInspectOptions) (
	client.ServiceInspectResult, error) {
	return client.ServiceInspectResult{Service: f.service}, nil
}

func (f *fakeServices) ServiceUpdate(_ context.Context, _ string, o client.ServiceUpdateOptions) (
	client.ServiceUpdateResult, error) {
	if o.Version != f.service.Version {
		return client.ServiceUpdateResult{}, errors.New("update out of sequence")
	}
	f.updated = &o.Spec
	return client.ServiceUpdateResult{}, f.updateErr
}

func replicated(n uint64, labels map[string]string) swarm.Service {
	s := swarm.Service{ID: "svc1"}
	s.Version.Index = 7
	s.Spec.Name, s.Spec.Labels = "web", labels
	s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	s.Spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{
		{Protocol: network.TCP, TargetPort: 8080, PublishedPort: 80},
		{Protocol: network.TCP, TargetPort: 9090, PublishedPort: 9090},
	}}
	return s
}

func serviceEvaluation() watcher.Evaluation {
	return watcher.Evaluation{
		Service:  &watcher.Service{ID: "svc1", Name: "web"},
		Workload: watcher.Workload{Kind: "swarm-service", Name: "web"},
		Findings: []watcher.Finding{{Kind: watcher.KindServicePublishedPort,
			Binding: &watcher.Binding{HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}}},
	}
}

func TestEnforceService(t *testing.T) {
	global := replicated(0, nil)
	global.Spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	tests := []struct {
		name        string
		service     swarm.Service
		action      string
		updateErr   error
		wantVerdict Verdict
		check       func(t *testing.T, spec *swarm.ServiceSpec)
	}{
		{"scale to zero keeps the count", replicated(3, map[string]string{"team": "shop"}),
			ServiceScaleToZero, nil, ScaledToZero, func(t *testing.T, s *swarm.ServiceSpec) {
				if *s.Mode.Replicated.Replicas != 0 || s.Labels[PreviousReplicasKey] != "3" ||
					s.Labels["team"] != "shop" {
					t.Errorf("spec after scale-to-zero: replicas %d, labels %v",
						*s.Mode.Replicated.Replicas, s.Labels)
				}
			}},
		{"a global service is not scaled", global, ServiceScaleToZero, nil, Skipped, nil},
		{"scaled by portwarden already", replicated(0, map[string]string{
			PreviousReplicasKey: "2"}), ServiceScaleToZero, nil, AlreadyDone, nil},
		{"remove the published port", replicated(2, nil), ServiceRemovePort, nil, PortRemoved,
			func(t *testing.T, s *swarm.ServiceSpec) {
				if len(s.EndpointSpec.Ports) != 1 || s.EndpointSpec.Ports[0].PublishedPort != 9090 {
					t.Errorf("ports after removal = %+v, want only 9090", s.EndpointSpec.Ports)
				}
			}},
		{"update refused", replicated(1, nil), ServiceScaleToZero, errors.New("boom"),
			StopFailed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := &fakeServices{service: tt.service, updateErr: tt.updateErr}
			out := NewEnforcer(engine, defaults).EnforceService(context.Background(),
				serviceEvaluation(), tt.action)
			if out.Verdict != tt.wantVerdict {
				t.Fatalf("EnforceService = %s (%v), want %s", out.Verdict, out.Err,
					tt.wantVerdict)
			}
			if tt.check != nil {
				if engine.updated == nil {
					t.Fatal("no update")
				}
				tt.check(t, engine.updated)
			} else if tt.updateErr == nil && engine.updated != nil {
				t.Errorf("updated the service: %+v", engine.updated)
			}
		})
	}
}

func TestEnforceServiceDryRun(t *testing.T) {
	engine := &fakeServices{service: replicated(3, nil)}
	dry := defaults
	dry.DryRun = true
	out := NewEnforcer(engine, dry).EnforceService(context.Background(), serviceEvaluation(),
		ServiceScaleToZero)
	if out.Verdict != WouldStop || engine.updated != nil {
		t.Errorf("dry run = %s, updated %v; want would-stop and no update", out.Verdict,
			engine.updated != nil)
	}
}
