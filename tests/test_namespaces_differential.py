"""
The differential namespace suite (PEP 399): for every configuration of a
table, a child spawned by the C engine and one spawned by the Python engine
report identical worlds (C{tests/helpers/nsworld.py}), on each monitor.

What legitimately differs between two spawns is taken out first: the
inode numbers of namespaces (only whether each is the parent's or a new
one is compared), pids seen from outside a pid namespace, and the clocks
(replaced by whether each, less the configured offset, lies between the
parent's readings before and after the spawn).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tests.builders import makeTestCaseClasses
from tests.nsutil import (
    WorldMixin,
    clocks,
    normalise,
    offsetsOf,
    parentNamespaces,
    userNamespacesUnavailable,
)
from txspawn.options import Namespaces

_NOT_ROOT = None if os.geteuid() == 0 else "needs root (CAP_SYS_ADMIN)"
_NO_USERNS = userNamespacesUnavailable()

_MAP = "0 100000 2000"

#: Name -> (the Namespaces, more spawnProcess keywords).
CONFIGURATIONS: dict[str, Callable[[], tuple[Namespaces, dict[str, Any]]]] = {
    "empty": lambda: (Namespaces(), {}),
    "user": lambda: (Namespaces(user=True), {}),
    "userOtherInsideId": lambda: (
        Namespaces(
            user=True,
            uidMap=f"1000 {os.geteuid()} 1",
            gidMap=f"1000 {os.getegid()} 1",
        ),
        {},
    ),
    "parentWrittenMap": lambda: (
        Namespaces(user=True, uidMap="0 100000 1000", gidMap="0 100000 1000"),
        {},
    ),
    "multiRange": lambda: (
        Namespaces(
            user=True,
            uidMap="0 100000 1000,1000 200000 10",
            gidMap="0 100000 1000,1000 200000 10",
            setgroups="allow",
        ),
        {},
    ),
    "idsInside": lambda: (
        Namespaces(user=True, uidMap=_MAP, gidMap=_MAP, setgroups="allow"),
        {"uid": 1000, "gid": 1001, "groups": [5, 1002]},
    ),
    "idsInsideDenied": lambda: (
        Namespaces(user=True, uidMap=_MAP, gidMap=_MAP),
        {"uid": 1000, "gid": 1000},
    ),
    "pid": lambda: (Namespaces(pid=True), {}),
    "pidProc": lambda: (Namespaces(pid=True, mount=True, mountProc=True), {}),
    "pidProcNoInit": lambda: (
        Namespaces(pid=True, mount=True, mountProc=True, pidInit=False),
        {},
    ),
    "userPidProc": lambda: (
        Namespaces(user=True, pid=True, mount=True, mountProc=True),
        {},
    ),
    "userPidProcNoInit": lambda: (
        Namespaces(user=True, pid=True, mount=True, mountProc=True, pidInit=False),
        {},
    ),
    "mountPrivate": lambda: (Namespaces(mount=True, propagation="private"), {}),
    "mountShared": lambda: (Namespaces(mount=True, propagation="shared"), {}),
    "mountUnchanged": lambda: (Namespaces(mount=True, propagation="unchanged"), {}),
    "uts": lambda: (Namespaces(uts=True, hostname="differential"), {}),
    "net": lambda: (Namespaces(net=True), {}),
    "netLoopback": lambda: (Namespaces(user=True, net=True, loopback=True), {}),
    "ipc": lambda: (Namespaces(ipc=True), {}),
    "cgroup": lambda: (Namespaces(user=True, cgroup=True), {}),
    "time": lambda: (
        Namespaces(time=True, timeOffsets={"monotonic": 100, "boottime": 200}),
        {},
    ),
    "everythingRoot": lambda: (
        Namespaces(
            pid=True,
            mount=True,
            net=True,
            uts=True,
            ipc=True,
            cgroup=True,
            time=True,
            hostname="root",
            loopback=True,
            mountProc=True,
            timeOffsets={"monotonic": 3},
        ),
        {},
    ),
    "everythingUser": lambda: (
        Namespaces(
            user=True,
            pid=True,
            mount=True,
            net=True,
            uts=True,
            ipc=True,
            cgroup=True,
            time=True,
            uidMap=_MAP,
            gidMap=_MAP,
            setgroups="allow",
            hostname="user",
            loopback=True,
            mountProc=True,
            timeOffsets={"monotonic": 3, "boottime": -1},
        ),
        {"uid": 0, "gid": 0, "groups": [7]},
    ),
}


class DifferentialMixin(WorldMixin):
    """
    The C engine (this class's) and the Python engine report the same
    world for every configuration.
    """

    if _NOT_ROOT or _NO_USERNS:
        skip = _NOT_ROOT or _NO_USERNS

    def worldOf(self, engine: str, name: str) -> dict[str, Any]:
        """
        The normalised world of configuration C{name}, spawned by C{engine}.
        """
        from txspawn.reactor import EPollReactor

        namespaces, kwargs = CONFIGURATIONS[name]()
        reactor = EPollReactor(engine=engine, monitor=self.monitorName)
        self._reactors.append(reactor)
        parent = parentNamespaces()
        before = clocks()
        report, proto = self.spawnWorld(namespaces, reactor=reactor, **kwargs)
        after = clocks()
        self.assertEqual(
            proto.endedReason.value.exitCode,
            0,
            f"{engine}: {proto.output.get(2, b'')!r}",
        )
        return normalise(report, parent, before, after, offsetsOf(namespaces))

    def assertSameWorld(self, name: str) -> None:
        """
        Both engines report the same world for configuration C{name}, and
        it has the clocks right.
        """
        c = self.worldOf("c", name)
        py = self.worldOf("python", name)
        self.assertEqual(c, py)
        self.assertEqual((c["monotonic"], c["boottime"]), (True, True))


def _makeTest(name: str) -> Callable[[DifferentialMixin], None]:
    def test(self: DifferentialMixin) -> None:
        self.assertSameWorld(name)

    test.__name__ = f"test_{name}"
    test.__doc__ = f"Configuration {name!r}: both engines report the same world."
    return test


for _name in CONFIGURATIONS:
    setattr(DifferentialMixin, f"test_{_name}", _makeTest(_name))
del _name

# The C engine's classes compare themselves with the Python engine.
globals().update(
    {
        name: cls
        for name, cls in makeTestCaseClasses(DifferentialMixin).items()
        if getattr(cls, "engineName", None) == "c"
    }
)
