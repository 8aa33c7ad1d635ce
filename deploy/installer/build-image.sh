#!/usr/bin/env bash
# Builds the vkernel node installer image from deploy/installer/Containerfile (docs/kubernetes.md,
# "The installer image"). Stages the build context in $STAGE:
#   payload/    make install DESTDIR=$STAGE/payload PREFIX=/opt/vkernel INSTALL_NODE=/opt/vkernel/bin/node,
#               plus this machine's node (>= 20) at payload/opt/vkernel/bin/node
#   install.sh  deploy/installer/install.sh
#   kubectl     $KUBECTL
# then builds it with the first of podman, buildah, docker found (BUILDER overrides), tagged $IMAGE.
# The build needs the base image (debian:bookworm-slim) from a registry or the builder's store.
#
#   deploy/installer/build-image.sh               stage and build
#   deploy/installer/build-image.sh --stage-only  stage only (e.g. for another builder: kaniko, a CI job)
#
# Environment: IMAGE (default vkernel-installer:0.1.0, the name daemonset.yaml uses), STAGE
# (default build/installer-image), KUBECTL (default: kubectl on PATH), NODE (default: node on
# PATH), BUILDER (podman, buildah or docker).
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-vkernel-installer:0.1.0}
STAGE=$(realpath -m "${STAGE:-build/installer-image}")
INSTALL_DIR=/opt/vkernel   # install.sh's INSTALL_DIR: the host path the payload is made for
die() { echo "build-image: $*" >&2; exit 1; }

case "${1:-}" in
  '') stage_only= ;;
  --stage-only) stage_only=1 ;;
  *) echo "usage: $0 [--stage-only]" >&2; exit 2 ;;
esac

node=${NODE:-$(command -v node || true)}
[ -n "$node" ] && [ -x "$node" ] || die "no node found: set NODE to a Node.js (>= 20) binary for the image"
kubectl=${KUBECTL:-$(command -v kubectl || true)}
[ -n "$kubectl" ] && [ -x "$kubectl" ] || die "no kubectl found: set KUBECTL to a kubectl binary (install.sh labels the node with it)"

rm -rf "$STAGE"
mkdir -p "$STAGE"
make install DESTDIR="$STAGE/payload" PREFIX="$INSTALL_DIR" INSTALL_NODE="$INSTALL_DIR/bin/node" >/dev/null
install -m 0755 "$node" "$STAGE/payload$INSTALL_DIR/bin/node"
install -m 0755 deploy/installer/install.sh "$STAGE/install.sh"
install -m 0755 "$kubectl" "$STAGE/kubectl"
cp deploy/installer/Containerfile "$STAGE/Containerfile"
echo "staged the build context in $STAGE"
[ -z "$stage_only" ] || exit 0

builder=${BUILDER:-}
if [ -z "$builder" ]; then
  for b in podman buildah docker; do command -v "$b" >/dev/null && { builder=$b; break; }; done
fi
case "$builder" in
  podman | docker) "$builder" build -f "$STAGE/Containerfile" -t "$IMAGE" "$STAGE" ;;
  buildah) buildah bud -f "$STAGE/Containerfile" -t "$IMAGE" "$STAGE" ;;
  '') die "no podman, buildah or docker found: build $STAGE/Containerfile with your builder (context $STAGE)" ;;
  *) die "BUILDER must be podman, buildah or docker (got '$builder')" ;;
esac
echo "built $IMAGE"
