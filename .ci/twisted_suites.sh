#!/usr/bin/env bash
# Run Twisted's own process test suites against txspawn (issue 2, item 7):
#
#   - twisted.internet.test.test_process through its ReactorBuilder pointed
#     at txspawn's four reactor classes (tests.test_twisted_conformance);
#   - twisted.test.test_process on the global reactor, `--reactor=txspawn`
#     (tests.twisted_global_suite wraps it with the exclusions applied);
#   - twisted.internet.test.test_posixprocess (no ReactorBuilder: Twisted's
#     fd-listing helpers) under `--reactor=txspawn` as well;
#   - twisted.test.test_stdio, whose children re-create the reactor by its
#     module's install(), under `--reactor=txspawn`;
#
# each once per monitor (pidfd, sigchld) and per engine that is available
# (python always; c when built); and
#
#   - twisted.runner.test.test_procmon against txspawn.supervise.procmon's
#     ProcessMonitor (tests.twisted_procmon_suite), once: Twisted's fake
#     process reactor drives it, so no engine or monitor takes part.
#
# The only excluded tests are listed, each with its reason, in
# tests/twisted_exclusions.py.
#
# Run as root, the interpreter must be one that every user can execute:
# test_changeUID runs it as uid 1 (tools/test.sh passes a venv made from the
# distribution's /usr/bin/python3).  That is checked first, so the test can
# never be skipped here.
#
# Usage: .ci/twisted_suites.sh [trial-command...]
#   default trial command: python -m twisted.trial (with $PYTHON or python3)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ]; then
    trial=("$@")
else
    trial=("${PYTHON:-python3}" -m twisted.trial)
fi
python="${trial[0]}"

if [ "$(id -u)" = 0 ] && ! "$python" -c '
import subprocess, sys
subprocess.run([sys.executable, "-c", ""], user=1, check=True)'; then
    echo "error: uid 1 cannot execute $python, so Twisted's test_changeUID" \
        "cannot run; use an interpreter every user can execute (tools/test.sh" \
        "makes a venv from /usr/bin/python3)" >&2
    exit 1
fi

engines=(python)
if "$python" -c 'import sys; from txspawn._engine.selection import availableSpawners; sys.exit(availableSpawners().get("c") is not None)' 2>/dev/null; then
    engines+=(c)
fi

status=0
echo "=== procmon"
tmp="$(mktemp -d)"
"${trial[@]}" --reactor=txspawn --temp-directory="$tmp/procmon" \
    tests.twisted_procmon_suite || status=1
rm -rf "$tmp"
for engine in "${engines[@]}"; do
    for monitor in pidfd sigchld; do
        echo "=== engine=$engine monitor=$monitor"
        tmp="$(mktemp -d)"
        export TXSPAWN_ENGINE="$engine" TXSPAWN_MONITOR="$monitor"
        "${trial[@]}" --temp-directory="$tmp/builders" \
            tests.test_twisted_conformance || status=1
        "${trial[@]}" --reactor=txspawn --temp-directory="$tmp/global" \
            tests.twisted_global_suite || status=1
        "${trial[@]}" --reactor=txspawn --temp-directory="$tmp/posix" \
            twisted.internet.test.test_posixprocess || status=1
        "${trial[@]}" --reactor=txspawn --temp-directory="$tmp/stdio" \
            twisted.test.test_stdio || status=1
        rm -rf "$tmp"
    done
done
# twisted.test.test_stdio re-creates the reactor in its children with
# namedAny(reactor.__class__.__module__).install(): once on every other
# txspawn reactor kind too (default engine and monitor).
for kind in txspawn-poll txspawn-select txspawn-asyncio; do
    echo "=== reactor=$kind"
    tmp="$(mktemp -d)"
    "${trial[@]}" --reactor="$kind" --temp-directory="$tmp/stdio" \
        twisted.test.test_stdio || status=1
    rm -rf "$tmp"
done
exit "$status"
