// Package syslog is the notifier that sends alerts to syslog: the local
// socket, or a remote receiver over UDP, TCP or TLS, as RFC 5424 (with
// structured data) or RFC 3164 messages.
//
// It is a small writer of its own. The standard library's log/syslog is
// frozen and has neither RFC 5424 structured data, TLS, nor octet-counting
// framing; the Go clients on the module proxy that add some of these have
// had no release for years and still lack structured data.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/portwarden/portwarden/notify"
)

// DefaultLocalSocket is where the local syslog daemon (or journald) reads.
const DefaultLocalSocket = "/dev/log"

// maxDatagram bounds a message sent as one datagram; RFC 5426 asks every
// receiver to take 2048 octets.
const maxDatagram = 2048

// Options say where and how to send.
type Options struct {
	Network  string      // "" (the local socket), unixgram, unix, udp, tcp or tls
	Address  string      // host:port, or a socket path; "" with Network "" for /dev/log
	Format   string      // rfc5424 or rfc3164
	Facility string      // daemon, local0, ...
	Tag      string      // the APP-NAME
	Hostname string      // "" for os.Hostname
	TLS      *tls.Config // for tls
}

// Notifier writes alerts to one syslog receiver, connecting on first use
// and again after any failure.
type Notifier struct {
	opts     Options
	facility int
	pid      int
	local    bool

	mu   sync.Mutex
	conn net.Conn
}

// New returns a Notifier for opts.
func New(opts Options) (*Notifier, error) {
	facility, ok := facilities[opts.Facility]
	if !ok {
		return nil, fmt.Errorf("syslog: facility %q is not known", opts.Facility)
	}
	n := &Notifier{opts: opts, facility: facility, pid: os.Getpid()}
	if opts.Network == "" {
		n.opts.Network, n.local = "unixgram", true
		if n.opts.Address == "" {
			n.opts.Address = DefaultLocalSocket
		}
	}
	if n.opts.Hostname == "" && !n.local {
		n.opts.Hostname, _ = os.Hostname()
	}
	if opts.Network == "tls" && opts.TLS == nil {
		return nil, errors.New("syslog: tls needs a TLS configuration")
	}
	return n, nil
}

// Name returns "syslog".
func (n *Notifier) Name() string { return "syslog" }

// Notify sends a as one message. The local socket gets the RFC 3164 form
// that syslog daemons and journald read there; a remote receiver gets
// Options.Format.
func (n *Notifier) Notify(ctx context.Context, a notify.Alert) error {
	msg := n.render(a)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn != nil && n.stream() && !alive(n.conn) {
		n.closeLocked()
	}
	if n.conn == nil {
		conn, err := n.dial(ctx)
		if err != nil {
			return fmt.Errorf("syslog: connecting to %s %s: %w", n.opts.Network, n.opts.Address,
				err)
		}
		n.conn = conn
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	n.conn.SetWriteDeadline(deadline)
	if _, err := n.conn.Write(n.frame(msg)); err != nil {
		n.closeLocked()
		return fmt.Errorf("syslog: writing to %s %s: %w", n.opts.Network, n.opts.Address, err)
	}
	return nil
}

func (n *Notifier) render(a notify.Alert) string {
	if n.local || n.opts.Format == "rfc3164" {
		host := n.opts.Hostname
		if n.local {
			host = ""
		}
		return rfc3164(a, n.facility, host, n.opts.Tag, n.pid)
	}
	return rfc5424(a, n.facility, n.opts.Hostname, n.opts.Tag, n.pid)
}

func (n *Notifier) stream() bool {
	switch n.opts.Network {
	case "tcp", "tls", "unix":
		return true
	}
	return false
}

// frame makes one message ready for the wire: octet counting (RFC 6587)
// on a stream, the bare message, cut to size, in a datagram.
func (n *Notifier) frame(msg string) []byte {
	if n.stream() {
		return []byte(strconv.Itoa(len(msg)) + " " + msg)
	}
	if len(msg) > maxDatagram {
		msg = msg[:maxDatagram]
	}
	return []byte(msg)
}

func (n *Notifier) dial(ctx context.Context) (net.Conn, error) {
	switch n.opts.Network {
	case "tls":
		d := &tls.Dialer{Config: n.opts.TLS}
		return d.DialContext(ctx, "tcp", n.opts.Address)
	default:
		var d net.Dialer
		return d.DialContext(ctx, n.opts.Network, n.opts.Address)
	}
}

// alive reports whether a stream the receiver may have closed is still
// open. A write to a closed TCP connection can succeed once and lose the
// message, so a closed one is noticed before writing.
func alive(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer conn.SetReadDeadline(time.Time{})
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (n *Notifier) closeLocked() {
	if n.conn != nil {
		n.conn.Close()
		n.conn = nil
	}
}

// Close closes the connection, if one is open.
func (n *Notifier) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closeLocked()
	return nil
}
