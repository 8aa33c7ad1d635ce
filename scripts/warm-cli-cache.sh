#!/usr/bin/env bash
# Writes the V8 code cache for build/vkernel.js from a real `vkernel run` (so the cache
# holds the functions a container start compiles, not just argument parsing). Needs root
# and the fixture rootfs; without them it warms from `vkernel features` only.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f build/vkernel.js.*.cache
work=$(mktemp -d /tmp/vkernel-warm.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ "$(id -u)" -eq 0 ] && [ -d build/fixtures/rootfs ]; then
  mkdir -p "$work/bundle"
  node -e '
    const fs = require("fs");
    const s = JSON.parse(fs.readFileSync("bench/true-config.json", "utf8"));
    s.root = { path: process.argv[1], readonly: true };
    fs.writeFileSync(process.argv[2], JSON.stringify(s));
  ' "$PWD/build/fixtures/rootfs" "$work/bundle/config.json"
  node build/vkernel-launch.js --root "$work/state" run --bundle "$work/bundle" "vkernel-warm-$$" >/dev/null
else
  node build/vkernel-launch.js features >/dev/null
fi
