//go:build e2e

package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

// engineProxy serves the engine's API on a socket of its own, and can
// hold back inspects, as an engine that hangs would.
type engineProxy struct {
	dir string // holds docker.sock, mounted into the node
	gid int    // the group that may use the socket

	mu      sync.Mutex
	stalled chan struct{} // closed when inspects may go on; nil when not stalled
}

var inspectPath = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[^/]+/json$`)

// proxyGID owns the proxy's socket; the node gets a docker group with it.
const proxyGID = 4242

func startProxy(t *testing.T, engineSocket string) *engineProxy {
	t.Helper()
	p := &engineProxy{dir: t.TempDir(), gid: proxyGID}
	target, _ := url.Parse("http://engine")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // the event stream goes through as it comes
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", engineSocket)
	}
	rp.Transport = &http.Transport{DialContext: dial}
	sock := filepath.Join(p.dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chown(sock, 0, p.gid)
	os.Chmod(sock, 0o660)
	os.Chmod(p.dir, 0o755)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inspectPath.MatchString(r.URL.Path) {
			p.mu.Lock()
			wait := p.stalled
			p.mu.Unlock()
			if wait != nil {
				select {
				case <-wait:
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() {
		p.stallInspects(false)
		srv.Close()
	})
	return p
}

func (p *engineProxy) stallInspects(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.stalled == nil:
		p.stalled = make(chan struct{})
	case !on && p.stalled != nil:
		close(p.stalled)
		p.stalled = nil
	}
}
