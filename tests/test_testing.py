"""
Tests for L{txspawn.testing}: the fakes provide what they claim, and behave
as a real reactor and transport do.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
from typing import Any

from twisted.internet.error import (
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.interfaces import (
    IConsumer,
    IProcessTransport,
    IPushProducer,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import IManagedProcessTransport, IProcessStateObserver
from txspawn.testing import (
    FakeProcessState,
    FakeProcessTransport,
    MemoryProcessReactor,
    SpawnedProcess,
)


class Recorder(ProcessProtocol):
    """
    Records every callback, with C{transport.pid} at that time.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.reasons: dict[str, Failure] = {}

    def connectionMade(self) -> None:
        self.events.append(("connectionMade", None))

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.events.append(("data", (childFD, data)))

    def childConnectionLost(self, childFD: int) -> None:
        self.events.append(("lost", childFD))

    def processExited(self, reason: Failure) -> None:
        self.reasons["exited"] = reason
        self.events.append(("exited", self.transport.pid))  # type: ignore[union-attr]

    def processEnded(self, reason: Failure) -> None:
        self.reasons["ended"] = reason
        self.events.append(("ended", self.transport.pid))  # type: ignore[union-attr]


def spawn(
    reactor: MemoryProcessReactor | None = None, **kwargs: object
) -> tuple[MemoryProcessReactor, Recorder, FakeProcessTransport]:
    reactor = MemoryProcessReactor() if reactor is None else reactor
    proto = Recorder()
    transport = reactor.spawnProcess(proto, "prog", ["prog", "arg"], **kwargs)  # type: ignore[arg-type]
    return reactor, proto, transport


class InterfaceTests(SynchronousTestCase):
    """
    Every fake provides the interfaces it declares.
    """

    def test_reactor(self) -> None:
        """
        L{MemoryProcessReactor} provides L{IReactorProcess} and
        L{IReactorTime}.
        """
        reactor = MemoryProcessReactor()
        self.assertTrue(verifyObject(IReactorProcess, reactor))
        self.assertTrue(verifyObject(IReactorTime, reactor))

    def test_transport(self) -> None:
        """
        L{FakeProcessTransport} provides L{IProcessTransport},
        L{IPushProducer} and L{IConsumer}.
        """
        _, _, transport = spawn()
        self.assertTrue(verifyObject(IProcessTransport, transport))
        self.assertTrue(verifyObject(IPushProducer, transport))
        self.assertTrue(verifyObject(IConsumer, transport))

    def test_stateIsSeparate(self) -> None:
        """
        The transport's records live in a L{FakeProcessState}; one may be
        shared by passing it in.
        """
        state = FakeProcessState()
        transport = FakeProcessTransport(Recorder(), 7, {0: "w"}, state=state)
        self.assertIs(transport.state, state)
        transport.write(b"x")
        self.assertEqual(state.writtenTo(0), b"x")


