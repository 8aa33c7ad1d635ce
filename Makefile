# vkernel build. `make` builds the TypeScript (dist/) and the C parts (build/).
.DEFAULT_GOAL := all
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= gcc
CFLAGS ?= -O2 -g -Wall -Wextra -Werror=implicit-function-declaration -D_GNU_SOURCE
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib/vkernel

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
# The installed launcher: no package root baked in, it finds it from its own path
# (<LIBDIR>/build/containerd-shim-vkernel-v2, symlinks resolved), so a tree staged with
# DESTDIR or copied elsewhere runs where it lands. build/install-node records INSTALL_NODE.
build/containerd-shim-vkernel-v2.install: shim/launcher/launcher.c build/install-node
	@mkdir -p build
	$(CC) $(CFLAGS) $(filter-out -DVK_NODE=%,$(LAUNCHER_FLAGS)) -DVK_NODE='"$(INSTALL_NODE)"' -o $@ $<
build/install-node: FORCE
	@mkdir -p build
	@echo '$(INSTALL_NODE)' > $@.tmp; cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
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

# `make install` puts a self-contained copy under $(LIBDIR) and two entry points in $(BINDIR):
#   $(LIBDIR)/build/   the bundled CLI (vkernel.js, its loader and V8 code cache), the native
#                      helpers runtime/paths.ts buildPath() names (vkinit, vkseccomp, vkfs,
#                      vkagent) and vknative.node, the shim launcher, the revision (the
#                      ELF files without debug info, so nothing names the build tree)
#   $(LIBDIR)/dist/    the compiled cmd, runtime, shim and proto modules (the shim's cold
#                      path, daemon and manager run from there)
#   $(LIBDIR)/proto/bundle.json, package.json, node_modules/ (production dependencies: the
#                      tested tree, pruned offline, so no registry is needed)
#   $(BINDIR)/vkernel  a sh wrapper running the CLI with $(INSTALL_NODE)
#   $(BINDIR)/containerd-shim-vkernel-v2 -> (relative symlink) $(LIBDIR)/build/containerd-shim-vkernel-v2
# Neither the caller's PATH nor cwd matters: node's absolute path is baked in (VKERNEL_NODE
# overrides it). Nor does the location: both entry points find $(LIBDIR) relative to
# themselves, so a DESTDIR-staged tree, or one copied elsewhere with its symlinks (cp -a,
# deploy/installer), runs where it lands; the wrapper falls back to $(LIBDIR) when the
# relative path does not hold. build/vktest and the fixtures are test-only: not installed.
INSTALL_NODE ?= $(NODE)
BIN_TO_LIB = $(shell realpath -m --relative-to=$(BINDIR) $(LIBDIR))
define VKERNEL_WRAPPER
#!/bin/sh
# vkernel (installed by make install): the bundled CLI under node, found from this script.
lib="$${0%/*}/$(BIN_TO_LIB)"
if [ ! -f "$$lib/build/vkernel-launch.js" ]; then
  self="$$(readlink -f -- "$$0" 2>/dev/null)" && lib="$${self%/*}/$(BIN_TO_LIB)"
  [ -f "$$lib/build/vkernel-launch.js" ] || lib="$(LIBDIR)"
fi
node="$${VKERNEL_NODE:-$(INSTALL_NODE)}"
case "$$node" in */*) [ -x "$$node" ] ;; *) command -v "$$node" >/dev/null ;; esac || {
  echo "vkernel: cannot run node: $$node is not an executable; set VKERNEL_NODE to a Node.js (>= 20) binary, or reinstall vkernel (make install INSTALL_NODE=/path/to/node)" >&2
  exit 127
}
exec "$$node" "$$lib/build/vkernel-launch.js" "$$@"
endef
export VKERNEL_WRAPPER
CHECK_INSTALL_DIRS = @case "$(LIBDIR):$(BINDIR):$(INSTALL_NODE)" in /?*:/?*:/?*) ;; \
	*) echo "make: LIBDIR, BINDIR and INSTALL_NODE must be absolute paths ('$(LIBDIR)', '$(BINDIR)', '$(INSTALL_NODE)')" >&2; exit 1;; esac

# The code cache installed is the one `make fixtures` warmed with a real run when it is
# current, else one written now by a `features` run of the installed copy.
INSTALL_FROM_BUILD = vkinit vkseccomp vkfs vkagent vkernel-launch.js vknative.node vkernel.js revision
install: all build/containerd-shim-vkernel-v2.install
	$(CHECK_INSTALL_DIRS)
	@for f in $(INSTALL_FROM_BUILD); do [ -e build/$$f ] || { echo "make install: build/$$f is missing (run make)" >&2; exit 1; }; done
	rm -rf $(DESTDIR)$(LIBDIR)/dist $(DESTDIR)$(LIBDIR)/build $(DESTDIR)$(LIBDIR)/node_modules
	install -d $(DESTDIR)$(LIBDIR)/build $(DESTDIR)$(LIBDIR)/dist $(DESTDIR)$(BINDIR)
	cp -r dist/cmd dist/runtime dist/shim dist/proto $(DESTDIR)$(LIBDIR)/dist/
	find $(DESTDIR)$(LIBDIR)/dist -name '*.map' -delete
	install -m 0644 package.json package-lock.json $(DESTDIR)$(LIBDIR)/
	install -D -m 0644 proto/bundle.json $(DESTDIR)$(LIBDIR)/proto/bundle.json
	cp -a node_modules $(DESTDIR)$(LIBDIR)/
	cd $(DESTDIR)$(LIBDIR) && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error
	find $(DESTDIR)$(LIBDIR)/node_modules -type d -empty -delete
	install -m 0755 $(addprefix build/,$(filter-out vknative.node vkernel.js revision,$(INSTALL_FROM_BUILD))) $(DESTDIR)$(LIBDIR)/build/
	install -m 0644 build/vknative.node build/vkernel.js build/revision $(DESTDIR)$(LIBDIR)/build/
	install -m 0644 build/libvkpreload.so $(DESTDIR)$(LIBDIR)/build/
	install -m 0755 build/containerd-shim-vkernel-v2.install $(DESTDIR)$(LIBDIR)/build/containerd-shim-vkernel-v2
	for f in $(DESTDIR)$(LIBDIR)/build/*; do [ "$$(od -An -c -N4 "$$f" | tr -d ' ')" != '177ELF' ] || strip --strip-debug "$$f"; done
	if ls build/vkernel.js.*.cache >/dev/null 2>&1; then install -m 0644 build/vkernel.js.*.cache $(DESTDIR)$(LIBDIR)/build/; \
	else $(NODE) $(DESTDIR)$(LIBDIR)/build/vkernel-launch.js features >/dev/null; fi
	printf '%s\n' "$$VKERNEL_WRAPPER" > $(DESTDIR)$(BINDIR)/vkernel
	chmod 0755 $(DESTDIR)$(BINDIR)/vkernel
	ln -sfn $(BIN_TO_LIB)/build/containerd-shim-vkernel-v2 $(DESTDIR)$(BINDIR)/containerd-shim-vkernel-v2

# A shim manager started from this install exits by itself once its files are gone.
uninstall:
	$(CHECK_INSTALL_DIRS)
	rm -rf $(DESTDIR)$(LIBDIR)
	rm -f $(DESTDIR)$(BINDIR)/vkernel $(DESTDIR)$(BINDIR)/containerd-shim-vkernel-v2

clean:
	rm -rf dist build
