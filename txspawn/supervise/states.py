# -*- test-case-name: tests.test_supervise_program -*-
"""
The vocabulary of a supervised program: its states (supervisor's names),
the interface that hears its transitions, and the interface of a readiness
check with its simplest provider, "ready after N seconds up".

@since: txspawn 0.1
"""

from __future__ import annotations

import enum
import math
import signal as _signal

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import Interface, implementer

__all__ = [
    "IChildObserver",
    "IProgramObserver",
    "IReadinessCheck",
    "ProgramState",
    "ReadyAfter",
    "describeExit",
]


class ProgramState(enum.Enum):
    """
    Where a program is in its life: supervisor's states, with its names.

    @cvar STOPPED: Never started, or stopped on request.
    @cvar STARTING: A child was spawned; it is not ready yet.
    @cvar RUNNING: The child is ready (its readiness check passed).
    @cvar BACKOFF: The last run failed; the next start waits for the
        backoff delay.
    @cvar STOPPING: A stop was requested; the child was sent the stop
        signal and is killed if it outlives the stop timeout.
    @cvar EXITED: The child exited on its own, from C{RUNNING} (or from
        C{STARTING} with a success its restart policy does not restart);
        a restart, if the policy wants one, leaves this state at once.
    @cvar FATAL: The program could not be started and will not be retried
        until it is started again: the spawn failed for a reason a retry
        cannot fix (a missing executable), the count of failed starts
        reached the give-up limit, or a failed run is not to be restarted.

    @since: txspawn 0.1
    """

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"

    @property
    def hasChild(self) -> bool:
        """
        Whether a program in this state has a child alive (or not yet
        reaped): C{STARTING}, C{RUNNING} and C{STOPPING}.
        """
        return self in _WITH_CHILD


_WITH_CHILD = frozenset(
    {ProgramState.STARTING, ProgramState.RUNNING, ProgramState.STOPPING}
)


class IProgramObserver(Interface):
    """
    Hears every state transition of a
    L{txspawn.supervise.program.ProgramProcess}.

    @since: txspawn 0.1
    """

    def transition(
        program: object, old: ProgramState, new: ProgramState, why: str
    ) -> None:
        """
        The program moved from C{old} to C{new}; called after the move
        (C{program.state} is C{new}), once per transition, in order.  An
        exception it raises is logged and does not stop the program or the
        other observers.

        @param program: The L{txspawn.supervise.program.ProgramProcess}.
        @param old: The state it left.
        @param new: The state it entered.
        @param why: Why, for a person: C{"start requested"}, C{"exited with
            code 1 after 0.2 s"}, C{"spawn failed: ..."}, ...
        """


class IChildObserver(IProgramObserver):
    """
    An L{IProgramObserver} that also hears each child spawned, with its pid
    (the C{STARTING} transition is told before the spawn, when there is no
    pid yet): what writes the "spawned pid N" marker in a program's logs.

    @since: txspawn 0.1
    """

    def childSpawned(program: object, pid: int | None) -> None:
        """
        A child was spawned for C{program} (right after C{spawnProcess}
        returned, before its readiness check starts).  An exception it
        raises is logged.

        @param program: The L{txspawn.supervise.program.ProgramProcess}.
        @param pid: The child's pid.
        """


class IReadinessCheck(Interface):
    """
    Decides when a started child is ready (C{STARTING} to C{RUNNING}).

    One check object serves every run of a program: L{start} is called
    once per spawn, and L{cancel} abandons the current run's check (the
    child exited, or a stop was requested).

    @since: txspawn 0.1
    """

    def start(pid: int) -> Deferred[None]:
        """
        Start checking the child just spawned.

        @param pid: The child's pid.
        @return: A L{Deferred} firing with C{None} when the child is ready,
            or failing with why it never will be (the program then treats
            the run as a failed start and stops the child).  It may fire
            before L{start} returns.
        """

    def cancel() -> None:
        """
        Abandon the current check: its L{Deferred} must then never fire.
        Nothing happens when no check is in progress.
        """


@implementer(IReadinessCheck)
class ReadyAfter:
    """
    Ready once the child stayed up a number of seconds (supervisor's
    C{startsecs}).

    @ivar seconds: How long the child must stay up; C{0} is ready at once.

    @since: txspawn 0.1
    """

    def __init__(self, clock: IReactorTime, seconds: float = 1.0) -> None:
        """
        @param clock: The clock to count on.
        @param seconds: How long the child must stay up (finite, C{>= 0}).
        @raise ValueError: C{seconds} is negative or not finite.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"ReadyAfter seconds must be >= 0, not {seconds!r}")
        self.seconds = float(seconds)
        self._clock = clock
        self._call: IDelayedCall | None = None

    def start(self, pid: int) -> Deferred[None]:
        """
        Fire in L{seconds} seconds (at once for 0).
        """
        self.cancel()
        ready: Deferred[None] = Deferred()
        if self.seconds == 0:
            ready.callback(None)
        else:
            self._call = self._clock.callLater(self.seconds, self._fire, ready)
        return ready

    def _fire(self, ready: Deferred[None]) -> None:
        self._call = None
        ready.callback(None)

    def cancel(self) -> None:
        """
        Forget the pending check, if any.
        """
        if self._call is not None:
            self._call.cancel()
            self._call = None


def describeExit(reason: ProcessDone | ProcessTerminated) -> str:
    """
    An exit reason, for a person: C{"exited with code 1"}, C{"killed by
    SIGKILL"}.
    """
    if reason.signal is not None:
        try:
            name = _signal.Signals(reason.signal).name
        except ValueError:
            name = f"signal {reason.signal}"
        return f"killed by {name}"
    return f"exited with code {reason.exitCode}"
