# -*- test-case-name: tests.test_supervise_program -*-
"""
What a supervised program runs (L{ProgramSpawn}: the arguments of each
C{spawnProcess}) and which of its exits are followed by a new start
(L{Restart}); both are re-exported by L{txspawn.supervise.program}.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from attrs import field, fields, frozen
from twisted.internet.error import ProcessDone, ProcessTerminated

from txspawn.options import SpawnOptions

__all__ = ["ProgramSpawn", "Restart"]


class Restart(enum.Enum):
    """
    Which exits of a program are followed by a new start.

    @cvar ALWAYS: Every exit.
    @cvar ON_FAILURE: Exits other than with code 0 (a signal is a failure).
    @cvar NEVER: None.

    @since: txspawn 0.1
    """

    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"

    def restarts(self, reason: ProcessDone | ProcessTerminated) -> bool:
        """
        Whether an exit with C{reason} is followed by a new start.
        """
        if self is Restart.ALWAYS:
            return True
        if self is Restart.NEVER:
            return False
        return not isinstance(reason, ProcessDone)


def _argv(value: Iterable[str | bytes]) -> tuple[str | bytes, ...]:
    return tuple(value)


@frozen
class ProgramSpawn:
    """
    What C{spawnProcess} is given for each run of a program.

    @ivar argv: The command: C{argv[0]} is also the executable (looked up
        on C{PATH} by the reactor).
    @ivar env: The child's environment (C{None}: this process's).
    @ivar path: The working directory (C{None}: this process's).
    @ivar uid: The uid to run as, or C{None}.
    @ivar gid: The gid to run as, or C{None}.
    @ivar options: txspawn's spawn options (given to a reactor providing
        L{IReactorSpawn}; with another reactor, only C{None} or the
        defaults are accepted), or C{None}.
    @ivar childFDs: The child's fds, as for C{spawnProcess} (C{None}: stdin
        a pipe closed at once, stdout and stderr pipes).

    @since: txspawn 0.1
    """

    argv: tuple[str | bytes, ...] = field(converter=_argv)
    env: Mapping[str | bytes, str | bytes] | None = None
    path: str | bytes | None = None
    uid: int | None = None
    gid: int | None = None
    options: SpawnOptions | None = None
    childFDs: Mapping[int, int | str] | None = None
    # keywordOptions, worked out once: it is asked for at every restart.
    _keywords: dict[str, object] = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.argv:
            raise ValueError("ProgramSpawn.argv must not be empty")
        keywords: dict[str, object] = {}
        if self.options is not None:
            default = SpawnOptions()
            keywords = {
                option.name: getattr(self.options, option.name)
                for option in fields(SpawnOptions)
                if getattr(self.options, option.name) != getattr(default, option.name)
            }
        object.__setattr__(self, "_keywords", keywords)

    def keywordOptions(self) -> dict[str, object]:
        """
        L{options} as C{spawnProcess} keyword arguments: those that differ
        from their defaults.
        """
        return dict(self._keywords)
