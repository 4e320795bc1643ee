# -*- test-case-name: tests.test_run -*-
"""
The lifecycle of one child run by L{txspawn.run} or L{txspawn.stream}.

L{ChildRun} is the process protocol both drive: it feeds stdin, enforces
the timeout (C{SIGTERM}, then C{SIGKILL}), kills the child on cancellation
and waits until it is reaped, closes the pipes after exit on request, and
builds the L{ProcessResult}.  The two APIs differ only in what happens to
the output, an L{OutputSink}.  Their arguments are checked before a
L{ChildRun} is made (L{txspawn._api.arguments}).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import (
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.interfaces import (
    IDelayedCall,
    IProcessTransport,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from txspawn._api.result import (
    ProcessFailed,
    ProcessResult,
    ProcessTimedOut,
    describeArgv,
)
from txspawn._api.tee import LogFile, TeeProtocol
from txspawn.interfaces import IManagedProcessTransport

__all__ = ["ChildRun", "OutputSink"]

_log = Logger()

# Twisted's Failure constructor is unannotated.
_failure: Callable[[BaseException], Failure] = Failure
# The first callback sees this instead of a result when the Deferred was
# cancelled: it then waits for the child to be reaped (see ChildRun).
_CANCELLED = object()


class OutputSink(Protocol):
    """
    What L{ChildRun} does with the child's output.
    """

    def connect(self, transport: IProcessTransport) -> None:
        """
        The child is running on C{transport}.
        """

    def dataReceived(self, childFD: int, data: bytes) -> None:
        """
        The child wrote C{data} on C{childFD}.
        """

    def fdClosed(self, childFD: int) -> None:
        """
        The pipe C{childFD} is closed.
        """

    def finish(self) -> None:
        """
        The process ended (reaped, every pipe closed).
        """

    def abandon(self) -> None:
        """
        The run was cancelled: nobody wants the output any more.
        """

    def output(self, childFD: int) -> bytes:
        """
        The output of C{childFD} to put on the result.
        """


def _treeKiller(transport: IProcessTransport | None) -> Any:
    """
    The transport's C{killTree} method when the child has a cgroup of its
    own that still exists (a txspawn transport spawned with C{cgroup=}:
    its C{cgroupPath} is set), else C{None}.  Looked up by name, as
    L{_groupSignaller} is.
    """
    if transport is None or getattr(transport, "cgroupPath", None) is None:
        return None
    return getattr(transport, "killTree", None)


def _groupSignaller(transport: IProcessTransport) -> Any:
    """
    The transport's C{signalProcessGroup} method when the child leads a
    process group, else C{None}.

    This is the transport hook for killing trees, as
    L{txspawn.interfaces.IManagedProcessTransport} defines it: a transport
    that can signal the group its child leads (safely: only while the
    leader is unreaped, so the pgid cannot have been reused) has a
    C{processGroup} attribute (the pgid, or C{None}) and a
    C{signalProcessGroup(signalID)} method raising L{ProcessExitedAlready}
    after the leader was reaped.  Looked up by name, so that any transport
    with the two works; stock Twisted transports have neither, and get
    C{signalProcess}.
    """
    if getattr(transport, "processGroup", None) is None:
        return None
    return getattr(transport, "signalProcessGroup", None)


class ChildRun(ProcessProtocol):
    """
    The lifecycle of one child run by L{run} or L{txspawn.stream}: stdin,
    timeout (C{SIGTERM}, then C{SIGKILL}), cancellation (C{SIGKILL}, then
    fail with L{CancelledError} once the child is reaped), closing the pipes
    after exit on request, and building the L{ProcessResult}.

    A child spawned with C{cgroup=} has its whole tree killed: the timeout
    is the transport's C{terminate}, whose C{SIGKILL} step is
    C{cgroup.kill} (and which kills what is left at once when the child
    exits during the grace period); a timeout that expires after the child
    exited while its descendants still hold the pipes, a cancellation and
    L{kill} call the transport's C{killTree}.

    @ivar deferred: Fires with the L{ProcessResult}, or fails.
    @ivar tee: The L{TeeProtocol} in front of this protocol, with a log.
    @ivar pid: The child's pid, once spawned.
    @ivar timedOut: Whether the timeout expired.
    @ivar cancelled: Whether the Deferred was cancelled.
    @ivar killed: Whether L{kill} was called.
    @ivar exited: Whether the child was reaped (C{processExited}).
    @ivar ended: Whether the run is over (C{processEnded}, or the spawn
        failed).
    """

    def __init__(
        self,
        clock: IReactorTime,
        argv: tuple[str | bytes, ...],
        sink: OutputSink,
        *,
        stdin: bytes | None,
        timeout: float | None,
        killAfter: float | None,
        check: bool,
        closePipesAfterExit: float | None,
    ) -> None:
        self._clock = clock
        self._argv = argv
        self._sink = sink
        self._stdin = stdin
        self._timeout = timeout
        self._killAfter = killAfter
        self._check = check
        self._closePipesAfterExit = closePipesAfterExit
        self.tee: TeeProtocol | None = None
        self.pid: int | None = None
        self.timedOut = False
        self.cancelled = False
        self.killed = False
        self._endWaiters: list[Deferred[None]] = []
        self.exited = False
        self.ended = False
        self._started = 0.0
        self._exitedAt: float | None = None
        self._timeoutCall: IDelayedCall | None = None
        self._killCall: IDelayedCall | None = None
        self._closeCall: IDelayedCall | None = None
        self._reapedAfterCancel: Deferred[ProcessResult] = Deferred()
        self.deferred: Deferred[Any] = Deferred(self._cancel)
        # First in the chain, before any user callback: see _cancel.
        self.deferred.addCallback(self._waitIfCancelled)

    # -- starting --------------------------------------------------------------

    def start(
        self,
        reactor: IReactorProcess,
        env: Mapping[Any, Any] | None,
        path: str | bytes | None,
        uid: int | None,
        gid: int | None,
        options: Mapping[str, Any],
        logFile: LogFile | None,
        logPrefix: bool,
    ) -> None:
        """
        Spawn the child; any failure (including a L{txspawn.errors.SpawnError}
        or a log file that cannot be opened) fails L{deferred}.
        """
        try:
            protocol: ProcessProtocol | TeeProtocol = self
            if logFile is not None:
                protocol = self.tee = TeeProtocol(
                    self, logFile, prefix=logPrefix, clock=self._clock
                )
            self._started = self._clock.seconds()
            reactor.spawnProcess(
                protocol,
                self._argv[0],
                self._argv,
                env=env,
                path=path,
                uid=uid,
                gid=gid,
                **options,
            )
        except Exception:
            failure = _failure_here()
            if self.tee is not None:
                self.tee.closeLog()
            self.ended = True
            self._sink.abandon()
            self.deferred.errback(failure)
            self._notifyEnded()
            return
        if self._timeout is not None and not self.ended:
            self._timeoutCall = self._clock.callLater(
                self._timeout, self._timeoutExpired
            )

    # -- ProcessProtocol ----------------------------------------------------

    def connectionMade(self) -> None:
        transport = cast(IProcessTransport, self.transport)
        self.pid = transport.pid
        self._sink.connect(transport)
        if self._stdin:
            transport.write(self._stdin)
        transport.closeStdin()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if not (self.cancelled or self.killed):
            self._sink.dataReceived(childFD, data)

    def childConnectionLost(self, childFD: int) -> None:
        self._sink.fdClosed(childFD)

    def processExited(self, reason: Failure) -> None:
        self.exited = True
        self._exitedAt = self._clock.seconds()
        self._cancelCall("_killCall")
        if self.cancelled or self.timedOut or self.killed:
            # We killed it; a grandchild may still hold the pipes.  Output
            # still in flight is not worth waiting for.
            self._closePipes()
        elif self._closePipesAfterExit is not None:
            self._closeCall = self._clock.callLater(
                self._closePipesAfterExit, self._closePipes
            )

    def processEnded(self, reason: Failure) -> None:
        self.ended = True
        for name in ("_timeoutCall", "_killCall", "_closeCall"):
            self._cancelCall(name)
        if not (self.cancelled or self.killed):
            self._sink.finish()
        result = self._buildResult(reason)
        if self.cancelled:
            self._reapedAfterCancel.errback(_failure(CancelledError()))
        elif self.killed:
            # Killed on request (not cancelled): report how it ended.
            self.deferred.callback(result)
        elif self.timedOut:
            assert self._timeout is not None
            self.deferred.errback(_failure(ProcessTimedOut(result, self._timeout)))
        elif self._check and not result.succeeded:
            self.deferred.errback(_failure(ProcessFailed(result)))
        else:
            self.deferred.callback(result)
        self._notifyEnded()

    def whenEnded(self) -> Deferred[None]:
        """
        A L{Deferred} firing with C{None} once the process ended (reaped,
        pipes closed) or failed to start; it never fails and does not touch
        L{deferred}.
        """
        waiter: Deferred[None] = Deferred()
        if self.ended:
            waiter.callback(None)
        else:
            self._endWaiters.append(waiter)
        return waiter

    def _notifyEnded(self) -> None:
        waiters, self._endWaiters = self._endWaiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- killing -------------------------------------------------------------

    def signal(self, signalID: str) -> None:
        """
        Signal the child, or the process group it leads when the transport
        can do that safely; a child that is already reaped is left alone.
        """
        transport = self.transport
        if transport is None or self.exited:
            return
        groupSignal = _groupSignaller(transport)
        try:
            if groupSignal is not None:
                groupSignal(signalID)
            else:
                transport.signalProcess(signalID)
        except ProcessExitedAlready:
            pass
        except Exception:
            _log.failure(
                "Could not send SIG{signal} to {argv}",
                signal=signalID,
                argv=describeArgv(self._argv),
            )

    def kill(self) -> None:
        """
        Kill the child now (C{SIGKILL}, to its group when it leads one) and
        drop its further output; L{deferred} then fires with the
        L{ProcessResult} saying how it ended (C{check} does not apply).
        """
        if self.ended or self.cancelled or self.killed:
            return
        self.killed = True
        self._killAndDrop()

    def _killAndDrop(self) -> None:
        """
        What L{kill} and cancellation share: stop the timers, drop the
        output, C{SIGKILL} the child (its group when it leads one), and stop
        waiting for pipes a grandchild may hold once the child exited.
        """
        for name in ("_timeoutCall", "_killCall"):
            self._cancelCall(name)
        self._sink.abandon()
        self.signal("KILL")
        # Every process of its cgroup too, even once the child is reaped
        # (descendants a killOnExit=False cgroup kept alive).
        self._killTree()
        if self.exited:
            self._closePipes()

    def _killTree(self) -> None:
        """
        C{cgroup.kill} the child's cgroup, if it has one that still exists.
        """
        killTree = _treeKiller(self.transport)
        if killTree is None:
            return
        try:
            killTree()
        except Exception:
            _log.failure(
                "Could not kill the cgroup of {argv}", argv=describeArgv(self._argv)
            )

    def _timeoutExpired(self) -> None:
        self._timeoutCall = None
        self.timedOut = True
        if self.exited:
            # The child is gone but something (a grandchild) holds the
            # pipes: stop waiting for them, and end that something when
            # it is in the child's cgroup.
            self._killTree()
            self._closePipes()
            return
        transport = self.transport
        if self._killAfter is not None and IManagedProcessTransport.providedBy(
            transport
        ):
            # txspawn's transports escalate themselves, and also kill what
            # is left of the group if the leader exits first (which we
            # could not do safely once the leader is reaped).
            try:
                transport.terminate(self._killAfter)
            except ProcessExitedAlready:
                pass
            return
        self.signal("TERM")
        if self._killAfter is not None:
            self._killCall = self._clock.callLater(self._killAfter, self._escalate)

    def _escalate(self) -> None:
        self._killCall = None
        self.signal("KILL")

    def _closePipes(self) -> None:
        self._closeCall = None
        if not self.ended and self.transport is not None:
            self.transport.loseConnection()

    def _cancelCall(self, name: str) -> None:
        call = getattr(self, name)
        setattr(self, name, None)
        if call is not None and call.active():
            call.cancel()

    # -- cancellation ----------------------------------------------------------

    def _cancel(self, deferred: Deferred[Any]) -> None:
        """
        The canceller: kill the child and fire the Deferred with a marker
        that L{_waitIfCancelled} (first in the chain) turns into a wait for
        the reaping, which then fails with L{CancelledError}.  (A canceller
        that does not fire the Deferred makes Twisted fail it at once, which
        would leave the child running, or a zombie, behind the caller's
        back.)
        """
        self.cancelled = True
        self._killAndDrop()
        if not deferred.called:
            deferred.callback(_CANCELLED)

    def _waitIfCancelled(self, result: object) -> object:
        if result is _CANCELLED:
            return self._reapedAfterCancel
        return result

    # -- the result ----------------------------------------------------------

    def _buildResult(self, reason: Failure) -> ProcessResult:
        exitCode: int | None = None
        signalNumber: int | None = None
        status: int | None = None
        value = reason.value
        if isinstance(value, ProcessDone):
            exitCode, status = 0, value.status
        elif isinstance(value, ProcessTerminated):
            exitCode, signalNumber, status = value.exitCode, value.signal, value.status
        # txspawn's reasons carry the rusage; its transports keep it too.
        rusage = getattr(value, "rusage", None)
        if rusage is None:
            rusage = getattr(self.transport, "rusage", None)
        exitedAt = self._clock.seconds() if self._exitedAt is None else self._exitedAt
        # txspawn's reasons carry the cgroup's statistics read at the reaping.
        cgroup = getattr(value, "cgroup", None)
        return ProcessResult(
            argv=self._argv,
            pid=self.pid,
            exitCode=exitCode,
            signal=signalNumber,
            status=status,
            stdout=self._sink.output(1),
            stderr=self._sink.output(2),
            rusage=rusage,
            duration=max(0.0, exitedAt - self._started),
            logError=None if self.tee is None else self.tee.error,
            cgroup=cgroup,
            cgroupUnavailable=getattr(self.transport, "cgroupUnavailable", None),
        )


def _failure_here() -> Failure:
    # Failure() with no argument captures the exception being handled.
    return Failure()  # type: ignore[no-untyped-call]
