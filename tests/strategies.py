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
    C{bytes}, without NUL or C{=} in keys;
  - hostile values for fuzzing the entry points: L{hostileInts},
    L{intsOutside}, L{nulStrings}, L{unencodableStrings},
    L{escapedStrings} (valid), L{junkValues}.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen
from hypothesis import strategies as st

__all__ = [
    "HOSTILE_INT_EDGES",
    "FdPlanCase",
    "FdTable",
    "argumentStrings",
    "childFDsArguments",
    "envKeys",
    "envValues",
    "environments",
    "escapedStrings",
    "fdNumbers",
    "fdPlanCases",
    "fdTables",
    "hostileInts",
    "intsOutside",
    "junkValues",
    "nulStrings",
    "unencodableStrings",
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


# Hostile values, for fuzzing the entry points (tests.adversarial.test_fuzz).

#: Integers at the edges of the C types an argument may end up in (C{int},
#: C{pid_t}, C{uid_t}, C{rlim_t}, C{double}) and far beyond them.
HOSTILE_INT_EDGES: tuple[int, ...] = (
    -(2**64),
    -(2**63) - 1,
    -(2**63),
    -(2**31) - 1,
    -(2**31),
    -1,
    0,
    1,
    2**31 - 1,
    2**31,
    2**32 - 2,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    10**30,
    # Beyond a double: float() of it raises OverflowError.
    10**400,
)

#: An integer at an edge of L{HOSTILE_INT_EDGES}, or any other.
hostileInts = st.one_of(st.sampled_from(HOSTILE_INT_EDGES), st.integers())


def intsOutside(low: int, high: int) -> st.SearchStrategy[int]:
    """
    Integers below C{low} or above C{high}, the hostile edges among them
    (drawn directly: filtering L{hostileInts} would reject most draws).
    """
    edges = [n for n in HOSTILE_INT_EDGES if n < low or n > high]
    return st.one_of(
        st.sampled_from(edges),
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
    )


#: A C{str} or C{bytes} with a NUL somewhere in it.
nulStrings = st.one_of(
    st.tuples(_textNoNul, _textNoNul).map(lambda parts: parts[0] + "\0" + parts[1]),
    st.tuples(_bytesNoNul, _bytesNoNul).map(lambda parts: parts[0] + b"\0" + parts[1]),
)

#: A C{str} the file system encoding (UTF-8 with C{surrogateescape}) cannot
#: encode: it holds a lone surrogate outside C{U+DC80..U+DCFF}, the range
#: C{surrogateescape} maps back to single bytes.
unencodableStrings = st.tuples(
    _textNoNul,
    st.one_of(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDC7F),
        st.characters(min_codepoint=0xDD00, max_codepoint=0xDFFF),
    ),
    _textNoNul,
).map("".join)

#: A C{str} with lone surrogates that C{surrogateescape} encodes (as the
#: bytes C{0x80..0xFF} that C{os.fsdecode} made them from): valid.
escapedStrings = st.lists(
    st.one_of(
        st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
        st.characters(exclude_characters="\x00", codec="utf-8"),
    ),
    min_size=1,
    max_size=8,
).map("".join)

#: A value that no argument of any entry point takes: not C{None}, not a
#: string, an C{int}, a container or a callable object.
junkValues = st.sampled_from([1.5, float("nan"), -0.0, Ellipsis, 1j])
