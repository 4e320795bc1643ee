#!/usr/bin/env bash
# A small VM that is a pure cgroup v2 host, for the tests that need cgroup
# v2 controllers (memory, pids, cpu): on a hybrid host such as CI's they are
# bound to cgroup v1 (issue 14, item 6; tests/test_cgroup_limits.py).
#
#   tools/vm.sh setup        install what the VM needs, when missing
#   tools/vm.sh run CMD...   boot the VM and run CMD (words joined into one
#                            shell command line) as root inside; prints its
#                            output and exits with its status
#
# The VM is the distribution's kernel (linux-image-amd64) in the
# distribution's qemu (qemu-system-x86), booted by virtme-ng (PyPI) on the
# host's own filesystem, read-only (9p), with writable overlays on /tmp,
# /etc, /var ...: the checkout, its venv and the interpreter behind it are at
# the same paths inside.  No systemd: the guest's cgroup2 is mounted at
# /sys/fs/cgroup with every controller offered in the root's
# cgroup.controllers and none enabled.
#
# KVM is an optimisation: it is tried first (a boot running `true`) and the
# VM falls back to software emulation (qemu's TCG) when it fails; on a nested
# host qemu's `-cpu host` can fail (an MSR it cannot set) or hang at boot.
# Under emulation a boot takes about 30 s and file access through 9p is slow.
#
# Speed: a Python importing Twisted reads about 2,800 files; each 9p lookup
# costs milliseconds under emulation, so `run` first copies the files a given
# Python program imports into a tmpfs inside the VM (TXSPAWN_VM_BUNDLE) and
# lays it over their paths with overlayfs: anything not in the bundle is still
# read from the host.
#
# Environment:
#   TXSPAWN_VM_CACHE    where virtme-ng's venv is kept (/var/cache/txspawn-vm)
#   TXSPAWN_VM_KVM      auto (default), 1 (KVM only) or 0 (emulation only)
#   TXSPAWN_VM_KERNEL   the kernel to boot (default: the newest /boot/vmlinuz-*)
#   TXSPAWN_VM_MEMORY   guest memory (default 1G)
#   TXSPAWN_VM_CPUS     guest CPUs (default 2)
#   TXSPAWN_VM_TIMEOUT  seconds for a whole `run` (default 1200)
#   TXSPAWN_VM_BUNDLE   a file listing (one absolute path a line) the files to
#                       copy into the guest's tmpfs before CMD runs
set -euo pipefail

cache="${TXSPAWN_VM_CACHE:-/var/cache/txspawn-vm}"
venv="$cache/venv"
aptPackages=(qemu-system-x86 linux-image-amd64 busybox-static)

sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)

# missingApt: the Debian packages of aptPackages not installed.
missingApt() {
    local p
    for p in "${aptPackages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            echo "$p"
    done
}

setup() {
    local need
    need=$(missingApt)
    if [ -n "$need" ]; then
        echo "installing: $need"
        # --no-install-recommends: qemu's recommended GUI and firmware are
        # not needed for a serial console.
        # shellcheck disable=SC2086
        "${sudo[@]}" apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
                --no-install-recommends $need >/dev/null
    fi
    if ! "$venv/bin/vng" --version >/dev/null 2>&1; then
        echo "installing virtme-ng into $venv"
        "${sudo[@]}" mkdir -p "$cache"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q virtme-ng
    fi
    kernel >/dev/null
    echo "kernel: $(kernel); $("$venv/bin/vng" --version 2>&1 | head -1);" \
        "$(qemu-system-x86_64 --version | head -1)"
}

