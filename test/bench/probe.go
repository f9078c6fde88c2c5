package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// violation is one violator's start, measured.
type violation struct {
	ID       string
	Exposure time.Duration // from its start event until its port refused a connection
}

// createViolator creates (does not start) a container that publishes
// 127.0.0.1:port and listens behind it.
func (l *lab) createViolator(ctx context.Context, name string, port int) (string, error) {
	p := network.MustParsePort("8080/tcp")
	spec := enginetest.Spec{Name: name}
	spec.Config.ExposedPorts = network.PortSet{p: {}}
	spec.Config.Cmd = []string{"tcp:8080"}
	spec.HostConfig.PortBindings = network.PortMap{p: {{
		HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}}}
	id, _, err := l.engine.Create(ctx, spec)
	return id, err
}

// createCompliant creates a container that publishes no port.
func (l *lab) createCompliant(ctx context.Context, name string) (string, error) {
	id, _, err := l.engine.Create(ctx, enginetest.Spec{Name: name})
	return id, err
}

// measure starts the created violator id and returns its exposure, probing
// its port every interval from the moment the start returns.
func (l *lab) measure(ctx context.Context, id string, port int, kill bool,
	interval, timeout time.Duration) (violation, error) {
	started := l.starts.expect(id, kill)
	if _, err := l.engine.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return violation{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	closed, err := waitRefused(addr, interval, timeout)
	if err != nil {
		return violation{}, fmt.Errorf("%s: %w", addr, err)
	}
	select {
	case at := <-started:
		return violation{ID: id, Exposure: closed.Sub(at)}, nil
	case <-time.After(5 * time.Second):
		return violation{}, fmt.Errorf("no start event for %.12s", id)
	}
}

// waitRefused dials addr every interval until a connection is refused, and
// returns when.
func waitRefused(addr string, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return time.Now(), nil
		}
		c.Close()
		time.Sleep(interval)
	}
	return time.Time{}, fmt.Errorf("still open after %s", timeout)
}

func (l *lab) remove(ctx context.Context, ids ...string) {
	for _, id := range ids {
		l.engine.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	}
}

func running(ctx context.Context, e *enginetest.Engine, id string) bool {
	res, err := e.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return err == nil && res.Container.State != nil && res.Container.State.Running
}
