# -*- test-case-name: tests.test_testing -*-
"""
Verified fakes for unit-testing code that spawns processes, without spawning.

L{MemoryProcessReactor} is a L{MemoryReactorClock} (so it also provides
L{IReactorTime}: drive timeouts with C{reactor.advance}) that provides
L{IReactorProcess}.  Each C{spawnProcess} call is recorded as a
L{SpawnedProcess} and answered with a L{FakeProcessTransport}; the protocol's
C{makeConnection} runs synchronously inside C{spawnProcess}, as it does on a
real reactor.

The test then plays the child's part on the transport:

    - L{FakeProcessTransport.dataFromChild} delivers output
      (C{childDataReceived});
    - L{FakeProcessTransport.closeFromChild} closes one of the child's pipes
      (C{childConnectionLost});
    - L{FakeProcessTransport.exit} and L{FakeProcessTransport.kill} end the
      child with a classic wait status, building the same
      L{ProcessDone}/L{ProcessTerminated} reasons a real transport would
      (C{processExited}, then every pipe closed, then C{processEnded}, then
      the exit listeners);
    - L{FakeProcessTransport.stopChild} and
      L{FakeProcessTransport.continueChild} report stops and continues to a
      protocol that provides L{IProcessStateObserver}.

The transport is an L{IManagedProcessTransport} like txspawn's own: process
groups, C{terminate()}, exit listeners, C{whenEnded()}; and the reactor
honours the lifetime options (C{timeout}, C{killAfter},
C{closePipesAfterExit}) with its clock.

Whatever the code under test does to the transport (writes, closed fds,
signals, pausing) is recorded in a separate L{FakeProcessState} object,
C{transport.state}, which tests inspect.

The fakes are checked with C{verifyClass} when this module is imported, and
their behaviour is tested in C{tests.test_testing}, so they cannot drift from
the interfaces they claim.

@since: txspawn 0.1
"""

from __future__ import annotations

import os
import resource
import signal as _signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from attrs import Factory, define, field, frozen
from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProcessProtocol,
    IProcessTransport,
    IProducer,
    IPushProducer,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyClass

from txspawn._exitlisteners import ExitListener, ExitNotifier
from txspawn._groupkill import checkSeconds
from txspawn._lifetime import DEFAULT_KILL_AFTER, LifetimeOptions, splitLifetimeOptions
from txspawn.interfaces import IManagedProcessTransport, IProcessStateObserver

__all__ = [
    "FakeProcessState",
    "FakeProcessTransport",
    "MemoryProcessReactor",
    "SpawnedProcess",
]

# Twisted's constructors are unannotated; typed aliases keep this module
# strictly typed.
_failure: Callable[[BaseException], Failure] = Failure
_done: Callable[[int], ProcessDone] = ProcessDone
_terminated: Callable[[int | None, int | None, int], ProcessTerminated] = (
    ProcessTerminated
)

#: The signal names L{IProcessTransport.signalProcess} accepts as strings.
_SIGNAL_NAMES = ("HUP", "STOP", "INT", "KILL", "TERM")

# A classic wait status: the exit code in the second byte; a signal in the
# low seven bits, with 0x80 set when a core was dumped.
_CORE_FLAG = 0x80


def _signalNumber(signalID: str | int) -> int:
    """
    Normalise a C{signalProcess} argument the way Twisted does.

    @raise ValueError: for a string that is not one of Twisted's names.
    @raise TypeError: for anything that is neither a string nor an int.
    """
    if isinstance(signalID, str):
        if signalID not in _SIGNAL_NAMES:
            raise ValueError(
                f"signalID must be one of {', '.join(_SIGNAL_NAMES)} or a "
                f"signal number, not {signalID!r}"
            )
        return int(getattr(_signal, "SIG" + signalID))
    if isinstance(signalID, bool) or not isinstance(signalID, int):
        raise TypeError(f"signalID must be a str or an int, not {signalID!r}")
    return signalID


