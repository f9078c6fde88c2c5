package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portwarden/portwarden/watcher"
)

// Error lists every problem found in a configuration, each naming its key
// path and the value, such as
// policy.allow[2].ports[0]: "70000/tcp": port out of range 1-65535.
type Error struct {
	Problems []string
}

// Error returns every problem on one line, separated by semicolons.
func (e *Error) Error() string {
	return strings.Join(e.Problems, "; ")
}

// problems collects what is wrong with a configuration.
type problems []string

func (p *problems) add(key string, value any, format string, args ...any) {
	*p = append(*p, fmt.Sprintf("%s: %s: %s", key, quote(value), fmt.Sprintf(format, args...)))
}

func (p *problems) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		p.add(key, value, "must be one of %s", strings.Join(allowed, ", "))
	}
}

func (p *problems) intIn(key string, value, lo, hi int) {
	if value < lo || value > hi {
		p.add(key, value, "out of range %d-%d", lo, hi)
	}
}

func (p *problems) durationIn(key string, value, lo, hi time.Duration) {
	if value < lo || value > hi {
		p.add(key, value.String(), "out of range %s to %s", lo, hi)
	}
}

// Validate checks every key of c and returns an *Error listing all that
// are wrong, or nil.
func (c Config) Validate() error {
	var p problems
	p.oneOf("mode", c.Mode, "alert", "enforce")
	if c.ReconcileInterval != 0 {
		p.durationIn("reconcile_interval", c.ReconcileInterval, 10*time.Second, 24*time.Hour)
	}
	c.Docker.validate(&p)
	_, policyProblems := c.Policy.compile()
	p = append(p, policyProblems...)
	c.Enforce.validate(&p)
	c.Notify.validate(&p)
	if c.Metrics.Listen != "" {
		checkHostPort(&p, "metrics.listen", c.Metrics.Listen)
	}
	if !filepath.IsAbs(c.StateDir) {
		p.add("state_dir", c.StateDir, "must be an absolute path")
	}
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

func (d Docker) validate(p *problems) {
	if err := watcher.CheckHost(d.Host); err != nil {
		p.add("docker.host", d.Host, "%v", err)
	}
	if d.CertPath != "" && !filepath.IsAbs(d.CertPath) {
		p.add("docker.cert_path", d.CertPath, "must be an absolute path")
	}
}

// WatcherPolicy returns the policy that detection applies. c must have
// passed Validate.
func (c Config) WatcherPolicy() watcher.Policy {
	policy, _ := c.Policy.compile()
	return policy
}

// compile turns the policy keys into the policy detection applies, with
// the problems found on the way.
func (pc Policy) compile() (watcher.Policy, problems) {
	var p problems
	p.intIn("policy.privileged_below", pc.PrivilegedBelow, 1, 65535)
	actions := []string{"ignore", "report", "enforce"}
	p.oneOf("policy.host_network", pc.HostNetwork, actions...)
	p.oneOf("policy.wildcard_bind", pc.WildcardBind, actions...)

	policy := watcher.Policy{
		PrivilegedBelow: pc.PrivilegedBelow,
		HostNetwork:     watcher.Action(pc.HostNetwork),
		WildcardBind:    watcher.Action(pc.WildcardBind),
	}
	seen := map[string]int{}
	for i, e := range pc.Allow {
		key := fmt.Sprintf("policy.allow[%d]", i)
		if first, dup := seen[e.Name]; dup && e.Name != "" {
			p.add(key+".name", e.Name, "already used by policy.allow[%d]", first)
		}
		seen[e.Name] = i
		policy.Allow = append(policy.Allow, e.compile(key, &p))
	}
	return policy, p
}

func (e AllowEntry) compile(key string, p *problems) watcher.AllowRule {
	r := watcher.AllowRule{Name: e.Name, Reason: e.Reason}
	if strings.TrimSpace(e.Name) == "" {
		p.add(key+".name", e.Name, "every allow entry needs a name")
	}
	if strings.TrimSpace(e.Reason) == "" {
		p.add(key+".reason", e.Reason, "every allow entry needs a reason, for the audit")
	}
	if len(e.Containers)+len(e.Images)+len(e.Ports) == 0 {
		what := "no selector"
		if len(e.Labels) > 0 {
			what = "only labels, which whoever starts a container chooses"
		}
		p.add(key, e.Name, "has %s; give containers, images or ports too", what)
	}

	for j, s := range e.Containers {
		if g, err := watcher.ParseGlob(s); err != nil {
			p.add(fmt.Sprintf("%s.containers[%d]", key, j), s, "%v", err)
		} else {
			r.Containers = append(r.Containers, g)
		}
	}
	for j, s := range e.Images {
		if sel, err := parseImageSelector(s); err != nil {
			p.add(fmt.Sprintf("%s.images[%d]", key, j), s, "%v", err)
		} else {
			r.Images = append(r.Images, sel)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
		s := e.Labels[k]
		g, err := watcher.ParseGlob(s)
		if err != nil {
			p.add(fmt.Sprintf("%s.labels.%s", key, k), s, "%v", err)
			continue
		}
		if r.Labels == nil {
			r.Labels = map[string]watcher.Glob{}
		}
		r.Labels[k] = g
	}
	for j, s := range e.Ports {
		if pr, err := watcher.ParsePortRange(s); err != nil {
			p.add(fmt.Sprintf("%s.ports[%d]", key, j), s, "%v", err)
		} else {
			r.Ports = append(r.Ports, pr)
		}
	}
	return r
}

// parseImageSelector reads "REPOSITORY_GLOB" or
// "REPOSITORY_GLOB@sha256:HEX".
func parseImageSelector(s string) (watcher.ImageSelector, error) {
	repo, dgst, pinned := strings.Cut(s, "@")
	g, err := watcher.ParseGlob(repo)
	if err != nil {
		return watcher.ImageSelector{}, fmt.Errorf("repository: %w", err)
	}
	sel := watcher.ImageSelector{Repository: g}
	if pinned {
		d, err := digest.Parse(dgst)
		if err != nil {
			return watcher.ImageSelector{}, fmt.Errorf("digest: %w", err)
		}
		sel.Digest = d.String()
	}
	return sel, nil
}

func (e Enforce) validate(p *problems) {
	p.oneOf("enforce.action", e.Action, "stop", "kill")
	p.oneOf("enforce.services", e.Services, "alert", "scale-to-zero", "remove-published-port")
	p.durationIn("enforce.stop_timeout", e.StopTimeout, 0, 5*time.Minute)
	p.intIn("enforce.loop.max_stops", e.Loop.MaxStops, 1, 1000)
	p.durationIn("enforce.loop.window", e.Loop.Window, time.Second, 24*time.Hour)
}

func (n Notify) validate(p *problems) {
	p.durationIn("notify.dedup_window", n.DedupWindow, 0, 24*time.Hour)
	n.Slack.validate(p)
	n.Syslog.validate(p)
}

func (s Slack) validate(p *problems) {
	const k = "notify.slack."
	webhook := s.WebhookURL != "" || s.WebhookURLFile != ""
	token := s.Token != "" || s.TokenFile != ""
	if s.WebhookURL != "" && s.WebhookURLFile != "" {
		p.add(k+"webhook_url_file", s.WebhookURLFile,
			"set webhook_url or webhook_url_file, not both")
	}
	if s.Token != "" && s.TokenFile != "" {
		p.add(k+"token_file", s.TokenFile, "set token or token_file, not both")
	}
	if webhook && token {
		p.add(k+"token", redacted, "use a webhook or a bot token, not both")
	}
	if token && s.Channel == "" {
		p.add(k+"channel", s.Channel, "a bot token needs a channel to post to")
	}
	if !token && s.Channel != "" {
		p.add(k+"channel", s.Channel, "a channel is used only with a bot token")
	}
	if s.WebhookURL != "" {
		checkURL(p, k+"webhook_url", s.WebhookURL, redacted)
	}
	if s.APIURL != "" {
		checkURL(p, k+"api_url", s.APIURL, s.APIURL)
	}
	for _, f := range []struct{ key, path string }{
		{"webhook_url_file", s.WebhookURLFile}, {"token_file", s.TokenFile},
	} {
		// $CREDENTIALS_DIRECTORY is set only for the service, so the
		// check is of the path as it will be.
		if f.path != "" && !filepath.IsAbs(os.ExpandEnv(f.path)) {
			p.add(k+f.key, f.path, "must be an absolute path")
		}
	}
}

// checkURL refuses anything but an http or https URL with a host. shown is
// what the error repeats of the value, so that a secret is not printed.
func checkURL(p *problems, key, raw, shown string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.add(key, shown, "must be an http or https URL with a host")
	}
}

var facilities = []string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5",
	"local6", "local7",
}

