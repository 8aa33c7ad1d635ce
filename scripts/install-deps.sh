#!/usr/bin/env bash
# Installs everything vkernel needs to build and test on Debian 12: the C toolchain and
# libraries, the peer runtimes the tests compare against, and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" -eq 0 ] || { echo "install-deps: run as root (apt-get)" >&2; exit 1; }; }

PKGS=(
  build-essential libc6-dev pkg-config   # vkinit, the static test payload
  libseccomp-dev libcap-dev              # seccomp filters
  libfuse3-dev fuse3                     # the vkernel /proc view
  busybox-static                         # the test image's userland
  runc crun                              # peer runtimes: tests run against them too, benchmarks compare
  containerd                             # the shim's peer (1.6 on bookworm)
  procps iproute2 hyperfine              # ps for `vkernel ps`, network namespaces, benchmarks
  podman conmon                          # `podman --runtime vkernel` is tested
  containernetworking-plugins            # CRI test: bridge + host-local pod network
  python3                                # vkernel view test: a real runtime reads the container's CPUs
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# containerd 1.7 (trixie) side by side with bookworm's 1.6, for the shim's tests.
./scripts/install-containerd17.sh >/dev/null

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: vkernel needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "  Debian 12 ships Node.js 18. Install 20 from NodeSource (the 'nodejs' 20.x package) or from" >&2
  echo "  Debian trixie ('apt-get install -t trixie nodejs', which also upgrades libc6), then run this again." >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
