# -*- test-case-name: tests.test_rollback_interrupts -*-
"""
A second exception during the clean-up of a failed spawn -- another
C{KeyboardInterrupt} while the first one's clean-up runs -- leaves no
child, zombie or fd behind either; and so does an exception while the
orphan reaper starts its thread.

Python runs signal handlers, and so raises a Ctrl-C's C{KeyboardInterrupt},
when a function starts, on a backward jump and right after a call to a C
function returns.  These tests raise C{KeyboardInterrupt} at I{each} of the
first two kinds of point in turn, deterministically, from a profile function
(C{sys.setprofile}: its C{"call"} event comes as a function starts, its
C{"c_return"} right after a C function returned -- an exception raised there
loses the result exactly as a signal handler's would).  The first exception
comes from a trace function (C{sys.settrace}) at the start of a chosen
function, the spot where a spawn must be cleaned up; the sweep then raises
the second one at the 1st, 2nd, ... such point after it, until a spawn ends
without reaching that many points.  An exception raised by a trace or
profile function removes it, so each fires once per spawn.  No signal is
sent, so the test runner itself is never interrupted.

Which points count is chosen per test: those of txspawn's own code (the
engines' clean-up, the orphan reaper), or, for C{spawnProcess} and a
monitor's C{forgetAll}, those of the clean-up machinery that makes the rest
resumable (L{machineryPoints}): the entry points' C{abandon}, the child
handle, the transports' own clean-up and their end-of-process bookkeeping,
the monitors' and the stop/continue watcher's forgetting, the epoll
reactor's removal of a descriptor.  Points inside the standard library's
Python code are never counted: a C{KeyboardInterrupt} there can break the
standard library itself (see L{txspawnPoints}).

After each run the reactor's own bookkeeping is checked too (every fd it
tracks has its descriptor, nothing registered that was not before, no
child watched, no C{SIGCHLD} subscription kept), and a protocol that was
connected gets C{processExited} and C{processEnded} once each.

The guarantees rest on the extension's C{completeCleanup} and
C{discardChild}, C code in which no signal handler can run; the
pure-Python fallbacks are exposed as they start, so without the extension
the sweeps are skipped (a failure with C{TXSPAWN_REQUIRE_C=1}).
"""

from __future__ import annotations

import gc
import os
import select
import sys
import threading
from collections.abc import Callable
from types import CodeType, FrameType, TracebackType
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer

import txspawn
from tests.builders import MixinBase, RecordingProtocol, makeTestCaseClasses
from tests.engineutil import makePlan
from tests.hygiene import HygieneMixin, childrenOf, openFDs
from tests.test_engines import C_UNAVAILABLE, REQUIRE_C
from tests.test_orphans import spawnBlocked
from txspawn._kernel import childhandle as _child
from txspawn._kernel.childhandle import completeCleanup, recordCall, recordItems
from txspawn._monitor.orphans import adoptOrphans, orphanCount, reapPendingOrphans
from txspawn._monitor.statewatch import StateChangeWatcher
from txspawn.interfaces import IProcessStateObserver

__all__ = ["Interrupter"]

#: Why the sweeps cannot hold here, or None.
NO_C_CLEANUP = (
    None
    if _child.C_CLEANUP
    else f"the pure-Python completeCleanup is used ({C_UNAVAILABLE})"
)


def requireCCleanup(test: SynchronousTestCase) -> None:
    """
    Skip C{test} (fail it under C{TXSPAWN_REQUIRE_C=1}) when the clean-up
    runs on the pure-Python fallbacks.
    """
    if NO_C_CLEANUP is not None:
        if REQUIRE_C:
            test.fail(f"TXSPAWN_REQUIRE_C=1 but {NO_C_CLEANUP}")
        raise SkipTest(NO_C_CLEANUP)


#: A sweep that has not ended after this many points is not converging.
MAX_POINTS = 5000
#: Seconds an orphan reaper thread may take to start or to end.
REAPER_TIMEOUT = 30.0


