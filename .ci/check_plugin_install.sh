#!/usr/bin/env bash
# Check that the `txspawn` reactor plugin works after `pip install .` AND
# after `pip install -e .`: each in its own fresh venv, it must be listed by
# `twistd --help-reactors`, run a .tac file under `twistd --reactor=txspawn`,
# and run a trial test under `trial --reactor=txspawn` that asserts the
# global reactor is txspawn's.  The supervisor's plugin too: listed by
# `twistd --help` as `txspawn-supervise`, it must run a program from a
# config under `twistd -n txspawn-supervise`, answer `python -m txspawn ctl
# status`, and leave no child alive after SIGTERM.  Each install must also
# have txspawn's init program (pid 1 of a pid namespace), built by
# setup.py: found where the install puts it (in the venv; in the source
# tree for -e), executable, and working.  Everything runs from a directory
# outside the checkout, so the checkout is never found through the current
# directory.
# Each venv first upgrades to the current pip; the build gets the current
# setuptools (build isolation).  Both installs must be quiet: any warning
# from pip, setuptools or the C compiler, in everything `pip install -v`
# prints, fails the check (see no_warnings below).
#
# Usage: .ci/check_plugin_install.sh [python3]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/run"
cat > "$work/run/app.tac" <<'TAC'
# A tiny twistd application: spawn a child through the global reactor, check
# that it is txspawn's and that the child's exit is reported, then stop.
import sys

from twisted.application.service import Application, Service
from twisted.internet import reactor
from twisted.internet.protocol import ProcessProtocol


class Check(ProcessProtocol):
    def processEnded(self, reason):
        from txspawn._reactor.mixin import SpawnReactorMixin

        code = reason.value.exitCode
        ours = isinstance(reactor, SpawnReactorMixin)
        with open("result.txt", "w") as f:
            f.write(f"txspawn={ours} exit={code} ({type(reactor).__module__})\n")
        reactor.stop()


class Spawner(Service):
    def startService(self):
        reactor.spawnProcess(
            Check(), sys.executable, [sys.executable, "-c", "raise SystemExit(7)"]
        )


application = Application("txspawn-plugin-check")
Spawner().setServiceParent(application)
TAC
cat > "$work/run/procs.toml" <<'TOML'
# One program for twistd -n txspawn-supervise: it says its pid, then sleeps
# ($$ is a literal $ in the config: $$$$ is the shell's $$).
[programs.sleeper]
command = ["sh", "-c", "echo $$$$ > sleeper.pid; exec sleep 600"]
ready = { after = 0.2 }
TOML
cat > "$work/run/test_pluginreactor.py" <<'PY'
from twisted.trial.unittest import TestCase


class PluginReactorTests(TestCase):
    def test_reactorIsTxspawn(self):
        from twisted.internet import reactor
        from txspawn._reactor.mixin import SpawnReactorMixin

        self.assertIsInstance(reactor, SpawnReactorMixin)
PY

# no_warnings LOG...: fail, showing them, if the logs hold a warning: pip's
# "WARNING:"/"DEPRECATION:" lines, a Python warning forwarded from the build
# backend ("...: SetuptoolsDeprecationWarning: ..."), a C compiler's
# "file:line:col: warning:", or setup.py's own "WARNING: building
# txspawn._cspawn failed".  One line is not ours and is let through: pip's
# "Location 'file:///...' is ignored" for a local index that the machine's
# pip configuration names but that does not exist.
no_warnings() {
    local found
    found="$(grep -hE '(^|[[:space:]])(WARNING|DEPRECATION):|[A-Za-z]Warning:|: warning:' "$@" \
        | grep -vE "^[[:space:]]*WARNING: Location 'file:///[^']*' is ignored: it is neither a file nor a directory\.$" \
        || true)"
    if [ -n "$found" ]; then
        echo "FAIL: the install printed warnings:" >&2
        printf '%s\n' "$found" >&2
        return 1
    fi
}

# install VENV PIP-INSTALL-ARGS...: a fresh venv with the current pip, then
# the install, verbose, its stdout and stderr kept apart (so that lines never
# interleave) and checked by no_warnings.
install() {
    local venv="$1"
    shift
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip 2>"$venv.pip-upgrade.err" \
        || { cat "$venv.pip-upgrade.err" >&2; return 1; }
    if ! "$venv/bin/python" -m pip install -v "$@" >"$venv.out" 2>"$venv.err"; then
        cat "$venv.out" "$venv.err" >&2
        return 1
    fi
    no_warnings "$venv.out" "$venv.err"
}

