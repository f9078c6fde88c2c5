package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writeConfig writes a config file for one test and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portwarden.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// isolate keeps the machine's engine variables and config file out of a
// test.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv("PWD_REL", "relative")
	for _, v := range []string{"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"} {
		t.Setenv(v, "")
	}
	old := defaultPath
	defaultPath = filepath.Join(t.TempDir(), "absent.yaml")
	t.Cleanup(func() { defaultPath = old })
}

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	cfg.Docker.Host = "unix:///var/run/docker.sock"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestNoFileMeansDefaults(t *testing.T) {
	isolate(t)
	cfg, path, err := Load(Source{})
	if err != nil || path != "" {
		t.Fatalf("Load(no file) = %q, %v; want defaults", path, err)
	}
	want := Default()
	want.Docker.Host = "unix:///var/run/docker.sock"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(no file) = %+v\nwant %+v", cfg, want)
	}
}

// The shipped example must load, and say every default truthfully.
func TestExampleStatesTheDefaults(t *testing.T) {
	isolate(t)
	cfg, _, err := Load(Source{Path: writeConfig(t, string(Example))})
	if err != nil {
		t.Fatalf("Load(example) = %v", err)
	}
	if len(cfg.Policy.Allow) != 2 || cfg.Policy.Allow[0].Name != "mke-ucp-controller" ||
		cfg.Policy.Allow[1].Name != "mke-interlock-proxy" {
		t.Errorf("example allow list = %+v, want the MKE entries", cfg.Policy.Allow)
	}
	want := Default()
	want.Docker.Host = "unix:///var/run/docker.sock"
	cfg.Policy.Allow = nil
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example = %+v\nwant the defaults %+v", cfg, want)
	}
}

