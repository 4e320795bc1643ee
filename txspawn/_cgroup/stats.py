# -*- test-case-name: tests.test_cgroup_stats -*-
"""
The statistics of a leaf: the parsers of the cgroup files (pure
functions) and the reading of them into a L{CgroupStats}.

C{cpu.stat} is always there (without the C{cpu} controller it has only
C{usage_usec}, C{user_usec} and C{system_usec}); C{memory.peak},
C{memory.events}, C{pids.peak} and C{io.stat} only when their controller
is enabled for the leaf, and only those are read.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection

from txspawn._cgroupoptions import CgroupStats

__all__ = [
    "parseFlatKeyed",
    "parseIoStat",
    "parsePopulated",
    "parseSingleValue",
    "readLeafStats",
]


def parseFlatKeyed(text: str) -> dict[str, int]:
    """
    A flat keyed file (C{cpu.stat}, C{memory.events}, C{cgroup.events}):
    one C{"key value"} per line.  Lines that are not a key and an integer
    are skipped (a newer kernel may add other shapes).
    """
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def parseSingleValue(text: str) -> int | None:
    """
    A single value file (C{memory.peak}, C{pids.peak}): an integer, or
    L{None} for C{"max"}.
    """
    value = text.strip()
    return None if value == "max" else int(value)


def parseIoStat(text: str) -> dict[str, dict[str, int]]:
    """
    C{io.stat}: one line per device, C{"maj:min key=value key=value ..."}.
    """
    devices: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        counters = devices.setdefault(parts[0], {})
        for pair in parts[1:]:
            key, sep, value = pair.partition("=")
            if sep:
                try:
                    counters[key] = int(value)
                except ValueError:
                    continue
    return devices


def parsePopulated(text: str) -> bool:
    """
    Whether C{cgroup.events} says a process is in the cgroup or its
    descendants.
    """
    return parseFlatKeyed(text).get("populated", 0) != 0


def _read(dirFd: int, name: str) -> str | None:
    """
    A file of the leaf (opened relative to its directory fd), or L{None}
    when it does not exist.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dirFd)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def readLeafStats(
    path: str,
    dirFd: int,
    controllers: Collection[str],
    placement: str,
    placementNote: str | None,
    cpuStatFd: int = -1,
) -> CgroupStats:
    """
    Read a leaf's statistics.

    @param dirFd: A directory fd of the leaf, or of its path if it has
        none any more (the files are opened relative to it).
    @param controllers: The controllers enabled for the leaf: only their
        files are read.
    @param cpuStatFd: The leaf's C{cpu.stat}, kept open, or C{-1}: a
        cgroup file is generated anew by each read from its start, so one
        C{pread} gives the counters of now without an C{open} and a
        C{close} on a child's exit path.
    @raise OSError: C{cpu.stat} cannot be read (the leaf is gone).
    """
    cpuText = (
        _read(dirFd, "cpu.stat")
        if cpuStatFd < 0
        else os.pread(cpuStatFd, 65536, 0).decode()
    )
    if cpuText is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    cpu = parseFlatKeyed(cpuText)
    memoryPeak = oomKills = pidsPeak = None
    io = None
    if "memory" in controllers:
        text = _read(dirFd, "memory.peak")
        memoryPeak = None if text is None else parseSingleValue(text)
        text = _read(dirFd, "memory.events")
        oomKills = None if text is None else parseFlatKeyed(text).get("oom_kill")
    if "pids" in controllers:
        text = _read(dirFd, "pids.peak")
        pidsPeak = None if text is None else parseSingleValue(text)
    if "io" in controllers:
        text = _read(dirFd, "io.stat")
        io = None if text is None else parseIoStat(text)
    return CgroupStats(
        path=path,
        placement=placement,
        placementNote=placementNote,
        cpuUsageUsec=cpu.get("usage_usec", 0),
        cpuUserUsec=cpu.get("user_usec", 0),
        cpuSystemUsec=cpu.get("system_usec", 0),
        cpuThrottledCount=cpu.get("nr_throttled"),
        cpuThrottledUsec=cpu.get("throttled_usec"),
        memoryPeak=memoryPeak,
        oomKills=oomKills,
        pidsPeak=pidsPeak,
        io=io,
    )
