#!/usr/bin/env bash
# ensure-test-deps.sh installs what the tests need besides Go and a Docker
# Engine: rsyslog with its TLS driver (the syslog tests), iproute2 (a
# bridge for the tests' own dockerd) and systemd-analyze (the unit's tests). On Debian as
# root it installs what is missing; anywhere else it fails with one line
# naming what is missing.
set -euo pipefail

missing=()
command -v rsyslogd >/dev/null 2>&1 || missing+=(rsyslog)
ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || missing+=(rsyslog-gnutls)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# With "e2e": what the end-to-end test needs to build a Debian root file
# system with systemd, and to read the .rpm.
if [ "${1:-}" = e2e ]; then
	command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
	command -v rpm >/dev/null 2>&1 || missing+=(rpm)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ ! -r /etc/debian_version ] || [ "$(id -u)" -ne 0 ]; then
	echo "ensure-test-deps: missing ${missing[*]}; install them (Debian packages of those names)" >&2
	exit 1
fi
echo "ensure-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "ensure-test-deps: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
	{ echo "ensure-test-deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
