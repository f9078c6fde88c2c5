package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portwarden/portwarden/cmd/portwarden/config"
	"github.com/portwarden/portwarden/watcher"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// runCLI runs the command line with a config file holding cfg, and returns
// the exit code, stdout and stderr.
func runCLI(t *testing.T, cfg string, args ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portwarden.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(append(args, "--config", path), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestExitCodes(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	missing := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")
	tests := []struct {
		name       string
		cfg        string
		args       []string
		wantCode   int
		wantStderr string // a line of stderr, whole
	}{
		{"invalid config refused by check", "policy: {privileged_below: 0}", []string{"check"},
			exitError, `portwarden: config file CONFIG: policy.privileged_below: 0: ` +
				`out of range 1-65535`},
		{"unreachable engine", "", []string{"check", "--docker-host", missing}, exitError,
			"portwarden: docker engine unreachable at " + missing + ": dial unix " +
				strings.TrimPrefix(missing, "unix://") + ": connect: no such file or directory"},
		{"bad format", "", []string{"check", "--format", "xml"}, exitError,
			`portwarden: --format: "xml": must be text or json`},
		{"unknown command", "", []string{"chek"}, exitError,
			`portwarden: unknown command "chek" for "portwarden"`},
		{"valid config", "mode: enforce", []string{"config", "validate"}, exitOK, ""},
		{"invalid config, each problem on a line", "mode: x\nlog: {format: xml}",
			[]string{"config", "validate"}, exitError,
			`log.format: "xml": must be one of text, json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.cfg, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if tt.wantStderr == "" {
				if stderr != "" {
					t.Errorf("stderr = %q, want nothing", stderr)
				}
				return
			}
			found := false
			for _, line := range strings.Split(stderr, "\n") {
				line = replaceConfigPath(line)
				found = found || line == tt.wantStderr
			}
			if !found {
				t.Errorf("stderr = %q, want the line %q", stderr, tt.wantStderr)
			}
		})
	}
}

// replaceConfigPath puts CONFIG for the temporary config file's path.
func replaceConfigPath(line string) string {
	if i := strings.Index(line, "config file /"); i >= 0 {
		if j := strings.Index(line[i+len("config file "):], ": "); j >= 0 {
			return line[:i] + "config file CONFIG" + line[i+len("config file ")+j:]
		}
	}
	return line
}

func TestConfigExample(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "config", "example")
	if code != exitOK || stdout != string(config.Example) {
		t.Errorf("config example = %d and %d bytes, want 0 and the example", code, len(stdout))
	}
}

func TestConfigShowRedacts(t *testing.T) {
	code, stdout, stderr := runCLI(t,
		"notify: {slack: {token: xoxb-very-secret, channel: C1}}", "config", "show")
	if code != exitOK {
		t.Fatalf("config show = %d, %s", code, stderr)
	}
	if strings.Contains(stdout, "xoxb-very-secret") ||
		!strings.Contains(stdout, "token: <redacted>") {
		t.Errorf("config show printed:\n%s\nwant the token redacted", stdout)
	}
	if !strings.Contains(stdout, "stop_timeout: 0s") || !strings.Contains(stdout, "channel: C1") {
		t.Errorf("config show printed:\n%s\nwant every key", stdout)
	}
}

// testReport is a report with one finding of each sort.
func testReport() report {
	c := watcher.Container{ID: "feafba9a6de6f00d", Name: "web", Image: "nginx:1.25",
		State: "running"}
	findings := []watcher.Finding{
		{Kind: watcher.KindHostNetwork, Container: watcher.Container{ID: "d6c184c5c03d",
			Name: "calico-node", Image: "calico/node", State: "running"},
			Source: watcher.SourceRuntime, Rules: []string{"V-260913"}},
		{Kind: watcher.KindPrivilegedPort, Container: watcher.Container{ID: "a5de3a25d8c1",
			Name: "ucp-controller", Image: "mirantis/ucp-controller:3.7.1", State: "running"},
			Binding: &watcher.Binding{HostIP: "0.0.0.0", HostPort: 443, ContainerPort: 443,
				Protocol: "tcp"},
			Source: watcher.SourceRuntime, Rules: []string{"V-260924", "V-260929"},
			Allowed: true, AllowedBy: "mke-ucp-controller"},
		{Kind: watcher.KindPrivilegedPort, Container: c,
			Binding: &watcher.Binding{HostIP: "::", HostPort: 80, ContainerPort: 8080,
				Protocol: "tcp"},
			Source: watcher.SourceRuntime, Rules: []string{"V-260924", "V-260929"}},
		{Kind: watcher.KindPrivilegedPort, Container: watcher.Container{ID: "6312857d952d",
			Name: "job\x1b[2J", Image: "batch", State: "created"},
			Binding: &watcher.Binding{HostPort: 990, HostPortEnd: 1000, ContainerPort: 9000,
				Protocol: "udp"},
			Source: watcher.SourceDeclared, Rules: []string{"V-260924", "V-260929"}},
	}
	return newReport("node-1", time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC),
		&watcher.EngineInfo{Host: "unix:///var/run/docker.sock", Version: "20.10.24",
			APIVersion: "1.41"},
		watcher.Policy{PrivilegedBelow: 1024, HostNetwork: "report", WildcardBind: "ignore",
			Allow: []watcher.AllowRule{{Name: "mke-ucp-controller"}}},
		true, watcher.ScanResult{Listed: 9, Inspected: 4, Findings: findings})
}

func TestReportSummary(t *testing.T) {
	s := testReport().Summary
	if s.Findings != 4 || s.Allowed != 1 || s.Violations != 3 || s.Compliant ||
		s.ByKind[watcher.KindPrivilegedPort] != 2 || s.ByKind[watcher.KindHostNetwork] != 1 {
		t.Errorf("summary = %+v, want 4 findings, 1 allowed, 3 violations by kind 2+1", s)
	}
	empty := newReport("n", time.Now(), &watcher.EngineInfo{}, watcher.Policy{}, false,
		watcher.ScanResult{})
	if !empty.Summary.Compliant || empty.Findings == nil || empty.Scope != "running" {
		t.Errorf("empty report = %+v, want compliant, findings [] not null, scope running", empty)
	}
}

func TestReportGolden(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := testReport().write(&buf, format); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "check."+format+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("%s report =\n%s\nwant (%s)\n%s", format, buf.String(), golden, want)
			}
		})
	}
}

func TestNotifyTest(t *testing.T) {
	var posts atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Write([]byte("ok"))
	}))
	defer ok.Close()
	revoked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no_service", http.StatusNotFound)
	}))
	defer revoked.Close()

	code, stdout, stderr := runCLI(t, "notify: {slack: {webhook_url: '"+ok.URL+"/hook'}}",
		"notify", "test")
	if code != exitOK || stdout != "log: ok\nslack: ok\n" || posts.Load() != 1 {
		t.Errorf("notify test = %d, %q (stderr %q), %d posts; want 0, both ok, 1 post", code,
			stdout, stderr, posts.Load())
	}
	code, stdout, _ = runCLI(t, "notify: {slack: {webhook_url: '"+revoked.URL+"/hook'}}",
		"notify", "test")
	if code != exitFindings ||
		!strings.Contains(stdout, "slack: failed: slack: slack server error: 404") {
		t.Errorf("notify test against a revoked webhook = %d, %q; want 1 and the reason", code,
			stdout)
	}
}

func TestSlackTokenFromFile(t *testing.T) {
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "token"), []byte("xoxb-from-file\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	got, err := secret("", "$CREDENTIALS_DIRECTORY/token", "notify.slack.token_file")
	if err != nil || got != "xoxb-from-file" {
		t.Errorf("secret(token file) = %q, %v; want xoxb-from-file", got, err)
	}
	_, err = secret("", filepath.Join(dir, "missing"), "notify.slack.token_file")
	if err == nil || !strings.Contains(err.Error(), "notify.slack.token_file: reading the secret") {
		t.Errorf("secret(missing file) = %v, want an error naming the key", err)
	}
}

func TestNotifyTestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, stdout, stderr := runCLI(t, "notify: {syslog: {enabled: true, network: unixgram, "+
		"address: '"+sock+"'}}", "notify", "test")
	if code != exitOK || stdout != "log: ok\nsyslog: ok\n" {
		t.Fatalf("notify test = %d, %q (stderr %q); want 0 and both ok", code, stdout, stderr)
	}
	buf := make([]byte, 4096)
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := l.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "test: container portwarden-notify-test") {
		t.Errorf("syslog received %q, %v; want the test alert", buf[:n], err)
	}

	code, stdout, _ = runCLI(t, "notify: {syslog: {enabled: true, network: unixgram, "+
		"address: '"+sock+".absent'}}", "notify", "test")
	if code != exitFindings || !strings.Contains(stdout, "syslog: failed: syslog: connecting") {
		t.Errorf("notify test to a missing socket = %d, %q; want 1 and the reason", code, stdout)
	}
}

func TestCheckFiles(t *testing.T) {
	compose := filepath.Join("..", "..", "watcher", "testdata", "compose")
	code, stdout, stderr := runCLI(t, "", "check", "--format", "json",
		"-f", filepath.Join(compose, "base.yml"), "-f", filepath.Join(compose, "override.yml"))
	if code != exitFindings {
		t.Fatalf("check -f base -f override = %d (stderr %q), want 1", code, stderr)
	}
	var r struct {
		Scope    string   `json:"scope"`
		Files    []string `json:"files"`
		Findings []struct {
			Compose struct {
				Service string `json:"service"`
				Entry   string `json:"entry"`
			} `json:"compose"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Scope != "files" || len(r.Files) != 2 || len(r.Findings) != 1 ||
		r.Findings[0].Compose.Service != "web" || r.Findings[0].Compose.Entry != "80:80/tcp" {
		t.Errorf("report = %+v", r)
	}

	code, _, stderr = runCLI(t, "", "check", "-f", filepath.Join(compose, "invalid.yml"))
	if code != exitError || !strings.Contains(stderr, "invalid.yml") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("check -f invalid.yml = %d, %q; want 2 and one line naming the file", code,
			stderr)
	}
}

func TestSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("xoxb-1"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o666)
	if _, err := secret("", path, "notify.slack.token_file"); err == nil ||
		!strings.Contains(err.Error(), "writable by anyone") {
		t.Errorf("secret(world-writable) = %v, want a refusal", err)
	}
	os.Chmod(path, 0o644)
	if got, err := secret("", path, "notify.slack.token_file"); err != nil || got != "xoxb-1" {
		t.Errorf("secret(world-readable) = %q, %v; want it read (with a warning)", got, err)
	}
	cfg := filepath.Join(dir, "portwarden.yaml")
	os.WriteFile(cfg, nil, 0o644)
	if w := config.PermissionWarning(cfg); !strings.Contains(w, "readable by anyone") {
		t.Errorf("PermissionWarning(0644) = %q", w)
	}
	os.Chmod(cfg, 0o640)
	if w := config.PermissionWarning(cfg); w != "" {
		t.Errorf("PermissionWarning(0640) = %q, want none", w)
	}
}
