# -*- test-case-name: tests.test_bench -*-
"""
The value types of C{python -m txspawn bench}: the sizes of a run
(L{Params}), the state of a worker before timing (L{Setup}), one measured
batch (L{Task}), a row of the report (L{Scenario}) and a paired ratio
between two rows (L{Pair}).

The rows themselves are in L{txspawn._bench._scenarios} (and the namespace
rows in L{txspawn._bench._namespaces}, the cgroup rows in
L{txspawn._bench._cgroups}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from attrs import field, frozen

__all__ = ["Pair", "Params", "Scenario", "Setup", "Task", "TaskKind", "pairedRow"]

TaskKind = Literal["spawn", "exit", "pipe"]


def _options(value: Mapping[str, object]) -> dict[str, object]:
    return dict(value)


def _pairs(value: Iterable[Pair]) -> tuple[Pair, ...]:
    return tuple(value)


def _strings(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


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


@frozen
class Setup:
    """
    The parent's state before any batch is timed.

    @ivar idle: Children spawned by the implementation itself and left
        blocked reading their stdin (C{/bin/cat} with the default three
        pipes), so the parent holds their pipes (and pidfds).
    @ivar ballastMiB: Anonymous memory the parent allocates and touches.
    @ivar engine: The txspawn engine this worker must use (C{"c"},
        C{"python"}), overriding C{--engine}: rows that compare the engines
        run on one worker per engine.  C{None}: the run's engine.
    """

    idle: int = 0
    ballastMiB: int = 0
    engine: str | None = None

    def describe(self) -> str:
        """
        @return: A short human description.
        """
        parts = []
        if self.idle:
            parts.append(f"{self.idle} idle children")
        if self.ballastMiB:
            parts.append(f"{self.ballastMiB} MiB parent")
        described = ", ".join(parts) or "empty parent"
        if self.engine is not None:
            described += f", {self.engine} engine"
        return described


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
    @ivar args: For C{"spawn"}: the child's argv, or C{None} for just the
        executable's base name.
    @ivar settle: For C{"spawn"}: end each sample one reactor turn after
        the spawn's last callback rather than in C{processEnded}, so that
        work done right after it is counted: with a C{cgroup} option the
        last callback is C{processTreeEnded}, and the sample ends once the
        child's cgroup is removed too.  Rows compared with such a row
        settle too, so both pay the same extra turn.
    """

    kind: TaskKind
    count: int
    executable: str = "/bin/true"
    options: Mapping[str, object] = field(factory=dict, converter=_options, hash=False)
    delayUs: int = 0
    args: tuple[str, ...] | None = field(default=None, converter=_strings)
    settle: bool = False

    def warmup(self) -> Task:
        """
        @return: A small batch of the same task, run once per worker before
            the timed batches so that first-run effects (page cache, lazy
            imports, allocator growth) are not measured.
        """
        small = max(1, min(self.count, 5 if self.kind != "pipe" else 16))
        return Task(
            self.kind,
            small,
            self.executable,
            self.options,
            self.delayUs,
            self.args,
            self.settle,
        )

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
            "args": None if self.args is None else list(self.args),
            "settle": self.settle,
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
    @ivar columns: The implementations that can run the row (C{None}:
        every one); the others' cells are C{-}.
    @ivar suite: Rows of one suite run in one block, each repetition
        timing every row of the suite back to back (on workers of each
        setup the suite needs), so that L{pairs} between them are paired.
    @ivar pairs: The paired ratios of this row over other rows of its
        suite, in the txspawn column, with their goals.
    """

    name: str
    title: str
    measures: str
    unit: Literal["us", "MiB/s"]
    target: float | None
    why: str
    default: bool
    plan: Callable[[Params], tuple[Setup, Task]] = field(eq=False, repr=False)
    columns: tuple[str, ...] | None = field(default=None, converter=_strings)
    suite: str | None = None
    pairs: tuple[Pair, ...] = field(default=(), converter=_pairs)

    def runs(self, impl: str) -> bool:
        """
        @param impl: An implementation name.
        @return: Whether this row runs in that column.
        """
        return self.columns is None or impl in self.columns

    @property
    def higherIsBetter(self) -> bool:
        """
        Whether bigger numbers are better (throughput rows).
        """
        return self.unit == "MiB/s"


@frozen
class Pair:
    """
    A paired comparison between two rows of a suite, in the txspawn
    column: the row's batch median over (and minus) row C{over}'s in each
    repetition (both timed back to back), and the median of those.

    @ivar over: The other row's name.
    @ivar goal: The most the ratio may be, or C{None} for none.
    @ivar why: Why that goal (or what the comparison shows), in a user's
        words.
    @ivar differenceGoal: The most the difference may be, in the rows'
        unit (microseconds), or C{None} for none: for a cost that is a
        fixed amount of work on top of the other row's, whatever that
        row's own cost.
    """

    over: str
    goal: float | None
    why: str
    differenceGoal: float | None = None


def pairedRow(
    name: str,
    title: str,
    measures: str,
    plan: Callable[[Params], tuple[Setup, Task]],
    suite: str,
    seePaired: str,
    pairs: Iterable[Pair],
) -> Scenario:
    """
    A row of a suite measured only against its own other rows (the
    namespace and cgroup suites): the txspawn column alone, in
    microseconds, with no goal against the C loop.

    @param measures: What a sample measures, in words.
    @param seePaired: What to read instead of a goal against the C loop
        (C{"ratios"} or C{"difference"}).
    """
    return Scenario(
        name,
        title,
        measures,
        "us",
        None,
        f"no goal against the C loop: see the paired {seePaired}",
        False,
        plan,
        columns=("txspawn",),
        suite=suite,
        pairs=pairs,
    )
