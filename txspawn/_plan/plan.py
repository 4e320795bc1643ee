# -*- test-case-name: tests.test_plan -*-
"""
The spawn plan: what one child should be, every C{spawnProcess} argument
validated and normalised.

A L{SpawnPlan} is immutable and complete: engines only execute it.
L{txspawn._plan.planner.planSpawn} makes one, rejecting bad input (with the
checks of L{txspawn._plan.argumentchecks}) before any fd is opened or child
created.

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

import os
from typing import Union

from attrs import frozen

from txspawn._cgroupoptions import Cgroup
from txspawn._plan.namespaceplan import NamespacePlan, failureHint
from txspawn.errors import ChildSetupStage, SpawnError

__all__ = [
    "ChildFDSpec",
    "InheritFD",
    "PTYSpec",
    "PipeFromParent",
    "PipeToParent",
    "SpawnPlan",
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
        (C{setgroups(0, NULL)}), as the issue-3 options require, ignoring
        C{EPERM} (a process without C{CAP_SETGID} has no groups to drop);
        that is also what happens in a user namespace whose C{setgroups}
        is denied (C{namespaces.setgroups == b"deny"}), where C{groups} is
        always C{None}.
    @ivar childFDs: The child's fds other than a pty (see L{ChildFDSpec}).
    @ivar pty: L{PTYSpec} for a pty child, else C{None}.
    @ivar newSession: Call C{setsid()} in the child (implied by C{pty}).
    @ivar processGroup: C{None} to stay in the parent's group, C{0} to lead a
        new group, or a pgid to join.
    @ivar umask: The child's umask, or C{None} to inherit.
    @ivar rlimits: C{(resource, soft, hard)} triples to apply.
    @ivar deathSignal: Signal for C{PR_SET_PDEATHSIG}, or C{None}.
    @ivar signalMask: Signals blocked in the child at exec.
    @ivar namespaces: The namespaces the child is created in, and their
        setup (L{NamespacePlan}), or C{None}.  With a user namespace, C{uid},
        C{gid} and C{groups} are ids inside it.
    @ivar cgroup: The cgroup v2 options of the child's own leaf
        (L{txspawn.options.Cgroup}, as given), or C{None}.  The plan only
        carries them: the leaf is found, created and opened by the
        transport when it spawns (L{txspawn._cgroup}), and handed to the
        engine with the plan.
    @ivar injectedFault: Tests only: C{(stage, errno)}, the
        L{ChildSetupStage} value at which the engine fails as if that step
        had failed with C{errno}, after every earlier step ran (see
        L{txspawn._plan.faultinjection}); C{None} normally.
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
    namespaces: NamespacePlan | None = None
    cgroup: Cgroup | None = None
    injectedFault: tuple[int, int] | None = None

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

    def failureError(
        self, stage: ChildSetupStage, errno: int, detail: int = 0
    ) -> SpawnError:
        """
        The L{SpawnError} for a failure of this plan's child (or of the
        parent's part of its setup) at C{stage}, the same on every engine:
        it names L{failureFilename}, and, for a namespace spawn, gives the
        likely cause when it is known (L{SpawnError.hint}, from
        L{txspawn._plan.namespaceplan.failureHint}).
        """
        hint = (
            None
            if self.namespaces is None
            else failureHint(self.namespaces, stage, errno, detail)
        )
        return SpawnError.fromErrno(
            errno, stage, self.failureFilename(stage), detail, hint
        )
