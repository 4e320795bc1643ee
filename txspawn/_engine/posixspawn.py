# -*- test-case-name: tests.test_pyspawn -*-
"""
C{posix_spawn} for the Python engine: glibc through C{ctypes}, or
C{os.posix_spawn} as the slow fallback; L{defaultPosixSpawn} picks one.

Why not just C{os.posix_spawn}?  On Python 3.11 it cannot express "close
every other fd" (C{POSIX_SPAWN_CLOSEFROM} only arrived in 3.13).  The only
way left would be one C{CLOSE} action per fd found in C{/proc/self/fd},
which costs O(open fds) per spawn and would miss txspawn's target of
spawning at constant cost with thousands of idle children (and their pipes)
alive.  glibc has had C{posix_spawn_file_actions_addclosefrom_np} since 2.34
(it runs C{close_range} in the child), so
L{txspawn._engine.libcposixspawn.LibcPosixSpawn} binds glibc's
C{posix_spawn} directly.

Where the symbols are missing (glibc < 2.34, musl),
L{txspawn._engine.osposixspawn.OsPosixSpawn} uses C{os.posix_spawn}, with
one C{CLOSE} action per inheritable fd listed in C{/proc/self/fd}: the slow
path, O(open fds) and racy with other threads (its module says how).

Both backends take the same small action vocabulary and report errors the
same way: see L{txspawn._engine.spawnactions}.
"""

from __future__ import annotations

from txspawn._engine.libcposixspawn import LibcPosixSpawn
from txspawn._engine.osposixspawn import OsPosixSpawn
from txspawn._engine.spawnactions import PosixSpawnBackend

__all__ = ["defaultPosixSpawn"]


def defaultPosixSpawn() -> tuple[PosixSpawnBackend, str | None]:
    """
    Pick the best C{posix_spawn} backend available.

    @return: The backend, and why the fast one is not used (or L{None}).
    """
    try:
        return LibcPosixSpawn(), None
    except OSError as e:
        return OsPosixSpawn(), f"glibc posix_spawn binding unavailable: {e.strerror}"
