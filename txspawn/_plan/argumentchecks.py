# -*- test-case-name: tests.test_plan -*-
"""
The checks and encoders of C{spawnProcess}'s arguments, one argument each.

Every C{str}/C{bytes} argument is file-system-encoded and refused if it
holds a NUL (L{encodeArgument}); the environment (L{encodeEnv}), the uid and
gid (L{checkID}), the working directory (L{checkCwd}), C{usePTY}
(L{checkPTY}) and C{childFDs} (L{checkChildFDs}) each have their check,
which names the argument in its error.  L{txspawn._plan.planner.planSpawn}
runs them to build a L{txspawn._plan.plan.SpawnPlan}; L{checkCommand} runs
those that need no system call for L{txspawn.run} and L{txspawn.stream}, so
the two cannot disagree.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Union

from txspawn._plan.fdremap import FD_MAX
from txspawn._plan.plan import (
    ChildFDSpec,
    InheritFD,
    PipeFromParent,
    PipeToParent,
    PTYSpec,
)
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import ID_MAX

__all__ = [
    "CHILD_FD_MAX",
    "DEFAULT_CHILD_FDS",
    "DEFAULT_CHILD_FD_SPECS",
    "NR_OPEN_MAX",
    "EnvMapping",
    "StrOrBytes",
    "checkChildFDs",
    "checkCommand",
    "checkCwd",
    "checkID",
    "checkPTY",
    "encodeArgument",
    "encodeEnv",
]


#: A string argument as C{spawnProcess} accepts it.
StrOrBytes = Union[str, bytes]

#: An C{env} argument: keys and values C{str} or C{bytes}.
EnvMapping = Union[
    Mapping[str, StrOrBytes],
    Mapping[bytes, StrOrBytes],
    Mapping[StrOrBytes, StrOrBytes],
]

#: Twisted's default C{childFDs}.
DEFAULT_CHILD_FDS: Mapping[int, object] = MappingProxyType({0: "w", 1: "r", 2: "r"})

#: The kernel's ceiling on C{fs.nr_open} (Linux's C{sysctl_nr_open_max}:
#: C{INT_MAX}, or as many pointers as fit in memory, rounded down to a
#: multiple of the bits of a C{long}).  No process can raise its
#: C{RLIMIT_NOFILE} above C{fs.nr_open}, nor have an fd at or above its
#: C{RLIMIT_NOFILE}.
NR_OPEN_MAX = min(
    FD_MAX, (2 ** (8 * struct.calcsize("P")) - 1) // struct.calcsize("P")
) & -(8 * struct.calcsize("l"))

#: The highest fd any process can have: a child fd above it is a mistake
#: whatever the machine, refused when the spawn is planned.  (A child fd
#: up to it but at or above the child's C{RLIMIT_NOFILE} is this machine's
#: limit: the child fails with C{EBADF}, on every engine.)  It also leaves
#: the fd program the numbers above the highest child fd it needs, for
#: closing what lies above it and moving fds out of the way.
CHILD_FD_MAX = NR_OPEN_MAX - 1

#: What L{os.fsencode} encodes a C{str} with (fixed for the life of the
#: interpreter); encoding directly saves a Python-level call per argument.
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()

#: L{encodeArgument}'s C{item} when the value is not an item of a
#: collection.
_WHOLE = object()


def encodeArgument(
    value: object, what: str, item: object = _WHOLE, isKey: bool = False
) -> bytes:
    """
    File-system-encode one C{str}/C{bytes} argument and refuse NUL.

    @param value: The argument.
    @param what: Its name for error messages, such as C{"args"}.
    @param item: The index or key of C{value} within C{what}, if it is an
        item: the message then names C{what[item]} (or C{what key item}).
        The name is only formatted for an error: this runs for every
        argument and environment entry of every spawn.
    @param isKey: C{value} is the key C{item} of the mapping C{what}.
    @return: The bytes.
    @raise TypeError: if C{value} is neither C{str} nor C{bytes} (nor a
        path-like object).
    @raise ValueError: if it contains a NUL byte or cannot be encoded.
    """
    try:
        if isinstance(value, bytes):
            encoded = value
        elif isinstance(value, str):
            encoded = value.encode(_FS_ENCODING, _FS_ERRORS)  # os.fsencode
        elif isinstance(value, os.PathLike):
            encoded = os.fsencode(value)
        else:
            raise TypeError(
                f"{_describe(what, item, isKey)} must be str or bytes, not {value!r}"
            )
    except UnicodeEncodeError:
        # A lone surrogate that surrogateescape cannot map back to a byte.
        raise ValueError(
            f"{_describe(what, item, isKey)} cannot be encoded with the file "
            f"system encoding ({_FS_ENCODING}): {value!r}"
        ) from None
    if b"\0" in encoded:
        raise ValueError(
            f"{_describe(what, item, isKey)} contains a NUL byte: {value!r}"
        )
    return encoded


def _describe(what: str, item: object, isKey: bool) -> str:
    """
    The name of an argument, or of an item of it, for a message.
    """
    if item is _WHOLE:
        return what
    if isKey:
        return f"{what} key {item!r}"
    return f"{what}[{item!r}]"


def checkID(value: object, what: str) -> int | None:
    """
    Validate a uid or gid argument.

    @raise TypeError: if it is not C{None} or an L{int} (L{bool} refused).
    @raise ValueError: if it is out of range.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int or None, not {value!r}")
    if not 0 <= value <= ID_MAX:
        raise ValueError(f"{what} must be between 0 and {ID_MAX}, not {value!r}")
    return value


