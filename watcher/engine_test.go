package watcher

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDaemon answers /_ping and /version as an engine of apiVersion would.
func fakeDaemon(t *testing.T, apiVersion string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", apiVersion)
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/version"):
			if !strings.HasPrefix(r.URL.Path, "/v"+apiVersion+"/") {
				http.Error(w, "client did not negotiate: "+r.URL.Path, http.StatusBadRequest)
				return
			}
			w.Write([]byte(`{"Version":"20.10.24","ApiVersion":"` + apiVersion + `"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String()
}

func TestConnectNegotiatesDown(t *testing.T) {
	host := fakeDaemon(t, "1.41")
	cli, info, err := Connect(context.Background(), EngineOptions{Host: host})
	if err != nil {
		t.Fatalf("Connect(%s) = %v", host, err)
	}
	defer cli.Close()
	want := EngineInfo{Host: host, Version: "20.10.24", APIVersion: "1.41"}
	if info != want {
		t.Errorf("Connect(%s) info = %+v, want %+v", host, info, want)
	}
}

func TestConnectUnreachableNamesTheAddress(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "tcp://" + l.Addr().String()
	l.Close()

	tests := []struct{ host, want string }{
		{"unix://" + sock, "at unix://" + sock + ": dial unix " + sock +
			": connect: no such file or directory"},
		{closed, "at " + closed + ": dial tcp " + strings.TrimPrefix(closed, "tcp://") +
			": connect: connection refused"},
	}
	for _, tt := range tests {
		_, _, err := Connect(context.Background(), EngineOptions{Host: tt.host})
		if !errors.Is(err, ErrUnreachable) || !strings.HasSuffix(err.Error(), tt.want) ||
			strings.Contains(err.Error(), "\n") {
			t.Errorf("Connect(%s) = %v, want one line ending %q", tt.host, err, tt.want)
		}
	}
}

func TestConnectMissingCertificates(t *testing.T) {
	dir := t.TempDir()
	_, _, err := Connect(context.Background(), EngineOptions{
		Host: "tcp://127.0.0.1:2376", CertPath: dir, TLSVerify: true})
	if err == nil || !strings.Contains(err.Error(), "engine TLS certificates in \""+dir+"\"") {
		t.Errorf("Connect(no certificates) = %v, want an error naming %s", err, dir)
	}
}

func TestCheckHost(t *testing.T) {
	good := []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2376", "https://node:2376"}
	bad := []string{"unix://", "ssh://node", "foo://x", "tcp://", "not a url"}
	for _, h := range good {
		if err := CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q) = %v, want nil", h, err)
		}
	}
	for _, h := range bad {
		if err := CheckHost(h); err == nil {
			t.Errorf("CheckHost(%q) = nil, want an error", h)
		}
	}
}
