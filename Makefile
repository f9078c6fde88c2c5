# portwarden's build. `make test` and `make audit` set up what they need.

GO      ?= go
BIN     := bin/portwarden
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test vet unit integration deps engine run audit bench clean

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

# engine makes sure a Docker Engine answers, installing and starting
# Debian's docker.io when none does.
engine:
	./scripts/ensure-docker.sh

# run runs the daemon in the foreground against this node's engine, with
# /etc/portwarden/portwarden.yaml if there is one (alert mode by default).
# Ctrl-C stops it.
run: engine build
	./$(BIN) run

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 3 ./watcher/

# audit runs portwarden's check on this node's engine, stopped containers
# included: exit 0 compliant, 1 findings, 2 error.
audit: engine build
	./$(BIN) check --all

clean:
	rm -rf bin
