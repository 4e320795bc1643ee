# -*- test-case-name: tests.test_namespaceoptions -*-
"""
The namespace options, public as L{txspawn.options.Namespaces} and
L{txspawn.options.IdMapRange} (which re-exports them from here, to keep
each module to one concept): which Linux namespaces a child is created in,
its user namespace's maps, and the setup done inside them.  Like
L{txspawn.options}, this is public vocabulary: it imports nothing of
txspawn.  Each value is validated when built; each contradiction is a
L{ValueError} naming the option.

@since: txspawn 0.1
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from fractions import Fraction
from typing import Union

from attrs import Attribute, field, frozen

__all__ = [
    "MAX_RANGES",
    "IdMapRange",
    "IdMapSpec",
    "Namespaces",
    "checkNamespaces",
    "effectiveCapabilities",
]

#: C{(uid_t)-1}: no range of a map may reach it (the kernel refuses a range
#: whose end, C{first + count}, wraps past it).
_ID_END = 2**32 - 1

#: The most ranges a map may have (C{UID_GID_MAP_MAX_EXTENTS}, Linux 4.15;
#: 5 before).
MAX_RANGES = 340

#: The kernel refuses a map written in more than one page less one byte;
#: the smallest page Linux has is 4 KiB.
_MAP_TEXT_MAX = 4095

#: C{HOST_NAME_MAX}.
_HOSTNAME_MAX = 64

#: The clocks a time namespace offsets, in the order they are written.
_CLOCKS = ("monotonic", "boottime")

#: The largest offset, in seconds, the kernel takes (C{KTIME_SEC_MAX / 2}).
_OFFSET_MAX = (2**63 - 1) // 10**9 // 2

#: The capability a non-user namespace needs without a user namespace.
_CAP_SYS_ADMIN = 21

#: A map as L{Namespaces} accepts it.
IdMapSpec = Union[
    str,
    bytes,
    "IdMapRange",
    Iterable[Union["IdMapRange", tuple[int, int, int], list[int]]],
    None,
]


def _isInt(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checkRange(inside: object, outside: object, count: object, where: str) -> None:
    """
    Check one range of a map, naming it C{where} in messages.
    """
    for what, value in (("inside", inside), ("outside", outside), ("count", count)):
        if not _isInt(value):
            raise TypeError(f"{where}: {what} must be an int, not {value!r}")
    assert isinstance(inside, int) and isinstance(outside, int)
    assert isinstance(count, int)
    if count < 1:
        raise ValueError(f"{where}: count must be at least 1, not {count!r}")
    for what, first in (("inside", inside), ("outside", outside)):
        if first < 0:
            raise ValueError(f"{where}: {what} must not be negative, not {first!r}")
        if first + count > _ID_END:
            raise ValueError(
                f"{where}: {what} {first} + count {count} runs past the "
                f"largest id, {_ID_END - 1}"
            )


@frozen
class IdMapRange:
    """
    One line of a user namespace's C{uid_map} or C{gid_map}: the C{count}
    ids from C{inside} in the namespace are the ids from C{outside} in this
    process's namespace.

    Ids are C{0} to L{txspawn.options.ID_MAX}, C{count} at least 1, and a
    range may not run past the largest id.

    @since: txspawn 0.1
    """

    inside: int
    outside: int
    count: int

    def __attrs_post_init__(self) -> None:
        _checkRange(self.inside, self.outside, self.count, "IdMapRange")

    @classmethod
    def parse(cls, text: str | bytes) -> tuple[IdMapRange, ...]:
        """
        Read a map from text: ranges C{"inside outside count"} separated by
        commas (C{"0 1000 1,1 1001 1"}) or by newlines, as
        C{/proc/<pid>/uid_map} shows them; fields are separated by
        whitespace, and empty records are skipped.

        @raise ValueError: for a record that is not three decimal ids, a
            bad range (the message names its index), or ranges that overlap.
        """
        ranges = _checkMap(text, "IdMapRange.parse")
        assert ranges is not None
        return ranges

    @staticmethod
    def kernelText(ranges: Iterable[IdMapRange]) -> str:
        """
        The map as the kernel takes it in C{uid_map}/C{gid_map}: one line
        C{"inside outside count\\n"} per range, in order.  L{parse} reads it
        back.
        """
        return "".join(f"{r.inside} {r.outside} {r.count}\n" for r in ranges)


def _parseMap(text: str | bytes, name: str) -> tuple[IdMapRange, ...]:
    """
    L{IdMapRange.parse}, naming the map C{name} in messages.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{name}: a map is ASCII text, not {text!r}") from None
    records = [
        record for record in text.replace("\n", ",").split(",") if record.strip()
    ]
    ranges = []
    for index, record in enumerate(records):
        fields = record.split()
        if len(fields) != 3 or not all(
            f.isascii() and f.isdigit() and len(f) <= 10 for f in fields
        ):
            raise ValueError(
                f"{name}[{index}]: {record.strip()!r} is not a range "
                "'inside outside count' of three decimal ids"
            )
        inside, outside, count = (int(f) for f in fields)
        _checkRange(inside, outside, count, f"{name}[{index}]")
        ranges.append(IdMapRange(inside, outside, count))
    return tuple(ranges)


