//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
	"github.com/portwarden/portwarden/test/testlog"
)

// startSwarm makes a single-node swarm on a dockerd of the test's own, and
// leaves it and stops the dockerd when the test ends, failed or not.
func startSwarm(t *testing.T) (*enginetest.Daemon, *enginetest.Engine) {
	t.Helper()
	ctx := context.Background()
	// Swarm makes a host bridge, docker_gwbridge, that outlives its dockerd;
	// the test removes it unless it was there before.
	hadGWBridge := exec.Command("ip", "link", "show", "docker_gwbridge").Run() == nil
	d, err := enginetest.StartDaemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("stopping the swarm's dockerd: %v", err)
		}
		if !hadGWBridge {
			exec.Command("ip", "link", "del", "docker_gwbridge").Run()
		}
	})
	e, err := enginetest.Connect(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.SwarmLeave(context.Background(), client.SwarmLeaveOptions{Force: true})
		e.Cleanup(context.Background(), t.Logf)
	})
	_, err = e.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:0",
		AdvertiseAddr: "127.0.0.1"})
	if err != nil {
		t.Fatalf("swarm init: %v", err)
	}
	if err := e.BuildImage(ctx); err != nil {
		t.Fatal(err)
	}
	return d, e
}

// createService makes a service of the sleeper image that publishes ports.
func createService(t *testing.T, e *enginetest.Engine, name string, global bool,
	ports ...swarm.PortConfig) string {
	t.Helper()
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name,
			Labels: map[string]string{enginetest.RunLabel: e.Run}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: e.Image,
			Args: []string{"tcp:8080"}}},
		EndpointSpec: &swarm.EndpointSpec{Ports: ports},
	}
	if global {
		spec.Mode.Global = &swarm.GlobalService{}
	} else {
		one := uint64(1)
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &one}
	}
	res, err := e.ServiceCreate(context.Background(), client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		t.Fatalf("creating service %s: %v", name, err)
	}
	return res.ID
}

func published(port uint32, mode swarm.PortConfigPublishMode) swarm.PortConfig {
	return swarm.PortConfig{Protocol: network.TCP, TargetPort: 8080, PublishedPort: port,
		PublishMode: mode}
}

