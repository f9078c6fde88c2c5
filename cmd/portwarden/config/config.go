// Package config holds portwarden's configuration: one struct, its
// defaults, how it is loaded from a file, the environment and flags, and
// the one place where it is validated.
package config

import (
	"time"

	"github.com/portwarden/portwarden/watcher"
)

// DefaultPath is where the config file is read from when no --config flag
// names one. A missing file there means the defaults; any other problem
// with it is an error.
const DefaultPath = "/etc/portwarden/portwarden.yaml"

// EnvPrefix starts the environment variables that override config keys:
// PORTWARDEN_ plus the key path in upper case with "_" for ".", such as
// PORTWARDEN_POLICY_PRIVILEGED_BELOW.
const EnvPrefix = "PORTWARDEN"

// Config is portwarden's whole configuration. Default returns its defaults.
type Config struct {
	Mode string `mapstructure:"mode" yaml:"mode"` // alert or enforce
	// ReconcileInterval is how often everything that runs is judged again,
	// besides at start-up and after a reconnect; 0 turns it off.
	ReconcileInterval time.Duration `mapstructure:"reconcile_interval" yaml:"reconcile_interval"`
	Docker            Docker        `mapstructure:"docker" yaml:"docker"`
	Policy            Policy        `mapstructure:"policy" yaml:"policy"`
	Enforce           Enforce       `mapstructure:"enforce" yaml:"enforce"`
	Notify            Notify        `mapstructure:"notify" yaml:"notify"`
	Metrics           Metrics       `mapstructure:"metrics" yaml:"metrics"`
	StateDir          string        `mapstructure:"state_dir" yaml:"state_dir"`
	Log               Log           `mapstructure:"log" yaml:"log"`
}

// Docker says how to reach the engine. Keys left empty are taken from
// DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY, as the docker
// command takes them.
type Docker struct {
	Host      string `mapstructure:"host" yaml:"host"`
	CertPath  string `mapstructure:"cert_path" yaml:"cert_path"`
	TLSVerify bool   `mapstructure:"tls_verify" yaml:"tls_verify"`
}

// Policy says what is a finding and what is allowed.
type Policy struct {
	PrivilegedBelow int          `mapstructure:"privileged_below" yaml:"privileged_below"`
	HostNetwork     string       `mapstructure:"host_network" yaml:"host_network"`
	WildcardBind    string       `mapstructure:"wildcard_bind" yaml:"wildcard_bind"`
	Allow           []AllowEntry `mapstructure:"allow" yaml:"allow"`
}

// AllowEntry exempts the findings that all of its selectors match.
type AllowEntry struct {
	Name       string            `mapstructure:"name" yaml:"name"`
	Reason     string            `mapstructure:"reason" yaml:"reason"`
	Containers []string          `mapstructure:"containers" yaml:"containers,omitempty"`
	Images     []string          `mapstructure:"images" yaml:"images,omitempty"`
	Labels     map[string]string `mapstructure:"labels" yaml:"labels,omitempty"`
	Ports      []string          `mapstructure:"ports" yaml:"ports,omitempty"`
}

// Enforce says how enforce mode acts on a finding.
type Enforce struct {
	Action         string        `mapstructure:"action" yaml:"action"` // stop or kill
	StopTimeout    time.Duration `mapstructure:"stop_timeout" yaml:"stop_timeout"`
	DisableRestart bool          `mapstructure:"disable_restart" yaml:"disable_restart"`
	DryRun         bool          `mapstructure:"dry_run" yaml:"dry_run"`
	Loop           Loop          `mapstructure:"loop" yaml:"loop"`
	// Services is what enforce mode does to a Swarm service: alert,
	// scale-to-zero or remove-published-port.
	Services string `mapstructure:"services" yaml:"services"`
}

// Loop is the loop breaker: after MaxStops stops of one workload within
// Window, enforcement of that workload stops and only alerts go on.
type Loop struct {
	MaxStops int           `mapstructure:"max_stops" yaml:"max_stops"`
	Window   time.Duration `mapstructure:"window" yaml:"window"`
}

// Notify says where alerts go.
type Notify struct {
	Allowed     bool          `mapstructure:"allowed" yaml:"allowed"` // alert allowed findings too
	DedupWindow time.Duration `mapstructure:"dedup_window" yaml:"dedup_window"`
	Slack       Slack         `mapstructure:"slack" yaml:"slack"`
	Syslog      Syslog        `mapstructure:"syslog" yaml:"syslog"`
}

// Slack is an incoming webhook or a bot token with a channel. The *_file
// keys name files holding the secret, such as systemd credentials.
type Slack struct {
	WebhookURL     string `mapstructure:"webhook_url" yaml:"webhook_url"`
	WebhookURLFile string `mapstructure:"webhook_url_file" yaml:"webhook_url_file"`
	Token          string `mapstructure:"token" yaml:"token"`
	TokenFile      string `mapstructure:"token_file" yaml:"token_file"`
	Channel        string `mapstructure:"channel" yaml:"channel"`
	APIURL         string `mapstructure:"api_url" yaml:"api_url"`
}

// Syslog is a local or remote syslog receiver.
type Syslog struct {
	Enabled  bool   `mapstructure:"enabled" yaml:"enabled"`
	Network  string `mapstructure:"network" yaml:"network"` // "" (local), unixgram, udp, tcp, tls
	Address  string `mapstructure:"address" yaml:"address"`
	Format   string `mapstructure:"format" yaml:"format"` // rfc5424 or rfc3164
	Facility string `mapstructure:"facility" yaml:"facility"`
	Tag      string `mapstructure:"tag" yaml:"tag"`
	CAFile   string `mapstructure:"ca_file" yaml:"ca_file"`
	CertFile string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string `mapstructure:"key_file" yaml:"key_file"`
}

// DefaultMetricsListen is where /metrics and /healthz are served unless
// metrics.listen says otherwise: loopback only.
const DefaultMetricsListen = "127.0.0.1:9731"

// Metrics is the Prometheus endpoint; an empty Listen turns it off.
type Metrics struct {
	Listen string `mapstructure:"listen" yaml:"listen"`
}

// Log says how portwarden logs.
type Log struct {
	Level  string `mapstructure:"level" yaml:"level"`   // debug, info, warn, error
	Format string `mapstructure:"format" yaml:"format"` // text or json
}

// Default returns the configuration that applies where a key is not set.
func Default() Config {
	return Config{
		Mode:              "alert",
		ReconcileInterval: 5 * time.Minute,
		Policy: Policy{
			PrivilegedBelow: watcher.DefaultPrivilegedBelow,
			HostNetwork:     string(watcher.ActionReport),
			WildcardBind:    string(watcher.ActionIgnore),
		},
		Enforce: Enforce{
			Action:         "stop",
			StopTimeout:    0,
			DisableRestart: true,
			Loop:           Loop{MaxStops: 3, Window: 10 * time.Minute},
			Services:       "alert",
		},
		Notify: Notify{
			DedupWindow: 10 * time.Minute,
			Syslog: Syslog{
				Format:   "rfc5424",
				Facility: "daemon",
				Tag:      "portwarden",
			},
		},
		Metrics:  Metrics{Listen: DefaultMetricsListen},
		StateDir: "/var/lib/portwarden",
		Log:      Log{Level: "info", Format: "text"},
	}
}
