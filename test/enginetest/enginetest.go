// Package enginetest gives tests a real Docker Engine to work against: a
// client, a tiny image built on the spot (no registry is reachable), and
// containers that are removed when the test ends, even when it fails.
package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// RunLabel marks every container a test run creates, for cleanup.
const RunLabel = "io.portwarden.test.run"

// Engine is a connection to the engine with what one test run made.
type Engine struct {
	*client.Client
	Run   string // this run's ID, in names, labels and the image tag
	Image string // the sleeper image, built by BuildImage
}

// Connect reaches the engine at host, or with host "" at DOCKER_HOST or the
// default socket. It returns an error that says how to start one; tests
// fail on it, they do not skip.
func Connect(ctx context.Context, host string) (*Engine, error) {
	opt := client.FromEnv
	if host != "" {
		opt = client.WithHost(host)
	}
	cli, err := client.New(opt)
	if err != nil {
		return nil, err
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker Engine answers at %s (run scripts/ensure-docker.sh): %w",
			cli.DaemonHost(), err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	return &Engine{Client: cli, Run: hex.EncodeToString(b)}, nil
}

// ModuleRoot returns the folder that holds go.mod.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// GoBuild builds the package at pkg (relative to the module root) as a
// static binary at out.
func GoBuild(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
	cmd.Dir = ModuleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return nil
}

// BuildImage builds the sleeper image, FROM scratch, and sets e.Image.
func (e *Engine) BuildImage(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "portwarden-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "sleeper")
	if err := GoBuild("test/enginetest/testdata/sleeper", bin); err != nil {
		return err
	}
	buildContext, err := imageContext(bin)
	if err != nil {
		return err
	}

	tag := "portwarden-test-sleeper:" + e.Run
	res, err := e.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true,
		Labels: map[string]string{RunLabel: e.Run},
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := buildErrors(res.Body); err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	e.Image = tag
	return nil
}

// imageContext makes the build context: a Dockerfile and the binary.
func imageContext(bin string) (io.Reader, error) {
	program, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	dockerfile := []byte("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"sleeper", 0o755, program}} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

// buildErrors reads the build's progress stream and returns the error it
// ends with, if any.
func buildErrors(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return fmt.Errorf("%s", msg.Error)
		}
	}
}

// Spec describes a container to create.
type Spec struct {
	Name       string // suffix of the name; the run ID is put before it
	Config     container.Config
	HostConfig container.HostConfig
	Start      bool // start it after creating it
	Stop       bool // and stop it again, leaving it exited
}

// Name returns the name Create gives the container of s.
func (e *Engine) Name(s Spec) string {
	return "pwtest-" + e.Run + "-" + s.Name
}

// Create makes the container of s from e.Image, labelled for cleanup, and
// returns its ID and full name.
func (e *Engine) Create(ctx context.Context, s Spec) (id, name string, err error) {
	name = e.Name(s)
	cfg := s.Config
	cfg.Image = e.Image
	cfg.Labels = map[string]string{RunLabel: e.Run}
	for k, v := range s.Config.Labels {
		cfg.Labels[k] = v
	}
	hc := s.HostConfig
	created, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name, Config: &cfg, HostConfig: &hc,
	})
	if err != nil {
		return "", name, fmt.Errorf("creating %s: %w", name, err)
	}
	id = created.ID
	if s.Start {
		if _, err := e.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return id, name, fmt.Errorf("starting %s: %w", name, err)
		}
	}
	if s.Stop {
		timeout := 0
		_, err := e.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout})
		if err != nil {
			return id, name, fmt.Errorf("stopping %s: %w", name, err)
		}
	}
	return id, name, nil
}

// Cleanup removes every container of this run and its image. It reports
// what it could not remove, and goes on.
func (e *Engine) Cleanup(ctx context.Context, logf func(string, ...any)) {
	list, err := e.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", RunLabel+"="+e.Run),
	})
	if err != nil {
		logf("cleanup: listing containers of run %s: %v", e.Run, err)
	}
	for _, c := range list.Items {
		_, err := e.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		if err != nil {
			logf("cleanup: removing container %s: %v", c.ID, err)
		}
	}
	if e.Image != "" {
		_, err := e.ImageRemove(ctx, e.Image,
			client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil {
			logf("cleanup: removing image %s: %v", e.Image, err)
		}
	}
	e.Close()
}
