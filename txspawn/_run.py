# -*- test-case-name: tests.test_run -*-
"""
A result-object API: run a command, get one L{ProcessResult}.

C{run(argv)} spawns a child on any L{IReactorProcess} (txspawn's reactors
or a stock Twisted reactor), feeds it C{stdin}, collects its stdout and
stderr, and fires a L{Deferred} (awaitable) with a frozen L{ProcessResult}.
It is Twisted's C{getProcessOutputAndValue} grown up: exit code I{and}
signal I{and} raw status, rusage, duration, pid; C{check=True} like
C{subprocess.run}; a timeout that sends C{SIGTERM} and then C{SIGKILL};
cancellation that kills the child and waits until it is reaped.

The lifecycle machinery (L{_ChildRun}) is shared with the streaming variant
in L{txspawn._stream}: the two differ only in what happens to the output
(an L{_OutputSink}).
"""

from __future__ import annotations

import os
import resource
import shlex
import signal as _signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

from attrs import field, frozen
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

from txspawn._tee import LogFile, TeeProtocol
from txspawn.interfaces import IManagedProcessTransport

__all__ = [
    "ProcessFailed",
    "ProcessResult",
    "ProcessTimedOut",
    "run",
]

_log = Logger()

# Twisted's Failure constructor is unannotated.
_failure: Callable[[BaseException], Failure] = Failure
# How long a command line in a message may be.
_ARGV_MAX = 200
# How much of stderr a ProcessFailed message quotes.
_STDERR_TAIL = 2000
# The first callback sees this instead of a result when the Deferred was
# cancelled: it then waits for the child to be reaped (see _ChildRun).
_CANCELLED = object()


def _describeArgv(argv: Sequence[str | bytes]) -> str:
    """
    The command line as a shell would quote it, cut short when long (an
    inline script, say) so that messages stay readable.
    """
    text = shlex.join(os.fsdecode(arg) for arg in argv)
    if len(text) > _ARGV_MAX:
        text = text[: _ARGV_MAX - 3] + "..."
    return text


@frozen
class ProcessResult:
    """
    How a child ran: what it printed, how it ended, what it cost.

    @ivar argv: The command line, as given.
    @ivar pid: The child's pid (it may belong to another process by now).
    @ivar exitCode: The exit code, or C{None} if the child died of a signal
        or its status is unknown.
    @ivar signal: The signal that killed the child, or C{None}.
    @ivar status: The raw classic wait status (C{os.WIFSIGNALED(status)}
        works), or C{None} if unknown (someone else reaped the child).
    @ivar stdout: Everything the child wrote to stdout (empty when the output
        was streamed instead, see L{txspawn.stream}).
    @ivar stderr: Everything the child wrote to stderr (idem).
    @ivar rusage: The child's C{resource.struct_rusage} from C{wait4}, when
        the reactor reports it (txspawn's reactors do; stock Twisted's do
        not: then C{None}).
    @ivar duration: Seconds from the spawn to the child's exit, measured
        with the reactor's clock (C{reactor.seconds()}).
    @ivar logError: When the output was teed to a log file and writing it
        failed: the first error (the log is incomplete; the output here is
        not).  Else C{None}.

    @since: txspawn 0.1
    """

    argv: tuple[str | bytes, ...]
    pid: int | None
    exitCode: int | None
    signal: int | None
    status: int | None
    stdout: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    stderr: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    rusage: resource.struct_rusage | None = field(repr=False)
    duration: float
    logError: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        """
        Whether the child exited with code 0.
        """
        return self.exitCode == 0

    def check(self) -> ProcessResult:
        """
        Raise if the child did not succeed (rsyscall's C{check()}).

        @return: C{self}, when L{succeeded}.
        @raise ProcessFailed: otherwise.
        """
        if not self.succeeded:
            raise ProcessFailed(self)
        return self

    def describeEnd(self) -> str:
        """
        How the child ended, in words: C{"exited with code 3"}, C{"was killed
        by SIGKILL"}, C{"ended with an unknown status"}.
        """
        if self.exitCode is not None:
            return f"exited with code {self.exitCode}"
        if self.signal is not None:
            try:
                name = _signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            core = ""
            if self.status is not None and os.WCOREDUMP(self.status):
                core = " (core dumped)"
            return f"was killed by {name}{core}"
        return "ended with an unknown status (someone else reaped it)"


