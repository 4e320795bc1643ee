# -*- test-case-name: tests.test_testing -*-
"""
The child half of L{txspawn.testing.FakeProcessTransport}: the fake child
that a test plays (L{FakeChild.dataFromChild}, L{FakeChild.exit}, ...), and
the protocol callbacks that playing it drives, in the order and with the
exit reasons of txspawn's own transports.

The other half, what the code under test does to the transport (writes,
closes, signals, flow control), is
L{txspawn._testing.faketransport.FakeProcessTransport}, which builds on
L{FakeChild}.
"""

from __future__ import annotations

import resource
import signal as _signal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from twisted.internet.error import (
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.interfaces import (
    IDelayedCall,
    IProcessProtocol,
    IReactorTime,
)
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from txspawn._testing.fakestate import FakeProcessState
from txspawn._transport.exitlisteners import ExitNotifier
from txspawn._transport.exitstatus import reasonFromStatus
from txspawn.interfaces import IProcessStateObserver, IProcessTreeObserver

if TYPE_CHECKING:
    from txspawn._cgroupoptions import Cgroup, CgroupStats

__all__ = ["FakeChild"]

# Twisted's constructor is unannotated; a typed alias keeps this module
# strictly typed.
_failure: Callable[[BaseException], Failure] = Failure

_log = Logger()

# A classic wait status: the exit code in the second byte; a signal in the
# low seven bits, with 0x80 set when a core was dumped.
_CORE_FLAG = 0x80


class FakeChild:
    """
    The child half of a fake process transport: a child that does not
    exist, whose life the test plays.

    Playing it calls the protocol as Twisted's callback contract says:
    C{processExited} when the child exits (with C{pid} already C{None}),
    C{childConnectionLost} once per pipe, and C{processEnded} exactly once,
    after the exit I{and} after every pipe closed, whichever comes last;
    then the exit listeners.  A callback that raises is logged, never
    raised to the test, as txspawn's transports do.

    @ivar proto: The connected protocol; C{None} once C{processEnded} was
        delivered.
    @ivar pid: The fake pid; C{None} once the child exited.
    @ivar spawnedPid: The fake pid, kept after the child exited (what an
        exit listener names the child by).
    @ivar status: The classic wait status; -1 while the child runs.
    @ivar rusage: The resource usage given to L{exit<FakeChild.exit>}
        or L{kill<FakeChild.kill>}, if any.
    @ivar processGroup: The process group the child leads (its pid) when it
        was spawned with C{processGroup=0}, C{newSession=True} or
        C{usePTY}, else C{None}.
    @ivar state: The L{FakeProcessState} recording what was done.
    @ivar cgroupUnavailable: For a child spawned with a best-effort
        C{cgroup=Cgroup(required=False)} on a fake reactor told that no
        cgroup can be had (L{txspawn.testing.MemoryProcessReactor.cgroupUnavailable}),
        that reason; else C{None}.
    @ivar cgroupStats: The statistics given to L{exit<FakeChild.exit>},
        L{kill<FakeChild.kill>} or L{reap<FakeChild.reap>} (the exit
        reason's C{cgroup}), replaced by those given to L{treeEnded};
        C{None} until then (the fake reads no real cgroup).
    """

    cgroupUnavailable: str | None = None
    cgroupStats: CgroupStats | None = None

    def __init__(
        self,
        proto: IProcessProtocol,
        pid: int,
        childFDs: Mapping[int, int | str],
        usePTY: bool = False,
        leadsGroup: bool = False,
        state: FakeProcessState | None = None,
        clock: IReactorTime | None = None,
        cgroup: Cgroup | None = None,
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
        @param cgroup: The C{cgroup=} option when the child is to have a
            (fake) cgroup of its own, else C{None}.
        """
        self._cgroup = cgroup
        self._treeEndedStats: CgroupStats | None = None
        if cgroup is not None and IProcessTreeObserver.providedBy(proto):
            self._treeObserver = proto
        self.proto: IProcessProtocol | None = proto
        self.pid: int | None = pid
        self.spawnedPid: int = pid
        self.status: int = -1
        self.rusage: resource.struct_rusage | None = None
        self.processGroup: int | None = pid if leadsGroup else None
        self.state = FakeProcessState() if state is None else state
        self._clock = clock
        self._notifier = ExitNotifier()
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

    @property
    def cgroupPath(self) -> str | None:
        """
        For a child with a (fake) cgroup, a made-up path naming it (never
        created), until the test plays the tree's end (L{treeEnded});
        C{None} for a child without one, as on a real transport.
        """
        if self._cgroup is None or self.state.treeEnded:
            return None
        return f"/txspawn-fake-cgroup/txspawn-{self.spawnedPid}"

    def treeEnded(self, stats: CgroupStats) -> None:
        """
        Every process of the child's cgroup has exited, and its final
        statistics are C{stats}: a protocol providing
        L{IProcessTreeObserver} gets C{processTreeEnded(stats)} after
        C{processEnded} (now if that was delivered, else right after it),
        once, as on a real transport.

        @raise ValueError: The child has no cgroup, has not exited yet (its
            cgroup holds it until then), or its tree has already ended.
        """
        if self._cgroup is None:
            raise ValueError("the child was not spawned with cgroup=")
        if not self.state.reaped:
            raise ValueError("the child has not exited: its cgroup holds it")
        if self.state.treeEnded:
            raise ValueError("the tree has already ended")
        self.state.treeEnded = True
        self._treeEndedStats = self.cgroupStats = stats
        if self.state.ended:
            self._tellTreeEnded()

    def _tellTreeEnded(self) -> None:
        stats, self._treeEndedStats = self._treeEndedStats, None
        observer = self._treeObserver
        self._treeObserver = None
        if stats is not None and observer is not None:
            self._callProtocol(
                "while calling processTreeEnded:", observer.processTreeEnded, stats
            )

    #: The protocol, when it provides IProcessTreeObserver and the child
    #: has a cgroup.
    _treeObserver: IProcessTreeObserver | None = None

    def exit(
        self,
        code: int = 0,
        *,
        rusage: resource.struct_rusage | None = None,
        closePipes: bool = True,
        cgroupStats: CgroupStats | None = None,
    ) -> None:
        """
        The child calls C{_exit(code)}.

        @param code: The exit code, 0 to 255.
        @param rusage: The resource usage to report (as C{.rusage} on the
            reason and on the transport), as txspawn's own transports do.
        @param closePipes: Whether the child's pipes close too (the usual
            case).  C{False} models a grandchild that still holds them: the
            test calls L{closeFromChild} later, and C{processEnded} waits.
        @param cgroupStats: For a child with a cgroup, the statistics read
            at its reaping: the exit reason's C{cgroup} and the transport's
            C{cgroupStats}.
        @raise ValueError: if C{code} is out of range.
        """
        if not 0 <= code <= 255:
            raise ValueError(f"code must be between 0 and 255, not {code!r}")
        self.reap(
            code << 8, rusage=rusage, closePipes=closePipes, cgroupStats=cgroupStats
        )

    def kill(
        self,
        signalNumber: int,
        *,
        coreDumped: bool = False,
        rusage: resource.struct_rusage | None = None,
        closePipes: bool = True,
        cgroupStats: CgroupStats | None = None,
    ) -> None:
        """
        The child dies of C{signalNumber}.

        @param signalNumber: The signal, 1 to 127.
        @param coreDumped: Whether it dumped core (C{os.WCOREDUMP}).
        @param rusage: See L{exit}.
        @param closePipes: See L{exit}.
        @param cgroupStats: See L{exit}.
        @raise ValueError: if C{signalNumber} is out of range.
        """
        if not 0 < signalNumber < 0x7F:
            raise ValueError(
                f"signalNumber must be between 1 and 126, not {signalNumber!r}"
            )
        status = signalNumber | (_CORE_FLAG if coreDumped else 0)
        self.reap(status, rusage=rusage, closePipes=closePipes, cgroupStats=cgroupStats)

    def reap(
        self,
        status: int,
        *,
        rusage: resource.struct_rusage | None = None,
        closePipes: bool = True,
        cgroupStats: CgroupStats | None = None,
    ) -> None:
        """
        The child was reaped with the classic wait status C{status}: call
        C{processExited}, close the pipes (unless told not to), and call
        C{processEnded} once no pipe is left open.  A child with a cgroup
        whose C{Cgroup} says C{killOnExit} has its cgroup killed then
        (recorded as C{"exit"} in C{state.treeKills}).

        @param cgroupStats: See L{exit}.
        @raise ProcessExitedAlready: if the child was already reaped.
        """
        if self.state.reaped:
            raise ProcessExitedAlready()
        self._beforeReap()
        if self._cgroup is not None:
            self.cgroupStats = self._reapCgroupStats = cgroupStats
            if self._cgroup.killOnExit and not self.state.treeEnded:
                self.state.treeKills.append("exit")
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

    def _beforeReap(self) -> None:
        """
        The child exited and is about to be reaped: the moment a
        termination in progress acts for the last time (txspawn's
        transports' before-reap hook).  Nothing here; the transport's half
        overrides it.
        """

    def _reason(self) -> ProcessDone | ProcessTerminated:
        """
        The exit reason for L{status}, built as txspawn's transports build
        it (Twisted's C{Process._getReason} mapping, C{rusage} attached).
        """
        # The stats of the reaping, even once treeEnded replaced
        # cgroupStats (as a real transport's reasons keep them).
        return reasonFromStatus(self.status, self.rusage, self._reapCgroupStats)

    _reapCgroupStats: CgroupStats | None = None

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
            if self.state.treeEnded:
                self._tellTreeEnded()
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
