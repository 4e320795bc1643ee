# -*- test-case-name: tests.test_process -*-
"""
The pipe-connected process transport: Twisted's C{IProcessTransport}
contract on top of a txspawn engine and child monitor.

L{Process} opens the pipes a C{childFDs} mapping asks for, has an engine
start the child with them, closes the child's ends, and then turns pipe
events and the monitor's "reaped" notification into the protocol callbacks
in Twisted's order:

  - C{childDataReceived(fd, data)} for each C{"r"} pipe;
  - C{childConnectionLost(fd)} once per pipe (C{"r"} or C{"w"});
  - C{processExited(reason)} once the child is reaped (pipes may still be
    open);
  - C{processEnded(reason)} last, exactly once, when the child is reaped
    I{and} every pipe is closed; C{transport.pid} is already C{None}.

Every protocol callback runs inside C{Logger.failuresHandled}, as in
L{twisted.internet._baseprocess}: an application exception is logged and
never reaches the reactor, and never stops the child from being reaped or
an fd from being closed.

L{ProcessLifecycle} holds what L{Process} and L{txspawn._pty.PTYProcess}
share: the child handle, C{pid}/C{status}/C{rusage}, signalling, and the
"exited" half of the end-of-process bookkeeping.
"""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterable
from typing import TYPE_CHECKING

from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IProcessProtocol,
    IProcessTransport,
    IProducer,
    IReactorFDSet,
)
from twisted.internet.process import ProcessWriter
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn._child import ChildProcess
from txspawn._pipes import PipeReader, openPipe
from txspawn._plan import InheritFD, PipeFromParent, PipeToParent, SpawnPlan
from txspawn._status import reasonForChild

if TYPE_CHECKING:
    from txspawn.interfaces import ISpawner

__all__ = ["Process", "ProcessLifecycle", "killAndReap"]

_log = Logger()

#: The signal names C{signalProcess} accepts as strings (Twisted's list).
_SIGNAL_NAMES = ("HUP", "STOP", "INT", "KILL", "TERM")


def killAndReap(child: ChildProcess) -> None:
    """
    Get rid of a child that was started but cannot be handed to a monitor
    (the transport failed to set up after the engine succeeded).

    Blocking is acceptable here: the child has just been sent SIGKILL, which
    cannot be caught, so C{wait4} returns as soon as the kernel tears it
    down.

    @param child: A started, unreaped child.
    """
    try:
        child.sendSignal(signal.SIGKILL)
    except ProcessExitedAlready:
        pass
    if not child.reaped:
        try:
            _, status, rusage = os.wait4(child.pid, 0)
        except ChildProcessError:
            pass
        else:
            child.status, child.rusage = status, rusage
        # Marks the child reaped (with whatever status we could get).
        child.reapUnknown()
    child.closePidfd()