class Interrupter:
    """
    Raise C{KeyboardInterrupt("first")} as a chosen function starts, then
    C{KeyboardInterrupt("second")} at the C{second}th point after it where
    Python could run a signal handler (see the module docstring).  A
    context manager: tracing and profiling are on only inside the block.

    @ivar firstFired: Whether the first exception was raised.
    @ivar secondFired: Whether the second one was.
    @ivar secondAt: Where it was, for messages.
    @ivar secondIn: The code object of the frame it was raised in, and
        the event (C{"call"}: as that code started), or L{None}.
    @ivar threadStarted: Whether the C function that starts a thread
        returned inside the block, before the second exception (or with
        it).
    """

    def __init__(
        self,
        first: Callable[[FrameType], bool] | None,
        second: int | None,
        counts: Callable[[FrameType, str, object], bool] | None = None,
    ) -> None:
        """
        @param first: Whether a frame that starts is where to raise the
            first exception; L{None} to have the C{second}th point of the
            block be the only one.
        @param second: Which point after the first exception (or after the
            block started) raises the second one; L{None} for none.
        @param counts: Whether a point (the profile function's frame, event
            and argument) counts; L{None} for every point.
        """
        self._first = first
        self._second = second
        self._counts = counts
        self._points = 0
        self._active = False
        self.firstFired = first is None
        self.secondFired = False
        self.secondAt = ""
        self.secondIn: tuple[CodeType, str] | None = None
        self.threadStarted = False
        self._oldTrace: Any = None
        self._oldProfile: Any = None

    def __enter__(self) -> Interrupter:
        self._oldTrace = sys.gettrace()
        self._oldProfile = sys.getprofile()
        sys.setprofile(self._profile)
        if self._first is not None:
            sys.settrace(self._trace)
        # Last: the calls above are points too.
        self._active = True
        return self

    def __exit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Set before any call: the calls below are points too.
        self._active = False
        sys.setprofile(self._oldProfile)
        sys.settrace(self._oldTrace)

    def _trace(self, frame: FrameType, event: str, arg: object) -> None:
        if (
            self._active
            and not self.firstFired
            and event == "call"
            and self._first is not None
            and self._first(frame)
        ):
            self.firstFired = True
            raise KeyboardInterrupt("first")

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if frame.f_code is _EXIT:
            # The block ended: this is not one of its points.
            self._active = False
        if self._active and event == "c_return" and arg is _START_THREAD:
            self.threadStarted = True
        if not (self._active and self.firstFired and self._second is not None):
            return
        if event in ("call", "c_return") and (
            self._counts is None or self._counts(frame, event, arg)
        ):
            self._points += 1
            if self._points == self._second:
                self.secondFired = True
                code = frame.f_code
                self.secondIn = (code, event)
                self.secondAt = (
                    f"{event} {getattr(arg, '__qualname__', arg)} in "
                    f"{code.co_qualname} ({code.co_filename}:{frame.f_lineno})"
                )
                raise KeyboardInterrupt("second")


_EXIT = Interrupter.__exit__.__code__
#: What C{threading.Thread.start} calls to start the thread.
_START_THREAD = getattr(
    threading, "_start_joinable_thread", getattr(threading, "_start_new_thread", None)
)


#: The txspawn package's directory.
_TXSPAWN = os.path.dirname(os.path.abspath(txspawn.__file__)) + os.sep


def _inTxspawn(frame: FrameType | None) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_TXSPAWN)


#: The code of L{recordCall}, whose only call is into a C function.
_RECORD_CALL = recordCall.__code__


def _isCallback(frame: FrameType) -> bool:
    """
    Whether C{frame} is a Python function that the interpreter called on
    its own account rather than txspawn's code: a C{gc.callbacks} function
    (run in whatever code happened to allocate; Hypothesis installs one, so
    whether one runs depends on which tests ran before), or anything called
    from inside the C function that L{recordCall} calls (C{os.fork}'s
    C{register_at_fork} hooks: the C{logging} module's take and release its
    lock there).  Not points: Python reports an exception raised in such a
    callback as unraisable and drops it, so it never reaches the clean-up
    under test, and one raised in a standard-library hook breaks the
    standard library instead (an interrupted C{logging} hook leaves its
    lock held, and every later fork from another thread hangs).
    """
    if frame.f_back is not None and frame.f_back.f_code is _RECORD_CALL:
        return not _inTxspawn(frame)
    return any(
        getattr(callback, "__code__", None) is frame.f_code for callback in gc.callbacks
    )


def txspawnPoints(frame: FrameType, event: str, arg: object) -> bool:
    """
    For L{Interrupter}: count only the points in txspawn's own code -- a
    call made from it or to it, a C function returning to it -- and the
    return of the C function that starts a thread (the thread then exists,
    and C{Thread.start} has not returned).

    Not the points inside the standard library's own Python code: there a
    C{KeyboardInterrupt} can break the standard library itself (one raised
    in C{threading.Condition.__enter__} right after the lock was taken
    leaves the lock held for good, and C{Thread.start} interrupted after it
    registered the thread leaves a thread that was never started in
    C{threading.enumerate()}) -- its hazards, not txspawn's.
    """
    if event == "call":
        if _isCallback(frame):
            return False
        return _inTxspawn(frame) or _inTxspawn(frame.f_back)
    return _inTxspawn(frame) or arg is _START_THREAD


