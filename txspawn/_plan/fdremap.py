# -*- test-case-name: tests.test_fdplan -*-
"""
The pure fd-remapping algorithm: C{childFDs} in, an L{FdProgram} out.

This is the heir of Twisted's C{_getFileActions}, with one important
difference: it does not need the list of the parent's open fds.  Listing them
costs O(open fds) per spawn; instead the program ends by closing every fd the
child must not keep (C{close_range(2)} over the gaps), so the state of the
rest of the table does not matter.

The ops are applied, in order, to the child's I{private copy} of the
parent's fd table.  That is what makes it safe to clobber fd numbers that no
mapping mentions: whatever was there in the parent stays untouched in the
parent, and in the child it would have been closed at the end anyway.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from txspawn._plan.fdops import CLOSE_RANGE_MAX, FdOp, FdOpCode, FdProgram

__all__ = ["FD_MAX", "planFdOps"]

#: The largest fd number the kernel can represent (C{INT_MAX}); fds and
#: relocation targets beyond it are rejected.
FD_MAX = 0x7FFFFFFF


def _checkFD(value: object, what: str) -> int:
    """
    Validate one fd number.

    @param value: The candidate fd.
    @param what: How to name it in an error message.
    @return: C{value}, known to be a usable fd number.
    @raise TypeError: if C{value} is not an L{int} (L{bool} is refused).
    @raise ValueError: if C{value} is negative or above L{FD_MAX}.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int file descriptor, not {value!r}")
    if value < 0 or value > FD_MAX:
        raise ValueError(f"{what} must be a file descriptor >= 0, not {value!r}")
    return value


def _closeGaps(kept: Iterable[int]) -> list[FdOp]:
    """
    The C{CLOSE_RANGE} ops that close every fd except C{kept}.

    @param kept: The fds that must survive.
    @return: One op per gap between consecutive kept fds, plus the open
        range above the highest (C{[max + 1, CLOSE_RANGE_MAX]}).
    """
    ops = []
    low = 0
    for fd in sorted(set(kept)):
        if fd > low:
            ops.append(FdOp(FdOpCode.CLOSE_RANGE, low, fd - 1))
        low = fd + 1
    ops.append(FdOp(FdOpCode.CLOSE_RANGE, low, CLOSE_RANGE_MAX))
    return ops


