#!/usr/bin/env bash
# Set up a development environment from nothing and run every check txspawn's
# CI runs: lint, types, the test suite under trial and pytest, Twisted's own
# process suites against txspawn's reactors, and the plugin install check.
#
# Usage: bash tools/test.sh        (from a fresh clone; creates ./.venv)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# System tools the tests use: a C compiler (the C engine), setpriv and
# unshare (util-linux; privilege-dropping tests), dd (coreutils).
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v setpriv >/dev/null || need+=(util-linux)
command -v dd >/dev/null || need+=(coreutils)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${need[@]}"
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq "${need[@]}"
    fi
fi

python3 -m venv .venv
py="$root/.venv/bin/python"
"$py" -m pip install -q --upgrade pip
# TXSPAWN_STRICT_BUILD makes the C extension build with -Werror and fail
# loudly instead of falling back to the Python engine.
TXSPAWN_STRICT_BUILD=1 "$py" -m pip install -q -e ".[dev]"

echo "== engine and features"
TXSPAWN_REQUIRE_C=1 "$py" -m txspawn info

echo "== ruff"
"$py" -m ruff check .
"$py" -m ruff format --check .

echo "== mypy --strict"
"$py" -m mypy

echo "== trial (python -b -X dev), the whole suite incl. Twisted conformance"
TXSPAWN_REQUIRE_C=1 "$py" -b -X dev -m twisted.trial --random=0 tests

echo "== Twisted's own process suites, every engine x monitor"
# twisted.internet.test.test_process through its ReactorBuilder on the four
# txspawn reactor classes, twisted.test.test_process on the global reactor
# (--reactor=txspawn) and test_posixprocess; exclusions, each with its
# reason, in tests/twisted_exclusions.py.
bash .ci/twisted_suites.sh "$py" -m twisted.trial

echo "== plugin after 'pip install .' and 'pip install -e .'"
bash .ci/check_plugin_install.sh

echo "== pytest (the same suite, pytest-runnable)"
TXSPAWN_REQUIRE_C=1 "$py" -m pytest -q -p no:cacheprovider tests \
    --ignore=tests/test_twisted_conformance.py \
    --ignore=tests/twisted_global_suite.py
