package watcher

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func composeBrief(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		s := string(f.Kind) + " " + f.Compose.Service + " " + f.Compose.Entry
		if f.Binding != nil {
			s += " => " + f.Binding.String()
		}
		if f.Allowed {
			s += " allowed-by=" + f.AllowedBy
		}
		out = append(out, s)
	}
	return out
}

func TestDetectCompose(t *testing.T) {
	t.Setenv("HTTP_PORT", "")
	allowWeb := defaultPolicy
	allowWeb.Allow = []AllowRule{{Name: "web", Containers: []Glob{"web"},
		Images: []ImageSelector{{Repository: "nginx"}}, Ports: []PortRange{{80, 80, "tcp"}}}}
	tests := []struct {
		name   string
		files  []string
		env    map[string]string
		policy Policy
		want   []string
	}{
		{"short syntax", []string{"short.yml"}, nil, defaultPolicy, []string{
			"privileged-port web 80:8080/tcp => *:80->8080/tcp",
			"privileged-port web 127.0.0.1:53:53/udp => 127.0.0.1:53->53/udp",
		}},
		{"long syntax", []string{"long.yml"}, nil, defaultPolicy, []string{
			"privileged-port api 443:8080/tcp => *:443->8080/tcp (host)",
		}},
		{"ranges: pairs, and a host range by its first port", []string{"ranges.yml"}, nil,
			defaultPolicy, []string{
				"privileged-port ftp 990:990/tcp => *:990->990/tcp",
				"privileged-port ftp 991:991/tcp => *:991->991/tcp",
				"privileged-port ftp 992:992/tcp => *:992->992/tcp",
				"privileged-port ftp 995-999:80/tcp => *:995-999->80/tcp",
			}},
		{"interpolation: a default, and the environment", []string{"interpolated.yml"},
			map[string]string{"ADMIN_PORT": "700"}, defaultPolicy, []string{
				"privileged-port web 80:8080/tcp => *:80->8080/tcp",
				"privileged-port web 700:9000/tcp => *:700->9000/tcp",
			}},
		{"interpolation from the environment overrides the default", []string{"interpolated.yml"},
			map[string]string{"HTTP_PORT": "8088", "ADMIN_PORT": "7000"}, defaultPolicy,
			[]string{}},
		{"IPv6 host IPs", []string{"ipv6.yml"}, nil, defaultPolicy, []string{
			"privileged-port dns [::1]:53:53/udp => [::1]:53->53/udp",
		}},
		{"every profile, and the host network", []string{"profiles.yml"}, nil, defaultPolicy,
			[]string{
				"privileged-port debug 22:22/tcp => *:22->22/tcp",
				"host-network hostnet network_mode: host",
			}},
		{"overrides merged in order", []string{"base.yml", "override.yml"}, nil, defaultPolicy,
			[]string{"privileged-port web 80:80/tcp => *:80->80/tcp"}},
		{"allowed by service name, image and port", []string{"short.yml"}, nil, allowWeb,
			[]string{
				"privileged-port web 80:8080/tcp => *:80->8080/tcp allowed-by=web",
				"privileged-port web 127.0.0.1:53:53/udp => 127.0.0.1:53->53/udp",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var files []string
			for _, f := range tt.files {
				files = append(files, filepath.Join("testdata", "compose", f))
			}
			project, err := LoadCompose(context.Background(), files)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := DetectCompose(project, files, tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if got := composeBrief(fs); !slices.Equal(got, tt.want) {
				t.Errorf("findings =\n  %s\nwant\n  %s", strings.Join(got, "\n  "),
					strings.Join(tt.want, "\n  "))
			}
			for _, f := range fs {
				if !slices.Equal(f.Compose.Files, files) {
					t.Errorf("finding points at %q, want %q", f.Compose.Files, files)
				}
			}
		})
	}
}

func TestLoadComposeErrors(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"invalid.yml", "invalid.yml"},
		{"missing.yml", "missing.yml"},
	} {
		path := filepath.Join("testdata", "compose", tt.file)
		_, err := LoadCompose(context.Background(), []string{path})
		if err == nil || !strings.Contains(err.Error(), tt.want) ||
			strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("LoadCompose(%s) = %v, want one line naming the file", tt.file, err)
		}
	}
}

// The .env file beside the first file is read, as docker compose does.
func TestLoadComposeDotEnv(t *testing.T) {
	dir := t.TempDir()
	yml, _ := os.ReadFile(filepath.Join("testdata", "compose", "interpolated.yml"))
	env, _ := os.ReadFile(filepath.Join("testdata", "compose", "interpolated.env"))
	os.WriteFile(filepath.Join(dir, "compose.yml"), yml, 0o644)
	os.WriteFile(filepath.Join(dir, ".env"), env, 0o644)
	t.Setenv("HTTP_PORT", "8080")
	files := []string{filepath.Join(dir, "compose.yml")}
	project, err := LoadCompose(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := DetectCompose(project, files, defaultPolicy)
	if len(fs) != 0 {
		t.Errorf("with ADMIN_PORT=7000 from .env: findings %q, want none", composeBrief(fs))
	}
}
