# -*- test-case-name: tests.test_bench -*-
"""
What C{python -m txspawn bench} measures.

A L{Scenario} is a L{Setup} (the state of the parent process before timing:
idle children alive, memory held) plus a L{Task} (what one measurement
batch does: spawn and reap N children, time N exit notifications, push
bytes through a pipe).  Scenarios that share a setup share their worker
processes, so the (slow, for stock Twisted) setup is paid once per
implementation.

Adding a scenario is adding one entry to L{SCENARIOS}: the workers already
understand every C{spawnProcess} keyword (C{path}, C{uid}, C{gid},
C{usePTY}, C{childFDs}) and the C{ballastMiB} setup; the C column always runs
the plain reference task for that kind (the practical limit every variant
is compared against).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Literal

from attrs import field, frozen

__all__ = [
    "FULL",
    "QUICK",
    "SCENARIOS",
    "Params",
    "Scenario",
    "Setup",
    "Task",
    "TaskKind",
    "defaultScenarios",
    "scenarioNamed",
]

TaskKind = Literal["spawn", "exit", "pipe"]


def _options(value: Mapping[str, object]) -> dict[str, object]:
    return dict(value)


@frozen
class Params:
    """
    The sizes of one benchmark run.

    @ivar mode: C{"quick"}, C{"full"} or C{"custom"}; printed in the report.
    @ivar reps: Measured batches per implementation per scenario (each
        implementation's batches are interleaved with the others').
    @ivar idle: Idle children alive in the "with idle children" scenarios.
    @ivar spawnCount: Spawns per batch with no idle children.
    @ivar idleSpawnCount: Spawns per batch with idle children alive.
    @ivar exitCount: Exit-latency samples per batch.
    @ivar exitDelayUs: How long the exit-latency child sleeps before it
        stamps and exits; must exceed the parent's own post-spawn work so
        the parent is waiting when the child exits (the worker counts the
        samples where it was not).
    @ivar pipeMiB: MiB pushed through the pipe per throughput batch.
    @ivar ballastMiB: Memory held (allocated and touched) by the parent in
        the "big parent" scenarios.
    """

    mode: str
    reps: int
    idle: int
    spawnCount: int
    idleSpawnCount: int
    exitCount: int
    exitDelayUs: int
    pipeMiB: int
    ballastMiB: int

    def describe(self) -> str:
        """
        @return: One line stating every parameter, for the report header.
        """
        return (
            f"mode={self.mode} reps={self.reps} idle={self.idle} "
            f"spawns/batch={self.spawnCount} (with idle: {self.idleSpawnCount}) "
            f"exit samples/batch={self.exitCount} exit delay={self.exitDelayUs} us "
            f"pipe={self.pipeMiB} MiB ballast={self.ballastMiB} MiB"
        )


#: C{--quick}: every scenario, under about two minutes in total.
QUICK = Params(
    mode="quick",
    reps=5,
    idle=1000,
    spawnCount=100,
    idleSpawnCount=50,
    exitCount=30,
    exitDelayUs=20_000,
    pipeMiB=512,
    ballastMiB=2048,
)

#: The default: 4000 idle children, 512 MiB through the pipe.
FULL = Params(
    mode="full",
    reps=7,
    idle=4000,
    spawnCount=300,
    idleSpawnCount=100,
    exitCount=100,
    exitDelayUs=20_000,
    pipeMiB=512,
    ballastMiB=2048,
)


@frozen
class Setup:
    """
    The parent's state before any batch is timed.

    @ivar idle: Children spawned by the implementation itself and left
        blocked reading their stdin (C{/bin/cat} with the default three
        pipes), so the parent holds their pipes (and pidfds).
    @ivar ballastMiB: Anonymous memory the parent allocates and touches.
    """

    idle: int = 0
    ballastMiB: int = 0

    def describe(self) -> str:
        """
        @return: A short human description.
        """
        parts = []
        if self.idle:
            parts.append(f"{self.idle} idle children")
        if self.ballastMiB:
            parts.append(f"{self.ballastMiB} MiB parent")
        return ", ".join(parts) or "empty parent"


@frozen
class Task:
    """
    One measurement batch.

    @ivar kind: C{"spawn"}: C{count} sequential spawns of C{executable},
        each timed from just before C{spawnProcess} to C{processEnded}
        (microseconds).  C{"exit"}: C{count} exit-notification latencies
        of a pipe-less child (microseconds).  C{"pipe"}: one child writes
        C{count} MiB to stdout; MiB/s.
    @ivar count: See C{kind}.
    @ivar executable: The absolute path spawned by C{"spawn"} tasks.
    @ivar options: Extra C{spawnProcess} keyword arguments (JSON values:
        C{path}, C{uid}, C{gid}, C{usePTY}, C{childFDs} with string keys).
        The C reference ignores them: it is the plain limit.
    @ivar delayUs: For C{"exit"}: the child's sleep before it exits.
    """

    kind: TaskKind
    count: int
    executable: str = "/bin/true"
    options: Mapping[str, object] = field(factory=dict, converter=_options, hash=False)
    delayUs: int = 0

    def warmup(self) -> Task:
        """
        @return: A small batch of the same task, run once per worker before
            the timed batches so that first-run effects (page cache, lazy
            imports, allocator growth) are not measured.
        """
        small = max(1, min(self.count, 5 if self.kind != "pipe" else 16))
        return Task(self.kind, small, self.executable, self.options, self.delayUs)

    def toJSON(self) -> dict[str, object]:
        """
        @return: The command sent to a Python worker.
        """
        return {
            "kind": self.kind,
            "count": self.count,
            "executable": self.executable,
            "options": dict(self.options),
            "delayUs": self.delayUs,
        }


@frozen
class Scenario:
    """
    One row of the report.

    @ivar name: The C{--scenario} name.
    @ivar title: What the row measures, in a few words.
    @ivar measures: What the row measures, in a sentence (the report
        prints it for a row that misses its goal).
    @ivar unit: C{"us"} (latency: lower is better) or C{"MiB/s"}
        (throughput: higher is better).
    @ivar target: txspawn's goal for txspawn/C, if any: a maximum for
        latency rows, a minimum for throughput rows.
    @ivar why: Why txspawn has that goal, in a user's words.
    @ivar default: Whether a plain C{bench} (no C{--scenario}) runs it.
    @ivar plan: Builds the setup and task from the run's L{Params}.
    """

    name: str
    title: str
    measures: str
    unit: Literal["us", "MiB/s"]
    target: float | None
    why: str
    default: bool
    plan: Callable[[Params], tuple[Setup, Task]] = field(eq=False, repr=False)

    @property
    def higherIsBetter(self) -> bool:
        """
        Whether bigger numbers are better (throughput rows).
        """
        return self.unit == "MiB/s"


def _spawn(
    idle: bool = False, ballast: bool = False, **options: object
) -> Callable[[Params], tuple[Setup, Task]]:
    def plan(p: Params) -> tuple[Setup, Task]:
        setup = Setup(p.idle if idle else 0, p.ballastMiB if ballast else 0)
        count = p.idleSpawnCount if idle else p.spawnCount
        return setup, Task("spawn", count, "/bin/true", options)

    return plan


def _exit(idle: bool) -> Callable[[Params], tuple[Setup, Task]]:
    def plan(p: Params) -> tuple[Setup, Task]:
        return (
            Setup(p.idle if idle else 0),
            Task("exit", p.exitCount, delayUs=p.exitDelayUs),
        )

    return plan


def _pipe(p: Params) -> tuple[Setup, Task]:
    return Setup(), Task("pipe", p.pipeMiB, "/bin/dd")


# uid/gid: the benchmark's own ids, so the scenario runs as any user and
# still makes stock Twisted take its fork path (any uid/gid argument does).
_UID = os.getuid()
_GID = os.getgid()

_OPTION_WHY = (
    "an option must not make spawning much slower than a plain spawn (stock "
    "Twisted forks and runs Python code in the child for it)"
)
_BIG_WHY = (
    "a parent that holds a lot of memory must not make spawning slower (a "
    "fork copies the parent's page tables; txspawn's engines do not)"
)
_SPAWN_MEASURES = (
    "the time from spawnProcess to processEnded for a child that exits at "
    "once, with stdin, stdout and stderr piped"
)


def _optionScenario(
    name: str, title: str, what: str, ballast: bool, **options: object
) -> Scenario:
    if ballast:
        measures = f"{_SPAWN_MEASURES}, {what}, in a parent holding 2 GiB"
        why = _BIG_WHY
    else:
        measures = f"{_SPAWN_MEASURES}, {what}"
        why = _OPTION_WHY
    return Scenario(
        name,
        title,
        measures,
        "us",
        1.3,
        why,
        False,
        _spawn(False, ballast, **options),
    )


#: Every scenario, in report order.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "spawn",
        "spawn /bin/true, 3 pipes, until processEnded",
        _SPAWN_MEASURES,
        "us",
        None,
        "no goal: the plain cost of a spawn, for reference",
        True,
        _spawn(),
    ),
    Scenario(
        "spawn-idle",
        "the same with idle children alive",
        f"{_SPAWN_MEASURES}, while many idle children are alive (the parent "
        f"holds their pipes)",
        "us",
        1.5,
        "a spawn must cost about the same however many children are alive "
        "(stock Twisted looks at every open fd and every child on each spawn)",
        True,
        _spawn(idle=True),
    ),
    Scenario(
        "exit",
        "exit -> processExited, no pipes",
        "the time from a child's exit to processExited, for a child without pipes",
        "us",
        1.3,
        "noticing that a child exited should cost little more than it costs a "
        "C loop blocked in waitpid",
        True,
        _exit(False),
    ),
    Scenario(
        "exit-idle",
        "the same with idle children alive",
        "the time from a child's exit to processExited, for a child without "
        "pipes, while many idle children are alive",
        "us",
        1.3,
        "noticing that a child exited should cost little more than it costs a "
        "C loop blocked in waitpid, however many children are alive",
        True,
        _exit(True),
    ),
    Scenario(
        "pipe",
        "dd bs=1M to stdout -> childDataReceived",
        "how fast a child's output (dd writing 1 MiB blocks to stdout) reaches "
        "childDataReceived",
        "MiB/s",
        0.8,
        "reading a child's output should run close to the speed of a C read() loop",
        True,
        _pipe,
    ),
    # Spawn options and a big parent, each against the plain C loop.
    _optionScenario(
        "spawn-path", "spawn with path='/'", "with path='/'", False, path="/"
    ),
    _optionScenario(
        "spawn-uid",
        "spawn with uid=, gid= (own ids)",
        "with uid= and gid= (the benchmark's own ids)",
        False,
        uid=_UID,
        gid=_GID,
    ),
    _optionScenario(
        "spawn-pty", "spawn with usePTY=True", "with usePTY=True", False, usePTY=True
    ),
    _optionScenario("spawn-2g", "plain spawn, 2 GiB parent", "with no option", True),
    _optionScenario(
        "spawn-path-2g",
        "spawn with path='/', 2 GiB parent",
        "with path='/'",
        True,
        path="/",
    ),
    _optionScenario(
        "spawn-uid-2g",
        "spawn with uid=, gid=, 2 GiB parent",
        "with uid= and gid= (the benchmark's own ids)",
        True,
        uid=_UID,
        gid=_GID,
    ),
    _optionScenario(
        "spawn-pty-2g",
        "spawn with usePTY=True, 2 GiB parent",
        "with usePTY=True",
        True,
        usePTY=True,
    ),
)


def defaultScenarios() -> list[Scenario]:
    """
    @return: The scenarios a plain C{bench} runs.
    """
    return [s for s in SCENARIOS if s.default]


def scenarioNamed(name: str) -> Scenario:
    """
    @param name: A scenario name.
    @return: That scenario.
    @raise ValueError: naming the known scenarios, for an unknown name.
    """
    for s in SCENARIOS:
        if s.name == name:
            return s
    known = ", ".join(s.name for s in SCENARIOS)
    raise ValueError(f"unknown scenario {name!r}; known: {known}")
