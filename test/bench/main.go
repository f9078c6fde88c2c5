// Command bench measures portwarden against a real engine, a dockerd of
// its own: the exposure of a violator (from its start event until its host
// port refuses connections) for portwarden, for the engine's own floor (a
// bare kill the instant the event arrives) and for the STIG's manual
// check on a 10 s schedule, all in one run and interleaved; bursts; the
// start-up reconcile against the number of containers; and the idle cost.
// It writes docs/performance.md and a plot. make bench runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portwarden/portwarden/test/enginetest"
)

type options struct {
	out        string
	rounds     int
	pollRounds int
	bursts     []int
	reconcile  []int
	idle       time.Duration
}

func main() {
	var o options
	var bursts, reconcile string
	flag.StringVar(&o.out, "out", "docs", "folder for performance.md and the plot")
	flag.IntVar(&o.rounds, "rounds", 20, "violators per fast arm")
	flag.IntVar(&o.pollRounds, "poll-rounds", 4, "violators for the 10 s polling arm")
	flag.StringVar(&bursts, "bursts", "10,50,200", "burst sizes")
	flag.StringVar(&reconcile, "reconcile", "10,100,500", "running containers at start-up")
	flag.DurationVar(&o.idle, "idle", time.Minute, "length of each idle measurement")
	flag.Parse()
	o.bursts, o.reconcile = ints(bursts), ints(reconcile)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		fmt.Sscan(f, &n)
		out = append(out, n)
	}
	return out
}

// lab is what every measurement shares: the engine, the binary, the
// event feed.
type lab struct {
	daemon     *enginetest.Daemon
	engine     *enginetest.Engine
	portwarden string
	starts     *startFeed
	port       int // the next host port for a violator
}

func run(o options) error {
	ctx := context.Background()
	began := time.Now()
	d, err := enginetest.StartDaemon(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	e, err := enginetest.Connect(ctx, d.Host)
	if err != nil {
		return err
	}
	defer e.Cleanup(context.Background(), func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	})
	if err := e.BuildImage(ctx); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "portwarden-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	l := &lab{daemon: d, engine: e, portwarden: filepath.Join(bin, "portwarden"), port: 600}
	if err := enginetest.GoBuild("cmd/portwarden", l.portwarden); err != nil {
		return err
	}
	if l.starts, err = followStarts(ctx, e); err != nil {
		return err
	}

	r := &report{Machine: machine(), Began: began}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"arms", func() (err error) { r.Arms, err = l.arms(ctx, o); return }},
		{"bursts", func() (err error) { r.Bursts, err = l.bursts(ctx, o.bursts); return }},
		{"reconcile", func() (err error) {
			r.Reconciles, err = l.reconciles(ctx, o.reconcile)
			return
		}},
		{"idle", func() (err error) { r.Idle, err = l.idleCost(ctx, o.idle); return }},
		{"pipeline", func() (err error) { r.Pipeline, err = pipelineBench(); return }},
	}
	for _, s := range steps {
		fmt.Fprintf(os.Stderr, "bench: %s (%s so far)\n", s.name,
			time.Since(began).Round(time.Second))
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	r.Took = time.Since(began)
	return r.write(o.out)
}

// nextPort returns a privileged host port not used lately.
func (l *lab) nextPort() int {
	l.port++
	if l.port > 999 {
		l.port = 600
	}
	return l.port
}

func shuffled(arms []string) []string {
	out := append([]string{}, arms...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