class ProcessLifecycle:
    """
    The child-process half of a process transport.

    @ivar pid: The child's pid while it runs; C{None} once reaped (before
        C{processExited} is called).
    @ivar status: C{-1} while the child runs (as Twisted's transports); the
        classic wait status once reaped, or C{None} if it is unknown
        (someone else reaped the child).
    @ivar rusage: The child's C{resource.struct_rusage} once reaped, else
        C{None}.
    @ivar proto: The protocol; C{None} once C{processEnded} was delivered.
    @ivar lostProcess: How many of the end conditions happened, for code
        that inspects Twisted's attribute of the same name.
    """

    pid: int | None = None
    status: int | None = -1
    rusage: resource.struct_rusage | None = None
    lostProcess: int = 0
    proto: IProcessProtocol | None = None
    _child: ChildProcess | None = None
    _exited: bool = False

    def signalProcess(self, signalID: str | int) -> None:
        """
        Send a signal to the child, through its pidfd when it has one.

        @param signalID: C{"HUP"}, C{"STOP"}, C{"INT"}, C{"KILL"}, C{"TERM"}
            or a signal number.
        @raise ProcessExitedAlready: The child has been reaped (no syscall
            is made: its pid may already be someone else's).
        """
        if signalID in _SIGNAL_NAMES:
            signalID = int(getattr(signal, f"SIG{signalID}"))
        child = self._child
        if child is None or self.pid is None or child.reaped:
            raise ProcessExitedAlready()
        child.sendSignal(signalID)  # type: ignore[arg-type]

    def _childExited(self, child: ChildProcess) -> None:
        """
        The monitor reaped the child: record the result, tell the protocol
        C{processExited}, and end if the pipes are done too.

        @param child: The reaped child (the one this transport started).
        """
        if self._exited:
            return
        self._exited = True
        self.status = child.status
        self.rusage = child.rusage
        self.pid = None
        self.lostProcess += 1
        proto = self.proto
        if proto is not None:
            with _log.failuresHandled("while calling processExited:"):
                proto.processExited(_failure(reasonForChild(child)))
        self.maybeCallProcessEnded()

    def _pipesDone(self) -> bool:
        """
        @return: whether every pipe/pty of the transport is closed.
        """
        raise NotImplementedError

    def maybeCallProcessEnded(self) -> None:
        """
        Deliver C{processEnded} if the child is reaped and every pipe is
        closed, exactly once.
        """
        if not self._exited or not self._pipesDone():
            return
        proto, self.proto = self.proto, None
        child = self._child
        if proto is None or child is None:
            return
        with _log.failuresHandled("while calling processEnded:"):
            proto.processEnded(_failure(reasonForChild(child)))

    def _connect(self) -> None:
        """
        Call the protocol's C{makeConnection}; an exception is logged (as
        Twisted's C{Process.__init__} does), never raised.
        """
        proto = self.proto
        if proto is not None:
            with _log.failuresHandled("while calling makeConnection:"):
                proto.makeConnection(self)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} status={self.status}>"


def _failure(exc: BaseException) -> Failure:
    """
    Wrap an exit reason (typed wrapper around Twisted's untyped C{Failure}).
    """
    return Failure(exc)  # type: ignore[no-untyped-call]


