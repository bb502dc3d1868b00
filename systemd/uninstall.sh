#!/usr/bin/env bash
# uninstall.sh: remove what install.sh installed. Keeps the payment store (/var/lib/readerhost),
# /etc/readerhost and the readerhost user unless --purge. As root. See docs/operations.md.
#
# Running it twice changes nothing the second time.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: uninstall.sh [--purge [--force]] [--root DIR]
       uninstall.sh --help

Stops and disables readerhostd.socket, readerhostd-jsonrpc.socket, readerhostd.service and
readerhost-reconcile.timer, and removes what install.sh installed: the units, the sysusers.d,
tmpfiles.d and modules-load.d files, the udev rules, the journal catalog, the documentation,
/usr/local/bin/readerhostctl and its bash completion, and /opt/readerhost (the venv).

Kept, unless --purge:
  /var/lib/readerhost   the payment store: every payment's history, and requests not yet sent
                        to Stripe (captures, offline payments)
  /etc/readerhost       readerhost.toml and the Stripe key
  the user readerhost and the group readerhost-pos (the store's owner; POS users' membership)
install.sh puts the service back on top of them, as it was.

Options:
  --purge     also delete /var/lib/readerhost, /etc/readerhost and /run/readerhost, the user
              readerhost and the group readerhost-pos. Refused while the store holds money not
              yet settled with Stripe (payments authorised, capturing, processing or stored
              offline, or requests waiting to be sent): settle them first (docs/operations.md)
  --force     with --purge: delete the store even then (that money may never be collected)
  --root DIR  remove the files under DIR instead of / (a staging tree, a test): no systemctl,
              udevadm, journalctl, userdel or groupdel
  -h, --help  show this help
EOF
}

PROG=uninstall.sh
say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}
usage_error() {
    printf '%s: %s (see --help)\n' "$PROG" "$*" >&2
    exit 2
}

UNITS=(readerhost-reconcile.timer readerhost-reconcile.service readerhostd.socket readerhostd-jsonrpc.socket readerhostd.service)
UNIT_DIR=/usr/local/lib/systemd/system
FILES=(
    /usr/local/lib/sysusers.d/readerhost.conf
    /usr/local/lib/tmpfiles.d/readerhost.conf
    /usr/local/lib/modules-load.d/readerhost.conf
    /usr/local/bin/readerhostctl
    /usr/local/share/bash-completion/completions/readerhostctl
)
UDEV_RULES=/etc/udev/rules.d/99-readerhost.rules
CATALOG=/usr/local/lib/systemd/catalog/readerhost.catalog
TREES=(/opt/readerhost /usr/local/share/doc/readerhost)
STORE_DIR=/var/lib/readerhost
DATA=(/var/lib/readerhost /etc/readerhost /run/readerhost)