def _toRange(item: object, where: str) -> IdMapRange:
    if isinstance(item, IdMapRange):
        return item
    if not isinstance(item, (tuple, list)) or len(item) != 3:
        raise TypeError(
            f"{where} must be an IdMapRange or an (inside, outside, count) "
            f"tuple, not {item!r}"
        )
    inside, outside, count = item
    _checkRange(inside, outside, count, where)
    return IdMapRange(inside, outside, count)


def _checkMap(value: IdMapSpec, name: str) -> tuple[IdMapRange, ...] | None:
    """
    Validate and normalise a uid or gid map: text, one L{IdMapRange} or
    C{(inside, outside, count)} triple, or a sequence of them.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        ranges = _parseMap(value, name)
    else:
        items: object = value
        if isinstance(value, IdMapRange) or (
            isinstance(value, (tuple, list))
            and len(value) == 3
            and all(map(_isInt, value))
        ):
            # One range (a sequence of ranges has no int items).
            items = [value]
        if not isinstance(items, Iterable):
            raise TypeError(
                f"{name} must be None, text such as '0 1000 1,1 1001 1', or a "
                f"sequence of IdMapRange or (inside, outside, count), not {value!r}"
            )
        ranges = tuple(
            _toRange(item, f"{name}[{index}]") for index, item in enumerate(items)
        )
    if not ranges:
        raise ValueError(f"{name} is empty: a map needs at least one range")
    if len(ranges) > MAX_RANGES:
        raise ValueError(
            f"{name} has {len(ranges)} ranges; the kernel takes at most {MAX_RANGES}"
        )
    for side in ("inside", "outside"):
        spans = sorted(
            (getattr(r, side), getattr(r, side) + r.count, index)
            for index, r in enumerate(ranges)
        )
        # Sorted by start, ranges overlap if and only if neighbours do.
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            if start < end:
                first, second = sorted((first, second))
                raise ValueError(
                    f"{name}[{second}] overlaps {name}[{first}] {side}: the "
                    "kernel refuses a map whose ranges overlap"
                )
    if len(IdMapRange.kernelText(ranges)) > _MAP_TEXT_MAX:
        raise ValueError(
            f"{name} is more than {_MAP_TEXT_MAX} bytes as text, which the "
            "kernel refuses: merge adjacent ranges"
        )
    return ranges


def _uidMap(value: IdMapSpec) -> tuple[IdMapRange, ...] | None:
    return _checkMap(value, "Namespaces.uidMap")


def _gidMap(value: IdMapSpec) -> tuple[IdMapRange, ...] | None:
    return _checkMap(value, "Namespaces.gidMap")


def _checkBool(instance: object, attribute: Attribute[bool], value: object) -> None:
    """
    Validate a L{bool} field of L{Namespaces}.
    """
    if not isinstance(value, bool):
        raise TypeError(f"Namespaces.{attribute.name} must be a bool, not {value!r}")


#: The values each text field of L{Namespaces} takes.
_CHOICES = {
    "setgroups": ("deny", "allow"),
    "propagation": ("slave", "private", "shared", "unchanged"),
}


def _checkChoice(instance: object, attribute: Attribute[str], value: object) -> None:
    """
    Validate a text field of L{Namespaces} (L{_CHOICES}).
    """
    choices = _CHOICES[attribute.name]
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"Namespaces.{attribute.name} must be one of "
            f"{', '.join(map(repr, choices))}, not {value!r}"
        )


def _checkHostname(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str):
        raise TypeError(f"Namespaces.hostname must be a str or None, not {value!r}")
    try:
        encoded = os.fsencode(value)
    except UnicodeEncodeError:
        raise ValueError(f"Namespaces.hostname cannot be encoded: {value!r}") from None
    if b"\0" in encoded:
        raise ValueError(f"Namespaces.hostname contains NUL: {value!r}")
    if len(encoded) > _HOSTNAME_MAX:
        raise ValueError(
            f"Namespaces.hostname is {len(encoded)} bytes; the kernel takes at "
            f"most {_HOSTNAME_MAX}"
        )
    return value


def _offset(value: object, where: str) -> tuple[int, int]:
    """
    Seconds (an int, a float or a L{timedelta}) as C{(seconds,
    nanoseconds)}, nanoseconds from 0 to 999999999, exactly for ints and
    timedeltas and to the nearest nanosecond for floats.
    """
    if isinstance(value, timedelta):
        nanoseconds = (
            (value.days * 86400 + value.seconds) * 10**6 + value.microseconds
        ) * 1000
    elif _isInt(value):
        assert isinstance(value, int)
        nanoseconds = value * 10**9
    elif isinstance(value, (float, Fraction)):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, not {value!r}")
        nanoseconds = round(Fraction(value) * 10**9)
    else:
        raise TypeError(
            f"{where} must be seconds (an int, a float or a timedelta), not {value!r}"
        )
    seconds, nanoseconds = divmod(nanoseconds, 10**9)
    if not -_OFFSET_MAX <= seconds <= _OFFSET_MAX:
        raise ValueError(
            f"{where} must be within {_OFFSET_MAX} seconds either way, not {value!r}"
        )
    return seconds, nanoseconds


def _checkClock(clock: object, seen: Iterable[str], name: str) -> str:
    if not isinstance(clock, str) or clock not in _CLOCKS:
        raise ValueError(
            f"{name}: unknown clock {clock!r} (the clocks are "
            f"{', '.join(map(repr, _CLOCKS))})"
        )
    if clock in seen:
        raise ValueError(f"{name}[{clock!r}] is given twice")
    return clock


def _checkTimeOffsets(value: object) -> tuple[tuple[str, int, int], ...]:
    """
    Validate and normalise L{Namespaces.timeOffsets}: a mapping of clock
    name to seconds, or the stored C{(clock, seconds, nanoseconds)} triples
    (as C{attrs.evolve} passes them back).
    """
    name = "Namespaces.timeOffsets"
    offsets: dict[str, tuple[int, int]] = {}
    if isinstance(value, Mapping):
        for clock, seconds in value.items():
            clock = _checkClock(clock, offsets, name)
            offsets[clock] = _offset(seconds, f"{name}[{clock!r}]")
    elif isinstance(value, tuple) and all(
        isinstance(entry, tuple) and len(entry) == 3 for entry in value
    ):
        for clock, seconds, nanoseconds in value:
            clock = _checkClock(clock, offsets, name)
            where = f"{name}[{clock!r}]"
            if not (
                _isInt(seconds) and _isInt(nanoseconds) and 0 <= nanoseconds < 10**9
            ):
                raise ValueError(
                    f"{where} must be (seconds, nanoseconds), nanoseconds 0 to "
                    f"999999999, not {(seconds, nanoseconds)!r}"
                )
            offsets[clock] = _offset(seconds + Fraction(nanoseconds, 10**9), where)
    else:
        raise TypeError(
            f"{name} must be a mapping of clock ('monotonic', 'boottime') to "
            f"seconds, not {value!r}"
        )
    return tuple((clock, *offsets[clock]) for clock in _CLOCKS if clock in offsets)


def effectiveCapabilities() -> int | None:
    """
    This process's effective capabilities (C{CapEff} in
    C{/proc/self/status}, bit I{n} for capability I{n}), or C{None} if they
    cannot be read (then nothing is refused on their account: the kernel
    decides, and its error says why).
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                # continue, not "if ...: return" last in the loop: see
                # tests/test_exceptiontable.py.
                if not line.startswith(b"CapEff:"):
                    continue
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _hasCapability(capability: int) -> bool:
    capabilities = effectiveCapabilities()
    return capabilities is None or bool(capabilities >> capability & 1)


