package watcher

// Workload names what an orchestrator recreates when portwarden stops a
// container: a Swarm service, a Kubernetes pod, a Compose service, or else
// the container's name. The loop breaker counts stops per workload.
type Workload struct {
	Kind string `json:"kind"` // swarm-service, kubernetes-pod, compose-service or container
	Name string `json:"name"`
}

// String returns w as "kind name", as logs and alerts show it.
func (w Workload) String() string {
	return w.Kind + " " + w.Name
}

// WorkloadOf returns the workload of a container from its labels and name.
// Labels are chosen by whoever starts the container, so a workload names
// a container for counting, never for trusting.
func WorkloadOf(c Container) Workload {
	l := c.Labels
	switch {
	case l["com.docker.swarm.service.id"] != "":
		name := l["com.docker.swarm.service.name"]
		if name == "" {
			name = l["com.docker.swarm.service.id"]
		}
		return Workload{Kind: "swarm-service", Name: name}
	case l["io.kubernetes.pod.name"] != "":
		return Workload{Kind: "kubernetes-pod",
			Name: l["io.kubernetes.pod.namespace"] + "/" + l["io.kubernetes.pod.name"]}
	case l["com.docker.compose.service"] != "":
		return Workload{Kind: "compose-service",
			Name: l["com.docker.compose.project"] + "/" + l["com.docker.compose.service"]}
	}
	return Workload{Kind: "container", Name: c.Name}
}
