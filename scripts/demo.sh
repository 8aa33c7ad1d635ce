#!/usr/bin/env bash
# From a fresh clone on a fresh Debian 12 machine to a container under containerd with
# vkernel: installs the dependencies (scripts/install-deps.sh: quick when they are there),
# builds vkernel and its busybox image, installs it (make install, PREFIX default
# /usr/local), uses the running containerd (CONTAINERD_ADDRESS, default
# /run/containerd/containerd.sock) or starts a private one on its own socket when none
# answers, imports the image and runs a container limited to 256 MiB and half a CPU with
# io.containerd.vkernel.v2 through the installed shim, printing what it sees (CPUs,
# memory, uptime) next to the host's values.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
step() { echo "== $*" >&2; }

step "dependencies (scripts/install-deps.sh)"
./scripts/install-deps.sh
step "build (make, make fixtures)"
make all fixtures >/dev/null
# -o all: install what was just built (a rebuild would drop the code cache fixtures warmed).
step "install (make install PREFIX=$PREFIX)"
make -o all install PREFIX="$PREFIX" >/dev/null

ADDRESS=${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
NS=vkernel-demo
SHIM="$PREFIX/bin/containerd-shim-vkernel-v2"   # the installed shim; ctr takes an absolute path (containerd >= 1.6)
work=$(mktemp -d /tmp/vkernel-demo.XXXXXX)
own_pid=
cleanup() {
  ctr -a "$ADDRESS" -n "$NS" task kill -s KILL vkernel-demo >/dev/null 2>&1 || true
  ctr -a "$ADDRESS" -n "$NS" container rm vkernel-demo >/dev/null 2>&1 || true
  if [ -n "$own_pid" ]; then
    ctr -a "$ADDRESS" -n "$NS" images rm docker.io/library/vkernel-busybox:test >/dev/null 2>&1 || true
    kill "$own_pid" 2>/dev/null && wait "$own_pid" 2>/dev/null || true
    umount -R "$work/root" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! ctr -a "$ADDRESS" version >/dev/null 2>&1; then
  echo "no containerd answers at $ADDRESS: starting a private one under $work"
  ADDRESS="$work/containerd.sock"
  cat > "$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ADDRESS"
[ttrpc]
  address = "$ADDRESS.ttrpc"
TOML
  # A demo leaves no warm shim manager behind (it would idle out after 30 minutes).
  VKERNEL_SHIM_MANAGER_AUTOSTART=0 containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  own_pid=$!
  for _ in $(seq 100); do ctr -a "$ADDRESS" version >/dev/null 2>&1 && break; sleep 0.1; done
fi

ctr -a "$ADDRESS" -n "$NS" images import build/fixtures/busybox-oci.tar >/dev/null
echo "host:      cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online) mem=$(awk '/MemTotal/{print $2}' /proc/meminfo) kB uptime=$(cut -d' ' -f1 /proc/uptime)s"
ctr -a "$ADDRESS" -n "$NS" run --rm --runtime "$SHIM" --memory-limit 268435456 --cpus 0.5 \
  docker.io/library/vkernel-busybox:test vkernel-demo \
  sh -c 'echo "container: cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online) mem=$(awk "/MemTotal/{print \$2}" /proc/meminfo) kB uptime=$(cut -d" " -f1 /proc/uptime)s"'
