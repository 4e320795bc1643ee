# -*- test-case-name: tests.test_supervise_program -*-
"""
One supervised program instance: a state machine (automat's
C{automat.TypeMachineBuilder}) driven by a reactor's clock and its
C{spawnProcess}.

The rules, in one place (each transition is reported to the observers with
why it happened):

  - C{start()} from C{STOPPED}, C{EXITED} or C{FATAL}: the count of
    failures goes back to 0 and a child is spawned (C{STARTING}).
  - The readiness check passes: C{RUNNING}.
  - The spawn fails (L{txspawn.errors.SpawnError}, raised by
    C{spawnProcess}): for a passing shortage (C{EAGAIN}, C{EMFILE},
    C{ENFILE}, C{ENOMEM}) it is a failed start (below); for anything else
    (a missing executable, C{EACCES}, a bad option) it is C{FATAL} at once,
    with the error kept in L{ProgramProcess.lastSpawnError}: a retry would
    fail the same way, so the program never loops on it.
  - The child exits in C{STARTING} (or after failing its readiness check):
    if the restart policy restarts that exit, it is a failed start: the
    count of failures grows and the program goes to C{BACKOFF} for
    L{Backoff.delay}C{(failures)} seconds, then spawns again
    (C{STARTING}); or to C{FATAL} once the count reaches
    L{Backoff.giveUpAfter}.  An exit the policy does not restart is
    C{EXITED} for a success (exit code 0) and C{FATAL} for a failure (the
    program never got going).
  - The child exits in C{RUNNING}: C{EXITED}.  If the policy restarts that
    exit: a run that stayed up L{Backoff.resetAfter} seconds (from its
    spawn) was stable, so the count of failures goes back to 0 and the
    program spawns again at once (C{STARTING}); a shorter run is a failure
    (C{BACKOFF}, or C{FATAL} at the give-up limit) like a failed start.
  - C{stop()} in C{STARTING} or C{RUNNING}: C{STOPPING}: the stop signal,
    then C{SIGKILL} after the stop timeout (to the whole cgroup when the
    child has one, else to the process group it leads, else to the child);
    when the child has exited, C{STOPPED}.  In C{BACKOFF}: C{STOPPED} at
    once (the pending start is cancelled).
  - C{start()} while a child is alive or a start is pending, and C{stop()}
    when there is nothing to stop, do nothing.

@since: txspawn 0.1
"""

from __future__ import annotations

import errno
import signal as _signal
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import (
    IDelayedCall,
    IProcessTransport,
    IReactorProcess,
    IReactorTime,
)
from twisted.logger import Logger

from txspawn.errors import SpawnError
from txspawn.interfaces import (
    IManagedProcessTransport,
    IReactorSpawn,
)
from txspawn.options import CgroupStats
from txspawn.supervise._childprotocol import ChildProtocol
from txspawn.supervise._machine import ProgramInputs, buildMachine
from txspawn.supervise._runspec import ProgramSpawn, Restart
from txspawn.supervise.backoff import Backoff
from txspawn.supervise.states import (
    IChildObserver,
    IProgramObserver,
    IReadinessCheck,
    ProgramState,
    ReadyAfter,
    describeExit,
)

__all__ = ["ProgramProcess", "ProgramSpawn", "Restart"]

_log = Logger()

#: Spawn failures that a later attempt may not meet: resources that were
#: short for a moment.  Every other spawn failure is FATAL at once.
_PASSING_ERRNOS = frozenset({errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOMEM})