ARGS=("$@")
ROOT=
PURGE=0
FORCE=0
while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --purge) PURGE=1 && shift ;;
    --force) FORCE=1 && shift ;;
    --root)
        (($# >= 2)) && [[ -n $2 ]] || usage_error "--root needs a folder"
        ROOT=$2
        shift 2
        ;;
    --root=*) ROOT=${1#*=} && shift ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done
if ((FORCE && !PURGE)); then usage_error "--force only goes with --purge"; fi

if [[ -n $ROOT ]]; then
    [[ -d $ROOT ]] || die "no folder $ROOT"
    ROOT=$(cd -- "$ROOT" && pwd -P)
    [[ $ROOT == / ]] && ROOT=
fi
STAGING=${ROOT:+yes}
if [[ -z $STAGING ]]; then
    ((EUID == 0)) || die "run it as root: sudo $0 ${ARGS[*]}"
fi

# Before anything changes: --purge must not throw away money that Stripe has not settled yet.
# readerhostd --inspect says (the one definition of "work for Stripe", as the daemon's backups and
# the Debian package use it): the installed readerhostd, or the one $READERHOSTD names.
INSPECTOR=${READERHOSTD:-$ROOT/opt/readerhost/venv/bin/readerhostd}
if ((PURGE && !FORCE)); then
    for db in "$ROOT$STORE_DIR"/*.db; do
        [[ -f $db ]] || continue
        [[ -x $INSPECTOR ]] ||
            die "cannot check the payment store ${db#"$ROOT"} before --purge: there is no readerhostd at $INSPECTOR to read it (add --force to delete it unread)"
        status=0
        what=$("$INSPECTOR" --inspect --store "$db" 2>&1) || status=$?
        case $status in
        0) ;;
        3) die "refusing to --purge: ${db#"$ROOT"} holds ${what##*: }. Let readerhostd send them (readerhostctl status shows the queue; readerhostctl reconcile --apply settles authorisations), or add --force to delete them anyway" ;;
        *) die "cannot read the payment store ${db#"$ROOT"} to check it before --purge: ${what#readerhostd: } (add --force to delete it unread)" ;;
        esac
    done
fi

CHANGES=0
remove() { # remove PATH...: files or folders under ROOT, saying which existed
    local path
    for path in "$@"; do
        if [[ -e $ROOT$path || -L $ROOT$path ]]; then
            rm -rf -- "$ROOT$path"
            say "removed $path"
            CHANGES=$((CHANGES + 1))
        fi
    done
}

if [[ -n $STAGING ]]; then
    say "skipped (--root): systemctl disable --now ${UNITS[*]}"
else
    # The timer first, then the socket before the daemon, so that nothing starts the daemon again.
    for unit in "${UNITS[@]}"; do
        if [[ $(systemctl is-enabled "$unit" 2>/dev/null || true) == enabled ]]; then
            systemctl disable --quiet "$unit"
            say "disabled $unit"
            CHANGES=$((CHANGES + 1))
        fi
        if systemctl is-active --quiet "$unit"; then
            systemctl stop "$unit"
            say "stopped $unit"
            CHANGES=$((CHANGES + 1))
        fi
    done
fi

units_before=$CHANGES
for unit in "${UNITS[@]}"; do remove "$UNIT_DIR/$unit"; done
UNITS_REMOVED=$((CHANGES - units_before))
remove "${FILES[@]}"
before=$CHANGES
remove "$UDEV_RULES"
UDEV_REMOVED=$((CHANGES - before))
before=$CHANGES
remove "$CATALOG"
CATALOG_REMOVED=$((CHANGES - before))
remove "${TREES[@]}"

if [[ -n $STAGING ]]; then
    say "skipped (--root): systemctl daemon-reload, udevadm control --reload, journalctl --update-catalog"
else
    if ((UNITS_REMOVED)); then
        systemctl daemon-reload
        systemctl reset-failed "${UNITS[@]}" 2>/dev/null || true
    fi
    if ((UDEV_REMOVED)); then udevadm control --reload; fi
    if ((CATALOG_REMOVED)); then journalctl --update-catalog; fi
fi

if ((PURGE)); then
    remove "${DATA[@]}"
    if [[ -n $STAGING ]]; then
        say "skipped (--root): userdel readerhost; groupdel readerhost-pos"
    else
        if getent passwd readerhost >/dev/null; then
            userdel readerhost
            say "deleted the user readerhost"
            CHANGES=$((CHANGES + 1))
        fi
        if getent group readerhost-pos >/dev/null; then
            groupdel readerhost-pos
            say "deleted the group readerhost-pos"
            CHANGES=$((CHANGES + 1))
        fi
    fi
else
    if [[ -e $ROOT/var/lib/readerhost ]]; then
        say "kept /var/lib/readerhost: the payment store (payments' history, and anything not yet sent to Stripe)"
    fi
    if [[ -e $ROOT/etc/readerhost ]]; then
        say "kept /etc/readerhost: the configuration and the Stripe key"
    fi
    say "kept the user readerhost and the group readerhost-pos. uninstall.sh --purge deletes all of these"
fi

((CHANGES)) || say "nothing to remove: readerhost is not installed"
