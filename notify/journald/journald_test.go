package journald

import (
	"bytes"

	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

type sent struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func recordingHandler(fail error) (*Handler, *[]sent, *bytes.Buffer) {
	var got []sent
	var fallback bytes.Buffer
	h := NewHandler(slog.LevelDebug, slog.NewTextHandler(&fallback, nil))
	h.send = func(msg string, p journal.Priority, vars map[string]string) error {
		if fail != nil {
			return fail
		}
		got = append(got, sent{msg, p, vars})
		return nil
	}
	return h, &got, &fallback
}

func TestHandlerFields(t *testing.T) {
	h, got, _ := recordingHandler(nil)
	log := slog.New(h).With("container_id", "c1")
	log.Warn("finding", "host_port", "80", "protocol", "tcp")
	log.Error("alert", "verdict", "stop-failed", slog.Group("engine", "api-version", "1.41"))
	log.Info("stream back", "outage_ms", 764)
	log.Warn("stream lost", "err", "unexpected EOF")

	want := []sent{
		{"finding", journal.PriWarning, map[string]string{"MESSAGE_ID": IDFinding,
			"PORTWARDEN_CONTAINER_ID": "c1", "PORTWARDEN_HOST_PORT": "80",
			"PORTWARDEN_PROTOCOL": "tcp"}},
		{"alert", journal.PriErr, map[string]string{"MESSAGE_ID": IDStopFailed,
			"PORTWARDEN_VERDICT": "stop-failed", "PORTWARDEN_ENGINE_API_VERSION": "1.41"}},
		{"stream back", journal.PriInfo, map[string]string{"PORTWARDEN_OUTAGE_MS": "764"}},
		{"stream lost", journal.PriWarning, map[string]string{"MESSAGE_ID": IDStreamLost}},
	}
	if len(*got) != len(want) {
		t.Fatalf("sent %d records, want %d", len(*got), len(want))
	}
	for i, w := range want {
		g := (*got)[i]
		if g.msg != w.msg || g.pri != w.pri || g.vars["SYSLOG_IDENTIFIER"] != "portwarden" {
			t.Errorf("record %d = %q priority %d, want %q priority %d", i, g.msg, g.pri, w.msg,
				w.pri)
		}
		for k, v := range w.vars {
			if g.vars[k] != v {
				t.Errorf("record %d (%s): %s = %q, want %q", i, w.msg, k, g.vars[k], v)
			}
		}
		if _, ok := g.vars["MESSAGE_ID"]; ok && w.vars["MESSAGE_ID"] == "" {
			t.Errorf("record %d (%s) has a MESSAGE_ID, want none", i, w.msg)
		}
	}
}

func TestHandlerFallsBackLoudly(t *testing.T) {
	h, _, fallback := recordingHandler(errors.New("connect: no such file or directory"))
	log := slog.New(h)
	log.Warn("finding", "container_id", "c1")
	log.Warn("finding", "container_id", "c2")
	out := fallback.String()
	if strings.Count(out, "journal write failed") != 1 ||
		!strings.Contains(out, "container_id=c1") || !strings.Contains(out, "container_id=c2") {
		t.Errorf("fallback got:\n%s\nwant one warning and both records", out)
	}
}

func TestCatalogExplainsEveryMessageID(t *testing.T) {
	data, err := os.ReadFile("portwarden.catalog")
	if err != nil {
		t.Fatal(err)
	}
	entries := regexp.MustCompile(`(?m)^-- ([0-9a-f]{32})\nSubject: (.+)\n`).
		FindAllStringSubmatch(string(data), -1)
	seen := map[string]int{}
	for _, e := range entries {
		seen[e[1]]++
	}
	for _, id := range []string{IDFinding, IDStop, IDStopFailed, IDLoop, IDStreamLost} {
		if seen[id] != 1 {
			t.Errorf("catalog has %d entries with a Subject for %s, want 1", seen[id], id)
		}
	}
	if len(entries) != 5 {
		t.Errorf("catalog has %d entries, want 5", len(entries))
	}
}

// TestJournalSocket sends through go-systemd's real journal client to a
// socket of the test's own. The client's socket path is fixed, so the
// test runs again in a private mount namespace with a tmpfs on /run,
// which leaves the machine's /run alone.
func TestJournalSocket(t *testing.T) {
	if os.Getenv("PORTWARDEN_JOURNAL_CHILD") == "" {
		cmd := exec.Command("unshare", "--mount", "--propagation", "private",
			os.Args[0], "-test.run", "^TestJournalSocket$", "-test.v")
		cmd.Env = append(os.Environ(), "PORTWARDEN_JOURNAL_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("journal socket test in a private mount namespace: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestJournalSocket") {
			t.Fatalf("child ran no test:\n%s", out)
		}
		return
	}

	if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting a tmpfs on /run: %v", err)
	}
	dir := "/run/systemd/journal"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock, err := net.ListenUnixgram("unixgram",
		&net.UnixAddr{Name: filepath.Join(dir, "socket"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	var fallback bytes.Buffer
	log := slog.New(NewHandler(slog.LevelInfo, slog.NewTextHandler(&fallback, nil)))
	log.Warn("alert", "verdict", "stopped", "container_id", "c1", "host_port", "80",
		"container_name", "two\nlines")

	buf := make([]byte, 65536)
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("nothing reached the journal socket: %v (fallback: %s)", err, fallback.String())
	}
	fields := parseNative(t, buf[:n])
	for k, v := range map[string]string{
		"MESSAGE": "alert", "PRIORITY": "4", "MESSAGE_ID": IDStop,
		"SYSLOG_IDENTIFIER": "portwarden", "PORTWARDEN_CONTAINER_ID": "c1",
		"PORTWARDEN_HOST_PORT": "80", "PORTWARDEN_CONTAINER_NAME": "two\nlines",
	} {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q", k, fields[k], v)
		}
	}
}

// parseNative decodes the journal's native protocol: KEY=value lines, or
// KEY, a newline, a little-endian 64-bit length and the value for values
// that hold a newline.
func parseNative(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			t.Fatalf("unterminated field: %q", b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			out[string(k)] = string(v)
			b = b[nl+1:]
			continue
		}
		size := binary.LittleEndian.Uint64(b[nl+1 : nl+9])
		out[string(line)] = string(b[nl+9 : nl+9+int(size)])
		b = b[nl+9+int(size)+1:]
	}
	return out
}
