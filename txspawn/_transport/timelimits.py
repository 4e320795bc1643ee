# -*- test-case-name: tests.test_timeouts -*-
"""
The spawn options that govern a child's lifetime from the parent's side:
how long it may run, how long it gets to die, and how long its pipes are
kept open after it exited.

They are not L{txspawn.options.SpawnOptions}: those describe the child's
world and go to the engine; these only arm timers on the transport.
L{splitLifetimeOptions} takes them out of C{spawnProcess}'s keyword
options and validates them before anything is opened or started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from txspawn._transport.groupkill import checkSeconds

__all__ = [
    "DEFAULT_KILL_AFTER",
    "LIFETIME_OPTIONS",
    "NO_LIFETIME",
    "LifetimeOptions",
    "splitLifetimeOptions",
]

#: The grace period between C{SIGTERM} and C{SIGKILL} when none is given.
DEFAULT_KILL_AFTER = 5.0

#: The keyword options L{splitLifetimeOptions} takes.
LIFETIME_OPTIONS = ("timeout", "killAfter", "closePipesAfterExit")


@frozen
class LifetimeOptions:
    """
    Timers for one child.

    @ivar timeout: Seconds the child may run before it is terminated
        (C{SIGTERM}, then C{SIGKILL} C{killAfter} seconds later, to the
        process group it leads, if any); C{None}: no limit.
    @ivar killAfter: The grace period of a timeout's termination.
    @ivar closePipesAfterExit: Seconds after the child exited at which the
        parent closes its pipe ends even if the child's descendants still
        hold theirs, so that C{processEnded} comes; C{None} (the default):
        wait for every pipe to close, as Twisted does.
    """

    timeout: float | None = None
    killAfter: float = DEFAULT_KILL_AFTER
    closePipesAfterExit: float | None = None

    @property
    def armsTimers(self) -> bool:
        """
        Whether any timer has to be armed.
        """
        return self.timeout is not None or self.closePipesAfterExit is not None


#: The timers of a spawn that asks for none.
NO_LIFETIME = LifetimeOptions()


def splitLifetimeOptions(
    options: Mapping[str, Any],
) -> tuple[LifetimeOptions, dict[str, Any]]:
    """
    Take the lifetime options out of C{spawnProcess}'s keyword options.

    @param options: Every txspawn keyword option given to C{spawnProcess}.
    @return: The validated L{LifetimeOptions}, and the other options.
    @raise TypeError: if a value is not a number of seconds.
    @raise ValueError: for a negative, infinite or NaN value, a zero
        C{timeout}, or C{killAfter} without C{timeout}.
    """
    if not options:
        # The common case: no option at all (the result is immutable).
        return NO_LIFETIME, {}
    rest = {k: v for k, v in options.items() if k not in LIFETIME_OPTIONS}
    timeout = options.get("timeout")
    killAfter = options.get("killAfter")
    closeAfter = options.get("closePipesAfterExit")
    if timeout is not None:
        timeout = checkSeconds(timeout, "timeout", positive=True)
    if killAfter is not None:
        if timeout is None:
            raise ValueError(
                "killAfter is the grace period of a timeout: give timeout too "
                "(or call transport.terminate(killAfter))"
            )
        killAfter = checkSeconds(killAfter, "killAfter")
    if closeAfter is not None:
        closeAfter = checkSeconds(closeAfter, "closePipesAfterExit")
    return (
        LifetimeOptions(
            timeout=timeout,
            killAfter=DEFAULT_KILL_AFTER if killAfter is None else killAfter,
            closePipesAfterExit=closeAfter,
        ),
        rest,
    )
