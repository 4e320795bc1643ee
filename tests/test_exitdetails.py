"""
Tests for exit details: the rusage carried by the exit reasons, and the
stop/continue notifications of L{txspawn.interfaces.IProcessStateObserver},
with real children on every engine x monitor combination.
"""

from __future__ import annotations

import os
import signal
import threading
from signal import SIGCONT
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from tests.hygiene import openFDs
from txspawn.errors import UnsupportedFeature
from txspawn.interfaces import IProcessStateObserver

# Burns at least 0.2 s of user CPU and touches 64 MiB, then exits with the
# code given as argv[1].
BURN = """
import resource, sys
block = b"x" * (64 << 20)
while resource.getrusage(resource.RUSAGE_SELF).ru_utime < 0.2:
    pass
sys.exit(int(sys.argv[1]))
"""

WAIT_FOR_EOF = python("import sys; sys.stdin.read()")

# Touches argv[1] MiB, then exits.
TOUCH = "import sys; block = b'x' * (int(sys.argv[1]) << 20)"

TRUE = "/bin/true"


def statusKiB(field: str) -> int:
    """
    A memory figure of this process from C{/proc/self/status}.

    @param field: C{"VmRSS"} (resident now) or C{"VmHWM"} (the peak
        resident set of this address space).
    @return: Its value in KiB.
    """
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
    raise LookupError(f"no {field} in /proc/self/status")


@implementer(IProcessStateObserver)
class ObservingProtocol(RecordingProtocol):
    """
    Records stops and continues; stops are answered with C{SIGCONT}, the
    first continue closes stdin (the child then exits).
    """

    def __init__(self, failIn: str | None = None) -> None:
        super().__init__()
        self.states: list[tuple[str, int | None]] = []
        self._failIn = failIn

    def processStopped(self, signal: int) -> None:
        self.states.append(("stopped", signal))
        self.transport.signalProcess(int(SIGCONT))  # type: ignore[union-attr]
        if self._failIn == "stopped":
            raise RuntimeError("processStopped failed")

    def processContinued(self) -> None:
        self.states.append(("continued", None))
        self.transport.closeStdin()  # type: ignore[union-attr]
        if self._failIn == "continued":
            raise RuntimeError("processContinued failed")


class ExitedOnConnectProtocol(ObservingProtocol):
    """
    An L{ObservingProtocol} whose C{connectionMade} returns only once its
    child has exited, leaving it unreaped (C{WNOWAIT}).
    """

    def connectionMade(self) -> None:
        super().connectionMade()
        pid = self.transport.pid  # type: ignore[union-attr]
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