#: The modules of the spawn clean-up machinery: the entry points' clean-up
#: (C{abandon}), the child handle and its records, the engines' own
#: clean-up, the orphan reaper; the transports' clean-up and end-of-process
#: bookkeeping (a constructor's rollback, C{_abandon}, C{_childExited},
#: closing pipes); the monitors' and the stop/continue watcher's
#: forgetting; the epoll reactor's removal of a descriptor.
_MACHINERY = tuple(
    os.path.join(_TXSPAWN, name)
    for name in (
        "_reactor/spawner.py",
        "_kernel/childhandle.py",
        "_engine/cengine.py",
        "_engine/pyengine.py",
        "_monitor/twistedregistry.py",
        "_monitor/orphans.py",
        "_monitor/pidfd.py",
        "_monitor/sigchld.py",
        "_monitor/statewatch.py",
        "_monitor/sigchldwakeup.py",
        "_transport/lifecycle.py",
        "_transport/pipetransport.py",
        "_transport/ptytransport.py",
        "_reactor/epollreactor.py",
    )
)


#: Modules whose operations are not interrupt-safe yet, so that no point
#: is counted while one of them runs (the call that enters one is: it comes
#: before the operation starts).  None today.
_NOT_COUNTED: tuple[str, ...] = ()


def _inMachinery(frame: FrameType | None) -> bool:
    return frame is not None and frame.f_code.co_filename in _MACHINERY


