# -*- test-case-name: tests.test_osposixspawn,tests.test_pyspawn -*-
"""
What the libc's own C{posix_spawn} does on this machine, found without
txspawn: whether its child starts with glibc's internal signals (32, 33)
ignored when they are not in the C{SETSIGDEF} set.

glibc's C{posix_spawn} child sets every internal signal it was not asked
to reset to C{SIG_IGN} (so that the parent's handlers never run on the
memory they share), and C{execve} keeps C{SIG_IGN}.  Since glibc 2.38
(commit 2053c113, "Add clone3 CLONE_CLEAR_SIGHAND optimization to
posix_spawn") the child is started with C{clone3(CLONE_CLEAR_SIGHAND)}
where the kernel allows it, the kernel resets the handlers, and that step
is skipped: the internal signals keep their default disposition.  Where
C{clone3} fails with C{ENOSYS} or C{EINVAL} (Linux < 5.3, or < 5.5 for
C{CLONE_CLEAR_SIGHAND}, or a seccomp filter refusing it) glibc falls back
to C{clone} and to the old step.

So the answer depends on the glibc version, the kernel and the process's
seccomp filter, and never on the Python version.
"""

from __future__ import annotations

import ctypes
import errno
import os

__all__ = [
    "CLONE3_ARCHES",
    "clone3Errno",
    "glibcVersion",
    "kernelVersion",
    "spawnIgnoresInternalSignals",
]

#: clone3's number (the same in every architecture's table).
SYS_CLONE3 = 435

#: The machines whose glibc (>= 2.38) starts C{posix_spawn} children with
#: C{clone3}, with their seccomp audit architecture (for
#: C{tests/helpers/spawnsigign.py}).  Others have it too; these are the ones
#: the tests know.
CLONE3_ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def glibcVersion() -> tuple[int, int] | None:
    """
    The running glibc's version, or L{None} for another libc.
    """
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return None
    if not found or not found.startswith("glibc "):
        return None
    major, minor = found.split()[1].split(".")[:2]
    return int(major), int(minor)


def kernelVersion() -> tuple[int, int]:
    """
    The running kernel's major and minor version.
    """
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def clone3Errno() -> int:
    """
    The errno of a C{clone3} call with no arguments: C{EINVAL} where the
    kernel has C{clone3} and nothing refuses it, C{ENOSYS} (or what a
    seccomp filter returns) otherwise.  No child is ever created.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_CLONE3, None, 0) != -1:  # pragma: no cover
        raise AssertionError("clone3 with no arguments succeeded")
    return ctypes.get_errno()


def spawnIgnoresInternalSignals() -> bool | None:
    """
    Whether glibc's C{posix_spawn}, here, starts its child with signals 32
    and 33 ignored unless they are in the C{SETSIGDEF} set; L{None} where
    the tests cannot tell (another libc, or a machine not in
    L{CLONE3_ARCHES}).
    """
    glibc = glibcVersion()
    if glibc is None:
        return None
    if glibc < (2, 38):
        return True
    if os.uname().machine not in CLONE3_ARCHES:
        return None
    usesClone3 = clone3Errno() == errno.EINVAL and kernelVersion() >= (5, 5)
    return not usesClone3
