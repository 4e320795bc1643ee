# -*- test-case-name: tests.test_plan -*-
"""
The spawn plan: every C{spawnProcess} argument, validated and normalised.

L{planSpawn} is where all bad input is rejected, with a clear exception
naming the argument, before any fd is opened or child created.  The resulting
L{SpawnPlan} is immutable and complete: engines only execute it.

CONTRACT (shared by the engines, the transports and the C engine):

  - C{argv}, C{envp}, C{candidates}, C{cwd} are C{bytes} without NUL.
  - C{candidates} is the ordered list of absolute-or-relative paths to
    C{execve}; the engine tries each in order and reports the first error
    that is not C{ENOENT}/C{ENOTDIR}, with C{EACCES} taking priority if seen
    (C{execvp} semantics).
  - C{childFDs} is empty for PTY plans; otherwise one entry per child fd,
    sorted by child fd.
  - Engines always reset every signal disposition to C{SIG_DFL} in the
    child and set the signal mask to C{signalMask} (empty by default).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import Union

from attrs import frozen

from txspawn._plan.fdremap import FD_MAX
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import ID_MAX, SpawnOptions

__all__ = [
    "DEFAULT_CHILD_FDS",
    "ChildFDSpec",
    "InheritFD",
    "PTYSpec",
    "PipeFromParent",
    "PipeToParent",
    "SpawnPlan",
    "checkCommand",
    "isOpenFD",
    "planSpawn",
]


@frozen
class PipeToParent:
    """
    Twisted's C{"r"}: a pipe the child writes and the parent reads.
    """

    childFD: int


@frozen
class PipeFromParent:
    """
    Twisted's C{"w"}: a pipe the parent writes and the child reads.
    """

    childFD: int


@frozen
class InheritFD:
    """
    Twisted's integer C{childFDs} value: the parent's fd C{parentFD} becomes
    the child's fd C{childFD}.
    """

    childFD: int
    parentFD: int


ChildFDSpec = Union[PipeToParent, PipeFromParent, InheritFD]


@frozen
class PTYSpec:
    """
    The child runs on a pseudo-terminal.

    @ivar given: C{None} when txspawn opens the pty itself, or the
        C{(masterfd, slavefd, ttyname)} tuple the caller passed as C{usePTY}.
    """

    given: tuple[int, int, bytes] | None = None


@frozen
class SpawnPlan:
    """
    Everything an engine needs to start one child.

    @ivar executable: The executable as the user gave it (bytes), for
        messages.
    @ivar candidates: Paths to try with C{execve}, in order.
    @ivar argv: The argument vector.
    @ivar envp: The environment, as C{b"KEY=VALUE"} entries, in order; a
        key may appear more than once (see
        L{txspawn._engine.envp.envMapping}).
    @ivar cwd: Directory to change to in the child, or C{None}.
    @ivar uid: User id to switch to (real, effective and saved), or C{None}.
    @ivar gid: Group id to switch to, or C{None}.
    @ivar groups: Supplementary groups to set, or C{None}.  When C{uid} is set
        and C{groups} is C{None} the engine drops supplementary groups
        (C{setgroups(0, NULL)}), as the issue-3 options require.
    @ivar childFDs: The child's fds other than a pty (see L{ChildFDSpec}).
    @ivar pty: L{PTYSpec} for a pty child, else C{None}.
    @ivar newSession: Call C{setsid()} in the child (implied by C{pty}).
    @ivar processGroup: C{None} to stay in the parent's group, C{0} to lead a
        new group, or a pgid to join.
    @ivar umask: The child's umask, or C{None} to inherit.
    @ivar rlimits: C{(resource, soft, hard)} triples to apply.
    @ivar deathSignal: Signal for C{PR_SET_PDEATHSIG}, or C{None}.
    @ivar signalMask: Signals blocked in the child at exec.
    """

    executable: bytes
    candidates: tuple[bytes, ...]
    argv: tuple[bytes, ...]
    envp: tuple[bytes, ...]
    cwd: bytes | None = None
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] | None = None
    childFDs: tuple[ChildFDSpec, ...] = ()
    pty: PTYSpec | None = None
    newSession: bool = False
    processGroup: int | None = None
    umask: int | None = None
    rlimits: tuple[tuple[int, int, int], ...] = ()
    deathSignal: int | None = None
    signalMask: tuple[int, ...] = ()

    def failureFilename(self, stage: ChildSetupStage) -> str | None:
        """
        The path a L{txspawn.errors.SpawnError} for C{stage} names, the same
        on every engine: the working directory for a C{CHDIR} failure, the
        executable for an C{EXEC} failure (as CPython's C{subprocess}
        does), else C{None}.
        """
        if stage == ChildSetupStage.CHDIR and self.cwd is not None:
            return os.fsdecode(self.cwd)
        if stage == ChildSetupStage.EXEC:
            return os.fsdecode(self.executable)
        return None


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

#: The default C{env}: an I{empty} environment (Twisted's contract; pass
#: C{env=None} to inherit the parent's).
_EMPTY_ENV: EnvMapping = MappingProxyType({})

#: What L{os.fsencode} encodes a C{str} with (fixed for the life of the
#: interpreter); encoding directly saves a Python-level call per argument.
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()

#: The options of a spawn that gives none (immutable, so shared).
_NO_OPTIONS = SpawnOptions()


def isOpenFD(fd: int) -> bool:
    """
    Whether C{fd} is an open file descriptor in this process.

    The C{isOpenFD} argument of L{planSpawn} for real callers; one
    C{fcntl(F_GETFD)}, no allocation.

    @param fd: The fd to check.
    @return: C{True} if it is open.
    """
    if fd < 0:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


#: L{_encode}'s C{item} when the value is not an item of a collection.
_WHOLE = object()


def _encode(
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


def _checkID(value: object, what: str) -> int | None:
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


def _encodeEnv(
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
    encoded: dict[bytes, bytes] = {}
    entries: list[bytes] = []
    for key, value in env.items():
        if not isinstance(key, (str, bytes)):
            raise TypeError(f"{what} keys must be str or bytes, not {key!r}")
        bkey = _encode(key, what, key, isKey=True)
        if not bkey:
            raise ValueError(f"{what} contains an empty key")
        if b"=" in bkey:
            raise ValueError(f"{what} key {key!r} contains '='")
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"{what}[{key!r}] must be str or bytes, not {value!r}")
        bvalue = _encode(value, what, key)
        encoded.setdefault(bkey, bvalue)
        entries.append(bkey + b"=" + bvalue)
    return encoded, tuple(entries)


def _checkCwd(path: object) -> tuple[bytes | None, StrOrBytes | None]:
    """
    Validate C{path=}: it must be an existing directory now.

    @return: The encoded path and the path as given (for messages).
    @raise SpawnError: C{ENOENT}, C{ENOTDIR} or another C{stat} errno, at
        L{ChildSetupStage.CHDIR}.
    """
    if path is None:
        return None, None
    cwd = _encode(path, "path")
    given = path if isinstance(path, (str, bytes)) else os.fsdecode(cwd)
    try:
        st = os.stat(cwd)
    except OSError as e:
        code = e.errno if e.errno is not None else errno.EIO
        raise SpawnError.fromErrno(code, ChildSetupStage.CHDIR, given) from None
    if not stat.S_ISDIR(st.st_mode):
        raise SpawnError.fromErrno(errno.ENOTDIR, ChildSetupStage.CHDIR, given)
    return cwd, given


def _checkPTY(usePTY: object, isOpenFD: Callable[[int], bool]) -> PTYSpec | None:
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
    return PTYSpec((masterfd, slavefd, _encode(ttyname, "usePTY ttyname")))


def _checkChildFDs(
    childFDs: object, isOpenFD: Callable[[int], bool]
) -> tuple[ChildFDSpec, ...]:
    """
    Interpret Twisted's C{childFDs} mapping.

    @raise TypeError: if it is not a mapping.
    @raise ValueError: for a bad key or value, naming C{childFDs[key]}.
    @raise SpawnError: C{EBADF} at L{ChildSetupStage.FDS} (C{detail} is the
        child fd) for a parent fd that is not open.
    """
    if childFDs is None:
        # Validated once, at import (it names no parent fd to check).
        return _DEFAULT_SPECS
    if type(childFDs) is not dict and not isinstance(childFDs, Mapping):
        raise TypeError(f"childFDs must be a mapping or None, not {childFDs!r}")
    specs: list[ChildFDSpec] = []
    for childFD, target in childFDs.items():
        if (
            isinstance(childFD, bool)
            or not isinstance(childFD, int)
            or not 0 <= childFD <= FD_MAX
        ):
            raise ValueError(
                f"childFDs[{childFD!r}]: a child fd must be an int >= 0, "
                f"not {childFD!r}"
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
_DEFAULT_SPECS = _checkChildFDs(DEFAULT_CHILD_FDS, lambda fd: False)


def _candidates(
    executable: bytes,
    given: StrOrBytes,
    childEnv: Mapping[bytes, bytes],
    parentEnviron: Mapping[bytes, bytes],
    cwd: bytes | None,
) -> tuple[bytes, ...]:
    """
    Resolve C{executable} to the paths to C{execve}, as C{execvp} would.

    @raise SpawnError: C{ENOENT} at L{ChildSetupStage.EXEC} if the search
        finds nothing.
    """
    if b"/" in executable:
        return (executable,)
    if not executable:
        raise SpawnError.fromErrno(errno.ENOENT, ChildSetupStage.EXEC, given)
    searchPath = childEnv.get(b"PATH")
    if searchPath is None:
        searchPath = parentEnviron.get(b"PATH")
    if searchPath is None:
        searchPath = os.fsencode(os.defpath)
    found: list[bytes] = []
    for entry in searchPath.split(b":"):
        candidate = os.path.join(entry or b".", executable)
        if candidate in found:
            continue
        # The child resolves relative candidates after its chdir.
        where = candidate if cwd is None else os.path.join(cwd, candidate)
        try:
            os.stat(where)
        except OSError as e:
            # execvp skips these silently; any other error (EACCES on a
            # directory of PATH, ELOOP, ...) is for execve to report.
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
                continue
        found.append(candidate)
    if not found:
        raise SpawnError.fromErrno(errno.ENOENT, ChildSetupStage.EXEC, given)
    return tuple(found)


def checkCommand(
    argv: Sequence[StrOrBytes],
    env: object,
    path: object,
    uid: object,
    gid: object,
) -> None:
    """
    Make the checks of L{planSpawn} that need no system call, on the
    arguments L{txspawn.run} and L{txspawn.stream} pass on to C{spawnProcess}.

    They check their arguments at the call, whatever the reactor: a stock
    Twisted reactor would check fewer of them, and only when spawning.  The
    same helpers as L{planSpawn}'s run here, so the two cannot disagree.
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
        _encode(arg, "argv", index)
    if env is not None:
        _encodeEnv(env, "env")  # type: ignore[arg-type]
    if path is not None:
        _encode(path, "path")
    _checkID(uid, "uid")
    _checkID(gid, "gid")


