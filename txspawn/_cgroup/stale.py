# -*- test-case-name: tests.test_cgroup_stale -*-
"""
Leaves left behind by a txspawn process that died, removed by the next
one that uses the same parent.

Every leaf txspawn makes is named for the process that made it, by pid
and start time (C{txspawn-<pid>-<starttime>-<n>}, and
C{txspawn-self-<pid>-<starttime>} for the leaf a process moves itself
into): the pair names a process for good, since a recycled pid comes with
another start time.  A leaf whose owner is gone is killed
(C{cgroup.kill}) and removed; one still busy (its processes not yet
reaped by the kernel) is left for the next sweep.

The owner is looked up in this process's pid namespace: processes of
another pid namespace must not share a parent with us (their leaves would
look orphaned).
"""

from __future__ import annotations

import os
import re

from txspawn._cgroup.hierarchy import killCgroup, processStartTime, removeCgroup
from txspawn._cgroup.parent import CgroupParent

__all__ = ["LEAF_NAME", "ownerAlive", "sweepStale", "sweepStaleAt"]

#: The name of a leaf txspawn made: its owner's pid and start time.
LEAF_NAME = re.compile(r"^txspawn-(?:self-)?(\d+)-(\d+)(?:-\d+)?$")


def ownerAlive(pid: int, startTime: int) -> bool:
    """
    Whether the process C{pid} that started at C{startTime} still exists.
    """
    return processStartTime(pid) == startTime


def sweepStaleAt(path: str) -> list[str] | None:
    """
    Kill and remove the leaves under C{path} whose owner is gone.

    @return: The names of the leaves removed, or L{None} when C{path} could
        not be listed (no fd free, say): then nothing was swept, and a
        later spawn tries again.
    """
    removed: list[str] = []
    try:
        names = os.listdir(path)
    except OSError:
        return None
    for name in names:
        match = LEAF_NAME.match(name)
        if match is None or ownerAlive(int(match.group(1)), int(match.group(2))):
            continue
        leaf = os.path.join(path, name)
        try:
            killCgroup(leaf)
            if removeCgroup(leaf):
                removed.append(name)
        except OSError:
            # Someone else's business after all (or removed meanwhile):
            # a sweep never fails a spawn.
            continue
    return removed


def sweepStale(parent: CgroupParent) -> list[str] | None:
    """
    L{sweepStaleAt} the parent's path.
    """
    return sweepStaleAt(parent.path)
