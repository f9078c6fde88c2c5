#!/usr/bin/env bash
# check-cost.sh measures what `portwarden check --all` costs on an engine
# with N containers (default 500): half running and publishing a port, half
# created with a declared privileged binding. As a baseline it times the
# STIG's manual check in the same run, interleaved, and prints the ratio.
# Everything it creates carries a label and is removed on exit.
set -euo pipefail

n=${1:-500}
rounds=${ROUNDS:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
label="io.portwarden.cost=$$"
image="portwarden-cost-sleeper:$$"

cleanup() {
	docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null
	docker rmi -f "$image" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$top" && CGO_ENABLED=0 go build -o "$work/portwarden" ./cmd/portwarden &&
	CGO_ENABLED=0 go build -o "$work/sleeper" ./test/enginetest/testdata/sleeper)
printf 'FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT ["/sleeper"]\n' >"$work/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work" >/dev/null

echo "creating $n containers"
for i in $(seq 1 "$n"); do
	if [ $((i % 2)) -eq 0 ]; then
		docker run -d -l "$label" -p "$((20000 + i)):8080" "$image" >/dev/null
	else
		docker create -l "$label" -p 80:8080 "$image" >/dev/null
	fi
done

stig_check() {
	docker ps --quiet --all | xargs docker inspect \
		--format '{{ .Id }}: Ports={{ .NetworkSettings.Ports }}' >/dev/null
}
pw_check() {
	"$work/portwarden" check --all --config /dev/null --format json >"$work/report.json" || [ $? -eq 1 ]
}
seconds() {
	local start end
	start=$(date +%s.%N)
	"$@"
	end=$(date +%s.%N)
	echo "$end - $start" | bc
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$work/stig" && : >"$work/pw"
for _ in $(seq 1 "$rounds"); do
	seconds stig_check >>"$work/stig"
	seconds pw_check >>"$work/pw"
done
stig=$(median <"$work/stig")
pw=$(median <"$work/pw")
findings=$(grep -c '"kind"' "$work/report.json" || true)
inspected=$(sed -n 's/.*"containers_inspected": \([0-9]*\).*/\1/p' "$work/report.json")
rss=$( { /usr/bin/time -f '%M' "$work/portwarden" check --all --config /dev/null \
	--format json >/dev/null || true; } 2>&1 | tail -n 1)
echo "containers: $n ($((n / 2)) running), inspected: $inspected, findings: $findings, rounds: $rounds"
echo "STIG manual check (docker ps | xargs docker inspect): median ${stig}s"
echo "portwarden check --all --format json:               median ${pw}s"
echo "ratio portwarden / manual check: $(echo "scale=2; $pw / $stig" | bc)"
echo "portwarden check peak RSS: ${rss} KiB"
