# -*- test-case-name: tests.test_cspawn -*-
"""
The C engine's Python side: L{CSpawner} turns a L{SpawnPlan} and an fd map
into one call of the C{txspawn._cspawn} extension.

Everything that allocates or formats happens here or in the extension's
argument conversion, in the parent, before the clone: the fd program is
planned and encoded (L{encodedProgram}), ids and limits become plain ints,
and the child (C{txspawn/_csrc/child.c}) only executes.

B{Slot mode.}  A spawn whose fds fit is sent them through a reserved low
fd, and its child does not copy the parent's fd table: see
L{txspawn._engine.fdslots}.  Other spawns take the ordinary path.

B{Modes.}  In order of preference, each chosen by probes cached in the
extension (L{CSpawner.features}, each with the reason it is off):
C{"clone3"}: C{clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_CLEAR_SIGHAND)}
through the per-architecture trampoline (C{_csrc/clone3_x86_64.c}), probed
once when the extension loads by a real clone3 of a child that exits at
once; C{"clone"}: glibc C{clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)}, with
C{pidfd_open()} when C{CLONE_PIDFD} is refused; C{"fork-like"}: a clone
without C{CLONE_VM}.  L{CSpawner.mode} says which one a spawner would use
and why.

B{Namespaces} (L{txspawn._plan.namespaceplan.NamespacePlan}) ride on the
same clone: its C{CLONE_NEW*} flags are added, and the child runs the
namespace steps before its ordinary ones.  A self-map keeps the vfork
mode.  Any other map is written by the parent while the child, cloned with
C{CLONE_VM} but without C{CLONE_VFORK} (no page-table copy, and the parent
not suspended), waits on a futex in the shared plan (the map handoff, in
C{_csrc/spawn.c}).  Namespace spawns never use slot mode.  With txspawn's
init as pid 1, the extension also makes the status pipe on which init
reports the command's wait status, and its read end goes to the
L{ChildProcess}.

B{A cgroup} (issue 14; L{CSpawner.spawn}'s C{cgroupLeaf}): the child is
cloned into the leaf with C{clone3(CLONE_INTO_CGROUP)} (the leaf's
directory fd as C{clone_args.cgroup}), still in vfork mode, so it is in
its cgroup from its first instruction.  Where the kernel refuses that
(L{CGROUP_REFUSALS}), or kills the child before it runs (a spawner whose
cgroup has another C{cgroup.kill} history than the leaf: then
C{leaf.parent.cloneInto} says so, and later spawns into that parent skip
the clone), or the spawn does not use C{clone3}, the extension retries once
with the child writing C{"0"} to the leaf's C{cgroup.procs} as its first
step (stage C{CGROUP}).  Either way C{leaf.placed(placement, note)} is told
how, and why not by the clone.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import TYPE_CHECKING

from zope.interface import implementer

from txspawn._engine.cextension import _cspawn
from txspawn._engine.cfdprogram import EncodedOp, encodedProgram
from txspawn._engine.fdslots import SLOTS_ENV, FdSlots, defaultSlots, reservedFdClosed
from txspawn._kernel.childhandle import ChildProcess, recordCall
from txspawn._plan.failurerecord import decodeFailure
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn._plan.plan import SpawnPlan
from txspawn.errors import ChildSetupStage
from txspawn.interfaces import ISpawner

if TYPE_CHECKING:
    from txspawn._cgroup.leaf import CgroupLeaf

__all__ = ["CGROUP_KILLED_NOTE", "CGROUP_REFUSALS", "MODES", "CSpawner"]

#: The errnos of C{clone3(CLONE_INTO_CGROUP)} after which the child is
#: placed through C{cgroup.procs} instead (see C{txs_cgroup_refusal} in
#: C{_csrc/spawn.c} for what each means).
CGROUP_REFUSALS = frozenset(
    {
        errno.EBADF,
        errno.EBUSY,
        errno.EACCES,
        errno.EPERM,
        errno.EINVAL,
        errno.ENOSYS,
        errno.E2BIG,
        errno.EOPNOTSUPP,
        errno.ENODEV,
        errno.ENOENT,
    }
)
#: The refusals that hold for every leaf on this kernel (no
#: C{CLONE_INTO_CGROUP} before Linux 5.7): they stick, as a kill does.
_KERNEL_REFUSALS = frozenset({errno.ENOSYS, errno.E2BIG})
#: Why a child was not placed by the clone when the kernel killed it
#: before it ran (also C{leaf.parent.cloneInto} from then on).
CGROUP_KILLED_NOTE = (
    "the kernel killed the child placed by CLONE_INTO_CGROUP before it ran: "
    "the spawner's cgroup and the leaf have a different cgroup.kill history"
)

#: The spawn modes, best first (see the module docstring).
MODES = ("clone3", "clone", "fork-like")
#: What the extension's C{spawn} returns: C{(pid, pidfd, record, flags,
#: statusFd)}.
_Outcome = tuple[int, int, bytes | None, int, int]
#: The namespace part of the extension's arguments (see L{_namespaceArgs}).
_NamespaceArgs = tuple[
    int,
    bytes | None,
    bytes | None,
    bytes | None,
    bool,
    tuple[int, int] | None,
    bytes | None,
    bool,
    int,
    bool,
    bytes | None,
]


@implementer(ISpawner)
class CSpawner:
    """
    The C L{ISpawner}: C{clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)} (or glibc
    C{clone()}) on a separate stack, a C child, C{execve}.

    @ivar lastUsedVfork: Whether the last successful spawn ran its child in
        vfork mode (C{CLONE_VM|CLONE_VFORK}); for tests and C{info}.
    @ivar lastSharedMemory: Whether the last successful spawn's child shared
        the parent's memory (C{CLONE_VM}): in vfork mode, and in the map
        handoff of a user namespace whose maps the parent writes
        (C{CLONE_VM} without C{CLONE_VFORK}).
    @ivar lastMode: The mode (one of L{MODES}) of the last successful
        spawn, or L{None} before the first.
    @ivar lastUsedSlots: Whether the last spawn used slot mode.
    @ivar lastClonedIntoCgroup: Whether the last spawn with a cgroup leaf
        asked the kernel to clone the child into it (C{CLONE_INTO_CGROUP}),
        whatever came of it; C{False} when it went straight to
        C{cgroup.procs} (C{leaf.parent.cloneInto} set, or no clone3).
    """

    name = "c"

    def __init__(
        self,
        *,
        vfork: bool = True,
        clone3: bool = True,
        clonePidfd: bool = True,
        pidfdOpen: bool = True,
        slots: FdSlots | bool | None = True,
    ) -> None:
        """
        @param vfork: Allow the vfork mode (C{CLONE_VM|CLONE_VFORK}); when
            C{False}, or when the kernel refuses it, the child is cloned
            fork-like (a copy-on-write copy of the parent).
        @param clone3: Allow the vfork mode through C{clone3} (the
            trampoline); when C{False}, or when its probe failed, glibc
            C{clone()} is used.
        @param clonePidfd: Allow C{CLONE_PIDFD}.
        @param pidfdOpen: Allow C{pidfd_open()} when there is no
            C{CLONE_PIDFD}; with neither, children have no pidfd.
        @param slots: C{True} for the process-wide L{defaultSlots}, an
            L{FdSlots}, or C{False}/L{None} to never use slot mode.
        """
        self._allow = (
            (_cspawn.ALLOW_VFORK if vfork else 0)
            | (_cspawn.ALLOW_CLONE3 if clone3 else 0)
            | (_cspawn.ALLOW_CLONE_PIDFD if clonePidfd else 0)
            | (_cspawn.ALLOW_PIDFD_OPEN if pidfdOpen else 0)
        )
        if slots is True:
            self._slots = defaultSlots()
        elif slots is False:
            self._slots = None
        else:
            self._slots = slots
        self.lastUsedVfork = False
        self.lastSharedMemory = False
        self.lastMode: str | None = None
        self.lastUsedSlots = False
        self.lastClonedIntoCgroup = False

    @staticmethod
    def features() -> dict[str, tuple[bool | None, str | None]]:
        """
        The extension's cached probes: name to C{(on, reason)}, C{on}
        L{None} while not settled yet.
        """
        return _cspawn.features()

    def mode(self) -> tuple[str, str]:
        """
        The mode the next spawn will use, as far as the probes settled so
        far tell, and why.

        @return: C{(mode, reason)}, C{mode} one of L{MODES}.
        """
        features = self.features()
        vfork, vforkWhy = features["vfork"]
        clone3, clone3Why = features["clone3"]
        clear, _ = features["clone_clear_sighand"]
        if not self._allow & _cspawn.ALLOW_VFORK:
            return "fork-like", "vfork mode disabled by the caller"
        if vfork is False:
            return "fork-like", f"vfork mode is off: {vforkWhy}"
        if self._allow & _cspawn.ALLOW_CLONE3 and clone3 is True:
            flags = "CLONE_VM|CLONE_VFORK"
            if self._allow & _cspawn.ALLOW_CLONE_PIDFD:
                flags += "|CLONE_PIDFD"
            if clear is True:
                flags += "|CLONE_CLEAR_SIGHAND"
            return "clone3", f"clone3({flags})"
        why = (
            "clone3 disabled by the caller"
            if not self._allow & _cspawn.ALLOW_CLONE3
            else f"clone3 is off: {clone3Why}"
        )
        return "clone", f"glibc clone(CLONE_VM|CLONE_VFORK); {why}"

    def slotStatus(self) -> str | None:
        """
        @return: L{None} if slot mode is usable, else why not.
        """
        if self._slots is None:
            return f"disabled (no reserved fds; {SLOTS_ENV}=0 or EMFILE)"
        return self._slots.broken

    def spawn(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        ttyName: bytes | None,
        cgroupLeaf: CgroupLeaf | None = None,
    ) -> ChildProcess:
        """
        See L{ISpawner.spawn}.

        With C{cgroupLeaf}, the child is placed in it before it runs any
        step of the plan (see the module docstring), and C{cgroupLeaf.placed}
        says how; a failure to place it is a L{SpawnError} of stage
        C{CGROUP}, with the child reaped and the leaf left as it was.

        An exception escaping from here -- including the C{KeyboardInterrupt}
        a signal handler raises right after the extension returned -- leaves
        no child behind: what the extension returns is recorded before any
        bytecode runs (L{recordCall}), and a child it started is killed,
        reaped and its pidfd (and init's status pipe) closed unless it is
        returned.  (The extension itself does the same for a child whose
        result it could not build.)
        """
        started: list[_Outcome] = []
        try:
            return self._spawnRecorded(plan, fdMap, started, cgroupLeaf)
        except BaseException:
            # One call to C, which kills, reaps and closes everything
            # started holds (a record means a failed child, reaped by the
            # extension): no signal handler can run inside it, so a second
            # interrupt cannot stop the clean-up half-way, and nothing runs
            # before it that could be interrupted first.
            _cspawn.discard(started)
            raise

    def _spawnRecorded(
        self,
        plan: SpawnPlan,
        fdMap: Mapping[int, int],
        started: list[_Outcome],
        leaf: CgroupLeaf | None,
    ) -> ChildProcess:
        """
        L{spawn}, each outcome of the extension appended to C{started}.
        """
        # The extension opens the leaf's cgroup.procs itself (-1), and only
        # when the clone does not place the child: no fd of ours to lose
        # to an interrupt, and no open and close in the usual spawn.
        cgroup = (
            None if leaf is None else (leaf.dirFd, -1, leaf.parent.cloneInto is None)
        )
        slots = self._slots
        if plan.namespaces is not None:
            # The namespace steps report through the error pipe, and the
            # map handoff needs the child to run beside us.
            slots = None
        if slots is not None and slots.broken is None:
            layout = slots.layout(fdMap)
            # Whether the lock was taken is recorded in C (recordCall): an
            # interrupt raised right after acquire() returns must not leave
            # slot mode locked for the rest of the process.
            held: list[bool] = []
            outcome = None
            try:
                if layout is not None and recordCall(held, slots.lock.acquire, False):
                    outcome = self._call(
                        started,
                        plan,
                        layout.ops,
                        -1,
                        layout.sources,
                        slots.bound,
                        slots.reservedArg,
                        None,
                        leaf,
                        cgroup,
                    )
            finally:
                if held and held[0]:
                    slots.lock.release()
            if outcome is not None:
                pid, pidfd, record, flags, _ = outcome
                if flags & _cspawn.FLAG_SLOTS_FOREIGN:
                    # Forked without the os.register_at_fork hook: the
                    # socket is shared with the other process.
                    slots.broken = "the process was forked; the reserved fd is shared"
                elif not flags & _cspawn.FLAG_SLOTS_UNUSABLE:
                    if record is None or not reservedFdClosed(record, slots):
                        self.lastUsedSlots = True
                        return self._started(
                            plan, pid, pidfd, record, flags, leaf, slots
                        )
        self.lastUsedSlots = False
        # The child moves the error pipe (and init's status pipe) above
        # every fd the program mentions before running it.
        errFd = max((3, *fdMap, *fdMap.values())) + 1
        init = None
        statusFd = None
        if plan.namespaces is not None and plan.namespaces.init is not None:
            statusFd = errFd + 1
            init = (plan.namespaces.init, _initArgv(plan, errFd, statusFd), statusFd)
        pid, pidfd, record, flags, statusRead = self._call(
            started,
            plan,
            encodedProgram(fdMap, errFd, statusFd),
            errFd,
            (),
            0,
            None,
            init,
            leaf,
            cgroup,
        )
        return self._started(plan, pid, pidfd, record, flags, leaf, statusFd=statusRead)

    def _started(
        self,
        plan: SpawnPlan,
        pid: int,
        pidfd: int,
        record: bytes | None,
        flags: int,
        leaf: CgroupLeaf | None,
        slots: FdSlots | None = None,
        statusFd: int = -1,
    ) -> ChildProcess:
        """
        The child the extension reported, or the L{SpawnError} it failed
        with (it has been reaped by the extension, and its status pipe
        closed).  With a leaf, the leaf is told how the child was placed
        in it (on success only: a failed spawn's leaf is discarded).
        """
        note = None
        if leaf is not None:
            note = self._cgroupNote(leaf, flags)
        if record is not None:
            # A malformed record raises MalformedRecord naming the bytes.
            failure = decodeFailure(record)
            if failure.stage is ChildSetupStage.RESERVED_FD and slots is not None:
                # The number holds someone else's file (ESTALE).
                slots.stolen(failure.detail)
            # The same error on every engine, with the likely cause of a
            # namespace failure when it is known.
            raise plan.failureError(failure.stage, failure.errno, failure.detail)
        self.lastUsedVfork = bool(flags & _cspawn.FLAG_VFORK)
        self.lastSharedMemory = shared = bool(flags & _cspawn.FLAG_SHARED_VM)
        if flags & _cspawn.FLAG_CLONE3:
            self.lastMode = "clone3"
        else:
            self.lastMode = "clone" if shared else "fork-like"
        if leaf is not None:
            if flags & _cspawn.FLAG_CGROUP_CLONE:
                leaf.placed("clone", None)
            elif flags & _cspawn.FLAG_CGROUP_PROCS:
                leaf.placed("procs", note)
            else:  # pragma: no cover - the extension always says which
                raise AssertionError(f"no cgroup placement in flags {flags:#x}")
        # From here the child owns the status pipe (it reads and closes it
        # once reaped); until then the outcome in started does (discard).
        return ChildProcess(
            pid,
            pidfd if pidfd >= 0 else None,
            statusFd=statusFd if statusFd >= 0 else None,
        )

    def _cgroupNote(self, leaf: CgroupLeaf, flags: int) -> str | None:
        """
        Why the extension did not place the child by the clone, from the
        cgroup part of its C{flags} (L{None}: it did, or nothing was
        tried); a reason that holds for later spawns into the same parent
        is made C{leaf.parent.cloneInto}.
        """
        refused = flags >> _cspawn.CGROUP_ERRNO_SHIFT
        self.lastClonedIntoCgroup = bool(
            refused or flags & (_cspawn.FLAG_CGROUP_KILLED | _cspawn.FLAG_CGROUP_CLONE)
        )
        if flags & _cspawn.FLAG_CGROUP_KILLED:
            leaf.parent.cloneInto = CGROUP_KILLED_NOTE
            return CGROUP_KILLED_NOTE
        if refused:
            name = errno.errorcode.get(refused, str(refused))
            note = f"clone3(CLONE_INTO_CGROUP) failed with {name}"
            if refused in _KERNEL_REFUSALS:
                note += " (it needs Linux 5.7)"
                leaf.parent.cloneInto = note
            return note
        if flags & _cspawn.FLAG_CGROUP_NO_CLONE3:
            mode, why = self.mode()
            return (
                f"CLONE_INTO_CGROUP needs the clone3 mode; this spawn is {mode}: {why}"
            )
        return leaf.parent.cloneInto

    def _call(
        self,
        started: list[_Outcome],
        plan: SpawnPlan,
        ops: tuple[EncodedOp, ...],
        errFd: int,
        sources: tuple[int, ...],
        bound: int,
        reserved: tuple[int, int, int, int, int, int, int, int] | None,
        init: tuple[bytes, tuple[bytes, ...], int] | None,
        leaf: CgroupLeaf | None,
        cgroup: tuple[int, int, bool] | None,
    ) -> _Outcome:
        groups = plan.groups
        implicitGroups = groups is None and plan.uid is not None
        if implicitGroups:
            # A uid without groups drops the parent's supplementary groups.
            groups = ()
        try:
            # Appended to started in C: see spawn.
            return recordCall(
                started,
                _cspawn.spawn,
                plan.candidates,
                plan.argv,
                plan.envp,
                plan.cwd,
                ops,
                errFd,
                sources,
                bound,
                reserved,
                plan.newSession or plan.pty is not None,
                plan.pty is not None,
                -1 if plan.processGroup is None else plan.processGroup,
                -1 if plan.umask is None else plan.umask,
                plan.rlimits,
                groups,
                implicitGroups,
                -1 if plan.gid is None else plan.gid,
                -1 if plan.uid is None else plan.uid,
                plan.deathSignal or 0,
                plan.signalMask,
                self._allow,
                _namespaceArgs(plan),
                init,
                plan.injectedFault,
                cgroup,
            )
        except OSError as e:
            if leaf is not None:
                # A clone that failed after a fallback still tells why the
                # first attempt did not place the child (a kill sticks).
                self._cgroupNote(leaf, getattr(e, "cgroupFlags", 0))
            raise plan.failureError(
                ChildSetupStage.SPAWN, e.errno or errno.EINVAL
            ) from None


def _namespaceArgs(plan: SpawnPlan) -> _NamespaceArgs | None:
    """
    The plan's L{NamespacePlan} as the extension takes it (all of it but
    C{init}, which goes with the status pipe), or L{None}.
    """
    ns = plan.namespaces
    if ns is None:
        return None
    return namespaceArgs(ns)


def namespaceArgs(ns: NamespacePlan) -> _NamespaceArgs:
    """
    A L{NamespacePlan} (all of it but C{init}) as the extension's C{spawn}
    takes it.
    """
    return (
        ns.cloneFlags,
        ns.uidMap,
        ns.gidMap,
        ns.setgroups,
        ns.mapsByChild,
        ns.earlyIds,
        ns.hostname,
        ns.loopback,
        ns.propagation or 0,
        ns.mountProc,
        ns.timeOffsets,
    )


def _initArgv(plan: SpawnPlan, errFd: int, statusFd: int) -> tuple[bytes, ...]:
    """
    The argument vector of txspawn's init for C{plan}: the error pipe's and
    the status pipe's numbers in the child, the command's signal mask (hex,
    bit C{n - 1} for signal C{n}), then the exec candidates, counted, and
    the command's own argv.
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
