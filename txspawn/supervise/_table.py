# -*- test-case-name: tests.test_supervise_status -*-
"""
The status table, for a person: what C{python -m txspawn ctl status}
prints from the control API's JSON rows, and what
L{txspawn.supervise.status.formatTable} prints from a service's
L{ProgramStatus<txspawn.supervise.status.ProgramStatus>} rows.

Only the stdlib here: C{ctl} imports it, and must not pay for Twisted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["formatBytes", "formatDuration", "formatRows"]


class _Row(Protocol):
    """
    A row that can be made a JSON dict (a C{ProgramStatus}).
    """

    def toJSON(self) -> dict[str, object]: ...


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


def _cells(row: _Row | Mapping[str, object]) -> tuple[str, ...]:
    data = row if isinstance(row, Mapping) else row.toJSON()

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


def formatRows(rows: Sequence[_Row | Mapping[str, object]]) -> str:
    """
    The status table: columns C{NAME STATE PID UPTIME RESTARTS LAST EXIT
    CPU MEMORY}, left-aligned, C{"-"} for what is not known, one line per
    row, ending with a newline.

    @param rows: Rows with a C{toJSON()} (C{ProgramStatus}), or such
        dicts (what the control API returns).
    """
    table = [_COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[index]) for line in table) for index in range(len(_COLUMNS))]
    lines = []
    for line in table:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"