func inspectService(t *testing.T, e *enginetest.Engine, id string) swarm.Service {
	t.Helper()
	res, err := e.ServiceInspect(context.Background(), id, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Service
}

func TestCheckFindsServices(t *testing.T) {
	d, e := startSwarm(t)
	createService(t, e, "web-80", false, published(80, swarm.PortConfigPublishModeIngress))
	host := createService(t, e, "host-81", false, published(81, swarm.PortConfigPublishModeHost))
	createService(t, e, "api-8080", false, published(8080, swarm.PortConfigPublishModeIngress))
	createService(t, e, "allowed-443", false, published(443, swarm.PortConfigPublishModeIngress))

	// The host-mode task must be running for its container to be there.
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, _ := e.ContainerList(context.Background(), client.ContainerListOptions{
			Filters: make(client.Filters).Add("label", "com.docker.swarm.service.id="+host)})
		if len(list.Items) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the host-mode task never ran")
		}
		time.Sleep(200 * time.Millisecond)
	}

	path := filepath.Join(t.TempDir(), "portwarden.yaml")
	cfg := fmt.Sprintf(`docker: {host: %q}
policy:
  allow:
    - name: test-service
      reason: exercise the allow list on a service
      containers: ["allowed-*"]
      images: ["portwarden-test-sleeper"]
      ports: ["443/tcp"]
`, d.Host)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(portwarden, "check", "--config", path, "--format", "json").Output()
	if code := exitCode(err); code != 1 {
		t.Fatalf("check exit code = %d (%v), want 1", code, err)
	}
	var r struct {
		Findings []json.RawMessage `json:"findings"`
		Services struct {
			Listed   int `json:"services_listed"`
			Findings []struct {
				Kind    string `json:"kind"`
				Allowed bool   `json:"allowed"`
				Service struct {
					ID   string `json:"service_id"`
					Name string `json:"service_name"`
				} `json:"service"`
				Binding struct {
					HostPort    int    `json:"host_port"`
					PublishMode string `json:"publish_mode"`
				} `json:"binding"`
			} `json:"findings"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("check output: %v\n%s", err, out)
	}
	var got []string
	for _, f := range r.Services.Findings {
		got = append(got, fmt.Sprintf("%s %s %d %s allowed=%v", f.Kind, f.Service.Name,
			f.Binding.HostPort, f.Binding.PublishMode, f.Allowed))
	}
	slices.Sort(got)
	want := []string{
		"service-published-port allowed-443 443 ingress allowed=true",
		"service-published-port host-81 81 host allowed=false",
		"service-published-port web-80 80 ingress allowed=false",
	}
	if r.Services.Listed != 4 || !slices.Equal(got, want) {
		t.Errorf("services (%d listed): %q, want %q", r.Services.Listed, got, want)
	}
	if len(r.Findings) != 0 {
		t.Errorf("container findings %s; the host-mode task is reported as its service",
			r.Findings)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func TestRunActsOnServices(t *testing.T) {
	d, e := startSwarm(t)
	for _, tt := range []struct {
		action string
		global bool
		check  func(t *testing.T, s swarm.Service)
	}{
		{"scale-to-zero", false, func(t *testing.T, s swarm.Service) {
			if r := s.Spec.Mode.Replicated; r == nil || *r.Replicas != 0 ||
				s.Spec.Labels["io.portwarden.previous-replicas"] != "1" {
				t.Errorf("after scale-to-zero: mode %+v, labels %v", s.Spec.Mode, s.Spec.Labels)
			}
		}},
		{"remove-published-port", false, func(t *testing.T, s swarm.Service) {
			if s.Spec.EndpointSpec != nil && len(s.Spec.EndpointSpec.Ports) != 0 {
				t.Errorf("after remove-published-port: ports %+v", s.Spec.EndpointSpec.Ports)
			}
		}},
		{"scale-to-zero", true, func(t *testing.T, s swarm.Service) {
			if len(s.Spec.EndpointSpec.Ports) != 1 || s.Spec.Mode.Global == nil {
				t.Errorf("a global service was changed: %+v", s.Spec)
			}
		}},
		{"alert", false, func(t *testing.T, s swarm.Service) {
			if *s.Spec.Mode.Replicated.Replicas != 1 || len(s.Spec.EndpointSpec.Ports) != 1 {
				t.Errorf("alert changed the service: %+v", s.Spec)
			}
		}},
	} {
		name := tt.action
		if tt.global {
			name += "-global"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "portwarden.yaml")
			cfg := fmt.Sprintf("mode: enforce\ndocker: {host: %q}\nenforce: {services: %s}\n"+
				"state_dir: %q\nmetrics: {listen: \"\"}\nlog: {format: json}\n",
				d.Host, tt.action, t.TempDir())
			os.WriteFile(path, []byte(cfg), 0o600)
			cmd := exec.Command(portwarden, "run", "--config", path)
			var logs testlog.Buffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()

			id := createService(t, e, "svc-"+name, tt.global,
				published(90, swarm.PortConfigPublishModeIngress))
			defer e.ServiceRemove(context.Background(), id, client.ServiceRemoveOptions{})
			verdict := map[string]string{"scale-to-zero": "scaled-to-zero",
				"remove-published-port": "port-removed", "alert": "alert"}[tt.action]
			if tt.global {
				verdict = "alert"
			}
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(logs.String(), `"verdict":"`+verdict+`"`) ||
				!strings.Contains(logs.String(), id) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s alert for the service:\n%s", verdict, logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tt.global && !strings.Contains(logs.String(), "cannot be scaled to zero") {
				t.Errorf("the alert does not say why a global service was left:\n%s",
					logs.String())
			}
			tt.check(t, inspectService(t, e, id))
		})
	}
}
