package watcher

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

func loadService(t testing.TB, name string) swarm.Service {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "service-"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var s swarm.Service
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func serviceBrief(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		s := string(f.Kind) + " " + f.Service.Name + " " + f.Service.Mode + " " +
			f.Binding.HostPorts() + "->" + strconv.Itoa(f.Binding.ContainerPort) + "/" +
			f.Binding.Protocol + " " + f.Binding.PublishMode
		if f.Allowed {
			s += " allowed-by=" + f.AllowedBy
		}
		out = append(out, s)
	}
	return out
}

func TestDetectService(t *testing.T) {
	interlock := defaultPolicy
	interlock.Allow = []AllowRule{{Name: "edge", Containers: []Glob{"edge"},
		Images: []ImageSelector{{Repository: "pw-sleeper"}}}}
	tests := []struct {
		name, fixture string
		policy        Policy
		want          []string
	}{
		{"ingress on 80", "web", defaultPolicy,
			[]string{"service-published-port web replicated 80->8080/tcp ingress"}},
		{"host mode on 81", "hostmode", defaultPolicy,
			[]string{"service-published-port hostmode replicated 81->8080/tcp host"}},
		{"8080 is no finding", "api-8080", defaultPolicy, []string{}},
		{"global, two ports", "edge", defaultPolicy, []string{
			"service-published-port edge global 53->53/udp ingress",
			"service-published-port edge global 443->8443/tcp ingress"}},
		{"allowed by service name and image", "edge", interlock, []string{
			"service-published-port edge global 53->53/udp ingress allowed-by=edge",
			"service-published-port edge global 443->8443/tcp ingress allowed-by=edge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := serviceBrief(DetectService(loadService(t, tt.fixture), tt.policy))
			if !slices.Equal(got, tt.want) {
				t.Errorf("DetectService(%s) = %q, want %q", tt.fixture, got, tt.want)
			}
		})
	}
}

func TestDetectServiceFields(t *testing.T) {
	fs := DetectService(loadService(t, "web"), defaultPolicy)
	if len(fs) != 1 {
		t.Fatalf("findings = %d, want 1", len(fs))
	}
	s := fs[0].Service
	if s.ID == "" || s.Image != "pw-sleeper:latest" || s.Replicas != 1 || s.Version == 0 ||
		fs[0].ID != "" || !slices.Equal(fs[0].Rules, []string{"V-260924", "V-260929"}) {
		t.Errorf("finding = %+v service %+v", fs[0], s)
	}
}

// A service's host-mode task is a container that the service already
// accounts for.
func TestServiceTask(t *testing.T) {
	c := loadInspect(t, "task-hostmode")
	if got := ServiceTask(containerOf(c)); got != "v8daadri4zpfquoai5cyw84cx" {
		t.Errorf("ServiceTask = %q, want the hostmode service's ID", got)
	}
	if got := ServiceTask(containerOf(loadInspect(t, "web"))); got != "" {
		t.Errorf("ServiceTask(plain container) = %q, want none", got)
	}
}

type fakeSwarm struct {
	state    swarm.LocalNodeState
	control  bool
	services []swarm.Service
}

func (f fakeSwarm) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	var info system.Info
	info.Swarm.LocalNodeState, info.Swarm.ControlAvailable = f.state, f.control
	return client.SystemInfoResult{Info: info}, nil
}

func (f fakeSwarm) ServiceList(context.Context, client.ServiceListOptions) (
	client.ServiceListResult, error) {
	return client.ServiceListResult{Items: f.services}, nil
}

func TestScanServices(t *testing.T) {
	api := fakeSwarm{state: swarm.LocalNodeStateActive, control: true,
		services: []swarm.Service{loadService(t, "web"), loadService(t, "api-8080"),
			loadService(t, "edge")}}
	if ok, err := IsManager(context.Background(), api); !ok || err != nil {
		t.Errorf("IsManager(manager) = %v, %v", ok, err)
	}
	worker := fakeSwarm{state: swarm.LocalNodeStateActive}
	if ok, _ := IsManager(context.Background(), worker); ok {
		t.Error("IsManager(worker) = true")
	}
	fs, n, err := ScanServices(context.Background(), api, defaultPolicy)
	if err != nil || n != 3 || len(fs) != 3 || fs[0].Service.Name != "edge" {
		t.Errorf("ScanServices = %d findings of %d services, %v; want 3 of 3, edge first",
			len(fs), n, err)
	}
}
