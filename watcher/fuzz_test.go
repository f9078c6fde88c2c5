package watcher

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// FuzzParsePortRange checks that any spec parses to a sane range that
// prints back to itself, or is refused.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"443/tcp", "80", "8000-8010/udp", "70000/tcp", "10-5", "-",
		"1-65535/sctp", "0", "80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := ParsePortRange(spec)
		if err != nil {
			return
		}
		if r.First < 1 || r.Last > 65535 || r.First > r.Last {
			t.Fatalf("ParsePortRange(%q) = %+v", spec, r)
		}
		again, err := ParsePortRange(r.String())
		if err != nil || again != r {
			t.Fatalf("ParsePortRange(%q).String() = %q, which parses to %+v, %v", spec, r,
				again, err)
		}
	})
}

// FuzzGlob checks that no pattern and name make matching panic, and that
// a pattern without wildcards matches only itself.
func FuzzGlob(f *testing.F) {
	f.Add("ucp-*", "ucp-controller")
	f.Add("web[", "web")
	f.Add("[a-", "a")
	f.Add("mirantis/*", "mirantis/ucp")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := ParseGlob(pattern)
		if err != nil {
			return
		}
		g.Match(name)
		if g.Match(pattern) != true && !containsMeta(pattern) {
			t.Fatalf("literal pattern %q does not match itself", pattern)
		}
	})
}

func containsMeta(s string) bool {
	for _, c := range s {
		switch c {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// FuzzDetect feeds inspect documents to detection: it must not panic, and
// every privileged-port finding it makes must be below the limit.
func FuzzDetect(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c container.InspectResponse
		if json.Unmarshal(data, &c) != nil {
			return
		}
		findings, err := Detect(c, defaultPolicy)
		if err != nil {
			return
		}
		for _, fd := range findings {
			if fd.Kind == KindPrivilegedPort &&
				(fd.Binding == nil || fd.Binding.HostPort >= DefaultPrivilegedBelow ||
					fd.Binding.HostPort < 1) {
				t.Fatalf("finding %+v is not of a privileged port", fd)
			}
		}
	})
}

// FuzzCompose feeds Compose files to the loader and detection.
func FuzzCompose(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "compose", "*.yml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "compose.yml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		project, err := LoadCompose(context.Background(), []string{path})
		if err != nil {
			return
		}
		findings, err := DetectCompose(project, []string{path}, defaultPolicy)
		if err != nil {
			return
		}
		for _, fd := range findings {
			if fd.Compose == nil || fd.Compose.Service == "" {
				t.Fatalf("finding %+v does not say where it is", fd)
			}
		}
	})
}
