# -*- test-case-name: tests.test_cgroup_removal -*-
"""
Tests for L{txspawn._cgroup.removal} and L{txspawn._cgroup.events}: a
leaf is removed once its whole tree has exited, told by inotify on
C{cgroup.events} through the reactor (one inotify fd, only while waiting),
with its final statistics handed over first; a busy leaf is retried from
the reactor; the remover's shutdown kills and removes what it holds.
"""

from __future__ import annotations

import os
import signal
import tempfile

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.cgrouputil import allLeaves, childInCgroup, makeScratchCgroup, waitEmpty
from txspawn._cgroup.events import EventsWatcher
from txspawn._cgroup.leaf import CgroupLeaf, createLeaf
from txspawn._cgroup.removal import FIRST_RETRY, LAST_RETRY, LeafRemover
from txspawn._cgroupoptions import CgroupStats
from txspawn.options import Cgroup

__all__ = ["RemoverTests", "RetryTests", "ShutdownTests", "WatcherTests"]


class RemoverTests(TestCase):
    """
    L{LeafRemover.removeWhenEmpty} with the real reactor.
    """

    def setUp(self) -> None:
        self.scratch = makeScratchCgroup(self)
        self.remover = LeafRemover(reactor)
        self.addCleanup(self.remover.stop)

    def newLeaf(self) -> CgroupLeaf:
        leaf = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(leaf.discard)
        leaf.placed("procs", None)
        return leaf

    def test_emptyAlready(self) -> None:
        """
        An empty leaf: its statistics are handed over and it is removed
        before the call returns, without an inotify fd.
        """
        leaf = self.newLeaf()
        told: list[CgroupStats] = []
        self.remover.removeWhenEmpty(leaf, told.append)
        self.assertEqual([s.path for s in told], [leaf.path])
        self.assertFalse(os.path.exists(leaf.path))
        self.assertEqual((self.remover.held(), leaf.dirFd), ([], -1))
        self.assertIsNone(self.remover.watcher.fileno)

    def test_waitsForTree(self) -> Deferred[None]:
        """
        While a process is in the leaf, nothing is told and the leaf is
        kept; when it exits, the reactor hears of it and the final
        statistics (its CPU time included) come before the removal.
        """
        leaf = self.newLeaf()
        child = childInCgroup(
            self,
            leaf.path,
            [
                "/bin/sh",
                "-c",
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000",
            ],
        )
        emptied: Deferred[CgroupStats] = Deferred()
        seen: list[bool] = []

        def onEmpty(stats: CgroupStats) -> None:
            seen.append(os.path.isdir(leaf.path))
            emptied.callback(stats)

        self.remover.removeWhenEmpty(leaf, onEmpty)
        self.assertEqual(self.remover.held(), [leaf.path])
        self.assertEqual(
            self.remover.watcher.watching(), [os.path.join(leaf.path, "cgroup.events")]
        )
        self.assertIsNotNone(self.remover.watcher.fileno)
        self.assertFalse(emptied.called)
        os.kill(child.pid, signal.SIGKILL)

        def check(stats: CgroupStats) -> Deferred[None]:
            self.assertEqual(seen, [True], "told before the removal")
            self.assertEqual(stats.path, leaf.path)
            self.assertGreater(stats.cpuUsageUsec, 0)
            return deferLater(reactor, 0, after)

        def after() -> None:
            self.assertFalse(os.path.exists(leaf.path))
            self.assertEqual(self.remover.held(), [])
            self.assertIsNone(self.remover.watcher.fileno, "the inotify fd closed")
            self.assertEqual(child.wait(), -9)

        return emptied.addCallback(check)

    def test_oneINotify(self) -> Deferred[None]:
        """
        Leaves waited for at once share one inotify fd.
        """
        leaves = [self.newLeaf(), self.newLeaf()]
        children = [childInCgroup(self, leaf.path) for leaf in leaves]
        done = [Deferred[CgroupStats](), Deferred[CgroupStats]()]
        for leaf, d in zip(leaves, done, strict=True):
            self.remover.removeWhenEmpty(leaf, d.callback)
        fd = self.remover.watcher.fileno
        self.assertIsNotNone(fd)
        self.assertEqual(len(self.remover.watcher.watching()), 2)
        os.kill(children[0].pid, signal.SIGKILL)

        def first(stats: CgroupStats) -> None:
            self.assertEqual(stats.path, leaves[0].path)
            self.assertEqual(self.remover.watcher.fileno, fd)
            os.kill(children[1].pid, signal.SIGKILL)

        def second(stats: CgroupStats) -> Deferred[None]:
            return deferLater(reactor, 0, lambda: None)

        def closed(_: None) -> None:
            self.assertIsNone(self.remover.watcher.fileno)
            self.assertEqual(allLeaves(self.scratch), [])

        done[0].addCallback(first)
        return done[1].addCallback(second).addCallback(closed)

    def test_watchesLost(self) -> Deferred[None]:
        """
        A watched file deleted under the shared inotify closes it (that is
        how Twisted's L{INotify} is made); the leaves still waited for are
        watched again and still told.
        """
        leaf = self.newLeaf()
        child = childInCgroup(self, leaf.path)
        emptied: Deferred[CgroupStats] = Deferred()
        self.remover.removeWhenEmpty(leaf, emptied.callback)
        fd, other = tempfile.mkstemp()
        os.close(fd)
        self.remover.watcher.watch(other, lambda: None)
        os.unlink(other)
        lost = self.remover.watcher.fileno

        def deleted() -> None:
            self.assertNotIn(other, self.remover.watcher.watching())
            self.assertEqual(
                self.remover.watcher.watching(),
                [os.path.join(leaf.path, "cgroup.events")],
            )
            self.assertIsNotNone(self.remover.watcher.fileno)
            self.assertFalse(emptied.called)
            os.kill(child.pid, signal.SIGKILL)

        def removed(stats: CgroupStats) -> None:
            self.assertEqual(stats.path, leaf.path)

        self.assertIsNotNone(lost)
        waitDeleted = _whenWatcherReplaced(self.remover.watcher, other)
        waitDeleted.addCallback(lambda _: deleted())
        return waitDeleted.addCallback(lambda _: emptied).addCallback(removed)


