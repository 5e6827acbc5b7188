# Troupe's build and test entry points. `make test` is what CI runs.

GO ?= go
BIN := bin/troupe
# Per test binary; the whole suite must stay well under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 10m
# Fuzzing per target: short in `make test`, longer in `make fuzz`.
FUZZTIME ?= 10s
LONG_FUZZTIME ?= 5m
# Benchmark filter: make bench BENCH=Produce
BENCH ?= .
# Extra flags for go test, e.g. make test-short GOTESTFLAGS=-race
GOTESTFLAGS ?=
GOBIN_DIR := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(GOBIN_DIR)/staticcheck)

.PHONY: all build run test test-short test-race fuzz-short e2e cluster-e2e sim-soak sim-mutations failover-bench catchup bench bench-go bench-compare lint fuzz crash clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/troupe

# A single node with the embedded defaults: 127.0.0.1:9092, data in ./data.
run: build
	./$(BIN) broker

# Unit and end-to-end Go tests under the race detector (the simulator's
# 200+ seeds among them), the simulator's mutation check, a short fuzz of
# every fuzz target, then the client scripts and the failover tests of a
# 3-process cluster.
test: test-race sim-mutations fuzz-short e2e cluster-e2e

test-short:
	$(GO) test -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...

test-race:
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...

fuzz-short:
	scripts/fuzz.sh $(FUZZTIME)

e2e: build
	scripts/e2e.sh

cluster-e2e: build
	scripts/cluster.sh

# The simulator: many more seeds than make test runs (SEEDS=N), and the
# mutation check of sim/README.md (each broken variant must be caught).
SEEDS ?= 5000
sim-soak:
	$(GO) test -run 'TestSeeds' -count=1 -timeout 60m ./sim -sim.seeds=$(SEEDS)

sim-mutations:
	$(GO) test -run 'TestMutationsAreCaught' -count=1 -v -timeout 30m ./sim

# A follower down while 1 GB is written catches up (make test writes 64 MB).
catchup:
	TROUPE_CATCHUP_MB=1024 $(GO) test -run 'TestReplicaCatchUp' -count=1 -v -timeout 30m ./cluster

# The failover benchmark of BENCHMARKS.md: 20 SIGKILLs of the partition
# leader, then of the active controller, on a troupe dev cluster.
failover-bench: build
	$(GO) run ./bench/cmd/failover --troupe-bin $(BIN) --kills 20 --quiet
	$(GO) run ./bench/cmd/failover --troupe-bin $(BIN) --kills 20 --controller --quiet

# Go micro-benchmarks, then the side-by-side broker comparison (Troupe vs
# franz-go's kfake, each its own process) in its quick form.
bench: bench-go bench-compare

bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem ./...

bench-compare:
	$(GO) run ./bench/cmd/compare --quick --out BENCHMARKS-run.md

lint:
	$(GO) vet ./...
	@test -x "$(STATICCHECK)" || { echo "installing staticcheck"; $(GO) install honnef.co/go/tools/cmd/staticcheck@latest; }
	$(STATICCHECK) ./...

fuzz:
	scripts/fuzz.sh $(LONG_FUZZTIME)

# The SIGKILL durability test (4 kills in test-short), as a longer campaign.
CRASH_KILLS ?= 25
CRASH_COUNT ?= 2
crash:
	TROUPE_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -run 'TestCrashKeepsAcknowledgedRecords' -count=$(CRASH_COUNT) -v -timeout 30m ./cluster

clean:
	rm -rf bin
