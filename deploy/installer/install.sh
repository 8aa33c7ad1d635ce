#!/bin/sh
# vkernel node installer: what the vkernel-installer DaemonSet (deploy/installer/daemonset.yaml)
# runs on every node, as kata-deploy does for Kata Containers. docs/kubernetes.md.
#
#   install.sh install     copy the payload to the host, register the runtime with containerd,
#                          restart containerd, label the node; then wait (the pod keeps running)
#   install.sh uninstall   the reverse (the DaemonSet's preStop hook)
#   install.sh install --once   install and exit (no waiting)
#
# The payload is a `make install` tree made for the host path $INSTALL_DIR (deploy/installer/build-image.sh
# stages it for the image, deploy/installer/Containerfile):
#   make install DESTDIR=$PAYLOAD PREFIX=/opt/vkernel INSTALL_NODE=/opt/vkernel/bin/node
#   install -m 0755 "$(command -v node)" $PAYLOAD/opt/vkernel/bin/node
# The installed tree finds its files relative to itself, and node at INSTALL_NODE.
#
# Environment (defaults for the DaemonSet):
#   HOST_ROOT=/host            where the host's filesystem paths below are mounted
#   PAYLOAD=/opt/vkernel-artifacts   the DESTDIR tree in the image
#   INSTALL_DIR=/opt/vkernel   host path of the install (must match the payload's PREFIX)
#   SHIM_LINK_DIR=/usr/local/bin     host dir on containerd's PATH for the shim symlink ("" = none)
#   CONTAINERD_CONFIG=/etc/containerd/config.toml   host path of containerd's config
#   CONTAINERD_VERSION=        e.g. 1.7; empty: `vkernel containerd-config` asks containerd's socket
#   CONTAINERD_ADDRESS=/run/containerd/containerd.sock   (in this container)
#   RESTART=systemctl          how containerd is restarted: systemctl (in the host's namespaces
#                              via nsenter, needs hostPID) or none
#   CHECK=host                 run `vkernel check` in the host's namespaces first; none = skip
#   NODE_NAME=                 (downward API) the node to label; empty = no label
#   NODE_LABEL=io.vkernel/runtime=true   the label the RuntimeClass's nodeSelector selects
set -eu

