# -*- test-case-name: tests.test_pyspawn -*-
"""
The pure-Python spawn engine: C{posix_spawn} when the plan fits, C{os.fork}
otherwise.

This engine is always available: it is the fallback when the C engine is
not built, and the differential oracle the C engine is tested against.

  - B{posix_spawn} (glibc through L{txspawn._engine.libcposixspawn}) expresses plain
    spawns, arbitrary C{childFDs}, a new session or process group, signal
    dispositions and mask, and PTYs (C{setsid} + opening the slave anew
    onto fd 0 through C{/proc/self/fd}, which makes it the controlling
    terminal on Linux).  glibc
    reports exec errors synchronously and reaps a failed child itself.
    Because C{posix_spawn} only returns an errno, a failure of one of its
    setup steps cannot be told apart from an exec failure: C{EBADF} (which
    C{execve} never returns) is reported as stage C{FDS}; when the plan has
    a step that can fail otherwise (joining an existing process group,
    opening the pty slave), a failure is replayed through the fork path,
    which names the real stage; with C{method="posix_spawn"} forced, such
    failures are reported as stage C{EXEC}.  Creating the child can fail
    too: C{EAGAIN} (which C{execve} cannot return here) is reported as
    stage C{SPAWN}, as the C engine and C{fork} report it; C{ENOMEM} may
    come from C{clone} or from C{execve}, so it is replayed through the
    fork path like a setup failure.
  - B{fork} handles what C{posix_spawn} cannot express: C{path} (cwd),
    C{uid}/C{gid}/C{groups}, C{umask}, rlimits and the parent-death signal.
    The child (L{txspawn._engine.forkchild}) runs a short, precomputed sequence of
    Python calls (no planning, no formatting), reports any failure as one
    L{txspawn._plan.failurerecord} record over a close-on-exec pipe, and never returns
    into the caller's code.  Under Python 3.12+ C{os.fork()} emits a
    C{DeprecationWarning} in a process with threads (gh-100228); txspawn
    targets 3.11 here and prefers C{posix_spawn} for that reason too.

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
import signal
from collections.abc import Mapping
from typing import Literal

from zope.interface import implementer

from txspawn._engine.envp import envMapping
from txspawn._engine.forkchild import (
    CATCHABLE_SIGNALS,
    ChildSteps,
    execChild,
    loadPrctl,
)
from txspawn._engine.posixspawn import defaultPosixSpawn
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
from txspawn._kernel import features as _features
from txspawn._kernel.childhandle import (
    ChildProcess,
    discardChild,
    recordCall,
    recordItems,
)
from txspawn._kernel.probes import probeFeatures
from txspawn._plan.failurerecord import ChildFailure, readFailure
from txspawn._plan.fdops import CLOSE_RANGE_MAX, FdOpCode
from txspawn._plan.fdremap import planFdOps
from txspawn._plan.plan import SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature
from txspawn.interfaces import ISpawner

__all__ = ["ParentSyscalls", "PythonSpawner", "SpawnMethod", "forkReason"]

#: How L{PythonSpawner} starts children: C{"auto"} uses C{posix_spawn}
#: whenever the plan fits; the other two force one path (tests use them).
SpawnMethod = Literal["auto", "posix_spawn", "fork"]

_ALL_SIGNALS = frozenset(signal.valid_signals())
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


class ParentSyscalls:
    """
    The parent-side syscalls of the fork path that can fail, in one narrow
    object so that tests can inject failures without patching L{os}.

    Each call that creates something appends it to C{into} before any
    Python bytecode runs (L{txspawn._kernel.childhandle.recordCall}), so that an
    exception raised by a signal handler right after the syscall returned
    cannot lose it: the engine cleans up what C{into} holds.
    """

    def pipe(self, into: list[int]) -> None:
        """
        Open a close-on-exec pipe (the child's error pipe).

        @param into: Gets the read end, then the write end.
        """
        recordItems(into, os.pipe2, os.O_CLOEXEC)

    def fork(self, into: list[int]) -> int:
        """
        @param into: Gets the result in the parent (the child's pid).
        @return: C{os.fork()}.
        """
        return recordCall(into, os.fork)

    def pidfdOpen(self, pid: int, into: list[int]) -> int:
        """
        @param into: Gets the pidfd.
        @return: C{os.pidfd_open(pid)}.
        """
        return recordCall(into, os.pidfd_open, pid)

    def readFailure(self, fd: int) -> ChildFailure | None:
        """
        @return: L{txspawn._plan.failurerecord.readFailure} of the error pipe.
        """
        return readFailure(fd)


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


def _hasSetupSteps(plan: SpawnPlan) -> bool:
    """
    Whether C{posix_spawn} runs a step for C{plan}, besides the fd moves,
    that can fail in a way indistinguishable from an exec failure
    (C{setpgid} to an existing group, opening the pty slave).
    """
    if plan.pty is not None:
        return True
    # setpgid(0, 0) only fails for a session leader (after setsid).
    return plan.processGroup is not None and (plan.processGroup != 0 or plan.newSession)


def _posixSpawnActions(
    plan: SpawnPlan, fdMap: Mapping[int, int], ttyName: bytes | None
) -> list[SpawnAction]:
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


def _goneChild(pid: int) -> ChildProcess:
    """
    A child the kernel reaped before the engine could open its pidfd
    (C{SIGCHLD} ignored): already marked reaped, with its status unknown
    (C{None}), so that nothing ever signals or waits for its pid again.
    The spawner reports its exit from the reactor's next iteration, as the
    monitors do for any child reaped by someone else.
    """
    child = ChildProcess(pid, None)
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
        @param syscalls: The fork path's parent-side syscalls.
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
        self, plan: SpawnPlan, fdMap: Mapping[int, int], ttyName: bytes | None
    ) -> ChildProcess:
        """
        See L{ISpawner.spawn}.

        An exception escaping from here (a signal handler's
        C{KeyboardInterrupt} included) leaves no child and no fd: every pid
        and pidfd is recorded as it is created, and unless the child is
        returned it is killed and reaped (L{discardChild}) and its pidfd
        closed.

        @raise UnsupportedFeature: if C{method="posix_spawn"} was forced and
            the plan needs the fork path.
        """
        # Children started and not handed over, and their pidfds.
        started: list[int] = []
        pidfds: list[int] = []
        try:
            return self._spawnRecorded(plan, fdMap, ttyName, started, pidfds)
        except BaseException:
            try:
                for pid in started:
                    discardChild(pid, pidfds[-1] if pidfds else None)
            finally:
                for pidfd in pidfds:
                    os.close(pidfd)
            raise

    def _spawnRecorded(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        ttyName: bytes | None,
        started: list[int],
        pidfds: list[int],
    ) -> ChildProcess:
        """
        L{spawn}, recording into C{started} the child it starts (one at
        most) and into C{pidfds} its pidfd; a child that is gone for good
        (reaped by the kernel) is taken out of C{started} again.
        """
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
                e.errno == errno.ENOMEM or _hasSetupSteps(plan)
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

    # -- posix_spawn ------------------------------------------------------

    def _spawnByPosixSpawn(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        ttyName: bytes | None,
        started: list[int],
        pidfds: list[int],
    ) -> ChildProcess:
        actions = _posixSpawnActions(plan, fdMap, ttyName)
        attributes = SpawnAttributes(
            setsid=plan.newSession or plan.pty is not None,
            processGroup=plan.processGroup,
            sigdef=_SPAWN_SIGDEF,
            sigmask=plan.signalMask,
        )
        try:
            prepared = self._posixSpawn.prepare(
                plan.argv, plan.envp, actions, attributes
            )
        except OSError as e:
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.FDS
            ) from None
        try:
            pid = self._tryCandidates(prepared, plan, started)
        finally:
            prepared.close()
        return self._withPidfd(pid, started, pidfds)

    def _tryCandidates(
        self, prepared: PreparedSpawn, plan: SpawnPlan, started: list[int]
    ) -> int:
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

    # -- fork -------------------------------------------------------------

    def _spawnByFork(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        started: list[int],
        pidfds: list[int],
    ) -> ChildProcess:
        if plan.deathSignal is not None:
            loadPrctl()
        # The error pipe, recorded as it is opened; an fd is set to -1
        # before it is closed, so that the finally clause closes each once.
        pipe: list[int] = []
        masks: list[set[int | signal.Signals]] = []
        try:
            try:
                self._sys.pipe(pipe)
            except OSError as e:
                raise SpawnError.fromErrno(
                    e.errno or errno.EINVAL, ChildSetupStage.SPAWN
                ) from None
            errRead, errWrite = pipe
            steps = self._childSteps(plan, fdMap, errWrite)
            # Block every signal around the fork: the child must not run a
            # handler before it has reset the dispositions (it sets the
            # plan's mask just before exec); the parent restores its mask
            # right after (recorded, like every result here, before a
            # handler can raise: see ParentSyscalls).
            try:
                recordCall(
                    masks, signal.pthread_sigmask, signal.SIG_BLOCK, _ALL_SIGNALS
                )
                try:
                    pid = self._sys.fork(started)
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
            failure = self._sys.readFailure(errRead)
        finally:
            for fd in pipe:
                if fd != -1:
                    os.close(fd)
        if failure is not None:
            # spawn() reaps the failed child (it is exiting).
            raise failure.toError(plan.failureFilename(failure.stage))
        return self._withPidfd(pid, started, pidfds)

    def _childSteps(
        self, plan: SpawnPlan, fdMap: Mapping[int, int], errWrite: int
    ) -> ChildSteps:
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
            closeRangeWorks=self._features.enabled(_features.CLOSE_RANGE),
        )

    # -- pidfd ------------------------------------------------------------

    def _withPidfd(
        self, pid: int, started: list[int], pidfds: list[int]
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

        @raise SpawnError: (stage C{SPAWN}) if the pidfd cannot be opened
            for a reason other than missing kernel support (L{spawn} then
            kills and reaps the child).
        """
        if not self._features.enabled(_features.PIDFD_OPEN):
            return ChildProcess(pid, None)
        try:
            pidfd = self._sys.pidfdOpen(pid, pidfds)
        except OSError as e:
            if e.errno == errno.ENOSYS:
                return ChildProcess(pid, None)
            if e.errno == errno.ESRCH:
                # SIGCHLD is ignored: the kernel already reaped the child,
                # whose pid must never be acted on again.
                started.remove(pid)
                return _goneChild(pid)
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
            return _goneChild(pid)
        except OSError:  # pragma: no cover - EINVAL: Linux 5.3, no P_PIDFD
            pass
        return ChildProcess(pid, pidfd)
