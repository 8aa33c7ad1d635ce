#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running container: installs the dependencies, builds
# vkernel and its busybox test image, then runs a container with `vkernel run` that prints
# what it sees next to the host's values.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
make all fixtures >/dev/null

work=$(mktemp -d /tmp/vkernel-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
node dist/cmd/vkernel.js spec --bundle "$work/bundle"
node -e '
  const fs = require("fs"); const f = process.argv[1];
  const s = JSON.parse(fs.readFileSync(f, "utf8"));
  s.root = { path: process.argv[2], readonly: true };
  s.process.terminal = false;
  s.process.args = ["sh", "-c", "echo \"container $(hostname): cpus=$(nproc) mem=$(free -m | awk \"/Mem/{print \\$2}\")MiB uptime=$(cut -d\" \" -f1 /proc/uptime)s\""];
  s.linux.resources = { ...(s.linux.resources || {}), memory: { limit: 268435456 }, cpu: { quota: 50000, period: 100000 } };
  fs.writeFileSync(f, JSON.stringify(s, null, 2));
' "$work/bundle/config.json" "$PWD/build/fixtures/rootfs"
echo "host: cpus=$(nproc) mem=$(free -m | awk '/Mem/{print $2}')MiB uptime=$(cut -d' ' -f1 /proc/uptime)s"
node dist/cmd/vkernel.js --root "$work/state" run --bundle "$work/bundle" "vkernel-demo-$$"
