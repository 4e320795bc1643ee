# -*- test-case-name: tests.test_supervise_status -*-
"""
One status row per program instance, and the table C{ctl status} prints.

@since: txspawn 0.1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import frozen

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


def formatDuration(seconds: float | None) -> str:
    """
    Seconds for a person: C{"12.3s"}, C{"4m05s"}, C{"1h02m"}, C{"3d04h"};
    C{"-"} for C{None}.
    """
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def formatBytes(size: int | None) -> str:
    """
    Bytes for a person, in powers of 1024: C{"512B"}, C{"45.6M"},
    C{"1.2G"}; C{"-"} for C{None}.
    """
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{int(value)}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


_COLUMNS = ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEMORY")


def _cells(row: ProgramStatus | Mapping[str, object]) -> tuple[str, ...]:
    data = row.toJSON() if isinstance(row, ProgramStatus) else row

    def get(key: str) -> object:
        return data.get(key)

    pid = get("pid")
    uptime = get("uptime")
    cpu = get("cpu")
    memory = get("memory")
    lastExit = get("lastExit")
    return (
        str(get("name")),
        str(get("state")),
        "-" if pid is None else str(pid),
        "-"
        if pid is None or not isinstance(uptime, int | float)
        else formatDuration(uptime),
        str(get("restarts") if get("restarts") is not None else "-"),
        "-" if lastExit is None else str(lastExit),
        formatDuration(cpu) if isinstance(cpu, int | float) else "-",
        formatBytes(memory) if isinstance(memory, int) else "-",
    )


def formatTable(rows: Sequence[ProgramStatus | Mapping[str, object]]) -> str:
    """
    The status table: columns C{NAME STATE PID UPTIME RESTARTS LAST EXIT
    CPU MEMORY}, left-aligned, C{"-"} for what is not known, one line per
    row, ending with a newline.

    @param rows: L{ProgramStatus} rows, or their L{ProgramStatus.toJSON}
        dicts (what the control API returns).
    """
    table = [_COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[index]) for line in table) for index in range(len(_COLUMNS))]
    lines = []
    for line in table:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"
