# -*- test-case-name: tests.test_cspawn -*-
"""
The fd program in the form the C extension takes it: L{encodedProgram}
turns a child fd map into the C{(op, fd, target)} triples of
L{planFdOps}'s program, for both of the C engine's paths (the ordinary one,
L{txspawn._engine.cengine}, and slot mode, L{txspawn._engine.fdslots}).
"""

from __future__ import annotations

from collections.abc import Mapping

from txspawn._plan.fdremap import planFdOps

__all__ = ["EncodedOp", "encodedProgram"]

#: One fd operation as the extension takes it: C{(op, fd, target)}.
EncodedOp = tuple[int, int, int]

#: Encoded fd programs by (child fd map items, error pipe fd, status pipe
#: fd): the same few maps come back on every spawn, and L{planFdOps} is
#: pure.
_programs: dict[
    tuple[tuple[tuple[int, int], ...], int | None, int | None],
    tuple[EncodedOp, ...],
] = {}
_PROGRAM_CACHE_SIZE = 256


def encodedProgram(
    childMap: Mapping[int, int], errFd: int | None, statusFd: int | None = None
) -> tuple[EncodedOp, ...]:
    """
    The fd program for C{childMap} keeping C{errFd} (L{None} in slot mode,
    which has no error pipe) and C{statusFd} (the status pipe of txspawn's
    init, or L{None}), as the extension takes it: C{(op, fd, target)}
    triples.  Memoised (L{planFdOps} is a pure function of its arguments);
    a bad map raises every time, never cached.
    """
    key = (tuple(childMap.items()), errFd, statusFd)
    ops = _programs.get(key)
    if ops is None:
        keep = tuple(fd for fd in (errFd, statusFd) if fd is not None)
        program = planFdOps(childMap, keep=keep)
        ops = tuple((int(op.op), op.fd, op.target) for op in program.ops)
        if len(_programs) >= _PROGRAM_CACHE_SIZE:
            _programs.clear()
        _programs[key] = ops
    return ops
