# -*- test-case-name: tests.test_supervise_backoff -*-
"""
The restart backoff policy of a supervised program: how long to wait before
the next start, when a run counts as stable, and when to give up.

Pure: no clock, no reactor.  L{txspawn.supervise.program.ProgramProcess}
counts the failures and asks this policy what they mean.

@since: txspawn 0.1
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from attrs import field, frozen

__all__ = ["Backoff"]


def _checkSeconds(value: object, name: str) -> float:
    """
    Check a finite number of seconds, C{>= 0}, for the field C{name}.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Backoff.{name} must be a number, not {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"Backoff.{name} must be finite and >= 0, not {value!r}")
    return seconds


def _initial(value: object) -> float:
    return _checkSeconds(value, "initial")


def _max(value: object) -> float:
    return _checkSeconds(value, "max")


def _resetAfter(value: object) -> float:
    return _checkSeconds(value, "resetAfter")


def _factor(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Backoff.factor must be a number, not {value!r}")
    factor = float(value)
    if not math.isfinite(factor) or factor < 1:
        raise ValueError(f"Backoff.factor must be finite and >= 1, not {value!r}")
    return factor


def _giveUpAfter(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Backoff.giveUpAfter must be an int or None, not {value!r}")
    if value < 1:
        raise ValueError(f"Backoff.giveUpAfter must be >= 1, not {value!r}")
    return value


def _jitter(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Backoff.jitter must be a number, not {value!r}")
    jitter = float(value)
    if not 0 <= jitter <= 1:
        raise ValueError(f"Backoff.jitter must be between 0 and 1, not {value!r}")
    return jitter


@frozen
class Backoff:
    """
    When to start a program again after it failed.

    A I{failure} is a run that ended, and is to be restarted, before it
    stayed up L{resetAfter} seconds, or a start that could not be made for
    a passing reason (see L{txspawn.supervise.program.ProgramProcess}).  The
    program counts I{consecutive} failures: a run that stayed up
    L{resetAfter} seconds sets the count back to 0, and its exit is
    followed by a start at once.

    After the C{n}th consecutive failure the program waits L{delay}C{(n)}
    seconds: C{initial}, then C{initial * factor}, C{initial * factor**2},
    ... never more than C{max}; exactly, unless L{jitter} is set.  When the
    count reaches L{giveUpAfter} the program gives up (C{FATAL}) instead.

    @ivar initial: The delay after the first failure, in seconds (C{>= 0}).
    @ivar factor: What each further failure multiplies the delay by
        (C{>= 1}; C{1} for a constant delay).
    @ivar max: The longest delay, in seconds (C{>= 0}).
    @ivar resetAfter: How long a run must stay up, in seconds from its
        spawn, to count as stable (C{>= 0}).
    @ivar giveUpAfter: How many consecutive failures make the program give
        up (C{>= 1}), or C{None} to never give up.
    @ivar jitter: A fraction between 0 and 1: each delay is shortened by a
        random part of it up to this fraction (a delay C{d} becomes one
        drawn uniformly from C{[d * (1 - jitter), d]}), so that programs
        that failed together do not all restart together.  C{0} (the
        default) gives the exact delays.

    @since: txspawn 0.1
    """

    initial: float = field(default=1.0, converter=_initial)
    factor: float = field(default=2.0, converter=_factor)
    max: float = field(default=60.0, converter=_max)
    resetAfter: float = field(default=30.0, converter=_resetAfter)
    giveUpAfter: int | None = field(default=10, converter=_giveUpAfter)
    jitter: float = field(default=0.0, converter=_jitter, kw_only=True)

    def delay(
        self, failures: int, random: Callable[[], float] = random.random
    ) -> float:
        """
        How long to wait before the next start after C{failures}
        consecutive failures.

        @param failures: The count of consecutive failures (C{>= 0}); after
            none the delay is C{0}.
        @param random: Draws a number in C{[0, 1)}, for L{jitter} (only
            called when L{jitter} is not 0).
        @return: C{0.0} for no failure, else C{min(max, initial *
            factor ** (failures - 1))}, shortened by the L{jitter}.
        @raise ValueError: C{failures} is negative.
        """
        if failures < 0:
            raise ValueError(f"failures must be >= 0, not {failures!r}")
        if failures == 0:
            return 0.0
        exact = self._exactDelay(failures - 1)
        if self.jitter:
            exact -= exact * self.jitter * random()
        return exact

    def _exactDelay(self, growths: int) -> float:
        """
        C{min(max, initial * factor ** growths)}, without computing a power
        that would overflow (a long crash loop counts many failures).
        """
        if self.initial == 0 or self.factor == 1 or self.initial >= self.max:
            return min(self.initial, self.max)
        if growths * math.log(self.factor) >= math.log(self.max / self.initial):
            return self.max
        return min(self.max, self.initial * self.factor**growths)

    def givesUp(self, failures: int) -> bool:
        """
        Whether C{failures} consecutive failures make the program give up.

        @param failures: The count of consecutive failures.
        @return: C{True} once C{failures} reached L{giveUpAfter}; never
            when L{giveUpAfter} is C{None}.
        """
        return self.giveUpAfter is not None and failures >= self.giveUpAfter

    def isStable(self, uptime: float) -> bool:
        """
        Whether a run that lasted C{uptime} seconds counts as stable (its
        end resets the count of failures).

        @param uptime: Seconds from the spawn to the exit.
        @return: C{uptime >= resetAfter}.
        """
        return uptime >= self.resetAfter
