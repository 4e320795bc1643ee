# -*- test-case-name: tests.test_pyspawn -*-
"""
glibc's C{posix_spawn} through C{ctypes}: the Python engine's fast
C{posix_spawn} backend.

It binds C{posix_spawn_file_actions_addclosefrom_np} (glibc 2.34, which
runs C{close_range} in the child), so a spawn closes every fd the child
must not inherit at constant cost however many fds the parent has open
(see L{txspawn._engine.posixspawn} for why C{os.posix_spawn} cannot).
Where a symbol is missing (glibc < 2.34, musl) the constructor raises, and
L{txspawn._engine.posixspawn.defaultPosixSpawn} falls back to
L{txspawn._engine.osposixspawn.OsPosixSpawn}.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

from txspawn._engine.spawnactions import (
    Close,
    Dup2,
    Open,
    PreparedSpawn,
    SpawnAction,
    SpawnAttributes,
)

__all__ = ["LibcPosixSpawn"]


# glibc's <spawn.h> flag values (Linux, every architecture).
_POSIX_SPAWN_SETPGROUP = 0x02
_POSIX_SPAWN_SETSIGDEF = 0x04
_POSIX_SPAWN_SETSIGMASK = 0x08
_POSIX_SPAWN_SETSID = 0x80  # glibc 2.26

# The opaque types are allocated with generous, 8-byte aligned buffers.
# glibc 2.36 on x86_64/aarch64: sizeof(posix_spawn_file_actions_t) == 80
# (two ints, a pointer, int __pad[16]); sizeof(posix_spawnattr_t) == 336
# (short flags, pid_t, two 128-byte sigset_t, sched_param, int policy, int
# __pad[16]); sizeof(sigset_t) == 128.  Four to eight times those sizes
# absorbs any ABI growth and other 64-bit architectures.
_FILE_ACTIONS_WORDS = 64  # 512 bytes
_ATTR_WORDS = 256  # 2048 bytes
_SIGSET_BYTES = 512
#: How many distinct signal sets L{LibcPosixSpawn} keeps converted.
_SIGSET_CACHE_SIZE = 32

_CharPArray = ctypes.Array[ctypes.c_char_p]


def _cStrings(items: Sequence[bytes]) -> _CharPArray:
    """
    @return: A NULL-terminated C{char *[]} over C{items} (the array keeps
        the bytes objects alive).
    """
    array = (ctypes.c_char_p * (len(items) + 1))()
    array[: len(items)] = list(items)
    array[len(items)] = None
    return array


def _check(result: int) -> None:
    # The posix_spawn family returns an errno value instead of setting errno.
    if result != 0:
        raise OSError(result, os.strerror(result))


class _LibcPrepared:
    """
    Allocated, initialised C{posix_spawn_file_actions_t} and
    C{posix_spawnattr_t}, plus converted argv/envp.
    """

    def __init__(
        self,
        lib: LibcPosixSpawn,
        argv: Sequence[bytes],
        envp: Sequence[bytes],
        actions: Sequence[SpawnAction],
        attributes: SpawnAttributes,
    ) -> None:
        self._lib = lib
        self._argv = _cStrings(argv)
        self._envp = _cStrings(envp)
        self._paths: list[bytes] = []
        self._actions = (ctypes.c_uint64 * _FILE_ACTIONS_WORDS)()
        self._attr = (ctypes.c_uint64 * _ATTR_WORDS)()
        self._actionsLive = False
        self._attrLive = False
        try:
            self._fill(actions, attributes)
        except BaseException:
            self.close()
            raise

    def _fill(self, actions: Sequence[SpawnAction], attrs: SpawnAttributes) -> None:
        c = self._lib._c
        fa = ctypes.byref(self._actions)
        _check(c.posix_spawn_file_actions_init(fa))
        self._actionsLive = True
        for action in actions:
            if isinstance(action, Dup2):
                _check(c.posix_spawn_file_actions_adddup2(fa, action.fd, action.newfd))
            elif isinstance(action, Close):
                _check(c.posix_spawn_file_actions_addclose(fa, action.fd))
            elif isinstance(action, Open):
                # glibc copies the path (since 2.20), but keep a reference
                # anyway: it costs nothing and survives a lazier libc.
                self._paths.append(action.path)
                _check(
                    c.posix_spawn_file_actions_addopen(
                        fa, action.fd, action.path, action.flags, action.mode
                    )
                )
            else:
                _check(c.posix_spawn_file_actions_addclosefrom_np(fa, action.lowfd))

        at = ctypes.byref(self._attr)
        _check(c.posix_spawnattr_init(at))
        self._attrLive = True
        flags = _POSIX_SPAWN_SETSIGDEF | _POSIX_SPAWN_SETSIGMASK
        _check(c.posix_spawnattr_setsigdefault(at, self._lib._sigset(attrs.sigdef)))
        _check(c.posix_spawnattr_setsigmask(at, self._lib._sigset(attrs.sigmask)))
        if attrs.setsid:
            flags |= _POSIX_SPAWN_SETSID
        if attrs.processGroup is not None:
            flags |= _POSIX_SPAWN_SETPGROUP
            _check(c.posix_spawnattr_setpgroup(at, attrs.processGroup))
        _check(c.posix_spawnattr_setflags(at, flags))

    def spawn(self, path: bytes, into: list[int]) -> int:
        pid = ctypes.c_int(0)
        try:
            # ctypes releases the GIL around the call; glibc blocks every
            # signal and runs the child with CLONE_VM|CLONE_VFORK on its own
            # stack.
            result = self._lib._c.posix_spawn(
                ctypes.byref(pid),
                path,
                ctypes.byref(self._actions),
                ctypes.byref(self._attr),
                self._argv,
                self._envp,
            )
        finally:
            # glibc stores the pid only for a child it started and did not
            # reap; the pid is in pid even when a signal handler raised
            # right after the call returned.
            if pid.value > 0:
                into.append(pid.value)
        _check(result)
        return pid.value

    def close(self) -> None:
        c = self._lib._c
        if self._actionsLive:
            self._actionsLive = False
            c.posix_spawn_file_actions_destroy(ctypes.byref(self._actions))
        if self._attrLive:
            self._attrLive = False
            c.posix_spawnattr_destroy(ctypes.byref(self._attr))


_SYMBOLS = (
    "posix_spawn",
    "posix_spawn_file_actions_init",
    "posix_spawn_file_actions_destroy",
    "posix_spawn_file_actions_adddup2",
    "posix_spawn_file_actions_addclose",
    "posix_spawn_file_actions_addopen",
    "posix_spawn_file_actions_addclosefrom_np",  # glibc 2.34
    "posix_spawnattr_init",
    "posix_spawnattr_destroy",
    "posix_spawnattr_setflags",
    "posix_spawnattr_setsigdefault",
    "posix_spawnattr_setsigmask",
    "posix_spawnattr_setpgroup",
)


class LibcPosixSpawn:
    """
    glibc's C{posix_spawn} through C{ctypes}.

    @raise OSError: from the constructor, with C{ENOSYS}, when a symbol is
        missing (glibc < 2.34, musl); the message names it.
    """

    name = "libc"

    def __init__(self, libc: ctypes.CDLL | None = None) -> None:
        if libc is None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
            except OSError as e:  # pragma: no cover - static interpreter
                raise OSError(errno.ENOSYS, f"no dynamic libc: {e}") from None
        missing = [s for s in _SYMBOLS if not hasattr(libc, s)]
        if missing:
            raise OSError(errno.ENOSYS, f"libc lacks {', '.join(missing)}")
        self._c = libc
        self._sigsets: dict[tuple[int, ...], ctypes.Array[ctypes.c_ulong]] = {}
        vp, i, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        pp = ctypes.POINTER(ctypes.c_char_p)
        for sym, argtypes in [
            ("posix_spawn", [vp, cp, vp, vp, pp, pp]),
            ("posix_spawn_file_actions_init", [vp]),
            ("posix_spawn_file_actions_destroy", [vp]),
            ("posix_spawn_file_actions_adddup2", [vp, i, i]),
            ("posix_spawn_file_actions_addclose", [vp, i]),
            ("posix_spawn_file_actions_addopen", [vp, i, cp, i, ctypes.c_uint]),
            ("posix_spawn_file_actions_addclosefrom_np", [vp, i]),
            ("posix_spawnattr_init", [vp]),
            ("posix_spawnattr_destroy", [vp]),
            ("posix_spawnattr_setflags", [vp, ctypes.c_short]),
            ("posix_spawnattr_setsigdefault", [vp, vp]),
            ("posix_spawnattr_setsigmask", [vp, vp]),
            ("posix_spawnattr_setpgroup", [vp, i]),
        ]:
            fn = getattr(libc, sym)
            fn.argtypes = argtypes
            fn.restype = i

    def _sigset(self, signals: tuple[int, ...]) -> ctypes.Array[ctypes.c_ulong]:
        # Built once per distinct set (the SETSIGDEF set is the same for
        # every spawn) and only ever read afterwards: glibc copies it into
        # the attributes, so sharing it between threads is safe.
        cached = self._sigsets.get(signals)
        if cached is not None:
            return cached
        # The bits are set directly, in glibc's layout (bit (sig - 1) % ULONG_BIT
        # of word (sig - 1) / ULONG_BIT, as its __sigmask/__sigword macros),
        # instead of through sigaddset(3): sigaddset refuses glibc's internal
        # signals 32 and 33, and glibc's spawn child sets those to SIG_IGN
        # (so that the parent's handlers never run on the shared VM) unless
        # they are in the SETSIGDEF set.  Without this, every posix_spawn
        # child would start with signals 32 and 33 ignored, unlike a child of
        # fork/exec or of the C engine.  Resetting them in the child is safe:
        # glibc keeps every signal blocked there until just before exec.
        bits = ctypes.sizeof(ctypes.c_ulong) * 8
        sigset = (ctypes.c_ulong * (_SIGSET_BYTES // ctypes.sizeof(ctypes.c_ulong)))()
        for signum in signals:
            if 0 < signum < _SIGSET_BYTES * 8:
                sigset[(signum - 1) // bits] |= 1 << ((signum - 1) % bits)
        if len(self._sigsets) < _SIGSET_CACHE_SIZE:
            self._sigsets[signals] = sigset
        return sigset

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
        return _LibcPrepared(self, argv, envp, actions, attributes)
