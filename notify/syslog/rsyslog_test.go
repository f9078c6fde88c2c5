//go:build integration

package syslog

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rsyslogd is a real rsyslog from Debian's packages, run by the test with a
// config of its own: UDP, TCP and TLS inputs on loopback, each line it
// receives written to a file as "input|app-name|msgid|structured-data|msg".
type rsyslogd struct {
	dir            string
	udp, tcp, tlsP int
	cmd            *exec.Cmd
	caPool         *x509.CertPool
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRsyslog(t *testing.T) *rsyslogd {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Fatal("rsyslogd is not installed; scripts/ensure-test-deps.sh installs it")
	}
	r := &rsyslogd{dir: t.TempDir(), udp: freePort(t), tcp: freePort(t), tlsP: freePort(t)}
	r.caPool = writeCerts(t, r.dir)
	conf := fmt.Sprintf(`global(workDirectory="%[1]s"
  DefaultNetstreamDriverCAFile="%[1]s/ca.pem"
  DefaultNetstreamDriverCertFile="%[1]s/server.pem"
  DefaultNetstreamDriverKeyFile="%[1]s/server-key.pem")
module(load="imudp")
module(load="imtcp")
template(name="line" type="string"
  string="%%inputname%%|%%app-name%%|%%msgid%%|%%structured-data%%|%%msg%%\n")
ruleset(name="out") { action(type="omfile" file="%[1]s/received.log" template="line") }
input(type="imudp" address="127.0.0.1" port="%[2]d" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="%[3]d" ruleset="out" name="tcp")
input(type="imtcp" address="127.0.0.1" port="%[4]d" ruleset="out" name="tls"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
`, r.dir, r.udp, r.tcp, r.tlsP)
	confPath := filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start(t, bin, confPath)
	return r
}

func (r *rsyslogd) start(t *testing.T, bin, conf string) {
	t.Helper()
	r.cmd = exec.Command(bin, "-n", "-f", conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	log, _ := os.Create(filepath.Join(r.dir, "rsyslogd.out"))
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range []int{r.tcp, r.tlsP} {
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				out, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.out"))
				t.Fatalf("rsyslogd does not listen on %d: %s", port, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (r *rsyslogd) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// wait returns the received line that holds want.
func (r *rsyslogd) wait(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f, err := os.Open(filepath.Join(r.dir, "received.log")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.Contains(sc.Text(), want) {
					f.Close()
					return sc.Text()
				}
			}
			f.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, _ := os.ReadFile(filepath.Join(r.dir, "received.log"))
	t.Fatalf("rsyslog never received %q; it has:\n%s", want, got)
	return ""
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 in dir, and
// returns a pool that trusts the CA.
func writeCerts(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject: pkix.Name{CommonName: "portwarden test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: der},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600)
		if err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func TestRsyslogReceivesEveryTransport(t *testing.T) {
	r := startRsyslog(t)
	for _, tt := range []struct {
		network string
		port    int
		input   string
	}{
		{"udp", r.udp, "imudp"},
		{"tcp", r.tcp, "tcp"},
		{"tls", r.tlsP, "tls"},
	} {
		t.Run(tt.network, func(t *testing.T) {
			n, err := New(Options{Network: tt.network,
				Address: fmt.Sprintf("127.0.0.1:%d", tt.port), Format: "rfc5424",
				Facility: "daemon", Tag: "portwarden", Hostname: "node-1",
				TLS: &tls.Config{RootCAs: r.caPool, ServerName: "127.0.0.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			a := testAlert()
			a.Container.ID = "id-" + tt.network
			for range 2 { // a second message on the same connection
				if err := n.Notify(context.Background(), a); err != nil {
					t.Fatal(err)
				}
			}
			line := r.wait(t, `container_id="id-`+tt.network+`"`)
			fields := strings.SplitN(line, "|", 5)
			if len(fields) != 5 || fields[0] != tt.input || fields[1] != "portwarden" ||
				fields[2] != "stopped" || !strings.HasPrefix(fields[3], "[portwarden@32473 ") ||
				!strings.HasPrefix(fields[4], "stopped: container web") {
				t.Errorf("rsyslog parsed %q, want input %s, app portwarden, msgid stopped, "+
					"the structured data and the text", line, tt.input)
			}
		})
	}
}

// After the receiver dies and comes back, the notifier reconnects; a
// message it could not send is an error, for the dispatcher to retry.
func TestReconnectsAfterTheReceiverRestarts(t *testing.T) {
	r := startRsyslog(t)
	n, err := New(Options{Network: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", r.tcp),
		Format: "rfc5424", Facility: "daemon", Tag: "portwarden"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a := testAlert()
	a.Container.ID = "before"
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	r.wait(t, `container_id="before"`)

	r.stop()
	a.Container.ID = "during"
	if err := n.Notify(context.Background(), a); err == nil {
		t.Error("Notify with the receiver down = nil, want an error to retry")
	}
	r.start(t, "rsyslogd", filepath.Join(r.dir, "rsyslog.conf"))
	a.Container.ID = "after"
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatalf("Notify after the receiver came back = %v", err)
	}
	r.wait(t, `container_id="after"`)
}