func TestLoadReportsEachProblem(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level key", "mdoe: enforce", "mdoe: unknown key"},
		{"unknown nested key", "policy: {host_netwrk: report}", "policy.host_netwrk: unknown key"},
		{"unknown key in an allow entry",
			"policy: {allow: [{name: a, reason: r, ports: ['80'], nmae: x}]}",
			"policy.allow[0].nmae: unknown key"},
		{"mode", "mode: block", `mode: "block": must be one of alert, enforce`},
		{"reconcile interval too short", "reconcile_interval: 5s",
			`reconcile_interval: "5s": out of range 10s to 24h0m0s`},
		{"number as string", "policy: {privileged_below: abc}",
			`policy.privileged_below: "abc": want a whole number`},
		{"fraction", "policy: {privileged_below: 10.5}",
			"policy.privileged_below: 10.5: want a whole number"},
		{"boolean for a number", "policy: {privileged_below: true}",
			"policy.privileged_below: true: want a whole number"},
		{"number out of range", "policy: {privileged_below: 70000}",
			"policy.privileged_below: 70000: out of range 1-65535"},
		{"host network action", "policy: {host_network: stop}",
			`policy.host_network: "stop": must be one of ignore, report, enforce`},
		{"wildcard action", "policy: {wildcard_bind: yes}",
			`policy.wildcard_bind: "yes": must be one of ignore, report, enforce`},
		{"port out of range",
			"policy: {allow: [{name: a, reason: r, ports: ['443/tcp', '80', '70000/tcp']}]}",
			`policy.allow[0].ports[2]: "70000/tcp": port out of range 1-65535`},
		{"port protocol", "policy: {allow: [{name: a, reason: r, ports: ['80/icmp']}]}",
			`policy.allow[0].ports[0]: "80/icmp": protocol "icmp" is not tcp, udp or sctp`},
		{"backwards range", "policy: {allow: [{name: a, reason: r, ports: ['90-80']}]}",
			`policy.allow[0].ports[0]: "90-80": range 90-80 ends before it starts`},
		{"bad container glob", "policy: {allow: [{name: a, reason: r, containers: ['web[']}]}",
			`policy.allow[0].containers[0]: "web[": malformed pattern: syntax error in pattern`},
		{"bad image digest",
			"policy: {allow: [{name: a, reason: r, images: ['nginx@sha256:abc']}]}",
			`policy.allow[0].images[0]: "nginx@sha256:abc": ` +
				"digest: invalid checksum digest length"},
		{"bad label glob",
			"policy: {allow: [{name: a, reason: r, ports: ['80'], labels: {tier: '[x'}}]}",
			`policy.allow[0].labels.tier: "[x": malformed pattern: syntax error in pattern`},
		{"labels alone", "policy: {allow: [{name: a, reason: r, labels: {tier: web}}]}",
			`policy.allow[0]: "a": has only labels, which whoever starts a container chooses; ` +
				"give containers, images or ports too"},
		{"no selector", "policy: {allow: [{name: a, reason: r}]}",
			`policy.allow[0]: "a": has no selector; give containers, images or ports too`},
		{"no name", "policy: {allow: [{reason: r, ports: ['80']}]}",
			`policy.allow[0].name: "": every allow entry needs a name`},
		{"no reason", "policy: {allow: [{name: a, ports: ['80']}]}",
			`policy.allow[0].reason: "": every allow entry needs a reason, for the audit`},
		{"duplicate name",
			"policy: {allow: [{name: a, reason: r, ports: ['80']}, " +
				"{name: a, reason: r, ports: ['81']}]}",
			`policy.allow[1].name: "a": already used by policy.allow[0]`},
		{"allow not a list", "policy: {allow: {name: a}}",
			"policy.allow: map[name:a]: want a list"},
		{"string for a list",
			"policy: {allow: [{name: a, reason: r, containers: [x], ports: '80'}]}",
			`policy.allow[0].ports: "80": want a list`},
		{"docker host scheme", "docker: {host: 'ssh://node'}",
			`docker.host: "ssh://node": scheme "ssh" is not unix, tcp, http or https`},
		{"docker cert path", "docker: {cert_path: certs}",
			`docker.cert_path: "certs": must be an absolute path`},
		{"enforce action", "enforce: {action: rm}",
			`enforce.action: "rm": must be one of stop, kill`},
		{"enforce services", "enforce: {services: delete}",
			`enforce.services: "delete": must be one of alert, scale-to-zero, ` +
				"remove-published-port"},
		{"duration without unit", "enforce: {stop_timeout: 10}",
			`enforce.stop_timeout: 10: want a duration with a unit, such as "30s" or "10m"`},
		{"duration garbage", "enforce: {stop_timeout: soon}",
			`enforce.stop_timeout: "soon": want a duration with a unit, such as "30s" or "10m"`},
		{"negative duration", "enforce: {stop_timeout: -1s}",
			`enforce.stop_timeout: "-1s": out of range 0s to 5m0s`},
		{"bool as number", "enforce: {disable_restart: 1}",
			"enforce.disable_restart: 1: want true or false"},
		{"loop max stops", "enforce: {loop: {max_stops: 0}}",
			"enforce.loop.max_stops: 0: out of range 1-1000"},
		{"loop window", "enforce: {loop: {window: 0s}}",
			`enforce.loop.window: "0s": out of range 1s to 24h0m0s`},
		{"dedup window", "notify: {dedup_window: 48h}",
			`notify.dedup_window: "48h0m0s": out of range 0s to 24h0m0s`},
		{"webhook and its file", "notify: {slack: {webhook_url: 'https://hooks.example/x', " +
			"webhook_url_file: /run/credentials/x}}",
			`notify.slack.webhook_url_file: "/run/credentials/x": ` +
				"set webhook_url or webhook_url_file, not both"},
		{"token and its file", "notify: {slack: {token: x, token_file: /t, channel: C}}",
			`notify.slack.token_file: "/t": set token or token_file, not both`},
		{"webhook and token", "notify: {slack: {webhook_url: 'https://h.example/x', token: x, " +
			"channel: C}}",
			`notify.slack.token: "<redacted>": use a webhook or a bot token, not both`},
		{"token without channel", "notify: {slack: {token: xoxb-1}}",
			`notify.slack.channel: "": a bot token needs a channel to post to`},
		{"channel without token", "notify: {slack: {channel: C1}}",
			`notify.slack.channel: "C1": a channel is used only with a bot token`},
		{"webhook not a URL, secret not shown", "notify: {slack: {webhook_url: 'hooks/secret'}}",
			`notify.slack.webhook_url: "<redacted>": must be an http or https URL with a host`},
		{"api url", "notify: {slack: {api_url: 'ftp://x'}}",
			`notify.slack.api_url: "ftp://x": must be an http or https URL with a host`},
		{"token file relative", "notify: {slack: {token_file: t, channel: C}}",
			`notify.slack.token_file: "t": must be an absolute path`},
		{"token file in a relative variable", "notify: {slack: {token_file: $PWD_REL/t, " +
			"channel: C}}", `notify.slack.token_file: "$PWD_REL/t": must be an absolute path`},
		{"syslog network", "notify: {syslog: {network: http}}",
			`notify.syslog.network: "http": must be one of , unixgram, unix, udp, tcp, tls`},
		{"syslog address", "notify: {syslog: {network: udp, address: siem}}",
			`notify.syslog.address: "siem": must be host:port`},
		{"syslog port", "notify: {syslog: {network: tcp, address: 'siem:0'}}",
			`notify.syslog.address: "siem:0": port out of range 1-65535`},
		{"syslog socket", "notify: {syslog: {network: unixgram, address: dev/log}}",
			`notify.syslog.address: "dev/log": must be the absolute path of a socket`},
		{"syslog address without network", "notify: {syslog: {address: 'siem:514'}}",
			`notify.syslog.address: "siem:514": set network too, or leave both empty for /dev/log`},
		{"syslog format", "notify: {syslog: {format: json}}",
			`notify.syslog.format: "json": must be one of rfc5424, rfc3164`},
		{"syslog facility", "notify: {syslog: {facility: local9}}",
			`notify.syslog.facility: "local9": must be one of kern, user, mail, daemon, auth, ` +
				"syslog, lpr, news, uucp, cron, authpriv, ftp, local0, local1, local2, local3, " +
				"local4, local5, local6, local7"},
		{"syslog tag", "notify: {syslog: {tag: 'port warden'}}",
			`notify.syslog.tag: "port warden": must be 1 to 48 printable ASCII characters ` +
				"without spaces"},
		{"syslog tls file without tls", "notify: {syslog: {network: udp, address: 'a:514', " +
			"ca_file: /ca.pem}}",
			`notify.syslog.ca_file: "/ca.pem": is used only with network tls`},
		{"syslog cert without key", "notify: {syslog: {network: tls, address: 'a:6514', " +
			"cert_file: /c.pem}}",
			`notify.syslog.cert_file: "/c.pem": cert_file and key_file go together`},
		{"metrics listen", "metrics: {listen: '9090'}",
			`metrics.listen: "9090": must be host:port`},
		{"state dir", "state_dir: var/lib/portwarden",
			`state_dir: "var/lib/portwarden": must be an absolute path`},
		{"log level", "log: {level: verbose}",
			`log.level: "verbose": must be one of debug, info, warn, error`},
		{"log format", "log: {format: xml}",
			`log.format: "xml": must be one of text, json`},
		{"section not a mapping", "policy: strict",
			`policy: "strict": want a mapping of keys to values`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			path := writeConfig(t, tt.yaml)
			_, _, err := Load(Source{Path: path})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load(%s) = %v, want a *config.Error", tt.yaml, err)
			}
			if !slices.Equal(cerr.Problems, []string{tt.want}) {
				t.Errorf("Load(%s) problems =\n  %q\nwant\n  %q", tt.yaml, cerr.Problems, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "config file "+path+": ") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadReportsAllProblemsAtOnce(t *testing.T) {
	isolate(t)
	_, _, err := Load(Source{Path: writeConfig(t,
		"mode: x\npolicy: {privileged_below: abc, bogus: 1}\nlog: {level: loud}")})
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 4 {
		t.Fatalf("Load = %v, want 4 problems", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"missing named file", filepath.Join(dir, "nope.yaml"), "no such file or directory"},
		{"a folder", dir, "is a directory"},
		{"not YAML", writeConfig(t, "mode: [alert\n"), "config file "},
		{"not a mapping", writeConfig(t, "- mode\n"), "config file "},
	}
	for _, tt := range tests {
		_, _, err := Load(Source{Path: tt.path})
		if err == nil || !strings.Contains(err.Error(), tt.want) ||
			!strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: Load(%s) = %v, want an error naming the file and %q",
				tt.name, tt.path, err, tt.want)
		}
	}
}

