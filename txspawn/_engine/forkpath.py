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
C{DeprecationWarning} in a process with threads (gh-100228): on 3.13 a
threaded program that takes this path sees it, one more reason the engine
prefers C{posix_spawn} and the C engine never forks.

A plan with namespaces always takes this path (L{spawnInNamespaces}): the
child enters them with C{unshare} (L{txspawn._engine.forknamespaces}), and
the parent's part is the maps the child cannot write itself, and, with a
pid namespace, taking over pid 1, which the fork child makes a child of
ours and then exits.

A spawn into a cgroup (issue 14) takes this path too: the parent opens the
leaf's C{cgroup.procs} (L{openCgroupProcs}) and the child's first step
writes C{"0"} to it (stage C{CGROUP}), before the signals, the fds and the
namespace steps.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
import os
import signal
from collections.abc import Mapping

from txspawn._engine.envp import envMapping
from txspawn._engine.forkchild import ChildSteps, execChild, loadPrctl
from txspawn._engine.forknamespaces import (
    CLONE_NEWPID,
    IDMAP_GID_MAP,
    IDMAP_SETGROUPS,
    IDMAP_UID_MAP,
    NamespaceSteps,
    loadNamespaceCalls,
)
from txspawn._engine.parentsyscalls import ParentSyscalls
from txspawn._kernel import features as _features
from txspawn._kernel.childhandle import completeCleanup, discardChild, recordCall
from txspawn._plan.fdremap import planFdOps
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn._plan.plan import SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError

__all__ = ["childSteps", "openCgroupProcs", "spawnByFork", "spawnInNamespaces"]

_ALL_SIGNALS = frozenset(signal.valid_signals())


def openCgroupProcs(dirFd: int, into: list[int]) -> None:
    """
    Open C{cgroup.procs} of the leaf whose directory is C{dirFd}, for the
    child to write itself into, recorded in C{into} before any bytecode
    runs (see L{recordCall}).

    @raise SpawnError: (stage C{CGROUP}) if it cannot be opened.
    """
    try:
        recordCall(
            into,
            functools.partial(os.open, dir_fd=dirFd),
            "cgroup.procs",
            os.O_WRONLY | os.O_CLOEXEC,
        )
    except OSError as e:
        raise SpawnError.fromErrno(
            e.errno or errno.EINVAL, ChildSetupStage.CGROUP
        ) from None