class ProgramProcess:
    """
    One instance of a supervised program, with supervisor's states
    (L{ProgramState}): the rules are in the docstring of
    L{txspawn.supervise.program}.

    @ivar name: The instance's name (C{"web"}, C{"worker:0"}).
    @ivar state: The current L{ProgramState}.
    @ivar failures: The count of consecutive failures the backoff counts.
    @ivar restarts: How many times the program was started again on its
        own (after a backoff or a stable run), since it was created.
    @ivar lastExit: The exit reason of the last child
        (L{ProcessDone}/L{ProcessTerminated}, with its C{rusage}), or
        C{None}.
    @ivar lastSpawnError: The exception of the last spawn that failed (a
        L{SpawnError} keeps its C{errno}, C{filename} and C{stage}), or
        C{None}; cleared by the next successful spawn.
    @ivar startedAt: When the current (or last) child was spawned, on the
        reactor's clock, or C{None}.
    @ivar lastTreeStats: The final statistics of the last run's cgroup
        (L{CgroupStats}), once its tree ended; C{None} before, and for runs
        without a cgroup.

    @since: txspawn 0.1
    """

    def __init__(
        self,
        name: str,
        reactor: IReactorProcess,
        spawn: ProgramSpawn,
        *,
        restart: Restart = Restart.ON_FAILURE,
        backoff: Backoff | None = None,
        readiness: IReadinessCheck | None = None,
        stopSignal: int = _signal.SIGTERM,
        stopTimeout: float = 10.0,
        closePipesAfterExit: float | None = 1.0,
        output: Callable[[int, bytes], object] | None = None,
        groupEnd: Callable[[int], Deferred[None]] | None = None,
    ) -> None:
        """
        @param name: The instance's name.
        @param reactor: Provides L{IReactorProcess} and L{IReactorTime}
            (a txspawn reactor, or L{txspawn.testing.MemoryProcessReactor}).
        @param spawn: What to spawn.
        @param restart: Which exits are followed by a new start.
        @param backoff: The backoff policy (default: L{Backoff}C{()}).
        @param readiness: Decides when a child is ready (default: ready
            after 1 second up, L{ReadyAfter}).
        @param stopSignal: The signal that asks the child to stop.
        @param stopTimeout: Seconds between the stop signal and C{SIGKILL}.
        @param closePipesAfterExit: Given to a reactor providing
            L{IReactorSpawn}: seconds after a child's exit at which its
            pipes are closed even if descendants hold them, so that its end
            is seen.
        @param output: Called with C{(childFD, data)} for the child's
            output, or C{None} to drop it.
        @param groupEnd: For a child without a cgroup that leads a process
            group and ends during a stop: called with the group's id, its
            L{Deferred} firing once the group is empty (the stop waits for
            it); C{None}: the stop waits for the child alone.
        """
        self.name = name
        self._reactor = reactor
        self._clock: IReactorTime = reactor  # type: ignore[assignment]
        self._spawn = spawn
        self._restart = restart
        self._backoff = Backoff() if backoff is None else backoff
        self._readiness = ReadyAfter(self._clock) if readiness is None else readiness
        self._stopSignal = stopSignal
        self._stopTimeout = stopTimeout
        self._closePipesAfterExit = closePipesAfterExit
        self._output = output
        self._groupEnd = groupEnd
        self.state = ProgramState.STOPPED
        self.failures = 0
        self.restarts = 0
        self.lastExit: ProcessDone | ProcessTerminated | None = None
        self.lastSpawnError: Exception | None = None
        self.startedAt: float | None = None
        self.lastTreeStats: CgroupStats | None = None
        self._transport: IProcessTransport | None = None
        self._lastTransport: IProcessTransport | None = None
        self._lingering: list[ChildProtocol] = []
        self._retryCall: IDelayedCall | None = None
        self._killCall: IDelayedCall | None = None
        self._notReadyWhy: str | None = None
        self._observers: list[IProgramObserver] = []
        self._stopWaiters: list[Deferred[None]] = []
        self._inputs: ProgramInputs = buildMachine(self)

    def __repr__(self) -> str:
        return f"<ProgramProcess {self.name!r} {self.state.name} pid={self.pid}>"

    # -- what a supervisor looks at ---------------------------------------------

    @property
    def pid(self) -> int | None:
        """
        The pid of the child while it runs (until it is reaped), else
        C{None}.
        """
        if self._transport is None:
            return None
        pid: int | None = self._transport.pid
        return pid

    @property
    def transport(self) -> IProcessTransport | None:
        """
        The transport of the child while it runs (until it is reaped), else
        C{None}: an L{IManagedProcessTransport} on a txspawn reactor.
        Read-only: signal the child through the program (L{stop}) or
        through this transport, never replace it.
        """
        return self._transport

    @property
    def lastTransport(self) -> IProcessTransport | None:
        """
        The transport of the current child, else of the last one (kept
        after it was reaped, for its C{rusage} and C{cgroupStats}), else
        C{None}.
        """
        return self._lastTransport

    @property
    def treeAlive(self) -> bool:
        """
        Whether a child of this program, or a process of a run's cgroup,
        may still be alive: L{stop}'s L{Deferred} waits until this is
        C{False}.
        """
        return self._transport is not None or bool(self._lingering)

    def uptime(self) -> float:
        """
        Seconds since the current child was spawned; C{0.0} when no child
        is alive.
        """
        if self._transport is None or self.startedAt is None:
            return 0.0
        return self._clock.seconds() - self.startedAt

    def addObserver(self, observer: IProgramObserver) -> None:
        """
        Have C{observer} hear every transition from now on.
        """
        self._observers.append(observer)

    def removeObserver(self, observer: IProgramObserver) -> None:
        """
        Undo L{addObserver}.

        @raise ValueError: C{observer} was not added.
        """
        self._observers.remove(observer)

    # -- what a supervisor does -------------------------------------------------

    def start(self) -> None:
        """
        Start the program, if it is C{STOPPED}, C{EXITED} or C{FATAL}; else
        do nothing (it is running, starting, backing off or stopping:
        start it again once L{stop}'s L{Deferred} fired).
        """
        self._inputs.start()

    def stop(self) -> Deferred[None]:
        """
        Stop the program: see the rules in L{txspawn.supervise.program}.

        @return: A L{Deferred} firing with C{None} once the program has no
            child alive and every process of its runs' cgroups has exited
            (a child with a cgroup: when its tree ended, descendants that
            left its session included; without one, when the child
            ended); at once if nothing is alive.
        """
        self._inputs.stop()
        if not self.treeAlive:
            return succeed(None)
        if self._transport is None:
            # Only descendants of ended runs are left: the stop signal
            # has no child to reach, so they are killed now.
            self._killLingering()
        waiter: Deferred[None] = Deferred()
        self._stopWaiters.append(waiter)
        return waiter

    # -- the machine's actions --------------------------------------------------

    def _moved(self, new: ProgramState, why: str) -> None:
        old, self.state = self.state, new
        for observer in list(self._observers):
            try:
                observer.transition(self, old, new, why)
            except BaseException:
                _log.failure(
                    "observer {observer!r} of {program!r} failed",
                    observer=observer,
                    program=self,
                )
        self._fireStopWaiters()

    def _fireStopWaiters(self) -> None:
        if not self.treeAlive and self._stopWaiters:
            waiters, self._stopWaiters = self._stopWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _treeEnded(self, run: ChildProtocol) -> None:
        """
        Every process of C{run}'s cgroup exited.
        """
        if run in self._lingering:
            self._lingering.remove(run)
        self._fireStopWaiters()

    def _killLingering(self) -> None:
        """
        Kill what is left in the cgroups of ended runs.
        """
        for run in list(self._lingering):
            transport = run.transport
            if IManagedProcessTransport.providedBy(transport):
                try:
                    transport.killTree()
                except (ValueError, OSError) as error:
                    _log.warn(
                        "cannot kill what is left of {program!r}: {error}",
                        program=self,
                        error=error,
                    )

    def _spawnChild(self) -> None:
        """
        Spawn a child; a failure becomes the machine's next input.
        """
        spec = self._spawn
        options: dict[str, Any] = spec.keywordOptions()
        if IReactorSpawn.providedBy(self._reactor):
            options["closePipesAfterExit"] = self._closePipesAfterExit
        self._notReadyWhy = None
        protocol = ChildProtocol(self, self._output)
        # Twisted's stub wants all str or all bytes; txspawn takes a mix.
        spawnProcess: Callable[..., IProcessTransport] = self._reactor.spawnProcess
        try:
            transport = spawnProcess(
                protocol,
                spec.argv[0],
                spec.argv,
                env=spec.env,
                path=spec.path,
                uid=spec.uid,
                gid=spec.gid,
                childFDs=spec.childFDs,
                **options,
            )
        except Exception as error:
            self.lastSpawnError = error
            why = f"spawn failed: {error}"
            if isinstance(error, SpawnError) and error.errno in _PASSING_ERRNOS:
                self._failed(why)
            else:
                self._inputs.fail(why)
            return
        self.lastSpawnError = None
        protocol.hasCgroup = (
            IManagedProcessTransport.providedBy(transport)
            and transport.cgroupPath is not None
        )
        self._transport = self._lastTransport = transport
        self.startedAt = self._clock.seconds()
        for observer in list(self._observers):
            if IChildObserver.providedBy(observer):
                try:
                    observer.childSpawned(self, transport.pid)
                except BaseException:
                    _log.failure(
                        "observer {observer!r} of {program!r} failed",
                        observer=observer,
                        program=self,
                    )
        if spec.childFDs is None:
            # No one writes to the child: let it read end-of-file.
            transport.closeStdin()
        pid = transport.pid
        assert pid is not None
        self._readiness.start(pid).addCallbacks(
            lambda _: self._inputs.ready(),
            lambda failure: self._inputs.notReady(
                f"not ready: {failure.getErrorMessage()}"
            ),
        )

    def _failed(self, why: str) -> None:
        """
        One more failure: back off, or give up at the limit.
        """
        self.failures += 1
        if self._backoff.givesUp(self.failures):
            self._inputs.fail(f"{why}; gave up after {self.failures} failures")
        else:
            self._inputs.backOff(why)

    def _childEnded(self, reason: BaseException | None) -> None:
        """
        The child ended (reaped, pipes closed): decide what it means.
        """
        assert isinstance(reason, ProcessDone | ProcessTerminated)
        state = self.state
        uptime = self.uptime()
        self._readiness.cancel()
        self._cancelKill()
        self._transport = None
        self.lastExit = reason
        why = f"{describeExit(reason)} after {uptime:.1f} s"
        if state is ProgramState.STARTING:
            if self._notReadyWhy is not None:
                why = f"{self._notReadyWhy}; {why}"
                wanted = self._restart is not Restart.NEVER
            else:
                wanted = self._restart.restarts(reason)
            if wanted:
                self._failed(why)
            elif isinstance(reason, ProcessDone) and self._notReadyWhy is None:
                self._inputs.exit(why)
            else:
                self._inputs.fail(why)
        elif state is ProgramState.RUNNING:
            stable = self._backoff.isStable(uptime)
            if stable:
                self.failures = 0
            self._inputs.exit(why)
            if not self._restart.restarts(reason):
                return
            if stable:
                self._inputs.restart("restarting after a stable run")
            else:
                self._failed(f"{why}, before {self._backoff.resetAfter:g} s up")
        else:
            self._inputs.exit(why)

    def _terminate(self) -> None:
        """
        Ask the child to stop; kill it after the stop timeout.
        """
        self._readiness.cancel()
        transport = self._transport
        assert transport is not None
        try:
            if self._stopSignal == _signal.SIGTERM and (
                IManagedProcessTransport.providedBy(transport)
            ):
                # The transport's own escalation also kills what is left of
                # the child's group (or cgroup) when the leader exits first.
                transport.terminate(self._stopTimeout)
                return
            self._signalChild(self._stopSignal)
        except ProcessExitedAlready:
            # Reaped; its end is on its way.
            return
        self._killCall = self._clock.callLater(self._stopTimeout, self._kill)

    def _signalChild(self, number: int) -> None:
        transport = self._transport
        assert transport is not None
        if IManagedProcessTransport.providedBy(transport):
            if number == _signal.SIGKILL and transport.cgroupPath is not None:
                transport.killTree()
                return
            if transport.processGroup is not None:
                transport.signalProcessGroup(number)
                return
        transport.signalProcess(number)

    def _kill(self) -> None:
        self._killCall = None
        try:
            self._signalChild(_signal.SIGKILL)
        except ProcessExitedAlready:
            pass

    def _cancelKill(self) -> None:
        if self._killCall is not None:
            self._killCall.cancel()
            self._killCall = None

    def _scheduleRetry(self) -> None:
        delay = self._backoff.delay(self.failures)
        self._retryCall = self._clock.callLater(delay, self._retryNow)

    def _retryNow(self) -> None:
        self._retryCall = None
        self._inputs.retry()

    def _cancelRetry(self) -> None:
        if self._retryCall is not None:
            self._retryCall.cancel()
            self._retryCall = None
