# -*- test-case-name: tests.test_bench -*-
"""
Run the benchmark: start one worker per implementation per setup, and
interleave their timed batches.

Isolation and interleaving, and why:

  - Each implementation runs in its own worker process (see
    L{txspawn._bench._pyworker} for the reasons: fd tables, live children,
    signal handlers and RSS are process-wide, so they must not be shared).
  - The rows run in blocks: the rows that share a L{Setup}, or the rows of
    a suite (which may need several setups, e.g. a small and a 2 GiB
    parent).  Workers live as long as their block, one per setup and
    column, so slow setups are paid once.
  - Only one worker runs a batch at a time (the others block reading their
    stdin).  Each repetition runs one batch of every row of the block, in
    every column the row runs in; it rotates the order of the rows and of
    the columns, so slow drift of the machine (other load, thermal state,
    page cache) hits every column and row alike rather than whichever ran
    last, and the batches compared in a ratio (two columns of a row, or
    two rows of a suite) are timed close together.
  - Each worker runs one untimed warm-up batch per row first.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from attrs import define, field, frozen

from txspawn._bench import _supervise
from txspawn._bench._cgroups import benchParent
from txspawn._bench._creference import CReference, buildReference
from txspawn._bench._scenarios import Params, Scenario, Setup, Task

__all__ = [
    "IMPLEMENTATIONS",
    "BenchOptions",
    "BenchRun",
    "ImplRun",
    "ScenarioRun",
    "WorkerError",
    "runBench",
]

#: The columns, in report order.
IMPLEMENTATIONS: tuple[str, ...] = ("txspawn", "twisted", "c")

#: Seconds allowed for a worker's setup (4000 idle children under stock
#: Twisted take about a minute on a quiet machine).
_SETUP_TIMEOUT = 1800.0
#: Seconds allowed for one batch or for tearing a worker down.
_BATCH_TIMEOUT = 900.0


class WorkerError(Exception):
    """
    A worker could not start, failed a batch, or died.
    """


def _scenarios(value: Iterable[Scenario]) -> tuple[Scenario, ...]:
    return tuple(value)


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class BenchOptions:
    """
    What to run.

    @ivar params: The sizes.
    @ivar scenarios: The scenarios, in report order.
    @ivar engine: The txspawn engine name, or C{None} for its default.
    @ivar monitor: The txspawn monitor name, or C{None} for its default.
    @ivar compiler: The C compiler command, or C{None} for C{$CC}/C{cc}.
    @ivar implementations: The columns to run.
    """

    params: Params
    scenarios: Sequence[Scenario] = field(converter=_scenarios)
    engine: str | None = None
    monitor: str | None = None
    compiler: str | None = None
    implementations: Sequence[str] = field(default=IMPLEMENTATIONS, converter=_names)


@define
class ImplRun:
    """
    One implementation's results for one scenario.

    @ivar values: One value per timed repetition: the median of the
        batch's samples (microseconds or MiB/s).
    @ivar samples: Every sample of every timed batch.
    @ivar late: Exit-latency samples where the child exited before
        C{spawnProcess} returned (see the worker).
    @ivar error: Why there are no (or too few) values, or C{None}.
    @ivar fds: Open fds in the worker after setup.
    @ivar setupSeconds: The worker's setup time.
    @ivar detail: What the worker reported about itself (for txspawn: the
        engine and monitor in use).
    @ivar counts: What the worker counted in the timed batches, by what
        (e.g. how each child was placed in its cgroup), for the notes.
    """

    values: list[float] = field(factory=list)
    samples: list[float] = field(factory=list)
    late: int = 0
    error: str | None = None
    fds: int | None = None
    setupSeconds: float | None = None
    detail: str = ""
    counts: dict[str, int] = field(factory=dict)


@define
class ScenarioRun:
    """
    One row of the report.

    @ivar impls: The results of each column the row runs in (see
        L{Scenario.runs}); the other columns are absent.
    @ivar seconds: The time its batches took, warm-up included.
    """

    scenario: Scenario
    setup: Setup
    task: Task
    impls: dict[str, ImplRun]
    seconds: float = 0.0


@define
class BenchRun:
    """
    Everything one C{bench} invocation measured.
    """

    options: BenchOptions
    reference: CReference
    scenarios: list[ScenarioRun]
    environment: dict[str, Any]
    seconds: float = 0.0
    supervise: _supervise.SuperviseRun | None = None


class _Worker:
    """
    A worker process speaking one answer line per command line.
    """

    def __init__(
        self, name: str, argv: list[str], scratch: str, encode: Callable[[Task], str]
    ) -> None:
        self.name = name
        self._encode = encode
        self._stderrPath = os.path.join(scratch, f"{name}-{id(self)}.stderr")
        self._stderr: IO[bytes] = open(self._stderrPath, "wb")
        self._buffer = b""
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                bufsize=0,
            )
        except OSError as e:
            # A column that cannot start (say, an interpreter this user may
            # not run) is reported in the table, like one that fails later.
            self._stderr.close()
            raise WorkerError(f"{name} worker could not start: {e}") from None

    def _stderrTail(self) -> str:
        with open(self._stderrPath, "rb") as f:
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
        return " / ".join(lines[-6:])

    def readLine(self, timeout: float) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerError(f"{self.name}: no answer within {timeout:.0f} s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.process.wait()
                raise WorkerError(
                    f"{self.name} worker exited ({self.process.returncode}): "
                    f"{self._stderrTail() or 'no stderr'}"
                )
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line.encode() + b"\n")
        except BrokenPipeError:
            self.process.wait()
            raise WorkerError(
                f"{self.name} worker exited: {self._stderrTail() or 'no stderr'}"
            ) from None

    def parse(self, line: str) -> dict[str, Any]:
        raise NotImplementedError

    def ready(self) -> dict[str, Any]:
        return self.parse(self.readLine(_SETUP_TIMEOUT))

    def run(self, task: Task) -> dict[str, Any]:
        self.send(self._encode(task))
        return self.parse(self.readLine(_BATCH_TIMEOUT))

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.quit()
                self.process.wait(timeout=_BATCH_TIMEOUT)
        except (WorkerError, subprocess.TimeoutExpired):
            self.process.kill()  # our own child, by its pid
            self.process.wait()
        finally:
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()
            self._stderr.close()

    def quit(self) -> None:
        raise NotImplementedError


class _PyWorker(_Worker):
    def parse(self, line: str) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise WorkerError(f"{self.name}: {message['error']}")
        return message

    def quit(self) -> None:
        self.send(json.dumps({"kind": "quit"}))
        self.readLine(_BATCH_TIMEOUT)


class _CWorker(_Worker):
    def parse(self, line: str) -> dict[str, Any]:
        word, _, rest = line.partition(" ")
        if word == "ready":
            fds, seconds = rest.split()
            return {"fds": int(fds), "setupSeconds": float(seconds)}
        if word == "ok":
            return {"ok": [float(v) for v in rest.split()]}
        raise WorkerError(f"{self.name}: {line}")

    def quit(self) -> None:
        self.send("quit")
        self.readLine(_BATCH_TIMEOUT)


def _encodeC(task: Task) -> str:
    # The C column is the plain reference for the task's kind: spawn
    # options (path, uid, pty) are what the other columns pay for.
    if task.kind == "spawn":
        return f"spawn {task.count} {task.executable}"
    if task.kind == "exit":
        return f"exit {task.count} {task.delayUs}"
    return f"pipe {task.count}"


def _encodePy(task: Task) -> str:
    return json.dumps(task.toJSON())


# Without a compiler the exit-latency child is this Python stand-in (same
# protocol as the C reference's "stamp" mode); its slower start-up happens
# before the stamp, so it does not change what is measured.
_PY_STAMP = (
    "import os, struct, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
    "time.sleep(int(sys.argv[2]) / 1e6)\n"
    "os.pwrite(fd, struct.pack('=q', time.monotonic_ns()), 0)\n"
    "os._exit(0)\n"
)


def _startWorker(
    impl: str,
    setup: Setup,
    options: BenchOptions,
    reference: CReference,
    scratch: str,
    targetFds: int,
    cgroupParent: str | None = None,
) -> tuple[_Worker, dict[str, Any]]:
    if impl == "c":
        if reference.binary is None:
            raise WorkerError(reference.reason)
        stampFile = os.path.join(scratch, "stamp-c")
        open(stampFile, "wb").close()
        argv = [
            reference.binary,
            "serve",
            str(setup.idle),
            str(targetFds),
            str(setup.ballastMiB),
            stampFile,
        ]
        worker: _Worker = _CWorker("c", argv, scratch, _encodeC)
    else:
        stamp = (
            [reference.binary, "stamp"]
            if reference.binary is not None
            else [sys.executable, "-S", "-c", _PY_STAMP]
        )
        config = {
            "impl": impl,
            # A row that names its engine gets it whatever --engine says.
            "engine": setup.engine or options.engine,
            "monitor": options.monitor,
            "idle": setup.idle,
            "ballastMiB": setup.ballastMiB,
            "scratch": scratch,
            "stamp": stamp,
            "cgroupParent": cgroupParent,
        }
        argv = [sys.executable, "-m", "txspawn._bench._pyworker", json.dumps(config)]
        worker = _PyWorker(impl, argv, scratch, _encodePy)
    try:
        return worker, worker.ready()
    except BaseException:
        worker.close()
        raise


#: One row of a block: the scenario, its setup and its task.
_Item = tuple[Scenario, Setup, Task]


def _startWorkers(
    runs: list[ScenarioRun],
    options: BenchOptions,
    reference: CReference,
    scratch: str,
    log: Callable[[str], None],
    cgroupParent: str | None,
) -> tuple[dict[tuple[Setup, str], _Worker], dict[tuple[Setup, str], str]]:
    """
    Start one worker per setup and column the rows of a block need, and
    record in each row's results what the worker reported (or why it could
    not start).

    @return: The workers and the start-up errors, by C{(setup, column)}.
    """
    workers: dict[tuple[Setup, str], _Worker] = {}
    errors: dict[tuple[Setup, str], str] = {}
    ready: dict[tuple[Setup, str], dict[str, Any]] = {}
    for setup in dict.fromkeys(run.setup for run in runs):
        needed = {i for run in runs if run.setup == setup for i in run.impls}
        # txspawn first: the C worker is padded to txspawn's fd count (the
        # comparison the issue asks for), or to Twisted's without txspawn.
        for impl in sorted(
            needed, key=lambda i: (i == "c", options.implementations.index(i))
        ):
            target = next(
                (
                    ready[setup, i]["fds"]
                    for i in ("txspawn", "twisted")
                    if (setup, i) in ready
                ),
                setup.idle * 4 + 8,
            )
            log(f"[{setup.describe()}] starting {impl} worker")
            try:
                workers[setup, impl], ready[setup, impl] = _startWorker(
                    impl, setup, options, reference, scratch, target, cgroupParent
                )
            except WorkerError as e:
                errors[setup, impl] = str(e)
                log(f"  {impl} unavailable: {e}")
                continue
            log(
                f"  {impl}: {ready[setup, impl]['fds']} fds open, "
                f"setup {ready[setup, impl]['setupSeconds']:.1f} s"
            )
    for run in runs:
        for impl, result in run.impls.items():
            result.error = errors.get((run.setup, impl))
            if (run.setup, impl) in ready:
                answer = ready[run.setup, impl]
                result.fds = answer["fds"]
                result.setupSeconds = answer["setupSeconds"]
                result.detail = answer.get("detail", "")
    return workers, errors


def _runBatch(
    run: ScenarioRun, impl: str, worker: _Worker, task: Task, log: Callable[[str], None]
) -> list[float] | None:
    """
    Run one batch of C{run} in column C{impl}; a failure is recorded in the
    row (and ends that column for it).

    @return: The samples, or C{None} after a failure.
    """
    started = time.monotonic()
    try:
        answer = worker.run(task)
    except WorkerError as e:
        run.impls[impl].error = str(e)
        log(f"  {impl} failed: {e}")
        return None
    finally:
        run.seconds += time.monotonic() - started
    run.impls[impl].late += answer.get("late", 0)
    counts = run.impls[impl].counts
    for what, n in answer.get("counts", {}).items() if task is run.task else ():
        counts[what] = counts.get(what, 0) + n  # (the warm-up's are not kept)
    samples: list[float] = answer["ok"]
    return samples


def _runBlock(
    items: list[_Item],
    options: BenchOptions,
    reference: CReference,
    scratch: str,
    log: Callable[[str], None],
    cgroupParent: str | None = None,
) -> list[ScenarioRun]:
    """
    Run the rows of one block: rows sharing a setup, or the rows of a
    suite (on one worker per setup it needs).  Each repetition times every
    row once, rows and columns in an order rotated each repetition, so that
    both columns of a row and the rows of a suite are compared batch
    against batch within a repetition.
    """
    runs = [
        ScenarioRun(
            s, setup, t, {i: ImplRun() for i in options.implementations if s.runs(i)}
        )
        for s, setup, t in items
    ]
    workers: dict[tuple[Setup, str], _Worker] = {}
    try:
        workers, _ = _startWorkers(runs, options, reference, scratch, log, cgroupParent)

        def live(run: ScenarioRun) -> list[str]:
            return [
                i
                for i, r in run.impls.items()
                if (run.setup, i) in workers and r.error is None
            ]

        for run in runs:
            for impl in live(run):
                _runBatch(run, impl, workers[run.setup, impl], run.task.warmup(), log)
        reps = options.params.reps
        for rep in range(reps):
            order = runs[rep % len(runs) :] + runs[: rep % len(runs)]
            for run in order:
                impls = list(run.impls)
                shift = rep % len(impls) if impls else 0
                for impl in impls[shift:] + impls[:shift]:
                    if impl not in live(run):
                        continue
                    log(f"{run.scenario.name}: rep {rep + 1}/{reps} {impl}")
                    worker = workers[run.setup, impl]
                    samples = _runBatch(run, impl, worker, run.task, log)
                    if samples is not None:
                        run.impls[impl].samples.extend(samples)
                        run.impls[impl].values.append(statistics.median(samples))
    finally:
        for (setup, _), worker in workers.items():
            log(f"[{setup.describe()}] stopping {worker.name} worker")
            worker.close()
    return runs


def _environment() -> dict[str, Any]:
    import platform

    import twisted
    import txspawn

    uname = os.uname()
    return {
        "kernel": f"{uname.sysname} {uname.release} {uname.machine}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "txspawn": txspawn.__version__,
    }


def runBench(options: BenchOptions, log: Callable[[str], None]) -> BenchRun:
    """
    Run every scenario of C{options}, interleaving the implementations.

    @param options: What to run.
    @param log: Called with one progress line at a time.
    @return: The results; an implementation that failed has its error
        recorded per scenario instead of values.
    """
    started = time.monotonic()
    # A block: the rows of one suite, or else the rows sharing a setup.
    blocks: dict[object, list[_Item]] = {}
    for scenario in options.scenarios:
        if scenario.name == _supervise.SUPERVISE:
            continue  # its own harness and table (txspawn._bench._supervise)
        setup, task = scenario.plan(options.params)
        key = ("suite", scenario.suite) if scenario.suite else ("setup", setup)
        blocks.setdefault(key, []).append((scenario, setup, task))
    # Rows with a cgroup of their own make their leaves in a parent made
    # for this run (and removed after it).
    cgroups = any("cgroup" in t.options for i in blocks.values() for _, _, t in i)
    parent = benchParent(log) if cgroups else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="txspawn-bench-") as scratch, parent as cg:
        if "c" in options.implementations:
            reference = buildReference(scratch, options.compiler)
            log(f"C reference: {reference.reason}")
        else:
            reference = CReference(None, "C column not requested")
        runs: list[ScenarioRun] = []
        for items in blocks.values():
            runs.extend(_runBlock(items, options, reference, scratch, log, cg))
        supervise = _supervise.runFor(options, scratch, log)
    order = {s.name: n for n, s in enumerate(options.scenarios)}
    runs.sort(key=lambda r: order[r.scenario.name])
    seconds = time.monotonic() - started
    return BenchRun(options, reference, runs, _environment(), seconds, supervise)
