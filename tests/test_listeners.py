"""
Tests for exit listeners and C{transport.whenEnded()}: with real children
on every engine x monitor combination, and L{ExitNotifier} on its own.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from txspawn._transport.exitlisteners import ExitNotifier


class _Boom(Exception):
    """
    Raised by a listener on purpose.
    """


class ListenerMixin(MixinBase):
    """
    C{addExitListener}, C{removeExitListener} and C{whenEnded} on real
    transports.
    """

    def _spawn(self, source: str, setUp: Any, **kwargs: Any) -> RecordingProtocol:
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python(source), onSpawned=setUp, **kwargs)
        return proto

    def test_listenersAfterProcessEnded(self) -> None:
        """
        Listeners are called once each, in the order added, with the
        transport, after C{processEnded}; then every C{whenEnded()}
        Deferred fires with the reason instance (not a failure), the one
        C{processEnded} received.
        """
        calls: list[tuple[str, Any, int]] = []
        results: list[Any] = []
        seen: dict[str, Any] = {}

        def setUp(transport: Any) -> None:
            seen["transport"] = transport
            for name in ("first", "second"):
                transport.addExitListener(
                    lambda t, name=name: calls.append((name, t, len(proto.events)))
                )
            for _ in range(2):
                transport.whenEnded().addCallback(
                    lambda r: results.append((r, len(calls)))
                )

        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python("pass"), onSpawned=setUp)
        transport = seen["transport"]
        ended = len(proto.events)
        self.assertEqual(
            calls, [("first", transport, ended), ("second", transport, ended)]
        )
        self.assertEqual(proto.names()[-1], "ended")
        self.assertEqual(len(results), 2)
        for reason, callsThen in results:
            self.assertIs(reason, proto.endedReason.value)
            self.assertIsInstance(reason, ProcessDone)
            self.assertEqual(callsThen, 2)
            self.assertIsNotNone(reason.rusage)

    def test_whenEndedTerminated(self) -> None:
        """
        A failed child's C{whenEnded()} fires (never fails) with its
        L{ProcessTerminated}.
        """
        results: list[Any] = []
        self._spawn(
            "raise SystemExit(7)",
            lambda t: t.whenEnded().addBoth(results.append),
        )
        [reason] = results
        self.assertIsInstance(reason, ProcessTerminated)
        self.assertEqual(reason.exitCode, 7)

    def test_removedListenerNotCalled(self) -> None:
        """
        A removed listener is not called; removing it again, or removing one
        never added, is a L{ValueError}.
        """
        calls: list[str] = []
        errors: list[Exception] = []

        def gone(transport: Any) -> None:
            calls.append("gone")

        def setUp(transport: Any) -> None:
            transport.addExitListener(gone)
            transport.addExitListener(lambda t: calls.append("kept"))
            transport.removeExitListener(gone)
            for bad in (gone, print):
                try:
                    transport.removeExitListener(bad)
                except ValueError as e:
                    errors.append(e)

        self._spawn("pass", setUp)
        self.assertEqual(calls, ["kept"])
        self.assertEqual(len(errors), 2)
        self.assertIn("not registered", str(errors[0]))

    def test_notCallable(self) -> None:
        """
        Adding something that is not callable is a L{TypeError}, and the
        process still ends normally.
        """
        errors: list[Exception] = []

        def setUp(transport: Any) -> None:
            try:
                transport.addExitListener("not callable")
            except TypeError as e:
                errors.append(e)

        proto = self._spawn("pass", setUp)
        self.assertEqual(len(errors), 1)
        self.assertIn("callable", str(errors[0]))
        self.assertIsInstance(proto.endedReason.value, ProcessDone)

    def test_listenerExceptionLogged(self) -> None:
        """
        A listener's exception is logged; later listeners and the
        Deferreds still run.
        """
        calls: list[str] = []
        results: list[Any] = []

        def boom(transport: Any) -> None:
            raise _Boom()

        def setUp(transport: Any) -> None:
            transport.addExitListener(boom)
            transport.addExitListener(lambda t: calls.append("after"))
            transport.whenEnded().addCallback(results.append)

        self._spawn("pass", setUp)
        self.assertEqual(calls, ["after"])
        self.assertEqual(len(results), 1)
        self.assertEqual(len(self.flushLoggedErrors(_Boom)), 1)

    def test_afterEnd(self) -> None:
        """
        After the end, a new listener is called at once and C{whenEnded()}
        returns an already-fired Deferred with the same reason.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python("pass"))
        calls: list[Any] = []
        transport.addExitListener(calls.append)
        self.assertEqual(calls, [transport])
        results: list[Any] = []
        transport.whenEnded().addCallback(results.append)
        self.assertEqual(results, [proto.endedReason.value])

    def _namesSeen(self, usePTY: bool) -> tuple[int, dict[str, Any]]:
        """
        Spawn a child that prints its pid; record the transport's C{pid} and
        C{spawnedPid} while it runs and from an exit listener.

        @return: The pid the child printed, and what was seen.
        """
        seen: dict[str, Any] = {}

        def listener(transport: Any) -> None:
            seen["pid"] = transport.pid
            seen["spawnedPid"] = transport.spawnedPid

        def setUp(transport: Any) -> None:
            seen["running"] = (transport.pid, transport.spawnedPid)
            transport.addExitListener(listener)

        proto = self._spawn("import os; print(os.getpid())", setUp, usePTY=usePTY)
        return int(proto.output[1]), seen

    def test_listenerNamesChild(self) -> None:
        """
        An exit listener is called after the child was reaped: the
        transport's C{pid} is C{None} then, as with Twisted's transports,
        and its C{spawnedPid} is the pid the child had (the one it printed
        with C{os.getpid()}), on pipe and pty transports alike.
        """
        for usePTY in (False, True):
            childPid, seen = self._namesSeen(usePTY)
            self.assertEqual(
                seen,
                {"running": (childPid, childPid), "pid": None, "spawnedPid": childPid},
                f"usePTY={usePTY}",
            )

    def test_pty(self) -> None:
        """
        A pty transport has the same listeners and Deferred.
        """
        calls: list[Any] = []
        results: list[Any] = []

        def setUp(transport: Any) -> None:
            transport.addExitListener(calls.append)
            transport.whenEnded().addCallback(results.append)

        self._spawn("pass", setUp, usePTY=True)
        self.assertEqual(len(calls), 1)
        self.assertIsInstance(results[0], ProcessDone)