def _underUncounted(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename in _NOT_COUNTED:
            return True
        frame = frame.f_back
    return False


def machineryPoints(frame: FrameType, event: str, arg: object) -> bool:
    """
    For L{Interrupter}: count only the points of the clean-up machinery
    (L{_MACHINERY}): a call made from it or to it, a C function returning
    to it; not while a module of L{_NOT_COUNTED} runs.
    """
    if event == "call":
        if _isCallback(frame):
            return False
        return (
            _inMachinery(frame) or _inMachinery(frame.f_back)
        ) and not _underUncounted(frame.f_back)
    return _inMachinery(frame) and not _underUncounted(frame)


def starting(name: str, nth: int = 1) -> Callable[[FrameType], bool]:
    """
    @return: A predicate for L{Interrupter}: the frame is of the C{nth}
        call (since the predicate was made) of a function named C{name}.
    """
    calls = 0

    def first(frame: FrameType) -> bool:
        nonlocal calls
        if frame.f_code.co_name != name:
            return False
        calls += 1
        return calls == nth

    return first


def startingCode(code: CodeType) -> Callable[[FrameType], bool]:
    """
    @return: A predicate for L{Interrupter}: the frame runs C{code}.
    """
    return lambda frame: frame.f_code is code


@implementer(IProcessStateObserver)
class ObservingProtocol(RecordingProtocol):
    """
    A L{RecordingProtocol} that asks for stop and continue notifications:
    its spawn subscribes to C{SIGCHLD} and its child is watched for them.
    """

    def processStopped(self, signal: int) -> None:
        self._note("stopped", signal)

    def processContinued(self) -> None:
        self._note("continued")


class ReactorState:
    """
    What a spawn or its clean-up could leave in a txspawn reactor, at one
    moment: its readers and writers (internal or not), the children its
    monitor watches, its pending calls and shutdown triggers, whether its
    stop/continue watcher holds a C{SIGCHLD} subscription.
    """

    def __init__(self, reactor: Any) -> None:
        # getReaders() and getWriters() fail with KeyError on an fd tracked
        # without its descriptor.
        self.readers = set(reactor.getReaders())
        self.writers = set(reactor.getWriters())
        self.internal = set(reactor._internalReaders)
        self.watched = [child.pid for child in reactor.childMonitor.watching()]
        self.delayedCalls = len(reactor.getDelayedCalls())
        watcher = reactor.processSpawner._stateWatcher
        self.subscribed = watcher is not None and watcher.subscribed
        # Twisted offers no public way to list triggers.
        shutdown = reactor._eventTriggers.get("shutdown")
        self.triggers = (
            0
            if shutdown is None
            else len(shutdown.before) + len(shutdown.during) + len(shutdown.after)
        )

    def differences(self, other: ReactorState) -> dict[str, object]:
        """
        @return: What differs from C{other}, by name, as C{(self, other)}.
        """
        return {
            name: (mine, theirs)
            for name, mine, theirs in (
                (name, getattr(self, name), getattr(other, name)) for name in vars(self)
            )
            if mine != theirs
        }


def assertEPollConsistent(test: SynchronousTestCase, reactor: Any, where: str) -> None:
    """
    Assert that the epoll reactor tracks exactly one descriptor per fd it
    reads or writes, and nothing else.
    """
    test.assertEqual(set(reactor._selectables), reactor._reads | reactor._writes, where)


async def ended(reactor: Any, proto: RecordingProtocol) -> None:
    """
    Wait for C{proto}'s C{processEnded} (its reason is a failure), and for
    the reactor turn that delivered it to end (the monitor closes the
    child's pidfd once C{processEnded} returned).
    """
    try:
        await proto.ended
    except (ProcessDone, ProcessTerminated):
        pass
    await deferLater(reactor, 0, lambda: None)


def sweep(attempt: Callable[[int], bool]) -> int:
    """
    Call C{attempt(1)}, C{attempt(2)}, ... until it returns C{False} (its
    second exception was not raised: the run had fewer points).

    @return: How many points the run had.
    """
    for point in range(1, MAX_POINTS):
        if not attempt(point):
            return point - 1
    raise AssertionError(f"more than {MAX_POINTS} points: not converging")


class SpawnProcessRollbackMixin(MixinBase):
    """
    C{spawnProcess} interrupted at a chosen point, then interrupted again
    at every point of its clean-up (the entry point's C{abandon}, or the
    transport constructor's rollback); or interrupted once, at every point
    of the spawn.
    """

    def sweepSpawnProcess(
        self,
        firstAt: Callable[[], Callable[[FrameType], bool] | None],
        connected: bool | None,
        protocol: Callable[[], RecordingProtocol] = RecordingProtocol,
        usePTY: bool = False,
    ) -> int:
        """
        Interrupt C{spawnProcess} of C{cat} on three pipes where
        C{firstAt()} says, then at every point of the clean-up, from inside
        a running reactor.  After each: C{KeyboardInterrupt} was raised, no
        child or zombie is left, the reactor holds what it held before, a
        protocol that was connected gets C{processExited} once (unless the
        second interrupt came as its C{processExited} started: that is
        its own exception, logged) and ends once (its pipes see end of
        file: the child was killed), and the fds are those of before.

        @param firstAt: Makes the predicate for L{Interrupter}'s first
            exception, or returns L{None}: a single exception, at every
            point of the spawn in turn.
        @param connected: Whether the protocol must have been connected
            when the spawn was interrupted; L{None} if that depends on the
            point.
        @param protocol: Makes the protocol.
        @param usePTY: Run C{cat} on a pty instead of three pipes.
        @return: How many points the clean-up (or the spawn) had.
        """
        requireCCleanup(self)
        reactor = self.buildReactor()
        outcome: list[Any] = []
        exitedCode = RecordingProtocol.processExited.__code__

        async def run() -> int:
            # A first spawn installs the monitor (the SIGCHLD monitor's
            # wakeup pipe): the baseline is taken after it.
            warm = RecordingProtocol()
            reactor.spawnProcess(warm, "/bin/true", ["true"])
            await ended(reactor, warm)
            baseline = openFDs()
            state = ReactorState(reactor)
            point = 0
            while True:
                point += 1
                if point >= MAX_POINTS:
                    raise AssertionError("not converging")
                proto = protocol()
                where = f"interrupted at point {point}"
                first = firstAt()
                returned = None
                with Interrupter(first, point, machineryPoints) as interrupter:
                    try:
                        returned = reactor.spawnProcess(
                            proto, "/bin/cat", ["cat"], usePTY=usePTY
                        )
                    except KeyboardInterrupt:
                        pass
                self.assertTrue(interrupter.firstFired, where)
                where += f" ({interrupter.secondAt})"
                if returned is not None:
                    # Only with a single exception, which the spawn may
                    # swallow: one raised as makeConnection starts is the
                    # protocol's own, logged (as Twisted does), and the
                    # transport is returned, working.
                    self.assertIsNone(first, f"{where}: spawnProcess returned")
                    if proto.transport is None:
                        # Its makeConnection never ran; it is called all the
                        # same.
                        proto.transport = returned
                    if usePTY:
                        # End of file on a terminal: closing the master
                        # would hang it up (SIGHUP), not end cat's input.
                        returned.write(b"\x04")
                    else:
                        returned.loseConnection()
                    await ended(reactor, proto)
                    self.assertEqual(proto.names().count("ended"), 1, where)
                    self.assertEqual(proto.endedReason.value.exitCode, 0, where)
                else:
                    self.assertNoNewChildren(where)
                    if connected is not None:
                        self.assertEqual(bool(proto.events), connected, where)
                    if proto.events:
                        # Connected: it hears of the killed child once its
                        # pipes are done.
                        await ended(reactor, proto)
                        exited = (
                            0 if interrupter.secondIn == (exitedCode, "call") else 1
                        )
                        self.assertEqual(proto.names().count("exited"), exited, where)
                        self.assertEqual(proto.names().count("ended"), 1, where)
                        self.assertEqual(proto.endedReason.value.signal, 9, where)
                    else:
                        await deferLater(reactor, 0, lambda: None)
                self.assertNoNewChildren(where)
                assertEPollConsistent(self, reactor, where)
                self.assertEqual(ReactorState(reactor).differences(state), {}, where)
                self.assertEqual(openFDs(), baseline, where)
                if not interrupter.secondFired:
                    # The spawn (or its clean-up) had fewer points.
                    return point - 1

        def finish(result: object) -> None:
            outcome.append(result)
            reactor.stop()

        reactor.callWhenRunning(lambda: ensureDeferred(run()).addBoth(finish))
        self.runReactor(reactor)
        self.flushLoggedErrors(KeyboardInterrupt)
        (result,) = outcome
        if not isinstance(result, int):
            result.raiseException()
        points: int = result
        return points

    def test_interruptedAfterConnecting(self) -> None:
        """
        The first interrupt comes when everything is set up (the protocol
        connected, the monitor watching): the clean-up has the most to
        undo.
        """
        points = self.sweepSpawnProcess(lambda: starting("_armLifetime"), True)
        self.assertGreater(points, 0)

    def test_interruptedWhileWatching(self) -> None:
        """
        The first interrupt comes as the monitor is asked to watch the
        child: the clean-up must have it drop what it recorded.
        """
        points = self.sweepSpawnProcess(lambda: starting("watch"), True)
        self.assertGreater(points, 0)

    def test_interruptedBeforeConnecting(self) -> None:
        """
        The first interrupt comes as the protocol is about to be connected:
        the clean-up closes the pipes itself, through the reactor's removal
        of each and the transport's own closing.
        """
        points = self.sweepSpawnProcess(lambda: starting("_connect"), False)
        self.assertGreater(points, 0)

    def test_interruptedWhileRegisteringPipes(self) -> None:
        """
        The first interrupt comes inside the transport's constructor, the
        child started and two of its three pipes registered with the
        reactor: the constructor's own rollback undoes it.
        """
        points = self.sweepSpawnProcess(lambda: starting("startReading", 3), False)
        self.assertGreater(points, 0)

    def test_interruptedAnywhere(self) -> None:
        """
        A single interrupt, at every point of the spawn in turn.
        """
        points = self.sweepSpawnProcess(lambda: None, None)
        self.assertGreater(points, 0)

    def test_observerInterruptedAfterConnecting(self) -> None:
        """
        As L{test_interruptedAfterConnecting}, for a protocol that asks for
        stop and continue notifications: its child is watched for them and
        the C{SIGCHLD} subscription they need is taken; the clean-up drops
        both.
        """
        points = self.sweepSpawnProcess(
            lambda: starting("_armLifetime"), True, ObservingProtocol
        )
        self.assertGreater(points, 0)

    def test_observerInterruptedWhileWatchingState(self) -> None:
        """
        The first interrupt comes as the observing protocol's child is
        about to be watched for stops and continues.
        """
        points = self.sweepSpawnProcess(
            lambda: startingCode(StateChangeWatcher.watch.__code__),
            True,
            ObservingProtocol,
        )
        self.assertGreater(points, 0)

    def test_observerInterruptedAnywhere(self) -> None:
        """
        A single interrupt, at every point of an observing protocol's
        spawn in turn (its C{SIGCHLD} subscription, taken before the child
        is started, included).
        """
        points = self.sweepSpawnProcess(lambda: None, None, ObservingProtocol)
        self.assertGreater(points, 0)

    def test_ptyInterruptedAfterConnecting(self) -> None:
        """
        As L{test_interruptedAfterConnecting}, on a pty.
        """
        points = self.sweepSpawnProcess(
            lambda: starting("_armLifetime"), True, usePTY=True
        )
        self.assertGreater(points, 0)

    def test_ptyInterruptedBeforeConnecting(self) -> None:
        """
        As L{test_interruptedBeforeConnecting}, on a pty: the clean-up
        stops reading the master, closes it and kills the child.
        """
        points = self.sweepSpawnProcess(
            lambda: starting("_connect"), False, usePTY=True
        )
        self.assertGreater(points, 0)

    def test_ptyInterruptedWhileRegistering(self) -> None:
        """
        The first interrupt comes inside the pty transport's constructor,
        as it registers the master with the reactor, the child started and
        the slave closed: the constructor's own rollback undoes it.
        """
        points = self.sweepSpawnProcess(
            lambda: starting("startReading"), False, usePTY=True
        )
        self.assertGreater(points, 0)

    def test_ptyInterruptedAnywhere(self) -> None:
        """
        As L{test_interruptedAnywhere}, on a pty.
        """
        points = self.sweepSpawnProcess(lambda: None, None, usePTY=True)
        self.assertGreater(points, 0)


globals().update(makeTestCaseClasses(SpawnProcessRollbackMixin))


class EngineRollbackMixin(MixinBase):
    """
    An engine's C{spawn} interrupted after the child exists, then again at
    every point of the engine's own clean-up.
    """

    def test_engineCleanUp(self) -> None:
        """
        After each: C{KeyboardInterrupt} was raised, no child or zombie is
        left, and no fd.
        """
        from txspawn._engine.selection import selectSpawner

        requireCCleanup(self)
        spawner = selectSpawner(self.engineName)
        # Where each engine has a child and has not returned it yet.
        firstAt = {"c": "_started", "python": "_withPidfd"}[self.engineName]
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, null)
        stdin, stdinWrite = os.pipe2(os.O_CLOEXEC)
        self.addCleanup(os.close, stdin)
        self.addCleanup(os.close, stdinWrite)
        plan = makePlan(b"/bin/cat", argv=(b"cat",))
        before = openFDs()

        def attempt(point: int) -> bool:
            where = f"{self.engineName}: interrupted at {firstAt}, then at {point}"
            with Interrupter(starting(firstAt), point, txspawnPoints) as interrupter:
                try:
                    spawner.spawn(plan, {0: stdin, 1: null, 2: null}, None)
                except KeyboardInterrupt:
                    pass
                else:
                    raise AssertionError(f"{where}: spawn returned")
            self.assertTrue(interrupter.firstFired, where)
            self.assertNoNewChildren(where)
            self.assertEqual(openFDs(), before, where)
            return interrupter.secondFired

        self.assertGreater(sweep(attempt), 0)