@define
class FakeProcessState:
    """
    Everything the code under test did to a L{FakeProcessTransport}, and where
    the fake child is in its life.

    @ivar written: Bytes written to each of the child's fds, in order
        (C{write}/C{writeSequence} go to fd 0).
    @ivar closedFDs: The child fds the parent closed (C{closeChildFD},
        C{closeStdin}..., C{loseConnection}), in call order.
    @ivar signals: Every signal sent to the child (C{signalProcess}, or
        C{terminate} for a child that leads no group), as a number.
    @ivar groupSignals: Every signal sent to the child's process group
        (C{signalProcessGroup}, C{terminate}).
    @ivar lost: Whether C{loseConnection} was called.
    @ivar paused: Whether the transport is currently paused
        (C{pauseProducing} without a later C{resumeProducing}).
    @ivar pauseCount: How many times C{pauseProducing} was called.
    @ivar producer: The producer registered with C{registerProducer}, if any.
    @ivar streaming: Whether that producer is a push producer.
    @ivar status: The child's classic wait status once it exited, else
        C{None}.
    @ivar reaped: Whether the child exited (C{processExited} was called).
    @ivar ended: Whether C{processEnded} was called.
    @ivar openPipes: The child fds that are pipes (or, for a pty, fd 1) and
        still open.
    @ivar terminating: Whether a C{terminate} (or the C{timeout} option) is
        in progress: C{SIGTERM} sent, C{SIGKILL} scheduled.
    @ivar stopped: Whether the fake child is stopped (L{stopChild}).
    """

    written: dict[int, list[bytes]] = Factory(dict)
    closedFDs: list[int] = Factory(list)
    signals: list[int] = Factory(list)
    groupSignals: list[int] = Factory(list)
    lost: bool = False
    paused: bool = False
    pauseCount: int = 0
    producer: IProducer | None = None
    streaming: bool | None = None
    status: int | None = None
    reaped: bool = False
    ended: bool = False
    openPipes: set[int] = Factory(set)
    terminating: bool = False
    stopped: bool = False

    def writtenTo(self, childFD: int = 0) -> bytes:
        """
        All the bytes written to one of the child's fds.

        @param childFD: The child fd (0, stdin, by default).
        @return: The concatenation of every write to it.
        """
        return b"".join(self.written.get(childFD, []))


@implementer(IAddress)
@frozen
class _ProcessAddress:
    """
    The address of a (fake) process: there is nothing to say.
    """


