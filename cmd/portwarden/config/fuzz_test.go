package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds config files to the loader: it must not panic, must
// refuse with an *Error or a file error, and what it accepts must
// validate and never print a secret.
func FuzzLoad(f *testing.F) {
	f.Add(string(Example))
	f.Add("mode: enforce\npolicy: {privileged_below: 100}\n")
	f.Add("notify: {slack: {token: xoxb-secret, channel: C1}}")
	f.Add("policy: {allow: [{name: a, reason: r, ports: ['70000/tcp']}]}")
	f.Add("- a\n- b\n")
	f.Add("mode: [")
	f.Fuzz(func(t *testing.T, body string) {
		old := defaultPath
		defaultPath = filepath.Join(t.TempDir(), "absent.yaml")
		defer func() { defaultPath = old }()
		path := filepath.Join(t.TempDir(), "portwarden.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Load(Source{Path: path})
		if err != nil {
			var cerr *Error
			if errors.As(err, &cerr) && len(cerr.Problems) == 0 {
				t.Fatal("an *Error with no problem")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that Validate refuses: %v", err)
		}
		r := cfg.Redacted()
		for _, secret := range []string{cfg.Notify.Slack.Token, cfg.Notify.Slack.WebhookURL} {
			if secret != "" && secret != redacted &&
				(strings.Contains(r.Notify.Slack.Token, secret) ||
					strings.Contains(r.Notify.Slack.WebhookURL, secret)) {
				t.Fatal("Redacted kept a secret")
			}
		}
	})
}
