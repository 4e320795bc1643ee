# -*- test-case-name: tests.test_status -*-
"""
Exit statuses: from the kernel's words to Twisted's exit reasons.

Two conversions live here:

  - L{statusFromSiginfo} rebuilds a classic C{wait()} status from the
    C{si_code}/C{si_status} pair that C{waitid()} reports, so that code
    written against C{os.WIFSIGNALED(status)} and friends keeps working
    whichever wait call noticed the exit (Rust's
    C{ExitStatus::from_waitid_siginfo} does the same).
  - L{reasonFromStatus} turns a classic status into the exception a
    L{twisted.internet.protocol.ProcessProtocol} receives, exactly as
    C{twisted.internet.process.Process._getReason} does, and attaches the
    child's resource usage to it as a C{rusage} attribute.

A status of C{None} means I{status unknown}: the child is gone but its exit
status was taken by someone else (C{SIGCHLD} set to C{SIG_IGN}, which makes
the kernel reap children itself, or other code calling C{waitpid(-1)}).  It
is reported as C{ProcessTerminated(exitCode=None, signal=None, status=None)}.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.error import ProcessDone, ProcessTerminated

if TYPE_CHECKING:
    from txspawn._cgroupoptions import CgroupStats
    from txspawn._kernel.childhandle import ChildProcess

__all__ = [
    "reasonForChild",
    "reasonFromStatus",
    "statusFromSiginfo",
]

# Twisted's exception constructors are unannotated; these aliases give them
# types so the rest of the module stays strictly typed.
_done: Callable[[int], ProcessDone] = ProcessDone
_terminated: Callable[[int | None, int | None, int | None], ProcessTerminated] = (
    ProcessTerminated
)

# The classic status of a core-dumping signal death has this bit set
# (WCOREDUMP); the kernel reports such a death as CLD_DUMPED in siginfo.
_CORE_FLAG = 0x80
# The low 7 bits of a classic status: 0 for a normal exit, else the signal
# that ended the child (WTERMSIG), or 0x7F for "stopped".
_TERMSIG_MASK = 0x7F
# The low 7 bits of a "stopped" status (WIFSTOPPED).
_STOPPED_MARK = 0x7F
# The whole classic status of a continued child (WIFCONTINUED).
_CONTINUED_STATUS = 0xFFFF


def statusFromSiginfo(code: int, status: int) -> int:
    """
    Rebuild a classic wait status from C{waitid()}'s C{siginfo_t}.

    @param code: C{si_code}: one of C{os.CLD_EXITED}, C{os.CLD_KILLED},
        C{os.CLD_DUMPED}, C{os.CLD_STOPPED}, C{os.CLD_TRAPPED} or
        C{os.CLD_CONTINUED} (C{os.waitid_result.si_code}).
    @param status: C{si_status}: the exit code for C{CLD_EXITED}, else the
        signal number (C{os.waitid_result.si_status}).
    @return: The status C{wait4()} would have returned for the same event:
        C{os.WIFEXITED}, C{os.WIFSIGNALED}, C{os.WCOREDUMP},
        C{os.WIFSTOPPED} and C{os.WIFCONTINUED} answer as they would there.
    @raise ValueError: if C{code} is not a C{CLD_*} child code.
    """
    if code == os.CLD_EXITED:
        # The exit code is the second byte; only its low 8 bits survive.
        return (status & 0xFF) << 8
    if code == os.CLD_KILLED:
        return status & 0x7F
    if code == os.CLD_DUMPED:
        return (status & 0x7F) | _CORE_FLAG
    if code in (os.CLD_STOPPED, os.CLD_TRAPPED):
        return ((status & 0xFF) << 8) | _STOPPED_MARK
    if code == os.CLD_CONTINUED:
        return _CONTINUED_STATUS
    raise ValueError(
        f"code must be a CLD_* si_code from waitid() (CLD_EXITED, CLD_KILLED, "
        f"CLD_DUMPED, CLD_STOPPED, CLD_TRAPPED, CLD_CONTINUED), not {code!r}"
    )


def reasonFromStatus(
    status: int | None,
    rusage: resource.struct_rusage | None = None,
    cgroup: CgroupStats | None = None,
) -> ProcessDone | ProcessTerminated:
    """
    Convert a classic wait status into a process exit reason.

    The mapping is Twisted's own (C{Process._getReason}), quirks included:
    exit code 0 gives L{ProcessDone}; any other exit code gives
    L{ProcessTerminated} with C{exitCode} set and C{signal=None}; anything
    that is not a normal exit gives L{ProcessTerminated} with C{exitCode=None}
    and C{signal=os.WTERMSIG(status)}.

    @param status: A classic wait status (as from C{os.wait4} or
        L{statusFromSiginfo}), or C{None} when the status is unknown because
        someone else reaped the child (C{ECHILD}).
    @param rusage: The child's resource usage from C{wait4} (which counts
        the address space it shared with its parent before C{execve} in
        C{ru_maxrss}: see
        L{IManagedProcessTransport.rusage
        <txspawn.interfaces.IManagedProcessTransport.rusage>}), or C{None}
        when unknown.
    @param cgroup: The statistics of the child's cgroup, read when it was
        reaped (L{txspawn.options.CgroupStats}), or C{None} for a child
        without a cgroup of its own.
    @return: The reason, with C{rusage} and C{cgroup} set as attributes on
        it.  For an
        unknown status it is C{ProcessTerminated(exitCode=None, signal=None,
        status=None)}: callers recognise "status unknown" by C{status is
        None}.
    """
    reason: ProcessDone | ProcessTerminated
    if status is None:
        reason = _terminated(None, None, None)
    elif status & _TERMSIG_MASK == 0:
        # os.WIFEXITED, os.WEXITSTATUS and os.WTERMSIG as arithmetic: this
        # runs on the exit path, where each call is a cache miss.
        exitCode = (status >> 8) & 0xFF
        reason = _terminated(exitCode, None, status) if exitCode else _done(status)
    else:
        reason = _terminated(None, status & _TERMSIG_MASK, status)
    # An attribute on the instance (not a subclass) keeps type(reason) and
    # every isinstance/Failure.check test exactly as stock Twisted's.
    reason.rusage = rusage  # type: ignore[union-attr]
    reason.cgroup = cgroup  # type: ignore[union-attr]
    return reason


def reasonForChild(child: ChildProcess) -> ProcessDone | ProcessTerminated:
    """
    The exit reason of a reaped child.

    @param child: A reaped L{txspawn._kernel.childhandle.ChildProcess}.
    @return: L{reasonFromStatus} of its status and rusage.
    @raise ValueError: if the child has not been reaped yet.
    """
    if not child.reaped:
        raise ValueError(f"child {child.pid} has not been reaped yet")
    return reasonFromStatus(child.status, child.rusage)