@implementer(IManagedProcessTransport, IPushProducer, IConsumer)
class FakeProcessTransport:
    """
    An L{IProcessTransport} for a child that does not exist: the test plays
    the child.

    The transport follows Twisted's callback contract: C{processExited}
    when the child exits (with C{pid} already C{None}), C{childConnectionLost}
    once per pipe, and C{processEnded} exactly once, after the exit I{and}
    after every pipe closed, whichever comes last.  Pipe closes requested by
    the parent (C{closeChildFD}, C{loseConnection}) call
    C{childConnectionLost} synchronously, where a real transport would do it
    a moment later.

    Like a real transport, this one does not stop a test from delivering
    output while it is paused: check L{FakeProcessState.paused} to see
    whether the code under test applied backpressure.

    Signals never kill the fake child: they are recorded, and the test
    decides what the child does (L{kill}, L{exit}).  As with txspawn's
    transports, a C{terminate()} (or an expired C{timeout}) that is still
    in progress when a group leader exits sends C{SIGKILL} to the group
    before the leader is reaped, for members that may remain.

    @ivar proto: The connected protocol.
    @ivar pid: The fake pid; C{None} once the child exited.
    @ivar status: The classic wait status; -1 while the child runs.
    @ivar rusage: The resource usage given to L{exit}/L{kill}, if any.
    @ivar processGroup: The process group the child leads (its pid) when it
        was spawned with C{processGroup=0}, C{newSession=True} or
        C{usePTY}, else C{None}.
    @ivar timedOut: Whether the C{timeout} option expired.
    @ivar state: The L{FakeProcessState} recording what was done.
    """

    def __init__(
        self,
        proto: IProcessProtocol,
        pid: int,
        childFDs: Mapping[int, int | str],
        usePTY: bool = False,
        leadsGroup: bool = False,
        state: FakeProcessState | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param proto: The protocol to drive.
        @param pid: The pid to pretend the child has.
        @param childFDs: The child's fds as given to C{spawnProcess}:
            C{"r"} (the parent reads: output the test delivers with
            L{dataFromChild}), C{"w"} (the parent writes) or an inherited
            parent fd number (not a pipe: never reported closed).
        @param usePTY: Whether this is a pty transport: then output arrives
            as fd 1 only and C{childConnectionLost} is never called, as with
            Twisted's C{PTYProcess}.
        @param leadsGroup: Whether the child leads its own process group.
        @param state: Where to record things (a new one by default).
        @param clock: Schedules the C{SIGKILL} of C{terminate} and the
            lifetime timers; without one, C{terminate} raises
            L{RuntimeError}.
        """
        self.proto: IProcessProtocol | None = proto
        self.pid: int | None = pid
        self.status: int = -1
        self.rusage: resource.struct_rusage | None = None
        self.processGroup: int | None = pid if leadsGroup else None
        self.timedOut = False
        self.state = FakeProcessState() if state is None else state
        self._clock = clock
        self._notifier = ExitNotifier()
        self._killCall: IDelayedCall | None = None
        self._timeoutCall: IDelayedCall | None = None
        self._closeCall: IDelayedCall | None = None
        self._closePipesAfterExit: float | None = None
        self._usePTY = usePTY
        if usePTY:
            self._readFDs: frozenset[int] = frozenset({1})
            self._writeFDs: frozenset[int] = frozenset({0})
            self.state.openPipes.add(1)
        else:
            self._readFDs = frozenset(fd for fd, v in childFDs.items() if v == "r")
            self._writeFDs = frozenset(fd for fd, v in childFDs.items() if v == "w")
            self.state.openPipes.update(self._readFDs | self._writeFDs)
        self._originalPid = pid

    def __repr__(self) -> str:
        return f"<FakeProcessTransport pid={self._originalPid} status={self.status}>"

    # -- the test's side: play the child -------------------------------------

    def dataFromChild(self, childFD: int, data: bytes) -> None:
        """
        The child wrote C{data} on C{childFD}: deliver it to the protocol.

        @raise ValueError: if C{childFD} is not an open pipe the parent reads
            from (the real transport could never deliver that).
        @raise TypeError: if C{data} is not bytes.
        """
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if childFD not in self._readFDs:
            raise ValueError(f"childFD {childFD} is not a pipe the parent reads")
        if childFD not in self.state.openPipes:
            raise ValueError(f"childFD {childFD} is already closed")
        if self.proto is not None:
            self.proto.childDataReceived(childFD, data)

    def closeFromChild(self, childFD: int) -> None:
        """
        The child closed its end of the pipe C{childFD} (or exited and the
        pipe drained): call C{childConnectionLost}, then C{processEnded} if
        that was the last pipe of a child that exited.

        @raise ValueError: if C{childFD} is not an open pipe.
        """
        if childFD not in self.state.openPipes:
            raise ValueError(f"childFD {childFD} is not an open pipe")
        self._pipeClosed(childFD)

    def exit(
        self,
        code: int = 0,
        *,
        rusage: resource.struct_rusage | None = None,
        closePipes: bool = True,
    ) -> None:
        """
        The child calls C{_exit(code)}.

        @param code: The exit code, 0 to 255.
        @param rusage: The resource usage to report (as C{.rusage} on the
            reason and on the transport), as txspawn's own transports do.
        @param closePipes: Whether the child's pipes close too (the usual
            case).  C{False} models a grandchild that still holds them: the
            test calls L{closeFromChild} later, and C{processEnded} waits.
        @raise ValueError: if C{code} is out of range.
        """
        if not 0 <= code <= 255:
            raise ValueError(f"code must be between 0 and 255, not {code!r}")
        self.reap(code << 8, rusage=rusage, closePipes=closePipes)

    def kill(
        self,
        signalNumber: int,
        *,
        coreDumped: bool = False,
        rusage: resource.struct_rusage | None = None,
        closePipes: bool = True,
    ) -> None:
        """
        The child dies of C{signalNumber}.

        @param signalNumber: The signal, 1 to 127.
        @param coreDumped: Whether it dumped core (C{os.WCOREDUMP}).
        @param rusage: See L{exit}.
        @param closePipes: See L{exit}.
        @raise ValueError: if C{signalNumber} is out of range.
        """
        if not 0 < signalNumber < 0x7F:
            raise ValueError(
                f"signalNumber must be between 1 and 126, not {signalNumber!r}"
            )
        status = signalNumber | (_CORE_FLAG if coreDumped else 0)
        self.reap(status, rusage=rusage, closePipes=closePipes)

    def reap(
        self,
        status: int,
        *,
        rusage: resource.struct_rusage | None = None,
        closePipes: bool = True,
    ) -> None:
        """
        The child was reaped with the classic wait status C{status}: call
        C{processExited}, close the pipes (unless told not to), and call
        C{processEnded} once no pipe is left open.

        @raise ProcessExitedAlready: if the child was already reaped.
        """
        if self.state.reaped:
            raise ProcessExitedAlready()
        self._cancel("_timeoutCall")
        if self.state.terminating:
            self._cancel("_killCall")
            self.state.terminating = False
            if self.processGroup is not None:
                # What txspawn does before reaping a leader that exited
                # during a termination: kill what may remain of its group.
                self.state.groupSignals.append(int(_signal.SIGKILL))
        self.state.reaped = True
        self.state.stopped = False
        self.state.status = self.status = status
        self.rusage = rusage
        self.pid = None
        if self.proto is not None:
            self.proto.processExited(_failure(self._reason()))
        if closePipes:
            for fd in sorted(self.state.openPipes):
                if fd in self.state.openPipes:
                    self._pipeClosed(fd)
        if (
            self._closePipesAfterExit is not None
            and self.state.openPipes
            and self._clock is not None
        ):
            self._closeCall = self._clock.callLater(
                self._closePipesAfterExit, self._closeAllPipes
            )
        self._maybeEnded()

    def stopChild(self, signalNumber: int = _signal.SIGSTOP) -> None:
        """
        The child was stopped by C{signalNumber}: a protocol that provides
        L{IProcessStateObserver} hears of it (C{processStopped}).

        @raise ProcessExitedAlready: if the child was reaped.
        """
        if self.state.reaped:
            raise ProcessExitedAlready()
        self.state.stopped = True
        if self.proto is not None and IProcessStateObserver.providedBy(self.proto):
            self.proto.processStopped(signalNumber)

    def continueChild(self) -> None:
        """
        The stopped child was continued: a protocol that provides
        L{IProcessStateObserver} hears of it (C{processContinued}).

        @raise ProcessExitedAlready: if the child was reaped.
        """
        if self.state.reaped:
            raise ProcessExitedAlready()
        self.state.stopped = False
        if self.proto is not None and IProcessStateObserver.providedBy(self.proto):
            self.proto.processContinued()

    # -- internals ------------------------------------------------------------

    def _reason(self) -> ProcessDone | ProcessTerminated:
        """
        The exit reason for L{status}, as Twisted's C{Process._getReason}
        builds it, with C{rusage} attached as txspawn's transports do.
        """
        status = self.status
        reason: ProcessDone | ProcessTerminated
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            reason = _done(status)
        elif os.WIFEXITED(status):
            reason = _terminated(os.WEXITSTATUS(status), None, status)
        else:
            reason = _terminated(None, os.WTERMSIG(status), status)
        reason.rusage = self.rusage  # type: ignore[union-attr]
        return reason

    def _pipeClosed(self, childFD: int) -> None:
        self.state.openPipes.discard(childFD)
        if self.proto is not None and not self._usePTY:
            self.proto.childConnectionLost(childFD)
        self._maybeEnded()

    def _maybeEnded(self) -> None:
        if self.state.reaped and not self.state.openPipes and not self.state.ended:
            self.state.ended = True
            self._cancel("_closeCall")
            proto, self.proto = self.proto, None
            reason = self._reason()
            if proto is not None:
                proto.processEnded(_failure(reason))
            self._notifier.fire(self, reason)

    def _closeAllPipes(self) -> None:
        self._closeCall = None
        for fd in sorted(self.state.openPipes):
            if fd in self.state.openPipes:
                self._pipeClosed(fd)

    def _cancel(self, name: str) -> None:
        call: IDelayedCall | None = getattr(self, name)
        setattr(self, name, None)
        if call is not None and call.active():
            call.cancel()

    def _armLifetime(self, lifetime: LifetimeOptions) -> None:
        """
        Start the timers of the lifetime spawn options, as txspawn's
        transports do.
        """
        self._closePipesAfterExit = lifetime.closePipesAfterExit
        if lifetime.timeout is not None:
            assert self._clock is not None
            self._timeoutCall = self._clock.callLater(
                lifetime.timeout, self._timeoutExpired, lifetime.killAfter
            )

    def _timeoutExpired(self, killAfter: float) -> None:
        self._timeoutCall = None
        self.timedOut = True
        self.terminate(killAfter)

    # -- IProcessTransport / ITransport: the parent's side -------------------

    def writeToChild(self, childFD: int, data: bytes) -> None:
        """
        Record C{data} written to C{childFD}.

        @raise KeyError: if C{childFD} is not an open pipe the parent writes
            to (as Twisted's C{Process.writeToChild} raises).
        """
        if childFD not in self._writeFDs or childFD not in self.state.openPipes:
            raise KeyError(childFD)
        self.state.written.setdefault(childFD, []).append(data)

    def write(self, data: bytes) -> None:
        """
        Record C{data} written to the child's stdin.
        """
        self.writeToChild(0, data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Record each item of C{data} written to the child's stdin.
        """
        for item in data:
            self.write(item)

    def closeChildFD(self, descriptor: int) -> None:
        """
        Record that the parent closed its end of C{descriptor}; a pipe that
        was open is reported lost to the protocol.
        """
        self.state.closedFDs.append(descriptor)
        if descriptor in self.state.openPipes:
            self._pipeClosed(descriptor)

    def closeStdin(self) -> None:
        """
        Close the child's stdin pipe.
        """
        self.closeChildFD(0)

    def closeStdout(self) -> None:
        """
        Close the child's stdout pipe.
        """
        self.closeChildFD(1)

    def closeStderr(self) -> None:
        """
        Close the child's stderr pipe.
        """
        self.closeChildFD(2)

    def loseConnection(self) -> None:
        """
        Close fds 0, 1 and 2, as Twisted's C{Process.loseConnection} does.
        """
        self.state.lost = True
        for fd in (0, 1, 2):
            self.closeChildFD(fd)

    def signalProcess(self, signalID: str | int) -> None:
        """
        Record a signal sent to the child.  The fake child does not die of
        it: the test decides what happens (L{kill}, L{exit}).

        @raise ProcessExitedAlready: once the child was reaped.
        @raise ValueError: for an unknown signal name.
        """
        number = _signalNumber(signalID)
        if self.state.reaped:
            raise ProcessExitedAlready()
        self.state.signals.append(number)

    def signalProcessGroup(self, signalID: str | int) -> None:
        """
        Record a signal sent to the process group the child leads.

        @raise ProcessExitedAlready: once the child was reaped (the group id
            may then be reused).
        @raise ValueError: if the child does not lead a process group, or
            for an unknown signal name.
        """
        number = _signalNumber(signalID)
        if self.processGroup is None:
            raise ValueError("the child does not lead a process group")
        if self.state.reaped:
            raise ProcessExitedAlready()
        self.state.groupSignals.append(number)

    def terminate(self, killAfter: float = DEFAULT_KILL_AFTER) -> None:
        """
        Record C{SIGTERM} now and C{SIGKILL} C{killAfter} seconds later (on
        the clock), to the group the child leads, else to the child.  A
        second call while one is in progress does nothing.

        @raise ProcessExitedAlready: once the child was reaped.
        @raise TypeError: C{killAfter} is not a number.
        @raise ValueError: C{killAfter} is negative, infinite or NaN.
        @raise RuntimeError: the transport has no clock.
        """
        grace = checkSeconds(killAfter, "killAfter")
        if self.state.reaped:
            raise ProcessExitedAlready()
        if self.state.terminating:
            return
        if self._clock is None:
            raise RuntimeError("terminate() needs a transport built with a clock")
        self.state.terminating = True
        self._signalTarget(int(_signal.SIGTERM))
        self._killCall = self._clock.callLater(grace, self._escalate)

    def _escalate(self) -> None:
        self._killCall = None
        self.state.terminating = False
        self._signalTarget(int(_signal.SIGKILL))

    def _signalTarget(self, number: int) -> None:
        if self.processGroup is not None:
            self.state.groupSignals.append(number)
        else:
            self.state.signals.append(number)

    def addExitListener(self, listener: ExitListener) -> None:
        """
        Call C{listener(transport)} once the process ended, after
        C{processEnded}; at once if it already has.

        @raise TypeError: C{listener} is not callable.
        """
        self._notifier.add(listener)

    def removeExitListener(self, listener: ExitListener) -> None:
        """
        Undo one L{addExitListener}.

        @raise ValueError: C{listener} is not registered.
        """
        self._notifier.remove(listener)

    def whenEnded(self) -> Deferred[ProcessDone | ProcessTerminated]:
        """
        A new L{Deferred} firing, after C{processEnded} and the exit
        listeners, with the exit reason (never a failure).
        """
        return self._notifier.whenEnded()

    def getPeer(self) -> IAddress:
        """
        A process has no peer address worth telling.
        """
        return _ProcessAddress()

    def getHost(self) -> IAddress:
        """
        A process has no host address worth telling.
        """
        return _ProcessAddress()

    # -- IPushProducer / IConsumer -------------------------------------------

    def pauseProducing(self) -> None:
        """
        Record that the parent stopped reading the child's output.
        """
        self.state.paused = True
        self.state.pauseCount += 1

    def resumeProducing(self) -> None:
        """
        Record that the parent reads the child's output again.
        """
        self.state.paused = False

    def stopProducing(self) -> None:
        """
        Stop producing: as a real transport, lose the connection.
        """
        self.loseConnection()

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Record a producer for the child's stdin.

        @raise RuntimeError: if one is registered already.
        """
        if self.state.producer is not None:
            raise RuntimeError("a producer is already registered")
        self.state.producer = producer
        self.state.streaming = streaming

    def unregisterProducer(self) -> None:
        """
        Forget the registered producer.
        """
        self.state.producer = None
        self.state.streaming = None


@frozen
class SpawnedProcess:
    """
    One call to L{MemoryProcessReactor.spawnProcess}, as recorded.

    @ivar protocol: The process protocol passed.
    @ivar executable: The executable passed.
    @ivar args: The argument list passed, as a tuple.
    @ivar env: The environment passed.
    @ivar path: The working directory passed.
    @ivar uid: The uid passed.
    @ivar gid: The gid passed.
    @ivar usePTY: The C{usePTY} passed.
    @ivar childFDs: The C{childFDs} passed (C{None} for the default).
    @ivar options: The txspawn keyword options passed (C{processGroup},
        C{umask}, ...).
    @ivar transport: The L{FakeProcessTransport} returned.
    """

    protocol: IProcessProtocol
    executable: bytes | str
    args: tuple[bytes | str, ...]
    env: Mapping[Any, Any] | None
    path: bytes | str | None
    uid: int | None
    gid: int | None
    usePTY: object
    childFDs: Mapping[int, int | str] | None
    options: Mapping[str, object]
    transport: FakeProcessTransport = field(repr=False)


@implementer(IReactorProcess, IReactorTime)
class MemoryProcessReactor(MemoryReactorClock):
    """
    A fake reactor (a L{MemoryReactorClock}) that fakes spawning processes.

    @ivar spawned: Every L{SpawnedProcess}, in order.
    @ivar spawnError: When set, the next C{spawnProcess} calls raise it
        (e.g. a L{txspawn.errors.SpawnError}) without connecting the
        protocol, as a real failed spawn does.
    @ivar nextPid: The pid the next fake child gets.
    """

    def __init__(self) -> None:
        # MemoryReactorClock.__init__ is unannotated.
        super().__init__()  # type: ignore[no-untyped-call]
        self.spawned: list[SpawnedProcess] = []
        self.spawnError: BaseException | None = None
        self.nextPid = 1000

    @property
    def transports(self) -> list[FakeProcessTransport]:
        """
        The transport of every spawned process, in order.
        """
        return [spawned.transport for spawned in self.spawned]

    def spawnProcess(
        self,
        processProtocol: IProcessProtocol,
        executable: bytes | str,
        args: Sequence[bytes | str] = (),
        env: Mapping[Any, Any] | None = {},
        path: bytes | str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        usePTY: Any = False,
        childFDs: Mapping[int, int | str] | None = None,
        **options: Any,
    ) -> FakeProcessTransport:
        """
        Record the call, connect C{processProtocol} to a new
        L{FakeProcessTransport} and return it.

        The lifetime options (C{timeout}, C{killAfter},
        C{closePipesAfterExit}) are validated and armed on the transport with
        this reactor's clock, as txspawn's reactors do; the other options
        are only recorded.

        @raise ValueError: for C{usePTY} together with C{childFDs}, as a real
            reactor does, or a bad lifetime option.
        @raise TypeError: for a lifetime option that is not a number.
        @raise BaseException: L{spawnError}, when set.
        """
        if usePTY and childFDs is not None:
            raise ValueError("Using childFDs is not supported with usePTY=True.")
        lifetime, _ = splitLifetimeOptions(options)
        if self.spawnError is not None:
            raise self.spawnError
        fds: Mapping[int, int | str] = (
            {0: "w", 1: "r", 2: "r"} if childFDs is None else childFDs
        )
        transport = FakeProcessTransport(
            processProtocol,
            self.nextPid,
            fds,
            usePTY=bool(usePTY),
            # processGroup=0 makes a new group; a pgid joins another one.
            leadsGroup=(
                bool(usePTY)
                or bool(options.get("newSession"))
                or (
                    options.get("processGroup") == 0
                    and options.get("processGroup") is not False
                )
            ),
            clock=self,
        )
        self.nextPid += 1
        self.spawned.append(
            SpawnedProcess(
                protocol=processProtocol,
                executable=executable,
                args=tuple(args),
                env=env,
                path=path,
                uid=uid,
                gid=gid,
                usePTY=usePTY,
                childFDs=childFDs,
                options=dict(options),
                transport=transport,
            )
        )
        processProtocol.makeConnection(transport)
        transport._armLifetime(lifetime)
        return transport


# As twisted.internet.testing does for its fakes: a fake that does not
# provide what it claims fails at import, not in a user's test.
for _iface, _cls in [
    (IManagedProcessTransport, FakeProcessTransport),
    (IProcessTransport, FakeProcessTransport),
    (IPushProducer, FakeProcessTransport),
    (IConsumer, FakeProcessTransport),
    (IReactorProcess, MemoryProcessReactor),
    (IReactorTime, MemoryProcessReactor),
]:
    verifyClass(_iface, _cls)
del _iface, _cls
