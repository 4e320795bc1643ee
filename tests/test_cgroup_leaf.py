# -*- test-case-name: tests.test_cgroup_leaf -*-
"""
Tests for L{txspawn._cgroup.leaf}: a fresh leaf per child (never reused),
its directory fd, placing a process in it, killing, statistics, removal,
and nothing left behind when making one fails.

The leaves are made in a scratch cgroup given as the parent, which does
not hold the test runner (no controller is enabled, so nothing is moved
anyway); the processes placed in them are children.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import (
    allLeaves,
    childInCgroup,
    makeScratchCgroup,
    mountOrSkip,
    waitEmpty,
)
from tests.hygiene import openFDs
from txspawn._cgroup.hierarchy import ownCgroup, processStartTime
from txspawn._cgroup.leaf import CgroupLeaf, createLeaf, leafLimits
from txspawn._cgroup.parent import findParent
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import Cgroup

__all__ = ["CreateTests", "FailureTests", "LeafTests", "LimitsTests"]


def relative(path: str) -> str:
    """
    A cgroup directory as C{/proc/<pid>/cgroup} names it.
    """
    return "/" + os.path.relpath(path, mountOrSkip())


class LimitsTests(SynchronousTestCase):
    """
    L{leafLimits}: what is written for each limit.
    """

    def test_none(self) -> None:
        """
        Without limits, nothing is written.
        """
        self.assertEqual(leafLimits(Cgroup()), [])

    def test_all(self) -> None:
        """
        Each limit goes to its file, in the kernel's syntax.
        """
        self.assertEqual(
            leafLimits(
                Cgroup(
                    memoryMax="64M",
                    memoryHigh=1 << 20,
                    pidsMax=5,
                    cpuMax=0.5,
                    ioWeight=50,
                )
            ),
            [
                ("memory.max", "67108864"),
                ("memory.high", "1048576"),
                ("pids.max", "5"),
                ("cpu.max", "50000 100000"),
                ("io.weight", "default 50"),
            ],
        )
        self.assertEqual(
            leafLimits(Cgroup(cpuMax=(None, 20000))), [("cpu.max", "max 20000")]
        )


class CreateTests(SynchronousTestCase):
    """
    L{createLeaf}.
    """

    def test_fresh(self) -> None:
        """
        Each call makes a new leaf in the parent, named for this process
        (pid and start time) and a number that only grows, opened as a
        close-on-exec directory fd on that very directory.
        """
        scratch = makeScratchCgroup(self)
        first = createLeaf(Cgroup(parent=scratch))
        self.addCleanup(first.discard)
        self.assertTrue(first.tryRemove())
        second = createLeaf(Cgroup(parent=scratch))
        self.addCleanup(second.discard)
        pattern = re.compile(rf"^txspawn-{os.getpid()}-{processStartTime()}-(\d+)$")
        numbers = []
        for leaf in (first, second):
            match = pattern.match(leaf.name)
            assert match is not None, leaf.name
            numbers.append(int(match.group(1)))
            self.assertEqual(leaf.path, os.path.join(scratch, leaf.name))
            self.assertIs(leaf.parent, findParent(scratch))
            self.assertIsNone(leaf.placement)
        self.assertLess(numbers[0], numbers[1])
        self.assertEqual(allLeaves(scratch), [second.name])
        st = os.fstat(second.dirFd)
        self.assertEqual(st.st_ino, os.stat(second.path).st_ino)
        self.assertTrue(fcntl.fcntl(second.dirFd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        self.assertEqual(
            fcntl.fcntl(second.dirFd, fcntl.F_GETFL) & os.O_ACCMODE, os.O_RDONLY
        )


class LeafTests(SynchronousTestCase):
    """
    What is done to a leaf.
    """

    def setUp(self) -> None:
        self.scratch = makeScratchCgroup(self)
        self.leaf = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(self.leaf.discard)

    def test_openProcs(self) -> None:
        """
        A pid written to L{CgroupLeaf.openProcs}'s fd moves that process
        into the leaf, which is then populated.
        """
        leaf = self.leaf
        self.assertFalse(leaf.populated())
        child = childInCgroup(self, self.scratch)
        fd = leaf.openProcs()
        try:
            self.assertTrue(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
            os.write(fd, str(child.pid).encode())
        finally:
            os.close(fd)
        self.assertEqual(ownCgroup(child.pid), relative(leaf.path))
        self.assertTrue(leaf.populated())

    def test_busyThenRemoved(self) -> None:
        """
        L{CgroupLeaf.tryRemove} closes the fd, and says C{False} while a
        process is in the leaf, C{True} once it is gone (and again after).
        """
        leaf = self.leaf
        child = childInCgroup(self, leaf.path)
        self.assertFalse(leaf.tryRemove())
        self.assertEqual(leaf.dirFd, -1)
        self.assertTrue(os.path.isdir(leaf.path))
        leaf.kill()
        self.assertEqual(child.wait(), -9)
        waitEmpty(leaf.path)
        self.assertFalse(leaf.populated())
        self.assertTrue(leaf.tryRemove())
        self.assertFalse(os.path.exists(leaf.path))
        self.assertTrue(leaf.tryRemove())
        self.assertFalse(leaf.populated())
        leaf.kill()
        leaf.closeFd()

    def test_killTree(self) -> None:
        """
        L{CgroupLeaf.kill} kills the whole tree, daemons in sessions of
        their own included.
        """
        leaf = self.leaf
        child = childInCgroup(
            self,
            leaf.path,
            ["/bin/sh", "-c", "setsid sh -c 'echo $$; exec sleep 1000' & wait"],
        )
        assert child.stdout is not None
        daemon = int(child.stdout.readline())
        self.assertNotEqual(os.getsid(daemon), os.getsid(child.pid))
        leaf.kill()
        waitEmpty(leaf.path)
        self.assertEqual(child.wait(), -9)
        self.assertTrue(leaf.tryRemove())

    def test_discard(self) -> None:
        """
        L{CgroupLeaf.discard} kills what is in the leaf, closes its fd and
        removes it; again, it does nothing and raises nothing.
        """
        leaf = self.leaf
        child = childInCgroup(self, leaf.path)
        leaf.discard()
        self.assertEqual(child.wait(), -9)
        self.assertEqual(leaf.dirFd, -1)
        self.assertFalse(os.path.exists(leaf.path))
        leaf.discard()

    def test_stats(self) -> None:
        """
        The CPU time of what ran in the leaf, with how it was placed; the
        counters of controllers not enabled are L{None}.
        """
        leaf = self.leaf
        leaf.placed("procs", "a note")
        child = childInCgroup(
            self,
            leaf.path,
            ["/bin/sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"],
        )
        self.assertEqual(child.wait(), 0)
        stats = leaf.readStats()
        self.assertEqual(
            (stats.path, stats.placement, stats.placementNote),
            (leaf.path, "procs", "a note"),
        )
        self.assertGreater(stats.cpuUsageUsec, 0)
        self.assertGreater(stats.cpuUserUsec + stats.cpuSystemUsec, 0)
        self.assertEqual(
            (
                stats.cpuThrottledCount,
                stats.cpuThrottledUsec,
                stats.memoryPeak,
                stats.oomKills,
                stats.pidsPeak,
                stats.io,
            ),
            (None, None, None, None, None, None),
        )
        self.assertFalse(stats.oomKilled)
        leaf.closeFd()
        self.assertEqual(leaf.readStats(), stats, "the same without the fd")
        self.assertTrue(leaf.tryRemove())
        self.assertRaises(FileNotFoundError, leaf.readStats)

    def test_unplaced(self) -> None:
        """
        Statistics of a leaf no child was placed in say so.
        """
        self.assertEqual(self.leaf.readStats().placement, "unplaced")
        self.assertIsInstance(self.leaf, CgroupLeaf)


class FailureTests(SynchronousTestCase):
    """
    A failure to make a leaf leaves no directory and no fd behind.
    """

    def test_mkdirFails(self) -> None:
        """
        The parent refuses another descendant (C{cgroup.max.descendants}):
        L{SpawnError} of stage C{CGROUP} with C{EAGAIN}.
        """
        scratch = makeScratchCgroup(self)
        with open(os.path.join(scratch, "cgroup.max.descendants"), "w") as f:
            f.write("0")
        before = openFDs()
        e = self.assertRaises(SpawnError, createLeaf, Cgroup(parent=scratch))
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.CGROUP, errno.EAGAIN))
        self.assertTrue(str(e.filename).startswith(scratch + "/txspawn-"))
        self.assertEqual(openFDs(), before)
        self.assertEqual(allLeaves(scratch), [])

    def test_limitFails(self) -> None:
        """
        Writing a limit fails (the controller was disabled since it was
        enabled, unknown to this process's cached parent): the leaf made
        for it is removed.
        """
        scratch = makeScratchCgroup(self)
        findParent(scratch).enabled = frozenset({"pids"})
        before = openFDs()
        e = self.assertRaises(SpawnError, createLeaf, Cgroup(parent=scratch, pidsMax=5))
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.CGROUP, errno.ENOENT))
        self.assertTrue(str(e.filename).endswith("/pids.max"))
        self.assertEqual(openFDs(), before)
        self.assertEqual(allLeaves(scratch), [])
