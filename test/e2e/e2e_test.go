//go:build e2e

// Package e2e installs the .deb in a Debian container that runs systemd as
// PID 1, the way an operator meets portwarden, and drives it there: start,
// enforce, reload, watchdog, stop and purge. The engine portwarden watches
// is a dockerd of the test's own, reached through a proxy that can stall.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/portwarden/portwarden/test/enginetest"
)

// rootfsRecipe is what the systemd image is made from; its hash keys the
// cache, so a change of recipe makes a new image.
var rootfsRecipe = []string{"mmdebstrap", "--variant=apt",
	"--include=systemd,systemd-sysv,dbus,ca-certificates", "bookworm"}

const cacheDir = "/var/cache/portwarden-e2e"

// proxyGID owns the engine proxy's socket; the node gets a docker group
// with it.
const proxyGID = 4242

func dist(t *testing.T, pattern string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(enginetest.ModuleRoot(), "dist", pattern))
	if len(matches) != 1 {
		t.Fatalf("want one dist/%s (run make package), have %q", pattern, matches)
	}
	return matches[0]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// systemdImage returns the tag of the systemd image, building it and its
// root file system only when the cache has neither.
func systemdImage(t *testing.T) string {
	t.Helper()
	sum := sha256.Sum256([]byte(strings.Join(rootfsRecipe, " ")))
	key := hex.EncodeToString(sum[:])[:16]
	tag := "portwarden-e2e-systemd:" + key
	if exec.Command("docker", "image", "inspect", tag).Run() == nil {
		return tag
	}
	tar := filepath.Join(cacheDir, "rootfs-"+key+".tar")
	if _, err := os.Stat(tar); err != nil {
		if _, err := exec.LookPath("mmdebstrap"); err != nil {
			t.Fatal("mmdebstrap is not installed; scripts/ensure-test-deps.sh e2e installs it")
		}
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			t.Fatal(err)
		}
		partial := strings.TrimSuffix(tar, ".tar") + ".partial.tar" // mmdebstrap goes by the ending
		run(t, rootfsRecipe[0], append(rootfsRecipe[1:], partial)...)
		if err := os.Rename(partial, tar); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "docker", "import", "-c", `CMD ["/lib/systemd/systemd"]`, tar, tag)
	return tag
}

// node is the systemd container: one Debian node with portwarden on it.
type node struct {
	t    *testing.T
	name string
}

func startNode(t *testing.T, image, engineDir string) *node {
	t.Helper()
	n := &node{t: t, name: "portwarden-e2e-" + fmt.Sprint(time.Now().UnixNano())}
	run(t, "docker", "run", "-d", "--name", n.name,
		"--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "--cgroupns=host",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
		"-v", engineDir+":/run/pw-engine", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "exec", n.name, "journalctl", "-u", "portwarden",
				"--no-pager", "-n", "80").CombinedOutput()
			t.Logf("journal of portwarden:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", n.name).Run()
	})
	n.waitFor(60*time.Second, func() bool {
		state, _ := n.try("systemctl", "is-system-running")
		return state == "running" || state == "degraded"
	}, "systemd to boot")
	return n
}

// try runs a command in the node and returns its trimmed output.
func (n *node) try(args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"exec", n.name}, args...)...).
		CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (n *node) exec(args ...string) string {
	n.t.Helper()
	out, err := n.try(args...)
	if err != nil {
		n.t.Fatalf("in the node, %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (n *node) write(path, content string) {
	n.t.Helper()
	cmd := exec.Command("docker", "exec", "-i", n.name, "sh", "-c", "cat > "+path)
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("writing %s in the node: %v\n%s", path, err, out)
	}
}

func (n *node) waitFor(timeout time.Duration, cond func() bool, what string) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			n.t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *node) property(name string) string {
	n.t.Helper()
	return n.exec("systemctl", "show", "-p", name, "--value", "portwarden")
}

// journalHas reports whether the unit's journal has an entry with all of
// fields.
func (n *node) journalHas(fields ...string) bool {
	out, err := n.try(append([]string{"journalctl", "-u", "portwarden", "--no-pager",
		"-o", "cat"}, fields...)...)
	return err == nil && out != "" && !strings.Contains(out, "-- No entries --")
}