check() {
    local venv="$1"
    cd "$work/run"
    echo "--- $venv: twistd --help-reactors"
    "$venv/bin/twistd" --help-reactors | tee reactors.txt
    # A working reactor is listed without the leading "!" of broken ones.
    grep -E '^ +txspawn' reactors.txt
    # Every txspawn reactor kind: listed as working, and running a .tac
    # under twistd and a test under trial, on its own reactor class.
    local kind module
    for kind in txspawn:epollreactor txspawn-poll:pollreactor \
        txspawn-select:selectreactor txspawn-asyncio:asyncioreactor; do
        module="${kind#*:}"
        kind="${kind%%:*}"
        grep -qE "^ +$kind[[:space:]]" reactors.txt
        echo "--- $venv: twistd --reactor=$kind -ny app.tac"
        rm -f result.txt
        timeout 60 "$venv/bin/twistd" --reactor="$kind" --nodaemon --pidfile= \
            --logfile=twistd.log -y app.tac
        cat result.txt
        grep -qx "txspawn=True exit=7 (txspawn._reactor.$module)" result.txt
        echo "--- $venv: trial --reactor=$kind"
        # The trial script does not put the current directory on sys.path:
        # name the test file by path.
        timeout 120 "$venv/bin/trial" --reactor="$kind" "$work/run/test_pluginreactor.py"
    done
    timeout 120 "$venv/bin/python" -m twisted.trial --reactor=txspawn \
        test_pluginreactor
    check_supervise "$venv"
    # A stale, corrupt plugin cache must not hide the plugin.
    local plugdir
    plugdir="$("$venv/bin/python" -c 'import os, twisted.plugins.txspawn_reactors as m; print(os.path.dirname(m.__file__))')"
    echo garbage > "$plugdir/dropin.cache"
    "$venv/bin/twistd" --help-reactors | grep -E '^ +txspawn'
    echo garbage > "$plugdir/dropin.cache"
    "$venv/bin/twistd" --help | grep -E '^ +txspawn-supervise '
    cd "$root"
}

# check_supervise VENV: the supervisor's plugin is listed, runs the program
# of procs.toml under twistd (no --reactor: it installs txspawn's), is
# driven by `python -m txspawn ctl`, and stops on SIGTERM with no child
# left.  Run from $work/run.
check_supervise() {
    local venv="$1" pid child rc=0 i
    echo "--- $venv: twistd -n txspawn-supervise"
    "$venv/bin/twistd" --help | grep -E '^ +txspawn-supervise '
    rm -f sleeper.pid supervise.log
    "$venv/bin/twistd" -n --pidfile= --logfile=supervise.log \
        txspawn-supervise -c procs.toml &
    pid=$!
    # Wait (bounded) for the program to start: it writes its pid.
    for i in $(seq 600); do
        [ -s sleeper.pid ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! [ -s sleeper.pid ]; then
        kill -TERM "$pid" 2>/dev/null || true
        cat supervise.log >&2
        echo "FAIL: the supervised program did not start" >&2
        return 1
    fi
    child="$(cat sleeper.pid)"
    # Readiness takes 0.2 s: ask until it says RUNNING (bounded).
    for i in $(seq 100); do
        "$venv/bin/python" -m txspawn ctl -c procs.toml status \
            >status.txt 2>&1 || true
        grep -qE "^sleeper +RUNNING +$child " status.txt && break
        sleep 0.1
    done
    cat status.txt
    grep -qE "^sleeper +RUNNING +$child " status.txt
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    # twistd ends by the signal it got: 128 + SIGTERM.
    if [ "$rc" -ne 143 ] || kill -0 "$child" 2>/dev/null; then
        cat supervise.log >&2
        echo "FAIL: twistd exited $rc; program pid $child alive: $(kill -0 "$child" 2>/dev/null && echo yes || echo no)" >&2
        return 1
    fi
}

# check_init VENV DIR: txspawn's init program is found under DIR, is an
# executable file, and runs a command, exiting as it did.
check_init() {
    local venv="$1" dir="$2" init rc=0
    echo "--- $venv: txspawn's init program"
    init="$(cd "$work/run" && "$venv/bin/python" -c 'import os; from txspawn._kernel.initprogram import initProgram; print(os.fsdecode(initProgram()))')"
    echo "$init"
    case "$init" in
        "$dir"/*) ;;
        *) echo "FAIL: the init program is not under $dir" >&2; return 1 ;;
    esac
    test -f "$init" && test -x "$init"
    "$init" -1 -1 0 1 /bin/sh sh -c 'exit 3' || rc=$?
    test "$rc" -eq 3
}

# Both installs are made from copies of the checkout (tracked and
# untracked-but-not-ignored files): a build writes into its source tree
# (build/, egg-info; for -e the in-place C extension and dropin.cache), which
# must not touch a checkout that other processes may be using.
copy() {
    mkdir -p "$1"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | tar cf - --null --ignore-failed-read -T - 2>/dev/null) | tar xf - -C "$1"
}

echo "=== pip install ."
copy "$work/src-wheel"
install "$work/v1" "$work/src-wheel"
check "$work/v1"
check_init "$work/v1" "$work/v1"

echo "=== pip install -e ."
copy "$work/src"
install "$work/v2" -e "$work/src"
check "$work/v2"
check_init "$work/v2" "$work/src"
# The editable install found the dropin in the source tree itself.
test -f "$work/src/twisted/plugins/dropin.cache"
# The dropin cache written into the checkout must stay out of git, and so
# must the init program built into it.
git -C "$root" check-ignore -q twisted/plugins/dropin.cache
git -C "$root" check-ignore -q txspawn/_libexec/txspawn-init

echo "plugin install check: OK"
