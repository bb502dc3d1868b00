#!/usr/bin/env bash
# install.sh: install readerhostd from this checkout as a systemd service.
# Raspberry Pi OS Bookworm (Debian 12, systemd 252), as root. See docs/operations.md.
#
# Every step is taken only when something is missing or different: running it twice changes nothing
# the second time, and running it after updating the checkout installs what changed and restarts
# the daemon (payments in flight are safe: the queue resumes with the same idempotency keys).
set -euo pipefail
umask 022

usage() {
    cat <<'EOF'
Usage: install.sh [--stripe-key-file PATH] [--root DIR]
       install.sh --help

Installs readerhostd from this checkout, as root:

  1. apt: python3-venv and python3-systemd, and python3-lgpio (GPIO) and python3-spidev (SPI
     displays) where the package archive has them (Raspberry Pi OS does)
  2. /opt/readerhost/venv (--system-site-packages, to see lgpio) with the exact versions, checked by
     their hashes, of requirements/kiosk.txt (./dev lock makes it), then readerhost-client
     (clients/python) and readerhost itself;
     readerhostctl linked into /usr/local/bin, its bash completion into
     /usr/local/share/bash-completion/completions
  3. the units into /usr/local/lib/systemd/system; sysusers.d, tmpfiles.d and modules-load.d files
     into /usr/local/lib/; the udev rules into /etc/udev/rules.d; the journal catalog into
     /usr/local/lib/systemd/catalog; the documentation into /usr/local/share/doc/readerhost
  4. systemd-sysusers (user readerhost, group readerhost-pos), systemd-tmpfiles --create,
     the kernel modules, udevadm control --reload
  5. /etc/readerhost/readerhost.toml from config/readerhost.toml, only if there is none yet
  6. with --stripe-key-file: the key to /etc/readerhost/stripe-api-key (mode 0600, root:root)
  7. systemctl daemon-reload; enable and start readerhostd.socket, readerhostd-jsonrpc.socket,
     readerhostd.service and readerhost-reconcile.timer (not without a Stripe key: readerhostd
     cannot start without one)

Options:
  --stripe-key-file PATH  install (or replace) the Stripe secret key held in PATH: one line,
                          sk_live_..., sk_test_..., rk_live_... or rk_test_...; never shown.
                          PATH may be a pipe: --stripe-key-file <(pass show stripe/kiosk).
                          A running readerhostd is restarted to use a new key.
  --root DIR              install the files under DIR instead of / (a staging tree, a test):
                          no apt, no venv, no sysusers, tmpfiles, modprobe, udevadm, journalctl
                          or systemctl, and files keep the installing user as owner.
  -h, --help              show this help.

uninstall.sh removes it again, keeping the payment store and /etc/readerhost unless --purge.
EOF
}

PROG=install.sh
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

CHECKOUT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
HERE=$CHECKOUT/systemd
VENV=/opt/readerhost/venv
UNITS=(readerhostd.socket readerhostd-jsonrpc.socket readerhostd.service readerhost-reconcile.service readerhost-reconcile.timer)
START_UNITS=(readerhostd.socket readerhostd-jsonrpc.socket readerhostd.service readerhost-reconcile.timer)
UNIT_DIR=/usr/local/lib/systemd/system
DOCS=(operations.md configuration.md payments.md pos-protocol.md readerhostctl.md)
KEY=/etc/readerhost/stripe-api-key
CONFIG=/etc/readerhost/readerhost.toml

