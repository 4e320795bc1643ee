# -*- test-case-name: tests.test_pyspawn -*-
"""
The pure-Python spawn engine, L{PythonSpawner}: C{posix_spawn} when the
plan fits, C{os.fork} otherwise.

This engine is always available: it is the fallback when the C engine is
not built, and the differential oracle the C engine is tested against.

  - B{posix_spawn} (L{txspawn._engine.posixspawnpath}) expresses plain
    spawns, arbitrary C{childFDs}, a new session or process group, signal
    dispositions and mask, and PTYs.  It only returns an errno, so a
    failure that may come from a setup step rather than from C{exec}
    (joining an existing process group, opening the pty slave, C{ENOMEM})
    is replayed through the fork path, which names the real stage.
  - B{fork} (L{txspawn._engine.forkpath}, the child in
    L{txspawn._engine.forkchild}) handles what C{posix_spawn} cannot
    express: C{path} (cwd), C{uid}/C{gid}/C{groups}, C{umask}, rlimits and
    the parent-death signal (L{txspawn._engine.posixspawnpath.forkReason}
    says which a plan needs), and namespaces
    (L{txspawn._engine.forkpath.spawnInNamespaces}: a plan with namespaces
    always takes it), and a spawn into a cgroup leaf: the child writes
    itself into the leaf's C{cgroup.procs} first thing (this engine has no
    C{CLONE_INTO_CGROUP}).

Both paths leave nothing behind on failure: the child is reaped, every fd the
engine opened is closed, and L{SpawnError} is raised synchronously.  That
holds for any exception, including a C{KeyboardInterrupt} that a signal
handler raises right after C{fork}, C{posix_spawn}, C{pipe2} or
C{pidfd_open} returned: each records what it created in a list made by
L{PythonSpawner.spawn} before any bytecode runs (see
L{txspawn._kernel.childhandle.recordCall}), and C{spawn} kills, reaps and closes what
the list holds unless it returns the child.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from zope.interface import implementer

from txspawn._engine.forkpath import spawnByFork, spawnInNamespaces
from txspawn._engine.parentsyscalls import ParentSyscalls
from txspawn._engine.posixspawn import defaultPosixSpawn
from txspawn._engine.posixspawnpath import (
    forkReason,
    hasSetupSteps,
    spawnByPosixSpawn,
)
from txspawn._engine.spawnactions import PosixSpawnBackend
from txspawn._kernel import features as _features
from txspawn._kernel.childhandle import (
    ChildProcess,
    completeCleanup,
    discardChild,
    recordCall,
)
from txspawn._kernel.probes import probeFeatures
from txspawn._plan.plan import SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature
from txspawn.interfaces import ISpawner

if TYPE_CHECKING:
    from txspawn._cgroup.leaf import CgroupLeaf

__all__ = ["PYTHON_PLACEMENT_NOTE", "PythonSpawner", "SpawnMethod"]

#: Why this engine's children are placed in their cgroup by C{cgroup.procs}.
PYTHON_PLACEMENT_NOTE = "the Python engine has no CLONE_INTO_CGROUP"

#: How L{PythonSpawner} starts children: C{"auto"} uses C{posix_spawn}
#: whenever the plan fits; the other two force one path (tests use them).
SpawnMethod = Literal["auto", "posix_spawn", "fork"]


def _goneChild(pid: int, statusFd: int | None = None) -> ChildProcess:
    """
    A child the kernel reaped before the engine could open its pidfd
    (C{SIGCHLD} ignored): already marked reaped, with its status unknown
    (C{None}), so that nothing ever signals or waits for its pid again.
    The spawner reports its exit from the reactor's next iteration, as the
    monitors do for any child reaped by someone else.
    """
    child = ChildProcess(pid, None, statusFd=statusFd)
    child.reapUnknown()
    return child


@implementer(ISpawner)
class PythonSpawner:
    """
    The pure-Python L{ISpawner}.

    @ivar posixSpawnFallbackReason: Why the glibc C{posix_spawn} binding is
        not used (L{None} when it is).
    """

    name = "python"

    def __init__(
        self,
        *,
        method: SpawnMethod = "auto",
        features: _features.Features | None = None,
        posixSpawn: PosixSpawnBackend | None = None,
        syscalls: ParentSyscalls | None = None,
    ) -> None:
        """
        @param method: C{"auto"} (C{posix_spawn} when the plan fits, else
            fork), or force C{"posix_spawn"} or C{"fork"}.
        @param features: Probed features (default: L{probeFeatures}).
        @param posixSpawn: The C{posix_spawn} backend (default: glibc via
            C{ctypes}, else C{os.posix_spawn}).
        @param syscalls: The parent-side syscalls that can fail (those of
            the fork path, and C{pidfd_open}).
        @raise ValueError: for an unknown C{method}.
        """
        if method not in ("auto", "posix_spawn", "fork"):
            raise ValueError(
                f"method must be 'auto', 'posix_spawn' or 'fork', not {method!r}"
            )
        self._method = method
        self._features = features if features is not None else probeFeatures()
        self.posixSpawnFallbackReason: str | None = None
        if posixSpawn is None:
            posixSpawn, self.posixSpawnFallbackReason = defaultPosixSpawn()
        self._posixSpawn = posixSpawn
        self._sys = syscalls if syscalls is not None else ParentSyscalls()

    def spawn(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        ttyName: bytes | None,
        cgroupLeaf: CgroupLeaf | None = None,
    ) -> ChildProcess:
        """
        See L{ISpawner.spawn}.

        With C{cgroupLeaf}, the spawn takes the fork path, whose child
        writes itself into the leaf's C{cgroup.procs} before any other
        step (a failure there is a L{SpawnError} of stage C{CGROUP}), and
        the leaf is told so (C{placed("procs", PYTHON_PLACEMENT_NOTE)}).

        An exception escaping from here (a signal handler's
        C{KeyboardInterrupt} included) leaves no child and no fd: every pid
        and pidfd is recorded as it is created, and unless the child is
        returned it is killed and reaped (L{discardChild}) and its pidfd
        closed.

        @raise UnsupportedFeature: if C{method="posix_spawn"} was forced and
            the plan (or the cgroup) needs the fork path.
        """
        # Children started and not handed over, and their pidfds.
        started: list[int] = []
        pidfds: list[int] = []
        # The status pipe of a child under txspawn's init (read end, write
        # end), whose read end goes to the child handle.
        statusPipe: list[int] = []
        try:
            child = self._spawnRecorded(
                plan, fdMap, ttyName, started, pidfds, statusPipe, cgroupLeaf
            )
            if cgroupLeaf is not None:
                cgroupLeaf.placed("procs", PYTHON_PLACEMENT_NOTE)
            return child
        except BaseException:
            # Resumable: a second interrupt inside the clean-up makes
            # completeCleanup run it again from where it stopped.
            completeCleanup(_discardStarted, started, pidfds, [], statusPipe)
            raise

    def _spawnRecorded(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        ttyName: bytes | None,
        started: list[int],
        pidfds: list[int],
        statusPipe: list[int],
        leaf: CgroupLeaf | None,
    ) -> ChildProcess:
        """
        L{spawn}, recording into C{started} the child it starts (one at
        most) and into C{pidfds} its pidfd, and into C{statusPipe} the
        status pipe of txspawn's init; a child that is gone for good
        (reaped by the kernel) is taken out of C{started} again.
        """
        dirFd = None if leaf is None else leaf.dirFd
        if plan.namespaces is not None:
            if self._method == "posix_spawn":
                raise UnsupportedFeature(
                    "namespaces",
                    "posix_spawn cannot create them and the fork path is disabled",
                )
            pid = spawnInNamespaces(
                self._sys, self._features, plan, fdMap, started, statusPipe, dirFd
            )
            return self._withPidfd(
                pid, started, pidfds, statusPipe[0] if statusPipe else None
            )
        if dirFd is not None:
            if self._method == "posix_spawn":
                raise UnsupportedFeature(
                    "cgroup",
                    "posix_spawn cannot place the child in a cgroup and the "
                    "fork path is disabled",
                )
            return self._spawnByFork(plan, fdMap, started, pidfds, dirFd)
        reason = forkReason(plan, ttyName, fdMap)
        if self._method == "fork" or (self._method == "auto" and reason):
            return self._spawnByFork(plan, fdMap, started, pidfds)
        if reason is not None:
            raise UnsupportedFeature(
                reason, "posix_spawn cannot express it and the fork path is disabled"
            )
        if self._method == "posix_spawn":
            return self._spawnByPosixSpawn(plan, fdMap, ttyName, started, pidfds)
        try:
            return self._spawnByPosixSpawn(plan, fdMap, ttyName, started, pidfds)
        except SpawnError as e:
            if e.stage != ChildSetupStage.EXEC or not (
                e.errno == errno.ENOMEM or hasSetupSteps(plan)
            ):
                raise
        # posix_spawn only returns an errno: a failure of setpgid or of
        # opening the tty looks like an exec failure, and so does ENOMEM
        # from creating the child (clone, or glibc's mmap of its stack),
        # which the C engine and the fork path report as stage SPAWN.  The
        # failed child left nothing behind, so the fork path replays the
        # spawn and reports the step that really failed (or, if the failure
        # was transient, starts the child).
        return self._spawnByFork(plan, fdMap, started, pidfds)

    def _spawnByPosixSpawn(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        ttyName: bytes | None,
        started: list[int],
        pidfds: list[int],
    ) -> ChildProcess:
        """
        Start the child on the C{posix_spawn} path, and open its pidfd.
        """
        pid = spawnByPosixSpawn(self._posixSpawn, plan, fdMap, ttyName, started)
        return self._withPidfd(pid, started, pidfds)

    def _spawnByFork(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        started: list[int],
        pidfds: list[int],
        cgroupDirFd: int | None = None,
    ) -> ChildProcess:
        """
        Start the child on the fork path (in the cgroup leaf of
        C{cgroupDirFd}, if given), and open its pidfd.
        """
        pid = spawnByFork(self._sys, self._features, plan, fdMap, started, cgroupDirFd)
        return self._withPidfd(pid, started, pidfds)

    # -- pidfd ------------------------------------------------------------

    def _withPidfd(
        self,
        pid: int,
        started: list[int],
        pidfds: list[int],
        statusFd: int | None = None,
    ) -> ChildProcess:
        """
        Open the new child's pidfd.

        Race-free while C{SIGCHLD} is handled or default: the child is
        unreaped, so its pid cannot have been reused.  With C{SIGCHLD}
        ignored the kernel reaps a child as soon as it exits, which a
        short-lived child may do before C{pidfd_open} runs: C{pidfd_open}
        then fails with C{ESRCH} (or, if the pid was handed out again in
        between, opens another process, which C{waitid(P_PIDFD)} tells
        since it is not our child).  Either way the child is gone and its
        status lost for good: it is returned already reaped with status
        C{None} (see L{_goneChild}), and its bare pid is never used again.
        The C engine gets its pidfd atomically from C{clone3}.

        C{statusFd}, the read end of the status pipe of txspawn's init,
        goes to the child handle (which reads pid 2's status from it).

        @raise SpawnError: (stage C{SPAWN}) if the pidfd cannot be opened
            for a reason other than missing kernel support (L{spawn} then
            kills and reaps the child).
        """
        if not self._features.enabled(_features.PIDFD_OPEN):
            return ChildProcess(pid, None, statusFd=statusFd)
        try:
            pidfd = self._sys.pidfdOpen(pid, pidfds)
        except OSError as e:
            if e.errno == errno.ENOSYS:
                return ChildProcess(pid, None, statusFd=statusFd)
            if e.errno == errno.ESRCH:
                # SIGCHLD is ignored: the kernel already reaped the child,
                # whose pid must never be acted on again.
                started.remove(pid)
                return _goneChild(pid, statusFd)
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.SPAWN
            ) from None
        try:
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            # Not our child: ours was reaped by the kernel (SIGCHLD ignored)
            # and its pid given to another process before pidfd_open ran.
            started.remove(pid)
            del pidfds[-1]
            os.close(pidfd)
            return _goneChild(pid, statusFd)
        except OSError:  # pragma: no cover - EINVAL: Linux 5.3, no P_PIDFD
            pass
        return ChildProcess(pid, pidfd, statusFd=statusFd)


def _discardStarted(
    started: list[int],
    pidfds: list[int],
    discarded: list[None],
    statusPipe: list[int],
) -> None:
    """
    Kill and reap the children of a failed spawn and close their pidfds
    and the status pipe, each step done once however often this is run
    again (by L{completeCleanup}, after an interrupt): C{discarded} counts
    the children already discarded, and a closed fd is marked C{-1}.
    """
    pidfd = pidfds[-1] if pidfds and pidfds[-1] != -1 else None
    for index in range(len(discarded), len(started)):
        recordCall(discarded, discardChild, started[index], pidfd)
    for fds in (pidfds, statusPipe):
        for index, fd in enumerate(fds):
            if fd == -1:
                continue
            fds[index] = -1
            os.close(fd)
