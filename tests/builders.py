# -*- test-case-name: tests.test_spawner -*-
"""
Run one behaviour test class against every engine x monitor combination.

In the spirit of Twisted's C{ReactorBuilder}: a test module writes its tests
in a mixin (not a C{TestCase}) that calls C{self.buildReactor()} and
C{self.runReactor(reactor, timeout)}, then does::

    globals().update(makeTestCaseClasses(ProcessBehaviourMixin))

which defines one real C{TestCase} per (engine, monitor) pair, named like
C{ProcessBehaviourMixin_python_pidfd}.  Each class also enforces process
hygiene around every test: the set of open fds, our child processes (live
or zombie), the SIGCHLD disposition and the signal wakeup fd must be the
same after the test as before it.

The engine and monitor reach the reactor through its constructor
(L{txspawn.reactor.EPollReactor}C{(engine=..., monitor=...)}): nothing is
patched.  Variants whose engine or monitor is not available here are
skipped with the reason txspawn itself gives.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.hygiene import childrenOf, describeDescendants, openFDs, peekWakeupFD

__all__ = [
    "ENGINES",
    "MONITORS",
    "PYTHON",
    "MixinBase",
    "ReactorTestMixin",
    "RecordingProtocol",
    "makeTestCaseClasses",
    "python",
    "spawnAndRun",
]

ENGINES = ("python", "c")
MONITORS = ("pidfd", "sigchld")


def _monitorUnavailable(name: str) -> str | None:
    """
    Why the monitor C{name} cannot be used here, or C{None}.
    """
    if name == "pidfd" and not hasattr(os, "pidfd_open"):
        return "os.pidfd_open is not available"
    if name == "pidfd":
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError as e:
            return f"pidfd_open failed: {e}"
    return None


def _engineUnavailable(name: str) -> str | None:
    """
    Why the engine C{name} cannot be used here, or C{None}.
    """
    try:
        from txspawn._engine.selection import availableSpawners
    except ImportError as e:
        return f"txspawn._engine.selection cannot be imported: {e}"
    reasons = availableSpawners()
    if name not in reasons:
        return f"txspawn knows no engine named {name!r}"
    return reasons[name]


class ReactorTestMixin:
    """
    Reactor building, running and process hygiene for one (engine, monitor)
    pair.  Mixed into a L{SynchronousTestCase} by L{makeTestCaseClasses}.

    @ivar engineName: The engine under test (C{"python"} or C{"c"}).
    @ivar monitorName: The monitor under test (C{"pidfd"} or C{"sigchld"}).
    """

    engineName: ClassVar[str]
    monitorName: ClassVar[str]
    #: Seconds after which L{runReactor} gives up by default.
    defaultTimeout: ClassVar[float] = 60.0

    def setUp(self) -> None:
        self._reactors: list[Any] = []
        self._fdsBefore = openFDs()
        self._childrenBefore = set(childrenOf(os.getpid()))
        self._sigchldBefore = signal.getsignal(signal.SIGCHLD)
        self._wakeupBefore = peekWakeupFD()
        self.addCleanup(self._checkHygiene)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]

    def assertNoNewChildren(self, message: object = None) -> None:
        """
        Assert that every child (alive or zombie) of this process existed
        already when the test started: children left by an earlier test
        (say, orphans of its reactor being reaped in the background) are not
        this test's business.
        """
        left = {
            pid: state
            for pid, state in childrenOf(os.getpid()).items()
            if pid not in self._childrenBefore
        }
        self.assertEqual(left, {}, message)  # type: ignore[attr-defined]

    def buildReactor(self) -> Any:
        """
        Build a fresh reactor spawning with this class's engine and monitor.
        It is torn down (waker, poller, delayed calls) after the test.
        """
        from txspawn.reactor import EPollReactor

        reactor = EPollReactor(engine=self.engineName, monitor=self.monitorName)
        self._reactors.append(reactor)
        return reactor

    def runReactor(
        self, reactor: Any, timeout: float | None = None, **runArgs: Any
    ) -> None:
        """
        Run C{reactor} until it stops; fail the test if it is still running
        after C{timeout} seconds (it is stopped then).

        @param runArgs: Passed to C{reactor.run} (e.g.
            C{installSignalHandlers=False}).
        """
        if timeout is None:
            timeout = self.defaultTimeout
        timedOut: list[list[str]] = []

        def stop() -> None:
            # What the children are doing now, before stopping the reactor
            # changes anything: a hang seen once in many runs is explained
            # by this or not at all.
            timedOut.append(describeDescendants(os.getpid()))
            reactor.stop()

        call = reactor.callLater(timeout, stop)
        reactor.run(**runArgs)
        if timedOut:
            tree = "\n".join(timedOut[0]) or "  (no children)"
            self.fail(  # type: ignore[attr-defined]
                f"reactor still running after {timeout} seconds; its"
                f" descendants then:\n{tree}"
            )
        call.cancel()

    def _unbuildReactor(self, reactor: Any) -> None:
        """
        Release what a reactor holds, as Twisted's C{ReactorBuilder} does,
        plus the poller, so that the fd check sees no leftovers.
        """
        if IReactorCore.providedBy(reactor) and reactor.running:
            reactor.stop()
        reactor._signals.uninstall()
        for reader in list(getattr(reactor, "_internalReaders", ())):
            reactor.removeReader(reader)
            reader.connectionLost(None)
        getattr(reactor, "_internalReaders", set()).clear()
        reactor.disconnectAll()
        for call in reactor.getDelayedCalls():
            call.cancel()
        poller = getattr(reactor, "_poller", None)
        if poller is not None and hasattr(poller, "close"):
            poller.close()

    def _checkHygiene(self) -> None:
        """
        Tear the reactors down, then check nothing leaked.
        """
        for reactor in self._reactors:
            self._unbuildReactor(reactor)
        self._reactors = []
        problems = []
        leaked = openFDs() - self._fdsBefore
        if leaked:
            problems.append(f"fds leaked: {sorted(leaked)} -> {_describe(leaked)}")
        children = {
            pid: state
            for pid, state in childrenOf(os.getpid()).items()
            if pid not in self._childrenBefore
        }
        if children:
            problems.append(f"children left (pid: state): {children}")
            _reapLeftovers(children)
        sigchld = signal.getsignal(signal.SIGCHLD)
        if sigchld != self._sigchldBefore:
            problems.append(
                f"SIGCHLD handler changed: {self._sigchldBefore!r} -> {sigchld!r}"
            )
            signal.signal(signal.SIGCHLD, self._sigchldBefore)
        wakeup = peekWakeupFD()
        if wakeup != self._wakeupBefore:
            problems.append(f"wakeup fd changed: {self._wakeupBefore} -> {wakeup}")
            signal.set_wakeup_fd(self._wakeupBefore)
        if problems:
            self.fail("; ".join(problems))  # type: ignore[attr-defined]


def _describe(fds: set[int]) -> list[str]:
    out = []
    for fd in sorted(fds):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            out.append("?")
    return out


def _reapLeftovers(children: dict[int, str]) -> None:
    """
    Kill and reap children a failed test left behind, so that one failure
    does not cascade into every later test's hygiene check.
    """
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


class _BuiltTestCase(ReactorTestMixin, SynchronousTestCase):
    """
    What a class made by L{makeTestCaseClasses} looks like, for type
    checking the mixins.
    """


if TYPE_CHECKING:
    MixinBase = _BuiltTestCase
else:
    #: Base class for test mixins: at type-checking time the built test
    #: case (so C{self.assertEqual} and C{self.buildReactor} type-check),
    #: at run time C{object} (so the mixin itself is never collected).
    MixinBase = object


def makeTestCaseClasses(base: type) -> dict[str, type[SynchronousTestCase]]:
    """
    Make one L{SynchronousTestCase} per (engine, monitor) pair out of the
    test mixin C{base}.

    @param base: A class whose C{test_*} methods use C{self.buildReactor},
        C{self.runReactor}, C{self.engineName} and C{self.monitorName}.
    @return: Class name to class, for C{globals().update(...)}.
    """
    classes: dict[str, type[SynchronousTestCase]] = {}
    for engine in ENGINES:
        for monitor in MONITORS:
            name = f"{base.__name__}_{engine}_{monitor}"
            attrs: dict[str, Any] = {
                "engineName": engine,
                "monitorName": monitor,
                "__module__": base.__module__,
                "__qualname__": name,
            }
            reason = _engineUnavailable(engine) or _monitorUnavailable(monitor)
            if reason is not None:
                attrs["skip"] = f"{engine} engine / {monitor} monitor: {reason}"
            classes[name] = type(
                name, (ReactorTestMixin, base, SynchronousTestCase), attrs
            )
    return classes


class RecordingProtocol(ProcessProtocol):
    """
    A process protocol that records every callback, in order, with what the
    transport looked like at that moment.

    @ivar events: C{(name, detail)} tuples in call order.
    @ivar output: Child fd to everything received on it.
    @ivar ended: Fires with the C{processEnded} reason (a L{Failure}).
    @ivar exitedReason: The C{processExited} reason.
    @ivar endedReason: The C{processEnded} reason.
    @ivar pidAt: Callback name to C{transport.pid} at that moment.
    @ivar statusAt: Callback name to C{transport.status} at that moment.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.output: dict[int, bytes] = {}
        self.ended: Deferred[Failure] = Deferred()
        # Any: tests read reason.value.exitCode and friends directly.
        self.exitedReason: Any = None
        self.endedReason: Any = None
        self.pidAt: dict[str, int | None] = {}
        self.statusAt: dict[str, int | None] = {}

    def _note(self, name: str, detail: object = None) -> None:
        self.events.append((name, detail))
        self.pidAt.setdefault(name, self.transport.pid)  # type: ignore[union-attr]
        self.statusAt.setdefault(name, getattr(self.transport, "status", None))

    def connectionMade(self) -> None:
        self._note("connectionMade")

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if not self.output.get(childFD):
            self._note("data", childFD)
        self.output[childFD] = self.output.get(childFD, b"") + data

    def childConnectionLost(self, childFD: int) -> None:
        self._note("lost", childFD)

    def processExited(self, reason: Failure) -> None:
        self.exitedReason = reason
        self._note("exited")

    def processEnded(self, reason: Failure) -> None:
        self.endedReason = reason
        self._note("ended")
        self.ended.callback(reason)

    def names(self) -> list[str]:
        """
        The callback names in order, data events collapsed per fd.
        """
        return [name for name, _ in self.events]


