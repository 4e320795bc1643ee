#!/usr/bin/env bash
# Check that the `txspawn` reactor plugin works after `pip install .` AND
# after `pip install -e .`: each in its own fresh venv, it must be listed by
# `twistd --help-reactors`, run a .tac file under `twistd --reactor=txspawn`,
# and run a trial test under `trial --reactor=txspawn` that asserts the
# global reactor is txspawn's.  Everything runs from a directory outside the
# checkout, so the checkout is never found through the current directory.
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
        code = reason.value.exitCode
        mixin = type(reactor).__mro__[1].__name__
        with open("result.txt", "w") as f:
            f.write(f"{type(reactor).__module__} {mixin} exit={code}\n")
        reactor.stop()


class Spawner(Service):
    def startService(self):
        reactor.spawnProcess(
            Check(), sys.executable, [sys.executable, "-c", "raise SystemExit(7)"]
        )


application = Application("txspawn-plugin-check")
Spawner().setServiceParent(application)
TAC
cat > "$work/run/test_pluginreactor.py" <<'PY'
from twisted.trial.unittest import TestCase


class PluginReactorTests(TestCase):
    def test_reactorIsTxspawn(self):
        from twisted.internet import reactor
        from txspawn._reactor import SpawnReactorMixin

        self.assertIsInstance(reactor, SpawnReactorMixin)
PY

check() {
    local venv="$1"
    cd "$work/run"
    echo "--- $venv: twistd --help-reactors"
    "$venv/bin/twistd" --help-reactors | tee reactors.txt
    # A working reactor is listed without the leading "!" of broken ones.
    grep -E '^ +txspawn' reactors.txt
    echo "--- $venv: twistd --reactor=txspawn -ny app.tac"
    rm -f result.txt
    timeout 60 "$venv/bin/twistd" --reactor=txspawn --nodaemon --pidfile= \
        --logfile=twistd.log -y app.tac
    cat result.txt
    grep -qx "txspawn._reactor SpawnReactorMixin exit=7" result.txt
    echo "--- $venv: trial --reactor=txspawn"
    # The trial script does not put the current directory on sys.path: name
    # the test file by path.
    timeout 120 "$venv/bin/trial" --reactor=txspawn "$work/run/test_pluginreactor.py"
    timeout 120 "$venv/bin/python" -m twisted.trial --reactor=txspawn \
        test_pluginreactor
    # A stale, corrupt plugin cache must not hide the plugin.
    local plugdir
    plugdir="$("$venv/bin/python" -c 'import os, twisted.plugins.txspawn_reactors as m; print(os.path.dirname(m.__file__))')"
    echo garbage > "$plugdir/dropin.cache"
    "$venv/bin/twistd" --help-reactors | grep -E '^ +txspawn'
    cd "$root"
}

echo "=== pip install ."
"$python" -m venv "$work/v1"
"$work/v1/bin/pip" install -q "$root"
check "$work/v1"

echo "=== pip install -e ."
# Install a copy of the checkout (tracked and untracked-but-not-ignored
# files): the editable build writes into its source tree (the in-place C
# extension, egg-info, dropin.cache), which must not touch a checkout that
# other processes may be using.
mkdir -p "$work/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | tar cf - --null --ignore-failed-read -T - 2>/dev/null) | tar xf - -C "$work/src"
"$python" -m venv "$work/v2"
"$work/v2/bin/pip" install -q -e "$work/src"
check "$work/v2"
# The editable install found the dropin in the source tree itself.
test -f "$work/src/twisted/plugins/dropin.cache"
# The dropin cache written into the checkout must stay out of git.
git -C "$root" check-ignore -q twisted/plugins/dropin.cache

echo "plugin install check: OK"
