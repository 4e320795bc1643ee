# -*- test-case-name: tests.test_groups -*-
"""
Killing process trees: signalling the process group a child leads, safely,
and the C{SIGTERM}-then-C{SIGKILL} escalation used by timeouts.

Why a group signal can never hit a stranger
===========================================

C{killpg(pgid, sig)} addresses whatever process group has that number
I{now}.  Once our child (the group leader, pgid = its pid) has been reaped,
its pid may be handed to a new, unrelated process, which may then create a
group with the same number: signalling the old pgid would hit it.  Three
kernel rules make the signal safe I{as long as the leader is unreaped}:

  1. An unreaped child -- running, or a zombie -- keeps its pid: the kernel
     never gives it to another process before C{wait}.
  2. A process group can only be I{created} by a process whose pid becomes
     the pgid (C{setpgid(0, 0)}, C{setsid()}); others can only join an
     existing group of their session.  So while our child holds pid I{N},
     any group I{N} was created by our child.
  3. A pid stays allocated while it is used as a pgid: while any member of
     group I{N} is alive, no new process gets pid I{N}.  (So when our child
     received pid I{N}, no group I{N} existed.)

Therefore group signals are sent only while the leader is unreaped: after
reaping, L{ChildProcess.signalGroup} raises
L{twisted.internet.error.ProcessExitedAlready} without any syscall.  The
reactor thread is the only one that reaps, so nothing can reap the leader
between the check and the C{killpg}.  (As with any pid-based signal,
nothing protects against I{other code} reaping our children behind our
back: C{SIGCHLD} set to C{SIG_IGN}, or C{waitpid(-1)} elsewhere.)

The leader's exit would end that window while grandchildren may still run.
The monitors therefore call the child's I{before reap} hook
(L{txspawn._kernel.childhandle.ChildProcess.beforeReap}) when they see the exit, while
the leader is still a zombie: a L{Termination} in progress uses it to
C{SIGKILL} whatever is left of the group, and only then is the leader
reaped.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger

from txspawn._kernel.childhandle import ChildProcess

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = [
    "SIGNAL_NAMES",
    "Termination",
    "checkSeconds",
    "signalNumber",
]

_log = Logger()

#: The signal names C{signalProcess} accepts as strings (Twisted's list).
SIGNAL_NAMES = ("HUP", "STOP", "INT", "KILL", "TERM")

_VALID_SIGNALS = frozenset(int(s) for s in signal.valid_signals())


def signalNumber(signalID: object, argument: str = "signalID") -> int:
    """
    Normalise a signal given as C{signalProcess} accepts it.

    @param signalID: One of L{SIGNAL_NAMES} or a signal number.
    @param argument: The argument's name, for messages.
    @return: The signal number.
    @raise TypeError: for anything but a C{str} or an C{int} (a C{bool} is
        not a signal).
    @raise ValueError: for an unknown name, or a number that is not a
        valid signal.
    """
    if isinstance(signalID, str):
        if signalID not in SIGNAL_NAMES:
            raise ValueError(
                f"{argument} must be one of {', '.join(SIGNAL_NAMES)} or a "
                f"signal number, not {signalID!r}"
            )
        return int(getattr(signal, f"SIG{signalID}"))
    if isinstance(signalID, bool) or not isinstance(signalID, int):
        raise TypeError(f"{argument} must be a signal name or number, not {signalID!r}")
    if signalID != 0 and signalID not in _VALID_SIGNALS:
        raise ValueError(f"{argument} is not a valid signal number: {signalID!r}")
    return int(signalID)


def checkSeconds(value: object, name: str, *, positive: bool = False) -> float:
    """
    Validate a duration argument.

    @param value: The value given (an C{int} or a C{float}).
    @param name: The argument's name, for messages.
    @param positive: Whether zero is refused too.
    @return: The value as a L{float}.
    @raise TypeError: if C{value} is not a number (a C{bool} is not).
    @raise ValueError: if it is negative (or zero when C{positive}), not a
        number, or infinite (an C{int} beyond the largest L{float} included).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        # An int beyond the largest double (10**400): as good as infinite,
        # and refused as such rather than escaping as an error naming
        # nothing.
        seconds = math.inf if value > 0 else -math.inf
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        kind = "positive" if positive else "zero or more"
        raise ValueError(
            f"{name} must be a finite number of seconds, {kind}, not {value!r}"
        )
    return seconds


