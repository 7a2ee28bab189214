# Builds slim: the C shim and the bench's load generator first (both are
# embedded into the Go binary), then a static Go binary. `make test` is what CI runs (.ci/run, with
# SLIM_TEST_STRICT=1: a missing tool fails a test instead of skipping it).
# Test packages run one at a time (-p 1): several of them build labs of
# network namespaces, routers and cgroups, which must not race.

SHELL := /bin/bash
.DEFAULT_GOAL := all

# The system C compiler unless CC is given on the command line or in the
# environment (make's built-in default is cc).
ifeq ($(origin CC),default)
CC := gcc
endif
GO ?= go
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
TESTFLAGS ?=

SHIM := embed/libslim.so
SHIM_SOURCES := $(wildcard preload/*.c)
SHIM_HEADERS := $(wildcard preload/*.h)

# Reproducible: no absolute paths (file-prefix-map), no compiler ident, a
# build ID derived from the content, and only default-visibility symbols
# that the source exports on purpose. Linked against libc only.
SHIM_CFLAGS := -O2 -fPIC -shared -std=gnu11 -Wall -Wextra -Werror \
	-fvisibility=hidden -fno-ident -ffile-prefix-map=$(CURDIR)=. \
	-Wl,--build-id=sha1 -Wl,-z,relro -Wl,-z,now -Wl,--as-needed
# Where glibc before 2.34 defines dlsym and pthread_key_create (stubs since):
# the shim loads on glibc 2.17 and later (preload/compat.h).
SHIM_LIBS := -Wl,--no-as-needed -l:libdl.so.2 -l:libpthread.so.0

# The open-loop load generator of `slim bench --fixed-load`. Dynamically
# linked against glibc on purpose: `slim exec` must be able to preload the
# shim into it. Same reproducibility flags as the shim; libc only.
LOADGEN := embed/slim-loadgen
LOADGEN_SOURCES := $(filter-out %_test.c,$(wildcard bench/loadgen/*.c))
LOADGEN_HEADERS := $(wildcard bench/loadgen/*.h)
LOADGEN_CFLAGS := -O2 -std=gnu11 -Wall -Wextra -Werror -fPIE -pie -fno-ident \
	-ffile-prefix-map=$(CURDIR)=. -Wl,--build-id=sha1 -Wl,-z,relro -Wl,-z,now -Wl,--as-needed

.PHONY: all slim generate deps test demo clean

all: $(SHIM) $(LOADGEN) slim

$(SHIM): $(SHIM_SOURCES) $(SHIM_HEADERS) Makefile
	$(CC) $(SHIM_CFLAGS) -o $@ $(SHIM_SOURCES) $(SHIM_LIBS)

$(LOADGEN): $(LOADGEN_SOURCES) $(LOADGEN_HEADERS) Makefile
	$(CC) $(LOADGEN_CFLAGS) -o $@ $(LOADGEN_SOURCES)

# Always handed to go build, which has its own cache and knows when to relink.
slim: $(SHIM) $(LOADGEN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o slim .
	@if readelf -l slim | grep -q INTERP; then \
		echo "make: ./slim is dynamically linked; it must be static" >&2; exit 1; fi

# Regenerates embed/*_bpfel.{go,o} from secure/bpf/*.c with bpf2go.
generate:
	@command -v clang >/dev/null || { echo "make generate: clang not found (run make deps)" >&2; exit 1; }
	$(GO) generate ./embed/

deps:
	bash scripts/install-deps.sh

test: deps all
	@unformatted=$$(gofmt -l . | grep -v '_bpfel\.go$$' || true); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) build -o .testsummary ./internal/cmd/testsummary
	set -o pipefail; $(GO) test -json -count=1 -p 1 -timeout 40m $(TESTFLAGS) ./... | ./.testsummary

# Installs what the bench runs (make deps), then benchmarks on a lab named
# demo: brought up and taken down by the bench itself, or used as it is if
# it is already up (then it is left up).
demo: deps all
	./slim bench --name demo --duration 2s --runs 1

clean:
	rm -f slim .testsummary
