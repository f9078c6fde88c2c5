package watcher

import (
	"fmt"
	"net/netip"
	"strings"
)

// Kind names the rule a finding breaks.
type Kind string

// The kinds of finding.
const (
	// KindPrivilegedPort is a binding whose host port is below the
	// privileged limit (STIG V-260924, V-260929).
	KindPrivilegedPort Kind = "privileged-port"
	// KindHostNetwork is a container in the host's network namespace, which
	// can bind any host port without a binding (STIG V-260913).
	KindHostNetwork Kind = "host-network"
	// KindWildcardBind is a binding on all host interfaces (STIG V-235820).
	KindWildcardBind Kind = "wildcard-bind"
)

// Source says where a binding was read from.
type Source string

// The sources of a binding.
const (
	// SourceRuntime is a binding the engine has in place:
	// NetworkSettings.Ports of a running container.
	SourceRuntime Source = "runtime"
	// SourceDeclared is a binding the container asks for:
	// HostConfig.PortBindings, the only record a stopped container has.
	SourceDeclared Source = "declared"
)

// Rule is one STIG rule that portwarden checks.
type Rule struct {
	ID       string `json:"id"`       // the finding (vulnerability) ID, V-260924
	STIGID   string `json:"stig_id"`  // the STIG's version ID, CNTR-MK-000570
	RuleID   string `json:"rule_id"`  // the rule ID with revision, SV-260924r966129_rule
	Severity string `json:"severity"` // CAT I, CAT II or CAT III
	Title    string `json:"title"`
}

// Rules lists every rule that a finding can cite, by its ID.
var Rules = map[string]Rule{
	"V-260924": {
		ID: "V-260924", STIGID: "CNTR-MK-000570", RuleID: "SV-260924r966129_rule",
		Severity: "CAT II",
		Title:    "Incoming container traffic must be bound to a specific host interface.",
	},
	"V-260929": {
		ID: "V-260929", STIGID: "CNTR-MK-000650", RuleID: "SV-260929r966144_rule",
		Severity: "CAT II",
		Title:    "Containers must not map to privileged ports.",
	},
	"V-260913": {
		ID: "V-260913", STIGID: "MKE", RuleID: "SV-260913r966096",
		Severity: "CAT II",
		Title:    "MKE host network namespace must not be shared.",
	},
	"V-235820": {
		ID: "V-235820", STIGID: "DKER-EE-002160", RuleID: "V-235820",
		Severity: "CAT II",
		Title: "Incoming container traffic must be bound to a specific host " +
			"interface (not 0.0.0.0).",
	},
}

// RuleIDs returns the IDs of the rules that a finding of kind k violates.
func (k Kind) RuleIDs() []string {
	switch k {
	case KindPrivilegedPort:
		return []string{"V-260924", "V-260929"}
	case KindHostNetwork:
		return []string{"V-260913"}
	case KindWildcardBind:
		return []string{"V-235820"}
	case KindServicePublishedPort:
		return []string{"V-260924", "V-260929"}
	}
	return nil
}

// Binding is one host address and port (or port range) mapped to one
// container port and protocol.
type Binding struct {
	HostIP        string `json:"host_ip"`                 // "" means every interface
	HostPort      int    `json:"host_port"`               // the first of a range; 0 if ephemeral
	HostPortEnd   int    `json:"host_port_end,omitempty"` // set only for a range
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"` // tcp, udp or sctp
	// PublishMode is how a Swarm service publishes the port: ingress (the
	// routing mesh, on every node) or host. Empty for a container.
	PublishMode string `json:"publish_mode,omitempty"`
}

// IsWildcard reports whether b listens on every host interface.
func (b Binding) IsWildcard() bool {
	if b.HostIP == "" {
		return true
	}
	ip, err := netip.ParseAddr(b.HostIP)
	return err == nil && ip.IsUnspecified()
}

// HostPorts returns the host side of b, a port or a range: "80",
// "990-1000", or "ephemeral" when the engine picks the port at start.
func (b Binding) HostPorts() string {
	if b.HostPort == 0 {
		return "ephemeral"
	}
	if b.HostPortEnd > b.HostPort {
		return fmt.Sprintf("%d-%d", b.HostPort, b.HostPortEnd)
	}
	return fmt.Sprintf("%d", b.HostPort)
}

// String returns b as host_ip:host_port->container_port/protocol, with
// "*" for every interface and IPv6 addresses in brackets.
func (b Binding) String() string {
	host := b.HostIP
	switch {
	case host == "":
		host = "*"
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	s := fmt.Sprintf("%s:%s->%d/%s", host, b.HostPorts(), b.ContainerPort, b.Protocol)
	if b.PublishMode != "" {
		s += " (" + b.PublishMode + ")"
	}
	return s
}

// Container is what a finding says about the container it was found in.
type Container struct {
	ID      string            `json:"container_id"`
	Name    string            `json:"container_name"`
	Image   string            `json:"image"`    // as the container was created with
	ImageID string            `json:"image_id"` // the content digest of the image
	State   string            `json:"state"`    // created, running, exited, ...
	Labels  map[string]string `json:"-"`        // read by allow rules, not reported
}

// Finding is one rule broken by one binding or one container.
type Finding struct {
	Kind Kind `json:"kind"`
	Container
	Service *Service    `json:"service,omitempty"` // set for a service finding, without Container
	Compose *ComposeRef `json:"compose,omitempty"` // set for a finding in a Compose file
	Binding *Binding    `json:"binding,omitempty"` // nil for a host-network finding

	Source    Source   `json:"source"`
	Rules     []string `json:"rules"`
	Allowed   bool     `json:"allowed"`
	AllowedBy string   `json:"allowed_by,omitempty"` // the allow rule's name
}

// String returns f in one line, for logs and error messages.
func (f Finding) String() string {
	name, id := f.Name, f.ID
	if f.Service != nil {
		name, id = f.Service.Name, f.Service.ID
	}
	s := fmt.Sprintf("%s %s (%s)", f.Kind, name, shortID(id))
	if f.Binding != nil {
		s += " " + f.Binding.String()
	}
	return s
}

// shortID returns the first 12 characters of a container ID, as docker ps
// shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
