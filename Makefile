# restrack — the front door. `make help` lists the targets.
SHELL := /bin/bash
# Go: $(GO) when given, else go on PATH, else the official tarball's place
# (scripts/setup-debian.sh puts it there but cannot change your PATH).
GO_FALLBACK ?= /usr/local/go/bin/go
GO ?= $(or $(shell command -v go 2>/dev/null),$(wildcard $(GO_FALLBACK)))
ifneq ($(GO),)
# go test runs go (vet, build of helpers): the same go as make's.
export PATH := $(abspath $(dir $(GO))):$(PATH)
endif
NEED_GO = @if [ -z "$(GO)" ] || ! command -v "$(GO)" >/dev/null; then echo "make: Go not found: not on PATH nor at $(GO_FALLBACK). Install Go 1.26 (sudo ./scripts/setup-debian.sh does), or run make GO=/path/to/go" >&2; exit 1; fi
# --version of every command: make stamps it; a bare go build says devel-REVISION.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
GO_LDFLAGS := -X github.com/restrack/restrack/internal/version.Version=$(VERSION)
CC ?= cc
BUILD := build
CFLAGS_SHIM := -std=gnu11 -O2 -g -fPIC -Wall -Wextra -Werror -fvisibility=hidden -D_GNU_SOURCE -pthread
SHIM_SRCS := $(sort $(wildcard libcshim/*.c))
SHIM_HDRS := $(wildcard libcshim/*.h)
CMDS := $(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/main.go))))
GO_SRCS := $(shell find . -name '*.go' -not -path './build/*') go.mod go.sum

.PHONY: install print-go all build shim cmds test test-go test-c test-freebsd test-freebsd-libc shim-freebsd-syntax demo demo-fleet bench bench-quick bench-fleet bench-ring soak coverage generate clean help

all: build ## Build everything into build/ (the default)

build: shim cmds ## build/librestrack.so, build/restrack, build/collector

shim: $(BUILD)/librestrack.so ## The LD_PRELOAD shim

$(BUILD)/librestrack.so: $(SHIM_SRCS) $(SHIM_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_SHIM) -shared -Wl,-z,now -o $@ $(SHIM_SRCS) -ldl

cmds: $(addprefix $(BUILD)/,$(CMDS)) ## The Go commands under cmd/

$(addprefix $(BUILD)/,$(CMDS)): $(BUILD)/%: $(GO_SRCS)
	$(NEED_GO)
	@mkdir -p $(BUILD)
	$(GO) build -ldflags "$(GO_LDFLAGS)" -o $@ ./cmd/$*

test: test-c test-go test-freebsd ## Run every test: C tests, Go tests with -race, FreeBSD cross-build

test-freebsd: test-freebsd-libc shim-freebsd-syntax ## The Go side cross-builds and vets for FreeBSD; the libc integration script's tests
	GOOS=freebsd GOARCH=amd64 $(GO) build ./...
	GOOS=freebsd GOARCH=amd64 $(GO) vet ./...
	GOOS=freebsd GOARCH=arm64 $(GO) build ./...

# What of the FreeBSD drop-in libc can run on Linux: the scripts' syntax and
# integrate.sh against a fake tree (docs/freebsd.md, "What was verified").
test-freebsd-libc: ## FreeBSD libc integration: sh -n of the scripts, integrate.sh against a fake tree
	sh -n libcshim/freebsd/integrate.sh
	sh -n libcshim/freebsd/check.sh
	CC=$(CC) sh libcshim/freebsd/integrate_test.sh

# The FreeBSD shim sources (preload and libc builds) parsed and type-checked
# by clang for a FreeBSD target against stand-in headers that declare only
# what the code uses (libcshim/freebsd/syntax/include): it catches a broken
# ifdef, a typo or a Linux-only name in the FreeBSD path, not a difference
# from FreeBSD's real headers, which are not on this machine.
FREEBSD_SYNTAX = clang --target=$$FREEBSD_TARGET -ffreestanding -nostdlibinc -isystem libcshim/freebsd/syntax/include -Ilibcshim -std=gnu11 -fsyntax-only -Wall -Wextra -Werror
FREEBSD_SHIM_SRCS := libcshim/ring_producer.c libcshim/shim_core.c libcshim/freebsd/rt_hooks_freebsd.c

shim-freebsd-syntax: ## FreeBSD shim sources type-check for a FreeBSD target (stand-in headers, not FreeBSD's)
	@command -v clang >/dev/null || { echo "shim-freebsd-syntax: needs clang"; exit 1; }
	@set -e; for FREEBSD_TARGET in x86_64-unknown-freebsd14 aarch64-unknown-freebsd14; do \
		echo "== $$FREEBSD_TARGET"; \
		$(FREEBSD_SYNTAX) $(FREEBSD_SHIM_SRCS); \
		$(FREEBSD_SYNTAX) -DRT_LIBC_BUILD $(FREEBSD_SHIM_SRCS); \
		$(FREEBSD_SYNTAX) -DRT_LIBC_BUILD -DRT_NO_NS_HOOKS libcshim/freebsd/rt_hooks_freebsd.c; \
	done

test-go: build
	$(NEED_GO)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

demo: build ## Trace a multi-process workload under restrack and print one AP's migration plan
	./scripts/demo/demo.sh $(BUILD)

demo-fleet: build ## Three simulated hosts share an sshfs export, publish to PostgreSQL, one plan across them (root)
	./scripts/demo/fleet.sh $(BUILD)

C_TESTS := $(patsubst libcshim/tests/%_test.c,$(BUILD)/ctest/%_test,$(wildcard libcshim/tests/*_test.c))

test-c: $(C_TESTS) ## C unit tests of the producer and the shim
	@set -e; for t in $(C_TESTS); do echo "== $$t"; $$t; done

$(BUILD)/ctest/%_test: libcshim/tests/%_test.c $(SHIM_SRCS) $(SHIM_HDRS) # the tests include the sources
	@mkdir -p $(BUILD)/ctest
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -pthread -Ilibcshim -o $@ $< libcshim/ring_producer.c

BENCH_WORKLOADS := $(BUILD)/openloop $(BUILD)/openloop-lttng $(BUILD)/fiforeader $(BUILD)/scanloop $(BUILD)/ring_append
BENCH_FLAGS ?= # extra restrack-bench flags, e.g. BENCH_FLAGS="-parts overhead -modes ring,lttng"

bench: build $(BENCH_WORKLOADS) bench-ring bench-fleet ## The whole benchmark suite (< 12 min): overhead tables, whole workloads under restrack run (openloop, process starts, pipelines, 1.5 M-file scan, make -j2 of GNU hello), scale, ingest, planner curve; plots into docs/
	$(BUILD)/restrack-bench -bin $(BUILD) -out $(BUILD)/bench -plots docs $(BENCH_FLAGS)

FLEETBENCH_FLAGS ?= # e.g. FLEETBENCH_FLAGS="-hosts 10 -accesses 5000"
bench-fleet: build ## Fleet database: 100 hosts × 20 k accesses published into one PostgreSQL; a fleet plan beside a local one
	$(BUILD)/restrack-fleetbench $(FLEETBENCH_FLAGS)

bench-quick: build $(BENCH_WORKLOADS) ## The suite reduced (< 1 min), a smoke test that asserts nothing about speed
	$(BUILD)/restrack-bench -quick -bin $(BUILD) -out $(BUILD)/bench $(BENCH_FLAGS)
	$(BUILD)/restrack-fleetbench -quick

$(BUILD)/openloop: bench/workload/openloop.c
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o $@ $<

$(BUILD)/fiforeader: bench/workload/fiforeader.c
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/scanloop: bench/workload/scanloop.c
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

# The LTTng variant needs liblttng-ust-dev; without it the lttng mode is
# skipped (the suite says so) rather than failing the build.
$(BUILD)/openloop-lttng: bench/workload/openloop.c bench/workload/tp.c bench/workload/tp.h
	@mkdir -p $(BUILD)
	@if echo '#include <lttng/tracepoint.h>' | $(CC) -E -x c - >/dev/null 2>&1; then \
		echo "$(CC) ... -DWITH_LTTNG -o $@ ... -llttng-ust"; \
		$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -DWITH_LTTNG -Ibench/workload -o $@ bench/workload/openloop.c bench/workload/tp.c -llttng-ust -ldl; \
	else echo "bench: liblttng-ust-dev is not installed: the lttng mode will be skipped (scripts/setup-debian.sh installs it)"; rm -f $@; fi

# The suite's append part runs it too (contended append, issue 12 §4).
$(BUILD)/ring_append: bench/ringbench/ring_append.c libcshim/ring_producer.c $(SHIM_HDRS)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -pthread -Ilibcshim -o $@ bench/ringbench/ring_append.c libcshim/ring_producer.c

bench-ring: $(BUILD)/ring_append ## Ring micro-benchmarks: C append ns, Go drain throughput
	$(BUILD)/ring_append
	$(GO) test -run '^$$' -bench . -benchtime 2s ./ring/

generate: ## Regenerate generated code: ops table from ring_abi.h; the eBPF object (needs clang)
	cd ring && $(GO) generate ./...
	cd collector/ebpf && $(GO) generate ./...

clean: ## Remove build/
	rm -rf $(BUILD)

PREFIX ?= /usr/local
DESTDIR ?=
install: build ## Install restrack, the collector, the shim, man pages and bash/zsh completion under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/restrack $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 0755 $(BUILD)/restrack $(BUILD)/collector $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BUILD)/librestrack.so $(DESTDIR)$(PREFIX)/lib/restrack/
	$(BUILD)/restrack man $(DESTDIR)$(PREFIX)/share/man/man1
	$(BUILD)/restrack completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/restrack
	$(BUILD)/restrack completion zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_restrack
	@echo "installed under $(DESTDIR)$(PREFIX): bin/restrack finds its shim in lib/restrack/"

print-go: ## Which go make uses (and the version it stamps)
	@echo "GO=$(GO) VERSION=$(VERSION)"

SOAK_MINUTES ?= 30
soak: build ## Long run, not in CI (root): services of three uids, the collector killed and restarted; received + dropped = produced per uid
	SOAK_MINUTES=$(SOAK_MINUTES) ./scripts/soak.sh $(BUILD)

coverage: build ## Not in CI: real programs (python multiprocessing, git, a C build, node) under restrack and strace -f at once; covered/total per program
	python3 scripts/coverage-real.py

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## /\1\t/' | column -t -s $$'\t'
