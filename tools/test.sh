#!/usr/bin/env bash
# Set up a development environment from nothing and run every check txspawn's
# CI runs, in two legs, one per supported Python:
#
#   py311: lint, types, the test suite under trial and pytest, the long
#     forms of the adversarial suite (tests/adversarial,
#     TXSPAWN_ADVERSARIAL=1), the cgroup v2 limits in a small VM that is a
#     pure cgroup v2 host (tools/vm.sh), Twisted's own process suites against
#     txspawn's reactors, the plugin install check, the docs build
#     (tools/docs.sh) and the quick benchmark, on this machine's Python;
#   py313: the test suite under trial, Twisted's suites, the plugin install
#     check and the quick benchmark on Python 3.13, in a Debian 13 root
#     made by .ci/py313.sh (root is needed: debootstrap and mounts; the
#     script uses sudo otherwise).  Lint, types and docs do not depend on
#     the interpreter and run once, in py311; so does the suite under
#     pytest (it proves the tests run under pytest's collection and
#     fixtures, which do not depend on the interpreter either: a second
#     pass on 3.13 would cost four minutes of CI for no new fact).
#
# TXSPAWN_LEGS chooses the legs (default "py311 py313"; .ci/py313.sh runs
# "py313" alone).
#
# Every stage runs even when an earlier one failed (only a failed set-up
# stops the stages that need it); the script ends with a table (stage,
# result, counts, seconds) and exits non-zero if any stage failed.  Each
# stage's full output is also kept in .test-logs/<stage>.log.
#
# The py311 leg uses two interpreters:
#   - python3 from PATH makes ./.venv, for everything but Twisted's suites;
#   - the distribution's /usr/bin/python3 (override: TXSPAWN_SYSTEM_PYTHON)
#     makes a second venv under /tmp, for Twisted's suites: their
#     test_changeUID runs the interpreter as uid 1, which must be able to
#     execute it (a pyenv build in root's home cannot be), and a checkout
#     may itself sit where other users cannot enter.
#
# Usage: bash tools/test.sh        (from a fresh clone; creates ./.venv)
#        TXSPAWN_LEGS=py311 bash tools/test.sh     (one leg)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
logs="$root/.test-logs"
rm -rf "$logs"
mkdir -p "$logs"

names=()
results=()
counts=()
seconds=()
status=0

