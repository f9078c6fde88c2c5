package watcher

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// KindServicePublishedPort is a Swarm service that publishes a host port
// below the privileged limit, through the ingress routing mesh (on every
// node) or in host mode (on the nodes its tasks run on). Its task
// containers show no binding for an ingress port: it lives on the service.
const KindServicePublishedPort Kind = "service-published-port"

// Service is what a finding says about the Swarm service it was found in.
type Service struct {
	ID       string            `json:"service_id"`
	Name     string            `json:"service_name"`
	Image    string            `json:"image"`
	Mode     string            `json:"service_mode"`       // replicated, global, ...
	Replicas uint64            `json:"replicas,omitempty"` // for a replicated service
	Version  uint64            `json:"-"`                  // the spec version an update needs
	Labels   map[string]string `json:"-"`
}

// ServiceAPI is the part of the engine client that judging services uses.
// *client.Client implements it.
type ServiceAPI interface {
	Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error)
	ServiceList(context.Context, client.ServiceListOptions) (client.ServiceListResult, error)
}

// IsManager reports whether the engine is a Swarm manager, the only kind
// of node that can see services.
func IsManager(ctx context.Context, api ServiceAPI) (bool, error) {
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, fmt.Errorf("reading engine info: %w", err)
	}
	s := info.Info.Swarm
	return s.LocalNodeState == swarm.LocalNodeStateActive && s.ControlAvailable, nil
}

// DetectService returns the findings of one service under p: one for each
// published port below the limit, whatever its publish mode, each marked
// allowed when an allow rule matches the service's name and image. It
// does no I/O.
func DetectService(s swarm.Service, p Policy) []Finding {
	meta := serviceOf(s)
	ports := s.Endpoint.Ports
	source := SourceRuntime
	if len(ports) == 0 && s.Spec.EndpointSpec != nil {
		ports, source = s.Spec.EndpointSpec.Ports, SourceDeclared
	}
	var findings []Finding
	for _, pc := range ports {
		if pc.PublishedPort == 0 || int(pc.PublishedPort) >= p.PrivilegedBelow {
			continue
		}
		proto := string(pc.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		f := Finding{
			Kind:    KindServicePublishedPort,
			Service: &meta,
			Binding: &Binding{HostPort: int(pc.PublishedPort), ContainerPort: int(pc.TargetPort),
				Protocol: proto, PublishMode: string(pc.PublishMode)},
			Source: source,
			Rules:  KindPrivilegedPort.RuleIDs(),
		}
		p.allow(&f)
		findings = append(findings, f)
	}
	slices.SortFunc(findings, func(a, b Finding) int {
		return a.Binding.HostPort - b.Binding.HostPort
	})
	return findings
}

func serviceOf(s swarm.Service) Service {
	meta := Service{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, Version: s.Version.Index}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		meta.Image = cs.Image
	}
	switch m := s.Spec.Mode; {
	case m.Replicated != nil:
		meta.Mode = "replicated"
		if m.Replicated.Replicas != nil {
			meta.Replicas = *m.Replicated.Replicas
		}
	case m.Global != nil:
		meta.Mode = "global"
	case m.ReplicatedJob != nil:
		meta.Mode = "replicated-job"
	case m.GlobalJob != nil:
		meta.Mode = "global-job"
	}
	return meta
}

// ScanServices lists the services of a Swarm manager and returns their
// findings, ordered by service name.
func ScanServices(ctx context.Context, api ServiceAPI, p Policy) ([]Finding, int, error) {
	list, err := api.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("listing services: %w", err)
	}
	var findings []Finding
	for _, s := range list.Items {
		findings = append(findings, DetectService(s, p)...)
	}
	slices.SortStableFunc(findings, func(a, b Finding) int {
		return strings.Compare(a.Service.Name, b.Service.Name)
	})
	return findings, len(list.Items), nil
}

// ServiceTask returns the ID of the Swarm service a container is a task
// of, or "".
func ServiceTask(c Container) string {
	return c.Labels["com.docker.swarm.service.id"]
}