globals().update(makeTestCaseClasses(ListenerMixin))


class ExitNotifierTests(SynchronousTestCase):
    """
    L{ExitNotifier} without processes.
    """

    def test_fireOnce(self) -> None:
        """
        C{fire} calls each listener once with the transport and fires each
        waiter with the reason; a second C{fire} does nothing.
        """
        notifier = ExitNotifier()
        calls: list[object] = []
        results: list[object] = []
        notifier.add(calls.append)
        notifier.add(calls.append)
        notifier.whenEnded().addCallback(results.append)
        reason = ProcessDone(0)
        notifier.fire("transport", reason)
        notifier.fire("other", ProcessDone(0))
        self.assertEqual(calls, ["transport", "transport"])
        self.assertEqual(results, [reason])
        self.assertIs(notifier.reason, reason)

    def test_removeOneOfTwo(self) -> None:
        """
        Removing a listener added twice removes one registration.
        """
        notifier = ExitNotifier()
        calls: list[object] = []
        notifier.add(calls.append)
        notifier.add(calls.append)
        notifier.remove(calls.append)
        notifier.fire("t", ProcessDone(0))
        self.assertEqual(calls, ["t"])
        self.assertRaises(ValueError, notifier.remove, calls.append)

    def test_newDeferredEachCall(self) -> None:
        """
        Each C{whenEnded()} is a new Deferred: a callback that fails one of
        them does not affect the others.
        """
        notifier = ExitNotifier()
        first = notifier.whenEnded()
        second = notifier.whenEnded()
        self.assertIsNot(first, second)
        failures: list[Failure] = []
        first.addCallback(lambda r: 1 / 0).addErrback(failures.append)
        results: list[object] = []
        second.addCallback(results.append)
        reason = ProcessTerminated(1, None, 256)
        notifier.fire("t", reason)
        self.assertEqual(results, [reason])
        self.assertEqual(len(failures), 1)
