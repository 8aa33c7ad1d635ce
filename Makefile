# vkernel build. `make` builds the TypeScript (dist/) and the C parts (build/).
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= gcc
CFLAGS ?= -O2 -g -Wall -Wextra -Werror=implicit-function-declaration -D_GNU_SOURCE
LIBDIR = $(PREFIX)/lib/vkernel

NODE ?= $(shell command -v node)
LAUNCHER_FLAGS = -DVK_NODE='"$(NODE)"' -DVK_MANAGER_SOCKET='"/run/vkernel/shim-manager.sock"'

INIT_SRCS := $(wildcard runtime/init/*.c)
INIT_HDRS := $(wildcard runtime/init/*.h)

# Regenerates proto/bundle.json and proto/types.ts from proto/*.proto (both committed).
.PHONY: proto
proto: | node_modules
	npx tsc -p proto/tsconfig.json
	node dist/proto/generate.js

.PHONY: all ts native bundle fixtures test test-unit test-integration test-shim-protocols bench install uninstall clean

all: ts native bundle

# One bundled file per entry point: a single compile instead of ~150 module loads on
# every `vkernel` exec (see bench/). Lazy requires inside handlers stay lazy.
bundle: build/vkernel.js build/vkernel-launch.js
build/vkernel.js: ts
	@mkdir -p build
	npx esbuild dist/cmd/vkernel-main.js --bundle --platform=node --target=node20 --outfile=$@ --log-level=warning
	rm -f build/vkernel.js.*.cache
build/vkernel-launch.js: cmd/launch/cached-loader.js
	install -m 0755 $< $@

ts: | node_modules
	npx tsc -p tsconfig.json

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

native: build/vkinit build/vktest build/vknative.node build/vkseccomp build/vkfs build/vkagent build/libvkpreload.so build/containerd-shim-vkernel-v2 build/revision

VKFS_SRCS := $(wildcard runtime/vkernel/vkfs/*.c)
VKFS_HDRS := $(wildcard runtime/vkernel/vkfs/*.h)
# vkfs: the per-container FUSE view of /proc and /sys (runtime/vkernel/view.ts).
build/vkfs: $(VKFS_SRCS) $(VKFS_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -Wno-format-truncation $(shell pkg-config --cflags fuse3) -o $@ $(VKFS_SRCS) $(shell pkg-config --libs fuse3)

# vkagent: the syscall supervisor (seccomp user notification); shares the cgroup rules with vkfs.
VKAGENT_SRCS := runtime/vkernel/agent/vkagent.c runtime/vkernel/agent/trace.c runtime/vkernel/vkfs/util.c runtime/vkernel/vkfs/conf.c runtime/vkernel/vkfs/cgroup.c
build/vkagent: $(VKAGENT_SRCS) $(VKFS_HDRS) runtime/vkernel/agent/agent.h
	@mkdir -p build
	$(CC) $(CFLAGS) -Wno-format-truncation -o $@ $(VKAGENT_SRCS) -lm

# libvkpreload: the LD_PRELOAD fallback (dynamic glibc binaries): sysinfo, sched_getaffinity,
# get_nprocs(_conf) from the container's view files.
build/libvkpreload.so: runtime/vkernel/preload/vkpreload.c
	@mkdir -p build
	$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

# The binary containerd runs: forwards the action to the shim manager, or execs the Node
# cold path when none answers. No logic of its own; node and the package root are baked in.
build/containerd-shim-vkernel-v2: shim/launcher/launcher.c
	@mkdir -p build
	$(CC) $(CFLAGS) $(LAUNCHER_FLAGS) -DVK_PKGROOT='"$(CURDIR)"' -o $@ $<
build/containerd-shim-vkernel-v2.install: shim/launcher/launcher.c
	@mkdir -p build
	$(CC) $(CFLAGS) $(LAUNCHER_FLAGS) -DVK_PKGROOT='"$(LIBDIR)"' -o $@ $<
# The revision shown by -v and -info.
build/revision: FORCE
	@mkdir -p build
	@git rev-parse --short=12 HEAD 2>/dev/null > $@.tmp || : > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
.PHONY: FORCE

# seccomp profile compiler: flat plan on stdin -> BPF on stdout (runtime/seccomp/compile.ts)
build/vkseccomp: runtime/seccomp/vkseccomp.c
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $< -lseccomp

# Node-API addon for the syscalls Node lacks (fd passing, subreaper, waitpid, mkfifo, winsize).
NAPI_INCLUDE = node_modules/node-api-headers/include
build/vknative.node: runtime/native/vknative.c | node_modules
	@mkdir -p build
	$(CC) $(CFLAGS) -shared -fPIC -fvisibility=hidden -I$(NAPI_INCLUDE) -o $@ $<

build/vkinit: $(INIT_SRCS) $(INIT_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $(INIT_SRCS)

# The test payload runs inside test containers: static, so any rootfs can hold it.
build/vktest: test/payload/vktest.c
	@mkdir -p build
	$(CC) $(CFLAGS) -static -o $@ $<

# The busybox OCI image and rootfs used by tests, README and benchmarks (offline).
fixtures: all
	node dist/test/fixtures/build-image.js --out build/fixtures
	./scripts/warm-cli-cache.sh

# Two jest passes: everything (the shim negotiates its protocol: gRPC with containerd 1.7),
# then the containerd 1.7 shim suites again with ttrpc forced (docs/protocol.md). The last
# line is the plain 'N passed, N failed, N skipped' summary of both.
SHIM_PROTOCOL_SUITES = dist/test/integration/shim-(ctr|grpc)
test: all fixtures
	rm -f build/jest-results*.json
	npx jest --ci --json --outputFile=build/jest-results.json; rc=$$?; \
	VKERNEL_TEST_SHIM_PROTOCOL=ttrpc npx jest --ci --json --outputFile=build/jest-results-ttrpc.json \
	  --selectProjects integration --testPathPattern '$(SHIM_PROTOCOL_SUITES)' || rc=1; \
	node scripts/test-summary.js build/jest-results.json build/jest-results-ttrpc.json || rc=1; exit $$rc

test-unit: all
	npx jest --ci --selectProjects unit

test-integration: all fixtures
	npx jest --ci --selectProjects integration

# The shim's containerd integration suites once per shim protocol (docs/protocol.md): gRPC as
# negotiated with containerd 1.7, then ttrpc forced (VKERNEL_TEST_SHIM_PROTOCOL).
test-shim-protocols: all fixtures
	VKERNEL_TEST_SHIM_PROTOCOL=grpc npx jest --ci --selectProjects integration --testPathPattern '$(SHIM_PROTOCOL_SUITES)'
	VKERNEL_TEST_SHIM_PROTOCOL=ttrpc npx jest --ci --selectProjects integration --testPathPattern '$(SHIM_PROTOCOL_SUITES)'

bench: all fixtures
	node dist/bench/run.js
	node dist/bench/vkernel-files.js
	node dist/bench/shim.js
	node dist/bench/shim-grpc.js
	node dist/bench/vkernel-syscalls.js

# Installs a self-contained copy under $(LIBDIR): the bundled CLI with its code cache, the
# native helpers, and node_modules for the parts loaded outside the bundle. The node
# binary's absolute path is baked into the wrapper so containerd's PATH does not matter.
install: all build/containerd-shim-vkernel-v2.install
	install -d $(DESTDIR)$(LIBDIR)/build $(DESTDIR)$(PREFIX)/bin
	cp -r dist package.json package-lock.json $(DESTDIR)$(LIBDIR)/
	install -D -m 0644 proto/bundle.json $(DESTDIR)$(LIBDIR)/proto/bundle.json
	cd $(DESTDIR)$(LIBDIR) && npm ci --omit=dev --no-audit --no-fund --loglevel=error
	install -m 0755 build/vkinit build/vkseccomp build/vkfs build/vkagent $(DESTDIR)$(LIBDIR)/build/
	install -m 0644 build/vknative.node build/vkernel.js $(DESTDIR)$(LIBDIR)/build/
	install -m 0644 build/libvkpreload.so $(DESTDIR)$(LIBDIR)/build/
	install -m 0755 build/vkernel-launch.js $(DESTDIR)$(LIBDIR)/build/
	printf '#!/bin/sh\nexec %s %s/build/vkernel-launch.js "$$@"\n' "$(NODE)" "$(LIBDIR)" > $(DESTDIR)$(PREFIX)/bin/vkernel
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/vkernel
	install -m 0644 build/revision $(DESTDIR)$(LIBDIR)/build/
	install -m 0755 build/containerd-shim-vkernel-v2.install $(DESTDIR)$(PREFIX)/bin/containerd-shim-vkernel-v2

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PREFIX)/bin/vkernel $(DESTDIR)$(PREFIX)/bin/containerd-shim-vkernel-v2

clean:
	rm -rf dist build
