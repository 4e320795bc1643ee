# -*- test-case-name: tests.test_monitor -*-
"""
Tests for the child monitors (L{txspawn._monitor.pidfd},
L{txspawn._monitor.sigchld}), their selection (L{txspawn._monitor.selection}),
the SIGCHLD wakeup they share (L{txspawn._monitor.sigchldwakeup}) and the
reaping of Twisted's own registry (L{txspawn._monitor.twistedregistry}).

Real children (started with C{os.posix_spawn} and C{os.pidfd_open}
directly, so these tests do not depend on txspawn's engines), real reactors
(fresh C{EPollReactor}/C{PollReactor} instances, never the global one).
Every test checks afterwards that no fd leaked, no child is left (running or
zombie), the C{SIGCHLD} disposition and the wakeup fd are as before, and
nothing of txspawn's is still installed or registered.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet import process as twistedProcess
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.pollreactor import PollReactor
from twisted.internet.protocol import ProcessProtocol
from twisted.python import threadable
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.hygiene import childrenOf, openFDs, peekWakeupFD
from txspawn._kernel.childhandle import ChildProcess
from txspawn._kernel.features import PIDFD_OPEN
from txspawn._kernel.probes import probeFeatures
from txspawn._monitor.orphans import orphanCount
from txspawn._monitor.pidfd import PidfdMonitor
from txspawn._monitor.selection import MONITOR_NAMES, selectMonitor
from txspawn._monitor.sigchld import SIGCHLDMonitor
from txspawn._monitor.sigchldwakeup import _noopHandler, _WakeReader, _wakeup
from txspawn._monitor.twistedregistry import TwistedRegistryReaping
from txspawn._transport.exitstatus import reasonForChild
from txspawn.interfaces import IChildMonitor

if TYPE_CHECKING:
    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object

_SIGDEF = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
_TIMEOUT = 60.0


def spawn(script: str, stdin: int | None = None, pidfd: bool = True) -> ChildProcess:
    """
    Start C{sh -c script} as a L{ChildProcess}.

    @param stdin: A parent fd to give the child as its stdin.
    @param pidfd: Whether to open a pidfd for it.
    """
    fileActions = []
    if stdin is not None:
        fileActions.append((os.POSIX_SPAWN_DUP2, stdin, 0))
    pid = os.posix_spawn(
        "/bin/sh",
        [b"sh", b"-c", script.encode()],
        {b"PATH": b"/usr/bin:/bin"},
        file_actions=fileActions,
        setsigdef=_SIGDEF,
    )
    # The child cannot be reaped by anyone but us before this: the pid is
    # still ours, zombie or not.
    return ChildProcess(pid, os.pidfd_open(pid) if pidfd else None)


def spawnBlocked(
    script: str = "exit 0", pidfd: bool = True
) -> tuple[ChildProcess, int]:
    """
    Start a child that waits for EOF on its stdin, then runs C{script}.

    @return: The child, and the pipe's write end: close it to let the child
        go on.
    """
    readFD, writeFD = os.pipe()
    try:
        child = spawn(f"read x; {script}", stdin=readFD, pidfd=pidfd)
    finally:
        os.close(readFD)
    return child, writeFD


def waitUntilExited(pid: int) -> None:
    """
    Block until C{pid} has exited, leaving it a zombie (not reaped).
    """
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def waitForOrphans() -> None:
    """
    Block until the background reaper of L{txspawn._monitor.orphans} has reaped
    every child it adopted (it polls their pidfds, so this is prompt).
    """
    while orphanCount():
        time.sleep(0.005)


class Countdown:
    """
    Stops a reactor on the C{n}th call of L{stop}.
    """

    def __init__(self, reactor: Any, n: int) -> None:
        self.reactor = reactor
        self.n = n

    def stop(self, *ignored: object) -> None:
        self.n -= 1
        if self.n == 0:
            self.reactor.stop()


class Recorder:
    """
    An C{exited} callback that records its calls and stops the reactor when
    it has seen C{expected} of them.
    """

    def __init__(self, reactor: Any, expected: int) -> None:
        self.reactor = reactor
        self.expected = expected
        self.calls: list[ChildProcess] = []
        self.threads: set[int] = set()
        self.reapedAtCall: list[bool] = []

    def __call__(self, child: ChildProcess) -> None:
        self.calls.append(child)
        self.threads.add(threading.get_ident())
        self.reapedAtCall.append(child.reaped)
        if len(self.calls) == self.expected:
            self.reactor.stop()


class HygieneMixin(_MixinBase):
    """
    Fresh reactors, and the after-test checks of the module docstring.
    """

    @staticmethod
    def reactorFactory() -> Any:
        """
        Build a reactor; subclasses pick the type.
        """
        return EPollReactor()

    def setUp(self) -> None:
        self.reactors: list[Any] = []
        self.fdsBefore = openFDs()
        self.childrenBefore = set(childrenOf(os.getpid()))
        self.signalsBefore = {
            signum: signal.getsignal(signum)
            for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
        }
        self.wakeupBefore = peekWakeupFD()
        self.ioThreadBefore = threadable.ioThread
        self.addCleanup(self.checkHygiene)

    def buildReactor(self) -> Any:
        """
        A fresh reactor of this class's type, torn down after the test.
        """
        reactor = self.reactorFactory()
        self.reactors.append(reactor)
        return reactor

    def runReactor(self, reactor: Any, installSignalHandlers: bool = False) -> None:
        """
        Run C{reactor} until something stops it; fail if that takes more
        than a minute (a hang, not a timing assertion).
        """
        timedOut = []

        def stop() -> None:
            timedOut.append(True)
            reactor.stop()

        call = reactor.callLater(_TIMEOUT, stop)
        reactor.run(installSignalHandlers=installSignalHandlers)
        # Stock Twisted's asyncio reactor never uninstalls its signal
        # handling; every other one already has (this is then a no-op).
        reactor._signals.uninstall()
        if timedOut:
            self.fail("reactor still running after a minute")
        call.cancel()

    def assertNothingRegistered(self, reactor: Any) -> None:
        """
        Only the reactor's own waker, and the shared SIGCHLD wakeup's reader
        while a monitor is installed, are left among its readers: no
        monitor reader for any child.
        """
        allowed = {reactor.waker}
        allowed |= {r for r in reactor.getReaders() if isinstance(r, _WakeReader)}
        self.assertEqual(set(reactor.getReaders()), allowed)
        self.assertEqual(reactor._internalReaders, allowed)

    def checkHygiene(self) -> None:
        problems = []
        for reactor in self.reactors:
            leftover = set(reactor._internalReaders) - {reactor.waker}
            if leftover:
                problems.append(f"internal readers left: {leftover}")
            for reader in set(reactor.getReaders()) | leftover:
                reactor.removeReader(reader)
                reader.connectionLost(Failure(Exception("test teardown")))
            reactor._internalReaders.clear()
            for call in reactor.getDelayedCalls():
                call.cancel()
            close = getattr(getattr(reactor, "_poller", None), "close", None)
            if close is not None:
                close()
            loop = getattr(reactor, "_asyncioEventloop", None)
            if loop is not None:
                loop.close()
        self.reactors = []
        threadable.ioThread = self.ioThreadBefore
        if _wakeup.installed:
            problems.append("the SIGCHLD wakeup is still installed")
        leaked = openFDs() - self.fdsBefore
        if leaked:
            problems.append(f"fds leaked: {sorted(leaked)}")
            for fd in leaked:
                os.close(fd)
        children = set(childrenOf(os.getpid())) - self.childrenBefore
        if children:
            problems.append(f"children left: {sorted(children)}")
            for pid in children:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        for signum, handler in self.signalsBefore.items():
            if signal.getsignal(signum) != handler:
                problems.append(f"handler of signal {signum} changed")
                signal.signal(signum, handler)
        if peekWakeupFD() != self.wakeupBefore:
            problems.append("wakeup fd changed")
            signal.set_wakeup_fd(self.wakeupBefore)
        if twistedProcess.reapProcessHandlers:
            problems.append(
                f"Twisted registry not empty: {twistedProcess.reapProcessHandlers}"
            )
        if problems:
            self.fail("; ".join(problems))


class MonitorBehaviourMixin(HygieneMixin):
    """
    What every monitor does, on every reactor.  Concrete classes below bind
    C{monitorName} and C{reactorFactory}.
    """

    monitorName: ClassVar[str]

    def buildMonitor(self, reactor: Any) -> Any:
        """
        This class's monitor for C{reactor}, installed now and uninstalled
        after the test (as a reactor would do around C{run}).
        """
        monitor = selectMonitor(reactor, self.monitorName)
        monitor.install()
        self.addCleanup(monitor.uninstall)
        return monitor

    def test_verifyObject(self) -> None:
        """
        The monitor provides L{IChildMonitor}, with its name.
        """
        monitor = selectMonitor(self.buildReactor(), self.monitorName)
        self.assertTrue(verifyObject(IChildMonitor, monitor))
        self.assertEqual(monitor.name, self.monitorName)

    def test_statuses(self) -> None:
        """
        Each child is reported once with its exact exit status, converted to
        Twisted's reason (exit codes, deaths by signal), with its rusage,
        and with its pidfd (if any) closed once C{exited} has returned (the
        pidfd monitor reports first and closes after).
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        expected = {
            "exit 0": (ProcessDone, 0, None),
            "exit 1": (ProcessTerminated, 1, None),
            "exit 255": (ProcessTerminated, 255, None),
            "kill -TERM $$": (ProcessTerminated, None, signal.SIGTERM),
            "kill -KILL $$": (ProcessTerminated, None, signal.SIGKILL),
            "ulimit -c 0; kill -ABRT $$": (ProcessTerminated, None, signal.SIGABRT),
        }
        recorder = Recorder(reactor, len(expected))
        children = {}
        for script in expected:
            child, release = spawnBlocked(script)
            children[child.pid] = script
            monitor.watch(child, recorder)
            os.close(release)
        self.runReactor(reactor)
        self.assertEqual(len(recorder.calls), len(expected))
        self.assertEqual(sorted(c.pid for c in recorder.calls), sorted(children))
        self.assertEqual(recorder.reapedAtCall, [True] * len(expected))
        self.assertEqual([c.pidfd for c in recorder.calls], [None] * len(expected))
        for child in recorder.calls:
            reasonType, exitCode, sig = expected[children[child.pid]]
            reason = reasonForChild(child)
            self.assertIs(type(reason), reasonType)
            self.assertEqual(reason.exitCode, exitCode)
            self.assertEqual(reason.signal, sig)
            self.assertIsInstance(reason.rusage, resource.struct_rusage)  # type: ignore[union-attr]
            self.assertTrue(child.reaped)
        self.assertEqual(monitor.watching(), [])
        self.assertNothingRegistered(reactor)

    def test_manyChildren(self) -> None:
        """
        200 children exiting in random order are each reported exactly once,
        with their own exit code.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        count = 200
        recorder = Recorder(reactor, count)
        rng = random.Random(1234)
        releases = []
        codes = {}
        for i in range(count):
            child, release = spawnBlocked(f"exit {i % 256}")
            codes[child.pid] = i % 256
            monitor.watch(child, recorder)
            releases.append(release)
        rng.shuffle(releases)

        def releaseAll() -> None:
            for fd in releases:
                os.close(fd)

        reactor.callWhenRunning(releaseAll)
        self.runReactor(reactor)
        self.assertEqual(len(recorder.calls), count)
        self.assertEqual(len({c.pid for c in recorder.calls}), count)
        for child in recorder.calls:
            self.assertEqual(child.status, codes[child.pid] << 8)
        self.assertNothingRegistered(reactor)

    def test_exitedBeforeRun(self) -> None:
        """
        A child that exited before the reactor runs (and before it was
        watched) is reported once the reactor runs, never from inside
        C{watch}.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child = spawn("exit 3")
        waitUntilExited(child.pid)
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        self.assertEqual(recorder.calls, [])
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        self.assertEqual(child.status, 3 << 8)

    def test_stoppedReactorNotRunYet(self) -> None:
        """
        A child watched while the reactor is not running, exiting later, is
        reported once the reactor runs.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 4")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        os.close(release)
        waitUntilExited(child.pid)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        self.assertEqual(child.status, 4 << 8)

    def test_unwatchedChildNotReaped(self) -> None:
        """
        A monitor never reaps a child it was not asked to watch, even when
        that child's exit woke it up.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        stranger, strangerRelease = spawnBlocked("exit 9", pidfd=False)
        child, release = spawnBlocked("exit 0")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)

        def releaseBoth() -> None:
            os.close(strangerRelease)
            waitUntilExited(stranger.pid)
            os.close(release)

        reactor.callWhenRunning(releaseBoth)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        pid, status = os.waitpid(stranger.pid, os.WNOHANG)
        self.assertEqual((pid, status), (stranger.pid, 9 << 8))

    def test_reapedBehindOurBack(self) -> None:
        """
        A watched child reaped by someone else (C{ECHILD}) is reported with
        an unknown status: C{exited} is called once, C{child.status} is
        C{None}, and the reason is C{ProcessTerminated(None, None, None)}.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 5")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        os.close(release)
        os.waitpid(child.pid, 0)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        self.assertIsNone(child.status)
        self.assertIsNone(child.pidfd)
        reason = reasonForChild(child)
        self.assertIsInstance(reason, ProcessTerminated)
        self.assertEqual(
            (reason.exitCode, reason.signal, reason.status), (None, None, None)
        )

    def test_callbackExceptionLogged(self) -> None:
        """
        An exception from an C{exited} callback is logged, and the monitor
        and the reactor go on reporting other children.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        recorder = Recorder(reactor, 2)

        def broken(child: ChildProcess) -> None:
            recorder(child)
            raise ZeroDivisionError("broken exited callback")

        first, firstRelease = spawnBlocked("exit 0")
        second, secondRelease = spawnBlocked("exit 0")
        monitor.watch(first, broken)
        monitor.watch(second, recorder)

        def releaseInOrder() -> None:
            os.close(firstRelease)
            waitUntilExited(first.pid)
            reactor.callLater(0, os.close, secondRelease)

        reactor.callWhenRunning(releaseInOrder)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [first, second])
        errors = self.flushLoggedErrors(ZeroDivisionError)
        self.assertEqual(len(errors), 1)
        # The failing callback's child was cleaned up all the same.
        self.assertIsNone(first.pidfd)
        self.assertNothingRegistered(reactor)

    def test_watchFromExited(self) -> None:
        """
        An C{exited} callback may watch a new child (as a C{processExited}
        that respawns does); the new child is reported, and the first one's
        registration is gone by the time both are.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        recorder = Recorder(reactor, 2)
        first, firstRelease = spawnBlocked("exit 3")
        second, secondRelease = spawnBlocked("exit 4")

        def respawn(child: ChildProcess) -> None:
            recorder(child)
            monitor.watch(second, recorder)
            os.close(secondRelease)

        monitor.watch(first, respawn)
        os.close(firstRelease)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [first, second])
        self.assertEqual([first.status, second.status], [3 << 8, 4 << 8])
        self.assertEqual([first.pidfd, second.pidfd], [None, None])
        self.assertNothingRegistered(reactor)

    def test_reapIfExitedRunning(self) -> None:
        """
        C{reapIfExited} on a child that is still running returns C{False},
        calls nothing and leaves the child watched; its exit is then
        reported as usual.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 6")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        self.assertFalse(monitor.reapIfExited(child))
        self.assertEqual((recorder.calls, child.reaped), ([], False))
        self.assertEqual(monitor.watching(), [child])
        os.close(release)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        self.assertEqual((child.status, child.pidfd), (6 << 8, None))
        self.assertNothingRegistered(reactor)

    def test_reapIfExited(self) -> None:
        """
        C{reapIfExited} on a child that has exited reaps it and calls
        C{exited} before returning C{True}, without the reactor running;
        the child is no longer watched, its pidfd is closed and unregistered,
        and nothing is reported again when the reactor runs.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 7")
        recorder = Recorder(reactor, 2)  # one call is expected: never stops
        monitor.watch(child, recorder)
        os.close(release)
        waitUntilExited(child.pid)
        self.assertTrue(monitor.reapIfExited(child))
        self.assertEqual(recorder.calls, [child])
        self.assertEqual(recorder.reapedAtCall, [True])
        self.assertEqual((child.status, child.pidfd), (7 << 8, None))
        self.assertEqual(monitor.watching(), [])
        self.assertNothingRegistered(reactor)
        # Already reaped: true again, and no second report.
        self.assertTrue(monitor.reapIfExited(child))
        reactor.callLater(0, reactor.stop)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])

    def test_reapIfExitedUnwatched(self) -> None:
        """
        C{reapIfExited} leaves a child the monitor does not watch alone, even
        an exited one: it stays an unreaped zombie.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        stranger, release = spawnBlocked("exit 8")
        os.close(release)
        waitUntilExited(stranger.pid)
        self.assertFalse(monitor.reapIfExited(stranger))
        self.assertFalse(stranger.reaped)
        pid, status = os.waitpid(stranger.pid, os.WNOHANG)
        self.assertEqual((pid, status), (stranger.pid, 8 << 8))
        stranger.closePidfd()

    def test_watchErrors(self) -> None:
        """
        Watching a child twice, or a child already reaped, raises
        L{ValueError} naming the pid, and registers nothing.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 0")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        e = self.assertRaises(ValueError, monitor.watch, child, recorder)
        self.assertIn(f"child {child.pid} is already watched", str(e))
        os.close(release)
        self.runReactor(reactor)
        e = self.assertRaises(ValueError, monitor.watch, child, recorder)
        self.assertIn(f"child {child.pid} is already reaped", str(e))
        self.assertEqual(monitor.watching(), [])
        self.assertNothingRegistered(reactor)

    def test_shutdownForgetsRunningChildren(self) -> None:
        """
        At reactor shutdown, children still running are forgotten: their
        pidfds are unregistered, C{exited} is not called, and the children
        keep running (as stock Twisted leaves them); when they exit later
        they are reaped in the background, never left as zombies.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 0")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        reactor.callWhenRunning(reactor.stop)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [])
        self.assertFalse(child.reaped)
        self.assertEqual(monitor.watching(), [])
        self.assertNothingRegistered(reactor)
        self.assertIn(child.pid, childrenOf(os.getpid()))
        os.close(release)
        waitForOrphans()
        self.assertTrue(child.reaped)
        self.assertEqual(child.status, 0)
        self.assertIsNone(child.pidfd)
        self.assertNotIn(child.pid, childrenOf(os.getpid()))

    def test_removeAllKeepsWatching(self) -> None:
        """
        The monitor's readers are internal: C{reactor.removeAll()} (as
        application code or C{disconnectAll} does) does not remove them.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 0")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        reactor.removeAll()
        os.close(release)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])


class PidfdMonitorMixin(MonitorBehaviourMixin):
    """
    What only the pidfd monitor does.
    """

    monitorName = "pidfd"

    def test_installChangesNothing(self) -> None:
        """
        C{install} and C{uninstall} touch no process-global state.
        """
        monitor = PidfdMonitor(self.buildReactor())
        monitor.install()
        self.assertEqual(
            signal.getsignal(signal.SIGCHLD), self.signalsBefore[signal.SIGCHLD]
        )
        self.assertEqual(peekWakeupFD(), self.wakeupBefore)
        monitor.uninstall()

    def test_noPidfd(self) -> None:
        """
        A child without a pidfd cannot be watched: L{ValueError} says why,
        and nothing is registered.
        """
        reactor = self.buildReactor()
        monitor = PidfdMonitor(reactor)
        child, release = spawnBlocked("exit 0", pidfd=False)
        e = self.assertRaises(ValueError, monitor.watch, child, lambda c: None)
        self.assertIn(f"child {child.pid} has no pidfd", str(e))
        self.assertEqual(monitor.watching(), [])
        self.assertNothingRegistered(reactor)
        os.close(release)
        os.waitpid(child.pid, 0)

    def test_withSignalHandlers(self) -> None:
        """
        With C{installSignalHandlers=True} (stock Twisted's SIGCHLD reaper
        installed beside it), children are reported and not stolen.
        """
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Stock Twisted never restores these (Twisted issue 11761).
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))
        reactor = self.buildReactor()
        monitor = PidfdMonitor(reactor)
        child, release = spawnBlocked("exit 6")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        reactor.callWhenRunning(os.close, release)
        self.runReactor(reactor, installSignalHandlers=True)
        self.assertEqual(recorder.calls, [child])
        self.assertEqual(child.status, 6 << 8)

    def test_reactorInAnotherThread(self) -> None:
        """
        A reactor running in a thread other than the main one, without
        signal handlers, reports children watched from the main thread
        before it ran and children spawned and watched from its own thread,
        calling C{exited} in its own thread.
        """
        reactor = self.buildReactor()
        monitor = PidfdMonitor(reactor)
        recorder = Recorder(reactor, 2)
        early, earlyRelease = spawnBlocked("exit 7")
        monitor.watch(early, recorder)
        lateChildren = []

        def spawnHere() -> None:
            late = spawn("exit 8")
            lateChildren.append(late)
            monitor.watch(late, recorder)
            os.close(earlyRelease)

        reactor.callWhenRunning(spawnHere)
        thread = threading.Thread(target=self.runReactor, args=(reactor,))
        thread.start()
        thread.join()
        self.assertEqual(sorted(c.status for c in recorder.calls), [7 << 8, 8 << 8])
        self.assertEqual(recorder.threads, {thread.ident})
        self.assertIn(lateChildren[0], recorder.calls)

    def test_readerConnectionLost(self) -> None:
        """
        If the reactor drops a pidfd reader (C{connectionLost}, as a reactor
        without internal readers does at shutdown), the pidfd is closed and
        the child forgotten, unreaped.
        """
        reactor = self.buildReactor()
        monitor = PidfdMonitor(reactor)
        child, release = spawnBlocked("exit 0")
        monitor.watch(child, lambda c: None)
        (reader,) = set(reactor.getReaders()) - {reactor.waker}
        reactor.removeReader(reader)
        reader.connectionLost(Failure(Exception("dropped")))
        self.assertIsNone(child.pidfd)
        self.assertEqual(monitor.watching(), [])
        self.assertNothingRegistered(reactor)
        os.close(release)
        self.assertEqual(os.waitpid(child.pid, 0), (child.pid, 0))


class SIGCHLDMonitorMixin(MonitorBehaviourMixin):
    """
    What only the SIGCHLD monitor does.
    """

    monitorName = "sigchld"

    def test_installRestoresPrevious(self) -> None:
        """
        C{install} replaces the C{SIGCHLD} handler and the wakeup fd;
        C{uninstall} puts back exactly the handler and wakeup fd that were
        there before (a custom Python handler and a custom fd).
        """
        readFD, writeFD = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.addCleanup(os.close, readFD)
        self.addCleanup(os.close, writeFD)

        def custom(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGCHLD, custom)
        self.addCleanup(
            signal.signal, signal.SIGCHLD, self.signalsBefore[signal.SIGCHLD]
        )
        previous = signal.set_wakeup_fd(writeFD)
        self.addCleanup(signal.set_wakeup_fd, previous)

        monitor = SIGCHLDMonitor(self.buildReactor())
        monitor.install()
        self.assertIs(signal.getsignal(signal.SIGCHLD), _noopHandler)
        self.assertNotEqual(peekWakeupFD(), writeFD)
        monitor.install()  # idempotent
        monitor.uninstall()
        self.assertIs(signal.getsignal(signal.SIGCHLD), custom)
        self.assertEqual(peekWakeupFD(), writeFD)
        monitor.uninstall()  # idempotent
        self.assertIs(signal.getsignal(signal.SIGCHLD), custom)
        self.assertFalse(_wakeup.installed)

    def test_forwardsToPreviousWakeupFD(self) -> None:
        """
        While installed, the signal bytes CPython writes reach the previous
        wakeup fd too, so its owner (an asyncio loop, a stock reactor) still
        hears about its signals.
        """
        readFD, writeFD = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.addCleanup(os.close, readFD)
        self.addCleanup(os.close, writeFD)
        previous = signal.set_wakeup_fd(writeFD)
        self.addCleanup(signal.set_wakeup_fd, previous)
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 0")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        reactor.callWhenRunning(os.close, release)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        self.assertIn(bytes([signal.SIGCHLD]), os.read(readFD, 4096))

    def test_sharedWakeupSameReactor(self) -> None:
        """
        The monitor and L{TwistedRegistryReaping} on one reactor share the
        wakeup: the handler stays until the last of them uninstalls, and
        both are woken by one C{SIGCHLD}.
        """
        reactor = self.buildReactor()
        monitor = SIGCHLDMonitor(reactor)
        registry = TwistedRegistryReaping(reactor)
        monitor.install()
        registry.install()
        registry.install()  # idempotent
        self.assertIs(signal.getsignal(signal.SIGCHLD), _noopHandler)
        # Both children are held until both are registered, so each is
        # reaped by its own waker, not by registration.
        ended, releaseTwisted = self._twistedProcess(reactor, held=True)
        child, release = spawnBlocked("exit 2")
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        releaseTwisted()
        os.close(release)
        countdown = Countdown(reactor, 2)
        recorder.reactor = countdown
        ended.append(countdown.stop)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        monitor.uninstall()
        self.assertIs(signal.getsignal(signal.SIGCHLD), _noopHandler)
        registry.uninstall()
        registry.uninstall()  # idempotent
        self.assertFalse(_wakeup.installed)

    def _twistedProcess(
        self, reactor: Any, held: bool = False
    ) -> tuple[list[Callable[[object], None]], Callable[[], None]]:
        """
        Start a child with Twisted's own C{Process} class on C{reactor}.

        @param held: If true, the child waits on a pipe this test holds and
            exits (with status 0) only when the returned release is called;
            otherwise it is C{true}, which may exit at once.  Twisted's
            C{registerReapProcessHandler} calls C{waitpid(pid, WNOHANG)}
            before it registers: a child that has already exited is reaped
            there and never enters the registry, so a test that needs the
            registry entry must hold its child.
        @return: A list (append a callable to have it called with the reason
            when the process ends) and the release (a no-op unless C{held}).
        """
        callbacks: list[Callable[[object], None]] = []

        class Proto(ProcessProtocol):
            def processEnded(self, reason: Failure) -> None:
                for callback in callbacks:
                    callback(reason)

        if not held:
            twistedProcess.Process(reactor, b"/bin/true", [b"true"], {}, None, Proto())
            return callbacks, lambda: None
        readFD, writeFD = os.pipe2(os.O_CLOEXEC)
        try:
            # The child's stdin is the read end; Twisted dup2s it, so the
            # copy in the child is not close-on-exec.
            twistedProcess.Process(
                reactor,
                b"/bin/sh",
                [b"sh", b"-c", b"read x"],
                {},
                None,
                Proto(),
                childFDs={0: readFD, 1: "r", 2: "r"},
            )
        finally:
            os.close(readFD)
        return callbacks, lambda: os.close(writeFD)

    def test_reapsTwistedRegistry(self) -> None:
        """
        The monitor also reaps processes built directly with Twisted's own
        C{Process} class (Twisted's registry), and so does
        L{TwistedRegistryReaping} alone.
        """
        for reaper in (SIGCHLDMonitor, TwistedRegistryReaping):
            reactor = self.buildReactor()
            handling = reaper(reactor)
            handling.install()
            reasons: list[object] = []

            def ended(
                reason: object, reactor: Any = reactor, reasons: list[object] = reasons
            ) -> None:
                reasons.append(reason)
                reactor.stop()

            self._twistedProcess(reactor)[0].append(ended)
            self.runReactor(reactor)
            handling.uninstall()
            self.assertEqual(len(reasons), 1)
            self.assertEqual(twistedProcess.reapProcessHandlers, {})

    def test_registryReapingOnDemand(self) -> None:
        """
        On demand, L{TwistedRegistryReaping} subscribes only when
        L{TwistedRegistryReaping.beforeWait} finds Twisted's registry not
        empty, reaps at once a registry process whose exit came before the
        subscription (its C{SIGCHLD} was discarded), and unsubscribes once
        the registry is empty again; it does nothing while not installed.
        """
        reactor = self.buildReactor()
        reaping = TwistedRegistryReaping(reactor, onDemand=True)
        reaping.install()
        self.assertFalse(reaping.subscribed)
        self.assertFalse(_wakeup.installed)
        ended, release = self._twistedProcess(reactor, held=True)
        # Held on its stdin, the child cannot have exited before Twisted's
        # registerReapProcessHandler looked: it is in the registry.
        (pid,) = twistedProcess.reapProcessHandlers
        release()
        waitUntilExited(pid)
        reaping.uninstall()
        reaping.beforeWait()
        self.assertFalse(reaping.subscribed, "subscribed while not installed")
        # Installing looks at the registry at once.
        reaping.install()
        self.assertTrue(reaping.subscribed)
        self.assertIs(signal.getsignal(signal.SIGCHLD), _noopHandler)
        self.assertEqual(twistedProcess.reapProcessHandlers, {})
        self.assertEqual(childrenOf(os.getpid()).get(pid), None, "not reaped")
        reaping.beforeWait()
        self.assertFalse(reaping.subscribed)
        self.assertFalse(_wakeup.installed)
        # The process still ends (its pipes close) when the reactor runs.
        reasons: list[object] = []
        ended.append(reasons.append)
        ended.append(lambda _: reactor.stop())
        self.runReactor(reactor)
        self.assertEqual(len(reasons), 1)
        reaping.uninstall()

    def test_sharedWakeupTwoReactors(self) -> None:
        """
        Two reactors' monitors share the one wakeup pipe: when one reactor
        drains it, the other is still told (through C{callFromThread}) and
        reaps its own child when it runs.
        """
        reactorA = self.buildReactor()
        reactorB = self.buildReactor()
        monitorA = self.buildMonitor(reactorA)
        monitorB = self.buildMonitor(reactorB)
        childA, releaseA = spawnBlocked("exit 10")
        childB, releaseB = spawnBlocked("exit 11")
        recorderA = Recorder(reactorA, 1)
        recorderB = Recorder(reactorB, 1)
        monitorA.watch(childA, recorderA)
        monitorB.watch(childB, recorderB)
        # B's child exits first; A drains the pipe when it runs.
        os.close(releaseB)
        waitUntilExited(childB.pid)
        os.close(releaseA)
        waitUntilExited(childA.pid)
        self.runReactor(reactorA)
        self.assertEqual(recorderA.calls, [childA])
        self.assertEqual(recorderB.calls, [])
        self.runReactor(reactorB)
        self.assertEqual(recorderB.calls, [childB])
        self.assertEqual(childB.status, 11 << 8)

    def test_installOutsideMainThread(self) -> None:
        """
        Installing from a thread other than the main one raises
        L{ValueError} naming the reason, and installs nothing.
        """
        reactor = self.buildReactor()
        errors: list[BaseException] = []

        def tryInstall() -> None:
            for handling in (SIGCHLDMonitor(reactor), TwistedRegistryReaping(reactor)):
                try:
                    handling.install()
                except ValueError as e:
                    errors.append(e)

        thread = threading.Thread(target=tryInstall)
        thread.start()
        thread.join()
        self.assertEqual(len(errors), 2)
        for e in errors:
            self.assertIn("must run in the main thread", str(e))
        self.assertFalse(_wakeup.installed)
        self.assertNothingRegistered(reactor)

    def test_notInstalledReapsAtRegistration(self) -> None:
        """
        Without C{install} (C{installSignalHandlers=False}), a child that
        already exited is still found by the reap at registration.
        """
        reactor = self.buildReactor()
        monitor = SIGCHLDMonitor(reactor)
        child = spawn("exit 12")
        waitUntilExited(child.pid)
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        self.runReactor(reactor)
        self.assertEqual(recorder.calls, [child])
        self.assertFalse(_wakeup.installed)

    def test_childWithoutPidfd(self) -> None:
        """
        The SIGCHLD monitor watches children that have no pidfd.
        """
        reactor = self.buildReactor()
        monitor = self.buildMonitor(reactor)
        child, release = spawnBlocked("exit 13", pidfd=False)
        recorder = Recorder(reactor, 1)
        monitor.watch(child, recorder)
        reactor.callWhenRunning(os.close, release)
        self.runReactor(reactor)
        self.assertEqual(child.status, 13 << 8)


class PidfdEPollTests(PidfdMonitorMixin, SynchronousTestCase):
    """
    The pidfd monitor on an epoll reactor.
    """

    reactorFactory = staticmethod(EPollReactor)


class PidfdPollTests(PidfdMonitorMixin, SynchronousTestCase):
    """
    The pidfd monitor on a poll reactor.
    """

    reactorFactory = staticmethod(PollReactor)


class SIGCHLDEPollTests(SIGCHLDMonitorMixin, SynchronousTestCase):
    """
    The SIGCHLD monitor on an epoll reactor.
    """

    reactorFactory = staticmethod(EPollReactor)


class SIGCHLDPollTests(SIGCHLDMonitorMixin, SynchronousTestCase):
    """
    The SIGCHLD monitor on a poll reactor.
    """

    reactorFactory = staticmethod(PollReactor)


def _asyncioReactor() -> Any:
    """
    An asyncio-based Twisted reactor on a fresh, private event loop.
    """
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    return AsyncioSelectorReactor(asyncio.new_event_loop())


class PidfdAsyncioTests(PidfdMonitorMixin, SynchronousTestCase):
    """
    The pidfd monitor on an asyncio reactor.
    """

    reactorFactory = staticmethod(_asyncioReactor)


class SIGCHLDAsyncioTests(SIGCHLDMonitorMixin, SynchronousTestCase):
    """
    The SIGCHLD monitor on an asyncio reactor.
    """

    reactorFactory = staticmethod(_asyncioReactor)


class SelectMonitorTests(HygieneMixin, SynchronousTestCase):
    """
    L{selectMonitor} picks the monitor, and says why.
    """

    def setUp(self) -> None:
        super().setUp()
        self.features = probeFeatures()
        if not self.features.enabled(PIDFD_OPEN):
            self.skipTest(f"no pidfds here: {self.features.reason(PIDFD_OPEN)}")
        self.noPidfd = self.features.override(PIDFD_OPEN, False, "ENOSYS (test)")

    def test_default(self) -> None:
        """
        With no name and no C{TXSPAWN_MONITOR}, the pidfd monitor is chosen
        when the kernel has pidfds, and its C{reason} says so.
        """
        monitor = selectMonitor(self.buildReactor(), None, self.features, environ={})
        self.assertIsInstance(monitor, PidfdMonitor)
        self.assertIn("default", monitor.reason)

    def test_fallback(self) -> None:
        """
        Without pidfds the SIGCHLD monitor is chosen, and its C{reason}
        gives the probe's reason.
        """
        monitor = selectMonitor(self.buildReactor(), None, self.noPidfd, environ={})
        self.assertIsInstance(monitor, SIGCHLDMonitor)
        self.assertIn("fallback", monitor.reason)
        self.assertIn("ENOSYS (test)", monitor.reason)

    def test_byName(self) -> None:
        """
        An explicit name wins over the default and the environment.
        """
        environ = {"TXSPAWN_MONITOR": "pidfd"}
        reactor = self.buildReactor()
        monitor = selectMonitor(reactor, "sigchld", self.features, environ)
        self.assertIsInstance(monitor, SIGCHLDMonitor)
        self.assertEqual(monitor.reason, "chosen by name")
        monitor = selectMonitor(reactor, "pidfd", self.features, environ)
        self.assertIsInstance(monitor, PidfdMonitor)

    def test_byEnvironment(self) -> None:
        """
        C{TXSPAWN_MONITOR} chooses the monitor when no name is given; an
        empty value means the default.
        """
        reactor = self.buildReactor()
        monitor = selectMonitor(
            reactor, None, self.features, {"TXSPAWN_MONITOR": "sigchld"}
        )
        self.assertIsInstance(monitor, SIGCHLDMonitor)
        self.assertIn("TXSPAWN_MONITOR", monitor.reason)
        monitor = selectMonitor(reactor, None, self.features, {"TXSPAWN_MONITOR": ""})
        self.assertIsInstance(monitor, PidfdMonitor)

    def test_badName(self) -> None:
        """
        An unknown name, given or from the environment, raises
        L{ValueError} listing the valid names.
        """
        reactor = self.buildReactor()
        e = self.assertRaises(ValueError, selectMonitor, reactor, "kqueue")
        self.assertIn("'kqueue'", str(e))
        for name in MONITOR_NAMES:
            self.assertIn(name, str(e))
        e = self.assertRaises(
            ValueError,
            selectMonitor,
            reactor,
            None,
            self.features,
            {"TXSPAWN_MONITOR": "nope"},
        )
        self.assertIn("TXSPAWN_MONITOR", str(e))
        self.assertIn("'nope'", str(e))

    def test_pidfdUnavailable(self) -> None:
        """
        Asking for the pidfd monitor on a kernel without pidfds raises
        L{ValueError} with the probe's reason.
        """
        e = self.assertRaises(
            ValueError, selectMonitor, self.buildReactor(), "pidfd", self.noPidfd, {}
        )
        self.assertIn("ENOSYS (test)", str(e))
