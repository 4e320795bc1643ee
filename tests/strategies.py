# -*- test-case-name: tests.test_fdplan,tests.test_plan -*-
"""
Hypothesis strategies shared by txspawn's tests.

  - L{fdTables}: a model of a parent's fd table, C{fd -> (objectId,
    cloexec)}, with several fds sharing one open file description (as
    C{dup} makes them);
  - L{fdPlanCases}: a table plus a C{childFDs}-style C{fdMap} (child fd ->
    parent fd) rich in cycles, duplicates and 0/1/2 swaps, plus C{keep}
    fds;
  - L{childFDsArguments}: Twisted-style C{childFDs} arguments (C{"r"},
    C{"w"} or a parent fd);
  - L{envKeys}, L{envValues}, L{environments}: environments as C{str} or
    C{bytes}, without NUL or C{=} in keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen
from hypothesis import strategies as st

__all__ = [
    "FdPlanCase",
    "FdTable",
    "argumentStrings",
    "childFDsArguments",
    "envKeys",
    "envValues",
    "environments",
    "fdNumbers",
    "fdPlanCases",
    "fdTables",
]

#: fd -> (open file description id, close-on-exec flag)
FdTable = Mapping[int, tuple[int, bool]]

#: Small fd numbers, so that collisions between sources, targets and kept
#: fds are frequent.
fdNumbers = st.integers(min_value=0, max_value=24)


@st.composite
def fdTables(draw: st.DrawFn, minSize: int = 1, maxSize: int = 20) -> FdTable:
    """
    A parent fd table: between C{minSize} and C{maxSize} open fds, each
    referring to one of a few open file descriptions, with random
    close-on-exec flags.
    """
    fds = draw(st.sets(fdNumbers, min_size=minSize, max_size=maxSize))
    table = {}
    for fd in sorted(fds):
        table[fd] = (
            draw(st.integers(min_value=100, max_value=100 + len(fds))),
            draw(st.booleans()),
        )
    return table


@frozen
class FdPlanCase:
    """
    One input of the fd planner with the table it applies to.

    @ivar table: The parent's fd table.
    @ivar fdMap: Child fd -> parent fd (every parent fd is open in
        C{table}).
    @ivar keep: Parent fds to keep (open and close-on-exec in C{table}).
    """

    table: Mapping[int, tuple[int, bool]]
    fdMap: Mapping[int, int]
    keep: tuple[int, ...]


@st.composite
def fdPlanCases(draw: st.DrawFn, maxKeep: int = 2) -> FdPlanCase:
    """
    A parent table, an C{fdMap} whose sources are open in it, and up to
    C{maxKeep} distinct kept fds.

    Besides arbitrary maps, it mixes in permutations of the fds a map
    already mentions (cycles and swaps such as C{{0: 1, 1: 0}}) and maps
    whose targets are exactly their sources' numbers (chains).
    """
    table = draw(fdTables())
    openFDs = sorted(table)
    children = draw(st.lists(fdNumbers, unique=True, max_size=10))
    shape = draw(st.sampled_from(["random", "permutation", "std"]))
    fdMap: dict[int, int] = {}
    if shape == "permutation":
        # Targets are themselves open fds, shuffled among each other: cycles,
        # swaps and identities.
        targets = draw(st.lists(st.sampled_from(openFDs), unique=True, max_size=8))
        shuffled = draw(st.permutations(targets))
        fdMap = dict(zip(targets, shuffled, strict=True))
    elif shape == "std":
        # Some permutation of 0/1/2, as in "2>&1"-style redirections.
        for child in (0, 1, 2):
            fdMap[child] = draw(st.sampled_from(openFDs))
    for child in children:
        fdMap.setdefault(child, draw(st.sampled_from(openFDs)))
    keep = tuple(
        draw(st.lists(st.sampled_from(openFDs), unique=True, max_size=maxKeep))
    )
    # planFdOps's precondition: fds to keep are close-on-exec in the parent
    # (the error pipe comes from pipe2(O_CLOEXEC)).
    table = {
        fd: (objectId, cloexec or fd in keep)
        for fd, (objectId, cloexec) in table.items()
    }
    return FdPlanCase(table, fdMap, keep)


#: A Twisted C{childFDs} argument: child fd -> C{"r"}, C{"w"} or a parent fd.
childFDsArguments = st.dictionaries(
    st.integers(min_value=0, max_value=20),
    st.one_of(st.just("r"), st.just("w"), st.integers(min_value=0, max_value=2)),
    max_size=6,
)

_textNoNul = st.text(
    alphabet=st.characters(exclude_characters="\x00", codec="utf-8"),
    max_size=12,
)
_bytesNoNul = st.binary(max_size=12).filter(lambda b: b"\x00" not in b)

#: An argument or path component: C{str} or C{bytes} without NUL.
argumentStrings = st.one_of(_textNoNul, _bytesNoNul)

#: An environment key: non-empty, no NUL and no C{=}.
envKeys = st.one_of(
    _textNoNul.filter(lambda s: s != "" and "=" not in s),
    _bytesNoNul.filter(lambda b: b != b"" and b"=" not in b),
)

#: An environment value: anything without NUL (C{=} is fine).
envValues = argumentStrings

#: An environment mapping with C{str} and C{bytes} keys and values.
environments = st.dictionaries(envKeys, envValues, max_size=6)