globals().update(makeTestCaseClasses(EngineRollbackMixin))


def joinReapers(test: SynchronousTestCase, where: str) -> None:
    """
    Wait for the orphan reaper threads to end, those whose C{Thread.start}
    was interrupted after the thread was started included: such a thread
    may not have run yet, and C{join()} refuses a thread until it has
    (C{Thread._started}).
    """
    for thread in threading.enumerate():
        if thread.name == "txspawn-orphan-reaper":
            started = thread._started  # type: ignore[attr-defined]
            test.assertTrue(started.wait(REAPER_TIMEOUT), where)
            thread.join(REAPER_TIMEOUT)
            test.assertFalse(thread.is_alive(), where)


def reapReleased(
    test: SynchronousTestCase, children: list[tuple[Any, int]], where: str
) -> None:
    """
    Let the adopted children of L{spawnBlocked} exit and check that they
    are all reaped (by the thread that claimed them, or now if pending) and
    their pidfds closed.
    """
    for _, stdinWrite in children:
        os.close(stdinWrite)
    for child, _ in children:
        # Exited, not reaped by us (a reaper thread may be reaping it: then
        # ECHILD).
        try:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
    reapPendingOrphans()
    joinReapers(test, where)
    test.assertEqual(orphanCount(), 0, where)
    for child, _ in children:
        test.assertTrue(child.reaped, where)
        test.assertIsNone(child.pidfd, where)


