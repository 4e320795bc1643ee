"""
Tests for killing process trees: children that lead a process group or a
session,
L{txspawn._transport.lifecycle.ProcessLifecycle.signalProcessGroup} and
L{txspawn._transport.lifecycle.ProcessLifecycle.terminate}, with real shells
and real grandchildren, on every engine x monitor combination.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from tests.treeutil import (
    Descendant,
    LineProtocol,
    killDescendants,
    waitGone,
)
from txspawn._kernel.childhandle import ChildProcess
from txspawn._transport.groupkill import SIGNAL_NAMES, signalNumber
from txspawn.interfaces import IManagedProcessTransport

SH = b"/bin/sh"

# A grandchild that ignores SIGTERM and only then reports its pid: the inner
# shell inherits the ignored disposition (a non-interactive shell cannot
# undo it) and passes it on to sleep through exec.
IGNORING_GRANDCHILD = "(trap '' TERM; exec sh -c 'echo $$; exec sleep 1000') &"

# Reports the ids a group/session test wants to see.
REPORT_IDS = (
    "import os; os.write(1, repr((os.getpid(), os.getpgid(0), os.getsid(0))).encode())"
)


def _pgid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rfind(b")") + 2 :].split()[2])


class GroupMixin(MixinBase):
    """
    Group leadership, group signals and tree termination.
    """

    def _runTree(
        self,
        script: str,
        grandchildren: int,
        action: Any,
        timeout: float = 30.0,
        **spawnOptions: Any,
    ) -> tuple[LineProtocol, list[Descendant], Any]:
        """
        Run C{sh -c script}; once it printed C{grandchildren} pids, record
        them and call C{action(transport, descendants)}.  The grandchildren
        are killed at clean-up if the test left any.
        """
        descendants: list[Descendant] = []
        self.addCleanup(killDescendants, descendants)

        def onLines(transport: Any, lines: list[bytes]) -> None:
            descendants.extend(Descendant(int(line)) for line in lines)
            action(transport, descendants)

        proto = LineProtocol(grandchildren, onLines)
        transport = spawnAndRun(
            self,
            proto,
            SH,
            [SH, b"-c", script.encode()],
            timeout=timeout,
            **spawnOptions,
        )
        if proto.callbackError is not None:
            proto.callbackError.raiseException()
        self.assertEqual(len(descendants), grandchildren, proto.output)
        return proto, descendants, transport

    def test_defaultStaysInParentGroup(self) -> None:
        """
        Without options the child stays in the parent's process group and
        the transport says it leads none.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python(REPORT_IDS))
        _, pgid, _ = eval(proto.output[1])
        self.assertEqual(pgid, os.getpgid(0))
        self.assertIsNone(transport.processGroup)

    def test_processGroupZeroLeads(self) -> None:
        """
        C{processGroup=0} makes the child the leader of a new group (pgid =
        its pid) in the parent's session; C{transport.processGroup} is that
        pgid, still set after the child ended.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python(REPORT_IDS), processGroup=0)
        pid, pgid, sid = eval(proto.output[1])
        self.assertEqual(pgid, pid)
        self.assertEqual(sid, os.getsid(0))
        self.assertEqual(transport.processGroup, pid)
        self.assertTrue(verifyObject(IManagedProcessTransport, transport))

    def test_newSessionLeads(self) -> None:
        """
        C{newSession=True} makes the child lead a new session and group.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(
            self, proto, PYTHON, python(REPORT_IDS), newSession=True
        )
        pid, pgid, sid = eval(proto.output[1])
        self.assertEqual((pgid, sid), (pid, pid))
        self.assertEqual(transport.processGroup, pid)

    def test_ptyLeads(self) -> None:
        """
        A pty child leads a session, so its transport can signal its group.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python(REPORT_IDS), usePTY=True)
        pid, pgid, sid = eval(proto.output[1].strip())
        self.assertEqual((pgid, sid), (pid, pid))
        self.assertEqual(transport.processGroup, pid)
        self.assertTrue(verifyObject(IManagedProcessTransport, transport))

    def test_signalProcessGroupReachesGrandchildren(self) -> None:
        """
        C{signalProcessGroup("KILL")} kills the leader and every
        grandchild, which share its pgid.
        """
        script = f"{IGNORING_GRANDCHILD}\n{IGNORING_GRANDCHILD}\nwait"
        pgids: list[int] = []

        def kill(transport: Any, descendants: list[Descendant]) -> None:
            pgids.extend(_pgid(d.pid) for d in descendants)
            transport.signalProcessGroup("KILL")

        proto, descendants, transport = self._runTree(script, 2, kill, processGroup=0)
        self.assertEqual(pgids, [transport.processGroup] * 2)
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)
        self.assertEqual(waitGone(descendants), [])

    def test_signalProcessGroupNumber(self) -> None:
        """
        A signal number works as well as a name.
        """
        script = f"{IGNORING_GRANDCHILD}\nwait"
        proto, descendants, _ = self._runTree(
            script,
            1,
            lambda t, _: t.signalProcessGroup(int(signal.SIGKILL)),
            newSession=True,
        )
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)
        self.assertEqual(waitGone(descendants), [])

    def test_terminateKillsSurvivorsBeforeReapingLeader(self) -> None:
        """
        The leader dies of C{SIGTERM} at once while its children ignore it.
        With an hour of grace, they still die right away: when the leader's
        exit is seen, the rest of the group gets C{SIGKILL} before the
        leader is reaped.  (Otherwise they would keep stdout open, and
        C{processEnded} would never come.)
        """
        script = f"{IGNORING_GRANDCHILD}\n{IGNORING_GRANDCHILD}\nwait"
        proto, descendants, transport = self._runTree(
            script, 2, lambda t, _: t.terminate(3600), processGroup=0
        )
        self.assertEqual(proto.endedReason.value.signal, signal.SIGTERM)
        self.assertEqual(waitGone(descendants), [])
        self.assertFalse(transport.timedOut)

    def test_terminateEscalatesToKill(self) -> None:
        """
        When the whole group ignores C{SIGTERM}, C{SIGKILL} follows after
        the grace period and nothing survives.
        """
        script = f"trap '' TERM\n{IGNORING_GRANDCHILD}\n{IGNORING_GRANDCHILD}\nwait"
        proto, descendants, _ = self._runTree(
            script, 2, lambda t, _: t.terminate(0.1), processGroup=0
        )
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)
        self.assertEqual(waitGone(descendants), [])

    def test_terminateWithoutGroup(self) -> None:
        """
        A child that leads no group gets C{SIGTERM} itself.
        """
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            onSpawned=lambda t: t.terminate(60),
        )
        self.assertEqual(proto.endedReason.value.signal, signal.SIGTERM)

    def test_terminateTwiceIsOneTermination(self) -> None:
        """
        A second C{terminate} while one is in progress does nothing (its
        grace period does not replace the first one's).
        """
        script = "trap '' TERM; echo ready; exec sleep 1000"

        def twice(transport: Any, lines: list[bytes]) -> None:
            transport.terminate(0.05)
            transport.terminate(3600)

        lines = LineProtocol(1, twice)
        spawnAndRun(self, lines, SH, [SH, b"-c", script.encode()], processGroup=0)
        self.assertEqual(lines.endedReason.value.signal, signal.SIGKILL)

    def test_afterExitRaises(self) -> None:
        """
        Once the leader is reaped, C{signalProcessGroup} and C{terminate}
        raise L{ProcessExitedAlready} (the pgid may be someone else's now).
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python("pass"), processGroup=0)
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertRaises(ProcessExitedAlready, transport.signalProcessGroup, "KILL")
        self.assertRaises(ProcessExitedAlready, transport.terminate)

    def test_badInput(self) -> None:
        """
        Signalling the group of a child that leads none, an unknown signal
        name, a wrong type or a negative grace period is a clear error; the
        child is untouched and ends normally.
        """
        proto = RecordingProtocol()
        errors: list[Exception] = []

        def misuse(transport: Any) -> None:
            for call in (
                lambda: transport.signalProcessGroup("TERM"),
                lambda: transport.terminate(-1),
                lambda: transport.terminate(float("nan")),
                lambda: transport.terminate("5"),
            ):
                try:
                    call()
                except Exception as e:
                    errors.append(e)
            transport.closeStdin()

        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            onSpawned=misuse,
        )
        self.assertEqual(
            [type(e) for e in errors], [ValueError, ValueError, ValueError, TypeError]
        )
        self.assertIn("does not lead a process group", str(errors[0]))
        self.assertIn("killAfter", str(errors[1]))
        self.assertIsInstance(proto.endedReason.value, ProcessDone)

    def test_badSignalOnLeader(self) -> None:
        """
        An unknown signal name or a bool given to C{signalProcessGroup} is
        refused before anything is sent, even for a group leader.
        """
        proto = RecordingProtocol()
        errors: list[Exception] = []

        def misuse(transport: Any) -> None:
            for bad in ("FOO", "SIGTERM", True, 1.5, 100000):
                try:
                    transport.signalProcessGroup(bad)
                except Exception as e:
                    errors.append(e)
            transport.closeStdin()

        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            onSpawned=misuse,
            processGroup=0,
        )
        self.assertEqual(
            [type(e) for e in errors],
            [ValueError, ValueError, TypeError, TypeError, ValueError],
        )
        self.assertIn("signalID", str(errors[0]))
        self.assertIsInstance(proto.endedReason.value, ProcessDone)