class ExitDetailsMixin(MixinBase):
    """
    rusage in exit reasons; stop/continue notifications.
    """

    def _checkRusage(self, rusage: Any) -> None:
        self.assertIsNotNone(rusage)
        self.assertGreaterEqual(rusage.ru_utime, 0.1)
        self.assertGreaterEqual(rusage.ru_stime, 0.0)
        # ru_maxrss is in KiB on Linux: at least the 64 MiB touched (it may
        # be more: see the test_maxrss* tests), and far less than this
        # machine's memory.
        self.assertGreaterEqual(rusage.ru_maxrss, 64 * 1024)
        self.assertLess(rusage.ru_maxrss, 64 * 1024 * 1024)

    def test_rusageInProcessDone(self) -> None:
        """
        A CPU-burning child's L{ProcessDone} (in C{processExited} and
        C{processEnded}) carries its rusage: user CPU time, system CPU time
        and max RSS; the transport keeps it too.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, [*python(BURN), b"0"])
        for reason in (proto.exitedReason, proto.endedReason):
            self.assertIsInstance(reason.value, ProcessDone)
            self._checkRusage(reason.value.rusage)
        self.assertEqual(transport.rusage, proto.endedReason.value.rusage)

    def test_rusageInProcessTerminated(self) -> None:
        """
        A L{ProcessTerminated} (non-zero exit) carries the rusage too.
        """
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, [*python(BURN), b"3"])
        self.assertIsInstance(proto.endedReason.value, ProcessTerminated)
        self.assertEqual(proto.endedReason.value.exitCode, 3)
        self._checkRusage(proto.endedReason.value.rusage)

    def test_rusageOfKilledChild(self) -> None:
        """
        A child killed by a signal still reports its rusage.
        """
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            WAIT_FOR_EOF,
            onSpawned=lambda t: t.signalProcess("KILL"),
        )
        value = proto.endedReason.value
        self.assertEqual(value.signal, signal.SIGKILL)
        self.assertIsNotNone(value.rusage)
        self.assertGreaterEqual(value.rusage.ru_maxrss, 0)

    def test_maxrssCountsChildPeak(self) -> None:
        """
        A child that touches I{N} MiB after C{execve} reports a C{ru_maxrss}
        of at least I{N} MiB, I{N} being more than this process's own peak:
        the child's own peak is never hidden by what it inherited.
        """
        mib = statusKiB("VmHWM") // 1024 + 64
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, [*python(TOUCH), str(mib)])
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertGreaterEqual(proto.endedReason.value.rusage.ru_maxrss, mib << 10)

    def test_maxrssCountsParentMemory(self) -> None:
        """
        C{ru_maxrss} is not the child's own peak: C{/bin/true} spawned by a
        parent that holds 128 MiB reports at least 128 MiB, whether it ran
        in the parent's address space until C{execve} (C engine;
        C{posix_spawn}) or in a copy of it (the Python engine's fork path,
        which C{path=} takes).
        """
        ballast = b"\x01" * (128 << 20)
        cases: list[dict[str, Any]] = [{}, {"path": "/"}]
        for kwargs in cases:
            proto = RecordingProtocol()
            spawnAndRun(self, proto, TRUE, [TRUE], **kwargs)
            self.assertIsInstance(proto.endedReason.value, ProcessDone)
            self.assertGreaterEqual(
                proto.endedReason.value.rusage.ru_maxrss, 128 << 10, kwargs
            )
        self.assertEqual(len(ballast), 128 << 20)

    def test_maxrssCountsParentPeak(self) -> None:
        """
        A child that ran in the parent's address space until C{execve} (a
        C{CLONE_VM} spawn: the C engine's vfork mode, C{posix_spawn})
        reports at least the parent's I{peak} resident set up to the spawn,
        memory the parent has freed since included.
        """
        mib = statusKiB("VmRSS") // 1024 + 128
        ballast = b"\x01" * (mib << 20)
        # Freed (unmapped): this process's resident set is back to where it
        # was, below mib MiB; its peak is not.
        del ballast
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        spawnAndRun(self, proto, TRUE, [TRUE], reactor=reactor)
        spawner = reactor.processSpawner.spawner
        if self.engineName == "c" and not spawner.lastUsedVfork:
            raise SkipTest(
                "the C engine runs in fork-like mode here (CLONE_VM refused): "
                "its children do not share the parent's address space"
            )
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertGreaterEqual(proto.endedReason.value.rusage.ru_maxrss, mib << 10)

    def test_stopAndContinue(self) -> None:
        """
        A protocol providing L{IProcessStateObserver} hears
        C{processStopped(SIGSTOP)} and then C{processContinued()}; the
        watcher lets go of C{SIGCHLD} once the child is reaped.
        """
        reactor = self.buildReactor()
        proto = ObservingProtocol()
        self.assertTrue(verifyObject(IProcessStateObserver, proto))
        spawnAndRun(
            self,
            proto,
            PYTHON,
            WAIT_FOR_EOF,
            reactor=reactor,
            onSpawned=lambda t: t.signalProcess("STOP"),
        )
        self.assertEqual(
            proto.states, [("stopped", signal.SIGSTOP), ("continued", None)]
        )
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        watcher = reactor.processSpawner.stateWatcher()
        self.assertFalse(watcher.subscribed)

    def test_stopSignalReported(self) -> None:
        """
        The signal that stopped the child is the one reported.
        """
        proto = ObservingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            WAIT_FOR_EOF,
            onSpawned=lambda t: t.signalProcess(int(signal.SIGTSTP)),
            # The kernel discards SIGTSTP for a process in an orphaned
            # process group (POSIX job control), which the test runner's
            # own group may be (run from a detached job, say).  A group of
            # its own in our session never is.
            processGroup=0,
        )
        self.assertEqual(proto.states[0], ("stopped", signal.SIGTSTP))

    def test_observerExceptionsLogged(self) -> None:
        """
        Exceptions from C{processStopped}/C{processContinued} are logged,
        and the child still ends normally.
        """
        for where in ("stopped", "continued"):
            proto = ObservingProtocol(failIn=where)
            spawnAndRun(
                self,
                proto,
                PYTHON,
                WAIT_FOR_EOF,
                onSpawned=lambda t: t.signalProcess("STOP"),
            )
            self.assertIsInstance(proto.endedReason.value, ProcessDone)
            self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_noCostWithoutInterface(self) -> None:
        """
        A protocol that does not provide the interface never gets a watcher:
        no subscription, no syscall; stopping and continuing its child
        changes nothing.
        """
        reactor = self.buildReactor()
        proto = RecordingProtocol()

        def stopAndContinue(transport: Any) -> None:
            transport.signalProcess("STOP")
            reactor.callLater(0.05, transport.signalProcess, int(signal.SIGCONT))
            reactor.callLater(0.1, transport.closeStdin)

        spawnAndRun(
            self,
            proto,
            PYTHON,
            WAIT_FOR_EOF,
            reactor=reactor,
            onSpawned=stopAndContinue,
        )
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertIsNone(reactor.processSpawner._stateWatcher)

    def test_observerOutsideMainThread(self) -> None:
        """
        Outside the main thread an observing protocol is refused with
        L{UnsupportedFeature} before anything is started or opened.
        """
        reactor = self.buildReactor()
        before = openFDs()
        caught: list[BaseException] = []

        def spawn() -> None:
            try:
                reactor.spawnProcess(ObservingProtocol(), PYTHON, WAIT_FOR_EOF)
            except BaseException as e:
                caught.append(e)

        thread = threading.Thread(target=spawn)
        thread.start()
        thread.join()
        self.assertEqual(len(caught), 1)
        self.assertIsInstance(caught[0], UnsupportedFeature)
        self.assertIn("IProcessStateObserver", str(caught[0]))
        self.assertEqual(openFDs(), before)

    def test_observerChildExitedBeforeWatched(self) -> None:
        """
        An observing protocol whose child has exited (not reaped) by the
        time the monitor is asked to watch it -- its C{connectionMade}
        waits for that, without reaping -- gets its transport and hears of
        the exit as usual: C{spawnProcess} does not raise.  (Under the
        sigchld monitor the stop/continue watcher was once asked to watch
        a child already reported, and raised L{ValueError} after
        C{makeConnection}.)
        """
        proto = ExitedOnConnectProtocol()
        transport = spawnAndRun(self, proto, TRUE, [TRUE])
        self.assertIsNotNone(transport)
        self.assertEqual(proto.names().count("exited"), 1)
        self.assertIsInstance(proto.endedReason.value, ProcessDone)


globals().update(makeTestCaseClasses(ExitDetailsMixin))


class StateWatcherUnitTests(SynchronousTestCase):
    """
    L{txspawn._monitor.statewatch.StateChangeWatcher} argument checks.
    """

    def test_reapedChildRefused(self) -> None:
        """
        A reaped child cannot be watched (its pid may be reused).
        """
        from twisted.internet.task import Clock

        from txspawn._kernel.childhandle import ChildProcess
        from txspawn._monitor.statewatch import StateChangeWatcher

        watcher = StateChangeWatcher(Clock())
        child = ChildProcess(pid=1, pidfd=None, reaped=True)
        self.assertRaises(ValueError, watcher.watch, child, print, print)
        self.assertFalse(watcher.subscribed)
