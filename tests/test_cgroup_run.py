"""
L{txspawn.run} and L{txspawn.stream} with C{cgroup=}, on every engine x
monitor combination: the result carries the cgroup's statistics (or why a
best-effort cgroup was not had), and a timeout, a cancellation and
C{kill()} end the whole tree of TERM-ignoring, setsid'd, double-forked
daemons (the tree of L{tests.test_cgroup_tree}), not just the child and
its process group.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

from twisted.internet.defer import CancelledError

from tests.builders import PYTHON, MixinBase, makeTestCaseClasses, python
from tests.cgrouptransportutil import (
    aliveByKill,
    cgroupSkipReason,
    deadByPidfd,
    makeTestParent,
    openPidfds,
    treeCommand,
)
from tests.test_cgroup_tree import DAEMONS, NEVER, TREE
from tests.test_run import runInReactor, succeeded
from tests.treeutil import Descendant, killDescendants
from txspawn import ProcessResult, ProcessTimedOut, run, stream
from txspawn.errors import UnsupportedFeature
from txspawn.options import Cgroup

BUSY = "sum(range(3 * 10**6))"


def waitDead(pidfds: list[int | None], patience: float = 30.0) -> list[bool]:
    """
    Wait (blocking, on the pidfds) until every process has exited or
    C{patience} seconds passed: a C{cgroup.kill} has been written, and the
    kernel is tearing the processes down.  Nothing is timed: a process
    that was not killed is still alive after C{patience}, and the test
    fails.

    @return: L{deadByPidfd} then.
    """
    deadline = time.monotonic() + patience
    while True:
        dead = deadByPidfd(pidfds)
        left = deadline - time.monotonic()
        if all(dead) or left <= 0:
            return dead
        waiting = [
            fd
            for fd, gone in zip(pidfds, dead, strict=True)
            if fd is not None and not gone
        ]
        select.select(waiting, [], [], left)


def treeArgv(leader: str) -> list[bytes]:
    """
    The command line of the daemon tree.
    """
    return treeCommand(PYTHON, TREE, DAEMONS, leader)


class CgroupRunMixin(MixinBase):
    """
    C{run()} and C{stream()} of children with cgroups of their own.

    The daemons are checked dead while the reactor still runs: at its
    shutdown the reactor's leaf remover kills whatever is left in the
    leaves it holds (those of children with C{killOnExit=False}), which
    would hide a run that did not kill the tree.
    """

    def _pids(self, output: bytes) -> tuple[list[int], list[int | None]]:
        """
        The daemons' pids in C{output}, with pidfds on them; they are killed
        after the test if it left any.
        """
        pids = [int(line) for line in output.split()]
        descendants = [Descendant(pid) for pid in pids]
        self.addCleanup(killDescendants, descendants)
        return pids, openPidfds(self, pids)

    def test_resultStats(self) -> None:
        """
        The result of C{run()} carries the statistics of the child's
        cgroup, a leaf of the given parent.
        """
        parent = makeTestParent(self)
        reactor = self.buildReactor()

        async def main() -> ProcessResult:
            return await run(
                [PYTHON, b"-c", BUSY.encode()],
                reactor=reactor,
                cgroup=Cgroup(parent=parent),
            )

        result = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(os.path.dirname(result.cgroup.path), parent)
        self.assertGreater(result.cgroup.cpuUsageUsec, 0)
        self.assertIsNone(result.cgroupUnavailable)

    def test_resultUnavailable(self) -> None:
        """
        A best-effort cgroup that cannot be had: the result says why, and
        carries no statistics; a required one fails the call with
        L{UnsupportedFeature}.
        """
        notACgroup = os.path.abspath(self.mktemp())
        os.mkdir(notACgroup)
        reactor = self.buildReactor()

        async def main() -> tuple[ProcessResult, Any]:
            result = await run(
                python("pass"),
                reactor=reactor,
                cgroup=Cgroup(parent=notACgroup, required=False),
            )
            try:
                await run(
                    python("pass"), reactor=reactor, cgroup=Cgroup(parent=notACgroup)
                )
            except UnsupportedFeature as e:
                return result, e
            return result, None

        result, error = succeeded(runInReactor(self, reactor, main))
        self.assertIsNone(result.cgroup)
        self.assertIn(notACgroup, result.cgroupUnavailable)
        self.assertIsInstance(error, UnsupportedFeature)
        self.assertEqual(error.feature, "cgroup")

    def test_runTimeoutKillsTree(self) -> None:
        """
        The timeout of C{run()} is the transport's C{terminate()}: the
        child (which takes the C{SIGTERM} once its tree is complete) exits,
        and its daemons, which ignore C{SIGTERM} and left its session, are
        killed at once through its cgroup (the grace period is never
        reached).
        """
        parent = makeTestParent(self)
        reactor = self.buildReactor()

        async def main() -> tuple[Any, list[bool], list[int]]:
            try:
                await run(
                    treeArgv("sigwait"),
                    reactor=reactor,
                    timeout=0.5,
                    killAfter=NEVER,
                    cgroup=Cgroup(parent=parent, killOnExit=False),
                )
            except ProcessTimedOut as e:
                pids, pidfds = self._pids(e.result.stdout)
                return e.result, waitDead(pidfds), aliveByKill(pids)
            raise AssertionError("run() did not time out")

        result, dead, alive = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(dead, [True] * DAEMONS)
        self.assertEqual(alive, [])
        self.assertEqual(result.exitCode, 0)
        self.assertIsNotNone(result.cgroup)

    def test_runTimeoutAfterExitKillsTree(self) -> None:
        """
        A C{run()} whose child exited leaving daemons that hold its pipes
        (C{killOnExit=False}): when the timeout expires, the daemons are
        killed through the cgroup, and the run ends.  (On a slow machine
        the timeout may expire while the child still builds its tree: it
        ignores the C{SIGTERM}, completes the tree and exits, and its exit
        during the grace period kills the daemons through the cgroup at
        once: the same end.)
        """
        parent = makeTestParent(self)
        reactor = self.buildReactor()

        async def main() -> tuple[list[bool], list[int]]:
            try:
                await run(
                    treeArgv("exit"),
                    reactor=reactor,
                    timeout=1.0,
                    killAfter=NEVER,
                    cgroup=Cgroup(parent=parent, killOnExit=False),
                )
            except ProcessTimedOut as e:
                pids, pidfds = self._pids(e.result.stdout)
                return waitDead(pidfds), aliveByKill(pids)
            raise AssertionError("run() did not time out")

        dead, alive = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(dead, [True] * DAEMONS)
        self.assertEqual(alive, [])

    def _streamTree(self, leader: str, end: str) -> tuple[Any, list[bool], list[int]]:
        """
        Stream the lines of the tree with C{leader} until every daemon
        reported, check they all run, then end the stream with C{end}
        (C{"cancel"} or C{"kill"}).

        @return: The outcome of C{outputStream.result}, whether each
            daemon is dead then (waiting for the kernel to finish killing
            them: L{waitDead}), and the pids L{aliveByKill} finds then.
        """
        parent = makeTestParent(self)
        reactor = self.buildReactor()
        seen: dict[str, Any] = {}

        async def main() -> Any:
            outputStream = stream(
                treeArgv(leader),
                reactor=reactor,
                lines=True,
                cgroup=Cgroup(parent=parent, killOnExit=False),
            )
            output = b""
            async for chunk in outputStream:
                output += chunk.data
                if output.count(b"\n") == DAEMONS:
                    break
            seen["pids"], seen["pidfds"] = self._pids(output)
            seen["aliveBefore"] = deadByPidfd(seen["pidfds"]).count(False)
            if end == "cancel":
                outputStream.cancel()
            else:
                outputStream.kill()
            try:
                outcome: Any = await outputStream.result
            except CancelledError as e:
                outcome = e
            return outcome, waitDead(seen["pidfds"]), aliveByKill(seen["pids"])

        outcome, dead, alive = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(seen["aliveBefore"], DAEMONS)
        return outcome, dead, alive

    def test_streamCancelKillsTree(self) -> None:
        """
        Cancelling a C{stream()} kills the child's whole tree, also when
        the child itself has exited already (this one does when its stdin
        is closed, which C{stream()} does at once) and only its daemons
        are left.
        """
        outcome, dead, alive = self._streamTree("wait", "cancel")
        self.assertIsInstance(outcome, CancelledError)
        self.assertEqual(dead, [True] * DAEMONS)
        self.assertEqual(alive, [])

    def test_streamKillKillsTree(self) -> None:
        """
        C{OutputStream.kill()} kills the child's whole tree; the result
        says the child (still running: it waits for a C{SIGTERM}) was
        killed by C{SIGKILL}.
        """
        outcome, dead, alive = self._streamTree("sigwait", "kill")
        self.assertEqual(outcome.signal, 9, outcome)
        self.assertEqual(dead, [True] * DAEMONS)
        self.assertEqual(alive, [])


_SKIP = cgroupSkipReason()
for _name, _case in makeTestCaseClasses(CgroupRunMixin).items():
    if _SKIP is not None:
        _case.skip = _SKIP
    globals()[_name] = _case
del _name, _case