# kernel: the kernel to boot.
kernel() {
    local k="${TXSPAWN_VM_KERNEL:-}"
    if [ -z "$k" ]; then
        k=$(find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
    fi
    if [ -z "$k" ] || [ ! -r "$k" ]; then
        echo "error: no kernel to boot in /boot (install linux-image-amd64:" \
            "tools/vm.sh setup)" >&2
        return 1
    fi
    echo "$k"
}

# vng ARGS...: virtme-ng, with its own tools (virtme-run) on PATH, as root
# in the guest.
vng() {
    PATH="$venv/bin:$PATH" "$venv/bin/vng" --run "$(kernel)" --user root \
        --memory "${TXSPAWN_VM_MEMORY:-1G}" --cpus "${TXSPAWN_VM_CPUS:-2}" "$@" </dev/null
}

# accel: "kvm" or "tcg" (software emulation), as TXSPAWN_VM_KVM says; auto
# boots once with KVM to see whether it works here.
accel() {
    case "${TXSPAWN_VM_KVM:-auto}" in
        0) echo tcg ;;
        1) echo kvm ;;
        *)
            if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
                timeout 60 bash -c "$(declare -f vng kernel); venv='$venv'; vng --exec true" \
                    >"$cache/kvm-probe.log" 2>&1; then
                echo kvm
            else
                echo "KVM unusable here (see $cache/kvm-probe.log): software emulation" >&2
                echo tcg
            fi
            ;;
    esac
}

# guestScript CMD: the shell script run inside: the bundle laid over the
# host's paths (when there is one), then CMD.
guestScript() {
    local cmd="$1"
    if [ -n "$tarball" ]; then
        # The tar is read from the host in one stream (9p is fast for large
        # sequential reads, slow for lookups), unpacked into a tmpfs, and
        # each top directory it holds is laid over the host's with overlayfs
        # (tmpfs first): a lookup the bundle answers never leaves the guest.
        cat <<EOF
awk '{print "vm: guest up after " \$1 " s"}' /proc/uptime >&2
set -e
mkdir -p /run/txspawn-bundle
mount -t tmpfs -o mode=0755 tmpfs /run/txspawn-bundle
tar -C /run/txspawn-bundle -xf '$tarball'
for top in \$(cat /run/txspawn-bundle/.tops); do
    mount -t overlay overlay -o "lowerdir=/run/txspawn-bundle\$top:\$top" "\$top"
done
set +e
awk '{print "vm: bundle laid over the host paths at " \$1 " s"}' /proc/uptime >&2
EOF
    fi
    echo "$cmd"
}

# makeBundle: $tarball from TXSPAWN_VM_BUNDLE's list, with .tops naming the
# directories to lay it over.
makeBundle() {
    local list="$TXSPAWN_VM_BUNDLE" tops
    tops=$(mktemp -d)
    python3 - "$list" "$tops/.tops" <<'EOF'
import os, sys
paths = [l.strip() for l in open(sys.argv[1]) if l.strip()]
tops = set()
for p in paths:
    parts = p.split("/")
    # Lay the bundle over the first two levels (/root/.pyenv, /work/main):
    # an overlay on / itself cannot be made over the running root.
    tops.add("/".join(parts[:3]))
with open(sys.argv[2], "w") as f:
    f.write("\n".join(sorted(tops)) + "\n")
EOF
    tar -cf "$tarball" -C "$tops" .tops
    # A file that is gone is only left out: the guest reads it from the host.
    tar -rf "$tarball" -P --transform 's,^/,,' -T "$list" ||
        echo "warning: some of the bundle's files are missing" >&2
    rm -rf "$tops"
}

run() {
    if [ $# -eq 0 ]; then
        echo "usage: $0 run CMD..." >&2
        return 2
    fi
    setup >&2
    local mode start status=0
    mode=$(accel)
    local args=()
    [ "$mode" = kvm ] || args+=(--disable-kvm)
    tarball=
    if [ -n "${TXSPAWN_VM_BUNDLE:-}" ]; then
        # One per run: runs may overlap.
        tarball=$(mktemp "$cache/bundle-XXXXXX.tar")
        trap 'rm -f "$tarball"' EXIT
        makeBundle
        # The guest mounts a tmpfs on /var/cache: share the cache directory
        # (read-only) at its own path.
        args+=(--rodir="$cache")
    fi
    start=$SECONDS
    echo "booting $(kernel) ($mode)" >&2
    timeout "${TXSPAWN_VM_TIMEOUT:-1200}" bash -c \
        "$(declare -f vng kernel); venv='$venv'; vng \"\$@\"" bash \
        "${args[@]}" --exec "$(guestScript "$*")" || status=$?
    echo "vm: exit status $status after $((SECONDS - start)) s ($mode)" >&2
    return "$status"
}

case "${1:-}" in
    setup) setup ;;
    run)
        shift
        run "$@"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
        exit 2
        ;;
esac
