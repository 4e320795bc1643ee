# -*- test-case-name: tests.test_plan -*-
"""
Planning a spawn: C{spawnProcess}'s arguments in, a
L{txspawn._plan.plan.SpawnPlan} out.

L{planSpawn} is where all bad input is rejected, with a clear exception
naming the argument (the checks are L{txspawn._plan.argumentchecks}'), before
any fd is opened or child created; it also resolves the executable on
C{PATH}, as C{execvp} would.  L{isOpenFD} is what real callers pass it to
tell which parent fds are open.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from txspawn._plan.argumentchecks import (
    DEFAULT_CHILD_FD_SPECS,
    EnvMapping,
    StrOrBytes,
    checkChildFDs,
    checkCwd,
    checkID,
    checkPTY,
    encodeArgument,
    encodeEnv,
)
from txspawn._plan.faultinjection import currentFault
from txspawn._plan.namespaceplan import planNamespaces, withInit
from txspawn._plan.plan import ChildFDSpec, SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import SpawnOptions, _resolveGroups

__all__ = ["isOpenFD", "planSpawn"]


#: The default C{env}: an I{empty} environment (Twisted's contract; pass
#: C{env=None} to inherit the parent's).
_EMPTY_ENV: EnvMapping = MappingProxyType({})

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
        parent writes, L{txspawn._plan.plan.PipeFromParent}; C{"r"}: the
        parent reads, L{txspawn._plan.plan.PipeToParent}; an int: that
        parent fd, L{txspawn._plan.plan.InheritFD});
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

    B{Namespaces.}  With C{options.namespaces}, the plan's C{namespaces} is
    made by L{planNamespaces}: with a user namespace, C{uid}, C{gid} and
    C{groups} are ids inside it, checked against its maps, and the plan's
    C{uid} and C{gid} are the targets it chose (or C{None} when they are
    set early, L{NamespacePlan.earlyIds}).  A fault injected by
    L{txspawn._plan.faultinjection.injectChildFault} is copied into the
    plan's C{injectedFault}.

    B{Cgroup.}  C{options.cgroup} (a L{txspawn.options.Cgroup}, validated
    when it was built) is copied into the plan as it is: the cgroup
    filesystem is not looked at here (the transport creates the leaf).

    This function is pure apart from C{stat} calls (C{path}, C{PATH}), group
    name lookups and C{isOpenFD}: it opens no fd and reads no global state.

    @param parentEnviron: The parent's environment (C{os.environb}).
    @param isOpenFD: Tells whether a parent fd is open (L{isOpenFD}).
    @param options: Options beyond Twisted's arguments, as the entry point
        was given them (as keywords): an error about one names the keyword
        (C{groups[0]}), not the L{SpawnOptions} field.
    @return: The plan.
    @raise TypeError: for an argument of the wrong type.
    @raise ValueError: for an invalid value; the message names the argument.
    @raise txspawn.errors.UnsupportedFeature: for C{pidInit} when
        txspawn's init was not built.
    @raise SpawnError: for a C{path} that is not a directory (stage
        C{CHDIR}), an executable not found on C{PATH} (stage C{EXEC},
        C{ENOENT}), or a C{childFDs} parent fd that is not open (stage
        C{FDS}, C{EBADF}, C{detail} the child fd).
    """
    given = executable if isinstance(executable, (str, bytes)) else None
    exe = encodeArgument(executable, "executable")
    if given is None:
        given = os.fsdecode(exe)

    if type(args) not in (list, tuple) and (
        isinstance(args, (str, bytes)) or not isinstance(args, Sequence)
    ):
        raise TypeError(
            f"args must be a sequence of str or bytes (a list or tuple), not {args!r}"
        )
    argv = tuple([encodeArgument(arg, "args", index) for index, arg in enumerate(args)])

    if env is None:
        childEnv, envp = encodeEnv(parentEnviron, "parentEnviron")
    else:
        childEnv, envp = encodeEnv(env, "env")

    # Each check only runs for a value that needs one (the common spawn
    # gives none of them).
    if uid is not None:
        uid = checkID(uid, "uid")
    if gid is not None:
        gid = checkID(gid, "gid")

    if options is None:
        options = _NO_OPTIONS
    elif not isinstance(options, SpawnOptions):
        raise TypeError(f"options must be a SpawnOptions, not {options!r}")

    if usePTY and childFDs is not None:
        # Twisted's exact message.
        raise ValueError("Using childFDs is not supported with usePTY=True.")
    pty = checkPTY(usePTY, isOpenFD) if usePTY else None
    # The options' errors name the keyword that gave each option (they
    # reach the user as errors of spawnProcess(), run() or stream()), not
    # the SpawnOptions field.
    if pty is not None and options.processGroup is not None:
        raise ValueError(
            "processGroup cannot be used with usePTY: a pty child leads a new "
            "session and process group"
        )
    if pty is not None:
        specs: tuple[ChildFDSpec, ...] = ()
    elif childFDs is None:
        specs = DEFAULT_CHILD_FD_SPECS
    else:
        specs = checkChildFDs(childFDs, isOpenFD)

    groups = (
        None if options.groups is None else _resolveGroups(options.groups, "groups")
    )
    namespaces = None
    if options.namespaces is not None:
        namespaces, uid, gid = planNamespaces(
            options.namespaces, uid, gid, groups, os.geteuid(), os.getegid()
        )

    # What depends on the machine last, after every check of the arguments
    # (the fake reactor ignores these SpawnErrors, not what would follow).
    cwd = None if path is None else checkCwd(path)[0]
    candidates = _candidates(exe, given, childEnv, parentEnviron, cwd)
    if namespaces is not None:
        assert options.namespaces is not None
        namespaces = withInit(namespaces, options.namespaces)

    return SpawnPlan(
        executable=exe,
        candidates=candidates,
        argv=argv,
        envp=envp,
        cwd=cwd,
        uid=uid,
        gid=gid,
        groups=groups,
        childFDs=specs,
        pty=pty,
        newSession=pty is not None or options.newSession,
        processGroup=options.processGroup,
        umask=options.umask,
        rlimits=options.rlimits,
        deathSignal=options.deathSignal,
        namespaces=namespaces,
        cgroup=options.cgroup,
        injectedFault=currentFault(),
    )