class SpawnTests(SynchronousTestCase):
    """
    L{MemoryProcessReactor.spawnProcess} records the call and connects the
    protocol.
    """

    def test_recorded(self) -> None:
        """
        Every argument is recorded in a L{SpawnedProcess}, txspawn's keyword
        options included.
        """
        reactor, proto, transport = spawn(
            env={"A": "1"}, path="/tmp", uid=5, gid=6, processGroup=0
        )
        self.assertEqual(
            reactor.spawned,
            [
                SpawnedProcess(
                    protocol=proto,
                    executable="prog",
                    args=("prog", "arg"),
                    env={"A": "1"},
                    path="/tmp",
                    uid=5,
                    gid=6,
                    usePTY=False,
                    childFDs=None,
                    options={"processGroup": 0},
                    transport=transport,
                )
            ],
        )
        self.assertEqual(reactor.transports, [transport])

    def test_connectedSynchronously(self) -> None:
        """
        C{makeConnection} has run when C{spawnProcess} returns, with the
        returned transport, as on a real reactor.
        """
        _, proto, transport = spawn()
        self.assertIs(proto.transport, transport)
        self.assertEqual(proto.events, [("connectionMade", None)])

    def test_pids(self) -> None:
        """
        Each child gets the next pid.
        """
        reactor, _, first = spawn()
        _, _, second = spawn(reactor)
        self.assertEqual((first.pid, second.pid), (1000, 1001))

    def test_spawnError(self) -> None:
        """
        With C{spawnError} set, C{spawnProcess} raises it, connects nothing
        and records nothing.
        """
        reactor = MemoryProcessReactor()
        error = SpawnError.fromErrno(errno.ENOENT, ChildSetupStage.EXEC, "prog")
        reactor.spawnError = error
        proto = Recorder()
        exc = self.assertRaises(
            SpawnError, reactor.spawnProcess, proto, "prog", ["prog"]
        )
        self.assertIs(exc, error)
        self.assertEqual((proto.events, reactor.spawned), ([], []))

    def test_ptyWithChildFDs(self) -> None:
        """
        C{usePTY} with C{childFDs} is a L{ValueError}, as on a real reactor.
        """
        reactor = MemoryProcessReactor()
        self.assertRaises(
            ValueError,
            reactor.spawnProcess,
            Recorder(),
            "prog",
            ["prog"],
            usePTY=True,
            childFDs={0: "w"},
        )
        self.assertEqual(reactor.spawned, [])

    def test_clock(self) -> None:
        """
        The reactor is a clock: delayed calls run when it is advanced.
        """
        reactor = MemoryProcessReactor()
        called: list[float] = []
        reactor.callLater(2, lambda: called.append(reactor.seconds()))
        reactor.advance(1)
        self.assertEqual(called, [])
        reactor.advance(1)
        self.assertEqual(called, [2.0])

    def test_processGroup(self) -> None:
        """
        A child spawned with C{processGroup=0} or C{newSession=True}
        leads a group: C{transport.processGroup} is its pid.
        """
        _, _, plain = spawn()
        _, _, group = spawn(processGroup=0)
        _, _, session = spawn(newSession=True)
        self.assertEqual(
            (plain.processGroup, group.processGroup, session.processGroup),
            (None, group.pid, session.pid),
        )


