"""
Helpers for the tests of children in cgroups of their own (the transport
and result API side): a parent cgroup of the test's own under the cgroup
v2 mount (checked to hold no leaf after the test, then removed), a
protocol that hears of the end of the child's tree, and checks that
processes are dead, by pidfd and by C{os.kill(pid, 0)}.

The tests never touch the cgroup v1 hierarchies and never move this
process: each test makes C{<cgroup2 mount>/txspawn-h4test-<pid>-<n>} and
spawns with C{Cgroup(parent=that)}, so the leaves txspawn makes are its
children; after the test it must hold none.
"""

from __future__ import annotations

import itertools
import os
import select
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from tests.treeutil import LineProtocol
from txspawn.interfaces import IProcessTreeObserver
from txspawn.options import CgroupStats

__all__ = [
    "TreeProtocol",
    "aliveByKill",
    "cgroupSkipReason",
    "deadByPidfd",
    "makeTestParent",
    "openPidfds",
    "readProcs",
]

_SEQUENCE = itertools.count()


def cgroupMountPath() -> str | None:
    """
    Where the cgroup v2 hierarchy is mounted (C{/proc/self/mountinfo}).
    """
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                return left.split()[4]
    return None


def cgroupSkipReason() -> str | None:
    """
    Why these tests cannot run here (no cgroup v2, or we may not make
    cgroups in it), else C{None}.
    """
    mount = cgroupMountPath()
    if mount is None:
        return "no cgroup v2 hierarchy is mounted"
    if not os.access(os.path.join(mount, "cgroup.procs"), os.W_OK):
        return f"cgroups cannot be made under {mount} (not root, not delegated)"
    return None


def readProcs(path: str) -> list[int]:
    """
    The pids in a cgroup's C{cgroup.procs}.
    """
    with open(os.path.join(path, "cgroup.procs")) as f:
        return [int(line) for line in f.read().split()]


def leavesIn(path: str) -> list[str]:
    """
    The names of the cgroups in C{path}.
    """
    return sorted(
        name for name in os.listdir(path) if os.path.isdir(os.path.join(path, name))
    )


def makeTestParent(test: Any) -> str:
    """
    Make a parent cgroup for C{test}'s children; after the test, check that
    no leaf is left in it (failing the test if one is: each is killed and
    removed first, so one failure does not spill into the next test) and
    remove it.
    """
    mount = cgroupMountPath()
    assert mount is not None
    path = os.path.join(mount, f"txspawn-h4test-{os.getpid()}-{next(_SEQUENCE)}")
    os.mkdir(path)

    def check() -> None:
        left = leavesIn(path)
        for name in left:
            _removeLeaf(os.path.join(path, name))
        os.rmdir(path)
        test.assertEqual(left, [], "cgroup leaves left behind")

    test.addCleanup(check)
    return path


def _removeLeaf(path: str) -> None:
    with open(os.path.join(path, "cgroup.kill"), "w") as f:
        f.write("1")
    while True:
        try:
            os.rmdir(path)
            return
        except OSError:
            os.sched_yield()


def openPidfds(test: Any, pids: list[int]) -> list[int | None]:
    """
    A pidfd for each of C{pids}, closed after the test; C{None} for a pid
    that is gone already.
    """
    fds: list[int | None] = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            fds.append(None)
            continue
        test.addCleanup(os.close, fd)
        fds.append(fd)
    return fds


def deadByPidfd(pidfds: list[int | None]) -> list[bool]:
    """
    For each pidfd, whether its process has exited (a pidfd is readable
    once its process has, reaped or not); a C{None} (gone before it could
    be opened) counts as dead.
    """
    poller = select.poll()
    for fd in pidfds:
        if fd is not None:
            poller.register(fd, select.POLLIN)
    ready = {fd for fd, _ in poller.poll(0)}
    return [fd is None or fd in ready for fd in pidfds]


def aliveByKill(pids: list[int]) -> list[int]:
    """
    The pids C{os.kill(pid, 0)} finds, zombies excepted (an exited daemon
    orphaned to a pid 1 that has not reaped it yet is dead).
    """
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X"):
            alive.append(pid)
    return alive


@implementer(IProcessTreeObserver)
class TreeProtocol(LineProtocol):
    """
    A L{LineProtocol} that hears of the end of the child's tree.

    @ivar treeEnded: Fires with the L{CgroupStats} of C{processTreeEnded}.
    @ivar treeStats: Those statistics, once given.
    @ivar procsAtEnd: What the leaf's C{cgroup.procs} held then.
    """

    def __init__(
        self,
        count: int = 0,
        onLines: Callable[[Any, list[bytes]], object] | None = None,
    ) -> None:
        super().__init__(count, onLines)
        self.treeEnded: Deferred[CgroupStats] = Deferred()
        self.treeStats: CgroupStats | None = None
        self.procsAtEnd: list[int] | None = None

    def processTreeEnded(self, stats: CgroupStats) -> None:
        self._note("treeEnded")
        self.treeStats = stats
        try:
            self.procsAtEnd = readProcs(stats.path)
        except FileNotFoundError:
            self.procsAtEnd = []
        self.treeEnded.callback(stats)


#: How C{tests/helpers/cgrouptree.py}'s leader must start for a test that
#: may signal it at any time: with C{SIGTERM} already blocked
#: (C{sigwait}: a C{SIGTERM} sent while it still builds its tree waits for
#: it) or ignored (C{exit}: it builds the whole tree and exits whatever
#: comes).  Set before Python starts, by coreutils' C{env}: the leader's
#: own C{pthread_sigmask} comes only after the interpreter's start-up,
#: which a loaded machine can stretch past a test's C{timeout}, and the
#: tree would then be cut short by a C{SIGTERM} taken with its default
#: action.  (txspawn itself starts every child with no signal blocked and
#: none ignored, as Twisted does.)
_LEADER_SIGNALS = {
    "sigwait": [b"--block-signal=TERM"],
    "exit": [b"--ignore-signal=TERM"],
}


def treeCommand(python: bytes, tree: bytes, count: int, leader: str) -> list[bytes]:
    """
    The command line of the daemon tree of C{count} daemons whose leader
    does C{leader}, with the leader's C{SIGTERM} blocked or ignored from its
    first instruction where its mode needs it (L{_LEADER_SIGNALS}).
    """
    command = [python, tree, str(count).encode(), leader.encode()]
    signals = _LEADER_SIGNALS.get(leader)
    if signals is None:
        return command
    return [b"/usr/bin/env", *signals, *command]