def planFdOps(fdMap: Mapping[int, int], keep: Sequence[int] = ()) -> FdProgram:
    """
    Plan the child's fd operations.

    Applied in order to a copy of the parent's fd table, the returned ops
    leave the child with exactly:

      - each key of C{fdMap}, a duplicate of the parent's fd C{fdMap[key]}
        I{without} C{FD_CLOEXEC};
      - each fd of C{keep}, a duplicate of the parent's fd still I{with}
        C{FD_CLOEXEC}, at the number given at the same index of
        L{FdProgram.keptFds};

    and every other fd closed.  The algorithm:

      1. a C{keep} fd that is also a key of C{fdMap} would be overwritten, so
         it is first moved with C{DUP2_CLOEXEC} to a fresh number;
      2. the non-identity mappings are emitted as C{DUP2} in an order where no
         fd is overwritten while a later mapping still reads it (a
         topological order); only a cycle (C{{0: 1, 1: 0}}) forces one
         relocation, with C{DUP2_CLOEXEC} to a fresh number, per cycle;
      3. identity mappings (C{{3: 3}}) become C{CLEAR_CLOEXEC}, because
         C{dup2(fd, fd)} does nothing, not even clear the flag (CPython issue
         #10806; the comment in Twisted's C{_getFileActions});
      4. C{CLOSE_RANGE} over every gap between the fds to keep and over
         C{[max + 1, CLOSE_RANGE_MAX]} closes the sources, the relocated
         copies and anything else inherited from the parent.

    Fresh numbers are allocated upwards from one above every fd that
    C{fdMap} and C{keep} mention, so they never collide with a fd the
    program still needs.  (They must also be below the child's
    C{RLIMIT_NOFILE}, which only matters when the parent's own fds sit right
    under that limit.)

    The common case C{{0: a, 1: b, 2: c}} with C{a, b, c > 2} is three
    C{DUP2} and one C{CLOSE_RANGE(3, CLOSE_RANGE_MAX)}.  The number of ops is
    at most C{3 * len(fdMap) + 2 * len(keep) + 1}, whatever the size of the
    parent's fd table.

    @param fdMap: Child fd -> parent fd.  Several child fds may map to one
        parent fd.
    @param keep: Parent fds (such as the error pipe's write end) that must
        stay open until the exec.  They must be close-on-exec in the parent:
        the program moves them only when they are in the way, and never sets
        the flag on a fd it does not move.
    @return: The program.
    @raise TypeError: if an fd is not an L{int}, or C{fdMap} is not a
        mapping.
    @raise ValueError: if an fd is negative or too large.
    """
    if not isinstance(fdMap, Mapping):
        raise TypeError(f"fdMap must be a mapping, not {fdMap!r}")
    mapping: dict[int, int] = {}
    for child, parent in fdMap.items():
        _checkFD(child, "fdMap key")
        mapping[child] = _checkFD(parent, f"fdMap[{child}]")
    kept = [_checkFD(fd, "keep") for fd in keep]

    mentioned = set(mapping) | set(mapping.values()) | set(kept)
    nextFresh = max(mentioned, default=-1) + 1

    def fresh() -> int:
        nonlocal nextFresh
        if nextFresh > FD_MAX:
            raise ValueError("no fd number left above the planned fds")
        fd = nextFresh
        nextFresh += 1
        return fd

    ops: list[FdOp] = []

    # 1. Keep fds in the way of a target move first, while they still hold
    #    the object to keep.
    movedKeep: dict[int, int] = {}
    for fd in kept:
        if fd in mapping and fd not in movedKeep:
            movedKeep[fd] = fresh()
            ops.append(FdOp(FdOpCode.DUP2_CLOEXEC, fd, movedKeep[fd]))
    keptFds = tuple(movedKeep.get(fd, fd) for fd in kept)

    # 2. Non-identity mappings, in an order that never overwrites an fd that
    #    a pending mapping still has to read.  ``source`` is where each
    #    pending mapping's object lives now; ``readers`` is the reverse.
    source = {c: p for c, p in mapping.items() if c != p}
    readers: dict[int, set[int]] = {}
    for child, parent in source.items():
        readers.setdefault(parent, set()).add(child)
    ready = [c for c in source if not readers.get(c)]
    heapq.heapify(ready)
    while source:
        if not ready:
            # Only cycles are left: every pending target is still read by
            # another pending mapping.  Break the lowest-numbered one by
            # moving its current object out of the way.
            victim = min(source)
            moved = fresh()
            ops.append(FdOp(FdOpCode.DUP2_CLOEXEC, victim, moved))
            victimReaders = readers.pop(victim)
            for child in victimReaders:
                source[child] = moved
            readers[moved] = victimReaders
            heapq.heappush(ready, victim)
            continue
        child = heapq.heappop(ready)
        parent = source.pop(child)
        ops.append(FdOp(FdOpCode.DUP2, parent, child))
        parentReaders = readers[parent]
        parentReaders.discard(child)
        if not parentReaders:
            del readers[parent]
            if parent in source:
                heapq.heappush(ready, parent)

    # 3. Identity mappings only need their close-on-exec flag cleared.
    for child in sorted(mapping):
        if mapping[child] == child:
            ops.append(FdOp(FdOpCode.CLEAR_CLOEXEC, child, child))

    # 4. Close everything else.
    ops.extend(_closeGaps([*mapping, *keptFds]))
    return FdProgram(tuple(ops), keptFds)
