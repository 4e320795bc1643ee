#!/usr/bin/env bash
# txspawn on Python 3.13 beside 3.11 (issue 16), set up from nothing, as
# root, on a Debian 12 machine (which has no 3.13): Debian 13's interpreter
# runs in a Debian 13 root made with debootstrap and kept in a cache
# directory for the next run.
#
#   .ci/py313.sh setup-root   build the Debian 13 root, or reuse the cached one
#   .ci/py313.sh setup-venv   copy the checkout in, make a 3.13 venv there and
#                             install txspawn (C engine built with -Werror) and
#                             its test dependencies
#   .ci/py313.sh run CMD...   run CMD in the root, in the copy (/src), with the
#                             venv first on PATH (python, trial, pytest: 3.13)
#   .ci/py313.sh              the whole py313 leg of tools/test.sh, alone
#
# tools/test.sh runs these steps as the stages of its py313 leg.
#
# The root: debootstrap --variant=minbase of Debian 13 (trixie) with the
# packages below, from the Debian mirror the host's apt uses (override:
# TXSPAWN_TRIXIE_MIRROR).  About a minute and 600 MB.  It is rebuilt when
# the package list changes, when it is over 30 days old (to follow Debian
# 13's point releases), or when a build was interrupted.
#
# Entering it.  Every mount lives in a private mount namespace (unshare
# --mount) made for one command, so the host never sees any of them, and
# the kernel takes them all down when the command's last process ends: on
# a normal exit, a failure, or a SIGKILL that no trap would survive.  (After
# each command the script still checks that nothing is mounted under the
# cache.)  In the namespace the root gets /dev (with /dev/pts and /dev/shm:
# PTYs, semaphores), /proc, /sys (the cgroup tree), the copy of the checkout
# at /src and a /tmp of the run's own, and becomes the namespace's root by
# pivot_root rather than chroot: the kernel refuses unshare(CLONE_NEWUSER)
# to a chrooted process, and the namespace tests must run as on the host.
#
# Reaching PyPI: the host's pip configuration (/etc/pip.conf,
# /etc/xdg/pip/pip.conf, ~/.config/pip/pip.conf, ~/.pip/pip.conf,
# $PIP_CONFIG_FILE, and PIP_* in the environment, which passes through),
# the host's CA bundle, resolv.conf and hosts are copied in before each
# command, with every file the configuration names (a certificate, a
# constraints file); the local directories it names (find-links, file://
# indexes) are bound in read-only.
#
# Environment:
#   TXSPAWN_TRIXIE_CACHE   where the root is kept (/var/cache/txspawn-trixie)
#   TXSPAWN_PY313_RUN      the copy of the checkout, its venv and /tmp
#                          (default: a directory under /tmp named after the
#                          checkout's path, so checkouts do not collide)
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)

if [ "$(id -u)" != 0 ]; then
    # debootstrap and mounts need root; keep the environment (pip's).
    exec sudo -E bash "$0" "$@"
fi

suite=trixie
cache="${TXSPAWN_TRIXIE_CACHE:-/var/cache/txspawn-trixie}"
root="$cache/root"
ready="$root/.txspawn-root-ready"
run="${TXSPAWN_PY313_RUN:-/tmp/txspawn-py313-$(printf %s "$checkout" | md5sum | cut -c1-8)}"
# What the suites need inside: Python 3.13 with venv and headers, a C
# compiler (the C engine, the benchmark's C reference loop), util-linux
# (setpriv, unshare), git (.ci/check_plugin_install.sh copies the checkout
# with git ls-files).  Changing this list rebuilds the root.
packages=(python3 python3-venv python3-dev gcc libc6-dev util-linux git)
maxAgeDays=30

# hostMirror: the Debian mirror the host's apt uses.
hostMirror() {
    if [ -n "${TXSPAWN_TRIXIE_MIRROR:-}" ]; then
        echo "$TXSPAWN_TRIXIE_MIRROR"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        sed -nE 's/^URIs:[[:space:]]*//p; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//p' |
        tr -s ' \t' '\n' | grep -m1 -E '^https?://.*/debian/?$' || true)
    if [ -z "$uri" ]; then
        echo "error: no Debian mirror in the host's apt sources; set" \
            "TXSPAWN_TRIXIE_MIRROR" >&2
        return 1
    fi
    echo "$uri"
}

# refuseMounts DIR: fail if anything is mounted at or under DIR in the
# host's namespace (before DIR is deleted, and after each command).
refuseMounts() {
    if awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
        /proc/self/mountinfo; then
        echo "error: something is mounted under $1:" >&2
        awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print "  " $5 }' \
            /proc/self/mountinfo >&2
        return 1
    fi
}

# pipConfigs: the host's pip configuration files.
pipConfigs() {
    local f
    for f in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" \
        "$HOME/.pip/pip.conf" ${PIP_CONFIG_FILE:+"$PIP_CONFIG_FILE"}; do
        if [ -f "$f" ]; then echo "$f"; fi
    done
}

# pipPaths: the existing local files and directories the host's pip
# configuration names (cert, constraint, find-links, index URLs as file://
# or paths).
pipPaths() {
    local token path
    {
        pipConfigs | while read -r path; do cat "$path"; done
        printf '%s\n' "${PIP_FIND_LINKS:-}" "${PIP_INDEX_URL:-}" \
            "${PIP_EXTRA_INDEX_URL:-}" "${PIP_CERT:-}" "${PIP_CONSTRAINT:-}" \
            "${SSL_CERT_FILE:-}"
    } | tr -s ' \t=' '\n' | while read -r token; do
        case "$token" in
            file://*) path="${token#file://}" ;;
            /*) path="$token" ;;
            *) continue ;;
        esac
        path="${path%/}"
        # An index's pages link to files beside simple/: bind its parent.
        if [ "${path##*/}" = simple ]; then path="${path%/simple}"; fi
        if [ -e "$path" ]; then echo "$path"; fi
    done | sort -u
}

