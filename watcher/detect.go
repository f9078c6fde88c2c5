// Package watcher reads containers from the Docker Engine and turns what it
// finds into findings: bindings and containers that break the privileged
// port rules of the Mirantis Kubernetes Engine STIG.
package watcher

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Detect returns the findings of one inspected container under p, each
// marked allowed when an allow rule matches it. A running container is
// judged by the bindings the engine has in place, any other by the bindings
// it declares, and so is a restarting one, whose ports come back with its
// next run. Detect does no I/O; it fails only on a binding the engine
// should never report, such as a host port that is not a number.
func Detect(c container.InspectResponse, p Policy) ([]Finding, error) {
	meta := containerOf(c)
	running := c.State != nil && c.State.Running && !c.State.Restarting
	source, ports := SourceDeclared, network.PortMap(nil)
	if running {
		source = SourceRuntime
		if c.NetworkSettings != nil {
			ports = c.NetworkSettings.Ports
		}
	} else if c.HostConfig != nil {
		ports = c.HostConfig.PortBindings
	}

	var findings []Finding
	if c.HostConfig != nil && c.HostConfig.NetworkMode == "host" {
		// The engine discards port bindings in host network mode.
		if p.HostNetwork != ActionIgnore {
			findings = append(findings, newFinding(KindHostNetwork, meta, nil, source))
		}
		ports = nil
	}

	bindings, err := bindingsOf(ports)
	if err != nil {
		return nil, fmt.Errorf("container %q (%s): %w", meta.Name, shortID(meta.ID), err)
	}
	for _, b := range bindings {
		if b.HostPort != 0 && b.HostPort < p.PrivilegedBelow {
			findings = append(findings, newFinding(KindPrivilegedPort, meta, &b, source))
		}
		if p.WildcardBind != ActionIgnore && b.IsWildcard() {
			findings = append(findings, newFinding(KindWildcardBind, meta, &b, source))
		}
	}

	for i := range findings {
		p.allow(&findings[i])
	}
	return findings, nil
}

func newFinding(k Kind, c Container, b *Binding, s Source) Finding {
	if b != nil {
		b = new(*b) // each finding owns its binding
	}
	return Finding{Kind: k, Container: c, Binding: b, Source: s, Rules: k.RuleIDs()}
}

func containerOf(c container.InspectResponse) Container {
	meta := Container{
		ID:      c.ID,
		Name:    strings.TrimPrefix(c.Name, "/"),
		Image:   c.Image,
		ImageID: c.Image,
	}
	if c.Config != nil {
		meta.Image = c.Config.Image
		meta.Labels = c.Config.Labels
	}
	if c.State != nil {
		meta.State = string(c.State.Status)
	}
	return meta
}

// bindingsOf flattens a port map into bindings, ordered by container port,
// protocol, host address and host port so that output is stable.
func bindingsOf(ports network.PortMap) ([]Binding, error) {
	var out []Binding
	for port, hostBindings := range ports {
		for _, hb := range hostBindings {
			lo, hi, err := parseHostPorts(hb.HostPort)
			if err != nil {
				return nil, fmt.Errorf("binding of %s: %w", port, err)
			}
			b := Binding{
				HostPort:      lo,
				ContainerPort: int(port.Num()),
				Protocol:      string(port.Proto()),
			}
			if hi != lo {
				b.HostPortEnd = hi
			}
			if hb.HostIP.IsValid() {
				b.HostIP = hb.HostIP.String()
			}
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Binding) int {
		return cmp.Or(
			cmp.Compare(a.ContainerPort, b.ContainerPort),
			cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.HostIP, b.HostIP),
			cmp.Compare(a.HostPort, b.HostPort),
		)
	})
	return out, nil
}

// parseHostPorts reads the HostPort of a binding: "" (an ephemeral port,
// returned as 0), "80", or a range "8000-8010".
func parseHostPorts(s string) (lo, hi int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	if lo, err = strconv.Atoi(first); err == nil {
		hi = lo
		if isRange {
			hi, err = strconv.Atoi(last)
		}
	}
	if err != nil || lo < 1 || hi < lo || hi > 65535 {
		return 0, 0, fmt.Errorf("host port %q is not a port or a range of ports", s)
	}
	return lo, hi, nil
}
