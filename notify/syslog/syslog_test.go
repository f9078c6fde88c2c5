package syslog

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/watcher"
)

func testAlert() notify.Alert {
	return notify.Alert{
		Host: "node-1", Time: time.Date(2026, 12, 3, 3, 4, 5, 678000000, time.UTC),
		Mode: "enforce", Verdict: notify.VerdictStopped, Action: "stop",
		Duration:  63 * time.Millisecond,
		Workload:  watcher.Workload{Kind: "container", Name: "web"},
		Container: watcher.Container{ID: "3f2a1b2c3d4e5f60", Name: "web", Image: "nginx:1.25"},
		Findings: []watcher.Finding{{Kind: watcher.KindPrivilegedPort,
			Rules: []string{"V-260924", "V-260929"},
			Binding: &watcher.Binding{HostIP: "0.0.0.0", HostPort: 80, ContainerPort: 8080,
				Protocol: "tcp"}}},
	}
}

func TestRFC5424(t *testing.T) {
	got := rfc5424(testAlert(), facilities["daemon"], "node-1", "portwarden", 42)
	want := `<28>1 2026-12-03T03:04:05.678000Z node-1 portwarden 42 stopped ` +
		`[portwarden@32473 verdict="stopped" mode="enforce" container_id="3f2a1b2c3d4e5f60" ` +
		`container_name="web" image="nginx:1.25" workload="container web" ` +
		`kind="privileged-port" host_ip="0.0.0.0" host_port="80" protocol="tcp" ` +
		`rules="V-260924,V-260929" action="stop" duration_ms="63"] ` +
		`stopped: container web (3f2a1b2c3d4e) image nginx:1.25 on 0.0.0.0:80->8080/tcp, ` +
		`breaking V-260924, V-260929; stop took 63 ms`
	if got != want {
		t.Errorf("rfc5424 =\n%s\nwant\n%s", got, want)
	}
}

func TestRFC3164(t *testing.T) {
	a := testAlert()
	a.Verdict = notify.VerdictStopFailed
	local := rfc3164(a, facilities["local0"], "", "portwarden", 42)
	stamp := a.Time.Local().Format(time.Stamp)
	want := "<131>" + stamp + " portwarden[42]: stop-failed: container web"
	if !strings.HasPrefix(local, want) {
		t.Errorf("local rfc3164 = %q, want it to start %q", local, want)
	}
	remote := rfc3164(a, facilities["local0"], "node-1", "portwarden", 42)
	if want := "<131>" + stamp + " node-1 portwarden[42]: "; !strings.HasPrefix(remote, want) {
		t.Errorf("remote rfc3164 = %q, want it to start %q", remote, want)
	}
}

// What a container's creator chose can neither end the structured data,
// nor start a new line, nor forge a field.
func TestEscaping(t *testing.T) {
	a := testAlert()
	a.Container.Name = "evil\"] [forged@1 x=\"y\nnext line\\"
	a.Container.Image = "img\r\n<13>1 forged"
	msg := rfc5424(a, 3, "node-1", "portwarden", 1)
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("message holds a line break: %q", msg)
	}
	if !strings.Contains(msg, `container_name="evil\"\] [forged@1 x=\"y\x0anext line\\"`) {
		t.Errorf("container_name not escaped: %s", msg)
	}
	sd := msg[strings.Index(msg, "[") : strings.Index(msg, "] stopped:")+1]
	if strings.Count(sd, "[") != strings.Count(sd, `\]`)+1 {
		// every ] inside the element is escaped; only the last one ends it
		t.Errorf("structured data can be split: %s", sd)
	}
	if strings.Contains(msg, "\n<13>") || !strings.Contains(msg, `img\x0d\x0a<13>1 forged`) {
		t.Errorf("image not escaped in text: %s", msg)
	}
}

func TestUnixgram(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, tt := range []struct {
		name, network, format, wantPrefix string
	}{
		{"local socket, as /dev/log", "", "rfc5424", "<28>"},
		{"unixgram rfc5424", "unixgram", "rfc5424", "<28>1 2026-12-03T03:04:05.678000Z"},
	} {
		n, err := New(Options{Network: tt.network, Address: sock, Format: tt.format,
			Facility: "daemon", Tag: "portwarden", Hostname: "node-1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(context.Background(), testAlert()); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		buf := make([]byte, 4096)
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:k])
		if !strings.HasPrefix(got, tt.wantPrefix) || !strings.Contains(got, "container web") {
			t.Errorf("%s: received %q, want %s...", tt.name, got, tt.wantPrefix)
		}
		if tt.network == "" && strings.Contains(got, "node-1") {
			t.Errorf("%s: local message carries a host name: %q", tt.name, got)
		}
		n.Close()
	}
}

func TestUnknownFacility(t *testing.T) {
	if _, err := New(Options{Facility: "local9"}); err == nil {
		t.Error("New(facility local9) = nil error")
	}
}
