#!/usr/bin/env bash
# ensure-docker.sh makes sure a Docker Engine answers on the default socket
# (or on DOCKER_HOST). When none answers it installs Debian's docker.io, if
# this is Debian and we are root, and starts dockerd in the background.
# Anything else fails with one line that says what is missing.
set -euo pipefail

log=${PORTWARDEN_DOCKERD_LOG:-/var/log/portwarden-test-dockerd.log}
wait_seconds=${PORTWARDEN_DOCKERD_WAIT:-60}

die() {
	echo "ensure-docker: $*" >&2
	exit 1
}

engine_answers() {
	docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

if command -v docker >/dev/null 2>&1 && engine_answers; then
	echo "ensure-docker: engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}" \
		"(version $(docker version --format '{{.Server.Version}}'))"
	exit 0
fi

if [ -n "${DOCKER_HOST:-}" ]; then
	die "no Docker Engine answers at DOCKER_HOST=$DOCKER_HOST; start it or unset DOCKER_HOST"
fi

if ! command -v dockerd >/dev/null 2>&1; then
	[ -r /etc/debian_version ] ||
		die "no Docker Engine answers and dockerd is not installed; this is not Debian, install Docker Engine by hand"
	[ "$(id -u)" -eq 0 ] ||
		die "no Docker Engine answers and dockerd is not installed; run as root to install Debian's docker.io"
	echo "ensure-docker: installing Debian's docker.io"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null ||
		die "apt-get update failed; cannot install docker.io"
	apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null ||
		die "apt-get install docker.io failed"
fi

[ "$(id -u)" -eq 0 ] || die "no Docker Engine answers and starting dockerd needs root"
command -v docker >/dev/null 2>&1 || die "docker.io is installed but no docker client is on PATH"

# A dockerd that was killed leaves its pid file, and a new one refuses to
# start while the file names a process. Remove it only when that process is
# gone or a zombie; a live dockerd that does not answer is an error.
pidfile=/var/run/docker.pid
if [ -s "$pidfile" ]; then
	old=$(cat "$pidfile")
	state=$(ps -o stat= -p "$old" 2>/dev/null || true)
	case "$state" in
	"" | Z*) rm -f "$pidfile" ;;
	*) die "dockerd (pid $old, in $pidfile) runs but does not answer; see $log" ;;
	esac
fi

echo "ensure-docker: starting dockerd, log in $log"
nohup dockerd >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 "$wait_seconds"); do
	if engine_answers; then
		echo "ensure-docker: engine answers (pid $pid, version $(docker version --format '{{.Server.Version}}'))"
		exit 0
	fi
	kill -0 "$pid" 2>/dev/null || die "dockerd exited during start-up; last lines of $log: $(tail -n 5 "$log" | tr '\n' ' ')"
	sleep 1
done
die "dockerd did not answer within ${wait_seconds}s; see $log"
