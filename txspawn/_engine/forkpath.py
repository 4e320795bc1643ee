# -*- test-case-name: tests.test_pyspawn -*-
"""
The Python engine's fork path, parent side: what C{posix_spawn} cannot
express (C{path}, C{uid}/C{gid}/C{groups}, C{umask}, rlimits, the
parent-death signal), and the replay that names the step a C{posix_spawn}
failure really came from.

L{childSteps} precomputes everything the child does; L{spawnByFork} forks
it with every signal blocked and reads its failure record.  The child
(L{txspawn._engine.forkchild}) runs that short sequence of Python calls
(no planning, no formatting), reports any failure as one
L{txspawn._plan.failurerecord} record over a close-on-exec pipe, and never
returns into the caller's code.  Under Python 3.12+ C{os.fork()} emits a
C{DeprecationWarning} in a process with threads (gh-100228); txspawn
targets 3.11 here and prefers C{posix_spawn} for that reason too.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping

from txspawn._engine.envp import envMapping
from txspawn._engine.forkchild import ChildSteps, execChild, loadPrctl
from txspawn._engine.parentsyscalls import ParentSyscalls
from txspawn._kernel import features as _features
from txspawn._kernel.childhandle import recordCall
from txspawn._plan.fdremap import planFdOps
from txspawn._plan.plan import SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError

__all__ = ["childSteps", "spawnByFork"]

_ALL_SIGNALS = frozenset(signal.valid_signals())


def spawnByFork(
    syscalls: ParentSyscalls,
    features: _features.Features,
    plan: SpawnPlan,
    fdMap: Mapping[int, int],
    started: list[int],
) -> int:
    """
    Start the child of C{plan} with C{fork}.

    @param syscalls: The parent-side syscalls.
    @param features: Probed features (whether C{close_range} works).
    @param plan: The plan.
    @param fdMap: Child fd to parent fd.
    @param started: Gets the child's pid before any bytecode runs (see
        L{ParentSyscalls}).
    @return: The child's pid.
    @raise SpawnError: if the pipe or the fork failed, or the child
        reported a failure (then the failed child is left in C{started},
        for the caller to reap: it is exiting).
    """
    if plan.deathSignal is not None:
        loadPrctl()
    # The error pipe, recorded as it is opened; an fd is set to -1
    # before it is closed, so that the finally clause closes each once.
    pipe: list[int] = []
    masks: list[set[int | signal.Signals]] = []
    try:
        try:
            syscalls.pipe(pipe)
        except OSError as e:
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.SPAWN
            ) from None
        errRead, errWrite = pipe
        steps = childSteps(features, plan, fdMap, errWrite)
        # Block every signal around the fork: the child must not run a
        # handler before it has reset the dispositions (it sets the
        # plan's mask just before exec); the parent restores its mask
        # right after (recorded, like every result here, before a
        # handler can raise: see ParentSyscalls).
        try:
            recordCall(masks, signal.pthread_sigmask, signal.SIG_BLOCK, _ALL_SIGNALS)
            try:
                pid = syscalls.fork(started)
            except OSError as e:
                raise SpawnError.fromErrno(
                    e.errno or errno.EINVAL, ChildSetupStage.SPAWN
                ) from None
            if pid == 0:
                execChild(steps)
        finally:
            if masks:
                signal.pthread_sigmask(signal.SIG_SETMASK, masks[0])
        pipe[1] = -1
        os.close(errWrite)
        failure = syscalls.readFailure(errRead)
    finally:
        for fd in pipe:
            if fd != -1:
                os.close(fd)
    if failure is not None:
        # PythonSpawner.spawn reaps the failed child (it is exiting).
        raise failure.toError(plan.failureFilename(failure.stage))
    return pid


def childSteps(
    features: _features.Features,
    plan: SpawnPlan,
    fdMap: Mapping[int, int],
    errWrite: int,
) -> ChildSteps:
    """
    Everything the forked child of C{plan} does, computed in the parent.

    @param features: Probed features (whether C{close_range} works).
    @param plan: The plan.
    @param fdMap: Child fd to parent fd.
    @param errWrite: The error pipe's write end, which the child keeps.
    """
    program = planFdOps(fdMap, keep=(errWrite,))
    groups = plan.groups
    implicitGroups = groups is None and plan.uid is not None
    if implicitGroups:
        # A uid without groups drops the parent's supplementary groups.
        groups = ()
    env = envMapping(plan.envp)
    return ChildSteps(
        errWrite=errWrite,
        newSession=plan.newSession or plan.pty is not None,
        processGroup=plan.processGroup,
        ops=tuple((int(op.op), op.fd, op.target) for op in program.ops),
        ctty=plan.pty is not None,
        cwd=plan.cwd,
        umask=plan.umask,
        rlimits=plan.rlimits,
        groups=groups,
        implicitGroups=implicitGroups,
        gid=plan.gid,
        uid=plan.uid,
        deathSignal=plan.deathSignal,
        parentPid=os.getpid(),
        signalMask=plan.signalMask,
        candidates=plan.candidates,
        argv=plan.argv,
        env=env,
        closeRangeWorks=features.enabled(_features.CLOSE_RANGE),
    )
