//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
	"github.com/portwarden/portwarden/test/runlog"
)

// daemonProcess is one `portwarden run` under test, with its log.
type daemonProcess struct {
	cmd    *exec.Cmd
	config string
	log    *runlog.Log
	exit   chan error
}

// startPortwarden runs portwarden run against the test's own engine with
// cfg added to the config, and waits for its first reconcile.
func startPortwarden(t *testing.T, cfg string) *daemonProcess {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portwarden.yaml")
	full := fmt.Sprintf("docker: {host: %q}\nlog: {format: json, level: debug}\n%s",
		ownDaemon.Host, cfg)
	if !strings.Contains(cfg, "state_dir:") {
		full += fmt.Sprintf("state_dir: %q\n", t.TempDir())
	}
	if !strings.Contains(cfg, "metrics:") {
		full += "metrics: {listen: \"\"}\n"
	}
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &daemonProcess{config: path, exit: make(chan error, 1)}
	p.cmd = exec.Command(portwarden, "run", "--config", path)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.log = runlog.Read(stderr)
	go func() {
		<-p.log.Done() // Wait only once the pipe is read to its end
		p.exit <- p.cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	p.waitFor(t, 30*time.Second, "reconciled", nil)
	return p
}

// stop ends the process with SIGTERM and checks it exits 0 in time.
func (p *daemonProcess) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exit:
		if err != nil {
			t.Errorf("portwarden run exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("portwarden run did not exit within 20s of SIGTERM")
	}
	if t.Failed() {
		p.log.Dump(t.Logf)
	}
}

// waitFor waits for a log line with message msg and fields want.
func (p *daemonProcess) waitFor(t *testing.T, timeout time.Duration, msg string,
	want map[string]any) map[string]any {
	t.Helper()
	line, err := p.log.Wait(msg, want, timeout)
	if err != nil {
		t.Fatalf("portwarden run: %v", err)
	}
	return line
}

// count returns how many log lines have message msg and fields want.
func (p *daemonProcess) count(msg string, want map[string]any) int {
	return p.log.Count(msg, want)
}

// signal sends sig to the process.
func (p *daemonProcess) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// runContainer starts a container of the sleeper image on the test's own
// engine (host ports 80, 53/udp, 180-199 and 18081 are the run tests';
// the check tests use others), listening on its published container ports, and removes it when
// the test ends.
func runContainer(t *testing.T, spec enginetest.Spec,
	bindings map[string][]network.PortBinding) string {
	t.Helper()
	if bindings != nil {
		spec.Config.ExposedPorts, spec.HostConfig.PortBindings = publish(bindings)
		for p := range spec.Config.ExposedPorts {
			spec.Config.Cmd = append(spec.Config.Cmd, string(p.Proto())+":"+p.Port())
		}
	}
	spec.Start = true
	id, _, err := own.Create(context.Background(), spec)
	if id != "" {
		t.Cleanup(func() {
			own.ContainerRemove(context.Background(), id,
				client.ContainerRemoveOptions{Force: true})
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	res, err := own.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container
}

// waitStopped waits until the container is no longer running.
func waitStopped(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for inspect(t, id).State.Running {
		if time.Now().After(deadline) {
			t.Fatalf("container %.12s still running after 10s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refuses checks that nothing accepts TCP connections on the host port.
func refuses(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Errorf("%s still accepts connections", addr)
	}
}

func tcp(hostIP, hostPort, containerPort string) map[string][]network.PortBinding {
	return map[string][]network.PortBinding{containerPort + "/tcp": {bind(hostIP, hostPort)}}
}

// -p 80:8080 and -p 53:53/udp, on every interface, as an operator types them.
func TestRunStopsViolators(t *testing.T) {
	p := startPortwarden(t, "mode: enforce\n")

	web := runContainer(t, enginetest.Spec{Name: "web-80"}, tcp("", "80", "8080"))
	dns := runContainer(t, enginetest.Spec{Name: "dns-53"},
		map[string][]network.PortBinding{"53/udp": {bind("", "53")}})
	waitStopped(t, web)
	refuses(t, "127.0.0.1:80")
	waitStopped(t, dns)

	for _, id := range []string{web, dns} {
		l := p.waitFor(t, 5*time.Second, "container stopped",
			map[string]any{"container_id": id, "outcome": "stopped", "action": "stop"})
		if _, ok := l["duration_ms"]; !ok {
			t.Errorf("stop line %v has no duration_ms", l)
		}
		t.Logf("%.12s stopped: stop took %v ms, %v ms after its start event", id,
			l["duration_ms"], l["exposure_ms"])
		p.waitFor(t, 5*time.Second, "alert", map[string]any{"container_id": id,
			"verdict": "stopped"})
	}
}

func TestRunLeavesCompliantAndAllowedAlone(t *testing.T) {
	p := startPortwarden(t, `mode: enforce
policy:
  allow:
    - name: test-allowed
      reason: exercise the allow list
      containers: ["pwtest-*-allowed"]
      ports: ["182/tcp"]
`)
	compliant := runContainer(t, enginetest.Spec{Name: "compliant"},
		tcp("127.0.0.1", "18081", "8080"))
	allowed := runContainer(t, enginetest.Spec{Name: "allowed"}, tcp("127.0.0.1", "182", "8080"))
	violator := runContainer(t, enginetest.Spec{Name: "violator"}, tcp("127.0.0.1", "183", "8080"))

	waitStopped(t, violator)
	p.waitFor(t, 5*time.Second, "no findings", map[string]any{"container_id": compliant})
	p.waitFor(t, 5*time.Second, "allowed finding",
		map[string]any{"container_id": allowed, "allowed_by": "test-allowed"})
	for _, id := range []string{compliant, allowed} {
		if !inspect(t, id).State.Running {
			t.Errorf("container %.12s was stopped, want it running", id)
		}
	}
	if n := p.count("alert", map[string]any{"container_id": allowed}); n != 0 {
		t.Errorf("allowed container alerted %d times, want 0 without notify.allowed", n)
	}
}

func TestRunDisablesRestartAlways(t *testing.T) {
	p := startPortwarden(t, "mode: enforce\n")
	spec := enginetest.Spec{Name: "always"}
	spec.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
	id := runContainer(t, spec, tcp("127.0.0.1", "184", "8080"))
	waitStopped(t, id)
	p.waitFor(t, 5*time.Second, "container stopped",
		map[string]any{"container_id": id, "restart_disabled": true})

	time.Sleep(time.Second) // the engine would have restarted it by now
	c := inspect(t, id)
	if c.State.Running || c.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("running %v, restart policy %q; want stopped with policy no", c.State.Running,
			c.HostConfig.RestartPolicy.Name)
	}
}

func TestRunStopsWhatStartedBeforeIt(t *testing.T) {
	id := runContainer(t, enginetest.Spec{Name: "early"}, tcp("127.0.0.1", "185", "8080"))
	p := startPortwarden(t, "mode: enforce\n")
	waitStopped(t, id)
	p.waitFor(t, 5*time.Second, "container stopped",
		map[string]any{"container_id": id, "origin": "reconcile"})
}

func TestRunDryRunStopsNothing(t *testing.T) {
	p := startPortwarden(t, "mode: enforce\nenforce: {dry_run: true}\n")
	id := runContainer(t, enginetest.Spec{Name: "dry"}, tcp("127.0.0.1", "186", "8080"))
	p.waitFor(t, 5*time.Second, "alert", map[string]any{"container_id": id,
		"verdict": "would-stop"})
	if !inspect(t, id).State.Running {
		t.Error("dry run stopped the container")
	}
}

func TestRunAlertModeStopsNothing(t *testing.T) {
	p := startPortwarden(t, "")
	id := runContainer(t, enginetest.Spec{Name: "alerted"}, tcp("127.0.0.1", "187", "8080"))
	p.waitFor(t, 5*time.Second, "alert", map[string]any{"container_id": id,
		"verdict": "alert", "mode": "alert"})
	if !inspect(t, id).State.Running {
		t.Error("alert mode stopped the container")
	}
}

func TestRunLoopBreaker(t *testing.T) {
	p := startPortwarden(t, "mode: enforce\nenforce: {loop: {max_stops: 2, window: 10m}}\n")
	compose := map[string]string{
		"com.docker.compose.project": "shop", "com.docker.compose.service": "web",
	}
	var ids []string
	for i := range 3 {
		spec := enginetest.Spec{Name: fmt.Sprintf("shop-web-%d", i)}
		spec.Config.Labels = compose
		id := runContainer(t, spec, tcp("127.0.0.1", "188", "8080"))
		ids = append(ids, id)
		if i < 2 {
			waitStopped(t, id)
			p.waitFor(t, 5*time.Second, "container stopped", map[string]any{"container_id": id})
		}
	}
	p.waitFor(t, 5*time.Second, "loop breaker holds this workload; not stopped",
		map[string]any{"container_id": ids[2], "workload": "compose-service shop/web"})
	p.waitFor(t, 5*time.Second,
		"alert: an orchestrator keeps recreating this workload; enforcement paused",
		map[string]any{"container_id": ids[2], "verdict": "enforcement-loop"})
	if !inspect(t, ids[2]).State.Running {
		t.Error("the loop breaker did not hold: third start stopped")
	}
}

func TestRunReloadRefusesBrokenConfig(t *testing.T) {
	p := startPortwarden(t, "mode: enforce\n")
	cfg, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(cfg), "mode: enforce", "mode: enforse", 1)
	if err := os.WriteFile(p.config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitFor(t, 5*time.Second, "config reload refused; the running config stays", nil)

	id := runContainer(t, enginetest.Spec{Name: "after-bad-reload"},
		tcp("127.0.0.1", "189", "8080"))
	waitStopped(t, id) // enforce mode still in force

	alert := strings.Replace(string(cfg), "mode: enforce", "mode: alert", 1)
	if err := os.WriteFile(p.config, []byte(alert), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitFor(t, 5*time.Second, "config reloaded", map[string]any{"mode": "alert"})
	id = runContainer(t, enginetest.Spec{Name: "after-good-reload"},
		tcp("127.0.0.1", "190", "8080"))
	p.waitFor(t, 5*time.Second, "alert", map[string]any{"container_id": id, "mode": "alert"})
	if !inspect(t, id).State.Running {
		t.Error("after a reload to alert mode the container was stopped")
	}
}

// The engine restarts; a violator it brings back up (restart=always) while
// portwarden's stream is down is caught by the reconcile after the
// reconnect.
func TestRunSurvivesEngineRestart(t *testing.T) {
	t.Cleanup(func() {
		if !ownDaemon.Running() {
			if err := ownDaemon.Start(context.Background()); err != nil {
				t.Errorf("restarting our engine after the test: %v", err)
			}
		}
	})
	p := startPortwarden(t, "mode: enforce\n")

	// Frozen, portwarden acts on nothing until the engine is gone.
	p.signal(t, syscall.SIGSTOP)
	spec := enginetest.Spec{Name: "comes-back"}
	spec.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
	id := runContainer(t, spec, tcp("127.0.0.1", "191", "8080"))
	if err := ownDaemon.Stop(); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGCONT)
	p.waitFor(t, 10*time.Second, "stream lost", nil)

	if err := ownDaemon.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, id)
	p.waitFor(t, 30*time.Second, "stream back", nil)
	p.waitFor(t, 5*time.Second, "container stopped",
		map[string]any{"container_id": id, "restart_disabled": true})
	if n := p.count("stream lost", nil); n != 1 {
		t.Errorf("logged stream lost %d times, want once", n)
	}
	if n := p.count("container stopped", map[string]any{"container_id": id}); n != 1 {
		t.Errorf("stopped the container %d times, want once", n)
	}
	if policy := inspect(t, id).HostConfig.RestartPolicy.Name; policy != "no" {
		t.Errorf("restart policy = %q, want no", policy)
	}
}

// A violator that runs and is stopped while portwarden is down is judged
// when portwarden comes back, from the events the engine replays after
// the resume point; one that portwarden stopped itself before it went down
// is not alerted again.
func TestRunReplaysWhatRanWhileItWasDown(t *testing.T) {
	cfg := fmt.Sprintf("mode: enforce\nstate_dir: %q\n", t.TempDir())
	first := startPortwarden(t, cfg)
	stopped := runContainer(t, enginetest.Spec{Name: "stopped-before"},
		tcp("127.0.0.1", "197", "8080"))
	waitStopped(t, stopped)
	first.waitFor(t, 5*time.Second, "alert", map[string]any{"container_id": stopped})
	first.stop(t)

	missed := runContainer(t, enginetest.Spec{Name: "ran-while-down"},
		tcp("127.0.0.1", "198", "8080"))
	if _, err := own.ContainerKill(context.Background(), missed,
		client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, missed)

	second := startPortwarden(t, cfg)
	second.waitFor(t, 5*time.Second, "resuming the event stream where the last run left it", nil)
	second.waitFor(t, 10*time.Second, "alert",
		map[string]any{"container_id": missed, "verdict": "exited"})
	time.Sleep(time.Second)
	if n := second.count("alert", map[string]any{"container_id": stopped}); n != 0 {
		t.Errorf("the container stopped before the restart was alerted %d more times", n)
	}
	if n := second.count("alert", map[string]any{"container_id": missed}); n != 1 {
		t.Errorf("the container that ran while portwarden was down was alerted %d times, "+
			"want once", n)
	}
}

// In enforce mode a violator makes one Slack message that carries the
// outcome, and one syslog record.
func TestRunNotifiesSlackAndSyslog(t *testing.T) {
	var mu sync.Mutex
	var posts []map[string]any
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg map[string]any
		json.NewDecoder(r.Body).Decode(&msg)
		mu.Lock()
		posts = append(posts, msg)
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer slack.Close()
	sockPath := filepath.Join(t.TempDir(), "syslog.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	startPortwarden(t, fmt.Sprintf(`mode: enforce
state_dir: %q
notify:
  slack: {webhook_url: %q}
  syslog: {enabled: true, network: unixgram, address: %q}
`, t.TempDir(), slack.URL+"/hook", sockPath))
	id := runContainer(t, enginetest.Spec{Name: "notified"}, tcp("127.0.0.1", "192", "8080"))
	waitStopped(t, id)

	buf := make([]byte, 8192)
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("no syslog record: %v", err)
	}
	record := string(buf[:n])
	if !strings.Contains(record, `container_id="`+id+`"`) ||
		!strings.Contains(record, "stopped: container") {
		t.Errorf("syslog record = %q, want the stopped container", record)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(posts)
		mu.Unlock()
		if got > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no Slack message")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	mu.Lock()
	defer mu.Unlock()
	raw, _ := json.Marshal(posts)
	if len(posts) != 1 || !strings.Contains(string(raw), "Stopped in") ||
		!strings.Contains(string(raw), id[:12]) {
		t.Errorf("Slack got %d messages: %s; want one with the outcome", len(posts), raw)
	}
	sock.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := sock.Read(buf); err == nil {
		t.Errorf("a second syslog record arrived: %q", buf)
	}
}

func TestRunMetricsAndHealthz(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startPortwarden(t, fmt.Sprintf("mode: enforce\nmetrics: {listen: %q}\n", addr))
	id := runContainer(t, enginetest.Spec{Name: "counted"}, tcp("127.0.0.1", "193", "8080"))
	waitStopped(t, id)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, metrics := get("/metrics")
		if strings.Contains(metrics, `portwarden_stops_total{outcome="stopped"} 1`) {
			for _, want := range []string{"portwarden_stream_connected 1",
				`portwarden_findings_total{kind="privileged-port"}`,
				"portwarden_events_received_total", `portwarden_queue_depth{queue="events"}`,
				`portwarden_notifications_total{notifier="log",outcome="delivered"}`,
				"portwarden_reconcile_duration_seconds"} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s:\n%s", want, metrics)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stop counted:\n%s", metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
}

// The webhook URL never shows in anything portwarden writes: its log
// (with Slack failing and unreachable), config show, config validate,
// notify test, metrics and /healthz.
func TestSecretsStayOutOfEveryOutput(t *testing.T) {
	const secret = "T0SECRET/B0SECRET/s3cr3tw3bh00kp4th"
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer failing.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := l.Addr().String()
	l.Close()

	var outputs []string
	for _, hook := range []string{failing.URL, "http://127.0.0.1:1"} { // failing, unreachable
		cfg := fmt.Sprintf("mode: enforce\nmetrics: {listen: %q}\n"+
			"notify: {slack: {webhook_url: %q}}\n", metrics, hook+"/services/"+secret)
		p := startPortwarden(t, cfg)
		id := runContainer(t, enginetest.Spec{Name: "secret-" + fmt.Sprint(len(outputs))},
			tcp("127.0.0.1", "196", "8080"))
		waitStopped(t, id)
		p.waitFor(t, 10*time.Second, "notifier failing; retrying", nil)
		for _, path := range []string{"/metrics", "/healthz"} {
			if resp, err := http.Get("http://" + metrics + path); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				outputs = append(outputs, string(body))
			}
		}
		for _, args := range [][]string{{"config", "show"}, {"config", "validate"},
			{"notify", "test"}} {
			out, _ := exec.Command(portwarden, append(args, "--config", p.config)...).
				CombinedOutput()
			outputs = append(outputs, string(out))
		}
		p.stop(t)
		p.log.Dump(func(format string, args ...any) {
			outputs = append(outputs, fmt.Sprintf(format, args...))
		})
	}
	for _, out := range outputs {
		if strings.Contains(out, "s3cr3tw3bh00k") || strings.Contains(out, "SECRET") {
			t.Errorf("an output holds the webhook secret:\n%s", out)
		}
	}
	if len(outputs) < 10 {
		t.Errorf("only %d outputs checked", len(outputs))
	}
}