class ProcessFailed(Exception):
    """
    The child did not exit with code 0 (raised for C{run(..., check=True)}
    and by L{ProcessResult.check}).

    @ivar result: The L{ProcessResult}, output included.

    @since: txspawn 0.1
    """

    def __init__(self, result: ProcessResult) -> None:
        super().__init__(result)
        self.result = result

    def __str__(self) -> str:
        message = f"{_describeArgv(self.result.argv)} {self.result.describeEnd()}"
        tail = self.result.stderr[-_STDERR_TAIL:].decode("utf-8", "replace")
        if tail.strip():
            message += f"; stderr ends with:\n{tail}"
        return message


class ProcessTimedOut(ProcessFailed):
    """
    The child did not end within the timeout; it was sent C{SIGTERM}, then
    C{SIGKILL} after the grace period.  Raised whatever C{check} says.

    @ivar result: The partial L{ProcessResult}: the output received before
        the child ended, and how it ended (usually killed by a signal).
    @ivar timeout: The timeout, in seconds.

    @since: txspawn 0.1
    """

    def __init__(self, result: ProcessResult, timeout: float) -> None:
        super().__init__(result)
        self.timeout = timeout

    def __str__(self) -> str:
        return (
            f"{_describeArgv(self.result.argv)} timed out after "
            f"{self.timeout:g} s and {self.result.describeEnd()}"
        )


class _OutputSink(Protocol):
    """
    What L{_ChildRun} does with the child's output.
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


class _Collector:
    """
    The L{_OutputSink} of L{run}: keep everything.
    """

    def __init__(self) -> None:
        self._chunks: dict[int, list[bytes]] = {}

    def connect(self, transport: IProcessTransport) -> None:
        pass

    def dataReceived(self, childFD: int, data: bytes) -> None:
        self._chunks.setdefault(childFD, []).append(data)

    def fdClosed(self, childFD: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        pass

    def output(self, childFD: int) -> bytes:
        return b"".join(self._chunks.get(childFD, []))


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


class _ChildRun(ProcessProtocol):
    """
    The lifecycle of one child run by L{run} or L{txspawn.stream}: stdin,
    timeout (C{SIGTERM}, then C{SIGKILL}), cancellation (C{SIGKILL}, then
    fail with L{CancelledError} once the child is reaped), closing the pipes
    after exit on request, and building the L{ProcessResult}.

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
        sink: _OutputSink,
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
                argv=_describeArgv(self._argv),
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
        for name in ("_timeoutCall", "_killCall"):
            self._cancelCall(name)
        self._sink.abandon()
        self.signal("KILL")
        if self.exited:
            self._closePipes()

    def _timeoutExpired(self) -> None:
        self._timeoutCall = None
        self.timedOut = True
        if self.exited:
            # The child is gone but something (a grandchild) holds the
            # pipes: stop waiting for them.
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
        for name in ("_timeoutCall", "_killCall"):
            self._cancelCall(name)
        self._sink.abandon()
        self.signal("KILL")
        if self.exited:
            self._closePipes()
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
        )


def _failure_here() -> Failure:
    # Failure() with no argument captures the exception being handled.
    return Failure()  # type: ignore[no-untyped-call]


