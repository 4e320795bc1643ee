# -*- test-case-name: tests.test_features -*-
"""
One-shot, cached probes of what this kernel and libc offer: the verdicts of
a L{txspawn._kernel.features.Features}.

Every probe is safe and cheap: it never creates a process, never changes
the process' state (fd table, signal dispositions, ...) and costs at most a
few syscalls.  Every feature that is off records I{why} (the errno, the
missing symbol, the minimum kernel or libc version).

A probe that fails for a transient reason (C{EMFILE}, C{ENFILE}, C{ENOMEM},
C{EAGAIN}, C{EINTR}) reports the feature off with that reason but is not
cached: the next L{probeFeatures} call probes again.

Some features can only be probed by really creating a child with
C{clone3(2)} (C{CLONE_CLEAR_SIGHAND}, C{CLONE_INTO_CGROUP}): a Python-level
probe cannot do that safely, so they are reported off with a reason saying
the C engine probes them; the C engine records its own verdict with
L{txspawn._kernel.features.Features.override}.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import signal
import threading
from collections.abc import Callable

from txspawn._kernel.features import (
    CLONE3,
    CLONE_CLEAR_SIGHAND,
    CLONE_INTO_CGROUP,
    CLONE_PIDFD,
    CLOSE_RANGE,
    CLOSE_RANGE_CLOEXEC,
    OPENPTY,
    PIDFD_OPEN,
    PIDFD_SEND_SIGNAL,
    SPAWN_ADDCHDIR,
    SPAWN_ADDCLOSEFROM,
    WAITID_PIDFD,
    Features,
    FeatureState,
)

__all__ = ["probeFeatures"]

# Syscall numbers from the unified table (include/uapi/asm-generic/unistd.h)
# that every architecture except alpha uses for syscalls added since 5.1.
# Python has no wrapper for these two.
_SYS_CLONE3 = 435
_SYS_CLOSE_RANGE = 436
_CLOSE_RANGE_CLOEXEC_FLAG = 1 << 2
_CLOSE_RANGE_NOTHING = 0xFFFFFFFF

#: Errnos that say "try again later", not "this is not supported".
_TRANSIENT = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EINTR}
)


def _libc() -> ctypes.CDLL | None:
    """
    @return: The C library already loaded into this process, or L{None}.
    """
    try:
        # CDLL(None) is dlopen(NULL): the symbols already in the process,
        # which include the libc Python itself is linked against.
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - statically linked interpreter
        return None


def _fromErrno(e: OSError, what: str, minimum: str) -> FeatureState:
    code = e.errno if e.errno is not None else 0
    name = errno.errorcode.get(code, str(code))
    if code in _TRANSIENT:
        return FeatureState(
            False, f"{what} failed transiently with {name}; will probe again", False
        )
    if code == errno.ENOSYS:
        return FeatureState(
            False, f"this system does not have {what} (ENOSYS; needs {minimum})"
        )
    if code == errno.EPERM:
        return FeatureState(
            False,
            f"{what} is refused (EPERM), probably by a seccomp filter such as "
            f"a container's",
        )
    return FeatureState(False, f"{what} failed with {name} (needs {minimum})")


def _probePidfdOpen() -> FeatureState:
    # Linux 5.3.  pidfd_open on ourselves is harmless and needs no child.
    if not hasattr(os, "pidfd_open"):
        return FeatureState(False, "os.pidfd_open missing (Python < 3.9)")
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError as e:
        return _fromErrno(e, "pidfd_open", "Linux 5.3")
    os.close(fd)
    return FeatureState(True, "pidfd_open(getpid()) works (Linux >= 5.3)")


def _probeWaitidPidfd() -> FeatureState:
    # Linux 5.4.  waitid(P_PIDFD) on a pidfd of ourselves: ECHILD (we are not
    # our own child) proves the kernel knows P_PIDFD; a kernel without it
    # rejects the idtype with EINVAL.
    if not hasattr(os, "P_PIDFD") or not hasattr(os, "pidfd_open"):
        return FeatureState(False, "os.P_PIDFD missing (Python < 3.9)")
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError as e:
        return _fromErrno(e, "pidfd_open (needed to probe waitid P_PIDFD)", "5.3")
    try:
        os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        return FeatureState(True, "waitid(P_PIDFD) knows the idtype (Linux >= 5.4)")
    except OSError as e:
        if e.errno == errno.EINVAL:
            return FeatureState(
                False,
                "this kernel does not know waitid(P_PIDFD) (EINVAL; needs Linux 5.4)",
            )
        return _fromErrno(e, "waitid(P_PIDFD)", "Linux 5.4")
    finally:
        os.close(fd)
    return FeatureState(  # pragma: no cover - we can never be our own child
        False, "waitid(P_PIDFD) on ourselves unexpectedly succeeded"
    )


def _probePidfdSendSignal() -> FeatureState:
    # Linux 5.1.  An invalid pidfd gives EBADF on a kernel that has the
    # syscall and ENOSYS on one that does not; no signal is ever sent.
    if not hasattr(signal, "pidfd_send_signal"):
        return FeatureState(False, "signal.pidfd_send_signal missing (Python < 3.9)")
    try:
        signal.pidfd_send_signal(-1, 0)
    except OSError as e:
        if e.errno == errno.EBADF:
            return FeatureState(True, "pidfd_send_signal exists (Linux >= 5.1)")
        return _fromErrno(e, "pidfd_send_signal", "Linux 5.1")
    return FeatureState(  # pragma: no cover - fd -1 is never valid
        False, "pidfd_send_signal(-1) unexpectedly succeeded"
    )


def _syscall(libc: ctypes.CDLL | None, *args: int) -> int:
    """
    Issue a raw syscall through libc's C{syscall(2)}.

    @return: The result (>= 0).
    @raise OSError: with the errno on failure.
    """
    if libc is None:  # pragma: no cover - statically linked interpreter
        raise OSError(errno.ENOSYS, "no libc to issue raw syscalls with")
    fn = libc.syscall
    fn.restype = ctypes.c_long
    result = fn(*(ctypes.c_long(a) for a in args))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def _probeClone3(libc: ctypes.CDLL | None) -> FeatureState:
    # Linux 5.3.  clone3(NULL, 0): a kernel with clone3 rejects the size
    # (smaller than CLONE_ARGS_SIZE_VER0) with EINVAL before creating
    # anything; a kernel without it, or a seccomp filter such as Docker's
    # default profile (which returns ENOSYS precisely so that libc falls back
    # to clone), gives ENOSYS.
    try:
        _syscall(libc, _SYS_CLONE3, 0, 0)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return FeatureState(True, "clone3 exists (Linux >= 5.3)")
        return _fromErrno(e, "clone3", "Linux 5.3")
    return FeatureState(  # pragma: no cover - a NULL clone_args never succeeds
        False, "clone3(NULL, 0) unexpectedly succeeded"
    )


def _probeClonePidfd(clone3: FeatureState) -> FeatureState:
    # CLONE_PIDFD is Linux 5.2 for clone() and is part of clone3 since its
    # introduction in 5.3, so a working clone3 implies it.  Without clone3
    # the C engine may still use clone(CLONE_PIDFD), which it probes itself.
    if clone3.enabled:
        return FeatureState(True, "implied by clone3 (Linux 5.3 > 5.2)")
    return FeatureState(
        False,
        f"not known yet: clone3 is off ({clone3.reason}); the C engine checks "
        f"clone(CLONE_PIDFD) at its first spawn",
    )


def _cEngineOnly(flag: str, minimum: str, probed: bool = True) -> FeatureState:
    # The kernel validates clone3 flags with the same EINVAL for "unknown
    # flag" as for every other bad argument, so only a real clone3 tells
    # whether the flag is known: that is the C engine's job.
    if probed:
        return FeatureState(
            False,
            f"not known yet: only starting a real child tells whether this "
            f"kernel has {flag} ({minimum}); probed by the C engine when it "
            f"loads",
        )
    return FeatureState(
        False,
        f"not checked here: only starting a real child tells whether this "
        f"kernel has {flag} ({minimum}); the cgroups section probes it in a "
        f"real leaf",
    )


def _probeCloseRange(libc: ctypes.CDLL | None, flags: int) -> FeatureState:
    # close_range(~0U, ~0U, flags) covers no fd at all, so it has no effect;
    # it returns 0 where the syscall (5.9) and the flags are known, ENOSYS
    # without the syscall and EINVAL for an unknown flag.
    # CLOSE_RANGE_UNSHARE is never probed this way: in a threaded process it
    # would give the calling thread a private fd table.  It shipped together
    # with close_range in 5.9, so close_range itself implies it.
    if flags:
        what, minimum = "close_range(CLOSE_RANGE_CLOEXEC)", "Linux 5.11"
    else:
        what, minimum = "close_range", "Linux 5.9"
    try:
        _syscall(
            libc, _SYS_CLOSE_RANGE, _CLOSE_RANGE_NOTHING, _CLOSE_RANGE_NOTHING, flags
        )
    except OSError as e:
        if e.errno == errno.EINVAL and flags:
            return FeatureState(
                False, f"this kernel does not know {what} (EINVAL; needs {minimum})"
            )
        return _fromErrno(e, what, minimum)
    if flags:
        return FeatureState(True, f"{what} works (Linux >= 5.11)")
    return FeatureState(
        True, "close_range works (Linux >= 5.9, with CLOSE_RANGE_UNSHARE)"
    )


def _probeSymbol(libc: ctypes.CDLL | None, symbol: str, minimum: str) -> FeatureState:
    if libc is None:  # pragma: no cover - statically linked interpreter
        return FeatureState(False, "no dynamically loaded libc to look symbols up in")
    if hasattr(libc, symbol):
        return FeatureState(True, f"libc exports {symbol}")
    return FeatureState(False, f"libc does not export {symbol} (needs {minimum})")


def _probeOpenpty() -> FeatureState:
    try:
        master, slave = os.openpty()
    except OSError as e:
        return _fromErrno(e, "openpty", "/dev/ptmx and a mounted devpts")
    os.close(master)
    os.close(slave)
    return FeatureState(True, "openpty works")


def _probeAll() -> Features:
    libc = _libc()
    clone3 = _probeClone3(libc)
    states = {
        PIDFD_OPEN: _probePidfdOpen(),
        WAITID_PIDFD: _probeWaitidPidfd(),
        PIDFD_SEND_SIGNAL: _probePidfdSendSignal(),
        CLONE3: clone3,
        CLONE_PIDFD: _probeClonePidfd(clone3),
        CLONE_CLEAR_SIGHAND: _cEngineOnly("CLONE_CLEAR_SIGHAND", "Linux 5.5"),
        CLONE_INTO_CGROUP: _cEngineOnly("CLONE_INTO_CGROUP", "Linux 5.7", False),
        CLOSE_RANGE: _probeCloseRange(libc, 0),
        CLOSE_RANGE_CLOEXEC: _probeCloseRange(libc, _CLOSE_RANGE_CLOEXEC_FLAG),
        SPAWN_ADDCLOSEFROM: _probeSymbol(libc, SPAWN_ADDCLOSEFROM, "glibc 2.34"),
        SPAWN_ADDCHDIR: _probeSymbol(libc, SPAWN_ADDCHDIR, "glibc 2.29"),
        OPENPTY: _probeOpenpty(),
    }
    return Features(states)


class _Cache:
    """
    The process-wide probe cache: the one piece of module state this module
    keeps (STYLE.md B2.10).
    """

    def __init__(self, probe: Callable[[], Features]) -> None:
        self._probe = probe
        self._lock = threading.Lock()
        self._features: Features | None = None

    def get(self, refresh: bool) -> Features:
        with self._lock:
            if self._features is not None and not refresh:
                return self._features
            features = self._probe()
            self._features = features if features.cacheable() else None
            return features


_cache = _Cache(_probeAll)


def probeFeatures(refresh: bool = False) -> Features:
    """
    Probe (once) and return this system's features.

    @param refresh: Probe again even if a cached result exists.
    @return: The features; cached unless some probe failed transiently.
    """
    return _cache.get(refresh)
