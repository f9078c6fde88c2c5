package enginetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// Daemon is a dockerd that a test started and owns: its own socket, data
// root, exec root, pid file and bridge, so that a test may stop and
// restart it without touching an engine someone else uses.
type Daemon struct {
	Root   string // holds everything the daemon writes
	Host   string // unix://Root/docker.sock
	Bridge string

	cmd  *exec.Cmd
	exit chan error
}

// StartDaemon starts a dockerd of the test's own and waits until it
// answers.
func StartDaemon(ctx context.Context) (*Daemon, error) {
	root, err := os.MkdirTemp("", "pwd-")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	rand.Read(b)
	d := &Daemon{Root: root, Host: "unix://" + filepath.Join(root, "docker.sock"),
		Bridge: fmt.Sprintf("pw%x", b)}
	// Room for a few thousand containers, for the benchmark's largest run.
	subnet := fmt.Sprintf("10.%d.%d.1/20", 200+b[0]%50, b[1]%16*16)
	for _, args := range [][]string{
		{"link", "add", d.Bridge, "type", "bridge"},
		{"addr", "add", subnet, "dev", d.Bridge},
		{"link", "set", d.Bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			d.Close()
			return nil, fmt.Errorf("ip %v: %w: %s", args, err, out)
		}
	}
	if err := d.Start(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Start starts the daemon's dockerd, which must not be running, and waits
// until it answers.
func (d *Daemon) Start(ctx context.Context) error {
	logFile, err := os.OpenFile(filepath.Join(d.Root, "dockerd.log"),
		os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d.cmd = exec.Command("dockerd",
		"--host", d.Host,
		"--data-root", filepath.Join(d.Root, "data"),
		"--exec-root", filepath.Join(d.Root, "exec"),
		"--pidfile", filepath.Join(d.Root, "docker.pid"),
		"--bridge", d.Bridge,
		"--iptables=false", "--ip6tables=false")
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("starting dockerd: %w", err)
	}
	d.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan<- error) { exit <- cmd.Wait() }(d.cmd, d.exit)

	cli, err := client.New(client.WithHost(d.Host))
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Ping(pingCtx, client.PingOptions{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case exitErr := <-d.exit:
			d.cmd = nil
			return fmt.Errorf("dockerd exited during start-up (%w); see %s", exitErr,
				filepath.Join(d.Root, "dockerd.log"))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd at %s did not answer within 60s", d.Host)
		}
	}
}

// Stop stops dockerd as an operator would, with SIGTERM, and waits for it;
// after 30 s it is killed.
func (d *Daemon) Stop() error {
	if d.cmd == nil {
		return nil
	}
	defer func() { d.cmd = nil }()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-d.exit:
		return nil
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exit
		return errors.New("dockerd did not stop within 30s; killed")
	}
}

// Close stops dockerd, removes the bridge and everything under Root.
func (d *Daemon) Close() error {
	errs := []error{d.Stop()}
	if out, err := exec.Command("ip", "link", "del", d.Bridge).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("removing bridge %s: %w: %s", d.Bridge, err, out))
	}
	errs = append(errs, os.RemoveAll(d.Root))
	return errors.Join(errs...)
}

// Running reports whether the daemon's dockerd was started and not stopped.
func (d *Daemon) Running() bool {
	return d.cmd != nil
}
