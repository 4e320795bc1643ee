# -*- test-case-name: tests.test_supervise_status -*-
"""
One status row per program instance, and the table C{ctl status} prints.

@since: txspawn 0.1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import frozen

from txspawn.supervise._table import formatBytes, formatDuration, formatRows
from txspawn.supervise.states import ProgramState

__all__ = [
    "ProgramStatus",
    "formatBytes",
    "formatDuration",
    "formatTable",
]


@frozen
class ProgramStatus:
    """
    The status of one program instance, at one moment.

    @ivar name: The instance's name (C{"web"}, C{"worker:1"}).
    @ivar program: The program's name (C{"worker"}).
    @ivar state: Its L{ProgramState}.
    @ivar pid: Its child's pid, while one is alive.
    @ivar uptime: Seconds since its child was spawned (C{0.0} without one).
    @ivar restarts: How many times it was started again on its own.
    @ivar failures: Its count of consecutive failures (what its backoff
        counts).
    @ivar lastExit: How its last child ended (C{"exited with code 1"}), or
        C{"spawn failed: ..."} when its last spawn failed; C{None} before
        either.
    @ivar why: Why it is in its state (the last transition's reason, or
        what it waits for).
    @ivar cpu: CPU seconds (user + system) of the current run (its whole
        cgroup when it has one), else of the last run; C{None} when not
        known.
    @ivar memory: Peak memory in bytes of the current run (its cgroup's
        C{memory.peak} when available, else the child's C{VmHWM}), else of
        the last run when its cgroup had the memory controller; C{None}
        when not known.

    @since: txspawn 0.1
    """

    name: str
    program: str
    state: ProgramState
    pid: int | None
    uptime: float
    restarts: int
    failures: int
    lastExit: str | None
    why: str
    cpu: float | None
    memory: int | None

    def toJSON(self) -> dict[str, object]:
        """
        The row as plain JSON types (the state by its name), as the control
        API sends it; L{formatTable} accepts it back.
        """
        return {
            "name": self.name,
            "program": self.program,
            "state": self.state.name,
            "pid": self.pid,
            "uptime": self.uptime,
            "restarts": self.restarts,
            "failures": self.failures,
            "lastExit": self.lastExit,
            "why": self.why,
            "cpu": self.cpu,
            "memory": self.memory,
        }


def formatTable(rows: Sequence[ProgramStatus | Mapping[str, object]]) -> str:
    """
    The status table: columns C{NAME STATE PID UPTIME RESTARTS LAST EXIT
    CPU MEMORY}, left-aligned, C{"-"} for what is not known, one line per
    row, ending with a newline.

    @param rows: L{ProgramStatus} rows, or their L{ProgramStatus.toJSON}
        dicts (what the control API returns).
    """
    return formatRows(rows)
