# egate — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
# PKCS#11 and PC/SC need cgo: set it explicitly so that a build never
# silently drops hardware support.
export CGO_ENABLED := 1
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin/egate
# Packages under test; the race detector is on for all of them.
PKGS ?= ./...
TEST_TIMEOUT ?= 14m
FUZZTIME ?= 30s
TEST_FUZZTIME ?= 4s
BENCHTIME ?= 2s

.PHONY: all build run test test-quick bench load fuzz soak deps vet clean

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/egate

# egate demo on the embedded defaults: a SQLite file and a SoftHSM token under ./var.
run: deps build
	@if [ -x scripts/pcscd.sh ]; then scripts/pcscd.sh || true; fi
	$(BIN) demo

# Installs and starts everything the tests need, then runs them with -race.
test:
	@scripts/test.sh $(MAKE) --no-print-directory test-inner

test-inner:
	@# Every file as gofmt writes it.
	@files=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$files" ]; then echo "not gofmt'ed: $$files"; exit 1; fi
	$(GO) vet $(PKGS)
	@# 100,000 PSKC tokens in bounded memory: without -race, which would
	@# make it ten times slower and measure the detector's memory too.
	EGATE_TEST_LARGE=1 $(GO) test -count=1 -run 'TestImportLarge' ./authsvc/oath/
	@# A short, bounded run of every fuzz target (make fuzz runs them longer).
	@scripts/fuzz.sh $(TEST_FUZZTIME)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

bench:
	@scripts/test.sh $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m $(PKGS)

# A bounded load run over loopback: egate demo in a temporary directory on
# free ports, load-test customers with HOTP tokens, then egate load's
# logins (password + HOTP), refreshes and OTP verifications, at most
# LOAD_REQUESTS operations or LOAD_DURATION per scenario; fails on errors
# above 1% or /metrics disagreeing. See docs/performance.md.
LOAD_REQUESTS ?= 2000
LOAD_DURATION ?= 20s
LOAD_CONCURRENCY ?= 4
load: build
	LOAD_REQUESTS=$(LOAD_REQUESTS) LOAD_DURATION=$(LOAD_DURATION) LOAD_CONCURRENCY=$(LOAD_CONCURRENCY) scripts/load.sh $(BIN)

# Each fuzz target for FUZZTIME (go test allows one -fuzz target per run).
fuzz:
	@scripts/test.sh scripts/fuzz.sh $(FUZZTIME)

soak:
	@scripts/test.sh env EGATE_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run Soak $(PKGS)

clean:
	rm -rf bin
