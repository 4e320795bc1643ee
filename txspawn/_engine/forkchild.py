# -*- test-case-name: tests.test_pyspawn -*-
"""
The code that runs in the child of the Python engine's fork path, between
C{fork} and C{exec}.

The parent half, L{txspawn._engine.forkpath}, precomputes everything the
child does (a frozen L{ChildSteps}); the child, L{execChild}, then only
makes syscalls: no planning, no formatting, as few allocations as Python
allows.  It reports a failure as one L{txspawn._plan.failurerecord} record over a
close-on-exec pipe and never returns into the caller's code.

Anything the child needs that could fail to load (C{prctl} through
C{ctypes}) is resolved in the parent first, by L{loadPrctl} (and, for the
namespace steps of L{txspawn._engine.forknamespaces}, by
L{txspawn._engine.forknamespaces.loadNamespaceCalls}).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import resource
import signal
import termios
from collections.abc import Callable, Mapping
from typing import NoReturn

from attrs import frozen

from txspawn._engine.forknamespaces import (
    NamespaceStepFailed,
    NamespaceSteps,
    injectedFault,
    runNamespaceSteps,
)
from txspawn._plan.failurerecord import encodeFailure
from txspawn._plan.fdops import FdOpCode
from txspawn.errors import ChildSetupStage

__all__ = ["CATCHABLE_SIGNALS", "ChildSteps", "execChild", "loadPrctl"]

#: Every signal whose disposition can be changed (SIGKILL and SIGSTOP
#: cannot).  Resetting all of them to SIG_DFL is what guarantees that a
#: SIG_IGN in the parent (Python ignores SIGPIPE and SIGXFSZ) never reaches
#: the child.  glibc's internal signals 32 and 33 are not in
#: valid_signals().
CATCHABLE_SIGNALS: tuple[int, ...] = tuple(
    sorted(
        int(s)
        for s in signal.valid_signals()
        if s not in (signal.SIGKILL, signal.SIGSTOP)
    )
)

#: glibc's internal signals (SIGCANCEL, SIGSETXID).  glibc's sigaction()
#: refuses them, yet they can arrive ignored from an ancestor that used the
#: raw syscall, and SIG_IGN survives execve; glibc's posix_spawn and the C
#: engine reset them, so the fork path does too, through rt_sigaction.
_INTERNAL_SIGNALS = (32, 33)

#: rt_sigaction's number, where txspawn knows it (the asm-generic table is
#: shared by aarch64 and riscv64).  Elsewhere the two signals are left as
#: inherited.
_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134, "riscv64": 134}.get(
    os.uname().machine
)


def _loadRawSigDefault() -> Callable[[int], int] | None:
    """
    Bind glibc's C{syscall()} for resetting one signal to C{SIG_DFL} with
    the kernel's C{rt_sigaction}; called once, at import (in the parent,
    never in a child).

    @return: A function of the signal number returning the syscall's result
        (0 on success), or C{None} where the syscall number is unknown or
        C{ctypes} cannot load the C library.
    """
    if _SYS_RT_SIGACTION is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    # struct kernel_sigaction {handler, flags, restorer, mask}, all zero:
    # handler SIG_DFL (0), no flags, no restorer (SIG_DFL needs none).
    action = (ctypes.c_ulong * 4)()
    number = _SYS_RT_SIGACTION

    def sigDefault(signum: int) -> int:
        return int(syscall(number, signum, ctypes.byref(action), None, 8))

    return sigDefault


_rawSigDefault = _loadRawSigDefault()

# close_range(2) takes unsigned ints, os.closerange C ints: INT_MAX - 1 is
# the highest "last fd" it can be given, which is above any possible fd.
_CLOSERANGE_LAST = 0x7FFFFFFE

_PR_SET_PDEATHSIG = 1


@frozen
class ChildSteps:
    """
    Everything the fork child does, precomputed in the parent so that the
    child only makes syscalls.

    @ivar errWrite: The write end of the close-on-exec error pipe.
    @ivar cgroupProcsFd: The cgroup leaf's C{cgroup.procs}, to which the
        child writes C{"0"} (itself) as its first step, if any.
    @ivar cgroupFault: Tests only: the errno that step fails with instead
        (L{txspawn._plan.faultinjection}); L{None} normally.
    @ivar newSession: Whether to call C{setsid}.
    @ivar processGroup: The C{setpgid} target (C{0}: a new group), if any.
    @ivar ops: The fd program, as C{(FdOpCode, fd, target)} tuples.
    @ivar ctty: Whether to make fd 0 the controlling terminal.
    @ivar cwd: The directory to change to, if any.
    @ivar umask: The umask to set, if any.
    @ivar rlimits: C{(resource, soft, hard)} limits to set.
    @ivar groups: The supplementary groups to set, if any.
    @ivar implicitGroups: Whether C{groups} is the implicit drop that comes
        with a uid (then C{EPERM} is ignored).
    @ivar gid: The gid to switch to, if any.
    @ivar uid: The uid to switch to, if any.
    @ivar deathSignal: The parent-death signal, if any.
    @ivar parentPid: The parent's pid, to notice a parent that died before
        the death signal was armed; C{None} where that cannot be seen (in a
        new pid namespace, C{getppid()} is 0).
    @ivar signalMask: The signal mask to exec with; C{None} to exec with
        every signal still blocked (txspawn's init, which takes them all
        itself and sets the command's mask in its own child).
    @ivar candidates: The paths to try C{execve} on, in order.
    @ivar argv: The argument vector.
    @ivar env: The environment (see L{txspawn._engine.envp.envMapping}).
    @ivar closeRangeWorks: Whether C{close_range(2)} is available.
    @ivar namespaces: The namespace steps, run right after the signal
        reset (see L{txspawn._engine.forknamespaces}), or C{None}.
    @ivar execInherits: The fds (at their numbers after the fd program)
        left open across the exec: the error pipe and the status pipe for
        txspawn's init.
    @ivar execStage: The stage an exec failure is reported as: C{EXEC} for
        the command, C{INIT} for txspawn's init.
    """

    errWrite: int
    cgroupProcsFd: int | None
    cgroupFault: int | None
    newSession: bool
    processGroup: int | None
    ops: tuple[tuple[int, int, int], ...]
    ctty: bool
    cwd: bytes | None
    umask: int | None
    rlimits: tuple[tuple[int, int, int], ...]
    groups: tuple[int, ...] | None
    implicitGroups: bool
    gid: int | None
    uid: int | None
    deathSignal: int | None
    parentPid: int | None
    signalMask: tuple[int, ...] | None
    candidates: tuple[bytes, ...]
    argv: tuple[bytes, ...]
    env: Mapping[bytes, bytes]
    closeRangeWorks: bool
    namespaces: NamespaceSteps | None = None
    execInherits: tuple[int, ...] = ()
    execStage: ChildSetupStage = ChildSetupStage.EXEC


def _closeRange(low: int, high: int, closeRangeWorks: bool) -> None:
    """
    Close every fd from C{low} to C{high}, both included, in the child.
    """
    high = min(high, _CLOSERANGE_LAST)
    if closeRangeWorks:
        # CPython 3.11's os.closerange uses close_range(2) (Linux 5.9).
        os.closerange(low, high + 1)
        return
    # Without close_range, os.closerange would loop over every number up to
    # ``high``; list the (private, child-only) fd table instead, as CPython's
    # _close_open_fds_safe does.
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if low <= fd <= high:
            try:
                os.close(fd)
            except OSError:
                pass


def execChild(s: ChildSteps) -> NoReturn:
    """
    The fork child: set up, exec, or report the failure and C{_exit(127)}.

    Every signal is blocked on entry (the parent blocked them around the
    fork); the mask is set to the plan's just before exec.  Nothing here
    may return into the parent's Python code: the whole body is guarded by
    C{except BaseException} and ends in C{os._exit}.
    """
    errFd = s.errWrite
    stage = ChildSetupStage.SIGNALS
    code = 0
    detail = 0
    try:
        if s.cgroupProcsFd is not None:
            # First: every later step, and all it starts, runs in the leaf.
            stage = ChildSetupStage.CGROUP
            if s.cgroupFault is not None:
                raise OSError(s.cgroupFault, "injected")
            os.write(s.cgroupProcsFd, b"0")
            stage = ChildSetupStage.SIGNALS
        for signum in CATCHABLE_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        if _rawSigDefault is not None:
            for signum in _INTERNAL_SIGNALS:
                # Spelled so that CPython 3.13 keeps the backward jump
                # inside the try (tests/test_exceptiontable.py).
                if _rawSigDefault(signum) == 0:
                    continue
                raise OSError(ctypes.get_errno(), "rt_sigaction")
        if s.namespaces is not None:
            # With a pid namespace this returns in pid 1 only (the fork
            # child exits once pid 1 exists).
            runNamespaceSteps(s.namespaces)
        if s.newSession:
            stage = ChildSetupStage.SETSID
            os.setsid()
        if s.processGroup is not None:
            stage = ChildSetupStage.SETPGID
            os.setpgid(0, s.processGroup)
        for op, fd, target in s.ops:
            if op == FdOpCode.DUP2:
                stage = ChildSetupStage.FDS
                os.dup2(fd, target, inheritable=True)
            elif op == FdOpCode.DUP2_CLOEXEC:
                stage = ChildSetupStage.FDS
                os.dup2(fd, target, inheritable=False)
                if fd == errFd:
                    errFd = target
            elif op == FdOpCode.CLEAR_CLOEXEC:
                stage = ChildSetupStage.FDS
                os.set_inheritable(fd, True)
            elif op == FdOpCode.CLOSE:
                stage = ChildSetupStage.CLOSE_FDS
                try:
                    os.close(fd)
                except OSError as e:
                    if e.errno != errno.EBADF:
                        raise
            else:
                stage = ChildSetupStage.CLOSE_FDS
                _closeRange(fd, target, s.closeRangeWorks)
        if s.ctty:
            stage = ChildSetupStage.CTTY
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if s.cwd is not None:
            stage = ChildSetupStage.CHDIR
            os.chdir(s.cwd)
        if s.umask is not None:
            stage = ChildSetupStage.UMASK
            os.umask(s.umask)
        # rlimits before dropping privileges: raising a hard limit needs
        # CAP_SYS_RESOURCE, which the new uid may not have.
        stage = ChildSetupStage.RLIMIT
        for res, soft, hard in s.rlimits:
            detail = res
            # prlimit(0, ...), not setrlimit: the same syscall (prlimit64)
            # that glibc's setrlimit makes for the C engine, and Python
            # keeps its errno (setrlimit turns EPERM, say for a NOFILE hard
            # limit above fs.nr_open, into a ValueError: read as EINVAL).
            # Only EINVAL (soft above hard) still comes as ValueError.
            resource.prlimit(0, res, (soft, hard))
        detail = 0
        if s.groups is not None:
            stage = ChildSetupStage.SETGROUPS
            try:
                os.setgroups(list(s.groups))
            except PermissionError:
                # The implicit drop that comes with a uid (no groups given)
                # needs CAP_SETGID; a parent without it has no groups worth
                # dropping from a privilege point of view, so, as Rust's
                # std::process does, EPERM is ignored there (and the uid
                # change below reports EPERM if it is not allowed either).
                if not s.implicitGroups:
                    raise
        if s.gid is not None:
            stage = ChildSetupStage.SETGID
            os.setresgid(s.gid, s.gid, s.gid)
        if s.uid is not None:
            stage = ChildSetupStage.SETUID
            os.setresuid(s.uid, s.uid, s.uid)
        if s.deathSignal is not None:
            # After the credential change: the kernel clears the
            # parent-death signal whenever the euid/egid change.
            stage = ChildSetupStage.PDEATHSIG
            detail = s.deathSignal
            _prctlPdeathsig(s.deathSignal)
            if s.parentPid is not None and os.getppid() != s.parentPid:
                # The parent died before the prctl: deliver now what the
                # kernel would have sent (it stays pending until the mask
                # below unblocks it).
                os.kill(os.getpid(), s.deathSignal)
            detail = 0
        if s.signalMask is not None:
            stage = ChildSetupStage.SIGNALS
            signal.pthread_sigmask(signal.SIG_SETMASK, s.signalMask)
        if s.namespaces is not None and s.execStage == ChildSetupStage.INIT:
            injectedFault(s.namespaces, ChildSetupStage.INIT)
        if s.execInherits:
            stage = ChildSetupStage.FDS
            for fd in s.execInherits:
                os.set_inheritable(fd, True)
        stage = s.execStage
        # execvp semantics: skip ENOENT/ENOTDIR, remember EACCES, stop at
        # any other error.
        code = errno.ENOENT
        seenEacces = False
        for path in s.candidates:
            try:
                os.execve(path, s.argv, s.env)
            except OSError as e:
                code = e.errno or errno.EINVAL
                if code == errno.EACCES:
                    seenEacces = True
                elif code not in (errno.ENOENT, errno.ENOTDIR):
                    break
                else:
                    continue
        else:
            if seenEacces:
                code = errno.EACCES
    except NamespaceStepFailed as e:
        stage, code, detail = e.stage, e.code, e.detail
    except OSError as e:
        code = e.errno or errno.EINVAL
    except MemoryError:
        code = errno.ENOMEM
    except BaseException:
        # ValueError/OverflowError from a bad rlimit, or anything else: the
        # parent still gets a record instead of a mysterious exit.
        code = errno.EINVAL
    try:
        record = encodeFailure(stage, code, detail)
        while True:
            if not record:
                break
            record = record[os.write(errFd, record) :]
    finally:
        os._exit(127)


# The ctypes prctl function, once loadPrctl resolved it.
_prctl = None


def _prctlPdeathsig(signum: int) -> None:
    """
    C{prctl(PR_SET_PDEATHSIG, signum)}, with C{prctl} loaded beforehand by
    L{loadPrctl}.

    @raise OSError: if the call fails.
    """
    assert _prctl is not None
    if _prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        import ctypes

        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def loadPrctl() -> None:
    """
    Resolve C{prctl} through C{ctypes}, once: call it in the parent before
    forking a child with a parent-death signal (never in the child).
    """
    global _prctl
    if _prctl is None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.prctl
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_int, ctypes.c_ulong] + [ctypes.c_ulong] * 3
        _prctl = fn
