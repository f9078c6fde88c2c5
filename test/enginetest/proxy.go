package enginetest

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
	"time"
)

// Proxy serves an engine's API on a socket of its own, and can hold back
// or slow down the calls a test picks, as a struggling engine would.
type Proxy struct {
	Socket string // the proxy's socket path

	srv *http.Server

	mu      sync.Mutex
	stall   *regexp.Regexp // calls held until released
	release chan struct{}
	delay   time.Duration // added to every call
}

// NewProxy serves engineSocket's API on a socket in dir, owned by gid and
// mode 0660.
func NewProxy(engineSocket, dir string, gid int) (*Proxy, error) {
	p := &Proxy{Socket: filepath.Join(dir, "docker.sock")}
	target, _ := url.Parse("http://engine")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // the event stream goes through as it comes
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", engineSocket)
	}
	rp.Transport = &http.Transport{DialContext: dial}
	l, err := net.Listen("unix", p.Socket)
	if err != nil {
		return nil, err
	}
	if err := os.Chown(p.Socket, 0, gid); err != nil {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(p.Socket, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		stall, release, delay := p.stall, p.release, p.delay
		p.mu.Unlock()
		if stall != nil && stall.MatchString(r.URL.Path) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if delay > 0 && r.URL.Path != "/_ping" {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(l)
	return p, nil
}

// Stall holds every call whose path matches pattern until Release.
func (p *Proxy) Stall(pattern string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stall, p.release = regexp.MustCompile(pattern), make(chan struct{})
}

// Release lets held calls go on, and stops holding new ones.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.release != nil {
		close(p.release)
	}
	p.stall, p.release = nil, nil
}

// Delay adds d to every call but pings; 0 ends it.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Close releases what is held and stops the proxy.
func (p *Proxy) Close() error {
	p.Release()
	return p.srv.Close()
}