func (s Syslog) validate(p *problems) {
	const k = "notify.syslog."
	p.oneOf(k+"network", s.Network, "", "unixgram", "unix", "udp", "tcp", "tls")
	switch s.Network {
	case "udp", "tcp", "tls":
		checkHostPort(p, k+"address", s.Address)
	case "unix", "unixgram":
		if !filepath.IsAbs(s.Address) {
			p.add(k+"address", s.Address, "must be the absolute path of a socket")
		}
	case "":
		if s.Address != "" {
			p.add(k+"address", s.Address, "set network too, or leave both empty for /dev/log")
		}
	}
	p.oneOf(k+"format", s.Format, "rfc5424", "rfc3164")
	p.oneOf(k+"facility", s.Facility, facilities...)
	if !validTag(s.Tag) {
		p.add(k+"tag", s.Tag, "must be 1 to 48 printable ASCII characters without spaces")
	}
	for _, f := range []struct{ key, path string }{
		{"ca_file", s.CAFile}, {"cert_file", s.CertFile}, {"key_file", s.KeyFile},
	} {
		switch {
		case f.path == "":
		case s.Network != "tls":
			p.add(k+f.key, f.path, "is used only with network tls")
		case !filepath.IsAbs(f.path):
			p.add(k+f.key, f.path, "must be an absolute path")
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		p.add(k+"cert_file", s.CertFile, "cert_file and key_file go together")
	}
}

// validTag checks an RFC 5424 APP-NAME: 1 to 48 printable US-ASCII
// characters, no space.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 48 {
		return false
	}
	for _, c := range tag {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func checkHostPort(p *problems, key, value string) {
	_, port, err := net.SplitHostPort(value)
	if err != nil {
		p.add(key, value, "must be host:port")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(key, value, "port out of range 1-65535")
	}
}

// redacted stands in for a secret wherever the configuration is shown.
const redacted = "<redacted>"

// Redacted returns c with every secret replaced, for printing.
func (c Config) Redacted() Config {
	if c.Notify.Slack.WebhookURL != "" {
		c.Notify.Slack.WebhookURL = redacted
	}
	if c.Notify.Slack.Token != "" {
		c.Notify.Slack.Token = redacted
	}
	return c
}