class Termination:
    """
    One escalating kill: C{SIGTERM} now, C{SIGKILL} after a grace period,
    to the child's process group when it leads one (else to the child).

    While it is in progress and the child leads a group, the child's
    before-reap hook is set: when the leader exits (on C{SIGTERM}, say)
    while some of its group survive (they ignore C{SIGTERM}), the rest of
    the group gets C{SIGKILL} before the leader is reaped -- the last
    moment the pgid can be addressed safely.

    A child in a cgroup of its own (C{killTree} given) has its whole tree
    killed instead of only its group: the C{SIGKILL} step also writes the
    leaf's C{cgroup.kill}, which reaches every descendant (those that
    called C{setsid}, and the daemons of daemons, included), and so does
    the before-reap hook when the child exits during the grace period:
    whatever is still in its cgroup then is killed at once.  A cgroup
    cannot be reused behind our back as a pgid can, so that needs no
    unreaped leader; it is done from the same hook only to do it as early
    as the exit is seen.

    @ivar inProgress: Whether the termination has started and the child is
        not reaped yet.
    """

    def __init__(
        self,
        clock: IReactorTime,
        child: ChildProcess,
        leadsGroup: bool,
        killAfter: float,
        killTree: Callable[[], None] | None = None,
    ) -> None:
        """
        @param clock: Schedules the C{SIGKILL}.
        @param child: The child (unreaped).
        @param leadsGroup: Whether to signal the group whose pgid is the
            child's pid rather than the child alone.
        @param killAfter: Seconds between C{SIGTERM} and C{SIGKILL}
            (validated by the caller).
        @param killTree: For a child in a cgroup of its own: kill every
            process in it (C{cgroup.kill}); C{None} otherwise.
        """
        self._clock = clock
        self._child = child
        self._leadsGroup = leadsGroup
        self._killAfter = killAfter
        self._killTree = killTree
        self._killCall: IDelayedCall | None = None
        self.inProgress = False

    def start(self) -> None:
        """
        Send C{SIGTERM} and schedule the C{SIGKILL}.

        @raise ProcessExitedAlready: if the child is already reaped.
        """
        if self._child.reaped:
            raise ProcessExitedAlready()
        self.inProgress = True
        if self._leadsGroup or self._killTree is not None:
            self._child.beforeReap = self._leaderExiting
        self._send(signal.SIGTERM)
        self._killCall = self._clock.callLater(self._killAfter, self._escalate)

    def stop(self) -> None:
        """
        The child was reaped: nothing more to do (idempotent).
        """
        self.inProgress = False
        if self._child.beforeReap == self._leaderExiting:
            self._child.beforeReap = None
        call, self._killCall = self._killCall, None
        if call is not None and call.active():
            call.cancel()

    def _escalate(self) -> None:
        self._killCall = None
        if self.inProgress:
            self._send(signal.SIGKILL)
            self._killWholeTree()

    def _killWholeTree(self) -> None:
        killTree = self._killTree
        if killTree is None:
            return
        try:
            killTree()
        except OSError:
            _log.failure(
                "txspawn: could not kill the cgroup of pid {pid}", pid=self._child.pid
            )

    def _send(self, signum: int) -> None:
        send: Callable[[int], None] = (
            self._child.signalGroup if self._leadsGroup else self._child.sendSignal
        )
        try:
            send(signum)
        except ProcessExitedAlready:
            # Exited meanwhile; the monitor will reap it (and the hook kills
            # the rest of the group first).
            pass

    def _leaderExiting(self, child: ChildProcess) -> None:
        # The leader is a zombie: the pgid is still ours.  Whatever is left
        # of the group would otherwise outlive our last safe chance to
        # address it.  What is left of its cgroup is killed now too: the
        # termination ends with the leader's reaping, and nothing must be
        # left of the tree it was asked to end.
        if self.inProgress:
            if self._leadsGroup:
                self._send(signal.SIGKILL)
            self._killWholeTree()
