#!/bin/sh
# debian12-root.sh TARBALL: a fresh Debian 12 root for tests/packaging/test_deb.py, as a tarball.
# It holds what `apt install ./readerhost_*.deb` would fetch (python3.11, python3-systemd,
# python3-spidev: the package's Depends and Recommends that Debian has) and what booting it with
# systemd-nspawn needs (systemd, dbus), so that the test installs without any network. As root.
set -eu
tarball=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,python3-systemd,python3-spidev \
    bookworm "$work/root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
# What apt fetched is no part of a fresh machine.
rm -f "$work/root/var/cache/apt/archives/"*.deb
mkdir -p "$(dirname "$tarball")"
tar -C "$work/root" -cf "$tarball.partial" .
mv "$tarball.partial" "$tarball"