class ForgetAllRollbackMixin(MixinBase):
    """
    A monitor's C{forgetAll} (its reactor's shutdown) interrupted at every
    point: every child it watched is handed to the orphan reaper, none is
    lost or reported, none stays registered with the reactor, and each is
    reaped once it exits.
    """

    def test_forgetAllInterrupted(self) -> None:
        """
        Three running children watched, then C{forgetAll} with one
        interrupt at each of its points in turn.
        """
        requireCCleanup(self)
        reactor = self.buildReactor()
        monitor = reactor.childMonitor
        exited: list[object] = []

        def attempt(point: int) -> bool:
            where = f"{self.monitorName}: interrupted at point {point}"
            before = openFDs()
            state = ReactorState(reactor)
            children = [spawnBlocked() for _ in range(3)]
            for child, _ in children:
                monitor.watch(child, exited.append)
            with Interrupter(None, point, machineryPoints) as interrupter:
                try:
                    monitor.forgetAll()
                except KeyboardInterrupt:
                    pass
            where += f" ({interrupter.secondAt})"
            self.assertEqual(monitor.watching(), [], where)
            assertEPollConsistent(self, reactor, where)
            self.assertEqual(ReactorState(reactor).differences(state), {}, where)
            self.assertEqual(orphanCount(), len(children), where)
            reapReleased(self, children, where)
            self.assertEqual(exited, [], where)
            self.assertNoNewChildren(where)
            self.assertEqual(openFDs(), before, where)
            return interrupter.secondFired

        self.assertGreater(sweep(attempt), 0)


