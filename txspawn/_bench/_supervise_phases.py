# -*- test-case-name: tests.test_bench_supervise -*-
"""
The phases of the C{supervise} bench row (see L{txspawn._bench._supervise}):
restart latency, idle, a program that cannot be executed, logs.  Each phase
starts the supervisors it needs (L{Phase}), records what it measures in the
L{SuperviseRun}, and a supervisor's failure as an error of that phase.

Nothing here is public API.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence

from txspawn._bench._supervise_anchors import AnchorError, ProgramSpec, Supervisor
from txspawn._bench._supervise_child import START, lineText, readRecords
from txspawn._bench._supervise_measure import (
    LogCheck,
    RestartError,
    Restarts,
    checkLogs,
    cpuOf,
    spewLines,
)
from txspawn._bench._supervise_model import SuperviseRun, SuperviseSizes

__all__ = [
    "Phase",
    "failPhase",
    "finishBackground",
    "idlePhase",
    "logPhase",
    "restartPhase",
]


class Phase:
    """
    The supervisors of one phase: started together, stopped together, and
    a failure of one recorded and the others carried on.
    """

    def __init__(
        self,
        name: str,
        run: SuperviseRun,
        scratch: str,
        engine: str | None,
        monitor: str | None,
        log: Callable[[str], None],
    ) -> None:
        self.name = name
        self.run = run
        self.scratch = scratch
        self.engine = engine
        self.monitor = monitor
        self.log = log
        self.supervisors: dict[str, Supervisor] = {}

    def fail(self, impl: str, why: object) -> None:
        """
        Record why C{impl} failed in this phase, and stop it.
        """
        self.run.errors[f"{self.name} {impl}"] = str(why)
        self.log(f"  {self.name} {impl}: {why}")
        supervisor = self.supervisors.pop(impl, None)
        if supervisor is not None:
            supervisor.stop()

    def start(
        self, impl: str, programs: Sequence[ProgramSpec], tag: str = ""
    ) -> Supervisor | None:
        """
        Start C{impl} on C{programs}, in a directory of its own.

        @param tag: Added to the directory's name (for a phase that starts
            the same supervisor several times).
        @return: It, or C{None} if it could not start (recorded).
        """
        directory = os.path.join(self.scratch, f"{self.name}{tag}-{impl}")
        os.makedirs(directory, exist_ok=True)
        self.log(f"supervise: {self.name}: starting {impl}")
        try:
            supervisor = Supervisor(
                impl, directory, programs, self.engine, self.monitor
            )
        except AnchorError as e:
            self.fail(impl, e)
            return None
        self.supervisors[impl] = supervisor
        return supervisor

    def stop(self, impl: str) -> None:
        """
        Stop C{impl}, if it runs.
        """
        supervisor = self.supervisors.pop(impl, None)
        if supervisor is not None:
            supervisor.stop()

    def stopAll(self) -> None:
        """
        Stop every supervisor of the phase.
        """
        for impl in list(self.supervisors):
            self.stop(impl)


def _rotated(items: Sequence[str], shift: int) -> list[str]:
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def _timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return (time.monotonic() - started) * 1000


def restartPhase(
    phase: Phase, child: str, sizes: SuperviseSizes
) -> tuple[Restarts | None, Supervisor | None]:
    """
    Time txspawn's and procmon's restarts, interleaved; start supervisord's.

    @return: supervisord's restarts under way (and its supervisor), for
        L{finishBackground}.
    """
    restarts: dict[str, Restarts] = {}
    background: Restarts | None = None
    # supervisord first: its restarts run in the background from then on.
    anchors = sorted(phase.run.anchors, key=lambda impl: impl != "supervisord")
    for impl in anchors:
        directory = os.path.join(phase.scratch, f"restart-stamps-{impl}")
        os.makedirs(directory, exist_ok=True)
        stamps = os.path.join(directory, "stamps")
        limit = os.path.join(directory, "limit")
        open(stamps, "wb").close()
        with open(limit, "w") as f:
            f.write("0\n")
        spec = ProgramSpec("restart", (child, "restart", stamps, limit), "restart")
        if phase.start(impl, [spec]) is None:
            continue
        try:
            Restarts(stamps, limit).waitFirst(60.0)
        except RestartError as e:
            phase.fail(impl, e)
            continue
        if impl == "supervisord":
            background = Restarts(stamps, limit)
            background.begin(sizes.restarts)
        else:
            restarts[impl] = Restarts(stamps, limit)
    interleaved = list(restarts)
    perBatch = max(1, sizes.restarts // sizes.reps)
    for impl in interleaved:
        try:
            restarts[impl].batch(5, 60.0)  # warm-up, not kept
        except RestartError as e:
            phase.fail(impl, e)
    for rep in range(sizes.reps):
        for impl in _rotated(interleaved, rep):
            if impl not in phase.supervisors:
                continue
            phase.log(f"supervise: restart batch {rep + 1}/{sizes.reps} {impl}")
            try:
                samples = restarts[impl].batch(perBatch, 60.0 + perBatch)
            except RestartError as e:
                phase.fail(impl, e)
                continue
            phase.run.restarts.setdefault(impl, []).extend(samples)
            phase.run.restartBatches.setdefault(impl, []).append(
                statistics.median(samples)
            )
    for impl in interleaved:
        phase.stop(impl)
    return background, phase.supervisors.pop("supervisord", None)


def _waitRunning(
    supervisor: Supervisor, child: str, count: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        alive = supervisor.running(child)
        ready = alive >= count
        if ready and supervisor.impl != "procmon":
            rows = supervisor.statusRequest()
            ready = sum(r["state"] == "RUNNING" for r in rows) >= count
        if ready:
            return
        if time.monotonic() > deadline:
            raise AnchorError(
                f"{alive} of {count} programs running after {timeout:.0f} s"
            )
        time.sleep(0.2)


def idlePhase(phase: Phase, child: str, sizes: SuperviseSizes) -> None:
    """
    The supervisors with C{sizes.programs} sleeping programs each, all
    alive together: their CPU use over one window, then status requests and
    status command lines, alternated.
    """
    run = phase.run
    spec = ProgramSpec("sleep", (child, "sleep"), "sleep", sizes.programs)
    for impl in run.anchors:
        supervisor = phase.start(impl, [spec])
        if supervisor is None:
            continue
        try:
            _waitRunning(supervisor, child, sizes.programs, 300.0)
        except (AnchorError, OSError) as e:
            phase.fail(impl, e)
    time.sleep(1.0)  # let start-up work (log files, readiness) settle
    live = dict(phase.supervisors)
    phase.log(f"supervise: idle window, {sizes.idleSeconds:g} s")
    before = {impl: cpuOf(s.pid) for impl, s in live.items()}
    started = time.monotonic()
    time.sleep(sizes.idleSeconds)
    after = {impl: cpuOf(s.pid) for impl, s in live.items()}
    run.idleWindow = time.monotonic() - started
    for impl in live:
        run.idle[impl] = after[impl] - before[impl]
    answering = [i for i in live if i != "procmon"]
    phase.log("supervise: status requests")
    for n in range(sizes.statusRequests):
        for impl in _rotated(answering, n):
            if impl not in phase.supervisors:
                continue
            try:
                samples = run.status.setdefault(impl, [])
                samples.append(_timed(live[impl].statusRequest))
            except Exception as e:
                phase.fail(impl, f"status request: {e}")
    phase.log("supervise: status commands")
    for n in range(sizes.statusCommands):
        for impl in _rotated(answering, n):
            command = live[impl].statusCommand()
            if impl not in phase.supervisors or command is None:
                continue
            started = time.monotonic()
            result = subprocess.run(command, capture_output=True, timeout=60)
            elapsed = (time.monotonic() - started) * 1000
            if impl == "txspawn" and result.returncode != 0:
                tail = result.stderr.decode("utf-8", "replace").strip()[-300:]
                run.errors[f"status command {impl}"] = (
                    f"exit {result.returncode}: {tail}"
                )
                continue
            run.statusCommand.setdefault(impl, []).append(elapsed)


def _failState(supervisor: Supervisor) -> str:
    try:
        rows = supervisor.statusRequest()
    except Exception as e:
        return f"no status: {e}"
    if not rows:
        return "no program"
    row = rows[0]
    why = row.get("lastExit") or row.get("why") or ""
    return f"{row['state']}" + (f" ({why})" if why else "")


def failPhase(phase: Phase, scratch: str, sizes: SuperviseSizes) -> None:
    """
    The supervisors with one program that cannot be executed, together:
    their CPU use over a window, status requested every half second, and
    what each says of the program at the end.
    """
    run = phase.run
    missing = os.path.join(scratch, "no-such-program")
    spec = ProgramSpec("broken", (missing,), "fail")
    for impl in run.anchors:
        phase.start(impl, [spec])
    live = dict(phase.supervisors)
    phase.log(f"supervise: failing program window, {sizes.failSeconds:g} s")
    before = {impl: cpuOf(s.pid) for impl, s in live.items()}
    started = time.monotonic()
    answering = [i for i in live if i != "procmon"]
    n = 0
    while time.monotonic() - started < sizes.failSeconds:
        for impl in _rotated(answering, n):
            if impl in phase.supervisors:
                try:
                    samples = run.failStatus.setdefault(impl, [])
                    samples.append(_timed(live[impl].statusRequest))
                except Exception as e:
                    phase.fail(impl, f"status request: {e}")
        n += 1
        time.sleep(0.5)
    after = {impl: cpuOf(s.pid) for impl, s in live.items()}
    run.failWindow = time.monotonic() - started
    for impl in live:
        run.fail[impl] = after[impl] - before[impl]
        if impl in answering:
            run.failState[impl] = _failState(live[impl])
        else:
            # procmon tells nothing; its log has a critical line per spawn
            # that failed.
            path = os.path.join(live[impl].directory, "procmon.log")
            with open(path, encoding="utf-8", errors="replace") as f:
                tries = f.read().count("ProcessMonitor#critical")
            run.failState[impl] = f"retrying ({tries} failed spawns logged)"


def logPhase(phase: Phase, child: str, sizes: SuperviseSizes) -> None:
    """
    Each supervisor in turn (procmon has no log files), C{sizes.logReps}
    times, with a program writing C{sizes.logBytes} of numbered lines once
    the supervisor is up: the time from its start to its last line in the
    log, then what the files hold.
    """
    run = phase.run
    logged = [i for i in run.anchors if i != "procmon"]
    for rep in range(sizes.logReps):
        for impl in _rotated(logged, rep):
            if f"{phase.name} {impl}" in run.errors:
                continue
            phase.log(f"supervise: log run {rep + 1}/{sizes.logReps} {impl}")
            try:
                seconds, check = _logRun(phase, impl, child, sizes, rep)
            except (AnchorError, OSError) as e:
                phase.fail(impl, e)
                continue
            finally:
                phase.stop(impl)
            run.logSeconds.setdefault(impl, []).append(seconds)
            worst = run.logs.get(impl)
            if worst is None or _problems(check) > _problems(worst):
                run.logs[impl] = check


def _problems(check: LogCheck) -> tuple[int, int]:
    return (check.lost + check.split + check.broken, check.files)


def _logRun(
    phase: Phase, impl: str, child: str, sizes: SuperviseSizes, rep: int
) -> tuple[float, LogCheck]:
    """
    One run of the logged program under C{impl}.

    @return: Its time from start to last line logged, and the log's check.
    @raise AnchorError: the supervisor did not start, or the program's last
        line never reached the log.
    """
    directory = os.path.join(phase.scratch, f"logs-stamps-{impl}-{rep}")
    os.makedirs(directory, exist_ok=True)
    stamps = os.path.join(directory, "stamps")
    open(stamps, "wb").close()
    spec = ProgramSpec("spew", (child, "spew", stamps, str(sizes.logBytes)), "spew")
    supervisor = phase.start(impl, [spec], f"-{rep}")
    if supervisor is None:
        raise AnchorError(phase.run.errors[f"{phase.name} {impl}"])
    deadline = time.monotonic() + 60.0
    while not readRecords(stamps):
        if time.monotonic() > deadline:
            raise AnchorError("the logged program did not start")
        time.sleep(0.005)
    os.kill(readRecords(stamps)[0].pid, signal.SIGUSR1)
    path = os.path.join(supervisor.logDir, "spew.out")
    last = lineText(spewLines(sizes.logBytes))
    deadline = time.monotonic() + 60.0 + sizes.logBytes / 2**20
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
                if last in f.read():
                    seen = time.monotonic_ns()
                    break
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    else:
        raise AnchorError("the program's last line never reached the log")
    started = next(r.ns for r in readRecords(stamps) if r.kind == START)
    phase.stop(impl)
    return (seen - started) / 1e9, checkLogs(path)


def finishBackground(
    run: SuperviseRun,
    restarts: Restarts | None,
    supervisor: Supervisor | None,
    log: Callable[[str], None],
) -> None:
    """
    Wait for supervisord's restarts (L{restartPhase}) and stop it.
    """
    try:
        if restarts is not None:
            log("supervise: waiting for supervisord's restarts")
            samples = restarts.finish(120.0 + run.sizes.restarts * 3)
            run.restarts["supervisord"] = samples
            run.restartBatches["supervisord"] = [statistics.median(samples)]
    except RestartError as e:
        run.errors["restart supervisord"] = str(e)
    finally:
        if supervisor is not None:
            supervisor.stop()
