# -*- test-case-name: tests.test_process -*-
"""
What every txspawn process transport shares: the child-process half.

L{ProcessLifecycle} is mixed into L{txspawn._transport.pipetransport.Process}
(pipes) and L{txspawn._transport.ptytransport.PTYProcess} (a pty).  It holds
the child handle,
C{pid}/C{status}/C{rusage}, signalling, the "exited" half of the
end-of-process bookkeeping and the exactly-once C{processEnded}, and
txspawn's additions to the contract
(L{txspawn.interfaces.IManagedProcessTransport}): signalling the process
group the child leads (safely: see L{txspawn._transport.groupkill}),
L{ProcessLifecycle.terminate} and the C{timeout} option, closing the pipes
some time after the child exited, exit listeners and
L{ProcessLifecycle.whenEnded}, and stop/continue notifications for
protocols that provide L{txspawn.interfaces.IProcessStateObserver}; and the
end of the child's cgroup (L{txspawn._transport.cgroupend}).
"""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IDelayedCall, IProcessProtocol, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from txspawn._kernel.childhandle import ChildProcess
from txspawn._plan.plan import SpawnPlan
from txspawn._transport.cgroupend import CgroupMembers
from txspawn._transport.exitlisteners import ExitListener, ExitNotifier
from txspawn._transport.exitstatus import reasonFromStatus
from txspawn._transport.groupkill import (
    SIGNAL_NAMES,
    Termination,
    checkSeconds,
    signalNumber,
)
from txspawn._transport.timelimits import (
    DEFAULT_KILL_AFTER,
    LifetimeOptions,
    terminationGrace,
)
from txspawn.interfaces import IProcessStateObserver

if TYPE_CHECKING:
    from txspawn._cgroupoptions import CgroupStats
    from txspawn._monitor.statewatch import StateChangeWatcher
    from txspawn.interfaces import IChildMonitor

__all__ = ["ProcessLifecycle", "failure", "killAndReap", "leadsGroup"]

_log = Logger()


def killAndReap(child: ChildProcess, closePidfd: bool = True) -> None:
    """
    Get rid of a child that was started but cannot be handed to a monitor
    (the transport failed to set up after the engine succeeded).

    Blocking is acceptable here: the child has just been sent SIGKILL, which
    cannot be caught, so C{wait4} returns as soon as the kernel tears it
    down.  Resumable (see L{txspawn._kernel.childhandle.completeCleanup}):
    L{ChildProcess.killAndReap} records the reap before a signal handler can
    raise, so a run after an interrupt never signals or waits for a pid that
    may be someone else's by then, and closing the pidfd is idempotent.

    @param child: A started child (nothing is done if it is reaped).
    @param closePidfd: Whether to close its pidfd too (not while a monitor
        may still have it registered).
    """
    child.killAndReap()
    if closePidfd:
        child.closePidfd()


def leadsGroup(plan: SpawnPlan) -> bool:
    """
    Whether a child started from C{plan} leads a process group (its pgid is
    its pid): it asked for a new session or group, or has a pty (which
    implies a new session).
    """
    return plan.newSession or plan.pty is not None or plan.processGroup == 0