ARGS=("$@")
ROOT=
KEY_FILE=
while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --root | --stripe-key-file)
        (($# >= 2)) || usage_error "$1 needs a value"
        [[ -n $2 ]] || usage_error "$1 needs a value"
        if [[ $1 == --root ]]; then ROOT=$2; else KEY_FILE=$2; fi
        shift 2
        ;;
    --root=*) ROOT=${1#*=} && shift ;;
    --stripe-key-file=*) KEY_FILE=${1#*=} && shift ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done

CLEANUP=() # removed on exit, however the script ends
trap 'rm -rf -- "${CLEANUP[@]}"' EXIT

if [[ -z $ROOT ]] || [[ $(cd -- "$ROOT" 2>/dev/null && pwd -P) == / ]]; then
    ROOT=
    ((EUID == 0)) || die "run it as root: sudo $0 ${ARGS[*]}"
    command -v systemctl >/dev/null || die "systemctl not found: this needs a system run by systemd"
fi

# Check the key before anything changes. It is read once, into a private file in memory (so that
# PATH may be a pipe: --stripe-key-file <(pass show stripe)); its content never reaches the output.
KEY_COPY=
if [[ -n $KEY_FILE ]]; then
    [[ -r $KEY_FILE && ! -d $KEY_FILE ]] || die "cannot read the Stripe key file $KEY_FILE"
    KEY_COPY=$(mktemp -p /dev/shm 2>/dev/null || mktemp)
    CLEANUP+=("$KEY_COPY")
    cat -- "$KEY_FILE" >"$KEY_COPY"
    if [[ $(LC_ALL=C grep -c '[^[:space:]]' -- "$KEY_COPY" || true) != 1 ]] ||
        ! LC_ALL=C grep -Eq '^[[:space:]]*[sr]k_(test|live)_[!-~]+[[:space:]]*$' -- "$KEY_COPY"; then
        die "$KEY_FILE does not hold a Stripe secret key (one line starting with sk_live_, sk_test_, rk_live_ or rk_test_; a publishable key pk_... does not work); its content is not shown"
    fi
fi

if [[ -n $ROOT ]]; then
    mkdir -p -- "$ROOT"
    ROOT=$(cd -- "$ROOT" && pwd -P)
fi
STAGING=${ROOT:+yes}

CHANGES=0
WROTE=0 # set by put_file and put_dir: 1 when they changed something

mode_of() { stat -c %a -- "$1"; }
owner_of() { stat -c %U:%G -- "$1"; }
same_mode() { [[ $(mode_of "$1") == "$(printf '%o' "$((8#$2))")" ]]; }
same_owner() { [[ -n $STAGING || $(owner_of "$1") == "$2" ]]; }

# put_file SRC DEST MODE OWNER:GROUP: copies SRC to ROOT/DEST, atomically, when the content, the
# mode or the owner differs.
put_file() {
    local src=$1 dest=$ROOT$2 mode=$3 owner=$4 tmp
    WROTE=0
    [[ -f $src && -r $src ]] || die "cannot read $src"
    if [[ -f $dest && ! -L $dest ]] && cmp -s -- "$src" "$dest" && same_mode "$dest" "$mode" &&
        same_owner "$dest" "$owner"; then
        return 0
    fi
    local verb=installed
    [[ -e $dest ]] && verb=updated
    mkdir -p -- "$(dirname -- "$dest")"
    tmp=$(mktemp -- "$dest.XXXXXX") # mode 0600 from the start, in the same folder: mv is atomic
    cat -- "$src" >"$tmp"
    [[ -n $STAGING ]] || chown -- "$owner" "$tmp"
    chmod -- "$mode" "$tmp"
    mv -f -- "$tmp" "$dest"
    say "$verb $2"
    WROTE=1
    CHANGES=$((CHANGES + 1))
}

# put_link LINK TARGET: ROOT/LINK becomes a symbolic link to TARGET (a path on the installed system).
put_link() {
    local link=$ROOT$1 target=$2
    WROTE=0
    [[ -L $link && $(readlink -- "$link") == "$target" ]] && return 0
    [[ -e $link && ! -L $link ]] && die "$1 exists and is not a link: remove it first"
    mkdir -p -- "$(dirname -- "$link")"
    ln -sfn -- "$target" "$link"
    say "linked $1 -> $target"
    WROTE=1
    CHANGES=$((CHANGES + 1))
}

# put_dir DIR MODE OWNER:GROUP
put_dir() {
    local dir=$ROOT$1 mode=$2 owner=$3
    WROTE=0
    if [[ -d $dir ]] && same_mode "$dir" "$mode" && same_owner "$dir" "$owner"; then
        return 0
    fi
    mkdir -p -- "$dir"
    [[ -n $STAGING ]] || chown -- "$owner" "$dir"
    chmod -- "$mode" "$dir"
    say "prepared $1 ($mode $owner)"
    WROTE=1
    CHANGES=$((CHANGES + 1))
}

skipped() { say "skipped (--root): $*"; }

# 1. Debian packages -----------------------------------------------------------------------------
installed_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if [[ -n $STAGING ]]; then
    skipped "apt-get install python3-venv python3-systemd python3-lgpio python3-spidev"
else
    missing=()
    installed_pkg python3-venv || missing+=(python3-venv)
    # libsystemd for Python, from Debian: the venv sees it, so the lock's systemd-python is not built
    installed_pkg python3-systemd || missing+=(python3-systemd)
    for optional in python3-lgpio:"the buttons, LED and buzzer (GPIO) stay off" \
        python3-spidev:"an SPI display stays off"; do
        package=${optional%%:*}
        installed_pkg "$package" && continue
        if [[ -n $(apt-cache policy "$package" 2>/dev/null | grep 'Candidate: [^(]') ]]; then
            missing+=("$package")
        else
            warn "$package is not in this system's package archive (not Raspberry Pi OS?): without it, ${optional#*:}"
        fi
    done
    if ((${#missing[@]})); then
        say "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends "${missing[@]}" ||
            { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
        CHANGES=$((CHANGES + 1))
    fi
fi

# 2. The venv and readerhost in it ---------------------------------------------------------------
# Built from a copy of the sources, so that pip leaves no root-owned build files in the checkout.
SOURCES=(pyproject.toml setup.py README.md LICENSE clients/python daemon drivers sim)
LOCK=requirements/kiosk.txt # every kiosk gets the same versions: pinned, with their hashes
source_stamp() {
    (
        cd -- "$CHECKOUT"
        find "${SOURCES[@]}" -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -name '*.pyc' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
        sha256sum "$LOCK"
    ) | sha256sum | cut -d' ' -f1
}
CODE_CHANGED=0
if [[ -n $STAGING ]]; then
    skipped "python3 -m venv --system-site-packages $VENV; $VENV/bin/pip install --require-hashes -r $LOCK; $VENV/bin/pip install --no-deps $CHECKOUT/clients/python $CHECKOUT"
else
    if [[ ! -x $VENV/bin/python ]]; then
        say "creating $VENV"
        mkdir -p -- "$(dirname -- "$VENV")"
        python3 -m venv --system-site-packages "$VENV"
        CHANGES=$((CHANGES + 1))
    fi
    stamp=$(source_stamp)
    if [[ $(cat -- "$VENV/.readerhost-source" 2>/dev/null || true) != "$stamp" ]]; then
        build=$(mktemp -d)
        CLEANUP+=("$build")
        (cd -- "$CHECKOUT" && cp -R --parents -- "${SOURCES[@]}" "$build/")
        find "$build" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
        say "pip install the locked versions of $LOCK, then readerhost-client and readerhost, into $VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input --require-hashes -r "$CHECKOUT/$LOCK"
        # Its dependencies are all in the lock: --no-deps keeps pip from resolving anything anew.
        "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input --no-deps "$build/clients/python" "$build"
        printf '%s\n' "$stamp" >"$VENV/.readerhost-source"
        CODE_CHANGED=1
        CHANGES=$((CHANGES + 1))
    fi
fi

# 3. Files ---------------------------------------------------------------------------------------
UNITS_CHANGED=0
for unit in "${UNITS[@]}"; do
    put_file "$HERE/$unit" "$UNIT_DIR/$unit" 0644 root:root
    ((WROTE)) && UNITS_CHANGED=1
done
put_file "$HERE/sysusers.d/readerhost.conf" /usr/local/lib/sysusers.d/readerhost.conf 0644 root:root
put_file "$HERE/tmpfiles.d/readerhost.conf" /usr/local/lib/tmpfiles.d/readerhost.conf 0644 root:root
put_file "$HERE/modules-load.d/readerhost.conf" /usr/local/lib/modules-load.d/readerhost.conf 0644 root:root
MODULES_CHANGED=$WROTE
put_file "$HERE/udev/99-readerhost.rules" /etc/udev/rules.d/99-readerhost.rules 0644 root:root
UDEV_CHANGED=$WROTE
CATALOG_CHANGED=0
if [[ -f $HERE/readerhost.catalog ]]; then
    put_file "$HERE/readerhost.catalog" /usr/local/lib/systemd/catalog/readerhost.catalog 0644 root:root
    CATALOG_CHANGED=$WROTE
fi
put_link /usr/local/bin/readerhostctl "$VENV/bin/readerhostctl"
put_file "$HERE/bash-completion/readerhostctl" /usr/local/share/bash-completion/completions/readerhostctl 0644 root:root
for doc in "${DOCS[@]}"; do
    put_file "$CHECKOUT/docs/$doc" "/usr/local/share/doc/readerhost/$doc" 0644 root:root
done

# What this run owes: a run that stops half-way (a missing tool, a power cut) must not leave a file
# copied but never activated. What is owed is written down before it is done, and a run does what an
# earlier one still owed, even when nothing changed since. (--root activates nothing: nothing owed.)
OWED_FILE=$VENV/.readerhost-owed
owes() { [[ -z $STAGING ]] && grep -qx -- "$1" "$OWED_FILE" 2>/dev/null; }
note_owed() {
    [[ -z $STAGING ]] || return 0
    local words=()
    ((CODE_CHANGED)) && words+=(code)
    ((UNITS_CHANGED)) && words+=(units)
    ((MODULES_CHANGED)) && words+=(modules)
    ((UDEV_CHANGED)) && words+=(udev)
    ((CATALOG_CHANGED)) && words+=(catalog)
    ((${KEY_CHANGED:-0})) && words+=(key)
    ((${#words[@]})) || return 0
    printf '%s\n' "${words[@]}" >"$OWED_FILE.partial"
    mv -f -- "$OWED_FILE.partial" "$OWED_FILE"
}
owes code && CODE_CHANGED=1
owes units && UNITS_CHANGED=1
owes modules && MODULES_CHANGED=1
owes udev && UDEV_CHANGED=1
owes catalog && CATALOG_CHANGED=1
note_owed

# 4. Users, folders, modules, udev ---------------------------------------------------------------
if [[ -n $STAGING ]]; then
    skipped "systemd-sysusers, systemd-tmpfiles --create, modprobe, udevadm control --reload"
else
    sysusers_out=$(systemd-sysusers /usr/local/lib/sysusers.d/readerhost.conf 2>&1)
    if [[ -n $sysusers_out ]]; then
        say "$sysusers_out"
        CHANGES=$((CHANGES + 1))
    fi
fi
put_dir /etc/readerhost 0750 root:readerhost
if [[ -z $STAGING ]]; then
    systemd-tmpfiles --create /usr/local/lib/tmpfiles.d/readerhost.conf
    if ((MODULES_CHANGED)); then
        for module in $(grep -v '^[[:space:]]*\(#\|$\)' "$HERE/modules-load.d/readerhost.conf"); do
            modprobe "$module" || warn "could not load the kernel module $module"
        done
    fi
    if ((UDEV_CHANGED)); then
        udevadm control --reload
        udevadm trigger --action=change --subsystem-match=tty
    fi
    if ((CATALOG_CHANGED)); then
        journalctl --update-catalog
    fi
fi

# 5. The configuration, only if there is none ----------------------------------------------------
if [[ -e $ROOT$CONFIG ]]; then
    say "kept $CONFIG (yours; the documented defaults are in $CHECKOUT/config/readerhost.toml)"
else
    put_file "$CHECKOUT/config/readerhost.toml" "$CONFIG" 0640 root:readerhost
fi

# 6. The Stripe key -------------------------------------------------------------------------------
KEY_CHANGED=0
if [[ -n $KEY_FILE ]]; then
    put_file "$KEY_COPY" "$KEY" 0600 root:root
    KEY_CHANGED=$WROTE
    ((KEY_CHANGED)) || say "the Stripe key in $KEY is already this one"
    if [[ -f $KEY_FILE && $(mode_of "$KEY_FILE") =~ [1-7]$ ]]; then
        warn "$KEY_FILE is readable by other users: delete it now that the key is installed (or chmod 600 it)"
    fi
fi
HAVE_KEY=0
[[ -f $ROOT$KEY ]] && HAVE_KEY=1

owes key && KEY_CHANGED=1
note_owed

# 7. systemd --------------------------------------------------------------------------------------
if [[ -n $STAGING ]]; then
    skipped "systemctl daemon-reload; systemctl enable --now ${START_UNITS[*]}"
elif ((!HAVE_KEY)); then
    ((UNITS_CHANGED)) && systemctl daemon-reload
    warn "no Stripe key in $KEY: readerhostd is installed but not enabled or started (it cannot start without the key). Run again with --stripe-key-file PATH"
    rm -f -- "$OWED_FILE"
else
    if ((UNITS_CHANGED)); then
        say "systemctl daemon-reload"
        systemctl daemon-reload
    fi
    for unit in "${START_UNITS[@]}"; do
        if ! systemctl is-enabled --quiet "$unit"; then
            systemctl enable --quiet "$unit"
            say "enabled $unit"
            CHANGES=$((CHANGES + 1))
        fi
    done
    if systemctl is-active --quiet readerhostd.service && ((CODE_CHANGED || UNITS_CHANGED || KEY_CHANGED)); then
        say "restarting readerhostd (payments in flight resume; a customer at the reader must start again)"
        systemctl restart readerhostd.service
        CHANGES=$((CHANGES + 1))
    fi
    for unit in "${START_UNITS[@]}"; do
        if ! systemctl is-active --quiet "$unit"; then
            systemctl start "$unit"
            say "started $unit"
            CHANGES=$((CHANGES + 1))
        fi
    done
    rm -f -- "$OWED_FILE" # everything this run and earlier ones owed is done
fi

if ((CHANGES == 0)); then
    say "nothing to change: readerhost is installed as this checkout describes"
else
    say "done. Check with: readerhostctl status; journalctl -u readerhostd -b"
fi
pos_gid="the number from: getent group readerhost-pos"
[[ -n $STAGING ]] || pos_gid=$(getent group readerhost-pos | cut -d: -f3)
say "POS users: usermod -aG readerhost-pos USER, and list the group's id ($pos_gid) in [api] allowed_gids of $CONFIG"
