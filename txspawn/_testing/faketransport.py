# -*- test-case-name: tests.test_testing -*-
"""
The fake process transport of L{txspawn.testing}: an
L{IManagedProcessTransport} for a child that does not exist.

The test plays the child through the half L{FakeProcessTransport} builds on,
L{txspawn._testing.fakechild.FakeChild} (L{FakeChild.dataFromChild},
L{FakeChild.exit}, ...).  This module is the other half, what the code
under test does to the transport: writes and closes, signals,
C{terminate()} and the C{timeout} option, exit listeners, flow control; all
of it recorded in a L{txspawn.testing.FakeProcessState}.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Iterable

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
    IProducer,
    IPushProducer,
)
from zope.interface import implementer

from txspawn._testing.fakechild import FakeChild
from txspawn._transport.exitlisteners import ExitListener
from txspawn._transport.groupkill import SIGNAL_NAMES, checkSeconds
from txspawn._transport.timelimits import DEFAULT_KILL_AFTER, LifetimeOptions
from txspawn.interfaces import IManagedProcessTransport

__all__ = ["FakeProcessTransport"]


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
class FakeProcessTransport(FakeChild):
    """
    An L{IProcessTransport<twisted.internet.interfaces.IProcessTransport>}
    for a child that does not exist: the test plays the child with the
    methods of L{FakeChild} (L{dataFromChild<FakeChild.dataFromChild>},
    L{exit<FakeChild.exit>}, ...), which call the protocol in the order of
    Twisted's callback contract.

    Pipe closes requested by the parent (C{closeChildFD},
    C{loseConnection}) call C{childConnectionLost} synchronously, where a
    real transport would do it a moment later.

    Like a real transport, this one does not stop a test from delivering
    output while it is paused: check
    L{txspawn.testing.FakeProcessState.paused} to see whether the code
    under test applied backpressure.

    Signals never kill the fake child: they are recorded, and the test
    decides what the child does (L{kill<FakeChild.kill>},
    L{exit<FakeChild.exit>}).  As with txspawn's transports, a
    C{terminate()} (or an expired C{timeout}) that is still in progress when
    a group leader exits sends C{SIGKILL} to the group before the leader is
    reaped, for members that may remain.

    A child spawned with C{cgroup=} has a fake cgroup: C{cgroupPath} is a
    made-up path (nothing is created), L{killTree} and the C{cgroup.kill}
    steps of a termination are recorded in C{state.treeKills}, the
    statistics are what the test gives L{exit<FakeChild.exit>} (C{None}
    by default), and the test plays the end of the tree
    (L{treeEnded<FakeChild.treeEnded>}).

    @ivar timedOut: Whether the C{timeout} option expired.
    """

    timedOut: bool = False
    _killCall: IDelayedCall | None = None
    _timeoutCall: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<FakeProcessTransport pid={self.spawnedPid} status={self.status}>"

    # -- IProcessTransport / ITransport: writes and closes ---------------------

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

    # -- signals, terminate() and the timeout option ---------------------------

    def signalProcess(self, signalID: str | int) -> None:
        """
        Record a signal sent to the child.  The fake child does not die of
        it: the test decides what happens (L{kill<FakeChild.kill>},
        L{exit<FakeChild.exit>}).

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
        if self.cgroupPath is not None:
            self.state.treeKills.append("terminate")

    def killTree(self) -> None:
        """
        Record a C{cgroup.kill} of the child's (fake) cgroup in
        C{state.treeKills}, as C{"killTree"}; nothing once its tree ended.
        As on a real transport, it works after the child exited.

        @raise ValueError: The child has no cgroup (spawned without
            C{cgroup=}, or a best-effort one was unavailable).
        """
        if self._cgroup is None:
            why = (
                f" ({self.cgroupUnavailable})"
                if self.cgroupUnavailable is not None
                else ": spawn it with cgroup=Cgroup(...)"
            )
            raise ValueError(
                f"the child (pid {self.spawnedPid}) has no cgroup of its own{why}"
            )
        if self.cgroupPath is not None:
            self.state.treeKills.append("killTree")

    def _signalTarget(self, number: int) -> None:
        if self.processGroup is not None:
            self.state.groupSignals.append(number)
        else:
            self.state.signals.append(number)

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

    def _beforeReap(self) -> None:
        """
        The child exited: the C{timeout} stops, and a termination in
        progress ends, after a last C{SIGKILL} to the group the child leads.
        """
        self._cancel("_timeoutCall")
        if self.state.terminating:
            self._cancel("_killCall")
            self.state.terminating = False
            if self.processGroup is not None:
                # What txspawn does before reaping a leader that exited
                # during a termination: kill what may remain of its group.
                self.state.groupSignals.append(int(_signal.SIGKILL))
            if self.cgroupPath is not None:
                # ... and of its cgroup.
                self.state.treeKills.append("terminate")

    # -- exit listeners and addresses ------------------------------------------

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

    # -- IPushProducer / IConsumer ---------------------------------------------

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
