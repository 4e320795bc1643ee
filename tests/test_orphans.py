"""
Tests for L{txspawn._orphans}: children that outlive their reactor are
reaped in the background, never left as zombies.
"""

from __future__ import annotations

import os
import time

from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses
from tests.hygiene import childrenOf
from txspawn._child import ChildProcess
from txspawn._orphans import adoptOrphans, orphanCount


def waitForOrphans(timeout: float = 30.0) -> None:
    """
    Block until every adopted child has been reaped.
    """
    deadline = time.monotonic() + timeout
    while orphanCount():
        if time.monotonic() > deadline:
            raise AssertionError(f"{orphanCount()} orphans never reaped")
        time.sleep(0.005)


def spawnBlocked(pidfd: bool = True) -> tuple[ChildProcess, int]:
    """
    Start C{sh} waiting for EOF on its stdin, then exiting 3.

    @return: The child and the write end of its stdin pipe.
    """
    readFD, writeFD = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(
            "/bin/sh",
            [b"sh", b"-c", b"read x; exit 3"],
            {},
            file_actions=[(os.POSIX_SPAWN_DUP2, readFD, 0)],
        )
    finally:
        os.close(readFD)
    return ChildProcess(pid, os.pidfd_open(pid) if pidfd else None), writeFD


class AdoptOrphansTests(SynchronousTestCase):
    """
    L{adoptOrphans} with children started directly.
    """

    def setUp(self) -> None:
        self.fdsBefore = set(os.listdir("/proc/self/fd"))

    def tearDown(self) -> None:
        waitForOrphans()
        self.assertEqual(set(os.listdir("/proc/self/fd")), self.fdsBefore)

    def test_reapedWhenItExits(self) -> None:
        """
        An adopted child is reaped, with its status, once it exits; its
        pidfd is closed and it is no zombie.
        """
        child, release = spawnBlocked()
        adoptOrphans([child])
        self.assertEqual(orphanCount(), 1)
        self.assertIn(child.pid, childrenOf(os.getpid()))
        os.close(release)
        waitForOrphans()
        self.assertTrue(child.reaped)
        self.assertEqual(child.status, 3 << 8)
        self.assertIsNone(child.pidfd)
        self.assertNotIn(child.pid, childrenOf(os.getpid()))

    def test_withoutPidfd(self) -> None:
        """
        A child that had no pidfd gets one (it is still unreaped, so
        C{pidfd_open} is race-free) and is reaped the same way.
        """
        child, release = spawnBlocked(pidfd=False)
        adoptOrphans([child])
        os.close(release)
        waitForOrphans()
        self.assertEqual(child.status, 3 << 8)
        self.assertIsNone(child.pidfd)

    def test_alreadyExited(self) -> None:
        """
        A child that exited before adoption is reaped on the spot; a child
        already reaped is ignored.
        """
        child, release = spawnBlocked()
        os.close(release)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        adoptOrphans([child])
        self.assertTrue(child.reaped)
        self.assertEqual(orphanCount(), 0)
        self.assertIsNone(child.pidfd)
        adoptOrphans([child])
        self.assertEqual(orphanCount(), 0)

    def test_manyInAnyOrder(self) -> None:
        """
        Children adopted in several batches, exiting in another order, are
        each reaped once; the reaper thread retires when none is left and a
        later adoption starts a new one.
        """
        batch1 = [spawnBlocked() for _ in range(5)]
        adoptOrphans(child for child, _ in batch1)
        batch2 = [spawnBlocked() for _ in range(5)]
        adoptOrphans(child for child, _ in batch2)
        self.assertEqual(orphanCount(), 10)
        for _, release in reversed(batch1 + batch2):
            os.close(release)
        waitForOrphans()
        self.assertEqual([child.status for child, _ in batch1 + batch2], [3 << 8] * 10)
        child, release = spawnBlocked()
        adoptOrphans([child])
        os.close(release)
        waitForOrphans()
        self.assertTrue(child.reaped)


class _Silent(ProcessProtocol):
    pass


class ReactorShutdownMixin(MixinBase):
    """
    A child still running when its reactor stops is reaped once it exits,
    on every engine and monitor.
    """

    def test_childOutlivesReactor(self) -> None:
        """
        Stopping the reactor right after spawning (as Twisted's own
        C{test_pauseAndResumeProducing} does) leaves no zombie once the
        child exits.
        """
        reactor = self.buildReactor()
        readFD, writeFD = os.pipe2(os.O_CLOEXEC)
        self.addCleanup(os.close, readFD)
        transports = []

        def spawn() -> None:
            transports.append(
                reactor.spawnProcess(
                    _Silent(),
                    "/bin/sh",
                    ["sh", "-c", "read x; exit 0"],
                    childFDs={0: readFD},
                )
            )
            reactor.stop()

        reactor.callWhenRunning(spawn)
        self.runReactor(reactor)
        (transport,) = transports
        pid = transport.pid
        self.assertIsNotNone(pid)
        self.assertIn(pid, childrenOf(os.getpid()))
        os.close(writeFD)
        waitForOrphans()
        self.assertNotIn(pid, childrenOf(os.getpid()))


globals().update(makeTestCaseClasses(ReactorShutdownMixin))
