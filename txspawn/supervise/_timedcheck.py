# -*- test-case-name: tests.test_supervise_readiness -*-
"""
What every readiness check shares: the current run's L{Deferred}, its
deadline (the check fails with L{NotReady} once it passes), and the
growing pause between two attempts of a polling check.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["FIRST_INTERVAL", "MAX_INTERVAL", "NotReady", "TimedCheck"]

#: The first pause between two attempts of a polling check, and the
#: longest: it doubles from the first up to the longest.
FIRST_INTERVAL = 0.1
MAX_INTERVAL = 1.0


class NotReady(Exception):
    """
    A readiness check gave up: the timeout passed, or the check cannot run
    at all (a check command that cannot be executed).

    @since: txspawn 0.1
    """


class TimedCheck:
    """
    The state every check shares: the current run's L{Deferred}, its
    deadline, and the growing pause between polling attempts.
    """

    def __init__(self, clock: IReactorTime, timeout: float) -> None:
        if not math.isfinite(timeout) or timeout < 0:
            raise ValueError(f"timeout must be >= 0, not {timeout!r}")
        self._clock = clock
        self.timeout = float(timeout)
        self._ready: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None
        self._next: IDelayedCall | None = None
        self._interval = FIRST_INTERVAL
        self._lastProblem = ""

    @property
    def checking(self) -> bool:
        """
        Whether a run's check is in progress.
        """
        return self._ready is not None

    def _begin(self) -> Deferred[None]:
        self.cancel()
        ready: Deferred[None] = Deferred()
        self._ready = ready
        self._interval = FIRST_INTERVAL
        self._lastProblem = ""
        self._deadline = self._clock.callLater(self.timeout, self._timedOut)
        return ready

    def _timedOut(self) -> None:
        self._deadline = None
        why = f"{self._describe()} within {self.timeout:g} s"
        if self._lastProblem:
            why = f"{why} (last: {self._lastProblem})"
        self._fail(NotReady(why))

    def _describe(self) -> str:
        raise NotImplementedError()

    def _again(self, attempt: Callable[[], object], problem: str) -> None:
        """
        The attempt failed with C{problem}: try again after the pause.
        """
        self._lastProblem = problem
        if self._ready is None:
            return
        self._next = self._clock.callLater(self._interval, self._fromTimer, attempt)
        self._interval = min(self._interval * 2, MAX_INTERVAL)

    def _fromTimer(self, attempt: Callable[[], object]) -> None:
        self._next = None
        attempt()

    def _succeed(self) -> None:
        ready = self._end()
        if ready is not None:
            ready.callback(None)

    def _fail(self, error: Exception) -> None:
        ready = self._end()
        if ready is not None:
            ready.errback(error)

    def _end(self) -> Deferred[None] | None:
        ready, self._ready = self._ready, None
        for call in (self._deadline, self._next):
            if call is not None and call.active():
                call.cancel()
        self._deadline = self._next = None
        self._stopAttempt()
        return ready

    def _stopAttempt(self) -> None:
        """
        Abandon the attempt in progress, if any (subclasses).
        """

    def cancel(self) -> None:
        """
        Abandon the current check: its L{Deferred} never fires.
        """
        self._end()
