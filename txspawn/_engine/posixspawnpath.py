# -*- test-case-name: tests.test_pyspawn -*-
"""
The Python engine's C{posix_spawn} path: which plans it can express
(L{forkReason}), the plan in its terms (L{posixSpawnActions},
L{posixSpawnAttributes}), and starting the child (L{spawnByPosixSpawn}).

C{posix_spawn} (glibc through L{txspawn._engine.libcposixspawn}, else
C{os.posix_spawn}: see L{txspawn._engine.posixspawn}) expresses plain
spawns, arbitrary C{childFDs}, a new session or process group, signal
dispositions and mask, and PTYs (C{setsid} + opening the slave anew onto
fd 0 through C{/proc/self/fd}, which makes it the controlling terminal on
Linux).  glibc reports exec errors synchronously and reaps a failed child
itself.

Because C{posix_spawn} only returns an errno, a failure of one of its
setup steps cannot be told apart from an exec failure: C{EBADF} (which
C{execve} never returns) is reported as stage C{FDS}; when the plan has a
step that can fail otherwise (L{hasSetupSteps}: joining an existing
process group, opening the pty slave), the engine replays a failure
through the fork path, which names the real stage; with
C{method="posix_spawn"} forced, such failures are reported as stage
C{EXEC}.  Creating the child can fail too: C{EAGAIN} (which C{execve}
cannot return here) is reported as stage C{SPAWN}, as the C engine and
C{fork} report it; C{ENOMEM} may come from C{clone} or from C{execve}, so
the engine replays it through the fork path like a setup failure.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping

from txspawn._engine.forkchild import CATCHABLE_SIGNALS
from txspawn._engine.spawnactions import (
    Close,
    CloseFrom,
    Dup2,
    Open,
    PosixSpawnBackend,
    PreparedSpawn,
    SpawnAction,
    SpawnAttributes,
)
from txspawn._plan.fdops import CLOSE_RANGE_MAX, FdOpCode
from txspawn._plan.fdremap import planFdOps
from txspawn._plan.plan import SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError

__all__ = [
    "MAX_CLOSE_ACTIONS",
    "forkReason",
    "hasSetupSteps",
    "posixSpawnActions",
    "posixSpawnAttributes",
    "spawnByPosixSpawn",
]

#: The SETSIGDEF set for posix_spawn: the catchable signals plus glibc's
#: internal ones (32 up to SIGRTMIN), which glibc's spawn child would
#: otherwise leave ignored (see L{txspawn._engine.libcposixspawn.LibcPosixSpawn}).
_SPAWN_SIGDEF: tuple[int, ...] = tuple(
    sorted({*CATCHABLE_SIGNALS, *range(32, int(signal.SIGRTMIN))})
)

#: posix_spawn has no "close this range" action, so a bounded gap between
#: child fds becomes one close action per fd.  Above this many, the fork
#: path (one close_range per gap) is used instead.
MAX_CLOSE_ACTIONS = 1024


def forkReason(
    plan: SpawnPlan, ttyName: bytes | None, fdMap: Mapping[int, int] | None = None
) -> str | None:
    """
    Whether C{posix_spawn} can express C{plan}.

    @param plan: The plan.
    @param ttyName: The pty slave's name, if any.
    @param fdMap: The child fd map: gaps of more than L{MAX_CLOSE_ACTIONS}
        fds below the highest child fd need the fork path too.
    @return: L{None} if it can, else the name of the first option (as the
        user spells it) that needs the fork path.
    """
    if plan.cwd is not None:
        return "path"
    if plan.uid is not None:
        return "uid"
    if plan.gid is not None:
        return "gid"
    if plan.groups is not None:
        return "groups"
    if plan.umask is not None:
        return "umask"
    if plan.rlimits:
        return "rlimits"
    if plan.deathSignal is not None:
        return "deathSignal"
    if plan.pty is not None and ttyName is None:
        return "usePTY"
    if plan.pty is None and fdMap:
        # Fds below the highest child fd that are not child fds each cost a
        # close action.
        if max(fdMap) + 1 - len(fdMap) > MAX_CLOSE_ACTIONS:
            return "childFDs"
    return None


def hasSetupSteps(plan: SpawnPlan) -> bool:
    """
    Whether C{posix_spawn} runs a step for C{plan}, besides the fd moves,
    that can fail in a way indistinguishable from an exec failure
    (C{setpgid} to an existing group, opening the pty slave).
    """
    if plan.pty is not None:
        return True
    # setpgid(0, 0) only fails for a session leader (after setsid).
    return plan.processGroup is not None and (plan.processGroup != 0 or plan.newSession)


def posixSpawnActions(
    plan: SpawnPlan, fdMap: Mapping[int, int], ttyName: bytes | None
) -> list[SpawnAction]:
    """
    The file actions that give the child its fds.

    @param plan: A plan L{forkReason} accepts.
    @param fdMap: Child fd to parent fd.
    @param ttyName: The pty slave's name, for a pty plan.
    """
    if plan.pty is not None and ttyName is not None:
        # glibc runs setsid() before the file actions, so opening the slave
        # (without O_NOCTTY) as a session leader without a controlling
        # terminal makes it the controlling terminal (Linux tty_open).  It
        # is opened through the child's copy of the slave fd, as the C
        # engine and the fork path use that fd (TIOCSCTTY): the slave
        # itself, whatever its name says (a caller's usePTY tuple may name
        # another terminal, as Twisted ignores the name).  Without /proc,
        # the open fails and the spawn is replayed through the fork path.
        return [
            Open(0, b"/proc/self/fd/%d" % fdMap[0], os.O_RDWR),
            Dup2(0, 1),
            Dup2(0, 2),
            CloseFrom(3),
        ]
    actions: list[SpawnAction] = []
    for op in planFdOps(fdMap).ops:
        if op.op in (FdOpCode.DUP2, FdOpCode.DUP2_CLOEXEC):
            # A relocated copy needs no CLOEXEC here: nothing is kept, and
            # the final close actions close it.
            actions.append(Dup2(op.fd, op.target))
        elif op.op == FdOpCode.CLEAR_CLOEXEC:
            # adddup2(fd, fd) clears FD_CLOEXEC in glibc >= 2.29.
            actions.append(Dup2(op.fd, op.fd))
        elif op.op == FdOpCode.CLOSE:
            actions.append(Close(op.fd))
        elif op.target == CLOSE_RANGE_MAX:
            actions.append(CloseFrom(op.fd))
        else:
            # A bounded gap between the child's fds: costs one action per
            # fd below the highest child fd, whatever the parent holds.
            actions.extend(Close(fd) for fd in range(op.fd, op.target + 1))
    return actions


def posixSpawnAttributes(plan: SpawnPlan) -> SpawnAttributes:
    """
    The session, process group and signal state the child starts with.

    @param plan: A plan L{forkReason} accepts.
    """
    return SpawnAttributes(
        setsid=plan.newSession or plan.pty is not None,
        processGroup=plan.processGroup,
        sigdef=_SPAWN_SIGDEF,
        sigmask=plan.signalMask,
    )


def spawnByPosixSpawn(
    backend: PosixSpawnBackend,
    plan: SpawnPlan,
    fdMap: Mapping[int, int],
    ttyName: bytes | None,
    started: list[int],
) -> int:
    """
    Start the child of C{plan} with C{posix_spawn}.

    @param backend: The C{posix_spawn} backend.
    @param plan: A plan L{forkReason} accepts.
    @param fdMap: Child fd to parent fd.
    @param ttyName: The pty slave's name, for a pty plan.
    @param started: Gets the child's pid before any bytecode runs (see
        L{txspawn._kernel.childhandle.recordCall}).
    @return: The child's pid.
    @raise SpawnError: if no child was started (a failed child is reaped
        by glibc or the backend).
    """
    actions = posixSpawnActions(plan, fdMap, ttyName)
    attributes = posixSpawnAttributes(plan)
    try:
        prepared = backend.prepare(plan.argv, plan.envp, actions, attributes)
    except OSError as e:
        raise SpawnError.fromErrno(
            e.errno or errno.EINVAL, ChildSetupStage.FDS
        ) from None
    try:
        return _tryCandidates(prepared, plan, started)
    finally:
        prepared.close()


def _tryCandidates(prepared: PreparedSpawn, plan: SpawnPlan, started: list[int]) -> int:
    """
    Spawn the first of the plan's exec candidates that can be run, as
    C{execvpe} searches C{PATH}.

    @return: The child's pid.
    @raise SpawnError: at once, for a failure that is not about a
        candidate (stage C{FDS} or C{SPAWN}); else with stage C{EXEC} and
        the error C{execvpe} would report (C{EACCES} if a candidate gave it
        and the search ended on C{ENOENT} or C{ENOTDIR}).
    """
    filename = os.fsdecode(plan.executable)
    code = errno.ENOENT
    seenEacces = False
    for path in plan.candidates:
        try:
            return prepared.spawn(path, started)
        except OSError as e:
            code = e.errno or errno.EINVAL
            if code == errno.EBADF:
                # execve never returns EBADF for a path: a dup2 action
                # found its source closed.
                raise SpawnError.fromErrno(code, ChildSetupStage.FDS) from None
            if code == errno.EAGAIN:
                # execve only returns EAGAIN after a set*uid call left
                # the caller over RLIMIT_NPROC, and posix_spawn makes
                # none: creating the child failed (RLIMIT_NPROC, the
                # pids cgroup, threads-max), stage SPAWN as on the C
                # engine and the fork path.
                raise SpawnError.fromErrno(code, ChildSetupStage.SPAWN) from None
            if code == errno.EACCES:
                seenEacces = True
            elif code not in (errno.ENOENT, errno.ENOTDIR):
                break
    else:
        if seenEacces:
            code = errno.EACCES
    raise SpawnError.fromErrno(code, ChildSetupStage.EXEC, filename)