// A default file that exists but cannot be read is an error, never "no file".
func TestUnreadableDefaultFileIsAnError(t *testing.T) {
	isolate(t)
	defaultPath = t.TempDir() // a folder: exists, cannot be read as a file
	if _, _, err := Load(Source{}); err == nil || !strings.Contains(err.Error(), defaultPath) {
		t.Errorf("Load(unreadable default) = %v, want an error naming %s", err, defaultPath)
	}
}

func TestPrecedence(t *testing.T) {
	isolate(t)
	path := writeConfig(t, "mode: alert\npolicy: {privileged_below: 1000}\n"+
		"enforce: {stop_timeout: 2s}\nlog: {level: warn}\n")
	t.Setenv("PORTWARDEN_MODE", "enforce")
	t.Setenv("PORTWARDEN_POLICY_PRIVILEGED_BELOW", "2000")
	t.Setenv("PORTWARDEN_ENFORCE_STOP_TIMEOUT", "5s")
	t.Setenv("PORTWARDEN_ENFORCE_DRY_RUN", "true")
	t.Setenv("PORTWARDEN_LOG_LEVEL", "error")

	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	flags.String("log-level", "", "")
	flags.String("mode", "", "") // not set: must not override
	if err := flags.Parse([]string{"--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(Source{Path: path, Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Mode, cfg.Policy.PrivilegedBelow, cfg.Enforce.StopTimeout,
		cfg.Enforce.DryRun, cfg.Log.Level, cfg.Log.Format}
	want := []any{"enforce", 2000, 5 * time.Second, true, "debug", "text"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mode, privileged_below, stop_timeout, dry_run, log.level, log.format = %v, "+
			"want %v", got, want)
	}
}

