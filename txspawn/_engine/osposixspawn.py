# -*- test-case-name: tests.test_pyspawn -*-
"""
C{os.posix_spawn}: the Python engine's slow C{posix_spawn} backend, for a
libc without the symbols L{txspawn._engine.libcposixspawn.LibcPosixSpawn}
binds (glibc < 2.34, musl).

C{os.posix_spawn} cannot express "close every other fd" on Python 3.11,
so L{OsPosixSpawn} turns "close from fd N" into one C{CLOSE} action per
I{inheritable} fd >= N listed in C{/proc/self/fd} when the spawn is
prepared.  That path is O(open fds), and racy: an inheritable fd another
thread opens between the listing and the spawn leaks into the child.  It is
documented as the slow path and tested by injecting it.
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
            else:
                for fd in _inheritableFdsFrom(action.lowfd):
                    fileActions.append((os.POSIX_SPAWN_CLOSE, fd))
        self._fileActions = fileActions
        self._attributes = attributes

    def spawn(self, path: bytes, into: list[int]) -> int:
        attrs = self._attributes
        # os.posix_spawn raises ValueError for glibc's internal signals (32,
        # 33), which are not in valid_signals(): keep what it accepts.
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


class OsPosixSpawn:
    """
    C{os.posix_spawn}, with "close from fd N" emulated by listing
    C{/proc/self/fd} (O(open fds), racy with other threads; see the module
    docstring).
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