def encodeEnv(
    env: EnvMapping, what: str
) -> tuple[dict[bytes, bytes], tuple[bytes, ...]]:
    """
    Encode an environment mapping.

    Two keys that encode to the same bytes (a C{str} and a C{bytes} key,
    as C{twisted.web.twcgi} gives for C{CONTENT_LENGTH}) both become entries
    of C{envp}, in C{env}'s order, as stock Twisted passes them (CPython's
    C{execve} and C{posix_spawn} encode a mapping entry by entry); the
    child's C{getenv} and C{os.environ} see the first.  The encoded mapping
    keeps the first value too (it is what the C{PATH} search reads).

    @param env: The mapping.
    @param what: Its name for messages (C{"env"} or C{"parentEnviron"}).
    @return: The encoded mapping and the C{envp} entries, in C{env}'s order.
    @raise TypeError: for a non-mapping or a non-str/bytes key or value.
    @raise ValueError: for NUL anywhere, C{=} in a key, or an empty key.
    """
    # A dict is a Mapping; testing that first skips the ABC machinery.
    if type(env) is not dict and not isinstance(env, Mapping):
        raise TypeError(f"{what} must be a mapping or None, not {env!r}")
    if not env:
        # Twisted's default env={}: nothing to encode.
        return {}, ()
    if type(env) is dict:
        fast = _encodeStrEnv(env)
        if fast is not None:
            return fast
    return _encodeEachEntry(env, what)


