# -*- test-case-name: tests.test_fdplan -*-
"""
The vocabulary of child file-descriptor operations.

An fd program is a flat tuple of L{FdOp}s that a child executes in order
between clone and exec, starting from a copy of the parent's fd table.  The
program is computed in the parent by L{txspawn._plan.fdremap.planFdOps}; the engines
only interpret it (the Python fork path op by op, C{posix_spawn} as file
actions, the C engine as a plain C array).

The numeric op codes are mirrored by the C engine's C{plan.h}.
"""

from __future__ import annotations

import enum

from attrs import frozen

__all__ = ["CLOSE_RANGE_MAX", "FdOp", "FdOpCode", "FdProgram"]

#: The C{hi} bound meaning "every fd from C{lo} up" (C{~0U} for
#: C{close_range(2)}).
CLOSE_RANGE_MAX = 0xFFFFFFFF


class FdOpCode(enum.IntEnum):
    """
    One kind of child fd operation.
    """

    #: C{dup2(fd, target)}: C{target} becomes a copy of C{fd}, without
    #: C{FD_CLOEXEC}.  Never emitted with C{fd == target}.
    DUP2 = 1
    #: C{dup3(fd, target, O_CLOEXEC)}: like L{DUP2} but the copy stays
    #: close-on-exec (used to move the error pipe out of the way).
    DUP2_CLOEXEC = 2
    #: Clear C{FD_CLOEXEC} on C{fd} (an identity mapping; C{dup2(fd, fd)}
    #: would leave the flag alone).  C{target} equals C{fd}.
    CLEAR_CLOEXEC = 3
    #: C{close(fd)}; C{EBADF} is not an error.  C{target} equals C{fd}.
    CLOSE = 4
    #: Close every fd in C{[fd, target]} (inclusive; C{target} may be
    #: L{CLOSE_RANGE_MAX}).  Not-open fds in the range are not an error.
    CLOSE_RANGE = 5


@frozen
class FdOp:
    """
    One child fd operation; see L{FdOpCode} for the meaning of C{fd} and
    C{target} per op.
    """

    op: FdOpCode
    fd: int
    target: int


@frozen
class FdProgram:
    """
    The fd operations for one spawn.

    @ivar ops: The operations, in order.
    @ivar keptFds: For each fd the caller asked to keep (the error pipe's
        write end), the number it has in the child once C{ops} have run, in
        the order they were given.  Kept fds stay close-on-exec.
    """

    ops: tuple[FdOp, ...]
    keptFds: tuple[int, ...] = ()
