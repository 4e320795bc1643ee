# -*- test-case-name: tests.test_osposixspawn,tests.test_pyspawn -*-
"""
C{os.posix_spawn}: the Python engine's slow C{posix_spawn} backend, for a
libc without the symbols L{txspawn._engine.libcposixspawn.LibcPosixSpawn}
binds (glibc < 2.34, musl).

Closing every other fd.  Python 3.13 added C{os.POSIX_SPAWN_CLOSEFROM}
(where the libc has C{posix_spawn_file_actions_addclosefrom_np}), and
L{OsPosixSpawn} uses it when it is there: one action, whatever the number of
open fds, run in the child.  (A libc without the function is why this
backend is chosen, so by default it is rarely there; it is whenever the
backend is chosen explicitly, as the tests do.)  Without it (Python 3.11
and 3.12, or a libc without the function) L{OsPosixSpawn} turns "close
from fd N" into one C{CLOSE} action per I{inheritable} fd >= N listed in
C{/proc/self/fd} when the spawn is prepared.  That path is O(open fds), and
racy: an inheritable fd another thread opens between the listing and the
spawn leaks into the child.  It is documented as the slow path and tested
by injecting it.

glibc's internal signals.  C{os.posix_spawn} builds its signal sets with
C{sigaddset(3)}, which refuses glibc's internal signals 32 and 33 (CPython
warns and leaves them out), so they can never be in the C{SETSIGDEF} set.
What the child then gets is up to the libc's C{posix_spawn}: glibc >= 2.38
starts the child with C{clone3(CLONE_CLEAR_SIGHAND)} and leaves their
dispositions alone, so they are the default after C{execve}; an older glibc,
or glibc >= 2.38 where C{clone3} is refused (Linux < 5.5, or a seccomp
filter, as some container runtimes install), sets every internal signal not
in C{SETSIGDEF} to C{SIG_IGN}, which C{execve} keeps (musl does the same
for those it has installed a handler for).  There, a child of this backend
starts with signals 32 and 33 ignored, unlike a child of every other path;
L{LibcPosixSpawn} writes the bits of the set itself and has no such gap.
(The Python version plays no part: 3.11 and 3.13 give the same child on the
same libc.)
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Sequence

from txspawn._engine.envp import envMapping
from txspawn._engine.spawnactions import (
    Close,
    Dup2,
    Open,
    PreparedSpawn,
    SpawnAction,
    SpawnAttributes,
)
from txspawn._kernel.childhandle import recordCall

__all__ = ["OsPosixSpawn"]


def _inheritableFdsFrom(lowfd: int) -> list[int]:
    """
    The slow path's O(open fds) listing: every inheritable fd >= C{lowfd}.
    (Close-on-exec fds need no action: exec closes them.)
    """
    result = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < lowfd:
            continue
        try:
            if os.get_inheritable(fd):
                result.append(fd)
        except OSError:
            # The directory fd listdir used, already closed; or an fd
            # another thread closed meanwhile.
            continue
    return sorted(result)


class _OsPrepared:
    def __init__(
        self,
        argv: Sequence[bytes],
        envp: Sequence[bytes],
        actions: Sequence[SpawnAction],
        attributes: SpawnAttributes,
    ) -> None:
        self._argv = list(argv)
        self._env = envMapping(envp)
        fileActions: list[tuple[int, ...] | tuple[int, int, bytes, int, int]] = []
        for action in actions:
            if isinstance(action, Dup2):
                fileActions.append((os.POSIX_SPAWN_DUP2, action.fd, action.newfd))
            elif isinstance(action, Close):
                fileActions.append((os.POSIX_SPAWN_CLOSE, action.fd))
            elif isinstance(action, Open):
                fileActions.append(
                    (
                        os.POSIX_SPAWN_OPEN,
                        action.fd,
                        action.path,
                        action.flags,
                        action.mode,
                    )
                )
            elif _CLOSEFROM is not None:
                fileActions.append((_CLOSEFROM, action.lowfd))
            else:
                for fd in _inheritableFdsFrom(action.lowfd):
                    fileActions.append((os.POSIX_SPAWN_CLOSE, fd))
        self._fileActions = fileActions
        self._attributes = attributes

    def spawn(self, path: bytes, into: list[int]) -> int:
        attrs = self._attributes
        # os.posix_spawn cannot take glibc's internal signals (32, 33), which
        # are not in valid_signals(): CPython warns and drops them (see the
        # module docstring for what the child gets).  Keep what it accepts.
        sigdef = [s for s in attrs.sigdef if s in _VALID_SIGNALS]
        kwargs: dict[str, object] = {}
        if attrs.processGroup is not None:
            kwargs["setpgroup"] = attrs.processGroup
        call = functools.partial(
            os.posix_spawn,
            file_actions=self._fileActions,
            setsid=attrs.setsid,
            setsigdef=sigdef,
            setsigmask=[s for s in attrs.sigmask if s in _VALID_SIGNALS],
            **kwargs,  # type: ignore[arg-type]
        )
        # functools.partial of a builtin: called from C, see recordCall.
        return recordCall(into, call, path, self._argv, self._env)

    def close(self) -> None:
        pass


_VALID_SIGNALS = frozenset(signal.valid_signals())

#: C{os.POSIX_SPAWN_CLOSEFROM} (Python >= 3.13, where the libc has
#: C{posix_spawn_file_actions_addclosefrom_np}), or L{None}.
_CLOSEFROM: int | None = getattr(os, "POSIX_SPAWN_CLOSEFROM", None)


class OsPosixSpawn:
    """
    C{os.posix_spawn}, with "close from fd N" as C{POSIX_SPAWN_CLOSEFROM}
    where Python has it (3.13+), else emulated by listing C{/proc/self/fd}
    (O(open fds), racy with other threads; see the module docstring).
    """

    name = "os"

    def prepare(
        self,
        argv: Sequence[bytes],
        envp: Sequence[bytes],
        actions: Sequence[SpawnAction],
        attributes: SpawnAttributes,
    ) -> PreparedSpawn:
        """
        See L{txspawn._engine.spawnactions.PosixSpawnBackend.prepare}.
        """
        return _OsPrepared(argv, envp, actions, attributes)
