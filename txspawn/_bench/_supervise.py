# -*- test-case-name: tests.test_bench_supervise -*-
"""
The C{supervise} row of C{python -m txspawn bench}: txspawn's supervisor
(L{txspawn.supervise}) against Twisted's procmon and supervisord, side by
side in one run, on the same programs (a tiny C program, see
L{txspawn._bench._supervise_child}), each supervisor a process of its own
(L{txspawn._bench._supervise_anchors}).  It has a table of its own
(L{txspawn._bench._supervise_report}): its columns are the three
supervisors and its rows several measures, with the goals of issue 15.

The phases, in order:

  1. B{Restart latency}: a program that exits at once, restarted with no
     backoff, from one run's exit to the next run's start (both stamped by
     the program with C{CLOCK_MONOTONIC}).  txspawn's and procmon's
     batches are interleaved (each repetition one batch of each, the order
     rotated); supervisord's are all started first and run alongside the
     other phases: each of its restarts waits for its main loop's one
     second poll timeout, so run in turn they alone would take longer than
     the rest of the row.
  2. B{Idle}: each supervisor with the same many sleeping programs, all
     three alive together, their CPU time read over one window
     (L{txspawn._bench._supervise_measure.cpuOf}); then the status request
     (txspawn's control API, supervisord's XML-RPC; a fresh client each
     time) and the status command line (C{python -m txspawn ctl status},
     C{supervisorctl status}), alternated.
  3. B{A program that cannot be executed}: each supervisor with one, for
     a window: its CPU time, and the status request every half second.
  4. B{Logs}: a program writing numbered lines to stdout, logged by txspawn
     (with a timestamp per line) and by supervisord, rotated at 10 MB with
     3 backups, one after the other: the throughput (from the program's
     start to its last line in the log file) and what the files hold
     (L{txspawn._bench._supervise_measure.checkLogs}).

Nothing here is public API.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from txspawn._bench._model import Params, Scenario, Setup, Task
from txspawn._bench._supervise_anchors import ANCHORS, AnchorError, Supervisor
from txspawn._bench._supervise_child import buildChild
from txspawn._bench._supervise_measure import Restarts
from txspawn._bench._supervise_model import (
    FULL_SIZES,
    QUICK_SIZES,
    SUPERVISE,
    SuperviseRun,
    SuperviseSizes,
    sizesFor,
)
from txspawn._bench._supervise_phases import (
    Phase,
    failPhase,
    finishBackground,
    idlePhase,
    logPhase,
    restartPhase,
)

__all__ = [
    "FULL_SIZES",
    "QUICK_SIZES",
    "SUPERVISE",
    "SUPERVISE_SCENARIO",
    "SuperviseRun",
    "SuperviseSizes",
    "chooseAnchors",
    "runFor",
    "runSupervise",
    "sizesFor",
]


def _plan(p: Params) -> tuple[Setup, Task]:
    # Not run by the driver's workers (see runSupervise): a placeholder.
    return Setup(), Task("spawn", 0)


#: The row in the registry of scenarios (L{txspawn._bench._scenarios}).
SUPERVISE_SCENARIO = Scenario(
    SUPERVISE,
    "txspawn supervise vs procmon and supervisord (its own table)",
    "restart latency, idle CPU and status latency with many programs, a "
    "program failing to exec, log throughput and rotation",
    "us",
    None,
    "the goals of issue 15, in its own table",
    True,
    _plan,
)


def chooseAnchors(implementations: Sequence[str]) -> tuple[str, ...]:
    """
    The supervisors a run's C{--only} columns ask for: txspawn with the
    txspawn column, procmon (stock Twisted's) with the twisted column, and
    supervisord (the outside anchor) always.
    """
    wanted = {"txspawn": "txspawn", "twisted": "procmon"}
    chosen = {wanted[i] for i in implementations if i in wanted}
    return tuple(a for a in ANCHORS if a in chosen or a == "supervisord")


def runSupervise(
    sizes: SuperviseSizes,
    scratch: str,
    log: Callable[[str], None],
    *,
    anchors: Sequence[str] = ANCHORS,
    engine: str | None = None,
    monitor: str | None = None,
    compiler: str | None = None,
) -> SuperviseRun:
    """
    Run the row's phases.

    @param sizes: How much.
    @param scratch: A directory of the run's own.
    @param log: Told the progress.
    @param anchors: The supervisors to run.
    @param engine: txspawn's engine, or C{None} for its default.
    @param monitor: txspawn's monitor, or C{None}.
    @param compiler: The C compiler command, or C{None}.
    @return: What it measured (a failure is recorded, never raised).
    """
    started = time.monotonic()
    run = SuperviseRun(sizes, anchors=tuple(anchors))
    scratch = os.path.join(scratch, "supervise")
    os.makedirs(scratch, exist_ok=True)
    build = buildChild(scratch, compiler)
    run.child = build.reason
    if build.binary is None:
        run.errors["child"] = build.reason
        return run
    child = build.binary
    background: tuple[Restarts | None, Supervisor | None] = (None, None)

    def phase(name: str) -> Phase:
        return Phase(name, run, scratch, engine, monitor, log)

    try:
        first = phase("restart")
        try:
            background = restartPhase(first, child, sizes)
        finally:
            first.stopAll()
        phases: list[tuple[str, Callable[[Phase], None]]] = [
            ("idle", lambda p: idlePhase(p, child, sizes)),
            ("fail", lambda p: failPhase(p, scratch, sizes)),
            ("logs", lambda p: logPhase(p, child, sizes)),
        ]
        for name, body in phases:
            current = phase(name)
            try:
                body(current)
            except (AnchorError, OSError) as e:
                run.errors[name] = str(e)
                log(f"supervise: {name} failed: {e}")
            finally:
                current.stopAll()
    finally:
        finishBackground(run, *background, log)
    run.seconds = time.monotonic() - started
    return run


class _Options(Protocol):
    """
    What L{runFor} reads of the driver's C{BenchOptions}.
    """

    @property
    def params(self) -> Params: ...
    @property
    def scenarios(self) -> Sequence[Scenario]: ...
    @property
    def implementations(self) -> Sequence[str]: ...
    @property
    def engine(self) -> str | None: ...
    @property
    def monitor(self) -> str | None: ...
    @property
    def compiler(self) -> str | None: ...


def runFor(
    options: _Options, scratch: str, log: Callable[[str], None]
) -> SuperviseRun | None:
    """
    Run the row if a bench run's options select it.

    @param options: The run's C{BenchOptions}.
    @param scratch: The run's directory.
    @param log: Told the progress.
    @return: What it measured, or C{None} if the row is not selected.
    """
    if not any(s.name == SUPERVISE for s in options.scenarios):
        return None
    return runSupervise(
        sizesFor(options.params),
        scratch,
        log,
        anchors=chooseAnchors(options.implementations),
        engine=options.engine,
        monitor=options.monitor,
        compiler=options.compiler,
    )
