# -*- test-case-name: tests.test_cgroup_support -*-
"""
What C{python -m txspawn info} says about cgroup support here, each part
found by doing it: the cgroup v2 mount, this process's own cgroup, the
parent leaves would be made in (and how it was found, or why there is
none), the controllers it offers, and, in a fresh leaf made and removed
for the purpose, whether a child cloned into it with C{CLONE_INTO_CGROUP}
runs, and whether C{cgroup.kill} is there.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from txspawn._cgroup.hierarchy import cgroupMount, ownCgroup, readControllers
from txspawn._cgroup.leaf import CgroupLeaf, createLeaf
from txspawn._cgroup.parent import (
    SUBTREE,
    CgroupParent,
    CgroupUnavailable,
    boundToV1,
    findParent,
)
from txspawn._cgroupoptions import Cgroup
from txspawn.errors import SpawnError

__all__ = ["cgroupSupport", "cloneIntoCgroupProbe", "describeProbeStatus"]

ON = "on"
OFF = "off"

#: Why C{CLONE_INTO_CGROUP} is off when the kernel killed the probe child.
KILLED_BEFORE_RUN = (
    "the kernel killed a child cloned into a fresh leaf before it ran (the "
    "spawner's cgroup and the leaf have a different cgroup.kill history): "
    "children are placed through cgroup.procs"
)


def cloneIntoCgroupProbe() -> tuple[Callable[[int], int] | None, str]:
    """
    The C engine's C{probeCloneIntoCgroup}, or L{None} and why it is
    missing.
    """
    try:
        from txspawn import _cspawn
    except ImportError as e:
        return None, f"the C extension is not built ({e})"
    probe: Callable[[int], int] | None = getattr(_cspawn, "probeCloneIntoCgroup", None)
    if probe is None:
        return None, (
            "txspawn._cspawn has no probeCloneIntoCgroup (an extension built "
            "before cgroup support: rebuild it)"
        )
    return probe, ""


def describeProbeStatus(status: int) -> tuple[str, str]:
    """
    The verdict on C{CLONE_INTO_CGROUP} from the probe's result: a raw wait
    status, or C{-errno}.
    """
    if status < 0:
        name = errno.errorcode.get(-status, str(-status))
        return OFF, f"clone3(CLONE_INTO_CGROUP) failed with {name}"
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return ON, "a child cloned into a fresh leaf ran"
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9:
        return OFF, KILLED_BEFORE_RUN
    return OFF, f"the probe child ended with wait status {status:#x}"


def cgroupSupport() -> list[tuple[str, str, str]]:
    """
    The cgroup lines of C{python -m txspawn info}: C{(name, "on" or
    "off", reason)}.
    """
    lines: list[tuple[str, str, str]] = []
    mount = cgroupMount()
    if mount is None:
        reason = "no cgroup2 file system in /proc/self/mountinfo"
        return [
            ("cgroup v2", OFF, reason),
            ("cgroup parent", OFF, reason),
        ]
    lines.append(("cgroup v2", ON, f"mounted at {mount}"))
    try:
        lines.append(("cgroup (own)", ON, ownCgroup()))
    except (LookupError, OSError) as e:
        lines.append(("cgroup (own)", OFF, str(e)))
    try:
        parent = findParent(None)
    except (CgroupUnavailable, SpawnError) as e:
        lines.append(("cgroup parent", OFF, str(e)))
        return lines
    lines.append(("cgroup parent", ON, f"{parent.path}: {parent.how}"))
    lines.append(_controllersLine(parent))
    try:
        leaf = createLeaf(Cgroup())
    except (CgroupUnavailable, SpawnError) as e:
        lines.append(("CLONE_INTO_CGROUP", OFF, f"no leaf could be made: {e}"))
        return lines
    try:
        lines.extend(_leafLines(leaf))
    finally:
        leaf.discard()
    return lines


def _controllersLine(parent: CgroupParent) -> tuple[str, str, str]:
    offered = set(parent.controllers)
    note = ""
    if parent.how == SUBTREE:
        # What the root offers is enabled there on demand (see
        # enableControllers).
        try:
            atRoot = readControllers(os.path.dirname(parent.path)) - offered
        except OSError:
            atRoot = frozenset()
        if atRoot:
            offered |= atRoot
            note = f" ({', '.join(sorted(atRoot))} enabled at the root when needed)"
    limits = [c for c in _LIMIT_CONTROLLERS if c in offered]
    missing = [c for c in _LIMIT_CONTROLLERS if c not in offered]
    bound = [c for c in missing if boundToV1(c)]
    where = f" ({', '.join(bound)} bound to cgroup v1 on this hybrid host)"
    if limits:
        enabled = ", ".join(sorted(parent.enabled)) or "none yet"
        reason = f"offered: {', '.join(sorted(offered))}{note}; enabled: {enabled}"
        if missing:
            reason += f"; no {', '.join(missing)} limits here"
            if bound:
                reason += where
        return ("cgroup controllers", ON, reason)
    # Nothing a limit option needs: no Cgroup limit can be honoured here
    # (grouping, kill, events and cpu.stat still work).
    shown = ", ".join(sorted(offered)) if offered else "none"
    reason = (
        f"{parent.path} offers {shown}, none of memory, pids, cpu, io: no "
        f"Cgroup limit can be set here"
    )
    if bound:
        reason += where
    return ("cgroup controllers", OFF, reason)


#: The controllers the limit options of C{Cgroup} need.
_LIMIT_CONTROLLERS = ("memory", "pids", "cpu", "io")


def _leafLines(leaf: CgroupLeaf) -> list[tuple[str, str, str]]:
    lines = []
    probe, missing = cloneIntoCgroupProbe()
    if probe is None:
        lines.append(("CLONE_INTO_CGROUP", OFF, missing))
    else:
        on, reason = describeProbeStatus(probe(leaf.dirFd))
        lines.append(("CLONE_INTO_CGROUP", on, reason))
    if os.path.exists(os.path.join(leaf.path, "cgroup.kill")):
        lines.append(("cgroup.kill", ON, "kills a child's whole tree"))
    else:
        lines.append(
            (
                "cgroup.kill",
                OFF,
                "no cgroup.kill (Linux < 5.14): each process is sent SIGKILL",
            )
        )
    return lines
