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
C{usePTY}, C{childFDs}, C{namespaces}, C{cgroup}) and the C{ballastMiB}
and C{engine} setups; the C
column always runs the plain reference task for that kind (the practical
limit every variant is compared against).  A row may be limited to some
columns, and belong to a suite whose rows are timed back to back in each
repetition so that rows can be compared with each other (L{Pair}): the
namespace rows (L{txspawn._bench._namespaces}) and the cgroup rows
(L{txspawn._bench._cgroups}) are such suites.

The value types (L{Params}, L{Setup}, L{Task}, L{Scenario}, L{Pair}) are
in L{txspawn._bench._model}, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from txspawn._bench._cgroups import CGROUP_SCENARIOS
from txspawn._bench._model import Pair, Params, Scenario, Setup, Task, TaskKind
from txspawn._bench._namespaces import NAMESPACE_SCENARIOS
from txspawn._bench._supervise import SUPERVISE_SCENARIO

__all__ = [
    "FULL",
    "QUICK",
    "SCENARIOS",
    "SUITES",
    "Pair",
    "Params",
    "Scenario",
    "Setup",
    "Task",
    "TaskKind",
    "defaultScenarios",
    "scenarioNamed",
    "selectScenarios",
]


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
    # Namespaces: their own suite, paired row against row.
    *NAMESPACE_SCENARIOS,
    # A cgroup per child: its own suite, each leaf row against a plain row
    # on the same engine.
    *CGROUP_SCENARIOS,
    # txspawn's supervisor against procmon and supervisord: run by its own
    # harness (txspawn._bench._supervise), reported in its own table.
    SUPERVISE_SCENARIO,
)

#: The suites: a C{--scenario} name that selects every row of one.
SUITES: frozenset[str] = frozenset(s.suite for s in SCENARIOS if s.suite)


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
    known = ", ".join([*sorted(SUITES), *(s.name for s in SCENARIOS)])
    raise ValueError(f"unknown scenario {name!r}; known: {known}")


def selectScenarios(names: Iterable[str]) -> list[Scenario]:
    """
    The rows C{--scenario} selects, in report order: C{"all"} selects
    every row, a suite's name every row of that suite, and a row with
    L{Pair}s brings the rows it is paired with.

    @param names: Scenario or suite names, or C{"all"}.
    @return: The rows.
    @raise ValueError: naming the known names, for an unknown name.
    """
    chosen: set[str] = set()
    for name in names:
        if name == "all":
            chosen.update(s.name for s in SCENARIOS)
        elif name in SUITES:
            chosen.update(s.name for s in SCENARIOS if s.suite == name)
        else:
            chosen.add(scenarioNamed(name).name)
    pending = list(chosen)
    while pending:
        for pair in scenarioNamed(pending.pop()).pairs:
            if pair.over not in chosen:
                chosen.add(pair.over)
                pending.append(pair.over)
    return [s for s in SCENARIOS if s.name in chosen]