# counts LOG: one line summing up what a stage's output reports (trial,
# pytest, mypy, ruff), or nothing.
counts() {
    awk '
        /^(PASSED|FAILED) \(/ {
            trial = 1
            s = $0; sub(/^[A-Z]+ \(/, "", s); sub(/\)$/, "", s)
            n = split(s, parts, ", ")
            for (i = 1; i <= n; i++) {
                split(parts[i], kv, "=")
                tally[kv[1]] += kv[2]
            }
        }
        / passed|[0-9]+ failed/ && /^[0-9]/ && / in [0-9.]+s/ {
            line = $0; sub(/ in [0-9.]+s.*$/, "", line); pytest = line
        }
        /^Success: no issues found in/ { mypy = $6 " files, no issues" }
        /^Found [0-9]+ errors? in/ { mypy = $0 }
        /^All checks passed!/ { ruff = "clean" }
        /^Found [0-9]+ errors?\.$/ { ruff = $0 }
        /files? already formatted/ { ruff = $0 }
        /would reformat/ { ruff = "unformatted files" }
        END {
            if (trial) {
                out = (tally["successes"] + 0) " passed"
                if (tally["skips"]) out = out ", " tally["skips"] " skipped"
                if (tally["failures"]) out = out ", " tally["failures"] " failures"
                if (tally["errors"]) out = out ", " tally["errors"] " errors"
                if (tally["expectedFailures"]) out = out ", " tally["expectedFailures"] " expected failures"
                if (tally["unexpectedSuccesses"]) out = out ", " tally["unexpectedSuccesses"] " unexpected successes"
                print out
            } else if (pytest != "") print pytest
            else if (mypy != "") print mypy
            else if (ruff != "") print ruff
        }' "$1"
}

# failures LOG: the tests a stage's output reports failed (pytest's short
# summary, the id that ends each of trial's [FAIL]/[ERROR] blocks), at most
# 40 lines, with the process tree a hung reactor test describes
# (tests.builders): the report's tail is all a CI page may show.
failures() {
    awk '
        /^(FAILED|ERROR) [^ ]+::/ { print "  " $0; next }
        /descendants then:$/ || /^ +[0-9]+ \[.*\] State: / { print "  " $0 }
        /^\[(FAIL|ERROR)\]$/ { block = 1; last = ""; next }
        block && /^(=+|-+)$/ && length($0) > 70 { print "  " last; block = 0; next }
        block && NF { last = $0 }
    ' "$1" | cut -c1-300 | head -40
}

# stage NAME COMMAND...: run COMMAND, keep its output, record the result.
stage() {
    local name="$1"
    shift
    local log="$logs/$name.log" start=$SECONDS result
    echo
    echo "== $name"
    if "$@" 2>&1 | tee "$log"; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    names+=("$name")
    results+=("$result")
    counts+=("$(counts "$log")")
    seconds+=($((SECONDS - start)))
    [ "$result" = passed ]
}

# skipped NAME WHY: record a stage that could not run.
skipped() {
    names+=("$1")
    results+=("NOT RUN")
    counts+=("$2")
    seconds+=(0)
    status=1
}

report() {
    echo
    printf '%-22s %-8s %8s  %s\n' stage result seconds counts
    printf '%-22s %-8s %8s  %s\n' ----- ------ ------- ------
    local i total=0
    for i in "${!names[@]}"; do
        printf '%-22s %-8s %8s  %s\n' "${names[$i]}" "${results[$i]}" \
            "${seconds[$i]}" "${counts[$i]}"
        total=$((total + seconds[i]))
    done
    printf '%-22s %-8s %8s\n' total "$([ $status = 0 ] && echo passed || echo FAILED)" "$total"
    for i in "${!names[@]}"; do
        if [ "${results[$i]}" = FAILED ] && [ -f "$logs/${names[$i]}.log" ]; then
            echo "failed in ${names[$i]}:"
            failures "$logs/${names[$i]}.log"
        fi
    done
    echo "(full output of each stage: $logs/<stage>.log)"
}
trap report EXIT

py="$root/.venv/bin/python"
systemPython="${TXSPAWN_SYSTEM_PYTHON:-/usr/bin/python3}"
sysvenv="/tmp/txspawn-system-venv-$(id -u)-$(printf %s "$root" | md5sum | cut -c1-8)"
syspy="$sysvenv/bin/python"

setupSystemPackages() {
    # System tools the tests use: a C compiler (the C engine), setpriv and
    # unshare (util-linux; privilege-dropping tests), dd (coreutils), and
    # the distribution's Python with venv and headers (Twisted's suites).
    local need=()
    command -v cc >/dev/null || need+=(gcc libc6-dev)
    command -v setpriv >/dev/null || need+=(util-linux)
    command -v dd >/dev/null || need+=(coreutils)
    # Python's intersphinx inventory for the docs build (tools/docs.sh).
    [ -f /usr/share/doc/python3/html/objects.inv ] || need+=(python3-doc)
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
    if [ "$systemPython" = /usr/bin/python3 ]; then
        [ -x /usr/bin/python3 ] || need+=(python3)
        /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
        /usr/bin/python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null \
            || need+=(python3-dev)
    fi
    if [ ${#need[@]} -gt 0 ]; then
        local sudo=()
        [ "$(id -u)" = 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${need[@]}"
    fi
}

setupVenv() {
    python3 -m venv .venv &&
        "$py" -m pip install -q --upgrade pip &&
        # TXSPAWN_STRICT_BUILD makes the C extension build with -Werror and
        # fail loudly instead of falling back to the Python engine.
        TXSPAWN_STRICT_BUILD=1 "$py" -m pip install -q -e ".[dev]"
}

setupSystemVenv() {
    "$systemPython" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' &&
        mkdir -p "$sysvenv" &&
        chmod 755 "$sysvenv" &&
        "$systemPython" -m venv "$sysvenv" &&
        "$syspy" -m pip install -q --upgrade pip &&
        TXSPAWN_STRICT_BUILD=1 "$syspy" -m pip install -q -e ".[test]" &&
        "$syspy" -c 'import sys; print(sys.executable, sys.version)'
}

legs=" ${TXSPAWN_LEGS:-py311 py313} "
case "$legs" in
    *" py311 "* | *" py313 "*) ;;
    *)
        echo "TXSPAWN_LEGS must name py311, py313 or both, not:$legs" >&2
        exit 2
        ;;
esac

leg311() {
    stage setup-system-packages setupSystemPackages
    if stage setup-venv setupVenv; then
        stage info env TXSPAWN_REQUIRE_C=1 "$py" -m txspawn info
        stage ruff-check "$py" -m ruff check .
        stage ruff-format "$py" -m ruff format --check .
        stage mypy "$py" -m mypy
        # The whole suite, Twisted conformance included, under python -b -X dev
        # in a new random order each run (the seed is printed first).
        stage trial env TXSPAWN_REQUIRE_C=1 "$py" -b -X dev -m twisted.trial --random=0 tests
        # The same suite, pytest-runnable, in pytest-randomly's order.
        stage pytest env TXSPAWN_REQUIRE_C=1 "$py" -m pytest -q -p no:cacheprovider tests \
            --ignore=tests/test_twisted_conformance.py \
            --ignore=tests/twisted_global_suite.py
        # The adversarial suite's long forms (issue 11): the fuzz of every entry
        # point, EMFILE at every step, 10,000 children alive, threads forking
        # and opening inheritable fds (with tests.test_threads_spawn's long
        # form); the default suite above ran their short forms.
        stage adversarial env TXSPAWN_REQUIRE_C=1 TXSPAWN_ADVERSARIAL=1 \
            "$py" -b -X dev -m twisted.trial --random=0 tests.adversarial \
            tests.test_threads_spawn
        # cgroup v2 limits enforced for real (issue 14): this host's cgroup
        # v2 has no controllers, so tests.test_cgroup_limits boots a small VM
        # that is a pure cgroup v2 host (tools/vm.sh: the distribution's
        # kernel and qemu, virtme-ng; installed here when missing), once for
        # the module; the other stages skip it (TXSPAWN_VM_TESTS unset).
        if stage setup-vm bash tools/vm.sh setup; then
            stage vm env TXSPAWN_REQUIRE_C=1 TXSPAWN_VM_TESTS=1 \
                "$py" -b -X dev -m twisted.trial tests.test_cgroup_limits
        else
            skipped vm "needs setup-vm"
        fi
        stage plugin-install bash .ci/check_plugin_install.sh
        # Sphinx + pydoctor, every warning an error, every reference resolved.
        stage docs bash tools/docs.sh
        # The side-by-side benchmark runs; its numbers are for reading (a
        # goal missed on a busy machine is explained in its output, not
        # failed).
        stage bench "$py" -m txspawn bench --quick
    else
        for name in info ruff-check ruff-format mypy trial pytest adversarial setup-vm vm \
            plugin-install docs bench; do
            skipped "$name" "needs setup-venv"
        done
    fi
    if stage setup-system-venv setupSystemVenv; then
        # twisted.internet.test.test_process through its ReactorBuilder on the
        # four txspawn reactor classes, twisted.test.test_process on the global
        # reactor (--reactor=txspawn) and test_posixprocess, on every engine x
        # monitor; exclusions, each with its reason, in tests/twisted_exclusions.py.
        stage twisted-suites bash .ci/twisted_suites.sh "$syspy" -m twisted.trial
    else
        skipped twisted-suites "needs setup-system-venv"
    fi
}

# The py313 leg: .ci/py313.sh builds (or reuses) the Debian 13 root, copies
# the checkout into it and makes a 3.13 venv there; each later stage runs
# one command inside (`.ci/py313.sh run CMD`: the venv's python first on
# PATH, the copy as the working directory, /usr/bin/python3 being 3.13).
leg313() {
    local in313=(bash .ci/py313.sh run)
    local rest=(py313-info py313-trial py313-twisted-suites
        py313-plugin-install py313-bench)
    if ! stage py313-setup-root bash .ci/py313.sh setup-root; then
        skipped py313-setup-venv "needs py313-setup-root"
    elif stage py313-setup-venv bash .ci/py313.sh setup-venv; then
        stage py313-info "${in313[@]}" env TXSPAWN_REQUIRE_C=1 python -m txspawn info
        stage py313-trial "${in313[@]}" env TXSPAWN_REQUIRE_C=1 \
            python -b -X dev -m twisted.trial --random=0 tests
        # The venv is made from the root's /usr/bin/python3, which uid 1
        # can execute (test_changeUID).
        stage py313-twisted-suites "${in313[@]}" \
            bash .ci/twisted_suites.sh /src/.venv/bin/python -m twisted.trial
        stage py313-plugin-install "${in313[@]}" \
            bash .ci/check_plugin_install.sh /usr/bin/python3
        stage py313-bench "${in313[@]}" python -m txspawn bench --quick
        rest=()
    fi
    local name
    for name in "${rest[@]}"; do
        skipped "$name" "needs py313-setup-venv"
    done
}

case "$legs" in *" py311 "*) leg311 ;; esac
case "$legs" in *" py313 "*) leg313 ;; esac
exit "$status"
