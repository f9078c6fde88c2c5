package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/docker/go-connections/tlsconfig"

	"github.com/portwarden/portwarden/cmd/portwarden/config"
	"github.com/portwarden/portwarden/notify"
	"github.com/portwarden/portwarden/notify/lognotify"
	"github.com/portwarden/portwarden/notify/slack"
	"github.com/portwarden/portwarden/notify/syslog"
)

// notifierRoutes builds every notifier the config asks for, each with its
// spool under state_dir. The log notifier is always there.
func notifierRoutes(cfg config.Config, log *slog.Logger) ([]notify.Route, error) {
	routes := []notify.Route{{Notifier: lognotify.New(log)}}
	s := cfg.Notify.Slack
	for _, f := range []string{s.WebhookURLFile, s.TokenFile} {
		if fi, err := os.Stat(os.ExpandEnv(f)); f != "" && err == nil &&
			fi.Mode().Perm()&0o004 != 0 {
			log.Warn("a Slack secret file is readable by anyone; chmod o-r it", "path", f)
		}
	}
	if s.WebhookURL != "" || s.WebhookURLFile != "" || s.Token != "" || s.TokenFile != "" {
		webhook, err := secret(s.WebhookURL, s.WebhookURLFile, "notify.slack.webhook_url_file")
		if err != nil {
			return nil, err
		}
		token, err := secret(s.Token, s.TokenFile, "notify.slack.token_file")
		if err != nil {
			return nil, err
		}
		n, err := slack.New(slack.Options{WebhookURL: webhook, Token: token,
			Channel: s.Channel, APIURL: s.APIURL})
		if err != nil {
			return nil, err
		}
		routes = append(routes, notify.Route{Notifier: n,
			SpoolDir: notify.SpoolDir(cfg.StateDir, n.Name())})
	}
	if cfg.Notify.Syslog.Enabled {
		n, err := newSyslog(cfg.Notify.Syslog)
		if err != nil {
			return nil, err
		}
		routes = append(routes, notify.Route{Notifier: n,
			SpoolDir: notify.SpoolDir(cfg.StateDir, n.Name())})
	}
	return routes, nil
}

func newSyslog(c config.Syslog) (*syslog.Notifier, error) {
	opts := syslog.Options{Network: c.Network, Address: c.Address, Format: c.Format,
		Facility: c.Facility, Tag: c.Tag}
	if c.Network == "tls" {
		tlsCfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: c.CAFile,
			CertFile: c.CertFile, KeyFile: c.KeyFile, MinVersion: tls.VersionTLS12})
		if err != nil {
			return nil, fmt.Errorf("notify.syslog TLS files: %w", err)
		}
		if host, _, err := net.SplitHostPort(c.Address); err == nil {
			tlsCfg.ServerName = host
		}
		opts.TLS = tlsCfg
	}
	return syslog.New(opts)
}

// secret returns value, or the contents of file (such as a systemd
// credential in $CREDENTIALS_DIRECTORY) without surrounding white space.
// A file that anyone may write is refused: whoever can write it chooses
// where alerts go.
func secret(value, file, key string) (string, error) {
	if file == "" {
		return value, nil
	}
	path := os.ExpandEnv(file)
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o002 != 0 {
		return "", fmt.Errorf("%s: %q is writable by anyone; refusing it (chmod o-w)", key, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: reading the secret: %w", key, err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s: %q is empty", key, file)
	}
	return v, nil
}
