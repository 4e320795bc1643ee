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

#: Encoded fd programs by (child fd map items, error pipe fd): the same few
#: maps come back on every spawn, and L{planFdOps} is pure.
_programs: dict[
    tuple[tuple[tuple[int, int], ...], int | None], tuple[EncodedOp, ...]
] = {}
_PROGRAM_CACHE_SIZE = 256


def encodedProgram(
    childMap: Mapping[int, int], errFd: int | None
) -> tuple[EncodedOp, ...]:
    """
    The fd program for C{childMap} keeping C{errFd} (L{None} in slot mode,
    which has no error pipe), as the extension takes it: C{(op, fd,
    target)} triples.  Memoised (L{planFdOps} is a pure
    function of its arguments); a bad map raises every time, never cached.
    """
    key = (tuple(childMap.items()), errFd)
    ops = _programs.get(key)
    if ops is None:
        program = planFdOps(childMap, keep=() if errFd is None else (errFd,))
        ops = tuple((int(op.op), op.fd, op.target) for op in program.ops)
        if len(_programs) >= _PROGRAM_CACHE_SIZE:
            _programs.clear()
        _programs[key] = ops
    return ops