#: The namespace types besides user, in the order they are named.
_OTHER_TYPES = ("pid", "mount", "net", "uts", "ipc", "cgroup", "time")


@frozen
class Namespaces:
    """
    The new Linux namespaces a child is created in, and their setup.

    Give it to C{spawnProcess}, L{txspawn.run} or L{txspawn.stream} as
    C{namespaces=}, or as L{txspawn.options.SpawnOptions.namespaces}.  The
    child is created in the namespaces at once (C{clone} with the
    C{CLONE_NEW*} flags); then, in this order, its maps are written, its
    ids set, its hostname set, C{lo} brought up, its mount propagation
    changed, a fresh C{/proc} mounted and its time offsets set, before the
    usual steps and exec.  Each failure raises
    L{txspawn.errors.SpawnError} from the spawn, naming the step.

    Without C{user}, every other namespace needs C{CAP_SYS_ADMIN} (root):
    building one without it is a L{ValueError}.  With C{user}, any user can
    create all of them, and C{spawnProcess}'s C{uid} and C{gid} (and
    C{groups}) are ids I{inside} the user namespace.

    @ivar user: A new user namespace.
    @ivar pid: A new pid namespace (see L{pidInit}).
    @ivar mount: A new mount namespace (see L{propagation}, L{mountProc}).
    @ivar net: A new network namespace, with only C{lo} (see L{loopback}).
    @ivar uts: A new UTS namespace (see L{hostname}).
    @ivar ipc: A new IPC namespace.
    @ivar cgroup: A new cgroup namespace.
    @ivar time: A new time namespace (see L{timeOffsets}; Linux 5.6).
    @ivar uidMap: The user namespace's uid map: text such as
        C{"0 1000 1,1 1001 1"} (see L{IdMapRange.parse}), or a sequence of
        L{IdMapRange} or C{(inside, outside, count)}; stored as a tuple of
        L{IdMapRange}.  C{None} (the default) maps root in the namespace to
        this process's effective uid, as C{unshare -r} does.  Needs
        C{user}.
    @ivar gidMap: The gid map, in the same forms; C{None} maps root to this
        process's effective gid.  Needs C{user}.
    @ivar setgroups: C{"deny"} (the default) or C{"allow"}: whether
        C{setgroups(2)} works in the user namespace.  An unprivileged
        process can only map its own ids, with C{"deny"}: such a I{self-map}
        is written by the child itself, at full spawn speed; any other map
        is written by this process while the child waits.  C{"allow"}
        needs a C{gidMap} given (and the privilege to write it).
    @ivar hostname: The hostname in the new UTS namespace (at most 64
        bytes), or C{None} to keep this one's.  Needs C{uts}.
    @ivar loopback: Bring C{lo} up in the new network namespace (the kernel
        then gives it 127.0.0.1 and ::1).  Needs C{net}.
    @ivar mountProc: Mount a fresh C{/proc}, showing the new pid namespace
        when there is one.  Needs C{mount}, and C{pid} too with C{user}
        (the kernel lets a user namespace mount only the C{/proc} of a pid
        namespace it owns).
    @ivar propagation: The propagation made recursive over every mount of
        the new mount namespace: C{"slave"} (the default: mounts made in
        the child never reach this namespace, and this namespace's still
        reach the child), C{"private"} (nothing crosses either way),
        C{"shared"}, or C{"unchanged"}.  Used only with C{mount}.
    @ivar timeOffsets: Offsets of the new time namespace's clocks: a
        mapping of C{"monotonic"} and/or C{"boottime"} to seconds (an int,
        a float, or a L{timedelta}; may be negative); stored as sorted
        C{(clock, seconds, nanoseconds)} triples.  Needs C{time}.
    @ivar pidInit: With C{pid}: C{True} (the default) makes a small init
        of txspawn's pid 1 of the namespace, and the command its pid 2;
        init forwards every signal it can catch to the command, reaps
        orphans, and hands the command's exact exit status back.  When it
        exits, the kernel kills everything left in the namespace.
        C{False} makes the command itself pid 1: it then ignores every
        signal it has no handler for, C{SIGTERM} and C{SIGINT} included,
        so a timeout's C{SIGTERM} does nothing and only its C{SIGKILL}
        ends it.

    @since: txspawn 0.1
    """

    user: bool = field(default=False, validator=_checkBool)
    pid: bool = field(default=False, validator=_checkBool)
    mount: bool = field(default=False, validator=_checkBool)
    net: bool = field(default=False, validator=_checkBool)
    uts: bool = field(default=False, validator=_checkBool)
    ipc: bool = field(default=False, validator=_checkBool)
    cgroup: bool = field(default=False, validator=_checkBool)
    time: bool = field(default=False, validator=_checkBool)
    uidMap: tuple[IdMapRange, ...] | None = field(default=None, converter=_uidMap)
    gidMap: tuple[IdMapRange, ...] | None = field(default=None, converter=_gidMap)
    setgroups: str = field(default="deny", validator=_checkChoice)
    hostname: str | None = field(default=None, converter=_checkHostname)
    loopback: bool = field(default=False, validator=_checkBool)
    mountProc: bool = field(default=False, validator=_checkBool)
    propagation: str = field(default="slave", validator=_checkChoice)
    timeOffsets: tuple[tuple[str, int, int], ...] = field(
        default=(), converter=_checkTimeOffsets
    )
    pidInit: bool = field(default=True, validator=_checkBool)

    def __attrs_post_init__(self) -> None:
        """
        Refuse the contradictions.
        """
        needs = [
            ("uidMap", self.uidMap is not None, "user"),
            ("gidMap", self.gidMap is not None, "user"),
            ("hostname", self.hostname is not None, "uts"),
            ("loopback", self.loopback, "net"),
            ("mountProc", self.mountProc, "mount"),
            ("timeOffsets", bool(self.timeOffsets), "time"),
        ]
        for option, given, namespace in needs:
            if given and not getattr(self, namespace):
                raise ValueError(
                    f"Namespaces.{option} needs a {namespace} namespace: "
                    f"give {namespace}=True"
                )
        if self.setgroups == "allow" and self.gidMap is None:
            raise ValueError(
                "Namespaces.setgroups='allow' needs a gidMap: the default map "
                "(root to our own egid) is written by the child, which the "
                "kernel allows only with setgroups denied"
            )
        if self.mountProc and self.user and not self.pid:
            raise ValueError(
                "Namespaces.mountProc with a user namespace needs pid=True: "
                "the kernel lets a user namespace mount only the /proc of a "
                "pid namespace it owns"
            )
        if not self.user:
            asked = [name for name in _OTHER_TYPES if getattr(self, name)]
            if asked and not _hasCapability(_CAP_SYS_ADMIN):
                raise ValueError(
                    f"Namespaces.{asked[0]} needs root (CAP_SYS_ADMIN) or "
                    "user=True: without a user namespace only a privileged "
                    "process can create namespaces"
                )


def checkNamespaces(value: Namespaces | None, name: str) -> Namespaces | None:
    """
    Validate L{txspawn.options.SpawnOptions.namespaces}, naming the option
    C{name}.
    """
    if value is not None and not isinstance(value, Namespaces):
        raise TypeError(
            f"{name} must be a txspawn.options.Namespaces or None, not {value!r}"
        )
    return value
