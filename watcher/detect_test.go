package watcher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// defaultPolicy is the policy of the default config, without allow rules.
var defaultPolicy = Policy{
	PrivilegedBelow: DefaultPrivilegedBelow,
	HostNetwork:     ActionReport,
	WildcardBind:    ActionIgnore,
}

// loadInspect reads an inspect document saved from a real engine with
// docker inspect.
func loadInspect(t testing.TB, name string) container.InspectResponse {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c container.InspectResponse
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	return c
}

// brief renders findings as "kind source binding [allowed-by]" lines.
func brief(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		s := string(f.Kind) + " " + string(f.Source)
		if f.Binding != nil {
			s += " " + f.Binding.String()
		}
		if f.Allowed {
			s += " allowed-by=" + f.AllowedBy
		}
		out = append(out, s)
	}
	return out
}

func TestDetect(t *testing.T) {
	withWildcard := defaultPolicy
	withWildcard.WildcardBind = ActionReport
	hostNetIgnored := defaultPolicy
	hostNetIgnored.HostNetwork = ActionIgnore
	below100 := defaultPolicy
	below100.PrivilegedBelow = 100

	tests := []struct {
		name    string
		fixture string
		policy  Policy
		want    []string
	}{
		{
			name:    "running: tcp, udp, IPv6 and specific host IPs are all findings",
			fixture: "web",
			policy:  defaultPolicy,
			want: []string{
				"privileged-port runtime 0.0.0.0:53->53/udp",
				"privileged-port runtime [::]:53->53/udp",
				"privileged-port runtime 0.0.0.0:80->8080/tcp",
				"privileged-port runtime [::]:80->8080/tcp",
				"privileged-port runtime 127.0.0.1:443->8443/tcp",
				"privileged-port runtime [::1]:444->8443/tcp",
			},
		},
		{
			name:    "running range: judged by the port the engine picked",
			fixture: "range",
			policy:  defaultPolicy,
			want: []string{
				"privileged-port runtime 0.0.0.0:701->9000/tcp",
				"privileged-port runtime [::]:701->9000/tcp",
			},
		},
		{
			name:    "created: declared ranges with a privileged low end, and single ports",
			fixture: "stopped-range",
			policy:  defaultPolicy,
			want: []string{
				"privileged-port declared *:21->21/tcp",
				"privileged-port declared *:990-1000->9000/tcp",
			},
		},
		{
			name:    "exited: declared binding",
			fixture: "exited",
			policy:  defaultPolicy,
			want:    []string{"privileged-port declared *:25->25/tcp"},
		},
		{
			name:    "created sctp: specific IP is a finding, 1023 is privileged",
			fixture: "sctp-declared",
			policy:  defaultPolicy,
			want: []string{
				"privileged-port declared *:1023->53/sctp",
				"privileged-port declared 127.0.0.1:132->132/sctp",
			},
		},
		{
			name:    "port 1024 and above are not privileged",
			fixture: "unprivileged",
			policy:  defaultPolicy,
			want:    []string{},
		},
		{
			name:    "publish-all picks ephemeral ports: no finding",
			fixture: "publish-all",
			policy:  defaultPolicy,
			want:    []string{},
		},
		{
			name:    "exposed but not published: no finding",
			fixture: "exposed-only",
			policy:  defaultPolicy,
			want:    []string{},
		},
		{
			name:    "host network is one finding",
			fixture: "hostnet",
			policy:  defaultPolicy,
			want:    []string{"host-network runtime"},
		},
		{
			name:    "host network discards declared bindings",
			fixture: "hostnet-declared",
			policy:  defaultPolicy,
			want:    []string{"host-network declared"},
		},
		{
			name:    "host network ignored by policy",
			fixture: "hostnet",
			policy:  hostNetIgnored,
			want:    []string{},
		},
		{
			name:    "wildcard binds reported when asked, privileged or not",
			fixture: "unprivileged",
			policy:  withWildcard,
			want: []string{
				"wildcard-bind runtime 0.0.0.0:1024->80/tcp",
				"wildcard-bind runtime [::]:1024->80/tcp",
				"wildcard-bind runtime 0.0.0.0:8080->8080/tcp",
				"wildcard-bind runtime [::]:8080->8080/tcp",
			},
		},
		{
			name:    "a specific host IP is not a wildcard bind",
			fixture: "sctp-declared",
			policy:  withWildcard,
			want: []string{
				"privileged-port declared *:1023->53/sctp",
				"wildcard-bind declared *:1023->53/sctp",
				"privileged-port declared 127.0.0.1:132->132/sctp",
			},
		},
		{
			name:    "privileged_below moves the limit",
			fixture: "web",
			policy:  below100,
			want: []string{
				"privileged-port runtime 0.0.0.0:53->53/udp",
				"privileged-port runtime [::]:53->53/udp",
				"privileged-port runtime 0.0.0.0:80->8080/tcp",
				"privileged-port runtime [::]:80->8080/tcp",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(loadInspect(t, tt.fixture), tt.policy)
			if err != nil {
				t.Fatalf("Detect(%s) = error %v, want findings", tt.fixture, err)
			}
			if b := brief(got); !slices.Equal(b, tt.want) {
				t.Errorf("Detect(%s) =\n  %s\nwant\n  %s", tt.fixture,
					strings.Join(b, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestDetectFindingFields(t *testing.T) {
	got, err := Detect(loadInspect(t, "stopped-range"), defaultPolicy)
	if err != nil || len(got) != 2 {
		t.Fatalf("Detect(stopped-range) = %d findings, %v; want 2, nil", len(got), err)
	}
	f := got[1]
	want := Finding{
		Kind: KindPrivilegedPort,
		Container: Container{
			ID:      "6312857d952da0e9f38d5f401e1af608f80e443772452e6531633be04563e671",
			Name:    "stopped-range",
			Image:   "pw-sleeper",
			ImageID: "sha256:da68896b911b4c3210d29b5f591cc18ba6055631b8b40bb28045ef2017f34d98",
			State:   "created",
		},
		Binding: &Binding{HostPort: 990, HostPortEnd: 1000, ContainerPort: 9000, Protocol: "tcp"},
		Source:  SourceDeclared,
		Rules:   []string{"V-260924", "V-260929"},
	}
	gotJSON, _ := json.Marshal(f)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("finding = %s\nwant      %s", gotJSON, wantJSON)
	}
}

func TestDetectPausedUsesRuntime(t *testing.T) {
	c := loadInspect(t, "web")
	c.State.Status, c.State.Paused = container.StatePaused, true
	c.HostConfig.PortBindings = nil // a paused container's ports stay live
	got, err := Detect(c, defaultPolicy)
	if err != nil || len(got) != 6 {
		t.Fatalf("Detect(paused web) = %d findings, %v; want 6, nil", len(got), err)
	}
	if got[0].Source != SourceRuntime || got[0].State != "paused" {
		t.Errorf("source, state = %s, %s; want runtime, paused", got[0].Source, got[0].State)
	}
}

// Between two runs a restarting container has no live ports, but will
// bind its declared ones again.
func TestDetectRestartingUsesDeclared(t *testing.T) {
	c := loadInspect(t, "exited")
	c.State.Status, c.State.Running, c.State.Restarting = container.StateRestarting, true, true
	got, err := Detect(c, defaultPolicy)
	want := []string{"privileged-port declared *:25->25/tcp"}
	if b := brief(got); err != nil || !slices.Equal(b, want) {
		t.Errorf("Detect(restarting) = %q, %v; want %q", b, err, want)
	}
}

func TestDetectRefusesMalformedHostPort(t *testing.T) {
	c := loadInspect(t, "exited")
	for port, bs := range c.HostConfig.PortBindings {
		bs[0].HostPort = "twenty-five"
		c.HostConfig.PortBindings[port] = bs
	}
	_, err := Detect(c, defaultPolicy)
	if err == nil || !strings.Contains(err.Error(), `"twenty-five"`) ||
		!strings.Contains(err.Error(), `"exited"`) {
		t.Errorf("Detect(host port twenty-five) = %v, want an error naming the container "+
			"and the value", err)
	}
}

func TestDetectNilSections(t *testing.T) {
	got, err := Detect(container.InspectResponse{ID: "abc", Name: "/bare"}, defaultPolicy)
	if err != nil || len(got) != 0 {
		t.Errorf("Detect(no sections) = %v, %v; want no findings", got, err)
	}
}

func TestDetectMarksAllowed(t *testing.T) {
	p := defaultPolicy
	p.Allow = []AllowRule{{
		Name:       "mke-ucp-controller",
		Containers: []Glob{"ucp-controller"},
		Images:     []ImageSelector{{Repository: "mirantis/ucp-controller"}},
		Ports:      []PortRange{{First: 443, Last: 443, Protocol: "tcp"}},
	}}
	got, err := Detect(loadInspect(t, "ucp-controller"), p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"privileged-port runtime 0.0.0.0:443->443/tcp allowed-by=mke-ucp-controller",
		"privileged-port runtime [::]:443->443/tcp allowed-by=mke-ucp-controller",
	}
	if b := brief(got); !slices.Equal(b, want) {
		t.Errorf("Detect(ucp-controller) = %q, want %q", b, want)
	}
}