def spawnByFork(
    syscalls: ParentSyscalls,
    features: _features.Features,
    plan: SpawnPlan,
    fdMap: Mapping[int, int],
    started: list[int],
    cgroupDirFd: int | None = None,
) -> int:
    """
    Start the child of C{plan} with C{fork}.

    @param syscalls: The parent-side syscalls.
    @param features: Probed features (whether C{close_range} works).
    @param plan: The plan.
    @param fdMap: Child fd to parent fd.
    @param started: Gets the child's pid before any bytecode runs (see
        L{ParentSyscalls}).
    @param cgroupDirFd: The directory of the cgroup leaf the child moves
        itself into first thing, if any.
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
    # The leaf's cgroup.procs, the same way.
    procs: list[int] = []
    try:
        if cgroupDirFd is not None:
            openCgroupProcs(cgroupDirFd, procs)
        try:
            syscalls.pipe(pipe)
        except OSError as e:
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.SPAWN
            ) from None
        errRead, errWrite = pipe
        steps = childSteps(
            features, plan, fdMap, errWrite, cgroupProcsFd=procs[0] if procs else None
        )
        # Block every signal around the fork: the child must not run a
        # handler before it has reset the dispositions (it sets the
        # plan's mask just before exec); the parent restores its mask
        # right after.  The mask to restore is read apart, before the try,
        # so that an exception anywhere after it (a signal handler's
        # KeyboardInterrupt: a signal delivered to another thread still
        # runs its Python handler in this one), even inside the blocking
        # call (a Python function: a handler may raise after the mask
        # changed), leaves the finally that mask to put back, which
        # completeCleanup does to the end even if interrupted itself.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
            try:
                pid = syscalls.fork(started)
            except OSError as e:
                raise SpawnError.fromErrno(
                    e.errno or errno.EINVAL, ChildSetupStage.SPAWN
                ) from None
            if pid == 0:
                execChild(steps)
        finally:
            completeCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, mask)
        pipe[1] = -1
        os.close(errWrite)
        failure = syscalls.readFailure(errRead)
    finally:
        # Resumable (completeCleanup), and in one call: an interrupt while
        # one fd is closed must not leave the others open.
        completeCleanup(_closeAll, [*pipe, *procs])
    if failure is not None:
        # PythonSpawner.spawn reaps the failed child (it is exiting).
        raise failure.toError(plan.failureFilename(failure.stage))
    return pid


def spawnInNamespaces(
    syscalls: ParentSyscalls,
    features: _features.Features,
    plan: SpawnPlan,
    fdMap: Mapping[int, int],
    started: list[int],
    statusPipe: list[int],
    cgroupDirFd: int | None = None,
) -> int:
    """
    Start the child of C{plan}, which has namespaces, with C{fork}.

    In the parent: with parent-written maps, wait for the child to ask (it
    has entered its user namespace), write C{/proc/<pid>/setgroups},
    C{gid_map}, C{uid_map}, and let it go on; read the error pipe; with a
    pid namespace, reap the fork child and take over pid 1, whose pid the
    kernel stored in a shared page as it created it (see
    L{txspawn._engine.forknamespaces}).

    Everything is recorded as it is created, for an exception (a signal
    handler's C{KeyboardInterrupt} included) at any point: the fork child
    is in C{started}; once it is reaped, pid 1 takes its place there (and
    on an exception before that, the fork child is killed and reaped
    first, so that it cannot make pid 1 afterwards, and then pid 1, if
    it exists, takes its place: the caller kills and reaps what
    C{started} holds); the fds opened here are closed on the way out.

    @param syscalls: The parent-side syscalls.
    @param features: Probed features (whether C{close_range} works).
    @param plan: The plan; C{plan.namespaces} is set.
    @param fdMap: Child fd to parent fd.
    @param started: Gets the child's pid (the fork child's, then pid 1's
        with a pid namespace) before any bytecode runs.
    @param statusPipe: With txspawn's init, gets the status pipe (read end,
        then write end; an fd is set to -1 before it is closed): the
        caller hands the read end, non-blocking, to the child handle, and
        closes what it holds if an exception escapes.
    @param cgroupDirFd: As for L{spawnByFork}: the fork child writes
        itself into the leaf before it enters any namespace, so pid 1 and
        everything after it starts there.
    @return: The child's pid (pid 1's with a pid namespace).
    @raise SpawnError: as L{spawnByFork}, and with stage C{IDMAP} (the
        detail says which file) if the parent could not write a map.
    """
    ns = plan.namespaces
    assert ns is not None
    newPid = bool(ns.cloneFlags & CLONE_NEWPID)
    parentMaps = ns.uidMap is not None and not ns.mapsByChild
    loadNamespaceCalls(newPid)
    if plan.deathSignal is not None:
        loadPrctl()
    # The error pipe [0, 1]; with parent-written maps the pipe the child
    # asks for them on [2, 3] and the one it is let go on [4, 5]; then a
    # map file being written.  Each recorded as it is opened and set to -1
    # just before it is closed.
    fds: list[int] = []
    # The leaf's cgroup.procs, the same way.
    procs: list[int] = []
    # The fork child, once reaped (with a pid namespace).
    reaped: list[object] = []
    # With a pid namespace, the kernel stores pid 1's pid here
    # (CLONE_PARENT_SETTID); MAP_SHARED, so in our memory too.
    page = mmap.mmap(-1, mmap.PAGESIZE) if newPid else None
    cell = ctypes.c_int.from_buffer(page) if page is not None else ctypes.c_int()
    try:
        try:
            if cgroupDirFd is not None:
                openCgroupProcs(cgroupDirFd, procs)
            try:
                syscalls.pipe(fds)
                if parentMaps:
                    syscalls.pipe(fds)
                    syscalls.pipe(fds)
                if ns.init is not None:
                    syscalls.pipe(statusPipe)
                    os.set_blocking(statusPipe[0], False)
            except OSError as e:
                raise plan.failureError(
                    ChildSetupStage.SPAWN, e.errno or errno.EINVAL
                ) from None
            steps = childSteps(
                features,
                plan,
                fdMap,
                fds[1],
                statusPipe[1] if ns.init is not None else None,
                _namespaceSteps(plan, ns, newPid, fds, ctypes.addressof(cell)),
                procs[0] if procs else None,
            )
            # As in spawnByFork.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
            try:
                signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
                try:
                    pid = syscalls.fork(started)
                except OSError as e:
                    # Stage NAMESPACES, as the C engine reports any failure
                    # of its clone with CLONE_NEW* flags.
                    raise plan.failureError(
                        ChildSetupStage.NAMESPACES, e.errno or errno.EINVAL
                    ) from None
                if pid == 0:
                    execChild(steps)
            finally:
                completeCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, mask)
            # Our copies of the child's ends: its death is end of file.
            _closeAt(fds, 1)
            if parentMaps:
                _closeAt(fds, 3)
                _closeAt(fds, 4)
                _writeMaps(plan, ns, pid, fds)
            if ns.init is not None:
                _closeAt(statusPipe, 1)
            failure = syscalls.readFailure(fds[0])
            if newPid:
                # The fork child exits once pid 1 exists (or once it has
                # reported its failure).
                try:
                    recordCall(reaped, os.waitpid, pid, 0)
                except ChildProcessError:
                    reaped.append(None)  # SIGCHLD ignored: the kernel reaped it
                started[:] = filter(None, (cell.value,))
        except BaseException:
            if newPid:
                completeCleanup(_settlePidOne, started, reaped, cell)
            raise
    finally:
        completeCleanup(_closeAll, [*fds, *procs])
    if failure is not None:
        # PythonSpawner.spawn kills and reaps the failed child.
        raise plan.failureError(failure.stage, failure.errno, failure.detail)
    if not started:
        # The fork child died without a word (killed), before pid 1.
        raise plan.failureError(ChildSetupStage.NAMESPACES, errno.ECHILD)
    return started[0]


def _namespaceSteps(
    plan: SpawnPlan, ns: NamespacePlan, newPid: bool, fds: list[int], pidCell: int
) -> NamespaceSteps:
    """
    The namespace part of the fork child's steps.

    @param fds: The fds of L{spawnInNamespaces} (the sync pipes at 2 to 5,
        with parent-written maps).
    @param pidCell: Where the kernel stores pid 1's pid.
    """
    parentMaps = len(fds) >= 6
    return NamespaceSteps(
        unshareFlags=ns.cloneFlags & ~CLONE_NEWPID,
        newPid=newPid,
        setgroups=ns.setgroups,
        gidMap=ns.gidMap,
        uidMap=ns.uidMap,
        mapsByChild=ns.mapsByChild,
        parentEnds=(fds[2], fds[5]) if parentMaps else (),
        readyWrite=fds[3] if parentMaps else -1,
        goRead=fds[4] if parentMaps else -1,
        earlyIds=ns.earlyIds,
        pidCell=pidCell if newPid else 0,
        hostname=ns.hostname,
        loopback=ns.loopback,
        propagation=ns.propagation,
        mountProc=ns.mountProc,
        timeOffsets=ns.timeOffsets,
        fault=plan.injectedFault,
    )


def _writeMaps(plan: SpawnPlan, ns: NamespacePlan, pid: int, fds: list[int]) -> None:
    """
    Write the maps of the fork child C{pid} once it asks (on C{fds[2]}),
    then let it go on (C{fds[5]}).  If it fails before it asks, its record
    says why: nothing is written.

    @raise SpawnError: (stage C{IDMAP}, the detail saying which file) if a
        map could not be written; the caller kills and reaps the child,
        which is still waiting.
    """
    if not os.read(fds[2], 1):
        return
    fault = plan.injectedFault
    for name, data, detail in (
        (b"setgroups", ns.setgroups, IDMAP_SETGROUPS),
        (b"gid_map", ns.gidMap, IDMAP_GID_MAP),
        (b"uid_map", ns.uidMap, IDMAP_UID_MAP),
    ):
        if data is None:
            continue
        if fault is not None and fault[0] == ChildSetupStage.IDMAP:
            raise plan.failureError(ChildSetupStage.IDMAP, fault[1], detail)
        try:
            _writeProcFile(b"/proc/%d/%s" % (pid, name), data, fds)
        except OSError as e:
            raise plan.failureError(
                ChildSetupStage.IDMAP, e.errno or errno.EINVAL, detail
            ) from None
    try:
        os.write(fds[5], b"G")
    except BrokenPipeError:
        pass  # It died: its record, or the end of file, says so.


def _writeProcFile(path: bytes, data: bytes, fds: list[int]) -> None:
    """
    Write C{data} to C{path} with one C{write}, the fd recorded in C{fds}.
    """
    index = len(fds)
    recordCall(fds, os.open, path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fds[index], data)
    finally:
        _closeAt(fds, index)


def _closeAt(fds: list[int], index: int) -> None:
    """
    Close C{fds[index]}, set to -1 first (then no clean-up closes it again).
    """
    fd, fds[index] = fds[index], -1
    os.close(fd)


def _closeAll(fds: list[int]) -> None:
    """
    Close every fd of C{fds} still open: resumable (see L{completeCleanup}).
    """
    for index, fd in enumerate(fds):
        if fd == -1:
            continue
        fds[index] = -1
        os.close(fd)


def _settlePidOne(started: list[int], reaped: list[object], cell: ctypes.c_int) -> None:
    """
    The clean-up of an interrupted or failed spawn with a pid namespace,
    before the caller's: kill and reap the fork child if it is not reaped
    yet (then it can no longer make pid 1), and put pid 1, if it exists, in
    its place in C{started}, for the caller to kill and reap.  Resumable:
    each step is done once however often this runs.
    """
    if not reaped and started:
        recordCall(reaped, discardChild, started[0], None)
    started[:] = filter(None, (cell.value,))


def childSteps(
    features: _features.Features,
    plan: SpawnPlan,
    fdMap: Mapping[int, int],
    errWrite: int,
    statusWrite: int | None = None,
    namespaces: NamespaceSteps | None = None,
    cgroupProcsFd: int | None = None,
) -> ChildSteps:
    """
    Everything the forked child of C{plan} does, computed in the parent.

    @param features: Probed features (whether C{close_range} works).
    @param plan: The plan.
    @param fdMap: Child fd to parent fd.
    @param errWrite: The error pipe's write end, which the child keeps.
    @param statusWrite: With txspawn's init, the status pipe's write end,
        which the child keeps too.
    @param namespaces: The namespace steps, if any.
    @param cgroupProcsFd: The leaf's C{cgroup.procs}, which the child
        writes itself into first, if any.
    """
    keep = (errWrite,) if statusWrite is None else (errWrite, statusWrite)
    program = planFdOps(fdMap, keep=keep)
    groups = plan.groups
    implicitGroups = groups is None and plan.uid is not None
    if implicitGroups:
        # A uid without groups drops the parent's supplementary groups.
        groups = ()
    env = envMapping(plan.envp)
    candidates, argv = plan.candidates, plan.argv
    signalMask: tuple[int, ...] | None = plan.signalMask
    execInherits: tuple[int, ...] = ()
    execStage = ChildSetupStage.EXEC
    init = plan.namespaces.init if plan.namespaces is not None else None
    if init is not None:
        # txspawn's init runs the command (txspawn/_csrc/init.c): exec'd
        # with every signal still blocked, the error and status pipes open.
        errFd, statusFd = program.keptFds
        candidates, argv = (init,), _initArgv(plan, errFd, statusFd)
        signalMask = None
        execInherits = (errFd, statusFd)
        execStage = ChildSetupStage.INIT
    fault = plan.injectedFault
    cgroupFault = (
        fault[1]
        if fault is not None
        and fault[0] == ChildSetupStage.CGROUP
        and cgroupProcsFd is not None
        else None
    )
    return ChildSteps(
        errWrite=errWrite,
        cgroupProcsFd=cgroupProcsFd,
        cgroupFault=cgroupFault,
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
        # In a new pid namespace getppid() says 0: no check.
        parentPid=None if namespaces is not None and namespaces.newPid else os.getpid(),
        signalMask=signalMask,
        candidates=candidates,
        argv=argv,
        env=env,
        closeRangeWorks=features.enabled(_features.CLOSE_RANGE),
        namespaces=namespaces,
        execInherits=execInherits,
        execStage=execStage,
    )


def _initArgv(plan: SpawnPlan, errFd: int, statusFd: int) -> tuple[bytes, ...]:
    """
    txspawn's init's command line: C{txspawn-init ERRFD STATUSFD MASKHEX N
    CANDIDATE_1 .. CANDIDATE_N ARGV...} (see C{txspawn/_csrc/init.c}).
    """
    mask = 0
    for signum in plan.signalMask:
        mask |= 1 << (signum - 1)
    return (
        b"txspawn-init",
        b"%d" % errFd,
        b"%d" % statusFd,
        b"%x" % mask,
        b"%d" % len(plan.candidates),
        *plan.candidates,
        *plan.argv,
    )