globals().update(makeTestCaseClasses(GroupMixin))


class SignalNumberTests(SynchronousTestCase):
    """
    L{signalNumber}: Twisted's signal names and numbers.
    """

    def test_names(self) -> None:
        """
        Each of Twisted's names maps to its C{SIG*} number.
        """
        for name in SIGNAL_NAMES:
            self.assertEqual(signalNumber(name), getattr(signal, f"SIG{name}"))

    def test_numbers(self) -> None:
        """
        Valid numbers (and 0, the existence check) are returned as they are.
        """
        for number in (0, int(signal.SIGUSR1), signal.SIGRTMIN):
            self.assertEqual(signalNumber(number), number)

    def test_bad(self) -> None:
        """
        Unknown names and invalid numbers are L{ValueError}s naming the
        argument; other types are L{TypeError}s.
        """
        for bad in ("term", "SIGKILL", "", -1, 65, 1 << 40):
            with self.assertRaises(ValueError) as caught:
                signalNumber(bad, "sig")
            self.assertIn("sig", str(caught.exception))
        for wrong in (None, 1.0, True, b"TERM"):
            self.assertRaises(TypeError, signalNumber, wrong)


class ChildSignalGroupTests(SynchronousTestCase):
    """
    L{ChildProcess.signalGroup} refuses after reaping.
    """

    def test_reapedRaises(self) -> None:
        """
        A reaped child's group is never signalled.  (A pid that is not a
        child at all shows that no C{killpg} is attempted: it would fail
        differently, or hit a real group.)
        """
        child = ChildProcess(pid=os.getpid(), pidfd=None, reaped=True)
        self.assertRaises(ProcessExitedAlready, child.signalGroup, signal.SIGKILL)
