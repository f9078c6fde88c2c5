# portwarden's build. `make test` and `make audit` set up what they need.

GO      ?= go
BIN     := bin/portwarden
# The version is git describe of a v* tag (v1.2.3 -> 1.2.3); with none yet,
# 0.0.0 and a prerelease of the commit's date and hash.
TAG     := $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)
PKG_VERSION    ?= $(if $(TAG),$(patsubst v%,%,$(firstword $(subst -, ,$(TAG)))),0.0.0)
PKG_PRERELEASE ?= $(if $(TAG),$(subst $(firstword $(subst -, ,$(TAG))),,$(TAG)),git$(shell git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null).$(shell git rev-parse --short HEAD 2>/dev/null))
VERSION ?= $(PKG_VERSION)$(if $(PKG_PRERELEASE),~$(patsubst -%,%,$(PKG_PRERELEASE)))

.PHONY: all build test vet lint unit integration deps engine run audit bench package e2e fuzz faults clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" \
		-o $(BIN) ./cmd/portwarden

# test runs everything CI runs: vet, the unit tests with the race detector,
# and the integration tests against a real Docker Engine.
test: vet unit integration

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./test/... ./notify/syslog/

unit: deps
	$(GO) test -race -count=1 ./...

# integration runs what needs real services: the engine, and rsyslog.
integration: engine deps
	$(GO) test -tags integration -count=1 -timeout 20m ./test/... ./notify/syslog/

deps:
	./scripts/ensure-test-deps.sh

# lint runs golangci-lint (gosec, errorlint, bodyclose and the standard set;
# .golangci.yml) from the module proxy, at a fixed version.
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
lint:
	$(GO) run $(GOLANGCI_LINT) run --build-tags integration,e2e,faults ./...

# faults breaks what portwarden depends on, on purpose, each case on a
# dockerd of its own.
faults: engine deps
	$(GO) vet -tags faults ./test/faults/
	$(GO) test -tags faults -count=1 -timeout 20m ./test/faults/

# fuzz runs every fuzz target for FUZZTIME; a crash fails, and its input
# lands in testdata/fuzz/ as a regression test.
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	./watcher/:FuzzParsePortRange ./watcher/:FuzzGlob ./watcher/:FuzzDetect \
	./watcher/:FuzzCompose ./cmd/portwarden/config/:FuzzLoad ./notify/slack/:FuzzMessage \
	./notify/syslog/:FuzzRFC5424 ./notify/:FuzzSpool

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# e2e installs the .deb in a Debian container running systemd and drives
# it there; the root file system is cached in /var/cache/portwarden-e2e.
e2e: engine package
	./scripts/ensure-test-deps.sh e2e
	$(GO) vet -tags e2e ./test/e2e/
	$(GO) test -tags e2e -count=1 -timeout 30m -v ./test/e2e/

# engine makes sure a Docker Engine answers, installing and starting
# Debian's docker.io when none does.
engine:
	./scripts/ensure-docker.sh

# run runs the daemon in the foreground against this node's engine, with
# /etc/portwarden/portwarden.yaml if there is one (alert mode by default).
# Ctrl-C stops it.
run: engine build
	./$(BIN) run

# bench measures exposure, bursts, reconcile and idle cost against a dockerd
# of its own, and rewrites docs/performance.md and its plot (under 10 min).
bench: engine
	$(GO) run ./test/bench -out docs

# audit runs portwarden's check on this node's engine, stopped containers
# included: exit 0 compliant, 1 findings, 2 error.
audit: engine build
	./$(BIN) check --all

# package writes dist/*.deb and dist/*.rpm.
package:
	rm -rf dist && mkdir -p dist
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" \
		-o dist/portwarden ./cmd/portwarden
	./dist/portwarden config example > dist/portwarden.yaml
	./dist/portwarden gen-docs dist/docs
	for p in deb rpm; do \
		PORTWARDEN_VERSION=$(PKG_VERSION) PORTWARDEN_PRERELEASE=$(patsubst -%,%,$(PKG_PRERELEASE)) \
		$(GO) tool nfpm package --config packaging/nfpm.yaml --packager $$p --target dist/ \
		|| exit 1; \
	done

clean:
	rm -rf bin dist
