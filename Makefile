# liveroom: `make test` installs what the tests need (when root) and runs every test.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
TOOLS := redis-server:redis-server ffmpeg:ffmpeg chromium:chromium ip:iproute2 unshare:util-linux

.PHONY: test tools vet build run fuzz bench

## test: vet and run every test with the race detector.
test: tools vet
	$(GO) test -race -count=1 -timeout 15m ./...

## tools: install the programs the tests drive (real Redis, ffmpeg, Chromium; ip and
## unshare for the media test that needs a network namespace with a small MTU).
tools:
	@missing=""; \
	for pair in $(TOOLS); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing — install them (e.g. sudo apt-get install$$missing); tests that need them will skip (or fail with LIVEROOM_REQUIRE_ALL=1)"; \
	  fi; \
	fi

vet:
	$(GO) vet ./...

build:
	$(GO) build -o liveroom ./cmd/liveroom

run:
	$(GO) run ./cmd/liveroom

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

## bench: the in-code benchmarks (figures go to docs/benchmarks.md).
bench:
	$(GO) test -run XXX -bench . -benchmem ./...
