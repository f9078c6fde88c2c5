package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest systemd-analyze security score the unit may
// have.
const maxExposure = 2.0

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed; scripts/ensure-test-deps.sh installs systemd")
	}
	return bin
}

func TestUnitSecurityScore(t *testing.T) {
	out, err := exec.Command(systemdAnalyze(t), "security", "--offline=true",
		"portwarden.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for portwarden\.service: ([0-9.]+)`).
		FindSubmatch(out)
	if m == nil {
		t.Fatalf("no score in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure %.1f, want %.1f or less:\n%s", score, maxExposure, out)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with ExecStart
// pointed at a binary that exists here.
func TestUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile("portwarden.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copied := strings.ReplaceAll(string(unit), "/usr/bin/portwarden", self)
	path := filepath.Join(dir, "portwarden.service")
	if err := os.WriteFile(path, []byte(copied), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(systemdAnalyze(t), "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestUnitDirectives(t *testing.T) {
	unit, err := os.ReadFile("portwarden.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "After=docker.service", "Wants=docker.service",
		"ExecReload=/bin/sh -c 'kill -HUP $MAINPID'", "Restart=on-failure", "WatchdogSec=",
		"RestartPreventExitStatus=78", "StateDirectory=portwarden",
		"ConfigurationDirectory=portwarden", "EnvironmentFile=-/etc/default/portwarden",
		"LoadCredential=slack-token:",
	} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}