def planSpawn(
    executable: StrOrBytes | os.PathLike[str] | os.PathLike[bytes],
    args: Sequence[StrOrBytes] = (),
    env: EnvMapping | None = _EMPTY_ENV,
    path: StrOrBytes | os.PathLike[str] | os.PathLike[bytes] | None = None,
    uid: int | None = None,
    gid: int | None = None,
    usePTY: object = False,
    childFDs: Mapping[int, object] | None = None,
    *,
    parentEnviron: Mapping[bytes, bytes],
    isOpenFD: Callable[[int], bool],
    options: SpawnOptions | None = None,
) -> SpawnPlan:
    """
    Validate and normalise C{spawnProcess}'s arguments into a L{SpawnPlan}.

    The arguments have the meaning of Twisted's
    C{IReactorProcess.spawnProcess}:

      - C{str} and C{bytes} are accepted everywhere (C{str} is encoded with
        L{os.fsencode}); NUL anywhere is a L{ValueError} naming the
        argument;
      - C{env={}}, the default, is an I{empty} environment; C{env=None}
        inherits C{parentEnviron}; a key may not be empty or contain C{=};
      - C{executable} is what is run; C{args[0]} is only what it is told
        its name is;
      - C{childFDs} defaults to C{{0: "w", 1: "r", 2: "r"}} (C{"w"}: the
        parent writes, L{PipeFromParent}; C{"r"}: the parent reads,
        L{PipeToParent}; an int: that parent fd, L{InheritFD});
      - C{usePTY} is falsy, truthy (txspawn opens a pty), or
        C{(masterfd, slavefd, ttyname)}; it cannot be combined with
        C{childFDs}.  A pty child always starts a new session.

    B{PATH resolution.}  An C{executable} containing C{/} is used as given.
    Otherwise it is searched in the C{PATH} of the child's environment if
    it has one, else in C{parentEnviron}'s C{PATH}, else in L{os.defpath};
    an empty C{PATH} entry means the current directory (after the chdir to
    C{path}, as in the child).  C{candidates} keeps, in C{PATH} order, every
    entry where something exists (C{stat} succeeds, or fails with an error
    other than C{ENOENT}/C{ENOTDIR}), including non-executable files, so
    that C{execve} reports C{EACCES} for them as C{execvp} would.  This is a
    deliberate choice: Twisted's C{posix_spawnp} path searches the parent's
    C{PATH} and its fork path the child's; txspawn uses the child's first,
    like its fork path and C{execvpe}.

    B{Credentials.}  C{uid} and C{gid} are ints or C{None}.  When C{uid} is
    given and C{options.groups} is not, the plan's C{groups} is C{None} and
    the engines drop every supplementary group (C{setgroups(0, NULL)}).

    This function is pure apart from C{stat} calls (C{path}, C{PATH}), group
    name lookups and C{isOpenFD}: it opens no fd and reads no global state.

    @param parentEnviron: The parent's environment (C{os.environb}).
    @param isOpenFD: Tells whether a parent fd is open (L{isOpenFD}).
    @param options: Options beyond Twisted's arguments.
    @return: The plan.
    @raise TypeError: for an argument of the wrong type.
    @raise ValueError: for an invalid value; the message names the argument.
    @raise SpawnError: for a C{path} that is not a directory (stage
        C{CHDIR}), an executable not found on C{PATH} (stage C{EXEC},
        C{ENOENT}), or a C{childFDs} parent fd that is not open (stage
        C{FDS}, C{EBADF}, C{detail} the child fd).
    """
    given = executable if isinstance(executable, (str, bytes)) else None
    exe = _encode(executable, "executable")
    if given is None:
        given = os.fsdecode(exe)

    if type(args) not in (list, tuple) and (
        isinstance(args, (str, bytes)) or not isinstance(args, Sequence)
    ):
        raise TypeError(
            f"args must be a sequence of str or bytes (a list or tuple), not {args!r}"
        )
    argv = tuple([_encode(arg, "args", index) for index, arg in enumerate(args)])

    if env is None:
        childEnv, envp = _encodeEnv(parentEnviron, "parentEnviron")
    else:
        childEnv, envp = _encodeEnv(env, "env")

    # Each check only runs for a value that needs one (the common spawn
    # gives none of them).
    if uid is not None:
        uid = _checkID(uid, "uid")
    if gid is not None:
        gid = _checkID(gid, "gid")

    if options is None:
        options = _NO_OPTIONS
    elif not isinstance(options, SpawnOptions):
        raise TypeError(f"options must be a SpawnOptions, not {options!r}")

    if usePTY and childFDs is not None:
        # Twisted's exact message.
        raise ValueError("Using childFDs is not supported with usePTY=True.")
    pty = _checkPTY(usePTY, isOpenFD) if usePTY else None
    if pty is not None and options.processGroup is not None:
        raise ValueError(
            "SpawnOptions.processGroup cannot be used with usePTY: a pty child "
            "leads a new session and process group"
        )
    if pty is not None:
        specs: tuple[ChildFDSpec, ...] = ()
    elif childFDs is None:
        specs = _DEFAULT_SPECS
    else:
        specs = _checkChildFDs(childFDs, isOpenFD)

    cwd = None if path is None else _checkCwd(path)[0]
    candidates = _candidates(exe, given, childEnv, parentEnviron, cwd)

    return SpawnPlan(
        executable=exe,
        candidates=candidates,
        argv=argv,
        envp=envp,
        cwd=cwd,
        uid=uid,
        gid=gid,
        groups=None if options.groups is None else options.groupIDs(),
        childFDs=specs,
        pty=pty,
        newSession=pty is not None or options.newSession,
        processGroup=options.processGroup,
        umask=options.umask,
        rlimits=options.rlimits,
        deathSignal=options.deathSignal,
    )
