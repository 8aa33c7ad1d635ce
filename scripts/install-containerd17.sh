#!/usr/bin/env bash
# Provides containerd 1.7 (Debian trixie's package) in a private folder, side by side with
# bookworm's containerd 1.6, without installing or upgrading any package.
#
#   scripts/install-containerd17.sh [DEST]      (root; DEST defaults to /opt/vkernel-test/containerd-1.7)
#
# Steps (each skipped when already done, so a second run takes milliseconds):
#   1. add the trixie suite to apt's sources (/etc/apt/sources.list.d/vkernel-trixie.sources)
#      pinned at priority 100 (/etc/apt/preferences.d/vkernel-trixie), so nothing installed
#      ever upgrades to trixie by itself;
#   2. refresh only the trixie package lists;
#   3. `apt-get download -t trixie containerd` and `dpkg -x` it into DEST (atomically);
#   4. check DEST/usr/bin/containerd --version says 1.7.x and that the installed
#      (bookworm) containerd package is the same as before.
# Prints the path of the containerd binary as its only line on stdout.
# Environment: VKERNEL_APT_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

DEST="${1:-/opt/vkernel-test/containerd-1.7}"
BIN="$DEST/usr/bin/containerd"
MIRROR="${VKERNEL_APT_MIRROR:-http://deb.debian.org/debian}"
SOURCES=/etc/apt/sources.list.d/vkernel-trixie.sources
PREFS=/etc/apt/preferences.d/vkernel-trixie
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "install-containerd17: $*" >&2; }
die() { log "error: $*"; exit 1; }

is_17() { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -Eq '[[:space:]]v?1\.7\.[0-9]'; }

# Fast path: already there.
if is_17; then echo "$BIN"; exit 0; fi

[ "$(id -u)" = 0 ] || die "must run as root (it edits apt's configuration and writes $DEST)"
command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs a Debian system (apt-get, dpkg)"
[ -r "$KEYRING" ] || die "$KEYRING missing (install debian-archive-keyring)"

mkdir -p "$(dirname "$DEST")"
# One installer at a time (parallel test workers may call this together).
exec 9>"$(dirname "$DEST")/.install-containerd17.lock"
flock 9
if is_17; then echo "$BIN"; exit 0; fi

installed_before="$(dpkg-query -W -f='${Status} ${Version}' containerd 2>/dev/null || true)"

# 1. apt configuration (written only when it differs).
write_if_changed() { # path content
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
    log "wrote $1"
  fi
}
write_if_changed "$SOURCES" "# Added by vkernel scripts/install-containerd17.sh: only to download containerd 1.7 for tests.
Types: deb
URIs: $MIRROR
Suites: trixie
Components: main
Signed-By: $KEYRING"
write_if_changed "$PREFS" "# Added by vkernel scripts/install-containerd17.sh: never prefer trixie over bookworm.
Package: *
Pin: release n=trixie
Pin-Priority: 100"

# 2. Refresh the trixie lists only (the bookworm lists stay as they are).
update_trixie() {
  log "apt-get update (trixie only)"
  apt-get update -qq \
    -o Dir::Etc::sourcelist="$SOURCES" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 >&2
}
trixie_version() {
  # The newest containerd version that comes from trixie (not trixie-*), if any.
  apt-cache madison containerd 2>/dev/null |
    awk -F'|' '$3 ~ /[[:space:]]trixie\/main[[:space:]]/ { gsub(/[[:space:]]/, "", $2); print $2; exit }'
}
ver="$(trixie_version || true)"
case "$ver" in 1.7.*) ;; *) update_trixie; ver="$(trixie_version || true)";; esac
case "$ver" in
  1.7.*) ;;
  "") die "trixie does not offer a containerd package (apt-cache policy containerd shows no trixie version)";;
  *) die "trixie offers containerd $ver, expected 1.7.x";;
esac

# 3. Download and unpack into a temp folder, then move into place.
work="$(mktemp -d "$(dirname "$DEST")/.containerd17.XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
if id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
log "apt-get download -t trixie containerd ($ver)"
(cd "$work" && apt-get download -qq -t trixie "containerd=$ver" >&2)
deb="$(ls "$work"/containerd_*.deb 2>/dev/null | head -n1)"
[ -n "$deb" ] || die "apt-get download produced no containerd_*.deb"
dpkg-deb -f "$deb" Version | grep -Eq '^1\.7\.' || die "$deb is not containerd 1.7: $(dpkg-deb -f "$deb" Version)"
mkdir "$work/root"
dpkg -x "$deb" "$work/root"
cp "$deb" "$work/root/"   # kept for reference (provenance of the binaries)
[ -x "$work/root/usr/bin/containerd" ] || die "$deb has no usr/bin/containerd"
if [ -e "$DEST" ]; then rm -rf "$DEST.old"; mv "$DEST" "$DEST.old"; fi
mv "$work/root" "$DEST"
rm -rf "$DEST.old"

# 4. Checks.
is_17 || die "$BIN --version does not print 1.7.x: $("$BIN" --version 2>&1 || true)"
installed_after="$(dpkg-query -W -f='${Status} ${Version}' containerd 2>/dev/null || true)"
[ "$installed_before" = "$installed_after" ] ||
  die "the installed containerd package changed: '$installed_before' -> '$installed_after'"
log "$("$BIN" --version)"
echo "$BIN"
