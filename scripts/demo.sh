#!/usr/bin/env bash
# From a fresh clone on a fresh Debian 12 machine to a container under containerd with
# vkernel: installs the dependencies (scripts/install-deps.sh: quick when they are there),
# builds vkernel and its busybox image, installs it (make install, PREFIX default
# /usr/local), uses the running containerd (CONTAINERD_ADDRESS, default
# /run/containerd/containerd.sock) or starts a private one on its own socket when none
# answers, imports the image and runs a container limited to 256 MiB and half a CPU with
# io.containerd.vkernel.v2 through the installed shim, printing what it sees (CPUs,
# memory, uptime) next to the host's values. ctr gets the runtime name when containerd finds
# the installed shim on its PATH (the private containerd is started with $PREFIX/bin on it;
# systemd's has /usr/local/bin), else the shim's absolute path, with a note.
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
RUNTIME=io.containerd.vkernel.v2
SHIM="$PREFIX/bin/containerd-shim-vkernel-v2"   # the installed shim
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
  # $PREFIX/bin on its PATH: containerd finds $RUNTIME there as containerd-shim-vkernel-v2.
  PATH="$PREFIX/bin:$PATH" VKERNEL_SHIM_MANAGER_AUTOSTART=0 containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  own_pid=$!
  for _ in $(seq 100); do ctr -a "$ADDRESS" version >/dev/null 2>&1 && break; sleep 0.1; done
fi

# The pid of the containerd listening at $1: the socket's inode in /proc/net/unix (flags
# 00010000: listening), then the containerd process holding it.
containerd_pid() {
  local inode pid
  inode=$(awk -v p="$1" '$8 == p && $4 == "00010000" { print $7; exit }' /proc/net/unix)
  [ -n "$inode" ] || return 1
  for pid in $(pgrep -x containerd); do
    if [ -n "$(find "/proc/$pid/fd" -lname "socket:\[$inode\]" 2>/dev/null | head -n1)" ]; then echo "$pid"; return 0; fi
  done
  return 1
}

# Whether containerd (pid $1) starts the installed shim for the runtime name: it runs the first
# containerd-shim-vkernel-v2 on its PATH, else the one next to its own binary. Its PATH comes
# from /proc/<pid>/environ; when that is unreadable, a systemd service's default PATH (which
# has /usr/local/bin) is assumed for a containerd.service only. Prints why not, on failure.
finds_shim() {
  local pid=$1 env_path dir exe
  if env_path=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null); then
    env_path=$(sed -n 's/^PATH=//p' <<<"$env_path")
  elif grep -q '/containerd\.service$' "/proc/$pid/cgroup" 2>/dev/null; then
    env_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  else
    echo "cannot read the PATH of containerd (pid $pid)"; return 1
  fi
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  local IFS=:
  for dir in $env_path ${exe:+"${exe%/*}"}; do
    [ -n "$dir" ] && [ -x "$dir/containerd-shim-vkernel-v2" ] || continue
    [ "$dir/containerd-shim-vkernel-v2" -ef "$SHIM" ] && return 0
    echo "containerd (pid $pid) would run $dir/containerd-shim-vkernel-v2, not the installed $SHIM"; return 1
  done
  echo "containerd (pid $pid) does not find containerd-shim-vkernel-v2 on its PATH ($env_path)"; return 1
}

runtime=$SHIM
if pid=$(containerd_pid "$ADDRESS"); then
  if why=$(finds_shim "$pid"); then runtime=$RUNTIME; fi
else
  why="no containerd process found listening at $ADDRESS"
fi
[ "$runtime" = "$RUNTIME" ] || echo "note: $why: running with the shim's absolute path instead of $RUNTIME"

ctr -a "$ADDRESS" -n "$NS" images import build/fixtures/busybox-oci.tar >/dev/null
echo "host:      cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online) mem=$(awk '/MemTotal/{print $2}' /proc/meminfo) kB uptime=$(cut -d' ' -f1 /proc/uptime)s"
step "run (ctr run --rm --runtime $runtime --memory-limit 268435456 --cpus 0.5)"
ctr -a "$ADDRESS" -n "$NS" run --rm --runtime "$runtime" --memory-limit 268435456 --cpus 0.5 \
  docker.io/library/vkernel-busybox:test vkernel-demo \
  sh -c 'echo "container: cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online) mem=$(awk "/MemTotal/{print \$2}" /proc/meminfo) kB uptime=$(cut -d" " -f1 /proc/uptime)s"'
