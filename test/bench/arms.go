package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Arms of the exposure comparison.
const (
	armLimit      = "limit"      // a bare kill the instant the start event arrives
	armPortwarden = "portwarden" // portwarden run, enforce mode
	armPoll       = "poll"       // the STIG's manual check every 10 s
)

// pollInterval is how often the status-quo arm runs the manual check.
const pollInterval = 10 * time.Second

// arms measures one violator per arm per round, the arms in a new random
// order each round.
func (l *lab) arms(ctx context.Context, o options) (map[string][]time.Duration, error) {
	p, err := l.startPortwarden()
	if err != nil {
		return nil, err
	}
	defer p.stop()
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go l.poll(pollCtx)

	out := map[string][]time.Duration{}
	for round := range o.rounds {
		arms := []string{armLimit, armPortwarden}
		if round < o.pollRounds {
			arms = append(arms, armPoll)
		}
		for _, arm := range shuffled(arms) {
			port := l.nextPort()
			id, err := l.createViolator(ctx, fmt.Sprintf("%s-%d", arm, round), port)
			if err != nil {
				return nil, err
			}
			v, err := l.measure(ctx, id, port, arm == armLimit, time.Millisecond,
				2*pollInterval+5*time.Second)
			l.remove(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("%s arm: %w", arm, err)
			}
			out[arm] = append(out[arm], v.Exposure)
		}
	}
	return out, nil
}

// poll is the status quo: every 10 s the STIG's manual check, and a kill
// for each violator of this arm that it shows, as an operator's script
// would do.
func (l *lab) poll(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cmd := exec.CommandContext(ctx, "sh", "-c", "docker ps --quiet --all | xargs -r "+
			"docker inspect --format '{{ .Id }} {{ .Name }}: Ports={{ .NetworkSettings.Ports }}'")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+l.daemon.Host)
		// A container removed between the ps and the inspect fails the
		// inspect, not the lines of the others.
		out, err := cmd.Output()
		if len(out) == 0 && err != nil {
			fmt.Fprintf(os.Stderr, "bench: the manual check failed: %v\n", err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || !strings.Contains(f[1], "-poll-") || !privileged(line) {
				continue
			}
			kill := exec.Command("docker", "kill", f[0])
			kill.Env = cmd.Env
			if out, err := kill.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: docker kill %.12s: %v: %s\n", f[0], err, out)
			}
		}
	}
}

// hostPort finds the host ports in a line of the manual check, which the
// engine prints as {IP PORT} or, in newer clients, map[HostIp:IP HostPort:PORT].
var hostPort = regexp.MustCompile(`HostPort:(\d+)|\{\S+ (\d+)\}`)

// privileged reports whether a line of the manual check shows a host port
// below 1024.
func privileged(line string) bool {
	for _, m := range hostPort.FindAllStringSubmatch(line, -1) {
		port, _ := strconv.Atoi(m[1] + m[2])
		if port > 0 && port < 1024 {
			return true
		}
	}
	return false
}