# refreshHostFiles: what the resolver and pip need from the host, copied in
# before each command (the host's may have changed since the root was made).
refreshHostFiles() {
    local f
    for f in /etc/resolv.conf /etc/hosts /etc/ssl/certs/ca-certificates.crt \
        $(pipConfigs) $(pipPaths); do
        if [ -f "$f" ]; then
            mkdir -p "$root$(dirname "$f")"
            cp -L "$f" "$root$f"
        fi
    done
}

# rootIsReady: the cached root was fully built, with this package list,
# less than maxAgeDays ago.
rootIsReady() {
    [ -f "$ready" ] && [ "$(cat "$ready")" = "$suite ${packages[*]}" ] &&
        [ -n "$(find "$ready" -mtime -"$maxAgeDays")" ]
}

setupRoot() {
    command -v debootstrap >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq debootstrap; }
    mkdir -p "$cache"
    # Commands running in the root hold the lock shared; a rebuild takes it
    # exclusively, so it waits for them and they wait for it.
    exec 9>>"$cache/lock"
    flock -s 9
    if rootIsReady; then
        echo "reusing the Debian 13 root in $root (built $(date -r "$ready" +%F))"
    else
        flock -x 9
    fi
    if ! rootIsReady; then
        local mirror
        mirror=$(hostMirror)
        refuseMounts "$cache"
        rm -rf "$root" "$root.new"
        echo "building a Debian 13 ($suite) root in $root from $mirror"
        if ! debootstrap --variant=minbase \
            --include="$(IFS=,; echo "${packages[*]}")" \
            "$suite" "$root.new" "$mirror" >"$cache/debootstrap.log" 2>&1; then
            tail -n 30 "$cache/debootstrap.log" \
                "$root.new/debootstrap/debootstrap.log" 2>/dev/null || true
            return 1
        fi
        # The downloaded packages are installed: drop them (130 MB).
        rm -f "$root.new"/var/cache/apt/archives/*.deb
        mkdir -p "$root.new/src" "$root.new/.oldroot"
        mv "$root.new" "$root"
        echo "$suite ${packages[*]}" >"$ready"
    fi
    exec 9>&-
    du -sh "$root" | cut -f1 | sed 's/^/size: /'
    runIn /usr/bin/python3 -c 'import sys; print(sys.executable, sys.version)'
}

# runIn CMD...: CMD in the root (see the header), in /src, with the venv
# first on PATH.
runIn() {
    exec 9>>"$cache/lock"
    flock -s 9
    if ! rootIsReady; then
        echo "error: no Debian 13 root in $root: run $0 setup-root" >&2
        return 1
    fi
    mkdir -p "$run/src" "$run/tmp"
    chmod 1777 "$run/tmp"
    refreshHostFiles
    local dirs d status=0
    dirs=$(pipPaths | while read -r d; do if [ -d "$d" ]; then echo "$d"; fi; done)
    unshare --mount --propagation private -- bash -euc '
        root=$1 run=$2 dirs=$3
        shift 3
        mount --bind "$root" "$root"
        mount --rbind /dev "$root/dev"
        mount --rbind /proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --bind "$run/src" "$root/src"
        mount --bind "$run/tmp" "$root/tmp"
        for d in $dirs; do
            mkdir -p "$root$d"
            mount --bind "$d" "$root$d"
            mount -o remount,bind,ro "$root$d"
        done
        cd "$root"
        pivot_root . .oldroot
        cd /
        umount -l /.oldroot
        cd /src
        unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
        export HOME=/root TMPDIR=/tmp
        export PATH=/src/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        # The lock stays with this script, not with what CMD leaves behind.
        exec 9>&-
        exec "$@"
    ' bash "$root" "$run" "$dirs" "$@" || status=$?
    exec 9>&-
    refuseMounts "$cache"
    return "$status"
}

# setupVenv: a fresh copy of the checkout (tracked and untracked-but-not-
# ignored files, as .ci/check_plugin_install.sh copies it; never the
# checkout itself, which the py311 leg builds in), made a git work tree of
# its own for the plugin check, and a 3.13 venv in it.
setupVenv() {
    refuseMounts "$run"
    rm -rf "$run"
    mkdir -p "$run/src"
    chmod 755 "$run" "$run/src"
    (git ls-files -z --cached --others --exclude-standard |
        tar cf - --null --ignore-failed-read -T - 2>/dev/null) | tar xf - -C "$run/src"
    git -C "$run/src" init -q
    git -C "$run/src" add -A
    # TXSPAWN_STRICT_BUILD: the C extension builds with -Werror and fails
    # loudly instead of falling back to the Python engine.
    runIn sh -euc '
        /usr/bin/python3 -m venv /src/.venv
        python -m pip install -q --upgrade pip
        TXSPAWN_STRICT_BUILD=1 python -m pip install -q -e ".[test]"
        python -c "import sys, txspawn._cspawn; print(sys.executable, sys.version)"
    '
}

case "${1:-all}" in
    setup-root) setupRoot ;;
    setup-venv) setupVenv ;;
    run)
        shift
        runIn "$@"
        ;;
    all) exec env TXSPAWN_LEGS=py313 bash tools/test.sh ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
        exit 2
        ;;
esac
