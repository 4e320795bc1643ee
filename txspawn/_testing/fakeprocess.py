# -*- test-case-name: tests.test_testing -*-
"""
The fake process transport of L{txspawn.testing}: an
L{IManagedProcessTransport} for a child that does not exist, which the test
plays (L{FakeProcessTransport.dataFromChild},
L{FakeProcessTransport.exit}, ...), recording what the code under test does
to it in a L{FakeProcessState}.
"""

from __future__ import annotations

import resource
import signal as _signal
from collections.abc import Callable, Iterable, Mapping

from attrs import frozen
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
    IProducer,
    IPushProducer,
    IReactorTime,
)
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn._testing.fakestate import FakeProcessState
from txspawn._transport.exitlisteners import ExitListener, ExitNotifier
from txspawn._transport.exitstatus import reasonFromStatus
from txspawn._transport.groupkill import SIGNAL_NAMES, checkSeconds
from txspawn._transport.timelimits import DEFAULT_KILL_AFTER, LifetimeOptions
from txspawn.interfaces import IManagedProcessTransport, IProcessStateObserver

__all__ = ["FakeProcessTransport"]

# Twisted's constructor is unannotated; a typed alias keeps this module
# strictly typed.
_failure: Callable[[BaseException], Failure] = Failure

_log = Logger()

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
        if signalID not in SIGNAL_NAMES:
            raise ValueError(
                f"signalID must be one of {', '.join(SIGNAL_NAMES)} or a "
                f"signal number, not {signalID!r}"
            )
        return int(getattr(_signal, "SIG" + signalID))
    if isinstance(signalID, bool) or not isinstance(signalID, int):
        raise TypeError(f"signalID must be a str or an int, not {signalID!r}")
    return signalID


@implementer(IAddress)
@frozen
class _ProcessAddress:
    """
    The address of a (fake) process: there is nothing to say.
    """


@implementer(IManagedProcessTransport, IPushProducer, IConsumer)
class FakeProcessTransport:
    """
    An L{IProcessTransport<twisted.internet.interfaces.IProcessTransport>}
    for a child that does not exist: the test plays the child.

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
    @ivar spawnedPid: The fake pid, kept after the child exited (what an
        exit listener names the child by).
    @ivar status: The classic wait status; -1 while the child runs.
    @ivar rusage: The resource usage given to L{exit<FakeProcessTransport.exit>}
        or L{kill<FakeProcessTransport.kill>}, if any.
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
        self.spawnedPid: int = pid
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

    def __repr__(self) -> str:
        return f"<FakeProcessTransport pid={self.spawnedPid} status={self.status}>"

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
        if self.proto is not None and self._callProtocol(
            "while calling childDataReceived({fd}):",
            self.proto.childDataReceived,
            childFD,
            data,
        ):
            # As on a real transport: the pipe is lost.
            self._pipeClosed(childFD)

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
            self._callProtocol(
                "while calling processExited:",
                self.proto.processExited,
                _failure(self._reason()),
            )
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
            self._callProtocol(
                "while calling processStopped:", self.proto.processStopped, signalNumber
            )

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
            self._callProtocol(
                "while calling processContinued:", self.proto.processContinued
            )

    # -- internals ------------------------------------------------------------

    def _reason(self) -> ProcessDone | ProcessTerminated:
        """
        The exit reason for L{status}, built as txspawn's transports build
        it (Twisted's C{Process._getReason} mapping, C{rusage} attached).
        """
        return reasonFromStatus(self.status, self.rusage)

    def _callProtocol(
        self, description: str, callback: Callable[..., object], *args: object
    ) -> bool:
        """
        Call one of the protocol's callbacks as txspawn's transports do: an
        exception is logged (critically), never raised to the caller.

        @param description: The log message; C{{fd}} is the first of
            C{args}.
        @return: Whether the callback raised.
        """
        try:
            callback(*args)
        except BaseException:
            _log.failure(
                description, level=LogLevel.critical, fd=args[0] if args else None
            )
            return True
        return False

    def _pipeClosed(self, childFD: int) -> None:
        if childFD not in self.state.openPipes:
            return
        self.state.openPipes.discard(childFD)
        if self.proto is not None and not self._usePTY:
            self._callProtocol(
                "while calling childConnectionLost({fd}):",
                self.proto.childConnectionLost,
                childFD,
            )
        self._maybeEnded()

    def _maybeEnded(self) -> None:
        if self.state.reaped and not self.state.openPipes and not self.state.ended:
            self.state.ended = True
            self._cancel("_closeCall")
            proto, self.proto = self.proto, None
            reason = self._reason()
            if proto is not None:
                self._callProtocol(
                    "while calling processEnded:", proto.processEnded, _failure(reason)
                )
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
