//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// checkReport is the part of check's JSON document the tests read, by
// the field names the README documents.
type checkReport struct {
	Host      string `json:"host"`
	CheckedAt string `json:"checked_at"`
	Scope     string `json:"scope"`
	Engine    struct {
		Version    string `json:"version"`
		APIVersion string `json:"api_version"`
	} `json:"engine"`
	Findings []struct {
		Kind          string `json:"kind"`
		ContainerID   string `json:"container_id"`
		ContainerName string `json:"container_name"`
		State         string `json:"state"`
		Binding       *struct {
			HostIP        string `json:"host_ip"`
			HostPort      int    `json:"host_port"`
			HostPortEnd   int    `json:"host_port_end"`
			ContainerPort int    `json:"container_port"`
			Protocol      string `json:"protocol"`
		} `json:"binding"`
		Source    string   `json:"source"`
		Rules     []string `json:"rules"`
		Allowed   bool     `json:"allowed"`
		AllowedBy string   `json:"allowed_by"`
	} `json:"findings"`
	Summary struct {
		Violations int  `json:"violations"`
		Compliant  bool `json:"compliant"`
	} `json:"summary"`
}

// create makes the container of spec on the machine's engine and removes
// it when the test ends.
func create(t *testing.T, spec enginetest.Spec) string {
	t.Helper()
	id, _, err := engine.Create(context.Background(), spec)
	if id != "" {
		t.Cleanup(func() {
			engine.ContainerRemove(context.Background(), id,
				client.ContainerRemoveOptions{Force: true})
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runCheck runs portwarden check with a config file holding cfg and
// returns its exit code, stdout and stderr.
func runCheck(t *testing.T, cfg string, args ...string) (int, []byte, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portwarden.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(portwarden, append([]string{"check", "--config", path}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s: %v", cmd, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.Bytes(), stderr.String()
}

func publish(bindings map[string][]network.PortBinding) (network.PortSet, network.PortMap) {
	exposed, ports := network.PortSet{}, network.PortMap{}
	for spec, bs := range bindings {
		p := network.MustParsePort(spec)
		exposed[p] = struct{}{}
		ports[p] = bs
	}
	return exposed, ports
}

func bind(hostIP, hostPort string) network.PortBinding {
	b := network.PortBinding{HostPort: hostPort}
	if hostIP != "" {
		b.HostIP = netip.MustParseAddr(hostIP)
	}
	return b
}

// matrixContainer is one row of the check matrix: a container and the
// findings check must report for it, as "kind source host_port/protocol".
type matrixContainer struct {
	spec     enginetest.Spec
	bindings map[string][]network.PortBinding
	running  []string // findings of a check of running containers
	all      []string // findings of check --all
}

func matrix() []matrixContainer {
	running := func(name string) enginetest.Spec {
		return enginetest.Spec{Name: name, Start: true}
	}
	host := running("host-network")
	host.HostConfig.NetworkMode = "host"
	publishAll := running("publish-all")
	publishAll.HostConfig.PublishAllPorts = true
	publishAll.Config.ExposedPorts = network.PortSet{network.MustParsePort("80/tcp"): {}}

	rows := []matrixContainer{
		{spec: running("tcp"),
			bindings: map[string][]network.PortBinding{"8080/tcp": {bind("", "81")}},
			running:  []string{"privileged-port runtime 81/tcp"}},
		{spec: running("udp"),
			bindings: map[string][]network.PortBinding{"53/udp": {bind("", "531")}},
			running:  []string{"privileged-port runtime 531/udp"}},
		{spec: running("ipv6"),
			bindings: map[string][]network.PortBinding{"8443/tcp": {bind("::1", "444")}},
			running:  []string{"privileged-port runtime 444/tcp on ::1"}},
		{spec: running("host-ip"),
			bindings: map[string][]network.PortBinding{"8443/tcp": {bind("127.0.0.1", "445")}},
			running:  []string{"privileged-port runtime 445/tcp on 127.0.0.1"}},
		{spec: running("range"),
			bindings: map[string][]network.PortBinding{"9000/tcp": {bind("", "700-710")}},
			running:  []string{"privileged-port runtime 700-710/tcp"}},
		{spec: enginetest.Spec{Name: "created"},
			bindings: map[string][]network.PortBinding{"21/tcp": {bind("", "21")}},
			all:      []string{"privileged-port declared 21/tcp"}},
		{spec: enginetest.Spec{Name: "created-range"},
			bindings: map[string][]network.PortBinding{"9000/tcp": {bind("", "990-1000")}},
			all:      []string{"privileged-port declared 990-1000/tcp"}},
		{spec: enginetest.Spec{Name: "exited", Start: true, Stop: true},
			bindings: map[string][]network.PortBinding{"25/tcp": {bind("", "25")}},
			all:      []string{"privileged-port declared 25/tcp"}},
		{spec: host, running: []string{"host-network runtime"}},
		{spec: publishAll},
		{spec: running("port-1024"),
			bindings: map[string][]network.PortBinding{"80/tcp": {bind("", "1024")}}},
		{spec: running("unprivileged"),
			bindings: map[string][]network.PortBinding{"80/tcp": {bind("", "8080")}}},
	}
	for i := range rows {
		if rows[i].bindings != nil {
			rows[i].spec.Config.ExposedPorts, rows[i].spec.HostConfig.PortBindings =
				publish(rows[i].bindings)
		}
		rows[i].all = append(slices.Clone(rows[i].running), rows[i].all...)
	}
	return rows
}

// brief renders what check reported for one container in the matrix's
// terms, IPv4 and IPv6 twins of one binding folded into one line.
func brief(r checkReport, id string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.ContainerID != id {
			continue
		}
		s := f.Kind + " " + f.Source
		if b := f.Binding; b != nil {
			ports := strconv.Itoa(b.HostPort)
			if b.HostPortEnd != 0 {
				ports += "-" + strconv.Itoa(b.HostPortEnd)
			} else if b.HostPort >= 700 && b.HostPort <= 710 && f.Source == "runtime" {
				ports = "700-710" // the engine picked one port of the range
			}
			s += " " + ports + "/" + b.Protocol
			if b.HostIP != "" && b.HostIP != "0.0.0.0" && b.HostIP != "::" {
				s += " on " + b.HostIP
			}
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func TestCheckMatrix(t *testing.T) {
	rows := matrix()
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = create(t, row.spec)
	}

	for _, scope := range []string{"running", "all"} {
		t.Run(scope, func(t *testing.T) {
			args := []string{"--format", "json"}
			if scope == "all" {
				args = append(args, "--all")
			}
			code, out, stderr := runCheck(t, "", args...)
			if code != 1 {
				t.Fatalf("check %v exit code = %d, want 1 (stderr %q)", args, code, stderr)
			}
			var r checkReport
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("check output is not JSON: %v\n%s", err, out)
			}
			if r.Scope != scope || r.Engine.APIVersion == "" || r.CheckedAt == "" || r.Host == "" {
				t.Errorf("report header = %+v, want scope %s and engine, time, host", r, scope)
			}
			for i, row := range rows {
				want := row.running
				if scope == "all" {
					want = row.all
				}
				slices.Sort(want)
				if got := brief(r, ids[i]); !slices.Equal(got, want) {
					t.Errorf("%s: check found %q, want %q", row.spec.Name, got, want)
				}
			}
		})
	}
}

func TestCheckTextFormat(t *testing.T) {
	spec := enginetest.Spec{Name: "text", Start: true}
	spec.Config.ExposedPorts, spec.HostConfig.PortBindings = publish(
		map[string][]network.PortBinding{"8080/tcp": {bind("127.0.0.1", "82")}})
	name := engine.Name(spec)
	create(t, spec)
	code, out, _ := runCheck(t, "")
	if code != 1 {
		t.Fatalf("check exit code = %d, want 1", code)
	}
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, name) {
			line = l
		}
	}
	for _, want := range []string{"privileged-port", "127.0.0.1:82->8080/tcp", "runtime",
		"V-260924,V-260929"} {
		if !strings.Contains(line, want) {
			t.Errorf("text line for %s = %q, want it to hold %q", name, line, want)
		}
	}
	if !strings.Contains(string(out), "NOT COMPLIANT") {
		t.Errorf("text report has no verdict:\n%s", out)
	}
}

// With every finding allowed, check exits 0 and still lists them.
func TestCheckAllowedExitsZero(t *testing.T) {
	spec := enginetest.Spec{Name: "allowed", Start: true}
	spec.Config.ExposedPorts, spec.HostConfig.PortBindings = publish(
		map[string][]network.PortBinding{"443/tcp": {bind("", "446")}})
	id := create(t, spec)
	cfg := `
policy:
  host_network: ignore
  allow:
    - name: everything
      reason: exercise the allow list
      containers: ["*"]
      ports: ["1-65535"]
`
	code, out, stderr := runCheck(t, cfg, "--format", "json")
	if code != 0 {
		t.Fatalf("check exit code = %d, want 0 (stderr %q)", code, stderr)
	}
	var r checkReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range r.Findings {
		if f.ContainerID == id {
			found = true
			if !f.Allowed || f.AllowedBy != "everything" {
				t.Errorf("finding %+v, want allowed by everything", f)
			}
		}
	}
	if !found || !r.Summary.Compliant || r.Summary.Violations != 0 {
		t.Errorf("allowed container found=%v, summary %+v; want listed and compliant", found,
			r.Summary)
	}
}

func TestCheckErrorsExitTwo(t *testing.T) {
	tests := []struct {
		name, cfg, wantStderr string
		env                   []string
	}{
		{"invalid config", "policy:\n  allow:\n    - {name: a, reason: r, ports: ['70000/tcp']}\n",
			`policy.allow[0].ports[0]: "70000/tcp": port out of range 1-65535`, nil},
		{"unreachable engine", "docker: {host: 'unix:///nonexistent/docker.sock'}",
			"docker engine unreachable at unix:///nonexistent/docker.sock: dial unix " +
				"/nonexistent/docker.sock: connect: no such file or directory", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCheck(t, tt.cfg)
			if code != 2 || len(out) != 0 {
				t.Errorf("exit code = %d, stdout %q; want 2 and nothing", code, out)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.wantStderr) {
				t.Errorf("stderr = %q, want one line holding %q", stderr, tt.wantStderr)
			}
		})
	}
}