func TestBadEnvironmentValueNamesTheKey(t *testing.T) {
	isolate(t)
	t.Setenv("PORTWARDEN_POLICY_PRIVILEGED_BELOW", "lots")
	_, _, err := Load(Source{})
	want := `config (no file): policy.privileged_below: "lots": want a whole number`
	if err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
}

func TestDockerFromEnvironment(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want Docker
	}{
		{"nothing set", "", nil, Docker{Host: "unix:///var/run/docker.sock"}},
		{"DOCKER_HOST", "", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2376"},
			Docker{Host: "tcp://127.0.0.1:2376"}},
		{"docker.host wins over DOCKER_HOST", "docker: {host: 'unix:///run/d.sock'}",
			map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2376"},
			Docker{Host: "unix:///run/d.sock"}},
		{"TLS from the environment", "",
			map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2376",
				"DOCKER_CERT_PATH": "/etc/docker/certs", "DOCKER_TLS_VERIFY": "1"},
			Docker{Host: "tcp://127.0.0.1:2376", CertPath: "/etc/docker/certs", TLSVerify: true}},
		{"TLS verify without a path uses ~/.docker", "",
			map[string]string{"HOME": "/home/op", "DOCKER_TLS_VERIFY": "1"},
			Docker{Host: "unix:///var/run/docker.sock", CertPath: "/home/op/.docker",
				TLSVerify: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, _, err := Load(Source{Path: writeConfig(t, tt.file)})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Docker != tt.want {
				t.Errorf("docker = %+v, want %+v", cfg.Docker, tt.want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	cfg := Default()
	cfg.Notify.Slack.WebhookURL = "https://hooks.slack.com/services/T/B/secret"
	cfg.Notify.Slack.Token = "xoxb-secret"
	cfg.Notify.Slack.TokenFile = "/run/credentials/portwarden/token"
	r := cfg.Redacted()
	if r.Notify.Slack.WebhookURL != redacted || r.Notify.Slack.Token != redacted {
		t.Errorf("Redacted() kept a secret: %+v", r.Notify.Slack)
	}
	if r.Notify.Slack.TokenFile != cfg.Notify.Slack.TokenFile {
		t.Errorf("Redacted() hid a file path, which is no secret")
	}
	if cfg.Notify.Slack.Token != "xoxb-secret" {
		t.Errorf("Redacted() changed its receiver")
	}
}

func TestWatcherPolicy(t *testing.T) {
	isolate(t)
	cfg, _, err := Load(Source{Path: writeConfig(t, string(Example))})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.WatcherPolicy()
	if p.PrivilegedBelow != 1024 || p.HostNetwork != "report" || p.WildcardBind != "ignore" {
		t.Errorf("policy = %+v, want 1024, report, ignore", p)
	}
	if len(p.Allow) != 2 || len(p.Allow[0].Images) != 2 ||
		p.Allow[0].Ports[0].String() != "443/tcp" || len(p.Allow[1].Ports) != 2 {
		t.Errorf("allow = %+v, want the ucp-controller rule on 443/tcp", p.Allow)
	}
}
