package watcher

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// ComposeRef says where in a Compose project a finding was declared.
type ComposeRef struct {
	Files   []string `json:"files"` // the project's files, merged in this order
	Service string   `json:"service"`
	Port    int      `json:"port_index"` // the entry in the service's merged ports list
	Entry   string   `json:"entry"`      // the entry, in the short syntax
}

// LoadCompose reads a Compose project as docker compose would: the files
// merged in order, variables interpolated from the environment and the
// .env file beside the first file, every profile included so that no
// service escapes the check. Services' env_file entries are not read: they
// set container environments, never ports.
func LoadCompose(ctx context.Context, files []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithOsEnv, cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
		cli.WithoutEnvironmentResolution,
		cli.WithName("portwarden-check"))
	if err != nil {
		return nil, err
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", strings.Join(files, ", "), err)
	}
	return p, nil
}

// DetectCompose returns the findings of a Compose project under p: each
// declared port entry whose published port (or the first of its range) is
// below the limit, and each service on the host network. It does no I/O.
func DetectCompose(project *types.Project, files []string, p Policy) ([]Finding, error) {
	var findings []Finding
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		svc := project.Services[name]
		meta := Container{Name: name, Image: svc.Image, Labels: svc.Labels}
		if svc.NetworkMode == "host" && p.HostNetwork != ActionIgnore {
			f := Finding{Kind: KindHostNetwork, Container: meta, Source: SourceDeclared,
				Rules: KindHostNetwork.RuleIDs(),
				Compose: &ComposeRef{Files: files, Service: name, Port: -1,
					Entry: "network_mode: host"}}
			p.allow(&f)
			findings = append(findings, f)
		}
		for i, pc := range svc.Ports {
			lo, hi, err := parseHostPorts(pc.Published)
			if err != nil {
				return nil, fmt.Errorf("service %q ports[%d]: %w", name, i, err)
			}
			if lo == 0 || lo >= p.PrivilegedBelow {
				continue
			}
			proto := cmp.Or(pc.Protocol, "tcp")
			b := Binding{HostIP: pc.HostIP, HostPort: lo, ContainerPort: int(pc.Target),
				Protocol: proto}
			if hi != lo {
				b.HostPortEnd = hi
			}
			if pc.Mode == "host" { // ingress is the loader's default, and means nothing here
				b.PublishMode = pc.Mode
			}
			f := Finding{Kind: KindPrivilegedPort, Container: meta, Binding: &b,
				Source: SourceDeclared, Rules: KindPrivilegedPort.RuleIDs(),
				Compose: &ComposeRef{Files: files, Service: name, Port: i,
					Entry: shortPort(pc)}}
			p.allow(&f)
			findings = append(findings, f)
		}
	}
	return findings, nil
}

// shortPort writes a port entry in the short syntax: [HOST_IP:]PUBLISHED:TARGET/PROTOCOL.
func shortPort(pc types.ServicePortConfig) string {
	s := fmt.Sprintf("%s:%d/%s", pc.Published, pc.Target, cmp.Or(pc.Protocol, "tcp"))
	switch {
	case strings.Contains(pc.HostIP, ":"):
		s = "[" + pc.HostIP + "]:" + s
	case pc.HostIP != "":
		s = pc.HostIP + ":" + s
	}
	return s
}
