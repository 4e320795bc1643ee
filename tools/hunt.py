#!/usr/bin/env python3
# -*- test-case-name: tests.test_hunt -*-
"""
Hunt for flaky tests: run the whole suite many times, in shuffled orders and
under contention, and report every failure with the seed that found it.

Two kinds of run, each repeated:

  - C{seeded}: C{trial --random=SEED tests} (as CI runs it: C{python -b -X
    dev}, C{TXSPAWN_REQUIRE_C=1}) and then C{pytest -p randomly
    --randomly-seed=SEED tests}, while a CPU hog keeps every core busy, so
    that a race between a test and a child, a thread or the reactor gets
    every chance to lose;
  - C{parallel}: C{trial -j2 --random=SEED tests}, where two workers run
    test modules side by side (shared fds, children, signal state and
    temporary files between processes), again under the hog unless
    C{--no-hog}.

Each run's output is kept under C{--logs} (default C{_hunt/}) for the
post-mortem; the script ends with a table (kind, seed, result, seconds,
failing tests) and exits non-zero if any run failed.  Re-run one failure
with the command the table prints.

Usage (from the checkout, after C{bash tools/test.sh} has made C{.venv})::

    .venv/bin/python tools/hunt.py                  # 10 seeded + 10 parallel
    .venv/bin/python tools/hunt.py --seeded 3 --parallel 0 --seed 1234
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: A test id at the end of one of trial's [FAIL]/[ERROR] blocks.
_TRIAL_ID = re.compile(r"^(tests|twisted)\.[\w.]+$")
#: trial's last line.
_TRIAL_RESULT = re.compile(r"^(PASSED|FAILED) \((.*)\)$")
#: pytest's short summary lines (C{-rfE}).
_PYTEST_ID = re.compile(r"^(?:FAILED|ERROR) (\S+)")


@dataclass
class Run:
    """
    One run of one test command.
    """

    kind: str
    seed: int
    command: list[str]
    log: Path
    passed: bool = False
    seconds: float = 0.0
    counts: str = ""
    failures: list[str] = field(default_factory=list)


@contextmanager
def cpuHog(cores: int) -> Iterator[None]:
    """
    Keep C{cores} CPUs busy with spinning processes for the duration.
    """
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
        )
        for _ in range(cores)
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def trialFailures(output: str) -> list[str]:
    """
    The test ids trial names under its C{[FAIL]} and C{[ERROR]} blocks.
    """
    failures: list[str] = []
    inBlock = False
    for line in output.splitlines():
        if line in ("[FAIL]", "[ERROR]"):
            inBlock = True
        elif line.startswith("[") and line.endswith("]"):
            inBlock = False
        elif inBlock and _TRIAL_ID.match(line) and line not in failures:
            failures.append(line)
    return failures


def runOne(run: Run, env: dict[str, str]) -> None:
    """
    Run C{run.command}, keep its output in C{run.log} and fill in the result.
    """
    start = time.monotonic()
    with run.log.open("w") as log:
        log.write("$ " + " ".join(run.command) + "\n")
        log.flush()
        result = subprocess.run(
            run.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        log.write(result.stdout)
    run.seconds = time.monotonic() - start
    run.passed = result.returncode == 0
    lines = result.stdout.rstrip().splitlines()
    if "pytest" in run.kind:
        run.failures = [
            m.group(1) for line in lines if (m := _PYTEST_ID.match(line)) is not None
        ]
        run.counts = lines[-1].strip("= ") if lines else ""
    else:
        run.failures = trialFailures(result.stdout)
        for line in reversed(lines):
            if (m := _TRIAL_RESULT.match(line)) is not None:
                run.counts = m.group(2)
                break
    if not run.passed and not run.failures:
        run.failures = [f"(exit status {result.returncode}; see {run.log})"]


def plan(args: argparse.Namespace, logs: Path) -> list[Run]:
    """
    The runs to make, with their seeds drawn from C{args.seed}.
    """
    python = args.python
    seeds = random.Random(args.seed)
    trial = [python, "-b", "-X", "dev", "-m", "twisted.trial"]
    runs: list[Run] = []
    for i in range(args.seeded):
        seed = seeds.randrange(1, 2**31)
        runs.append(
            Run(
                "seeded trial",
                seed,
                [*trial, f"--random={seed}", "tests"],
                logs / f"seeded-{i}-trial-{seed}.log",
            )
        )
        if not args.no_pytest:
            runs.append(
                Run(
                    "seeded pytest",
                    seed,
                    [
                        python,
                        "-m",
                        "pytest",
                        "-q",
                        "-rfE",
                        "-p",
                        "no:cacheprovider",
                        "-p",
                        "randomly",
                        f"--randomly-seed={seed}",
                        "--ignore=tests/test_twisted_conformance.py",
                        "--ignore=tests/twisted_global_suite.py",
                        "tests",
                    ],
                    logs / f"seeded-{i}-pytest-{seed}.log",
                )
            )
    for i in range(args.parallel):
        seed = seeds.randrange(1, 2**31)
        runs.append(
            Run(
                "trial -j2",
                seed,
                [
                    *trial,
                    "-j2",
                    f"--random={seed}",
                    f"--temp-directory={logs / f'parallel-{i}'}",
                    "tests",
                ],
                logs / f"parallel-{i}-{seed}.log",
            )
        )
    return runs


def table(runs: Sequence[Run]) -> str:
    """
    The summary table: one row per run, then the totals.
    """
    rows = [("kind", "seed", "result", "seconds", "counts", "failing tests")]
    for run in runs:
        rows.append(
            (
                run.kind,
                str(run.seed),
                "passed" if run.passed else "FAILED",
                f"{run.seconds:.0f}",
                run.counts,
                ", ".join(run.failures),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)
        )
        + "  "
        + row[5]
        for row in rows
    ]
    failed = [run for run in runs if not run.passed]
    lines.append("")
    lines.append(f"{len(runs)} runs, {len(failed)} failed")
    for run in failed:
        lines.append(f"  re-run: {' '.join(run.command)}")
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the suite many times, shuffled and under load; "
        "report every failure with its seed."
    )
    parser.add_argument(
        "--seeded", type=int, default=10, help="trial + pytest runs (default 10)"
    )
    parser.add_argument(
        "--parallel", type=int, default=10, help="trial -j2 runs (default 10)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="draw the runs' seeds from this one (default: from the time)",
    )
    parser.add_argument("--no-pytest", action="store_true", help="seeded: trial only")
    parser.add_argument("--no-hog", action="store_true", help="no CPU hog")
    parser.add_argument(
        "--python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="the interpreter with txspawn and its test extra (default .venv)",
    )
    parser.add_argument("--logs", default=str(ROOT / "_hunt"), help="log folder")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = int(time.time())
    logs = Path(args.logs).resolve()
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TXSPAWN_REQUIRE_C="1", PYTHONDONTWRITEBYTECODE="1")
    runs = plan(args, logs)
    print(f"hunt: {len(runs)} runs, seeds drawn from --seed={args.seed}", flush=True)
    cores = 0 if args.no_hog else (os.cpu_count() or 1)
    with cpuHog(cores):
        for run in runs:
            runOne(run, env)
            result = "passed" if run.passed else "FAILED " + ", ".join(run.failures)
            print(
                f"  {run.kind:<13} seed={run.seed:<10} {run.seconds:5.0f}s {result}",
                flush=True,
            )
    print()
    print(table(runs))
    return 0 if all(run.passed for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
