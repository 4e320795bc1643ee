"""
Killing a whole process tree through its cgroup: a tree of 300 daemons
that each left the child's session (C{setsid}), ignore C{SIGTERM} and were
orphaned by a double fork -- which no process-group kill reaches -- is left
with no live process after C{terminate()}, the C{timeout} option,
C{killTree()}, and the child's own exit (C{killOnExit}), also when the
child has already exited; on every engine x monitor combination, with a
pipe transport and with a pty.

Each test counts the daemons two ways: by the leaf's C{cgroup.procs} while
they run (all of them are in the child's cgroup), and by the pids they
report themselves, through pidfds opened while they run (readable once the
process has exited) and C{os.kill(pid, 0)}.  C{processTreeEnded} comes
after C{processEnded}, and no leaf is left in the test's parent cgroup.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults

from tests.builders import PYTHON, MixinBase, makeTestCaseClasses
from tests.cgrouptransportutil import (
    TreeProtocol,
    aliveByKill,
    cgroupSkipReason,
    deadByPidfd,
    makeTestParent,
    openPidfds,
    readProcs,
    treeCommand,
)
from tests.treeutil import Descendant, killDescendants
from txspawn.options import Cgroup

TREE = os.fsencode(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers", "cgrouptree.py")
)

#: How many daemons the tree has.
DAEMONS = 300

#: A grace period no test waits for: a tree that is dead before the
#: reactor's time limit was killed by something else than the SIGKILL step.
NEVER = 3600.0


class TreeRun:
    """
    What a tree test saw.

    @ivar pids: The daemons' pids, as they reported them.
    @ivar pidfds: A pidfd per daemon, opened while it ran.
    @ivar procs: The leaf's C{cgroup.procs} then.
    @ivar leafPath: The leaf's path.
    @ivar transport: The transport.
    @ivar proto: The L{TreeProtocol}.
    """

    pids: list[int]
    pidfds: list[int | None]
    procs: list[int]
    leafPath: str
    transport: Any
    proto: TreeProtocol


class CgroupTreeMixin(MixinBase):
    """
    A tree of TERM-ignoring, setsid'd, double-forked daemons, ended through
    the child's cgroup.
    """

    def _runTree(
        self,
        leader: str,
        whenReady: Callable[[TreeRun], object] | None = None,
        *,
        afterExit: bool = False,
        killOnExit: bool = False,
        checkProcs: bool = True,
        **options: Any,
    ) -> TreeRun:
        """
        Spawn the tree (C{cgrouptree.py DAEMONS leader}) in a cgroup of its
        own; once every daemon reported (and, with C{afterExit}, the
        leader was reaped), record them and call C{whenReady}.  Run the
        reactor until C{processTreeEnded}, then check that nothing of the
        tree is alive and that the end came in order.
        """
        parent = makeTestParent(self)
        reactor = self.buildReactor()
        seen = TreeRun()
        seen.pids, seen.pidfds, seen.procs = [], [], []
        descendants: list[Descendant] = []
        # If the test fails, its daemons do not outlive it.
        self.addCleanup(killDescendants, descendants)
        ready: Deferred[None] = Deferred()
        exited: Deferred[None] = Deferred()

        def onLines(transport: Any, lines: list[bytes]) -> None:
            seen.pids = [int(line) for line in lines]
            seen.pidfds = openPidfds(self, seen.pids)
            descendants.extend(Descendant(pid) for pid in seen.pids)
            path = transport.cgroupPath
            seen.procs = [] if path is None else readProcs(path)
            ready.callback(None)

        proto = seen.proto = TreeProtocol(DAEMONS, onLines)
        originalExited = proto.processExited

        def processExited(reason: Any) -> None:
            originalExited(reason)
            exited.callback(None)

        proto.processExited = processExited  # type: ignore[method-assign]
        waitFor = gatherResults([ready, exited]) if afterExit else ready
        if whenReady is not None:
            waitFor.addCallback(lambda ignored: whenReady(seen))
        failures: list[Any] = []
        waitFor.addErrback(failures.append)

        argv = treeCommand(PYTHON, TREE, DAEMONS, leader)

        def spawn() -> None:
            try:
                seen.transport = reactor.spawnProcess(
                    proto,
                    argv[0],
                    argv,
                    cgroup=Cgroup(parent=parent, killOnExit=killOnExit),
                    **options,
                )
            except BaseException:
                reactor.stop()
                raise
            seen.leafPath = seen.transport.cgroupPath

        # The processEnded reason is checked below, not here.
        proto.ended.addErrback(lambda reason: None)
        proto.treeEnded.addBoth(lambda ignored: reactor.callLater(0, reactor.stop))
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor, 60)
        if failures:
            failures[0].raiseException()
        if proto.callbackError is not None:
            proto.callbackError.raiseException()
        self.assertEqual(len(seen.pids), DAEMONS)
        if checkProcs:
            # Every daemon was in the child's cgroup (the leader too, if it
            # had not exited yet).
            self.assertEqual(
                set(seen.procs) - {seen.transport.spawnedPid}, set(seen.pids)
            )
        # Nothing of the tree is alive.
        self.assertEqual(deadByPidfd(seen.pidfds), [True] * DAEMONS)
        self.assertEqual(aliveByKill(seen.pids), [])
        self.assertEqual(proto.procsAtEnd, [])
        # processTreeEnded came last, once, after processEnded.
        names = proto.names()
        self.assertEqual(names[-2:], ["ended", "treeEnded"])
        self.assertEqual(names.count("treeEnded"), 1)
        assert proto.treeStats is not None
        self.assertEqual(proto.treeStats.path, seen.leafPath)
        self.assertEqual(seen.transport.cgroupStats, proto.treeStats)
        self.assertIsNone(seen.transport.cgroupPath)
        # The leaf is gone (the parent's check after the test says the
        # same of every leaf).
        self.assertFalse(os.path.exists(seen.leafPath))
        return seen

    def test_killOnExit(self) -> None:
        """
        By default (C{killOnExit=True}) what the child leaves in its cgroup
        is killed when it is reaped: the daemons of a child that exited
        with code 0 are gone, and the exit reasons carry the statistics.
        """
        # The daemons may be killed before their pids are read: they are
        # not counted in the cgroup then.
        seen = self._runTree("exit", afterExit=True, killOnExit=True, checkProcs=False)
        reason = seen.proto.endedReason.value
        self.assertEqual(reason.exitCode, 0)
        self.assertEqual(reason.cgroup.path, seen.leafPath)
        self.assertIs(seen.proto.exitedReason.value.cgroup, reason.cgroup)

    def test_terminateLeaderExitsFirst(self) -> None:
        """
        C{terminate()}: the child dies of the C{SIGTERM}; the daemons,
        which ignore it, are killed through the cgroup as soon as the
        child's exit is seen, not after the grace period (which no test
        waits for).
        """
        seen = self._runTree("wait", lambda seen: seen.transport.terminate(NEVER))
        self.assertEqual(seen.proto.endedReason.value.signal, 15)

    def test_terminateEscalates(self) -> None:
        """
        C{terminate()}: a child that ignores C{SIGTERM} too; the C{SIGKILL}
        step is C{cgroup.kill}, which ends the child and every daemon.
        """
        seen = self._runTree("ignore", lambda seen: seen.transport.terminate(0.1))
        self.assertEqual(seen.proto.endedReason.value.signal, 9)

    def test_timeoutOption(self) -> None:
        """
        The C{timeout} option: the child (which takes the C{SIGTERM} only
        once its tree is complete) exits, and its daemons are killed through
        the cgroup at once, within the grace period.
        """
        seen = self._runTree("sigwait", timeout=0.5, killAfter=NEVER)
        self.assertTrue(seen.transport.timedOut)
        self.assertEqual(seen.proto.endedReason.value.exitCode, 0)

    def test_killTree(self) -> None:
        """
        C{killTree()} while the child runs kills it and every daemon.
        """
        seen = self._runTree("wait", lambda seen: seen.transport.killTree())
        self.assertEqual(seen.proto.endedReason.value.signal, 9)

    def test_killTreeAfterExit(self) -> None:
        """
        With C{killOnExit=False} the daemons outlive the child (they hold
        its pipes, so C{processEnded} waits for them); C{killTree()} after
        the child was reaped kills them all.
        """

        def whenReady(seen: TreeRun) -> None:
            try:
                self.assertIsNone(seen.transport.pid)
                self.assertEqual(deadByPidfd(seen.pidfds), [False] * DAEMONS)
                self.assertEqual(set(readProcs(seen.leafPath)), set(seen.pids))
                self.assertNotIn("ended", seen.proto.names())
            finally:
                seen.transport.killTree()

        seen = self._runTree("exit", whenReady, afterExit=True)
        self.assertEqual(seen.proto.endedReason.value.exitCode, 0)

    def test_ptyTerminate(self) -> None:
        """
        A child on a pty: C{terminate()} ends it and its daemons (which
        left its session, so the terminal's hang-up does not reach them).
        """
        seen = self._runTree(
            "wait", lambda seen: seen.transport.terminate(NEVER), usePTY=True
        )
        self.assertEqual(seen.proto.endedReason.value.signal, 15)


_SKIP = cgroupSkipReason()
for _name, _case in makeTestCaseClasses(CgroupTreeMixin).items():
    if _SKIP is not None:
        _case.skip = _SKIP
    globals()[_name] = _case
del _name, _case