def spawnAndRun(
    test: _BuiltTestCase,
    proto: ProcessProtocol,
    executable: bytes | str,
    args: Sequence[bytes | str] = (),
    *,
    reactor: Any = None,
    timeout: float | None = None,
    onSpawned: Callable[[Any], object] | None = None,
    **kwargs: Any,
) -> Any:
    """
    Build a reactor (unless given), spawn from inside it once it runs, run
    it until C{proto.ended} fires, and return the transport.

    @param onSpawned: Called with the transport right after C{spawnProcess}
        returned, still inside the same reactor turn.
    @param kwargs: More C{spawnProcess} arguments.
    """
    if reactor is None:
        reactor = test.buildReactor()
    result: list[Any] = []

    def spawn() -> None:
        try:
            transport = reactor.spawnProcess(proto, executable, args, **kwargs)
        except BaseException:
            reactor.stop()
            raise
        result.append(transport)
        if onSpawned is not None:
            onSpawned(transport)

    ended: Deferred[Any] = proto.ended  # type: ignore[attr-defined]
    ended.addBoth(lambda r: reactor.callLater(0, reactor.stop))
    reactor.callWhenRunning(spawn)
    test.runReactor(reactor, timeout)
    if not result:
        test.fail("spawnProcess failed (see the logged error)")
    return result[0]


def python(source: str) -> list[bytes]:
    """
    The argument vector running C{source} with this Python.
    """
    return [os.fsencode(sys.executable), b"-c", source.encode("utf-8")]


PYTHON = os.fsencode(sys.executable)
