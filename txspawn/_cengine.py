# -*- test-case-name: tests.test_cspawn -*-
"""
The C engine's Python side: L{CSpawner} turns a L{SpawnPlan} and an fd map
into one call of the C{txspawn._cspawn} extension.

Everything that allocates or formats happens here or in the extension's
argument conversion, in the parent, before the clone: the fd program is
planned by L{planFdOps}, ids and limits become plain ints, and the child
(C{txspawn/_csrc/child.c}) only executes.

B{Slot mode.}  A child cloned with C{CLONE_FILES} starts on the parent's own
fd table and, as its very first step, keeps only fds below a bound
(C{close_range(bound, ~0U, CLOSE_RANGE_UNSHARE)}, Linux 5.9): its cost no
longer depends on how many fds the parent holds (posix_spawn and fork pay
about 0.25 microseconds per open fd to copy the table and close it again at
exec).  For that, every fd the child needs must sit below the bound when it
is cloned.  So, once per process and as early as possible (when this module
is imported, normally before the application has opened many fds), txspawn
reserves a small block of low fd numbers (L{FdSlots}): close-on-exec
duplicates of one placeholder pipe.  Each spawn that fits then, under a
lock, has the extension C{dup3} the fds the child needs into the slots
(atomically replacing placeholders that txspawn owns, so no other thread's
fd is ever touched), clone, and put the placeholders back.  Spawns that do
not fit (too many fds, or the lock is busy because another thread is
spawning) take the ordinary path, which copies the fd table.  See
C{docs/design/engines.rst}.

B{Modes.}  In order of preference, each chosen by probes cached in the
extension (L{CSpawner.features}, each with the reason it is off):
C{"clone3"}: C{clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_CLEAR_SIGHAND)}
through the per-architecture trampoline (C{_csrc/clone3_x86_64.c}), probed
once when the extension loads by a real clone3 of a child that exits at
once; C{"clone"}: glibc C{clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)}, with
C{pidfd_open()} when C{CLONE_PIDFD} is refused; C{"fork-like"}: a clone
without C{CLONE_VM}.  L{CSpawner.mode} says which one a spawner would use
and why.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Mapping

from attrs import define, field
from zope.interface import implementer

from txspawn._child import ChildProcess
from txspawn._engines import buildFailureReason
from txspawn._fdplan import planFdOps
from txspawn._plan import SpawnPlan
from txspawn._wire import decodeFailure
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import ISpawner

__all__ = [
    "MODES",
    "SLOTS_ENV",
    "CSpawner",
    "FdSlots",
    "defaultSlots",
]

#: The spawn modes, best first (see the module docstring).
MODES = ("clone3", "clone", "fork-like")
#: The environment variable giving the number of reserved low fd slots
#: (default 16; C{0} turns slot mode off).
SLOTS_ENV = "TXSPAWN_FD_SLOTS"
_DEFAULT_SLOTS = 16
#: One fd operation as the extension takes it: C{(op, fd, target)}.
_Op = tuple[int, int, int]
#: Slots start at 3 so that a thread redirecting stdio (C{dup2} onto 0, 1
#: or 2, legitimate even while those are closed) never hits one.
_FIRST_SLOT = 3


try:
    from txspawn import _cspawn
except ImportError as e:  # pragma: no cover - exercised when not built
    _why = buildFailureReason()
    raise ImportError(f"{e}; {_why}" if _why else str(e)) from e


@define(frozen=True)
class SlotLayout:
    """
    Where one fd map goes in slot mode: a pure function of the map and the
    slot numbers, so L{FdSlots.layout} computes it once per distinct map.

    @ivar pairs: C{(parent fd, slot)} for each distinct parent fd, in
        ascending order of parent fd (the extension C{dup3}s each into its
        slot).
    @ivar errFd: The slot that receives the error pipe's write end.
    @ivar ops: The child's fd program over the slots (see L{_encodedProgram}).
    """

    pairs: tuple[tuple[int, int], ...]
    errFd: int
    ops: tuple[_Op, ...]


#: L{FdSlots.layout}'s answer for a map that does not fit the slots.
_NO_LAYOUT = SlotLayout((), -1, ())
_LAYOUT_CACHE_SIZE = 256


@define
class FdSlots:
    """
    A block of reserved low fd numbers (see the module docstring).

    @ivar placeholder: The fd put back into each slot after a spawn: the
        read end of a pipe whose write end is closed (a unique inode, so a
        slot can be checked to still be ours).
    @ivar numbers: The slots, ascending.
    @ivar bound: One above the highest slot (and the placeholder): the
        child unshares C{[0, bound)}.
    @ivar placeholderArg: C{(placeholder, st_dev, st_ino)}, as the extension
        takes it: before touching any slot it checks that the placeholder
        is still that pipe and every slot it will use still holds it.
    @ivar broken: Why slot mode was given up, or L{None}.
    """

    placeholder: int
    numbers: tuple[int, ...]
    bound: int
    _identity: tuple[int, int]
    lock: threading.Lock = field(factory=threading.Lock)
    broken: str | None = None
    _layouts: dict[tuple[tuple[int, int], ...], SlotLayout] = field(factory=dict)
    placeholderArg: tuple[int, int, int] = field(init=False)

    def __attrs_post_init__(self) -> None:
        # Built once: it is passed on every slot-mode spawn.
        self.placeholderArg = (self.placeholder, *self._identity)

    @classmethod
    def reserve(cls, count: int) -> FdSlots | None:
        """
        Reserve C{count} slots: the lowest free fd numbers from 3 up.

        @return: The slots, or L{None} when C{count} is 0 or the fds
            cannot be had (C{EMFILE}).
        """
        if count <= 0:
            return None
        fds: list[int] = []
        try:
            readEnd, writeEnd = os.pipe2(os.O_CLOEXEC)
            os.close(writeEnd)
            fds.append(readEnd)
            for _ in range(count):
                fds.append(fcntl.fcntl(readEnd, fcntl.F_DUPFD_CLOEXEC, _FIRST_SLOT))
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        st = os.fstat(readEnd)
        slots = cls(
            readEnd,
            tuple(sorted(fds[1:])),
            max(fds) + 1,
            (st.st_dev, st.st_ino),
        )
        os.register_at_fork(after_in_child=slots._afterFork)
        return slots

    def _afterFork(self) -> None:
        # A fork while another thread held the lock would leave it held
        # for good in the child; the slots themselves are still ours there.
        self.lock = threading.Lock()

    def layout(self, fdMap: Mapping[int, int]) -> SlotLayout | None:
        """
        Where C{fdMap} goes in slot mode, or L{None} if it does not fit:
        more distinct parent fds than slots (one slot is kept for the error
        pipe), or a parent fd that is itself a slot or the placeholder.
        Memoised per map (the same few maps come back on every spawn).
        """
        key = tuple(fdMap.items())
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._computeLayout(fdMap)
            if len(self._layouts) >= _LAYOUT_CACHE_SIZE:
                self._layouts.clear()
            self._layouts[key] = layout
        return None if layout is _NO_LAYOUT else layout

    def _computeLayout(self, fdMap: Mapping[int, int]) -> SlotLayout:
        sources = sorted(set(fdMap.values()))
        if (
            len(sources) >= len(self.numbers)
            or self.placeholder in sources
            or not set(sources).isdisjoint(self.numbers)
        ):
            return _NO_LAYOUT
        slotOf = dict(zip(sources, self.numbers, strict=False))
        errFd = self.numbers[len(sources)]
        childMap = {child: slotOf[parent] for child, parent in fdMap.items()}
        return SlotLayout(
            tuple(slotOf.items()), errFd, _encodedProgram(childMap, errFd)
        )

    def diagnose(self, count: int) -> None:
        """
        The extension refused the slots (C{FLAG_SLOTS_FOREIGN}): the
        placeholder or one of the first C{count} slots no longer holds our
        pipe.  Give slot mode up for good, naming the fd.
        """
        if self.placeholderIntact() and self.intact(count):
            self.broken = "a reserved fd was closed or replaced by other code"

    def intact(self, count: int) -> bool:
        """
        Whether the first C{count} slots still hold our placeholder: some
        code closes fds it does not own (a "close everything" loop), and
        then the numbers may belong to someone else, who must never be
        clobbered.  Gives slot mode up for good when they do not.
        """
        for fd in self.numbers[:count]:
            try:
                st = os.fstat(fd)
            except OSError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != self._identity:
                self.broken = f"reserved fd {fd} was closed or replaced by other code"
                return False
        return True

    def placeholderIntact(self) -> bool:
        """
        Whether the placeholder fd is still our pipe.  Gives slot mode up for
        good when it is not.
        """
        try:
            st = os.fstat(self.placeholder)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self._identity:
            self.broken = (
                f"the placeholder fd {self.placeholder} was closed or replaced "
                "by other code"
            )
            return False
        return True

    def close(self) -> None:
        """
        Release every slot and the placeholder (for tests).
        """
        for fd in (*self.numbers, self.placeholder):
            os.close(fd)
        self.broken = "closed"


def _slotCount() -> int:
    value = os.environ.get(SLOTS_ENV, "")
    try:
        return int(value) if value else _DEFAULT_SLOTS
    except ValueError:
        return _DEFAULT_SLOTS


_defaultSlots: FdSlots | None = FdSlots.reserve(_slotCount())


def defaultSlots() -> FdSlots | None:
    """
    The process-wide slots reserved when this module was imported (fd
    numbers are a process-wide resource, best taken early while they are
    still low), or L{None} when slot mode is off.
    """
    return _defaultSlots


#: Encoded fd programs by (child fd map items, error pipe fd): with slot mode
#: the same few maps come back on every spawn, and L{planFdOps} is pure.
_programs: dict[tuple[tuple[tuple[int, int], ...], int], tuple[_Op, ...]] = {}
_PROGRAM_CACHE_SIZE = 256


def _encodedProgram(childMap: Mapping[int, int], errFd: int) -> tuple[_Op, ...]:
    """
    The fd program for C{childMap} keeping C{errFd}, as the extension takes
    it: C{(op, fd, target)} triples.  Memoised (L{planFdOps} is a pure
    function of its arguments); a bad map raises every time, never cached.
    """
    key = (tuple(childMap.items()), errFd)
    ops = _programs.get(key)
    if ops is None:
        program = planFdOps(childMap, keep=(errFd,))
        ops = tuple((int(op.op), op.fd, op.target) for op in program.ops)
        if len(_programs) >= _PROGRAM_CACHE_SIZE:
            _programs.clear()
        _programs[key] = ops
    return ops


@implementer(ISpawner)
class CSpawner:
    """
    The C L{ISpawner}: C{clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)} (or glibc
    C{clone()}) on a separate stack, a C child, C{execve}.

    @ivar lastUsedVfork: Whether the last successful spawn ran its child in
        vfork mode (C{CLONE_VM}); for tests and C{info}.
    @ivar lastMode: The mode (one of L{MODES}) of the last successful
        spawn, or L{None} before the first.
    @ivar lastUsedSlots: Whether the last spawn used slot mode.
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
        self.lastMode: str | None = None
        self.lastUsedSlots = False

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
        self, plan: SpawnPlan, fdMap: Mapping[int, int], ttyName: bytes | None
    ) -> ChildProcess:
        """
        See L{ISpawner.spawn}.
        """
        slots = self._slots
        if slots is not None and slots.broken is None:
            layout = slots.layout(fdMap)
            if layout is not None and slots.lock.acquire(blocking=False):
                try:
                    pid, pidfd, record, flags = self._call(
                        plan,
                        layout.ops,
                        layout.errFd,
                        layout.pairs,
                        slots.bound,
                        slots.placeholderArg,
                    )
                finally:
                    slots.lock.release()
                if not flags & _cspawn.FLAG_SLOTS_FOREIGN:
                    if flags & _cspawn.FLAG_SLOTS_LOST:
                        slots.broken = (
                            "a reserved fd could not be restored after a spawn"
                        )
                    self.lastUsedSlots = True
                    return self._started(plan, pid, pidfd, record, flags)
                # The extension found the placeholder or a slot no longer
                # ours and did nothing: name it, give slot mode up, spawn
                # without.
                slots.diagnose(len(layout.pairs) + 1)
        self.lastUsedSlots = False
        # The child moves the error pipe above every fd the program mentions
        # before running it.
        errFd = max((3, *fdMap, *fdMap.values())) + 1
        pid, pidfd, record, flags = self._call(
            plan, _encodedProgram(fdMap, errFd), errFd, (), 0, None
        )
        return self._started(plan, pid, pidfd, record, flags)

    def _started(
        self, plan: SpawnPlan, pid: int, pidfd: int, record: bytes | None, flags: int
    ) -> ChildProcess:
        """
        The child the extension reported, or the L{SpawnError} it failed
        with (it has been reaped by the extension).
        """
        if record is not None:
            # A malformed record raises MalformedRecord naming the bytes.
            failure = decodeFailure(record)
            raise failure.toError(plan.failureFilename(failure.stage))
        self.lastUsedVfork = vfork = bool(flags & _cspawn.FLAG_VFORK)
        if flags & _cspawn.FLAG_CLONE3:
            self.lastMode = "clone3"
        else:
            self.lastMode = "clone" if vfork else "fork-like"
        return ChildProcess(pid, pidfd if pidfd >= 0 else None)

    def _call(
        self,
        plan: SpawnPlan,
        ops: tuple[_Op, ...],
        errFd: int,
        pairs: tuple[tuple[int, int], ...],
        bound: int,
        placeholder: tuple[int, int, int] | None,
    ) -> tuple[int, int, bytes | None, int]:
        groups = plan.groups
        implicitGroups = groups is None and plan.uid is not None
        if implicitGroups:
            # A uid without groups drops the parent's supplementary groups.
            groups = ()
        try:
            return _cspawn.spawn(
                plan.candidates,
                plan.argv,
                plan.envp,
                plan.cwd,
                ops,
                errFd,
                pairs,
                bound,
                placeholder,
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
            )
        except OSError as e:
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.SPAWN
            ) from None
