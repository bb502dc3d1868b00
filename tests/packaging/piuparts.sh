#!/bin/sh
# piuparts.sh OLD.deb NEW.deb: piuparts on Debian 12 for readerhost's package, as root: NEW installed
# and purged in a fresh Debian 12 root (minbase with systemd), then OLD (served from a local
# repository) installed, upgraded to NEW, removed and purged; piuparts checks what is left behind.
# It downloads (debootstrap, apt-get update in its chroots), so it is not part of the test suite:
# docs/operations.md records its last result. Example:
#   ./dev deb 1 && ./dev deb 2 && tests/packaging/piuparts.sh build/deb/readerhost_*-1_*.deb build/deb/readerhost_*-2_*.deb
set -eu
old=$(realpath "$1") new=$(realpath "$2")
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/repo"
cp "$old" "$work/repo/"
(cd "$work/repo" && dpkg-scanpackages . /dev/null >Packages 2>/dev/null)
# A Debian 12 system as it boots: with systemd, the init that runs the units (minbase has none).
debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
tar -C "$work/root" -czf "$work/base.tgz" .
piuparts --basetgz="$work/base.tgz" --distribution=bookworm --mirror="$mirror" \
    --bindmount="$work/repo" --extra-repo="deb [trusted=yes] file://$work/repo ./" "$new"