def _closeAll(fds: Iterable[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


@implementer(IProcessTransport, IConsumer)
class Process(ProcessLifecycle):
    """
    A child process connected to the parent by pipes (Twisted's C{Process}
    contract).

    @ivar pipes: Child fd to the L{PipeReader} (C{"r"}) or Twisted
        C{ProcessWriter} (C{"w"}) still open for it.
    """

    def __init__(
        self,
        reactor: IReactorFDSet,
        plan: SpawnPlan,
        proto: IProcessProtocol | None,
        spawner: ISpawner,
    ) -> None:
        """
        Open the pipes, start the child, close the child's pipe ends.

        Nothing is left behind if this raises: every fd opened so far is
        closed, and a child that was started is killed and reaped.

        @param reactor: The reactor the pipes are registered with.
        @param plan: The validated plan (see L{txspawn._plan.planSpawn}).
        @param proto: The protocol; connected later by L{_connect}.
        @param spawner: The engine that starts the child.
        @raise txspawn.errors.SpawnError: The child could not be started.
        """
        self._reactor = reactor
        self.pipes: dict[int, PipeReader | ProcessWriter] = {}
        fdMap: dict[int, int] = {}
        parentEnds: dict[int, int] = {}
        kinds: dict[int, str] = {}
        opened: list[int] = []
        try:
            for spec in plan.childFDs:
                if isinstance(spec, InheritFD):
                    fdMap[spec.childFD] = spec.parentFD
                    continue
                readEnd, writeEnd = openPipe()
                opened += (readEnd, writeEnd)
                if isinstance(spec, PipeToParent):
                    fdMap[spec.childFD], parentEnds[spec.childFD] = writeEnd, readEnd
                    kinds[spec.childFD] = "r"
                else:
                    assert isinstance(spec, PipeFromParent)
                    fdMap[spec.childFD], parentEnds[spec.childFD] = readEnd, writeEnd
                    kinds[spec.childFD] = "w"
                os.set_blocking(parentEnds[spec.childFD], False)
            child: ChildProcess = spawner.spawn(  # type: ignore[no-untyped-call]
                plan, fdMap, None
            )
        except BaseException:
            _closeAll(opened)
            raise
        # The child has its own copies now; ours would keep the pipes from
        # ever reporting end-of-file.
        _closeAll(fdMap[fd] for fd in parentEnds)
        try:
            self._child = child
            self.pid = child.pid
            self.proto = proto
            for childFD, parentFD in parentEnds.items():
                if kinds[childFD] == "r":
                    self.pipes[childFD] = PipeReader(reactor, self, childFD, parentFD)
                else:
                    self.pipes[childFD] = ProcessWriter(  # type: ignore[no-untyped-call]
                        reactor, self, childFD, parentFD, forceReadHack=True
                    )
        except BaseException:
            for pipe in self.pipes.values():
                pipe.stopReading()  # type: ignore[no-untyped-call]
                pipe.stopWriting()  # type: ignore[no-untyped-call]
            _closeAll(parentEnds.values())
            killAndReap(child)
            raise

    # -- pipe events ------------------------------------------------------

    def childDataReceived(self, name: int, data: bytes) -> None:
        """
        A reader got data: hand it to the protocol.  (The reader logs an
        exception and closes its pipe.)
        """
        if self.proto is not None:
            self.proto.childDataReceived(name, data)

    def childConnectionLost(self, childFD: int, reason: Failure) -> None:
        """
        A pipe is finished: close our end, tell the protocol, maybe end.
        """
        pipe = self.pipes.pop(childFD, None)
        if pipe is None:
            return
        os.close(pipe.fileno())
        if self.proto is not None:
            with _log.failuresHandled(
                "while calling childConnectionLost({fd}):", fd=childFD
            ):
                self.proto.childConnectionLost(childFD)
        self.maybeCallProcessEnded()

    def _pipesDone(self) -> bool:
        return not self.pipes

    # -- IProcessTransport ------------------------------------------------

    def writeToChild(self, childFD: int, data: bytes) -> None:
        """
        Write to the C{"w"} pipe of child fd C{childFD}.

        @raise KeyError: There is no open pipe for C{childFD} (as Twisted).
        """
        self.pipes[childFD].write(data)

    def closeChildFD(self, childFD: int) -> None:
        """
        Close the pipe of child fd C{childFD}; a writer first flushes what
        is buffered.  An unknown or already closed fd is ignored.
        """
        if childFD in self.pipes:
            self.pipes[childFD].loseConnection()

    def closeStdin(self) -> None:
        """
        Close the child's standard input pipe.
        """
        self.closeChildFD(0)

    def closeStdout(self) -> None:
        """
        Close the child's standard output pipe.
        """
        self.closeChildFD(1)

    def closeStderr(self) -> None:
        """
        Close the child's standard error pipe.
        """
        self.closeChildFD(2)

    def loseConnection(self) -> None:
        """
        Close the pipes of fds 0, 1 and 2 (and no others, as Twisted).
        """
        self.closeStdin()
        self.closeStderr()
        self.closeStdout()

    def write(self, data: bytes) -> None:
        """
        Write to the child's standard input; dropped if there is none.
        """
        if 0 in self.pipes:
            self.pipes[0].write(data)

    def writeSequence(self, seq: Iterable[bytes]) -> None:
        """
        Write each of C{seq} to the child's standard input.
        """
        if 0 in self.pipes:
            self.pipes[0].writeSequence(seq)

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register a producer for standard input; without one the producer is
        stopped at once (as Twisted).
        """
        if 0 in self.pipes:
            self.pipes[0].registerProducer(producer, streaming)
        else:
            producer.stopProducing()

    def unregisterProducer(self) -> None:
        """
        Unregister the standard input producer.
        """
        if 0 in self.pipes:
            self.pipes[0].unregisterProducer()

    def pauseProducing(self) -> None:
        """
        Stop reading every C{"r"} pipe.
        """
        for pipe in self.pipes.values():
            if isinstance(pipe, PipeReader):
                pipe.stopReading()  # type: ignore[no-untyped-call]

    def resumeProducing(self) -> None:
        """
        Resume reading every C{"r"} pipe.
        """
        for pipe in self.pipes.values():
            if isinstance(pipe, PipeReader):
                pipe.startReading()  # type: ignore[no-untyped-call]

    def getHost(self) -> IAddress:
        """
        Processes have no address (as Twisted).

        @raise NotImplementedError: always.
        """
        raise NotImplementedError()

    def getPeer(self) -> IAddress:
        """
        Processes have no address (as Twisted).

        @raise NotImplementedError: always.
        """
        raise NotImplementedError()
