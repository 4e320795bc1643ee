"""
The Python engine's fork path blocks every signal around its C{fork}
(L{txspawn._engine.forkpath}): an exception at any point of a spawn (a
signal handler's C{KeyboardInterrupt}, raised here deterministically at
each point in turn: see L{tests.test_rollback_interrupts}) still leaves
this thread's signal mask as it was.  A mask left blocked is silent until
the next child's C{SIGCHLD} never comes (the C{sigchld} monitor then waits
for ever).
"""

from __future__ import annotations

import os
import shutil
import signal
from types import FrameType

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.engineutil import makePlan
from tests.hygiene import HygieneMixin
from tests.nsutil import userNamespacesUnavailable
from tests.test_rollback_interrupts import (
    Interrupter,
    requireCCleanup,
    sweep,
    txspawnPoints,
)
from txspawn._engine.pyengine import PythonSpawner
from txspawn._kernel.childhandle import ChildProcess
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn._plan.plan import SpawnPlan

TRUE = (shutil.which("true") or "/bin/true").encode()

#: C{<linux/sched.h>}.
_USER = 0x10000000
_PID = 0x20000000


def _blocked() -> set[int]:
    """
    This thread's signal mask.
    """
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ())}


class SignalMaskTests(HygieneMixin, SynchronousTestCase):
    """
    Interrupted anywhere, a fork-path spawn restores the signal mask.
    """

    def setUp(self) -> None:
        requireCCleanup(self)
        self.setUpHygiene()
        self.me = os.getpid()
        # A mask of our own, to be restored exactly (not just emptied).
        before = signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGUSR2})
        self.addCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, before)

    def counts(self, frame: FrameType, event: str, arg: object) -> bool:
        """
        L{txspawnPoints} of this process only (a fork child inherits the
        profile function).
        """
        return os.getpid() == self.me and txspawnPoints(frame, event, arg)

    def attempt(self, plan: SpawnPlan, point: int) -> bool:
        """
        Spawn C{plan}, interrupted at its C{point}th point; check the mask.

        @return: Whether the run had that many points.
        """
        child: ChildProcess | None = None
        with Interrupter(None, point, self.counts) as interrupter:
            try:
                child = PythonSpawner(method="fork").spawn(plan, {}, None)
            except KeyboardInterrupt:
                pass
        self.assertEqual(
            _blocked(), {int(signal.SIGUSR2)}, f"at {interrupter.secondAt}"
        )
        if child is not None:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
            self.assertTrue(child.tryReap())
            child.closePidfd()
        return interrupter.secondFired

    def sweepAll(self, plan: SpawnPlan) -> None:
        points = sweep(lambda point: self.attempt(plan, point))
        self.assertGreater(points, 0)

    def test_forkPath(self) -> None:
        """
        The plain fork path (C{spawnByFork}).
        """
        self.sweepAll(makePlan(TRUE, argv=(b"true",), umask=0o22))

    def test_namespaces(self) -> None:
        """
        A spawn with namespaces (C{spawnInNamespaces}): a user and a pid
        namespace, the maps written by the parent.
        """
        unavailable = userNamespacesUnavailable()
        if unavailable is not None:
            raise SkipTest(unavailable)
        ns = NamespacePlan(
            cloneFlags=_USER | _PID,
            uidMap=b"0 %d 1\n" % os.geteuid(),
            gidMap=b"0 %d 1\n" % os.getegid(),
            setgroups=b"deny",
            mapsByChild=False,
            earlyIds=(0, 0),
        )
        self.sweepAll(makePlan(TRUE, argv=(b"true",), namespaces=ns))