class ProcessLifecycle(CgroupMembers):
    """
    The child-process half of a process transport.

    @ivar pid: The child's pid while it runs; C{None} once reaped (before
        C{processExited} is called), as with Twisted's transports.  See
        L{spawnedPid} for the pid that names the child afterwards.
    @ivar status: C{-1} while the child runs (as Twisted's transports); the
        classic wait status once reaped, or C{None} if it is unknown
        (someone else reaped the child).
    @ivar rusage: The child's C{resource.struct_rusage} once reaped, else
        C{None}.  Its C{ru_maxrss} is I{not} just the child's own peak: see
        L{txspawn.interfaces.IManagedProcessTransport.rusage}.
    @ivar proto: The protocol; C{None} once C{processEnded} was delivered.
    @ivar lostProcess: How many of the end conditions happened, for code
        that inspects Twisted's attribute of the same name.
    @ivar processGroup: The pgid of the group the child leads (its pid), or
        C{None} if it does not lead one.
    @ivar timedOut: Whether the C{timeout} option expired.
    """

    pid: int | None = None
    status: int | None = -1
    rusage: resource.struct_rusage | None = None
    lostProcess: int = 0
    proto: IProcessProtocol | None = None
    processGroup: int | None = None
    timedOut: bool = False
    _child: ChildProcess | None = None
    _exited: bool = False
    #: Whether C{processExited} was called (or, without a protocol, would
    #: have been): set just before the call.
    _exitReported: bool = False
    _ended: bool = False
    #: Whether C{makeConnection} was called (see L{_abandon}).
    _protocolConnected: bool = False
    _clock: IReactorTime
    _termination: Termination | None = None
    _timeoutCall: IDelayedCall | None = None
    _closeCall: IDelayedCall | None = None
    _closePipesAfterExit: float | None = None
    _notifier: ExitNotifier | None = None
    _endReason: ProcessDone | ProcessTerminated | None = None
    _stateUnwatch: Callable[[], None] | None = None
    #: The monitor watching the child, set by the spawner once it watches.
    _monitor: IChildMonitor | None = None

    @property
    def spawnedPid(self) -> int | None:
        """
        The pid the child was started with, kept after it was reaped (when
        C{pid} becomes C{None}): what names the child in an exit listener,
        a log line or C{processEnded}.  Never signal it: once the child is
        reaped, the number may belong to another process.  C{None} only
        before the child is started.

        @since: txspawn 0.1
        """
        child = self._child
        return None if child is None else child.pid

    def signalProcess(self, signalID: str | int) -> None:
        """
        Send a signal to the child, through its pidfd when it has one.

        @param signalID: C{"HUP"}, C{"STOP"}, C{"INT"}, C{"KILL"}, C{"TERM"}
            or a signal number.
        @raise ProcessExitedAlready: The child has been reaped (no syscall
            is made: its pid may already be someone else's).
        """
        if signalID in SIGNAL_NAMES:
            signalID = int(getattr(signal, f"SIG{signalID}"))
        child = self._child
        if child is None or self.pid is None or child.reaped:
            raise ProcessExitedAlready()
        child.sendSignal(signalID)  # type: ignore[arg-type]

    def signalProcessGroup(self, signalID: str | int) -> None:
        """
        Send a signal to the whole process group the child leads.

        This never hits a stranger's group: the signal is only sent while
        the group leader (the child) is unreaped, and while it is, its pid
        -- which is the pgid -- cannot belong to any other process, so the
        group with that number can only be the one the child created (the
        kernel rules are spelled out in L{txspawn._transport.groupkill}).  Once the
        leader is reaped this raises without any syscall; to make sure the
        rest of the group does not outlive the leader, use L{terminate} (or
        the C{timeout} option), which kills what is left of the group while
        the exited leader is still a zombie.

        @param signalID: C{"HUP"}, C{"STOP"}, C{"INT"}, C{"KILL"}, C{"TERM"}
            or a signal number.
        @raise ValueError: The child does not lead a process group (spawn it
            with C{processGroup=0} or C{newSession=True}), or C{signalID} is
            not a known signal.
        @raise TypeError: C{signalID} is neither a name nor a number.
        @raise ProcessExitedAlready: The child has been reaped.
        """
        number = signalNumber(signalID)
        if self.processGroup is None:
            raise ValueError(
                f"the child ({self._describePid()}) does not lead a process "
                f"group: spawn it with processGroup=0 or newSession=True to "
                f"signal its group"
            )
        child = self._child
        if child is None or child.reaped:
            raise ProcessExitedAlready()
        child.signalGroup(number)

    def terminate(self, killAfter: float = DEFAULT_KILL_AFTER) -> None:
        """
        Ask the child to end: C{SIGTERM} now, C{SIGKILL} C{killAfter}
        seconds later, both to the process group it leads (else to the
        child alone).

        When the child leads a group and exits before the C{SIGKILL} while
        some of its group remain (say, grandchildren that ignore
        C{SIGTERM}), those get C{SIGKILL} as soon as the exit is seen,
        before the leader is reaped: after that the group could no longer
        be signalled safely.  With a cgroup (C{cgroup=}) the C{SIGKILL}
        is C{cgroup.kill} (the whole tree), also at once when the child
        exits before it with anything left in its cgroup.  A second call
        while a termination is in progress does nothing.

        A command that is pid 1 of its own pid namespace (C{Namespaces(pid=True,
        pidInit=False)}) and has no C{SIGTERM} handler at that moment would
        drop the C{SIGTERM} (the kernel protects a namespace's init from
        signals it does not handle): it gets the C{SIGKILL} at once.

        @param killAfter: Seconds between C{SIGTERM} and C{SIGKILL}.
        @raise TypeError: C{killAfter} is not a number.
        @raise ValueError: C{killAfter} is negative, infinite or NaN.
        @raise ProcessExitedAlready: The child has been reaped.
        """
        grace = checkSeconds(killAfter, "killAfter")
        child = self._child
        if child is None or child.reaped:
            raise ProcessExitedAlready()
        if self._termination is not None and self._termination.inProgress:
            return
        # A command that is pid 1 of its own pid namespace drops a SIGTERM
        # it has no handler for: no grace period can help it then.
        grace = terminationGrace(child, grace)
        cgroup = self._cgroup
        self._termination = Termination(
            self._clock,
            child,
            self.processGroup is not None,
            grace,
            None if cgroup is None else cgroup.leaf.kill,
        )
        self._termination.start()

    def addExitListener(self, listener: ExitListener) -> None:
        """
        Call C{listener(transport)} once the process ended, after
        C{processEnded}; at once if it already has.  Exceptions it raises
        are logged.

        @raise TypeError: C{listener} is not callable.
        """
        self._exitNotifier().add(listener)

    def removeExitListener(self, listener: ExitListener) -> None:
        """
        Undo one L{addExitListener}.

        @raise ValueError: C{listener} is not registered.
        """
        self._exitNotifier().remove(listener)

    def whenEnded(self) -> Deferred[ProcessDone | ProcessTerminated]:
        """
        A new L{Deferred} that fires, after C{processEnded} and the exit
        listeners, with the exit reason: the L{ProcessDone} or
        L{ProcessTerminated} instance (it never fails), whose C{rusage}
        attribute holds the child's resource usage.
        """
        return self._exitNotifier().whenEnded()

    def _exitNotifier(self) -> ExitNotifier:
        # Made on first use only: most transports never get a listener, and
        # their end should not pay for one.
        if self._notifier is None:
            self._notifier = ExitNotifier()
            if self._endReason is not None:
                self._notifier.fire(self, self._endReason)
        return self._notifier

    def _describePid(self) -> str:
        child = self._child
        return "not started" if child is None else f"pid {child.pid}"

    # -- arming (called by the spawner once the child is watched) ------------

    def _armLifetime(self, lifetime: LifetimeOptions) -> None:
        """
        Start the timers C{lifetime} asks for.
        """
        self._closePipesAfterExit = lifetime.closePipesAfterExit
        if lifetime.timeout is not None and not self._exited:
            self._timeoutCall = self._clock.callLater(
                lifetime.timeout, self._timeoutExpired, lifetime.killAfter
            )

    def _observeState(self, watcher: StateChangeWatcher) -> None:
        """
        Have C{watcher} report the child's stops and continues to the
        protocol (an L{IProcessStateObserver}) until it exits.
        """
        child = self._child
        assert child is not None
        # Before watching: an exception that interrupts the watch still
        # finds the way to undo it (unwatch is idempotent).
        self._stateUnwatch = lambda: watcher.unwatch(child)
        watcher.watch(child, self._childStopped, self._childContinued)

    def _childStopped(self, signum: int) -> None:
        proto = self.proto
        if proto is not None and IProcessStateObserver.providedBy(proto):
            cast(IProcessStateObserver, proto).processStopped(signum)

    def _childContinued(self) -> None:
        proto = self.proto
        if proto is not None and IProcessStateObserver.providedBy(proto):
            cast(IProcessStateObserver, proto).processContinued()

    def _timeoutExpired(self, killAfter: float) -> None:
        self._timeoutCall = None
        if self._exited:
            return
        self.timedOut = True
        try:
            self.terminate(killAfter)
        except ProcessExitedAlready:
            pass

    def _cancelCall(self, name: str) -> None:
        # Forgotten only once cancelled: run again after an interrupt, this
        # still finds the call (cancelling is skipped once it is done).
        call: IDelayedCall | None = getattr(self, name)
        if call is not None and call.active():
            call.cancel()
        setattr(self, name, None)

    def _closeAfterExit(self) -> None:
        self._closeCall = None
        if not self._ended:
            self._forceClosePipes()

    def _forceClosePipes(self) -> None:
        """
        Close every pipe/pty of the transport now, whoever still holds the
        other ends.
        """
        raise NotImplementedError

    def _childExited(self, child: ChildProcess) -> None:
        """
        The monitor reaped the child: record the result, tell the protocol
        C{processExited}, and end if the pipes are done too.

        Resumable (see L{txspawn._kernel.childhandle.completeCleanup}): run
        again after an exception interrupted it -- the clean-up of an
        interrupted spawn does (L{_abandon}) -- it does what is left, each
        step once; run again after it completed, it does nothing new.
        C{processExited} is marked delivered just before it is called, with
        nothing between where a signal handler could raise, so it is called
        exactly once.

        @param child: The reaped child (the one this transport started).
        """
        if not self._exited:
            # Stores only: no point where a handler could raise.
            self._exited = True
            self.status = child.status
            self.rusage = child.rusage
            self.pid = None
            self.lostProcess += 1
        cgroup = self._cgroup
        if self._timeoutCall is not None:
            self._cancelCall("_timeoutCall")
        if self._termination is not None:
            if cgroup is not None and self._termination.inProgress:
                cgroup.killDue = True
            self._termination.stop()
        if cgroup is not None:
            # Stats first, then kill, then the leaf's removal.
            cgroup.reaped()
        unwatch = self._stateUnwatch
        if unwatch is not None:
            # Forgotten only once done (unwatching is idempotent).
            unwatch()
            self._stateUnwatch = None
        if not self._exitReported:
            proto = self.proto
            if proto is None:
                self._exitReported = True
            else:
                # Logger.failuresHandled, without building its context
                # manager on this path (it runs right after the reactor woke
                # up, when every call is a cache miss: hence also no
                # reasonForChild() and failure() wrappers here).  The reason
                # is made before the mark.
                reason = Failure(  # type: ignore[no-untyped-call]
                    reasonFromStatus(child.status, child.rusage, self._reapStats())
                )
                self._exitReported = True
                try:
                    proto.processExited(reason)
                except BaseException:
                    _log.failure(
                        "while calling processExited:", level=LogLevel.critical
                    )
        if (
            self._closePipesAfterExit is not None
            and self._closeCall is None
            and not self._ended
            and not self._pipesDone()
        ):
            self._closeCall = self._clock.callLater(
                self._closePipesAfterExit, self._closeAfterExit
            )
        self.maybeCallProcessEnded()

    def _pipesDone(self) -> bool:
        """
        @return: whether every pipe/pty of the transport is closed.
        """
        raise NotImplementedError

    def maybeCallProcessEnded(self) -> None:
        """
        Deliver C{processEnded} if the child is reaped and every pipe is
        closed, exactly once: marked delivered (L{_ended}) just before the
        call, as C{processExited} is in L{_childExited}.
        """
        child = self._child
        if self._ended or child is None or not self._pipesDone():
            return
        if not self._exitReported:
            # Every pipe is done and the child is not reaped yet.  A process's
            # fds are closed in its exit path just before it becomes a
            # zombie, so it has almost certainly exited: have the monitor
            # reap it now (as Twisted's Process.maybeCallProcessEnded does)
            # instead of on a later reactor iteration.  If it does,
            # _childExited has run inside this call and ended the process.
            # (If it is reaped and processExited is not delivered yet, an
            # exception interrupted _childExited: run again, it ends the
            # process after processExited.)
            monitor = self._monitor
            if monitor is not None and not self._exited:
                monitor.reapIfExited(child)  # type: ignore[no-untyped-call]
            return
        if self._closeCall is not None:
            self._cancelCall("_closeCall")
        reason = reasonFromStatus(child.status, child.rusage, self._reapStats())
        proto = self.proto
        if proto is None:
            self._ended = True
        else:
            # Made before the mark, as in _childExited.
            failed = Failure(reason)  # type: ignore[no-untyped-call]
            self._ended = True
            self.proto = None
            try:
                proto.processEnded(failed)
            except BaseException:
                _log.failure("while calling processEnded:", level=LogLevel.critical)
        if self._cgroup is not None:
            self._cgroup.treeEnd.processEnded()
        self._endReason = reason
        if self._notifier is not None:
            self._notifier.fire(self, reason)

    def _reapStats(self) -> CgroupStats | None:
        return None if self._cgroup is None else self._cgroup.reapStats

    def _connect(self) -> None:
        """
        Call the protocol's C{makeConnection}; an exception is logged (as
        Twisted's C{Process.__init__} does), never raised.
        """
        proto = self.proto
        if self._cgroup is not None:
            self._cgroup.connect(proto)
        if proto is not None:
            self._protocolConnected = True
            try:
                proto.makeConnection(self)  # type: ignore[arg-type]
            except BaseException:
                _log.failure("while calling makeConnection:", level=LogLevel.critical)

    def _abandon(self) -> None:
        """
        C{spawnProcess} is raising after this transport was made, so its
        caller gets no transport: its child must not outlive the call (a
        signal handler's C{KeyboardInterrupt}, or a monitor that could not
        watch it).

        The child is killed with C{SIGKILL} and reaped now; if the monitor
        was asked to watch it (L{_monitor} is set just before), it drops it
        (L{IChildMonitor.reapIfExited} reports it if the monitor got as far
        as recording it, and unregisters and closes its pidfd), and its
        pidfd is closed.  A protocol that got C{makeConnection} then gets
        C{processExited} and, once its pipes see end of file,
        C{processEnded}, as for any killed child; a protocol that did not
        never hears of the child, and the pipes are closed now.

        Resumable: the entry point runs it (through
        L{txspawn._reactor.spawner.ProcessSpawner.abandon}) again until it
        completes, so no step is in a C{finally} clause, which an exception
        could cut short at a worse point (closing the pidfd while the
        monitor still has it registered); each step is done once whichever
        run gets to it.
        """
        child = self._child
        assert child is not None
        if not self._protocolConnected:
            self.proto = None
        if self._cgroup is not None:
            # Nothing the child started may outlive an undone spawn.
            self._cgroup.killDue = True
        child.killAndReap()
        monitor = self._monitor
        if monitor is not None:
            monitor.reapIfExited(child)  # type: ignore[no-untyped-call]
        # The monitor has unregistered the pidfd if it had registered it.
        child.closePidfd()
        if not self._protocolConnected:
            self._forceClosePipes()
        self._childExited(child)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} status={self.status}>"


def failure(exc: BaseException) -> Failure:
    """
    Wrap an exit reason (typed wrapper around Twisted's untyped C{Failure}).
    """
    return Failure(exc)  # type: ignore[no-untyped-call]
