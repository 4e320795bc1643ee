# -*- test-case-name: tests.test_envp -*-
"""
A plan's environment as C{os.execve} and C{os.posix_spawn} take it.

Those functions take a mapping, yet a plan's C{envp} may name a key twice
(C{twisted.web.twcgi} gives C{CONTENT_LENGTH} as a C{str} and a C{bytes}
key; stock Twisted passes both entries, in order, and the child's
C{getenv} sees the first).  CPython encodes a mapping that is not exactly a
C{dict} from C{len()}, C{keys()} and C{values()}, pair by pair, without
merging anything; L{EnvEntries} provides exactly those, so both entries
reach the child.  A plan without a repeated key gets a plain C{dict}.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

__all__ = ["EnvEntries", "envMapping"]


class EnvEntries(Mapping[bytes, bytes]):
    """
    C{KEY=VALUE} entries, a key possibly more than once, as the read-only
    mapping for C{os.execve} / C{os.posix_spawn}: C{keys()} and C{values()}
    list every entry in order; looking a key up gives its I{first} value,
    as the child's C{getenv} does.

    @ivar entries: The C{(key, value)} pairs, in order.
    """

    __slots__ = ("entries",)

    def __init__(self, entries: Sequence[tuple[bytes, bytes]]) -> None:
        self.entries = tuple(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys())

    def __getitem__(self, key: bytes) -> bytes:
        for k, v in self.entries:
            if k == key:
                return v
        raise KeyError(key)

    # A list rather than a view: CPython turns what keys() and values()
    # return into lists and pairs them up by position.
    def keys(self) -> list[bytes]:  # type: ignore[override]
        """
        Every entry's key, in order (repeated keys repeated).
        """
        return [k for k, _ in self.entries]

    def values(self) -> list[bytes]:  # type: ignore[override]
        """
        Every entry's value, in the order of L{keys}.
        """
        return [v for _, v in self.entries]

    def __repr__(self) -> str:
        return f"EnvEntries({list(self.entries)!r})"


def envMapping(envp: Sequence[bytes]) -> dict[bytes, bytes] | EnvEntries:
    """
    The mapping to give C{os.execve} / C{os.posix_spawn} for C{envp}.

    @param envp: C{KEY=VALUE} entries (a plan's C{envp}).
    @return: A C{dict} in C{envp}'s order when no key repeats (the common
        case, and the cheap one), else an L{EnvEntries} of every entry.
    """
    env: dict[bytes, bytes] = {}
    for entry in envp:
        key, _, value = entry.partition(b"=")
        if key in env:
            return EnvEntries([_split(e) for e in envp])
        env[key] = value
    return env


def _split(entry: bytes) -> tuple[bytes, bytes]:
    """
    C{(KEY, VALUE)} of a C{KEY=VALUE} entry (keys never contain C{=}).
    """
    key, _, value = entry.partition(b"=")
    return key, value
