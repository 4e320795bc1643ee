# -*- test-case-name: tests.test_supervise_readiness -*-
"""
Tests for L{txspawn.supervise.readiness}: the readiness checks, with a fake
reactor and clock for the exact retry sequences, and with real sockets and
real children on txspawn's reactor (both engines x both monitors).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any, cast

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol, connectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.builders import MixinBase, makeTestCaseClasses
from txspawn.options import SpawnOptions
from txspawn.supervise.config import ReadyConfig
from txspawn.supervise.program import ProgramProcess, ProgramSpawn
from txspawn.supervise.readiness import (
    NotReady,
    Readiness,
    ReadyCommand,
    ReadyNotify,
    ReadyTCP,
    readinessFor,
)
from txspawn.supervise.states import IReadinessCheck, ProgramState, ReadyAfter

# Twisted's first listening port opens one fd (/dev/null) that it keeps for
# the life of the process, to accept-and-close connections under EMFILE.
# Open it now, as any earlier listen would have, so that the per-test fd
# check does not count it as this test's leak.
tcp._reservedFD.reserve()

# HostnameEndpoint's LoopingCall imports the global reactor (installing the
# default one if none is) before it is given its own clock: import it now,
# as any Twisted program has, so that its fds are not this test's leak.
from twisted.internet import reactor as _globalReactor  # noqa: E402, F401


def shortTemporaryDirectory(test: SynchronousTestCase) -> str:
    """
    A new directory with a path short enough for unix socket addresses
    (the test's own temporary directories are too deep), readable by all,
    removed after the test.
    """
    path = tempfile.mkdtemp(prefix="txsv-")
    os.chmod(path, 0o755)
    test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


class Outcome:
    """
    What a check's L{Deferred} did: C{None} (not fired), C{"ready"}, or
    the failure.
    """

    def __init__(self, ready: Deferred[None]) -> None:
        self.result: object = None
        ready.addCallbacks(self._ready, self._failed)

    def _ready(self, _: None) -> None:
        self.result = "ready"

    def _failed(self, failure: Failure) -> None:
        self.result = failure

    def failure(self) -> Failure:
        assert isinstance(self.result, Failure), self.result
        return self.result


def refuseLast(reactor: MemoryReactorClock) -> None:
    """
    Make the last TCP connection attempt of C{reactor} fail, refused.
    """
    factory = reactor.tcpClients[-1][2]
    factory.clientConnectionFailed(
        reactor.connectors[-1], Failure(ConnectionRefusedError())
    )


class ReadyTCPFakeTests(SynchronousTestCase):
    """
    L{ReadyTCP}'s sequence of attempts, on a fake reactor and clock.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.check = ReadyTCP(self.reactor, "127.0.0.1", 8080, timeout=3.0)

    def test_interface(self) -> None:
        """
        L{ReadyTCP} provides L{IReadinessCheck}.
        """
        self.assertTrue(verifyObject(IReadinessCheck, self.check))

    def test_retriesWithGrowingPauses(self) -> None:
        """
        A refused connection is tried again after 0.1 s, then after pauses
        doubling up to 1 s; the check fails with L{NotReady} at the timeout,
        naming the address and the last problem.
        """
        outcome = Outcome(self.check.start(123))
        attempts = [self.reactor.seconds()]
        refuseLast(self.reactor)
        while outcome.result is None:
            pending = sorted(c.getTime() for c in self.reactor.getDelayedCalls())
            self.reactor.advance(pending[0] - self.reactor.seconds())
            if len(self.reactor.tcpClients) > len(attempts):
                attempts.append(self.reactor.seconds())
                refuseLast(self.reactor)
        self.assertEqual(
            [round(t, 6) for t in attempts], [0.0, 0.1, 0.3, 0.7, 1.5, 2.5]
        )
        self.assertEqual(self.reactor.seconds(), 3.0)
        self.assertEqual(
            [(host, port) for host, port, *_ in self.reactor.tcpClients],
            [("127.0.0.1", 8080)] * 6,
        )
        failure = outcome.failure()
        failure.trap(NotReady)
        self.assertIn("127.0.0.1:8080", str(failure.value))
        self.assertIn("within 3 s", str(failure.value))
        self.assertIn("refused", str(failure.value))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancel(self) -> None:
        """
        After L{ReadyTCP.cancel}, the check's L{Deferred} never fires and
        nothing more is tried.
        """
        outcome = Outcome(self.check.start(123))
        refuseLast(self.reactor)
        self.check.cancel()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reactor.advance(10)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertIsNone(outcome.result)

    def test_startAgainResets(self) -> None:
        """
        A new L{ReadyTCP.start} abandons the old check and begins again
        with the first pause and a whole timeout.
        """
        first = Outcome(self.check.start(1))
        refuseLast(self.reactor)
        self.reactor.advance(2.5)
        second = Outcome(self.check.start(2))
        self.reactor.advance(2.5)
        self.assertIsNone(first.result)
        self.assertIsNone(second.result)
        self.reactor.advance(0.5)
        second.failure().trap(NotReady)
        self.assertIsNone(first.result)

    def test_badArguments(self) -> None:
        """
        A port out of range or a negative timeout is a L{ValueError}.
        """
        self.assertRaises(ValueError, ReadyTCP, self.reactor, "h", 0)
        self.assertRaises(ValueError, ReadyTCP, self.reactor, "h", 1, timeout=-1)
        self.assertRaises(
            ValueError, ReadyTCP, self.reactor, "h", 1, timeout=float("inf")
        )


class ReadinessForTests(SynchronousTestCase):
    """
    L{readinessFor} builds the check a L{ReadyConfig} asks for.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.runDir = os.path.join(shortTemporaryDirectory(self), "run")

    def test_after(self) -> None:
        """
        C{after}: L{ReadyAfter} with the seconds, no environment.
        """
        made = readinessFor(
            ReadyConfig(kind="after", after=2.5),
            self.reactor,
            instance="w",
            runDir=self.runDir,
        )
        self.assertIsInstance(made, Readiness)
        assert isinstance(made.check, ReadyAfter)
        self.assertEqual(made.check.seconds, 2.5)
        self.assertEqual(made.environment, {})
        self.assertIsNone(made.close())
        self.assertFalse(os.path.exists(self.runDir))

    def test_afterBeyondTimeout(self) -> None:
        """
        C{after} longer than the timeout can never be ready: a
        L{ValueError} says so.
        """
        error = self.assertRaises(
            ValueError,
            readinessFor,
            ReadyConfig(kind="after", after=90, timeout=60),
            self.reactor,
            instance="w",
            runDir=self.runDir,
        )
        self.assertIn("90", str(error))

    def test_tcp(self) -> None:
        """
        C{tcp}: L{ReadyTCP} at the host and port, with the timeout.
        """
        made = readinessFor(
            ReadyConfig(kind="tcp", after=None, host="::1", port=80, timeout=7),
            self.reactor,
            instance="w",
            runDir=self.runDir,
        )
        assert isinstance(made.check, ReadyTCP)
        self.assertEqual((made.check.host, made.check.port), ("::1", 80))
        self.assertEqual(made.check.timeout, 7)
        self.assertEqual(made.environment, {})

    def test_command(self) -> None:
        """
        C{command}: L{ReadyCommand} with the argv.
        """
        made = readinessFor(
            ReadyConfig(kind="command", after=None, command=("true", "x")),
            self.reactor,
            instance="w",
            runDir=self.runDir,
        )
        assert isinstance(made.check, ReadyCommand)
        self.assertEqual(made.check.command, ("true", "x"))
        self.assertIsNone(made.close())

    def test_notify(self) -> None:
        """
        C{notify}: L{ReadyNotify} on C{<runDir>/<instance>.notify} (the
        directory made), named by C{NOTIFY_SOCKET} in the environment;
        C{close} removes it.
        """
        made = readinessFor(
            ReadyConfig(kind="notify", after=None),
            _FDSetClock(),
            instance="worker:1",
            runDir=self.runDir,
        )
        path = os.path.join(self.runDir, "worker:1.notify")
        self.assertEqual(made.environment, {"NOTIFY_SOCKET": path})
        self.assertTrue(os.path.exists(path))
        made.close()
        self.assertFalse(os.path.exists(path))

    def test_incomplete(self) -> None:
        """
        A config missing what its kind needs is a L{ValueError}.
        """
        for config in [
            ReadyConfig(kind="tcp", after=None),
            ReadyConfig(kind="command", after=None),
            ReadyConfig(kind="smoke", after=None),
        ]:
            self.assertRaises(
                ValueError,
                readinessFor,
                config,
                self.reactor,
                instance="w",
                runDir=self.runDir,
            )


class _FDSetClock(MemoryReactorClock):
    """
    A fake clock that also takes readers (and forgets them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[Any] = set()

    def addReader(self, reader: Any) -> None:
        self.readers.add(reader)

    def removeReader(self, reader: Any) -> None:
        self.readers.discard(reader)


class ReadyNotifyFakeTests(SynchronousTestCase):
    """
    L{ReadyNotify}'s socket, its messages and its timeout, with datagrams
    sent from this process.
    """

    def setUp(self) -> None:
        self.reactor = _FDSetClock()
        self.path = os.path.join(shortTemporaryDirectory(self), "n")
        self.check = ReadyNotify(self.reactor, self.path, timeout=5)
        self.addCleanup(self.check.close)
        self.sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.sender.close)

    def send(self, data: bytes) -> None:
        self.sender.sendto(data, self.path)

    def test_interfaces(self) -> None:
        """
        L{ReadyNotify} provides L{IReadinessCheck} and is a reactor reader.
        """
        self.assertTrue(verifyObject(IReadinessCheck, self.check))
        self.assertTrue(verifyObject(IReadDescriptor, self.check))
        self.assertEqual(self.reactor.readers, {self.check})

    def test_readyFromTheChild(self) -> None:
        """
        C{READY=1} from the child's pid makes it ready; C{STATUS=} is kept.
        """
        outcome = Outcome(self.check.start(os.getpid()))
        self.send(b"STATUS=warming up")
        self.check.doRead()
        self.assertIsNone(outcome.result)
        self.assertEqual(self.check.status, "warming up")
        self.send(b"MAINPID=1\nREADY=1\nSTATUS=serving")
        self.check.doRead()
        self.assertEqual(outcome.result, "ready")
        self.assertEqual(self.check.status, "serving")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_statusAfterReady(self) -> None:
        """
        C{STATUS=} from the child is heard after it is ready too, until
        the check is cancelled (the child exited or is being stopped).
        """
        outcome = Outcome(self.check.start(os.getpid()))
        self.send(b"READY=1")
        self.check.doRead()
        self.assertEqual(outcome.result, "ready")
        self.send(b"STATUS=busy")
        self.check.doRead()
        self.assertEqual(self.check.status, "busy")
        self.check.cancel()
        self.send(b"STATUS=gone")
        self.check.doRead()
        self.assertEqual(self.check.status, "busy")

    def test_waitingMessageReadAtStart(self) -> None:
        """
        A C{READY=1} already in the socket when the check starts counts
        (the child may be quicker than the supervisor).
        """
        self.send(b"READY=1")
        outcome = Outcome(self.check.start(os.getpid()))
        self.assertEqual(outcome.result, "ready")

    def test_otherSenderIgnored(self) -> None:
        """
        C{READY=1} from a process that is neither the child nor one of its
        descendants is ignored, and the check times out.
        """
        # This process is an ancestor of that child, not a descendant.
        child = subprocess.Popen(["sleep", "1000"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        outcome = Outcome(self.check.start(child.pid))
        self.send(b"READY=1\n")
        self.check.doRead()
        self.assertIsNone(outcome.result)
        self.reactor.advance(5)
        failure = outcome.failure()
        failure.trap(NotReady)
        self.assertIn(self.path, str(failure.value))

    def test_notCheckingIgnored(self) -> None:
        """
        A message read while no check runs is dropped: it cannot make a
        later run ready.
        """
        self.send(b"READY=1")
        self.check.doRead()
        outcome = Outcome(self.check.start(os.getpid()))
        self.assertIsNone(outcome.result)

    def test_notReadyOne(self) -> None:
        """
        Only C{READY=1} is readiness (C{READY=0}, C{XREADY=1} are not).
        """
        outcome = Outcome(self.check.start(os.getpid()))
        self.send(b"READY=0\nXREADY=1\nREADY=11")
        self.check.doRead()
        self.assertIsNone(outcome.result)

    def test_socketForAnyUser(self) -> None:
        """
        The socket has mode 0666, so a child running as another user can
        send to it.
        """
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o666)

    def test_staleSocketReplaced(self) -> None:
        """
        A socket file left at the path (a supervisor that died) is
        replaced.
        """
        self.check.close()
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stale.bind(self.path)
        stale.close()
        check = ReadyNotify(self.reactor, self.path)
        self.addCleanup(check.close)
        outcome = Outcome(check.start(os.getpid()))
        self.send(b"READY=1")
        check.doRead()
        self.assertEqual(outcome.result, "ready")

    def test_closeTwice(self) -> None:
        """
        L{ReadyNotify.close} stops reading, closes the socket and removes
        its file; a second call does nothing.
        """
        outcome = Outcome(self.check.start(os.getpid()))
        self.check.close()
        self.check.close()
        self.assertEqual(self.reactor.readers, set())
        self.assertEqual(self.check.fileno(), -1)
        self.assertFalse(os.path.exists(self.path))
        self.assertIsNone(outcome.result)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_pathTooLong(self) -> None:
        """
        For a path longer than a unix socket address holds, the socket is
        an abstract one named after the path, which C{$NOTIFY_SOCKET}
        names with a leading C{@}.
        """
        long = os.path.join(os.path.dirname(self.path), "x" * 120)
        check = ReadyNotify(self.reactor, long)
        self.addCleanup(check.close)
        self.assertTrue(check.path.startswith("@txspawn-notify/"), check.path)
        self.assertFalse(os.path.exists(long))
        outcome = Outcome(check.start(os.getpid()))
        self.sender.sendto(b"READY=1", "\0" + check.path[1:])
        check.doRead()
        self.assertEqual(outcome.result, "ready")
        made = readinessFor(
            ReadyConfig(kind="notify", after=None),
            self.reactor,
            instance="x" * 120,
            runDir="/run",
        )
        self.addCleanup(made.close)
        self.assertEqual(made.environment, {"NOTIFY_SOCKET": made.check.path})  # type: ignore[attr-defined]


#: A child that sends C{argv[1]} to C{$NOTIFY_SOCKET} (from a grandchild
#: with C{argv[2] == "grandchild"}), then waits for its stdin to close.
_NOTIFIER = r"""
import os, socket, subprocess, sys
if sys.argv[2] == "grandchild":
    subprocess.run([sys.executable, sys.argv[0], sys.argv[1], "self"], check=True)
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    s.sendto(sys.argv[1].encode(), address)
    s.close()
sys.stdin.read()
"""


class _Closed(Protocol):
    """
    Fires C{closed} when the peer closes the connection.
    """

    def __init__(self, closed: Deferred[None]) -> None:
        self.closed = closed

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed.callback(None)


class _Counting(Factory):
    """
    Counts the connections it accepts; C{closed} fires when the first is
    closed by the peer.
    """

    def __init__(self) -> None:
        self.built = 0
        self.closed: Deferred[None] = Deferred()

    def buildProtocol(self, addr: object) -> Protocol:
        self.built += 1
        return _Closed(self.closed)


class _Ended(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)


class RealChecksMixin(MixinBase):
    """
    The checks on txspawn's reactor, with real sockets and children.
    """

    def runUntil(self, reactor: Any, work: Callable[[], Deferred[Any]]) -> list[Any]:
        """
        Run C{reactor} until the L{Deferred} C{work} returns fires; return
        its result (or failure) in a list.
        """
        results: list[Any] = []

        def begin() -> None:
            done = work()
            done.addBoth(results.append)
            done.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(begin)
        self.runReactor(reactor)
        self.assertEqual(len(results), 1)
        return results

    def spawnNotifier(
        self, reactor: Any, environment: dict[str, str], message: str, how: str
    ) -> tuple[Any, _Ended]:
        script = os.path.abspath(self.mktemp())
        with open(script, "w") as file:
            file.write(_NOTIFIER)
        protocol = _Ended()
        transport = reactor.spawnProcess(
            protocol,
            sys.executable,
            [sys.executable, script, message, how],
            env=environment,
            childFDs={0: "w", 1: 1, 2: 2},
        )
        return transport, protocol

    def test_tcpListening(self) -> None:
        """
        L{ReadyTCP} is ready once the port accepts a connection, even when
        it starts listening after the check began; the probe connection
        is closed (the fd checks of the test see no leftover).
        """
        reactor = self.buildReactor()
        factory = _Counting()
        # A bound socket that does not listen refuses connections.
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        check = ReadyTCP(reactor, "127.0.0.1", port, timeout=30)

        def work() -> Deferred[None]:
            ready = check.start(1)
            probe.close()
            ports: list[Any] = []
            reactor.callLater(
                0.3,
                lambda: ports.append(
                    reactor.listenTCP(port, factory, interface="127.0.0.1")
                ),
            )

            def stopListening(result: object) -> object:
                # The probe connection is closed by the check, not left to
                # the reactor's shutdown.
                closed = factory.closed.addCallback(lambda _: ports[0].stopListening())
                return closed.addCallback(lambda _: result)

            return ready.addBoth(stopListening)

        results = self.runUntil(reactor, work)
        self.assertEqual(results, [None])
        self.assertEqual(factory.built, 1)

    def test_tcpHostName(self) -> None:
        """
        A host name is resolved (C{localhost}, every address it has tried)
        and the check is ready once one of them accepts.
        """
        reactor = self.buildReactor()
        factory = _Counting()

        def work() -> Deferred[object]:
            port = reactor.listenTCP(0, factory, interface="127.0.0.1")
            check = ReadyTCP(reactor, "localhost", port.getHost().port, timeout=30)
            ready: Deferred[Any] = check.start(1)
            ready.addCallback(lambda _: factory.closed)
            return ready.addBoth(lambda result: port.stopListening())

        self.assertEqual(self.runUntil(reactor, work), [None])
        self.assertEqual(factory.built, 1)

    def test_tcpRefusedTimesOut(self) -> None:
        """
        L{ReadyTCP} on a port that refuses fails with L{NotReady} after
        the timeout.
        """
        reactor = self.buildReactor()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.addCleanup(probe.close)
        check = ReadyTCP(reactor, "127.0.0.1", probe.getsockname()[1], timeout=0.5)
        [result] = self.runUntil(reactor, lambda: check.start(1))
        result.trap(NotReady)
        self.assertIn("Connection refused", str(result.value))

    def notifyProgram(self, how: str) -> list[tuple[ProgramState, ProgramState]]:
        """
        A program with a L{ReadyNotify} check whose child (or grandchild,
        C{how}) sends C{READY=1}: its transitions until it is stopped.
        """
        reactor = self.buildReactor()
        runDir = os.path.join(shortTemporaryDirectory(self), "run")
        readiness = readinessFor(
            ReadyConfig(kind="notify", after=None, timeout=30),
            reactor,
            instance="worker:0",
            runDir=runDir,
        )
        self.addCleanup(readiness.close)
        script = os.path.abspath(self.mktemp())
        with open(script, "w") as file:
            file.write(_NOTIFIER)
        program = ProgramProcess(
            "worker:0",
            reactor,
            ProgramSpawn(
                [sys.executable, script, "STATUS=up\nREADY=1", how],
                env=cast("dict[str | bytes, str | bytes]", dict(readiness.environment)),
                childFDs={0: "w", 1: 1, 2: 2},
                # The stop signal goes to the group: the grandchild too.
                options=SpawnOptions(newSession=True),
            ),
            readiness=readiness.check,
        )
        seen: list[tuple[ProgramState, ProgramState]] = []

        class Observer:
            def transition(
                self, p: object, old: ProgramState, new: ProgramState, why: str
            ) -> None:
                seen.append((old, new))
                if new is ProgramState.RUNNING:
                    reactor.callLater(0, program.stop)

        program.addObserver(Observer())  # type: ignore[arg-type]

        def work() -> Deferred[None]:
            stopped: Deferred[None] = Deferred()
            program.addObserver(_WhenStopped(stopped))  # type: ignore[arg-type]
            program.start()
            return stopped

        self.runUntil(reactor, work)
        self.assertEqual(readiness.check.status, "up")  # type: ignore[attr-defined]
        return seen

    def test_notifyChild(self) -> None:
        """
        A program whose child sends C{READY=1} on C{$NOTIFY_SOCKET} goes
        C{RUNNING}.
        """
        S = ProgramState
        self.assertEqual(
            self.notifyProgram("self"),
            [
                (S.STOPPED, S.STARTING),
                (S.STARTING, S.RUNNING),
                (S.RUNNING, S.STOPPING),
                (S.STOPPING, S.STOPPED),
            ],
        )

    def test_notifyGrandchild(self) -> None:
        """
        C{READY=1} from a descendant of the child counts too.
        """
        self.assertIn(
            (ProgramState.STARTING, ProgramState.RUNNING),
            self.notifyProgram("grandchild"),
        )

    def test_notifyOtherUser(self) -> None:
        """
        A child running as another user (nobody) can send to the socket.
        """
        if os.getuid() != 0:
            self.skipTest("only root can run a child as another user")
        reactor = self.buildReactor()
        runDir = os.path.join(shortTemporaryDirectory(self), "run")
        readiness = readinessFor(
            ReadyConfig(kind="notify", after=None, timeout=30),
            reactor,
            instance="w",
            runDir=runDir,
        )
        self.addCleanup(readiness.close)
        # This venv's Python may be under a directory nobody cannot enter.
        python = "/usr/bin/python3"
        if not os.access(python, os.X_OK):
            self.skipTest(f"{python} is needed to run a child as nobody")
        protocol = _Ended()

        def work() -> Deferred[object]:
            transport = reactor.spawnProcess(
                protocol,
                python,
                [python, "-c", _NOTIFIER, "READY=1", "self"],
                env=dict(readiness.environment),
                uid=65534,
                gid=65534,
                childFDs={0: "w", 1: 1, 2: 2},
            )
            ready: Deferred[Any] = readiness.check.start(transport.pid)

            def end(result: object) -> Deferred[object]:
                transport.closeStdin()
                ended: Deferred[Any] = protocol.ended
                return ended.addCallback(lambda _: result)

            return ready.addBoth(end)

        self.assertEqual(self.runUntil(reactor, work), [None])

    def test_notifyStaleFromEarlierRun(self) -> None:
        """
        A C{READY=1} an earlier child sent, still in the socket, does not
        make the next child ready.
        """
        reactor = self.buildReactor()
        runDir = os.path.join(shortTemporaryDirectory(self), "run")
        readiness = readinessFor(
            ReadyConfig(kind="notify", after=None, timeout=0.5),
            reactor,
            instance="w",
            runDir=runDir,
        )
        self.addCleanup(readiness.close)
        check = readiness.check
        assert isinstance(check, ReadyNotify)
        environment = dict(readiness.environment)

        def work() -> Deferred[object]:
            # The earlier child: sends READY=1 and stays until stdin closes.
            old, oldEnded = self.spawnNotifier(reactor, environment, "READY=1", "self")
            reactor.removeReader(check)  # keep its message unread
            done: Deferred[object] = Deferred()

            def oldSent() -> None:
                # The datagram is in the socket, unread, once it is readable.
                poller = select.poll()
                poller.register(check.fileno(), select.POLLIN)
                self.assertNotEqual(poller.poll(30000), [])
                old.closeStdin()
                oldEnded.ended.addCallback(lambda _: newRun())

            def newRun() -> None:
                reactor.addReader(check)
                new, newEnded = self.spawnNotifier(reactor, environment, "", "self")
                result = check.start(new.pid)

                def end(outcome: object) -> None:
                    new.closeStdin()
                    newEnded.ended.addCallback(lambda _: done.callback(outcome))

                result.addBoth(end)

            reactor.callLater(0, oldSent)
            return done

        [result] = self.runUntil(reactor, work)
        self.assertIsInstance(result, Failure)
        result.trap(NotReady)

    def test_commandSucceedsLater(self) -> None:
        """
        L{ReadyCommand} runs its command until it exits 0; the command
        gets the child's pid as C{$TXSPAWN_PID}.
        """
        reactor = self.buildReactor()
        flag = os.path.abspath(self.mktemp())
        check = ReadyCommand(
            reactor,
            ("sh", "-c", f'test "$TXSPAWN_PID" = 4242 && test -e {flag}'),
            timeout=30,
        )

        def work() -> Deferred[None]:
            ready = check.start(4242)
            reactor.callLater(0.3, lambda: open(flag, "w").close())
            return ready

        self.assertEqual(self.runUntil(reactor, work), [None])

    def test_commandTimesOut(self) -> None:
        """
        A command that never succeeds fails the check with L{NotReady}
        after the timeout, with its last exit and output.
        """
        reactor = self.buildReactor()
        check = ReadyCommand(
            reactor, ("sh", "-c", "echo not yet >&2; exit 3"), timeout=0.5
        )
        [result] = self.runUntil(reactor, lambda: check.start(1))
        result.trap(NotReady)
        self.assertIn("exited with code 3: not yet", str(result.value))

    def test_commandKilledAtTimeout(self) -> None:
        """
        A command still running at the timeout is killed; C{close} fires
        once it is reaped (no child is left: the hygiene check).
        """
        reactor = self.buildReactor()
        check = ReadyCommand(reactor, ("sleep", "1000"), timeout=0.3)

        def work() -> Deferred[object]:
            outcome: list[object] = []

            def timedOut(result: object) -> Deferred[None] | None:
                outcome.append(result)
                return check.close()

            ready = check.start(1).addBoth(timedOut)
            return ready.addCallback(lambda _: outcome[0])

        [result] = self.runUntil(reactor, work)
        result.trap(NotReady)
        self.assertIn("'sleep' did not succeed within 0.3 s", str(result.value))

    def test_commandMissing(self) -> None:
        """
        A check command that cannot be executed fails the check at once,
        with the reason.
        """
        reactor = self.buildReactor()
        check = ReadyCommand(reactor, ("/nonexistent/check",), timeout=30)
        results: list[Any] = []

        def work() -> None:
            check.start(1).addBoth(results.append)
            reactor.stop()

        reactor.callWhenRunning(work)
        self.runReactor(reactor)
        [result] = results
        result.trap(NotReady)
        self.assertIn("/nonexistent/check", str(result.value))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_commandCancelledKilled(self) -> None:
        """
        Cancelling a check kills its running command; C{close} fires once
        it is reaped, and a new start runs the command again.
        """
        reactor = self.buildReactor()
        flag = os.path.abspath(self.mktemp())
        check = ReadyCommand(
            reactor, ("sh", "-c", f"test -e {flag} || exec sleep 1000"), timeout=30
        )
        outcome: list[object] = []

        def work() -> Deferred[None]:
            check.start(1).addBoth(outcome.append)
            check.cancel()
            open(flag, "w").close()
            return check.start(2)

        self.assertEqual(self.runUntil(reactor, work), [None])
        self.assertEqual(outcome, [])


class _WhenStopped:
    def __init__(self, stopped: Deferred[None]) -> None:
        self._stopped = stopped

    def transition(
        self, program: object, old: ProgramState, new: ProgramState, why: str
    ) -> None:
        if (
            new in (ProgramState.STOPPED, ProgramState.FATAL)
            and not self._stopped.called
        ):
            self._stopped.callback(None)


globals().update(makeTestCaseClasses(RealChecksMixin))