globals().update(makeTestCaseClasses(ForgetAllRollbackMixin))


class OrphanThreadStartTests(HygieneMixin, SynchronousTestCase):
    """
    The orphan reaper interrupted at every point of adopting a running
    child (in particular inside C{thread.start()}: before the thread
    exists, and after it was started but before C{start} returned), and
    then again at every point of its own clean-up: the child is never
    lost, and is reaped once it exits.
    """

    def setUp(self) -> None:
        requireCCleanup(self)
        self.setUpHygiene()
        #: Where each attempt's second exception was raised.
        self.firedAt: list[str] = []

    def adoptInterrupted(self, interrupter: Interrupter, where: str) -> bool:
        """
        Adopt a running child with C{interrupter} on, then let the child
        exit and check it is reaped and its pidfd closed.

        @return: Whether the interrupter's second exception was raised.
        """
        before = openFDs()
        child, stdinWrite = spawnBlocked()
        with interrupter:
            try:
                adoptOrphans([child])
            except KeyboardInterrupt:
                pass
        # The child exits; wait for that without reaping it (the reaper
        # thread may be reaping it meanwhile: then ECHILD).
        os.close(stdinWrite)
        try:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        # A thread that claimed it reaps it; else it is pending, reaped now.
        reapPendingOrphans()
        self.joinReapers(where)
        self.assertEqual(orphanCount(), 0, where)
        self.assertNotIn(child.pid, childrenOf(os.getpid()), where)
        self.assertEqual(openFDs(), before, where)
        self.firedAt.append(interrupter.secondAt)
        return interrupter.secondFired

    def joinReapers(self, where: str) -> None:
        """
        See L{joinReapers}.
        """
        joinReapers(self, where)

    def test_interruptedOnce(self) -> None:
        """
        One interrupt, at every point of L{adoptOrphans}.
        """
        sweep(
            lambda point: self.adoptInterrupted(
                Interrupter(None, point, txspawnPoints),
                f"interrupted at point {point}",
            )
        )
        # Among them: as Thread.start begins, and once the thread exists.
        self.assertTrue(
            [at for at in self.firedAt if at.startswith("call None in Thread.start ")],
            self.firedAt,
        )
        assert _START_THREAD is not None
        started = f"c_return {_START_THREAD.__qualname__} in Thread.start "
        self.assertTrue(
            [at for at in self.firedAt if at.startswith(started)], self.firedAt
        )

    def test_interruptedInStartThenInCleanUp(self) -> None:
        """
        A first interrupt as C{Thread.start} begins (no thread) or as it
        waits for the new thread to run (a thread that may claim the
        batch), then a second at every point of the clean-up.
        """

        def inStart(frame: FrameType) -> bool:
            return frame.f_code.co_name == "start" and isinstance(
                frame.f_locals.get("self"), threading.Thread
            )

        def inWait(frame: FrameType) -> bool:
            return frame.f_code.co_name == "wait" and isinstance(
                frame.f_locals.get("self"), threading.Event
            )

        for first in (inStart, inWait):

            def attempt(point: int, first: Callable[[FrameType], bool] = first) -> bool:
                return self.adoptInterrupted(
                    Interrupter(first, point, txspawnPoints),
                    f"interrupted in {first.__name__}, then at point {point}",
                )

            self.assertGreater(sweep(attempt), 0)


