# -*- test-case-name: tests.test_supervise_status -*-
"""
A program's CPU time and peak memory, for its status row: read live from
the child's cgroup or C{/proc} while it runs, else taken from its last
run's cgroup statistics or resource usage.
"""

from __future__ import annotations

import os
from typing import Any

from txspawn.interfaces import IManagedProcessTransport
from txspawn.supervise.program import ProgramProcess

__all__ = ["cpuSeconds", "peakMemory"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str | None:
    # os.open/os.read: a status of 200 programs reads 400 small files.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


#: The cgroups whose leaves have no memory.peak (the memory controller is
#: not enabled for them): not looked for again.
_NO_PEAK: set[str] = set()


def _cgroupPath(program: ProgramProcess) -> str | None:
    transport = program.transport
    if IManagedProcessTransport.providedBy(transport):
        path: str | None = transport.cgroupPath
        return path
    return None


def _procCpu(pid: int) -> float | None:
    """
    The user+system CPU seconds of C{pid} from C{/proc/<pid>/stat}.
    """
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: the
    # fields after it start after its last ")".
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return None


def _cgroupCpu(path: str) -> float | None:
    text = _read(os.path.join(path, "cpu.stat"))
    if text is None:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    return None


def _rusage(program: ProgramProcess) -> Any:
    if program.lastExit is None:
        return None
    return getattr(program.lastExit, "rusage", None)


def cpuSeconds(program: ProgramProcess) -> float | None:
    """
    The CPU time (user + system, seconds) of the program's current run:
    its whole cgroup's when it has one, else its child's from C{/proc};
    with no child alive, that of the last run (its cgroup's final
    statistics, else its C{rusage}); C{None} when nothing is known.
    """
    pid = program.pid
    if pid is not None:
        cgroup = _cgroupPath(program)
        if cgroup is not None:
            seconds = _cgroupCpu(cgroup)
            if seconds is not None:
                return seconds
        return _procCpu(pid)
    stats = program.lastTreeStats
    if stats is not None:
        return stats.cpuUsageUsec / 1e6
    usage = _rusage(program)
    if usage is None:
        return None
    return float(usage.ru_utime + usage.ru_stime)


def _vmHWM(pid: int) -> int | None:
    text = _read(f"/proc/{pid}/status")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            return int(parts[1]) * 1024
    return None


def peakMemory(program: ProgramProcess) -> int | None:
    """
    The peak memory (bytes) of the program's current run: its cgroup's
    C{memory.peak} when it has one with the memory controller, else the
    child's C{VmHWM}; with no child alive, the last run's cgroup
    C{memoryPeak}; C{None} when nothing is known.

    The last run's C{ru_maxrss} is not used: for a child spawned with
    C{vfork} (txspawn's C engine, C{posix_spawn}) the kernel counts the
    parent's resident set in it (see L{IManagedProcessTransport.rusage}),
    so every stopped program would show the supervisor's own size.
    """
    pid = program.pid
    if pid is not None:
        cgroup = _cgroupPath(program)
        parent = None if cgroup is None else os.path.dirname(cgroup)
        if cgroup is not None and parent not in _NO_PEAK:
            text = _read(os.path.join(cgroup, "memory.peak"))
            if text is not None and text.strip().isdigit():
                return int(text)
            if text is None and parent is not None:
                _NO_PEAK.add(parent)
        return _vmHWM(pid)
    stats = program.lastTreeStats
    if stats is not None:
        return stats.memoryPeak
    return None