def _encodeStrEnv(
    env: dict[Any, Any],
) -> tuple[dict[bytes, bytes], tuple[bytes, ...]] | None:
    """
    L{encodeEnv} for the common case, a C{dict} of C{str} keys and values
    with nothing to refuse (a copy of C{os.environ}): the keys and the
    values each encoded in one call, joined by NUL and split again.

    Entry by entry, the checks and the calls cost about 1.6 µs per entry
    (60 µs for a typical environment, on every spawn); this is about ten
    times faster.  A bytes key or value, a NUL, an C{=} in a key, an empty
    key, an unencodable character or two keys that encode alike return
    C{None}: L{_encodeEachEntry} then gives the answer (or the error, with
    its name).
    """
    try:
        keys = "\0".join(env).encode(_FS_ENCODING, _FS_ERRORS)
        values = "\0".join(env.values()).encode(_FS_ENCODING, _FS_ERRORS)
    except (TypeError, UnicodeEncodeError):
        return None
    last = len(env) - 1
    if keys.count(b"\0") != last or values.count(b"\0") != last or b"=" in keys:
        return None
    keyList = keys.split(b"\0")
    if b"" in keyList:
        return None
    valueList = values.split(b"\0")
    encoded = dict(zip(keyList, valueList, strict=True))
    if len(encoded) != len(keyList):
        # Two keys encode alike (a lone surrogate escaping the bytes of a
        # UTF-8 character): both are entries, the first value is kept.
        return None
    return encoded, tuple([key + b"=" + value for key, value in encoded.items()])


def _encodeEachEntry(
    env: EnvMapping, what: str
) -> tuple[dict[bytes, bytes], tuple[bytes, ...]]:
    """
    L{encodeEnv} entry by entry: any mapping, str and bytes mixed, and
    every error named.
    """
    encoded: dict[bytes, bytes] = {}
    entries: list[bytes] = []
    for key, value in env.items():
        if not isinstance(key, (str, bytes)):
            raise TypeError(f"{what} keys must be str or bytes, not {key!r}")
        bkey = encodeArgument(key, what, key, isKey=True)
        if not bkey:
            raise ValueError(f"{what} contains an empty key")
        if b"=" in bkey:
            raise ValueError(f"{what} key {key!r} contains '='")
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"{what}[{key!r}] must be str or bytes, not {value!r}")
        bvalue = encodeArgument(value, what, key)
        encoded.setdefault(bkey, bvalue)
        entries.append(bkey + b"=" + bvalue)
    return encoded, tuple(entries)


def checkCwd(path: object) -> tuple[bytes | None, StrOrBytes | None]:
    """
    Validate C{path=}: it must be an existing directory now.

    @return: The encoded path and the path as given (for messages).
    @raise SpawnError: C{ENOENT}, C{ENOTDIR} or another C{stat} errno, at
        L{ChildSetupStage.CHDIR}.
    """
    if path is None:
        return None, None
    cwd = encodeArgument(path, "path")
    given = path if isinstance(path, (str, bytes)) else os.fsdecode(cwd)
    try:
        st = os.stat(cwd)
    except OSError as e:
        code = e.errno if e.errno is not None else errno.EIO
        raise SpawnError.fromErrno(code, ChildSetupStage.CHDIR, given) from None
    if not stat.S_ISDIR(st.st_mode):
        raise SpawnError.fromErrno(errno.ENOTDIR, ChildSetupStage.CHDIR, given)
    return cwd, given


def checkPTY(usePTY: object, isOpenFD: Callable[[int], bool]) -> PTYSpec | None:
    """
    Interpret C{usePTY}: falsy, truthy, or C{(masterfd, slavefd, ttyname)}.
    """
    if not usePTY:
        return None
    if not isinstance(usePTY, (tuple, list)):
        return PTYSpec(None)
    if len(usePTY) != 3:
        raise ValueError(
            "usePTY must be a bool or a (masterfd, slavefd, ttyname) tuple, "
            f"not {usePTY!r}"
        )
    masterfd, slavefd, ttyname = usePTY
    for name, fd in (("masterfd", masterfd), ("slavefd", slavefd)):
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"usePTY {name} must be an int, not {fd!r}")
        if not 0 <= fd <= FD_MAX:
            raise ValueError(f"usePTY {name} must be a file descriptor, not {fd!r}")
        if not isOpenFD(fd):
            error = SpawnError.fromErrno(errno.EBADF, ChildSetupStage.FDS, detail=fd)
            error.strerror = f"usePTY {name} {fd} is not an open file descriptor"
            raise error
    return PTYSpec((masterfd, slavefd, encodeArgument(ttyname, "usePTY ttyname")))


