# -*- test-case-name: tests.test_pyspawn -*-
"""
The syscalls the Python engine makes in the parent that can fail, in one
narrow object (L{ParentSyscalls}) that tests replace to inject failures
without patching L{os}.
"""

from __future__ import annotations

import os

from txspawn._kernel.childhandle import recordCall, recordItems
from txspawn._plan.failurerecord import ChildFailure, readFailure

__all__ = ["ParentSyscalls"]


class ParentSyscalls:
    """
    The parent-side syscalls of the fork path, and the pidfd both paths
    open, that can fail.

    Each call that creates something appends it to C{into} before any
    Python bytecode runs (L{txspawn._kernel.childhandle.recordCall}), so that an
    exception raised by a signal handler right after the syscall returned
    cannot lose it: the engine cleans up what C{into} holds.
    """

    def pipe(self, into: list[int]) -> None:
        """
        Open a close-on-exec pipe (the child's error pipe).

        @param into: Gets the read end, then the write end.
        """
        recordItems(into, os.pipe2, os.O_CLOEXEC)

    def fork(self, into: list[int]) -> int:
        """
        @param into: Gets the result in the parent (the child's pid).
        @return: C{os.fork()}.
        """
        return recordCall(into, os.fork)

    def pidfdOpen(self, pid: int, into: list[int]) -> int:
        """
        @param into: Gets the pidfd.
        @return: C{os.pidfd_open(pid)}.
        """
        return recordCall(into, os.pidfd_open, pid)

    def readFailure(self, fd: int) -> ChildFailure | None:
        """
        @return: L{txspawn._plan.failurerecord.readFailure} of the error pipe.
        """
        return readFailure(fd)
