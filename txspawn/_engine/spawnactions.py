# -*- test-case-name: tests.test_pyspawn -*-
"""
What every C{posix_spawn} backend of the Python engine takes and gives.

Both backends (L{txspawn._engine.libcposixspawn.LibcPosixSpawn} and
L{txspawn._engine.osposixspawn.OsPosixSpawn}) take the same small action
vocabulary (L{Dup2}, L{Close}, L{Open}, L{CloseFrom}) and
L{SpawnAttributes}, and report errors as L{OSError} with the errno
C{posix_spawn} returned (L{PosixSpawnBackend}).  The caller tries each exec
candidate with L{PreparedSpawn.spawn}: glibc reports exec errors
synchronously (its child writes the errno to memory shared with the parent
before exiting) and reaps the failed child itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, Union

from attrs import field, frozen

__all__ = [
    "Close",
    "CloseFrom",
    "Dup2",
    "Open",
    "PosixSpawnBackend",
    "PreparedSpawn",
    "SpawnAction",
    "SpawnAttributes",
]


@frozen
class Dup2:
    """
    C{posix_spawn_file_actions_adddup2(fd, newfd)}.  With C{fd == newfd},
    glibc >= 2.29 clears C{FD_CLOEXEC} (Austin Group issue 411, glibc bug
    23640), which is how identity mappings are expressed.
    """

    fd: int
    newfd: int


@frozen
class Close:
    """
    C{posix_spawn_file_actions_addclose(fd)}; glibc ignores C{EBADF} in the
    child for an fd that is not open.
    """

    fd: int


@frozen
class Open:
    """
    C{posix_spawn_file_actions_addopen(fd, path, flags, mode)}.
    """

    fd: int
    path: bytes
    flags: int
    mode: int = 0


@frozen
class CloseFrom:
    """
    Close every fd C{>= lowfd}: C{posix_spawn_file_actions_addclosefrom_np}.
    """

    lowfd: int


SpawnAction = Union[Dup2, Close, Open, CloseFrom]


def _ints(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


@frozen
class SpawnAttributes:
    """
    The C{posix_spawnattr_t} settings txspawn uses.

    @ivar setsid: C{POSIX_SPAWN_SETSID}.
    @ivar processGroup: C{POSIX_SPAWN_SETPGROUP} with this pgid (C{0}: a new
        group led by the child), or C{None}.
    @ivar sigdef: Signals reset to C{SIG_DFL} (C{POSIX_SPAWN_SETSIGDEF}).
    @ivar sigmask: The child's signal mask (C{POSIX_SPAWN_SETSIGMASK}).
    """

    setsid: bool = False
    processGroup: int | None = None
    sigdef: tuple[int, ...] = field(default=(), converter=_ints)
    sigmask: tuple[int, ...] = field(default=(), converter=_ints)


class PreparedSpawn(Protocol):
    """
    One spawn, converted and ready; try each exec candidate with L{spawn}.
    """

    def spawn(self, path: bytes, into: list[int]) -> int:
        """
        @param into: Gets the child's pid, before any Python bytecode runs
            after C{posix_spawn} returned (see
            L{txspawn._kernel.childhandle.recordCall}): an exception raised then by a
            signal handler cannot lose the child.
        @return: The child's pid.
        @raise OSError: with the errno C{posix_spawn} returned (no child is
            left: C{posix_spawn} reaps one whose C{exec} failed).
        """

    def close(self) -> None:
        """
        Release what L{PosixSpawnBackend.prepare} allocated (idempotent).
        """


class PosixSpawnBackend(Protocol):
    """
    A way to call C{posix_spawn}.
    """

    name: str

    def prepare(
        self,
        argv: Sequence[bytes],
        envp: Sequence[bytes],
        actions: Sequence[SpawnAction],
        attributes: SpawnAttributes,
    ) -> PreparedSpawn:
        """
        Convert everything once, before the candidates are tried.

        @raise OSError: if an action or attribute is rejected (for example
            C{EBADF} for an fd at or above C{RLIMIT_NOFILE}).
        """