def _whenWatcherReplaced(watcher: EventsWatcher, path: str) -> Deferred[None]:
    """
    Fires once C{path} is no longer watched (Twisted's L{INotify} saw it
    deleted), from the reactor.
    """
    d: Deferred[None] = Deferred()

    def poll() -> None:
        if path in watcher.watching():
            reactor.callLater(0.001, poll)
        else:
            d.callback(None)

    poll()
    return d


class RetryTests(SynchronousTestCase):
    """
    A busy leaf is retried from the reactor, 1 ms later, the wait doubling
    to at most 100 ms.
    """

    def test_retries(self) -> None:
        scratch = makeScratchCgroup(self)
        clock = Clock()
        remover = LeafRemover(reactor, clock)
        self.addCleanup(remover.stop)
        leaf = createLeaf(Cgroup(parent=scratch))
        self.addCleanup(leaf.discard)
        late: list[int] = []

        def onEmpty(stats: CgroupStats) -> None:
            # A process enters the leaf between the statistics and the
            # removal (so rmdir says EBUSY).
            late.append(childInCgroup(self, leaf.path).pid)

        remover.removeWhenEmpty(leaf, onEmpty)
        self.assertEqual(len(late), 1)
        delays = []
        for _ in range(10):
            (call,) = clock.getDelayedCalls()
            delays.append(round(call.getTime() - clock.seconds(), 6))
            clock.advance(call.getTime() - clock.seconds())
        self.assertEqual(delays[0], FIRST_RETRY)
        self.assertEqual(
            delays,
            [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.1, 0.1, 0.1],
        )
        self.assertEqual(delays[-1], LAST_RETRY)
        self.assertEqual(remover.held(), [leaf.path])
        os.kill(late[0], signal.SIGKILL)
        waitEmpty(leaf.path)
        clock.advance(LAST_RETRY)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(remover.held(), [])
        self.assertFalse(os.path.exists(leaf.path))


class ShutdownTests(SynchronousTestCase):
    """
    What the remover holds when the reactor shuts down is killed and
    removed then.
    """

    def test_shutdown(self) -> None:
        scratch = makeScratchCgroup(self)
        fresh = SelectReactor()
        self.addCleanup(fresh.waker.connectionLost, None)
        remover = LeafRemover(fresh)
        leaf = createLeaf(Cgroup(parent=scratch))
        self.addCleanup(leaf.discard)
        child = childInCgroup(
            self,
            leaf.path,
            ["/bin/sh", "-c", "setsid sh -c 'echo $$; exec sleep 1000' & wait"],
        )
        assert child.stdout is not None
        child.stdout.readline()
        told: list[CgroupStats] = []
        remover.removeWhenEmpty(leaf, told.append)
        self.assertIsNotNone(remover.watcher.fileno)
        fresh.fireSystemEvent("shutdown")
        self.assertEqual([s.path for s in told], [leaf.path])
        self.assertEqual(remover.held(), [])
        self.assertIsNone(remover.watcher.fileno)
        self.assertEqual(allLeaves(scratch), [])
        self.assertEqual(child.wait(), -9)


class WatcherTests(TestCase):
    """
    L{EventsWatcher} on its own.
    """

    def test_modifyAndClose(self) -> Deferred[None]:
        """
        A change of a watched file calls back from the reactor; dropping
        the last watch closes the inotify fd.
        """
        watcher = EventsWatcher(reactor, lambda: None)
        self.addCleanup(watcher.close)
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.unlink, path)
        changed: Deferred[None] = Deferred()

        def onChange() -> None:
            if not changed.called:
                changed.callback(None)

        watcher.watch(path, onChange)
        os.write(fd, b"x")
        os.close(fd)

        def check(_: None) -> None:
            self.assertIsNotNone(watcher.fileno)
            watcher.unwatch(path)
            self.assertIsNone(watcher.fileno)
            self.assertEqual(watcher.watching(), [])

        return changed.addCallback(check)

    def test_missing(self) -> None:
        """
        A file that does not exist cannot be watched: L{OSError}, and no
        inotify fd is left open.
        """
        watcher = EventsWatcher(reactor, lambda: None)
        self.assertRaises(OSError, watcher.watch, "/nonexistent/cgroup.events", print)
        self.assertIsNone(watcher.fileno)
