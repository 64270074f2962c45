# hakube: build, test, demo. Everything a target needs is installed or
# started by the target itself.
SHELL := /bin/bash
GO ?= go
BIN := bin
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

# The demo runs the emulator at realistic GCE latency sped up by this factor.
DEMO_TIME_SCALE ?= 0.05

.PHONY: all build rehearsal shellcheck test lint demo bench gce-smoke clean

all: build

build: rehearsal
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/... ./test/walkthrough ./test/sidebyside ./test/scale

# The real etcd and Kubernetes control plane the emulator's masters run
# (a module of its own: the CLI's stays small). Slow only the first time.
rehearsal:
	@mkdir -p $(BIN)
	./rehearsal/build.sh $(abspath $(BIN))/kube-rehearsal

# kube-up's HA guide end to end against a local emulator, with a summary.
demo: build
	$(BIN)/walkthrough -hakube $(BIN)/hakube -emulator $(BIN)/gce-emulator -time-scale $(DEMO_TIME_SCALE)

# Flow benchmarks (wall time against the critical path, API calls against
# kube-up's) and the emulator's throughput and memory at 5,000 VMs; then
# kube-up's gcloud sequence and hakube side by side, flow by flow, at GCE's
# latency and at the fast preset (CPU per invocation); then hakube's fresh up,
# status, resize and down at 500, 2,000 and 5,000 nodes.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x ./internal/cluster/ ./internal/emulator/
	$(BIN)/sidebyside -latency realistic
	$(BIN)/sidebyside -latency fast
	$(BIN)/scale -nodes 500,2000,5000

# The cluster package's scenarios run real control planes, several at once:
# alone, after the rest, so that no other package's load starves them.
test: build lint
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v '/internal/cluster$$')
	$(GO) test -race -count=1 -timeout 25m ./internal/cluster/

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(abspath $(BIN)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $(STATICCHECK)

# shellcheck comes from Debian's packages.
shellcheck:
	@command -v shellcheck >/dev/null || { echo "installing shellcheck (apt-get)"; \
		apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq shellcheck; }; }

lint: $(STATICCHECK) shellcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	shellcheck .ci/run rehearsal/build.sh test/gce-smoke.sh bench/kube-up-sequence.sh
	HAKUBE_REQUIRE_SHELLCHECK=1 $(GO) test -count=1 -run '^TestShellcheck$$' ./internal/startup/
	cd rehearsal && $(GO) vet ./...

# kube-up's HA guide on real Compute Engine, with real VMs, under a prefix
# of its own, always torn down; it costs money and is not part of make test:
#   make gce-smoke PROJECT=my-project ZONE=europe-west1-b
gce-smoke:
	@if [ -z "$(PROJECT)" ] || [ -z "$(ZONE)" ]; then echo "usage: make gce-smoke PROJECT=<project> ZONE=<zone>"; exit 2; fi
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/hakube
	test/gce-smoke.sh "$(PROJECT)" "$(ZONE)" $(BIN)/hakube

clean:
	rm -rf $(BIN)
