package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/portwarden/portwarden/test/runlog"
)

// daemonProc is one portwarden run, in enforce mode, with its log.
type daemonProc struct {
	cmd     *exec.Cmd
	metrics string
	dir     string
	log     *runlog.Log
}

// startPortwarden runs portwarden against the lab's engine. Containers
// named for the other arms are allowed, so that portwarden leaves them to
// their arm.
func (l *lab) startPortwarden() (*daemonProc, error) {
	dir, err := os.MkdirTemp("", "portwarden-bench-run-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	metrics := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`mode: enforce
docker: {host: %q}
state_dir: %q
metrics: {listen: %q}
log: {format: json}
notify: {dedup_window: 0s}
enforce: {loop: {max_stops: 1000, window: 1s}}
policy:
  allow:
    - name: other-arms
      reason: the limit and polling arms stop their own violators
      containers: ["pwtest-*-limit-*", "pwtest-*-poll-*"]
      ports: ["1-1023"]
`, l.daemon.Host, filepath.Join(dir, "state"), metrics)
	path := filepath.Join(dir, "portwarden.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p := &daemonProc{cmd: exec.Command(l.portwarden, "run", "--config", path),
		metrics: metrics, dir: dir}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.log = runlog.Read(stderr)
	if _, err := p.waitFor("reconciled", 2*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitFor returns the first log line with message msg.
func (p *daemonProc) waitFor(msg string, timeout time.Duration) (map[string]any, error) {
	line, err := p.log.Wait(msg, nil, timeout)
	if err != nil {
		return nil, fmt.Errorf("portwarden: %w", err)
	}
	return line, nil
}

// metric returns the value of an unlabelled metric from /metrics.
func (p *daemonProc) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f, nil
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// usage reads the process's CPU time and resident memory from /proc.
func (p *daemonProc) usage() (cpu time.Duration, rssKiB int, err error) {
	pid := p.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fmt.Sscan(strings.TrimSpace(v), &rssKiB)
		}
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, rssKiB, nil
}

func (p *daemonProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		<-p.log.Done() // Wait only once the pipe is read to its end
		p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(p.dir)
}