def checkChildFDs(
    childFDs: object, isOpenFD: Callable[[int], bool]
) -> tuple[ChildFDSpec, ...]:
    """
    Interpret Twisted's C{childFDs} mapping.

    @raise TypeError: if it is not a mapping.
    @raise ValueError: for a bad key or value, naming C{childFDs[key]}: a
        child fd that is no int, or one no process can have (below 0 or
        above L{CHILD_FD_MAX}).
    @raise SpawnError: C{EBADF} at L{ChildSetupStage.FDS} (C{detail} is the
        child fd) for a parent fd that is not open.
    """
    if childFDs is None:
        # Validated once, at import (it names no parent fd to check).
        return DEFAULT_CHILD_FD_SPECS
    if type(childFDs) is not dict and not isinstance(childFDs, Mapping):
        raise TypeError(f"childFDs must be a mapping or None, not {childFDs!r}")
    specs: list[ChildFDSpec] = []
    for childFD, target in childFDs.items():
        if (
            isinstance(childFD, bool)
            or not isinstance(childFD, int)
            or not 0 <= childFD <= CHILD_FD_MAX
        ):
            raise ValueError(
                f"childFDs[{childFD!r}]: a child fd must be an int from 0 to "
                f"{CHILD_FD_MAX} (the highest fd a process can have), not "
                f"{childFD!r}"
            )
        if target == "r" and isinstance(target, str):
            specs.append(PipeToParent(childFD))
        elif target == "w" and isinstance(target, str):
            specs.append(PipeFromParent(childFD))
        elif (
            isinstance(target, int)
            and not isinstance(target, bool)
            and 0 <= target <= FD_MAX
        ):
            if not isOpenFD(target):
                error = SpawnError.fromErrno(
                    errno.EBADF, ChildSetupStage.FDS, detail=childFD
                )
                error.strerror = (
                    f"childFDs[{childFD}] = {target} is not an open file "
                    "descriptor in the parent"
                )
                raise error
            specs.append(InheritFD(childFD, target))
        else:
            raise ValueError(
                f'childFDs[{childFD}] must be "r", "w" or an open parent fd '
                f"(an int >= 0), not {target!r}"
            )
    specs.sort(key=_byChildFD)
    return tuple(specs)


_byChildFD = attrgetter("childFD")

#: The specs of Twisted's default C{childFDs}.
DEFAULT_CHILD_FD_SPECS = checkChildFDs(DEFAULT_CHILD_FDS, lambda fd: False)


def checkCommand(
    argv: Sequence[StrOrBytes],
    env: object,
    path: object,
    uid: object,
    gid: object,
) -> None:
    """
    Make the checks of L{txspawn._plan.planner.planSpawn} that need no
    system call, on the arguments L{txspawn.run} and L{txspawn.stream} pass
    on to C{spawnProcess}.

    They check their arguments at the call, whatever the reactor: a stock
    Twisted reactor would check fewer of them, and only when spawning.  The
    same helpers as C{planSpawn}'s run here, so the two cannot disagree.
    Whether the program is found on C{PATH} and whether C{path} is a
    directory are not checked: those are spawn errors, for the spawn to
    report.

    @param argv: The program and its arguments, each C{str} or C{bytes}.
    @param env: The child's environment, or C{None} to inherit.
    @param path: The working directory, or C{None}.
    @param uid: The uid, or C{None}.
    @param gid: The gid, or C{None}.
    @raise TypeError: for an argument of the wrong type (named).
    @raise ValueError: for a bad value (named): NUL in an argument, C{=} in
        an environment key, an id out of range...
    """
    for index, arg in enumerate(argv):
        encodeArgument(arg, "argv", index)
    if env is not None:
        encodeEnv(env, "env")  # type: ignore[arg-type]
    if path is not None:
        encodeArgument(path, "path")
    checkID(uid, "uid")
    checkID(gid, "gid")