def resolveReactor(reactor: object | None) -> IReactorProcess:
    """
    The reactor to spawn on: C{reactor}, or the global reactor (imported
    now, never at import time of this module).

    @raise TypeError: if it does not provide both L{IReactorProcess} and
        L{IReactorTime}.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    if not (IReactorProcess.providedBy(reactor) and IReactorTime.providedBy(reactor)):
        raise TypeError(
            f"reactor must provide IReactorProcess and IReactorTime, not {reactor!r}"
        )
    return cast(IReactorProcess, reactor)


def checkRunArguments(
    argv: Sequence[str | bytes],
    stdin: bytes | None,
    timeout: float | None,
    killAfter: float | None,
    closePipesAfterExit: float | None,
) -> tuple[str | bytes, ...]:
    """
    Validate the arguments L{run} and L{txspawn.stream} share.

    @return: C{argv} as a tuple.
    @raise TypeError: an argument has the wrong type (named in the message).
    @raise ValueError: an argument has a bad value (named in the message).
    """
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
        raise TypeError(
            "argv must be a sequence of str or bytes (the program and its "
            f"arguments), not {argv!r}"
        )
    argvTuple = tuple(argv)
    if not argvTuple:
        raise ValueError("argv must not be empty: argv[0] is the program to run")
    for index, arg in enumerate(argvTuple):
        if not isinstance(arg, (str, bytes)):
            raise TypeError(f"argv[{index}] must be str or bytes, not {arg!r}")
    if stdin is not None and not isinstance(stdin, bytes):
        raise TypeError(f"stdin must be bytes or None, not {type(stdin).__name__}")
    for name, value, positive in [
        ("timeout", timeout, True),
        ("killAfter", killAfter, False),
        ("closePipesAfterExit", closePipesAfterExit, False),
    ]:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"{name} must be a number of seconds or None, not {value!r}"
            )
        if value != value or value < 0 or (positive and value == 0):
            raise ValueError(
                f"{name} must be {'positive' if positive else 'zero or more'}, "
                f"not {value!r}"
            )
    return argvTuple


def run(
    argv: Sequence[str | bytes],
    *,
    reactor: object | None = None,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    path: str | bytes | None = None,
    uid: int | None = None,
    gid: int | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    killAfter: float | None = 5.0,
    check: bool = False,
    closePipesAfterExit: float | None = None,
    logFile: LogFile | None = None,
    logPrefix: bool = False,
    **options: object,
) -> Deferred[ProcessResult]:
    """
    Run C{argv}, wait for it to end, and return what happened.

    Usage::

        result = await txspawn.run(["git", "status"], check=True)
        print(result.stdout.decode())

    @param argv: The program and its arguments; C{argv[0]} is looked up on
        C{PATH} as C{spawnProcess} does.
    @param reactor: An L{IReactorProcess} that is also an L{IReactorTime}
        (every real reactor; L{txspawn.testing.MemoryProcessReactor}).
        C{None}: the global reactor, imported when C{run} is called.
    @param env: The child's environment.  B{C{None} (the default) inherits
        C{os.environ}}, as C{subprocess.run} does: this deliberately differs
        from C{spawnProcess}, whose default is an I{empty} environment, a
        Twisted quirk that surprises almost everyone.  Pass C{{}} for an
        empty one.
    @param path: The child's working directory (C{None}: the parent's).
    @param uid: The uid to run as (C{spawnProcess}'s C{uid}).
    @param gid: The gid to run as (C{spawnProcess}'s C{gid}).
    @param stdin: Bytes written to the child's stdin, which is then closed.
        C{None} (the default): stdin is closed at once, so the child reads
        end-of-file (it never inherits the parent's stdin).
    @param timeout: Seconds the child may run.  Then it is sent C{SIGTERM}
        (its process group, when it leads one and the reactor can signal
        groups safely), and C{SIGKILL} C{killAfter} seconds later; the
        Deferred fails with L{ProcessTimedOut} carrying the partial result.
        C{None}: no limit.
    @param killAfter: The grace period between C{SIGTERM} and C{SIGKILL},
        in seconds; C{None} never escalates to C{SIGKILL}.
    @param check: Fail with L{ProcessFailed} (carrying the result) when the
        child does not exit with code 0.
    @param closePipesAfterExit: Seconds to keep reading the child's pipes after
        it exited.  A daemonised grandchild that keeps stdout open would
        otherwise keep C{run} waiting for ever (Twisted waits for every
        pipe to close); output written after that is lost.  C{None} (the
        default): wait for the pipes to close.
    @param logFile: Also write the child's output to this file (a path,
        opened for appending, or a binary file object left open); see
        L{TeeProtocol}.  Write errors are logged and reported as
        L{ProcessResult.logError}; the result's output is complete anyway.
    @param logPrefix: Prefix each line in C{logFile} with a timestamp from
        the reactor's clock and the stream name.
    @param options: txspawn's extra spawn options (C{processGroup=0},
        C{newSession=True}, C{umask}, ...; see L{txspawn.options}), passed
        on to C{spawnProcess}.  A reactor that does not know them rejects
        them (stock Twisted: L{TypeError}).
    @return: A L{Deferred} firing with a L{ProcessResult}.  It fails with
        L{ProcessFailed} (C{check=True}), L{ProcessTimedOut}, or the spawn
        error (e.g. L{txspawn.errors.SpawnError}, a L{FileNotFoundError}
        when the program does not exist).  Cancelling it kills the child
        with C{SIGKILL} (its group when it leads one) and fails it with
        L{CancelledError} once the child has been reaped: no zombie, and
        nothing left writing to pipes nobody reads.  (Cancelling again
        while it waits for the reaping stops the waiting.)
    @raise TypeError: for an argument of the wrong type (the message names
        it); spawn errors fail the Deferred instead.
    @raise ValueError: for an argument with a bad value (idem).

    @since: txspawn 0.1
    """
    argvTuple = checkRunArguments(argv, stdin, timeout, killAfter, closePipesAfterExit)
    resolved = resolveReactor(reactor)
    child = _ChildRun(
        cast(IReactorTime, resolved),
        argvTuple,
        _Collector(),
        stdin=stdin,
        timeout=timeout,
        killAfter=killAfter,
        check=check,
        closePipesAfterExit=closePipesAfterExit,
    )
    child.start(resolved, env, path, uid, gid, options, logFile, logPrefix)
    return cast("Deferred[ProcessResult]", child.deferred)