func TestNode(t *testing.T) {
	ctx := context.Background()
	deb, rpm := dist(t, "portwarden_*_amd64.deb"), dist(t, "portwarden-*.x86_64.rpm")
	image := systemdImage(t)

	own, err := enginetest.StartDaemon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	engine, err := enginetest.Connect(ctx, own.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Cleanup(ctx, t.Logf)
	if err := engine.BuildImage(ctx); err != nil {
		t.Fatal(err)
	}
	proxyDir := t.TempDir()
	if err := os.Chmod(proxyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	proxy, err := enginetest.NewProxy(strings.TrimPrefix(own.Host, "unix://"), proxyDir,
		proxyGID)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	n := startNode(t, image, proxyDir)
	n.exec("groupadd", "-g", fmt.Sprint(proxyGID), "docker")
	run(t, "docker", "cp", deb, n.name+":/root/portwarden.deb")

	t.Run("install: active without an engine, waiting for it", func(t *testing.T) {
		n.t = t
		n.exec("dpkg", "-i", "/root/portwarden.deb")
		if got := n.exec("systemctl", "is-active", "portwarden"); got != "active" {
			t.Fatalf("is-active = %q", got)
		}
		if status := n.property("StatusText"); !strings.Contains(status,
			"waiting for Docker Engine at unix:///var/run/docker.sock") {
			t.Errorf("status = %q, want it to wait for the engine", status)
		}
		for _, want := range []string{"/usr/bin/portwarden", "/etc/portwarden/portwarden.yaml",
			"/usr/lib/systemd/catalog/portwarden.catalog", "/usr/share/man/man1/portwarden.1"} {
			if _, err := n.try("test", "-e", want); err != nil {
				t.Errorf("%s not installed", want)
			}
		}
		mode := n.exec("stat", "-c", "%a %G", "/etc/portwarden/portwarden.yaml")
		if mode != "640 docker" {
			t.Errorf("config mode and group = %q, want 640 docker", mode)
		}
	})

	t.Run("enforce: a violator on the engine is stopped and journaled", func(t *testing.T) {
		n.t = t
		n.write("/etc/default/portwarden", "PORTWARDEN_MODE=enforce\n"+
			"PORTWARDEN_DOCKER_HOST=unix:///run/pw-engine/docker.sock\n")
		n.exec("systemctl", "restart", "portwarden")
		n.waitFor(30*time.Second, func() bool {
			return strings.HasPrefix(n.property("StatusText"), "enforce mode, watching")
		}, "portwarden to watch the engine")

		id := violator(t, engine, "e2e-violator", "194")
		waitStopped(t, engine, id)
		n.waitFor(10*time.Second, func() bool {
			return n.journalHas("MESSAGE_ID=553b513d904a457e86019a3fc7a6d20f",
				"PORTWARDEN_CONTAINER_ID="+id)
		}, "the stop in the journal with its MESSAGE_ID")
	})

	t.Run("reload with a broken config keeps the service", func(t *testing.T) {
		n.t = t
		good := n.exec("cat", "/etc/portwarden/portwarden.yaml")
		defer n.write("/etc/portwarden/portwarden.yaml", good)
		n.write("/etc/portwarden/portwarden.yaml", good+"\nbogus_key: 1\n")
		n.exec("systemctl", "reload", "portwarden")
		n.waitFor(10*time.Second, func() bool {
			return n.journalHas("MESSAGE=config reload refused; the running config stays")
		}, "the refusal in the journal")
		if got := n.exec("systemctl", "is-active", "portwarden"); got != "active" {
			t.Errorf("after a broken reload is-active = %q", got)
		}
	})

	t.Run("watchdog restarts a daemon whose pipeline is stuck", func(t *testing.T) {
		n.t = t
		n.exec("mkdir", "-p", "/etc/systemd/system/portwarden.service.d")
		n.write("/etc/systemd/system/portwarden.service.d/watchdog.conf",
			"[Service]\nWatchdogSec=4s\nRestartSec=1s\n")
		n.exec("systemctl", "daemon-reload")
		n.exec("systemctl", "restart", "portwarden")
		before := n.property("NRestarts")

		proxy.Stall(`^(/v[0-9.]+)?/containers/[^/]+/json$`) // inspects hang
		id := violator(t, engine, "e2e-stalled", "195")     // its worker hangs in the inspect
		n.waitFor(60*time.Second, func() bool {
			return n.property("NRestarts") != before
		}, "systemd to restart the stuck daemon")
		if !n.journalHas("MESSAGE=pipeline check failed; not feeding the watchdog") {
			t.Error("the journal does not say why the watchdog went hungry")
		}
		proxy.Release()
		waitStopped(t, engine, id) // the restarted daemon catches it
		n.exec("rm", "/etc/systemd/system/portwarden.service.d/watchdog.conf")
		n.exec("systemctl", "daemon-reload")
	})

	t.Run("stop is clean", func(t *testing.T) {
		n.t = t
		start := time.Now()
		n.exec("systemctl", "stop", "portwarden")
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("stop took %s, more than TimeoutStopSec", took)
		}
		if r, s := n.property("Result"), n.property("ExecMainStatus"); r != "success" || s != "0" {
			t.Errorf("after stop Result=%s ExecMainStatus=%s, want success and 0", r, s)
		}
	})

	t.Run("purge leaves nothing behind", func(t *testing.T) {
		n.t = t
		files := strings.Fields(n.exec("dpkg", "-L", "portwarden"))
		n.exec("dpkg", "--purge", "portwarden")
		var left []string
		for _, f := range append(files, "/var/lib/portwarden", "/var/lib/private/portwarden",
			"/etc/portwarden") {
			if !slices.Contains([]string{"/.", "/etc", "/etc/default", "/usr", "/usr/bin",
				"/usr/lib", "/usr/lib/systemd", "/usr/lib/systemd/system", "/usr/share",
				"/usr/share/man", "/usr/share/man/man1", "/usr/lib/systemd/catalog",
				"/usr/share/bash-completion", "/usr/share/bash-completion/completions",
				"/usr/share/zsh", "/usr/share/zsh/vendor-completions", "/usr/share/fish",
				"/usr/share/fish/vendor_completions.d"}, f) {
				if _, err := n.try("test", "-e", f); err == nil {
					left = append(left, f)
				}
			}
		}
		if len(left) > 0 {
			t.Errorf("purge left %q", left)
		}
	})

	t.Run("rpm holds the same files and scripts", func(t *testing.T) {
		if _, err := exec.LookPath("rpm"); err != nil {
			t.Fatal("rpm is not installed; scripts/ensure-test-deps.sh e2e installs it")
		}
		info := run(t, "rpm", "-qip", rpm)
		for _, want := range []string{"Name        : portwarden", "Architecture: x86_64"} {
			if !strings.Contains(info, want) {
				t.Errorf("rpm -qip lacks %q:\n%s", want, info)
			}
		}
		rpmFiles := strings.Fields(run(t, "rpm", "-qlp", rpm))
		var debFiles []string
		for _, line := range strings.Split(run(t, "dpkg-deb", "-c", deb), "\n") {
			f := strings.Fields(line)
			if len(f) == 6 && !strings.HasPrefix(f[0], "d") {
				debFiles = append(debFiles, strings.TrimPrefix(f[5], "."))
			}
		}
		slices.Sort(rpmFiles)
		slices.Sort(debFiles)
		var rpmOnlyFiles []string
		for _, f := range rpmFiles {
			if f != "/etc/portwarden" {
				rpmOnlyFiles = append(rpmOnlyFiles, f)
			}
		}
		if !slices.Equal(rpmOnlyFiles, debFiles) {
			t.Errorf("rpm files %q\ndeb files %q", rpmOnlyFiles, debFiles)
		}
		scripts := run(t, "rpm", "-qp", "--scripts", rpm)
		for _, want := range []string{"systemctl enable --now portwarden.service",
			"systemctl disable --now portwarden.service", "systemctl try-restart"} {
			if !strings.Contains(scripts, want) {
				t.Errorf("rpm scripts lack %q", want)
			}
		}
	})
}

func violator(t *testing.T, e *enginetest.Engine, name, port string) string {
	t.Helper()
	spec := enginetest.Spec{Name: name, Start: true}
	p := network.MustParsePort("8080/tcp")
	spec.Config.ExposedPorts = network.PortSet{p: {}}
	spec.Config.Cmd = []string{"tcp:8080"}
	spec.HostConfig.PortBindings = network.PortMap{p: {{HostPort: port}}}
	id, _, err := e.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitStopped(t *testing.T, e *enginetest.Engine, id string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := e.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Container.State.Running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %.12s still running", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
