# -*- test-case-name: tests.test_cgroup_spare -*-
"""
Tests for the spare leaf: the next leaf of a parent, made ahead, off a
spawn's path (L{txspawn._cgroup.leaf.prepareSpare}, kept by
L{txspawn._cgroup.removal.LeafRemover.spareLater}).  A spare is fresh --
no process was ever in it -- and is taken by exactly one L{createLeaf};
unused, it is removed after L{SPARE_IDLE} seconds without a spawn, and when
the reactor shuts down.
"""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouptransportutil import readProcs
from tests.cgrouputil import allLeaves, childInCgroup, makeScratchCgroup
from txspawn._cgroup.leaf import createLeaf, discardSpare, prepareSpare
from txspawn._cgroup.parent import findParent
from txspawn._cgroup.removal import SPARE_IDLE, LeafRemover
from txspawn.options import Cgroup, CgroupStats

__all__ = ["RemoverSpareTests", "SpareLeafTests"]


def _openFds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


class SpareLeafTests(SynchronousTestCase):
    """
    L{prepareSpare}, L{createLeaf} taking the spare, L{discardSpare}.
    """

    def setUp(self) -> None:
        self.scratch = makeScratchCgroup(self)
        self.parent = findParent(self.scratch)
        self.addCleanup(discardSpare, self.parent)

    def test_takenOnce(self) -> None:
        """
        A prepared spare is an empty leaf of the parent, with its
        directory and C{cpu.stat} open; the next L{createLeaf} takes it
        (nothing is made then), and the one after makes a new leaf.
        """
        prepareSpare(self.parent)
        spare = self.parent.spare
        assert spare is not None
        path, dirFd, cpuStatFd, eventsFd = spare
        self.assertEqual(allLeaves(self.scratch), [os.path.basename(path)])
        self.assertEqual(readProcs(path), [])
        self.assertEqual(os.fstat(dirFd).st_ino, os.stat(path).st_ino)
        self.assertIn(b"usage_usec", os.pread(cpuStatFd, 4096, 0))
        self.assertIn(b"populated 0", os.pread(eventsFd, 4096, 0))

        first = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(first.discard)
        self.assertEqual(
            (first.path, first.dirFd, first.cpuStatFd, first.eventsFd),
            (path, dirFd, cpuStatFd, eventsFd),
        )
        self.assertIsNone(self.parent.spare)
        second = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(second.discard)
        self.assertNotEqual(second.path, first.path)
        self.assertEqual(
            sorted(allLeaves(self.scratch)),
            sorted(os.path.basename(p) for p in (first.path, second.path)),
        )

    def test_oneAtATime(self) -> None:
        """
        Preparing again while a spare is ready makes nothing more.
        """
        prepareSpare(self.parent)
        spare = self.parent.spare
        prepareSpare(self.parent)
        self.assertIs(self.parent.spare, spare)
        self.assertEqual(len(allLeaves(self.scratch)), 1)

    def test_discard(self) -> None:
        """
        L{discardSpare} removes the spare and closes its fds; again, it
        does nothing.
        """
        before = _openFds()
        prepareSpare(self.parent)
        discardSpare(self.parent)
        discardSpare(self.parent)
        self.assertIsNone(self.parent.spare)
        self.assertEqual(allLeaves(self.scratch), [])
        self.assertEqual(_openFds(), before)

    def test_statsOfTakenSpare(self) -> None:
        """
        The statistics of a leaf that was a spare are read through its
        kept C{cpu.stat} fd, and are those of now, not of when it was
        opened.
        """
        prepareSpare(self.parent)
        leaf = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(leaf.discard)
        leaf.placed("procs", None)
        self.assertEqual(leaf.readStats().cpuUsageUsec, 0)
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(os.path.join(leaf.path, "cgroup.procs"), os.O_WRONLY)
                os.write(fd, b"0")
                sum(range(2 * 10**6))
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        self.assertGreater(leaf.readStats().cpuUsageUsec, 0)


class RemoverSpareTests(SynchronousTestCase):
    """
    L{LeafRemover.spareLater} and the spares' end.
    """

    def setUp(self) -> None:
        self.scratch = makeScratchCgroup(self)
        self.parent = findParent(self.scratch)
        self.addCleanup(discardSpare, self.parent)
        self.clock = Clock()
        self.reactor = _TriggerlessReactor()
        self.remover = LeafRemover(self.reactor, self.clock)

    def test_madeNextTurn(self) -> None:
        """
        The spare is made in the next turn of the reactor, not during the
        call (which runs on a spawn's path).
        """
        self.remover.spareLater(self.parent)
        self.assertIsNone(self.parent.spare)
        self.clock.advance(0)
        self.assertIsNotNone(self.parent.spare)
        self.assertEqual(len(allLeaves(self.scratch)), 1)

    def test_idleExpiry(self) -> None:
        """
        A spare no spawn took is removed L{SPARE_IDLE} seconds after the
        last spawn; each spawn puts that off.
        """
        self.remover.spareLater(self.parent)
        self.clock.advance(0)
        self.clock.advance(SPARE_IDLE * 0.75)
        self.remover.spareLater(self.parent)
        self.clock.advance(SPARE_IDLE * 0.75)
        self.assertIsNotNone(self.parent.spare)
        self.clock.advance(SPARE_IDLE * 0.25)
        self.assertIsNone(self.parent.spare)
        self.assertEqual(allLeaves(self.scratch), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_afterStop(self) -> None:
        """
        A leaf handed over once the reactor is shutting down (a service
        stopping its children in the same phase) is killed and removed at
        once, its owner told; no spare is made any more.
        """
        self.remover.stop()
        leaf = createLeaf(Cgroup(parent=self.scratch))
        leaf.placed("procs", None)
        child = childInCgroup(self, leaf.path, ["/bin/sleep", "1000"])
        told: list[CgroupStats] = []
        self.remover.removeWhenEmpty(leaf, told.append)
        self.assertEqual(child.wait(), -9)
        self.assertEqual([stats.path for stats in told], [leaf.path])
        self.assertEqual(allLeaves(self.scratch), [])
        self.remover.spareLater(self.parent)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lastKnownWhenFinalUnreadable(self) -> None:
        """
        When the final statistics cannot be read (someone else removed the
        leaf), the owner is told the last ones known: the end of the tree
        is told whatever happens.
        """
        leaf = createLeaf(Cgroup(parent=self.scratch))
        leaf.placed("procs", None)
        known = leaf.readStats()
        leaf.closeFd()
        os.rmdir(leaf.path)
        told: list[CgroupStats] = []
        self.remover.removeWhenEmpty(leaf, told.append, known)
        self.assertEqual(told, [known])

    def test_stopRemovesSpare(self) -> None:
        """
        The remover's shutdown removes the spare, and one that was due but
        not made yet is never made.
        """
        self.remover.spareLater(self.parent)
        self.clock.advance(0)
        self.remover.stop()
        self.assertIsNone(self.parent.spare)
        self.assertEqual(allLeaves(self.scratch), [])
        self.remover.spareLater(self.parent)
        self.remover.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(allLeaves(self.scratch), [])


class _TriggerlessReactor:
    """
    What L{LeafRemover} needs of a reactor, when a L{Clock} schedules its
    calls: somewhere to add its shutdown trigger.
    """

    def addSystemEventTrigger(self, *args: object) -> object:
        return None