HOST_ROOT=${HOST_ROOT-/host}
PAYLOAD=${PAYLOAD:-/opt/vkernel-artifacts}
INSTALL_DIR=${INSTALL_DIR:-/opt/vkernel}
SHIM_LINK_DIR=${SHIM_LINK_DIR-/usr/local/bin}
CONTAINERD_CONFIG=${CONTAINERD_CONFIG:-/etc/containerd/config.toml}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-}
CONTAINERD_ADDRESS=${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
RESTART=${RESTART:-systemctl}
CHECK=${CHECK:-host}
NODE_NAME=${NODE_NAME:-}
NODE_LABEL=${NODE_LABEL:-io.vkernel/runtime=true}

SHIM=containerd-shim-vkernel-v2
BEGIN='# >>> vkernel: added by deploy/installer/install.sh, removed by its uninstall'
END='# <<< vkernel'
dest="$HOST_ROOT$INSTALL_DIR"
config="$HOST_ROOT$CONTAINERD_CONFIG"

log() { echo "vkernel-installer: $*" >&2; }
die() { log "error: $*"; exit 1; }

on_host() { nsenter --target 1 --mount --uts --ipc --net --pid -- "$@"; }

# The installed vkernel, run in this container with the payload's node.
vkernel() { VKERNEL_NODE="$dest/bin/node" "$dest/bin/vkernel" "$@"; }

copy_payload() {
  [ -x "$PAYLOAD$INSTALL_DIR/bin/vkernel" ] || die "no payload at $PAYLOAD$INSTALL_DIR (see the header of $0)"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest.new" "$dest.old"
  cp -a "$PAYLOAD$INSTALL_DIR" "$dest.new"
  # Swap in one rename each: running shims keep the files they have open.
  if [ -e "$dest" ]; then mv "$dest" "$dest.old"; fi
  mv "$dest.new" "$dest"
  rm -rf "$dest.old"
  if [ -n "$SHIM_LINK_DIR" ]; then
    mkdir -p "$HOST_ROOT$SHIM_LINK_DIR"
    ln -sfn "$INSTALL_DIR/bin/$SHIM" "$HOST_ROOT$SHIM_LINK_DIR/$SHIM"
  fi
  log "installed $INSTALL_DIR ($(vkernel --version | head -n1))"
}

# Removes our block (BEGIN..END lines) from the config, in place.
remove_block() {
  [ -f "$config" ] || return 0
  grep -qxF "$BEGIN" "$config" || return 0
  awk -v b="$BEGIN" -v e="$END" '$0 == b { skip = 1; next } skip && $0 == e { skip = 0; next } !skip' "$config" > "$config.vkernel.tmp"
  cat "$config.vkernel.tmp" > "$config" # keep the file's inode, owner and mode
  rm -f "$config.vkernel.tmp"
}

# containerd 1.x reads a config without `version = 2` as version 1, where the plugin names differ.
check_config() {
  if [ -s "$config" ] && ! grep -Eq '^[[:space:]]*version[[:space:]]*=[[:space:]]*[23]' "$config"; then
    die "$CONTAINERD_CONFIG has no 'version = 2' (or 3) line: a version 1 config; migrate it first (containerd config migrate)"
  fi
}

register() {
  remove_block
  snippet=$(vkernel containerd-config --containerd-config "$config" --address "$CONTAINERD_ADDRESS" ${CONTAINERD_VERSION:+--version "$CONTAINERD_VERSION"}) ||
    die "vkernel containerd-config failed (set CONTAINERD_VERSION, or mount containerd's socket at $CONTAINERD_ADDRESS)"
  mkdir -p "$(dirname "$config")"
  if [ ! -s "$config" ]; then
    case "$snippet" in
      *io.containerd.cri.v1.runtime*) echo 'version = 3' > "$config" ;;
      *) echo 'version = 2' > "$config" ;;
    esac
  fi
  if [ -n "$(tail -c1 "$config")" ]; then echo >> "$config"; fi # end the last line
  { echo "$BEGIN"; echo "$snippet"; echo "$END"; } >> "$config"
  log "registered the vkernel handler in $CONTAINERD_CONFIG"
}

restart_containerd() {
  case "$RESTART" in
    none) log "not restarting containerd (RESTART=none): restart it for the config to take effect" ;;
    systemctl) on_host systemctl restart containerd && log "restarted containerd" ;;
    *) die "RESTART must be systemctl or none (got '$RESTART')" ;;
  esac
}

label() {
  [ -n "$NODE_NAME" ] || { log "NODE_NAME is empty: not labelling the node"; return 0; }
  kubectl label node "$NODE_NAME" "$1" --overwrite >/dev/null && log "node $NODE_NAME: label $1"
}

install() {
  check_config
  copy_payload
  if [ "$CHECK" = host ]; then
    # The host preflight, with the host's kernel, cgroups and libraries (libfuse3, libseccomp).
    on_host "$INSTALL_DIR/bin/vkernel" check >&2 || die "vkernel check failed on this node (rows marked fail above); nothing registered"
  fi
  register
  restart_containerd
  label "$NODE_LABEL"
}

uninstall() {
  label "${NODE_LABEL%%=*}-"
  remove_block
  restart_containerd
  if [ -n "$SHIM_LINK_DIR" ] && [ -L "$HOST_ROOT$SHIM_LINK_DIR/$SHIM" ]; then rm -f "$HOST_ROOT$SHIM_LINK_DIR/$SHIM"; fi
  rm -rf "$dest" "$dest.new" "$dest.old"
  log "uninstalled $INSTALL_DIR"
}

case "${1:-}" in
  install)
    install
    if [ "${2:-}" != --once ]; then
      log "installed; waiting (the preStop hook uninstalls)"
      trap 'exit 0' TERM INT
      while :; do sleep 3600 & wait $! || true; done
    fi
    ;;
  uninstall) uninstall ;;
  *) echo "usage: $0 install [--once] | uninstall" >&2; exit 2 ;;
esac