class RecordTests(HygieneMixin, SynchronousTestCase):
    """
    L{recordCall} and L{recordItems}: once the C function returned, its
    result is recorded, whatever is raised at any later point.  (Storing
    the result with Python code instead -- C{into.append(function())} --
    loses it to an exception raised right after the call returned.)
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def test_recordCall(self) -> None:
        """
        An fd from C{os.dup} is in C{into} whenever C{dup} ran.
        """
        null = self.devnull()

        def attempt(point: int) -> bool:
            into: list[int] = []
            before = openFDs()
            with Interrupter(None, point) as interrupter:
                try:
                    recordCall(into, os.dup, null)
                except KeyboardInterrupt:
                    pass
            for fd in into:
                os.close(fd)
            self.assertEqual(openFDs(), before, f"point {point}")
            return interrupter.secondFired

        self.assertGreater(sweep(attempt), 0)

    def test_recordItems(self) -> None:
        """
        Both fds of C{os.pipe2} are in C{into} whenever C{pipe2} ran.
        """

        def attempt(point: int) -> bool:
            into: list[int] = []
            before = openFDs()
            with Interrupter(None, point) as interrupter:
                try:
                    recordItems(into, os.pipe2, os.O_CLOEXEC)
                except KeyboardInterrupt:
                    pass
            for fd in into:
                os.close(fd)
            self.assertEqual(openFDs(), before, f"point {point}")
            return interrupter.secondFired

        self.assertGreater(sweep(attempt), 0)


class CompleteCleanupTests(SynchronousTestCase):
    """
    L{completeCleanup} (the extension's when it is built).
    """

    complete = staticmethod(completeCleanup)

    def test_runsUntilDone(self) -> None:
        """
        A clean-up interrupted twice runs a third time; then the first
        interrupt is raised.
        """
        calls: list[str] = []

        def cleanUp(value: str) -> None:
            calls.append(value)
            if len(calls) < 3:
                raise KeyboardInterrupt(len(calls))

        e = self.assertRaises(KeyboardInterrupt, self.complete, cleanUp, "x")
        self.assertEqual(e.args, (1,))
        self.assertEqual(calls, ["x", "x", "x"])

    def test_uninterrupted(self) -> None:
        """
        A clean-up that returns at once is called once, and nothing is
        raised.
        """
        calls: list[object] = []
        self.assertIsNone(self.complete(calls.append, 1))
        self.assertEqual(calls, [1])

    def test_chained(self) -> None:
        """
        Raised while another exception is handled, the interrupt has it as
        its C{__context__}.
        """
        calls: list[None] = []

        def cleanUp() -> None:
            calls.append(None)
            if len(calls) == 1:
                raise KeyboardInterrupt("second")

        try:
            try:
                raise ValueError("first")
            except ValueError:
                self.complete(cleanUp)
        except KeyboardInterrupt as e:
            self.assertIsInstance(e.__context__, ValueError)
        else:
            self.fail("nothing raised")

    def test_givesUp(self) -> None:
        """
        A clean-up that raises every time is given up after
        L{_child.CLEANUP_ATTEMPTS} attempts: its last error propagates.
        """
        calls: list[None] = []

        def broken() -> None:
            calls.append(None)
            raise ValueError(len(calls))

        e = self.assertRaises(ValueError, self.complete, broken)
        self.assertEqual(e.args, (_child.CLEANUP_ATTEMPTS,))
        self.assertEqual(len(calls), _child.CLEANUP_ATTEMPTS)


class PythonCompleteCleanupTests(CompleteCleanupTests):
    """
    The pure-Python L{completeCleanup}, used when the extension is not
    built.
    """

    complete = staticmethod(_child._completeCleanup)


class DiscardChildTests(HygieneMixin, SynchronousTestCase):
    """
    L{_child.discardChild} (the extension's when it is built): a running
    child is killed and reaped, with or without its pidfd (which stays
    open); a child that is gone is left alone.
    """

    discard = staticmethod(_child.discardChild)

    def setUp(self) -> None:
        self.setUpHygiene()

    def test_killsAndReaps(self) -> None:
        for withPidfd in (True, False):
            child, stdinWrite = spawnBlocked(pidfd=withPidfd)
            self.addCleanup(os.close, stdinWrite)
            self.discard(child.pid, child.pidfd)
            self.assertNoNewChildren(f"pidfd: {withPidfd}")
            if child.pidfd is not None:
                # Still open, and readable: the process is gone.
                self.assertEqual(
                    select.select([child.pidfd], [], [], 0)[0], [child.pidfd]
                )
                child.closePidfd()

    def test_alreadyReaped(self) -> None:
        child, stdinWrite = spawnBlocked(pidfd=True)
        os.close(stdinWrite)
        os.waitpid(child.pid, 0)
        self.discard(child.pid, child.pidfd)
        self.discard(child.pid, None)
        child.closePidfd()
        self.assertNoNewChildren()


class PythonDiscardChildTests(DiscardChildTests):
    """
    The pure-Python L{_child.discardChild}, used when the extension is not
    built.
    """

    discard = staticmethod(_child._discardChild)
