package watcher

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/client"
)

// DefaultHost is the engine address used when none is configured.
const DefaultHost = client.DefaultDockerHost

// EngineOptions says how to reach the Docker Engine.
type EngineOptions struct {
	Host      string // unix:///var/run/docker.sock, tcp://host:2376, ...; "" for DefaultHost
	CertPath  string // a folder with ca.pem, cert.pem and key.pem; "" for no TLS
	TLSVerify bool   // verify the engine's certificate against ca.pem
}

// EngineInfo describes the engine portwarden is connected to.
type EngineInfo struct {
	Host       string `json:"host"`
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
}

// NewClient returns a client for the engine at opts.Host. It does not dial:
// the first call does, and negotiates the API version.
func NewClient(opts EngineOptions) (*client.Client, error) {
	host := cmp.Or(opts.Host, DefaultHost)
	clientOpts := []client.Opt{client.WithHost(host)}
	if opts.CertPath != "" {
		tlsOpt, err := withTLS(opts)
		if err != nil {
			return nil, err
		}
		clientOpts = append([]client.Opt{tlsOpt}, clientOpts...)
	}
	cli, err := client.New(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("engine address %q: %w", host, err)
	}
	return cli, nil
}

// Connect returns a client for the engine at opts.Host with the API version
// negotiated, and what the engine says of itself. An engine that does not
// answer is an error that names the address tried.
func Connect(ctx context.Context, opts EngineOptions) (*client.Client, EngineInfo, error) {
	cli, err := NewClient(opts)
	if err != nil {
		return nil, EngineInfo{}, err
	}
	host := cli.DaemonHost()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		defer cli.Close()
		return nil, EngineInfo{}, unreachable(ctx, cli, host, err)
	}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		defer cli.Close()
		return nil, EngineInfo{}, unreachable(ctx, cli, host, err)
	}
	return cli, EngineInfo{Host: host, Version: v.Version, APIVersion: cli.ClientVersion()}, nil
}

// withTLS sets up mutual TLS from the certificates in opts.CertPath, as the
// docker command does with DOCKER_CERT_PATH and DOCKER_TLS_VERIFY.
func withTLS(opts EngineOptions) (client.Opt, error) {
	cfg, err := tlsconfig.Client(tlsconfig.Options{
		CAFile:             filepath.Join(opts.CertPath, "ca.pem"),
		CertFile:           filepath.Join(opts.CertPath, "cert.pem"),
		KeyFile:            filepath.Join(opts.CertPath, "key.pem"),
		InsecureSkipVerify: !opts.TLSVerify,
		MinVersion:         tls.VersionTLS12,
	})
	if err != nil {
		return nil, fmt.Errorf("engine TLS certificates in %q: %w", opts.CertPath, err)
	}
	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: cfg},
		CheckRedirect: client.CheckRedirect,
	}
	return client.WithHTTPClient(hc), nil
}

// ErrUnreachable is wrapped by errors for an engine that does not answer.
var ErrUnreachable = errors.New("docker engine unreachable")

// unreachable explains a failed call to the engine at host in one line.
// The client hides why a connection failed, so a dial of its own says it:
// "dial unix /var/run/docker.sock: connect: no such file or directory".
func unreachable(ctx context.Context, cli *client.Client, host string, err error) error {
	if conn, dialErr := cli.Dialer()(ctx); dialErr != nil {
		err = dialErr
	} else {
		conn.Close()
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return fmt.Errorf("%w at %s: %s", ErrUnreachable, host, msg)
}

// CheckHost reports whether host is an engine address the client can dial:
// unix:///path, or tcp://, http:// or https:// with a host and port.
func CheckHost(host string) error {
	u, err := client.ParseHostURL(host)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "unix":
		if u.Host == "" {
			return errors.New("a unix address needs a socket path")
		}
	case "tcp", "http", "https":
		if u.Host == "" {
			return fmt.Errorf("a %s address needs a host", u.Scheme)
		}
	default:
		return fmt.Errorf("scheme %q is not unix, tcp, http or https", u.Scheme)
	}
	return nil
}