class ChildSideTests(SynchronousTestCase):
    """
    The test plays the child and the protocol sees Twisted's callback
    contract.
    """

    def test_dataFromChild(self) -> None:
        """
        C{dataFromChild} calls C{childDataReceived}.
        """
        _, proto, transport = spawn()
        transport.dataFromChild(1, b"out")
        transport.dataFromChild(2, b"err")
        self.assertEqual(
            proto.events[1:], [("data", (1, b"out")), ("data", (2, b"err"))]
        )

    def test_dataFromChildBadFD(self) -> None:
        """
        Output on an fd the parent does not read, or on a closed pipe, is a
        mistake in the test: L{ValueError}.  Non-bytes is a L{TypeError}.
        """
        _, _, transport = spawn()
        self.assertRaises(ValueError, transport.dataFromChild, 0, b"x")
        self.assertRaises(ValueError, transport.dataFromChild, 5, b"x")
        self.assertRaises(TypeError, transport.dataFromChild, 1, "text")
        transport.closeFromChild(1)
        self.assertRaises(ValueError, transport.dataFromChild, 1, b"x")

    def test_exit(self) -> None:
        """
        C{exit(0)} calls C{processExited} with L{ProcessDone} (pid already
        C{None}), closes every pipe (C{childConnectionLost} once each) and
        then calls C{processEnded}.
        """
        _, proto, transport = spawn()
        transport.exit(0)
        self.assertEqual(
            proto.events[1:],
            [("exited", None), ("lost", 0), ("lost", 1), ("lost", 2), ("ended", None)],
        )
        reason: Any = proto.reasons["ended"].value
        self.assertIsInstance(reason, ProcessDone)
        self.assertEqual((reason.status, transport.status), (0, 0))
        self.assertTrue(transport.state.ended)

    def test_exitCode(self) -> None:
        """
        C{exit(3)} gives L{ProcessTerminated} with C{exitCode=3} and a
        classic status.
        """
        _, proto, transport = spawn()
        transport.exit(3)
        value: Any = proto.reasons["ended"].value
        self.assertIsInstance(value, ProcessTerminated)
        self.assertEqual((value.exitCode, value.signal), (3, None))
        self.assertTrue(os.WIFEXITED(value.status))
        self.assertEqual(os.WEXITSTATUS(value.status), 3)

    def test_kill(self) -> None:
        """
        C{kill(SIGTERM)} gives L{ProcessTerminated} with the signal and a
        status for which C{os.WIFSIGNALED} holds; C{coreDumped} sets
        C{WCOREDUMP}.
        """
        _, proto, transport = spawn()
        transport.kill(signal.SIGSEGV, coreDumped=True)
        value: Any = proto.reasons["exited"].value
        self.assertEqual((value.exitCode, value.signal), (None, signal.SIGSEGV))
        self.assertTrue(os.WIFSIGNALED(value.status))
        self.assertTrue(os.WCOREDUMP(value.status))

    def test_badExit(self) -> None:
        """
        Exit codes and signals out of range are L{ValueError}s.
        """
        _, _, transport = spawn()
        self.assertRaises(ValueError, transport.exit, 256)
        self.assertRaises(ValueError, transport.exit, -1)
        self.assertRaises(ValueError, transport.kill, 0)
        self.assertRaises(ValueError, transport.kill, 200)
        self.assertFalse(transport.state.reaped)

    def test_rusage(self) -> None:
        """
        The rusage given to C{exit} is on the reasons (as C{.rusage}, as
        txspawn's transports report it) and on the transport.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, proto, transport = spawn()
        transport.exit(0, rusage=usage)
        exited: Any = proto.reasons["exited"].value
        ended: Any = proto.reasons["ended"].value
        self.assertIs(exited.rusage, usage)
        self.assertIs(ended.rusage, usage)
        self.assertIs(transport.rusage, usage)

    def test_pipesHeldOpen(self) -> None:
        """
        With C{closePipes=False} (a grandchild holds the pipes),
        C{processEnded} waits until the last pipe closes.
        """
        _, proto, transport = spawn()
        transport.exit(0, closePipes=False)
        self.assertNotIn("ended", proto.reasons)
        transport.closeFromChild(1)
        transport.closeFromChild(2)
        self.assertNotIn("ended", proto.reasons)
        transport.closeStdin()
        self.assertIn("ended", proto.reasons)

    def test_exitTwice(self) -> None:
        """
        A child exits once: a second exit raises L{ProcessExitedAlready}.
        """
        _, proto, transport = spawn()
        transport.exit(0)
        self.assertRaises(ProcessExitedAlready, transport.exit, 0)
        self.assertEqual([e for e, _ in proto.events].count("ended"), 1)

    def test_pty(self) -> None:
        """
        A pty transport has output on fd 1 only and never calls
        C{childConnectionLost}, as Twisted's C{PTYProcess}.
        """
        _, proto, transport = spawn(usePTY=True)
        transport.dataFromChild(1, b"tty")
        self.assertRaises(ValueError, transport.dataFromChild, 2, b"x")
        transport.exit(0)
        self.assertEqual(
            proto.events[1:], [("data", (1, b"tty")), ("exited", None), ("ended", None)]
        )

    def test_inheritedFD(self) -> None:
        """
        An inherited fd (a parent fd number in C{childFDs}) is not a pipe:
        it never delays C{processEnded}.
        """
        _, proto, transport = spawn(childFDs={0: 0, 1: "r"})
        transport.exit(0)
        self.assertEqual(
            proto.events[1:], [("exited", None), ("lost", 1), ("ended", None)]
        )


class ParentSideTests(SynchronousTestCase):
    """
    What the code under test does to the transport is recorded.
    """

    def test_writes(self) -> None:
        """
        C{write}, C{writeSequence} and C{writeToChild} are recorded per fd.
        """
        _, _, transport = spawn(childFDs={0: "w", 1: "r", 3: "w"})
        transport.write(b"a")
        transport.writeSequence([b"b", b"c"])
        transport.writeToChild(3, b"three")
        self.assertEqual(transport.state.writtenTo(0), b"abc")
        self.assertEqual(transport.state.written[3], [b"three"])

    def test_writeClosed(self) -> None:
        """
        Writing to a closed or read-only fd raises L{KeyError}, as Twisted's
        C{Process.writeToChild} does.
        """
        _, _, transport = spawn()
        self.assertRaises(KeyError, transport.writeToChild, 1, b"x")
        transport.closeStdin()
        self.assertRaises(KeyError, transport.write, b"x")

    def test_closeFDs(self) -> None:
        """
        The close methods are recorded and report the pipe lost.
        """
        _, proto, transport = spawn()
        transport.closeStdin()
        transport.closeStdout()
        transport.closeStderr()
        self.assertEqual(transport.state.closedFDs, [0, 1, 2])
        self.assertEqual(proto.events[1:], [("lost", 0), ("lost", 1), ("lost", 2)])
        self.assertEqual(transport.state.openPipes, set())

    def test_loseConnection(self) -> None:
        """
        C{loseConnection} closes 0, 1 and 2 and is recorded.
        """
        _, _, transport = spawn()
        transport.loseConnection()
        self.assertTrue(transport.state.lost)
        self.assertEqual(transport.state.closedFDs, [0, 1, 2])

    def test_signals(self) -> None:
        """
        C{signalProcess} records signal numbers (names normalised); the
        fake child does not die of them.
        """
        _, _, transport = spawn()
        transport.signalProcess("TERM")
        transport.signalProcess(signal.SIGUSR1)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGUSR1])
        self.assertFalse(transport.state.reaped)

    def test_badSignal(self) -> None:
        """
        An unknown signal name is a L{ValueError}; a non-int, non-str a
        L{TypeError}.
        """
        _, _, transport = spawn()
        self.assertRaises(ValueError, transport.signalProcess, "USR1")
        self.assertRaises(TypeError, transport.signalProcess, 1.5)
        self.assertEqual(transport.state.signals, [])

    def test_signalAfterExit(self) -> None:
        """
        Once the child was reaped, signalling raises L{ProcessExitedAlready},
        for the child and for its group.
        """
        _, _, transport = spawn(processGroup=0)
        transport.exit(0)
        self.assertRaises(ProcessExitedAlready, transport.signalProcess, "KILL")
        self.assertRaises(ProcessExitedAlready, transport.signalProcessGroup, "KILL")

    def test_groupSignals(self) -> None:
        """
        C{signalProcessGroup} is recorded for a group leader and refused
        with L{ValueError} for a child that leads no group.
        """
        _, _, plain = spawn()
        self.assertRaises(ValueError, plain.signalProcessGroup, "TERM")
        _, _, leader = spawn(processGroup=0)
        leader.signalProcessGroup("TERM")
        self.assertEqual(leader.state.groupSignals, [signal.SIGTERM])
        self.assertEqual(leader.state.signals, [])

    def test_pauseResume(self) -> None:
        """
        Pausing and resuming are recorded.
        """
        _, _, transport = spawn()
        transport.pauseProducing()
        self.assertTrue(transport.state.paused)
        transport.resumeProducing()
        transport.pauseProducing()
        self.assertEqual(
            (transport.state.paused, transport.state.pauseCount), (True, 2)
        )
        transport.resumeProducing()
        self.assertFalse(transport.state.paused)

    def test_stopProducing(self) -> None:
        """
        C{stopProducing} loses the connection.
        """
        _, _, transport = spawn()
        transport.stopProducing()
        self.assertTrue(transport.state.lost)

    def test_producer(self) -> None:
        """
        A registered producer is recorded; registering a second one is a
        L{RuntimeError}; unregistering forgets it.
        """
        _, _, transport = spawn()
        producer = object()
        transport.registerProducer(producer, True)  # type: ignore[arg-type]
        self.assertEqual(
            (transport.state.producer, transport.state.streaming), (producer, True)
        )
        self.assertRaises(RuntimeError, transport.registerProducer, producer, False)
        transport.unregisterProducer()
        self.assertIsNone(transport.state.producer)

    def test_addresses(self) -> None:
        """
        C{getHost} and C{getPeer} return addresses (of nothing).
        """
        _, _, transport = spawn()
        self.assertEqual(transport.getHost(), transport.getPeer())

    def test_repr(self) -> None:
        """
        The repr names the pid and the status.
        """
        _, _, transport = spawn()
        self.assertEqual(repr(transport), "<FakeProcessTransport pid=1000 status=-1>")


@implementer(IProcessStateObserver)
class StateRecorder(Recorder):
    """
    A recorder that opted into stop/continue notifications.
    """

    def processStopped(self, signal: int) -> None:
        self.events.append(("stopped", signal))

    def processContinued(self) -> None:
        self.events.append(("continued", None))


class ManagedTransportTests(SynchronousTestCase):
    """
    The fake is an L{IManagedProcessTransport}, as txspawn's transports are.
    """

    def test_interface(self) -> None:
        """
        L{FakeProcessTransport} provides L{IManagedProcessTransport}.
        """
        _, _, transport = spawn()
        self.assertTrue(verifyObject(IManagedProcessTransport, transport))

    def test_leadership(self) -> None:
        """
        C{processGroup=0}, C{newSession=True} and C{usePTY} make the child
        lead a group; joining an existing group (a pgid) does not.
        """
        _, _, joins = spawn(processGroup=77)
        _, _, pty = spawn(usePTY=True)
        self.assertIsNone(joins.processGroup)
        self.assertEqual(pty.processGroup, pty.pid)

    def test_terminate(self) -> None:
        """
        C{terminate(killAfter)} sends C{SIGTERM} now and C{SIGKILL} after
        the grace period on the reactor's clock; a second call while it is
        in progress does nothing.
        """
        reactor, _, transport = spawn()
        transport.terminate(2)
        transport.terminate(0)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        self.assertTrue(transport.state.terminating)
        reactor.advance(2)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertFalse(transport.state.terminating)

    def test_terminateGroup(self) -> None:
        """
        A group leader's termination goes to the group; if the leader exits
        during it, the group gets C{SIGKILL} before the leader is reaped
        (for members that may remain), and the pending C{SIGKILL} is
        cancelled.
        """
        reactor, _, transport = spawn(processGroup=0)
        transport.terminate(5)
        transport.exit(0)
        self.assertEqual(transport.state.groupSignals, [signal.SIGTERM, signal.SIGKILL])
        self.assertEqual(transport.state.signals, [])
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_terminateErrors(self) -> None:
        """
        C{terminate} validates C{killAfter}, needs a clock, and raises
        L{ProcessExitedAlready} after the exit.
        """
        _, _, transport = spawn()
        self.assertRaises(ValueError, transport.terminate, -1)
        self.assertRaises(TypeError, transport.terminate, "5")
        clockless = FakeProcessTransport(Recorder(), 5, {})
        self.assertRaises(RuntimeError, clockless.terminate)
        transport.exit(0)
        self.assertRaises(ProcessExitedAlready, transport.terminate)

    def test_timeoutOption(self) -> None:
        """
        The C{timeout} spawn option terminates the child when it expires
        (C{timedOut} is set), with the C{killAfter} grace period.
        """
        reactor, _, transport = spawn(timeout=10, killAfter=1)
        reactor.advance(10)
        self.assertTrue(transport.timedOut)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        reactor.advance(1)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])

    def test_timeoutCancelledByExit(self) -> None:
        """
        A child that exits in time leaves no timer behind.
        """
        reactor, _, transport = spawn(timeout=10)
        transport.exit(0)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertFalse(transport.timedOut)

    def test_badLifetimeOptions(self) -> None:
        """
        Bad lifetime options are refused as txspawn's reactors refuse them,
        before anything is recorded.
        """
        reactor = MemoryProcessReactor()
        self.assertRaises(
            ValueError, reactor.spawnProcess, Recorder(), "p", ["p"], killAfter=1
        )
        self.assertRaises(
            ValueError, reactor.spawnProcess, Recorder(), "p", ["p"], timeout=0
        )
        self.assertEqual(reactor.spawned, [])

    def test_closePipesAfterExit(self) -> None:
        """
        With C{closePipesAfterExit}, pipes still held after the exit are
        closed that many seconds later, and C{processEnded} comes.
        """
        reactor, proto, transport = spawn(closePipesAfterExit=3)
        transport.exit(0, closePipes=False)
        reactor.advance(2.9)
        self.assertNotIn("ended", proto.reasons)
        reactor.advance(0.1)
        self.assertIn("ended", proto.reasons)

    def test_exitListeners(self) -> None:
        """
        Exit listeners are called with the transport after C{processEnded};
        a removed one is not; C{whenEnded} fires with the reason instance.
        """
        _, proto, transport = spawn()
        calls: list[tuple[object, dict[str, Failure]]] = []
        transport.addExitListener(lambda t: calls.append((t, proto.reasons.copy())))
        removed: list[object] = []
        transport.addExitListener(removed.append)
        transport.removeExitListener(removed.append)
        self.assertRaises(ValueError, transport.removeExitListener, removed.append)
        ended = transport.whenEnded()
        self.assertNoResult(ended)
        transport.exit(0, rusage=None)
        self.assertEqual(len(calls), 1)
        listenedTransport, reasonsThen = calls[0]
        self.assertIs(listenedTransport, transport)
        self.assertIn("ended", reasonsThen)
        self.assertIsInstance(self.successResultOf(ended), ProcessDone)
        self.assertEqual(removed, [])
        late: list[object] = []
        transport.addExitListener(late.append)
        self.assertEqual(late, [transport])

    def test_spawnedPidNamesEndedChild(self) -> None:
        """
        As on txspawn's transports, C{pid} becomes C{None} when the fake
        child exits while C{spawnedPid} keeps the pid it was given, so an
        exit listener can name the child that ended.
        """
        reactor = MemoryProcessReactor()
        _, _, first = spawn(reactor)
        _, _, second = spawn(reactor)
        self.assertEqual((first.pid, first.spawnedPid), (1000, 1000))
        self.assertEqual((second.pid, second.spawnedPid), (1001, 1001))
        named: list[tuple[int | None, int]] = []
        second.addExitListener(lambda t: named.append((t.pid, t.spawnedPid)))
        second.kill(9)
        self.assertEqual(named, [(None, 1001)])
        self.assertEqual(repr(second), "<FakeProcessTransport pid=1001 status=9>")

    def test_stopContinue(self) -> None:
        """
        C{stopChild}/C{continueChild} reach a protocol that provides
        L{IProcessStateObserver}; others are not bothered.
        """
        reactor = MemoryProcessReactor()
        observer = StateRecorder()
        transport = reactor.spawnProcess(observer, "p", ["p"])
        transport.stopChild(signal.SIGTSTP)
        self.assertTrue(transport.state.stopped)
        transport.continueChild()
        self.assertEqual(
            observer.events[1:], [("stopped", signal.SIGTSTP), ("continued", None)]
        )
        _, plain, other = spawn()
        other.stopChild()
        other.continueChild()
        self.assertEqual(plain.events, [("connectionMade", None)])
        transport.exit(0)
        self.assertRaises(ProcessExitedAlready, transport.stopChild)
        self.assertRaises(ProcessExitedAlready, transport.continueChild)
