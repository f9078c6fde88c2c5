//go:build faults

// Package faults breaks what portwarden depends on, on purpose, and checks
// that nothing is lost: each case runs against a dockerd of its own.
package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
	"github.com/portwarden/portwarden/test/runlog"
)

var portwarden string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portwarden-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	portwarden = filepath.Join(dir, "portwarden")
	if err := enginetest.GoBuild("cmd/portwarden", portwarden); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// engine starts a dockerd of the test's own, with the sleeper image.
func engine(t *testing.T) (*enginetest.Daemon, *enginetest.Engine) {
	t.Helper()
	ctx := context.Background()
	d, err := enginetest.StartDaemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e, err := enginetest.Connect(ctx, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Cleanup(context.Background(), t.Logf) })
	if err := e.BuildImage(ctx); err != nil {
		t.Fatal(err)
	}
	return d, e
}

// proc is a running portwarden and what it logged.
type proc struct {
	cmd    *exec.Cmd
	config string
	log    *runlog.Log
}

func start(t *testing.T, host, cfg string) *proc {
	t.Helper()
	p := &proc{config: filepath.Join(t.TempDir(), "portwarden.yaml")}
	p.write(t, host, cfg)
	p.cmd = exec.Command(portwarden, "run", "--config", p.config)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.log = runlog.Read(stderr)
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.log.Done() // Wait only once the pipe is read to its end
		p.cmd.Wait()
		if t.Failed() {
			p.log.Dump(t.Logf)
		}
	})
	return p
}

func (p *proc) write(t *testing.T, host, cfg string) {
	t.Helper()
	full := fmt.Sprintf("docker: {host: %q}\nlog: {format: json}\nmetrics: {listen: \"\"}\n%s",
		host, cfg)
	if !strings.Contains(cfg, "state_dir:") {
		full += fmt.Sprintf("state_dir: %q\n", t.TempDir())
	}
	if err := os.WriteFile(p.config, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
}

// kill ends portwarden with SIGKILL, and waits for it.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.log.Done()
	p.cmd.Wait()
}

// exited reports whether portwarden has ended its log: it exited.
func (p *proc) exited() bool {
	select {
	case <-p.log.Done():
		return true
	default:
		return false
	}
}

func (p *proc) count(msg string) int {
	return p.log.Count(msg, nil)
}

// logged returns the lines logged so far with message msg and the fields
// of want.
func (p *proc) logged(msg string, want map[string]any) []map[string]any {
	return p.log.Lines(msg, want)
}

func (p *proc) waitFor(t *testing.T, msg string, timeout time.Duration) {
	t.Helper()
	if _, err := p.log.Wait(msg, nil, timeout); err != nil {
		t.Fatalf("portwarden: %v", err)
	}
}

func violator(t *testing.T, e *enginetest.Engine, name, port string) string {
	t.Helper()
	p := network.MustParsePort("8080/tcp")
	spec := enginetest.Spec{Name: name, Start: true}
	spec.Config.ExposedPorts = network.PortSet{p: {}}
	spec.Config.Cmd = []string{"tcp:8080"}
	spec.HostConfig.PortBindings = network.PortMap{p: {{HostPort: port}}}
	id, _, err := e.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func stoppedWithin(e *enginetest.Engine, id string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		res, err := e.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		if err == nil && !res.Container.State.Running {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// The engine is down when portwarden starts and comes up later: portwarden
// waits, says so once, and enforces from then on.
func TestEngineDownAtStart(t *testing.T) {
	d, e := engine(t)
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	p := start(t, d.Host, "mode: enforce\n")
	p.waitFor(t, "engine unreachable, retrying", 10*time.Second)
	time.Sleep(15 * time.Second) // several retries, with backoff
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "reconciled", 60*time.Second)
	id := violator(t, e, "after-outage", "181")
	if !stoppedWithin(e, id, 10*time.Second) {
		t.Fatal("a violator started after the engine came up was not stopped")
	}
	if n := p.count("engine unreachable, retrying"); n != 1 {
		t.Errorf("said the engine was unreachable %d times, want once", n)
	}
}

// Twenty reloads in a second, some with broken configs: the daemon stays
// up, and the last valid config wins.
func TestReloadStorm(t *testing.T) {
	d, e := engine(t)
	p := start(t, d.Host, "mode: enforce\n")
	p.waitFor(t, "reconciled", 30*time.Second)
	for i := range 20 {
		cfg := "mode: enforce\n"
		switch {
		case i%3 == 1:
			cfg = "mode: enforse\n" // broken
		case i == 18:
			cfg = "mode: alert\n" // the last valid one
		case i == 19:
			cfg = "policy: {privileged_below: 0}\n" // broken again
		}
		p.write(t, d.Host, cfg)
		p.cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if p.exited() {
		t.Fatal("portwarden exited during the reload storm")
	}
	if p.count("config reload refused; the running config stays") == 0 {
		t.Error("no broken reload was refused")
	}
	id := violator(t, e, "after-storm", "182")
	time.Sleep(3 * time.Second)
	res, err := e.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil || !res.Container.State.Running {
		t.Error("the violator was stopped: the last valid config (alert mode) did not win")
	}
}

// proxied puts a proxy of the test's own in front of the engine.
func proxied(t *testing.T, d *enginetest.Daemon) *enginetest.Proxy {
	t.Helper()
	p, err := enginetest.NewProxy(strings.TrimPrefix(d.Host, "unix://"), t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// portwarden is killed with SIGKILL in the middle of a stop, and started
// again: the violator ends up stopped, and its alert is sent once.
func TestKilledInTheMiddleOfAStop(t *testing.T) {
	d, e := engine(t)
	proxy := proxied(t, d)
	host := "unix://" + proxy.Socket
	first := start(t, host, "mode: enforce\n")
	first.waitFor(t, "reconciled", 30*time.Second)

	proxy.Stall(`/containers/[^/]+/kill$`) // the kill never answers
	id := violator(t, e, "half-stopped", "183")
	first.waitFor(t, "finding", 10*time.Second)
	time.Sleep(500 * time.Millisecond) // the kill is in flight
	first.kill()
	proxy.Release()
	if stoppedWithin(e, id, 500*time.Millisecond) {
		t.Fatal("the stalled kill went through after all; the case proves nothing")
	}

	second := start(t, host, "mode: enforce\n")
	second.waitFor(t, "container stopped", 30*time.Second)
	if !stoppedWithin(e, id, 10*time.Second) {
		t.Fatal("the violator is still running after the restart")
	}
	time.Sleep(time.Second)
	if n := first.count("alert") + second.count("alert"); n != 1 {
		t.Errorf("%d alerts for the violator, want one", n)
	}
}

// The engine is slow: every call takes 2 s more. Intake keeps up, no
// event is dropped, and every violator is still stopped.
func TestSlowEngine(t *testing.T) {
	d, e := engine(t)
	proxy := proxied(t, d)
	p := start(t, "unix://"+proxy.Socket, "mode: enforce\n")
	p.waitFor(t, "reconciled", 30*time.Second)
	proxy.Delay(2 * time.Second)

	var ids []string
	for i := range 5 {
		ids = append(ids, violator(t, e, fmt.Sprintf("slow-%d", i), fmt.Sprint(184+i)))
	}
	for _, id := range ids {
		if !stoppedWithin(e, id, 60*time.Second) {
			t.Fatalf("violator %.12s not stopped with a slow engine", id)
		}
	}
	if n := p.count("event queue full, reconciling"); n != 0 {
		t.Errorf("the queue overflowed %d times", n)
	}
}
