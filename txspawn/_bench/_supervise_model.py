# -*- test-case-name: tests.test_bench_supervise -*-
"""
The value types of the C{supervise} bench row: its sizes
(L{SuperviseSizes}) and what it measured (L{SuperviseRun}).

Nothing here is public API.
"""

from __future__ import annotations

from attrs import define, field, frozen

from txspawn._bench._model import Params
from txspawn._bench._supervise_measure import CpuSample, LogCheck

__all__ = [
    "FULL_SIZES",
    "QUICK_SIZES",
    "SUPERVISE",
    "SuperviseRun",
    "SuperviseSizes",
    "sizesFor",
]

#: The row's name, also its C{--scenario} name.
SUPERVISE = "supervise"


@frozen
class SuperviseSizes:
    """
    The sizes of the C{supervise} row.

    @ivar restarts: Restart samples per supervisor.
    @ivar reps: Batches txspawn's and procmon's restarts are cut into
        (interleaved).
    @ivar programs: Sleeping programs in the idle phase.
    @ivar idleSeconds: The idle window.
    @ivar statusRequests: Status requests per supervisor.
    @ivar statusCommands: Status command lines per supervisor.
    @ivar failSeconds: The window of the program that cannot be executed.
    @ivar logBytes: Bytes the logged program writes.
    @ivar logReps: Runs of the logged program per supervisor (alternated).
    """

    restarts: int
    reps: int
    programs: int
    idleSeconds: float
    statusRequests: int
    statusCommands: int
    failSeconds: float
    logBytes: int
    logReps: int = 3

    def describe(self) -> str:
        """
        @return: One line stating the sizes.
        """
        return (
            f"{self.restarts} restarts in {self.reps} batches, {self.programs} "
            f"idle programs over {self.idleSeconds:g} s, {self.statusRequests} "
            f"status requests and {self.statusCommands} status commands, a "
            f"program failing to exec for {self.failSeconds:g} s, "
            f"{self.logReps} x {self.logBytes / 2**20:g} MiB of log"
        )


#: The sizes of issue 15's goals.
FULL_SIZES = SuperviseSizes(200, 5, 200, 30.0, 50, 10, 60.0, 2**30)
#: C{--quick}: well under a minute.
QUICK_SIZES = SuperviseSizes(40, 4, 200, 5.0, 20, 4, 5.0, 50 * 2**20)


def sizesFor(params: Params) -> SuperviseSizes:
    """
    @return: The sizes for a run's parameters (C{--quick} or not).
    """
    return QUICK_SIZES if params.mode.startswith("quick") else FULL_SIZES


@define
class SuperviseRun:
    """
    Everything the row measured; a measure a supervisor could not give is
    absent from its dict (and its error in L{errors}).

    @ivar anchors: The supervisors run, in report order.
    @ivar restarts: Restart latencies, milliseconds.
    @ivar restartBatches: Each batch's median restart latency.
    @ivar idle: CPU use over the idle window.
    @ivar status: Status request round trips, milliseconds, idle phase.
    @ivar statusCommand: Status command lines' wall time, milliseconds.
    @ivar fail: CPU use over the failing program's window.
    @ivar failStatus: Status request round trips during it.
    @ivar failState: What the supervisor said about the failing program at
        the end.
    @ivar logs: What the log files held (of the runs, the one with the most
        lines lost, split or garbled).
    @ivar logSeconds: From the program's start to its last line logged,
        for each run (alternated between the supervisors).
    @ivar errors: Why a measure is missing, by C{"phase supervisor"}.
    """

    sizes: SuperviseSizes
    child: str = ""
    anchors: tuple[str, ...] = ()
    restarts: dict[str, list[float]] = field(factory=dict)
    restartBatches: dict[str, list[float]] = field(factory=dict)
    idle: dict[str, CpuSample] = field(factory=dict)
    idleWindow: float = 0.0
    status: dict[str, list[float]] = field(factory=dict)
    statusCommand: dict[str, list[float]] = field(factory=dict)
    fail: dict[str, CpuSample] = field(factory=dict)
    failWindow: float = 0.0
    failStatus: dict[str, list[float]] = field(factory=dict)
    failState: dict[str, str] = field(factory=dict)
    logs: dict[str, LogCheck] = field(factory=dict)
    logSeconds: dict[str, list[float]] = field(factory=dict)
    errors: dict[str, str] = field(factory=dict)
    seconds: float = 0.0
