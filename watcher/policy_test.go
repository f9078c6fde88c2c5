package watcher

import (
	"testing"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr string
	}{
		{in: "443/tcp", want: PortRange{443, 443, "tcp"}},
		{in: "80", want: PortRange{80, 80, ""}},
		{in: "53/udp", want: PortRange{53, 53, "udp"}},
		{in: "8000-8010/sctp", want: PortRange{8000, 8010, "sctp"}},
		{in: "1-65535", want: PortRange{1, 65535, ""}},
		{in: "70000/tcp", wantErr: "port out of range 1-65535"},
		{in: "0", wantErr: "port out of range 1-65535"},
		{in: "80/icmp", wantErr: `protocol "icmp" is not tcp, udp or sctp`},
		{in: "80/TCP", wantErr: `protocol "TCP" is not tcp, udp or sctp`},
		{in: "10-5", wantErr: "range 10-5 ends before it starts"},
		{in: "", wantErr: "missing port number"},
		{in: "-80", wantErr: "missing port number"},
		{in: "http", wantErr: `"http" is not a port number`},
		{in: "+80", wantErr: `"+80" is not a port number`},
		{in: "80-", wantErr: "missing port number"},
	}
	for _, tt := range tests {
		got, err := ParsePortRange(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("ParsePortRange(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		case err == nil && got.String() != tt.in:
			t.Errorf("ParsePortRange(%q).String() = %q, want the input back", tt.in, got)
		}
	}
}

func TestPortRangeCovers(t *testing.T) {
	tests := []struct {
		r    string
		b    Binding
		want bool
	}{
		{"443/tcp", Binding{HostPort: 443, Protocol: "tcp"}, true},
		{"443/tcp", Binding{HostPort: 443, Protocol: "udp"}, false},
		{"443", Binding{HostPort: 443, Protocol: "udp"}, true},
		{"443", Binding{HostPort: 444, Protocol: "tcp"}, false},
		{"900-1000", Binding{HostPort: 990, HostPortEnd: 1000, Protocol: "tcp"}, true},
		{"900-999", Binding{HostPort: 990, HostPortEnd: 1000, Protocol: "tcp"}, false},
		{"991-1000", Binding{HostPort: 990, HostPortEnd: 1000, Protocol: "tcp"}, false},
	}
	for _, tt := range tests {
		r, err := ParsePortRange(tt.r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Covers(tt.b); got != tt.want {
			t.Errorf("%s covers %s = %v, want %v", tt.r, tt.b, got, tt.want)
		}
	}
}

func TestParseGlob(t *testing.T) {
	for _, bad := range []string{"", "web[", "[]a", `web\`} {
		if _, err := ParseGlob(bad); err == nil {
			t.Errorf("ParseGlob(%q) = nil error, want one", bad)
		}
	}
	tests := []struct {
		glob, s string
		want    bool
	}{
		{"ucp-*", "ucp-controller", true},
		{"ucp-*", "xucp-controller", false},
		{"web-?", "web-1", true},
		{"web-[0-9]", "web-a", false},
		{"mirantis/*", "mirantis/ucp-controller", true},
		{"*", "docker.io/library/nginx", false}, // * does not cross "/"
	}
	for _, tt := range tests {
		g, err := ParseGlob(tt.glob)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Match(tt.s); got != tt.want {
			t.Errorf("Glob(%q).Match(%q) = %v, want %v", tt.glob, tt.s, got, tt.want)
		}
	}
}

func TestAllowRuleMatches(t *testing.T) {
	const ucpID = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const pulled = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	ucp := Finding{
		Kind: KindPrivilegedPort,
		Container: Container{
			Name: "ucp-controller", Image: "mirantis/ucp-controller:3.7.1", ImageID: ucpID,
			Labels: map[string]string{"com.docker.ucp.version": "3.7.1"},
		},
		Binding: &Binding{HostPort: 443, ContainerPort: 443, Protocol: "tcp"},
	}
	byDigest := ucp
	byDigest.Image = "mirantis/ucp-controller@" + pulled
	lookAlike := ucp // same name and tag, other content
	lookAlike.ImageID = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	impostor := ucp
	impostor.Image = "evil/ucp-controller:latest"
	otherPort := ucp
	otherPort.Binding = &Binding{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}
	hostNet := ucp
	hostNet.Kind, hostNet.Binding = KindHostNetwork, nil

	mke := AllowRule{
		Name:       "mke",
		Containers: []Glob{"ucp-controller"},
		Images:     []ImageSelector{{Repository: "mirantis/ucp-controller"}},
		Ports:      []PortRange{{443, 443, "tcp"}},
	}
	pinned := mke
	pinned.Images = []ImageSelector{{Repository: "mirantis/ucp-controller", Digest: ucpID}}
	pinnedPull := mke
	pinnedPull.Images = []ImageSelector{{Repository: "mirantis/ucp-controller", Digest: pulled}}
	fullName := mke
	fullName.Images = []ImageSelector{{Repository: "docker.io/mirantis/*"}}
	labelled := mke
	labelled.Labels = map[string]Glob{"com.docker.ucp.version": "3.*"}
	wrongLabel := mke
	wrongLabel.Labels = map[string]Glob{"com.docker.ucp.version": "2.*"}
	upperKey := mke
	upperKey.Labels = map[string]Glob{"COM.DOCKER.UCP.VERSION": "3.*"}
	containerOnly := AllowRule{Name: "calico", Containers: []Glob{"ucp-*"}}

	tests := []struct {
		name string
		rule AllowRule
		f    Finding
		want bool
	}{
		{"all selectors match", mke, ucp, true},
		{"image from another repository", mke, impostor, false},
		{"port not in the rule", mke, otherPort, false},
		{"host network finding against a rule with ports", mke, hostNet, false},
		{"host network finding against a rule without ports", containerOnly, hostNet, true},
		{"image ID pinned", pinned, ucp, true},
		{"image ID pinned, look-alike image", pinned, lookAlike, false},
		{"pulled digest pinned", pinnedPull, byDigest, true},
		{"pulled digest pinned, started by tag", pinnedPull, ucp, false},
		{"full repository name", fullName, ucp, true},
		{"label matches", labelled, ucp, true},
		{"label does not match", wrongLabel, ucp, false},
		{"label key case folded", upperKey, ucp, true},
	}
	for _, tt := range tests {
		if got := tt.rule.Matches(tt.f); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPolicyAllowFirstRuleWins(t *testing.T) {
	p := Policy{Allow: []AllowRule{
		{Name: "first", Containers: []Glob{"web-*"}},
		{Name: "second", Containers: []Glob{"web-1"}},
	}}
	f := Finding{Container: Container{Name: "web-1"}}
	p.allow(&f)
	if !f.Allowed || f.AllowedBy != "first" {
		t.Errorf("allowed, by = %v, %q; want true, first", f.Allowed, f.AllowedBy)
	}
	f = Finding{Container: Container{Name: "db"}}
	p.allow(&f)
	if f.Allowed || f.AllowedBy != "" {
		t.Errorf("db: allowed, by = %v, %q; want false, empty", f.Allowed, f.AllowedBy)
	}
}
