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
exec).  The fds the child needs are usually above the bound, so they travel
another way: once per process, as early as possible (when this module is
imported, normally before the application has opened many fds), txspawn
reserves one low fd number (L{FdSlots}), the receiving end of a Unix
socket pair.  Each spawn that fits then, under a lock, has the extension
send the fds the child needs through the socket (C{SCM_RIGHTS}) and clone;
the child unshares C{[0, reserved fd]}, checks with one C{fstat} that the
reserved fd is still that socket -- race-free: its table is private by
then -- and receives them onto the lowest numbers, which the fd program was
planned with.  The parent never writes a fixed fd number, so code that
closes the reserved fd and reuses the number (a bug of that code) can never
have its file replaced or handed to a child: the spawn fails with
L{txspawn.errors.ReservedFdError} instead, and slot mode is given up.
Spawns that do not fit (too many fds, or the lock is busy because another
thread is spawning) take the ordinary path, which copies the fd table.  See
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
import socket
import threading
from collections.abc import Mapping

from attrs import define, field
from zope.interface import implementer

from txspawn._engine.cbuild import buildFailureReason
from txspawn._kernel.childhandle import ChildProcess, recordCall
from txspawn._plan.failurerecord import decodeFailure
from txspawn._plan.fdremap import planFdOps
from txspawn._plan.plan import SpawnPlan
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
#: The environment variable giving the most fds one spawn sends in slot mode
#: (default 16; C{0} turns slot mode off).
SLOTS_ENV = "TXSPAWN_FD_SLOTS"
_DEFAULT_SLOTS = 16
#: One fd operation as the extension takes it: C{(op, fd, target)}.
_Op = tuple[int, int, int]
#: What the extension's C{spawn} returns: C{(pid, pidfd, record, flags)}.
_Outcome = tuple[int, int, bytes | None, int]
#: The reserved fd is the lowest free number from 3 up, so that a thread
#: redirecting stdio (C{dup2} onto 0, 1 or 2, legitimate even while those
#: are closed) never hits it.
_FIRST_SLOT = 3


try:
    from txspawn import _cspawn
except ImportError as e:  # pragma: no cover - exercised when not built
    _why = buildFailureReason()
    raise ImportError(f"{e}; {_why}" if _why else str(e)) from e


@define(frozen=True)
class SlotLayout:
    """
    How one fd map is sent in slot mode: a pure function of the map and the
    reserved fd's number, so L{FdSlots.layout} computes it once per distinct
    map.

    @ivar sources: The distinct parent fds, ascending: the extension sends
        them in this order, and the child receives the I{i}th on the I{i}th
        lowest number that is not the reserved fd.
    @ivar ops: The child's fd program over the received numbers (see
        L{_encodedProgram}).
    """

    sources: tuple[int, ...]
    ops: tuple[_Op, ...]


#: L{FdSlots.layout}'s answer for a map that does not fit.
_NO_LAYOUT = SlotLayout((), ())
_LAYOUT_CACHE_SIZE = 256


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


@define
class FdSlots:
    """
    The reserved low fd and its socket (see the module docstring).

    @ivar number: The reserved fd: the receiving end of a C{SOCK_SEQPACKET}
        socket pair, close-on-exec, the lowest free number from 3 up when it
        was reserved.  Children take their fds from it.
    @ivar sender: The sending end (any number).
    @ivar drain: A duplicate of the receiving end (any number): the
        extension empties the socket through it when a child did not take
        its message.
    @ivar capacity: The most distinct fds one spawn sends.
    @ivar bound: C{number + 1}: the child unshares C{[0, bound)}.
    @ivar pid: The process the socket was made in.
    @ivar reservedArg: C{(number, st_dev, st_ino, sender, st_dev, st_ino,
        drain, pid)}, as the extension takes it.
    @ivar broken: Why slot mode was given up, or L{None}.
    """

    number: int
    sender: int
    drain: int
    capacity: int
    pid: int
    _identity: tuple[int, int]
    _senderIdentity: tuple[int, int]
    lock: threading.Lock = field(factory=threading.Lock)
    broken: str | None = None
    _layouts: dict[tuple[tuple[int, int], ...], SlotLayout] = field(factory=dict)
    bound: int = field(init=False)
    reservedArg: tuple[int, int, int, int, int, int, int, int] = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.bound = self.number + 1
        # Built once: it is passed on every slot-mode spawn.
        self.reservedArg = (
            self.number,
            *self._identity,
            self.sender,
            *self._senderIdentity,
            self.drain,
            self.pid,
        )

    @classmethod
    def reserve(cls, count: int) -> FdSlots | None:
        """
        Reserve the low fd, for spawns sending up to C{count} fds.

        @return: The slots, or L{None} when C{count} is 0 or the fds
            cannot be had (C{EMFILE}).
        """
        if count <= 0:
            return None
        slots = cls._make(min(count, _cspawn.MAX_SLOT_FDS))
        if slots is not None:
            os.register_at_fork(after_in_child=slots._afterFork)
        return slots

    @classmethod
    def _make(cls, capacity: int) -> FdSlots | None:
        fds: list[int] = []
        try:
            a, b = socket.socketpair(
                socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
            )
            fds += [b.detach(), a.detach()]
            fds.append(fcntl.fcntl(fds[1], fcntl.F_DUPFD_CLOEXEC, _FIRST_SLOT))
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        sender, drain, number = fds
        if number > drain:
            # The lower of the two receiving ends is the reserved one.
            number, drain = drain, number
        return cls(
            number,
            sender,
            drain,
            capacity,
            os.getpid(),
            _identity(number),
            _identity(sender),
        )

    def _afterFork(self) -> None:
        # A fork while another thread held the lock would leave it held
        # for good in the child.
        self.lock = threading.Lock()
        if self.broken is not None:
            return
        # The socket is shared with the parent process now: a child of
        # either could take the other's fds.  The child process gets its
        # own (only this thread runs here, so the numbers cannot change
        # between the check and the close).
        fresh = self._make(self.capacity)
        for fd, identity in (
            (self.number, self._identity),
            (self.sender, self._senderIdentity),
            (self.drain, self._identity),
        ):
            try:
                if _identity(fd) == identity:
                    os.close(fd)
            except OSError:
                pass
        if fresh is None:
            self.broken = "the reserved fd could not be made again after fork()"
            return
        for name in ("number", "sender", "drain", "pid", "_identity"):
            setattr(self, name, getattr(fresh, name))
        self._senderIdentity = fresh._senderIdentity
        self._layouts.clear()
        self.__attrs_post_init__()

    def layout(self, fdMap: Mapping[int, int]) -> SlotLayout | None:
        """
        How C{fdMap} is sent in slot mode, or L{None} if it does not fit:
        no fd at all, more distinct parent fds than L{capacity}, or a
        parent fd that is one of the socket's.  Memoised per map (the same
        few maps come back on every spawn).
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
            not sources
            or len(sources) > self.capacity
            or not {self.number, self.sender, self.drain}.isdisjoint(sources)
        ):
            return _NO_LAYOUT
        # The child closes everything below the reserved fd, then receives
        # onto the lowest free numbers: 0, 1, ... skipping the reserved fd.
        received = {
            parent: i if i < self.number else i + 1 for i, parent in enumerate(sources)
        }
        childMap = {child: received[parent] for child, parent in fdMap.items()}
        return SlotLayout(tuple(sources), _encodedProgram(childMap, None))

    def stolen(self, fd: int) -> None:
        """
        The extension found that reserved fd C{fd} is no longer ours: other
        code closed it, and the number may now be someone else's.  Give
        slot mode up for good, naming it.
        """
        self.broken = f"reserved fd {fd} was closed or replaced by other code"

    def close(self) -> None:
        """
        Release the socket (for tests).
        """
        for fd in (self.number, self.sender, self.drain):
            os.close(fd)
        self.broken = "closed"


def _reservedFdClosed(record: bytes, slots: FdSlots) -> bool:
    """
    Whether C{record} says that one of the slots' socket fds was merely
    closed (C{EBADF}: a "close every fd" routine, say), not replaced by
    another file.  Then slot mode is given up and the caller spawns the
    ordinary way, with no error: nobody's file was on the number when it was
    looked at (in the child's own copy of the fd table, or before anything
    was sent), and txspawn never touches that number again.  The child, if
    any, failed before running the program and has been reaped.
    """
    failure = decodeFailure(record)
    if failure.stage is ChildSetupStage.RESERVED_FD and failure.errno == errno.EBADF:
        slots.stolen(failure.detail)
        return True
    return False


def _slotCount() -> int:
    value = os.environ.get(SLOTS_ENV, "")
    try:
        return int(value) if value else _DEFAULT_SLOTS
    except ValueError:
        return _DEFAULT_SLOTS


_defaultSlots: FdSlots | None = FdSlots.reserve(_slotCount())


def defaultSlots() -> FdSlots | None:
    """
    The process-wide reserved fd, made when this module was imported (fd
    numbers are a process-wide resource, best taken early while they are
    still low), or L{None} when slot mode is off.
    """
    return _defaultSlots


#: Encoded fd programs by (child fd map items, error pipe fd): the same few
#: maps come back on every spawn, and L{planFdOps} is pure.
_programs: dict[tuple[tuple[tuple[int, int], ...], int | None], tuple[_Op, ...]] = {}
_PROGRAM_CACHE_SIZE = 256


def _encodedProgram(childMap: Mapping[int, int], errFd: int | None) -> tuple[_Op, ...]:
    """
    The fd program for C{childMap} keeping C{errFd} (L{None} in slot mode,
    which has no error pipe), as the extension takes it: C{(op, fd,
    target)} triples.  Memoised (L{planFdOps} is a pure
    function of its arguments); a bad map raises every time, never cached.
    """
    key = (tuple(childMap.items()), errFd)
    ops = _programs.get(key)
    if ops is None:
        program = planFdOps(childMap, keep=() if errFd is None else (errFd,))
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

        An exception escaping from here -- including the C{KeyboardInterrupt}
        a signal handler raises right after the extension returned -- leaves
        no child behind: what the extension returns is recorded before any
        bytecode runs (L{recordCall}), and a child it started is killed,
        reaped and its pidfd closed unless it is returned.  (The extension
        itself does the same for a child whose result it could not build.)
        """
        started: list[_Outcome] = []
        try:
            return self._spawnRecorded(plan, fdMap, started)
        except BaseException:
            # One call to C, which kills, reaps and closes everything
            # started holds (a record means a failed child, reaped by the
            # extension): no signal handler can run inside it, so a second
            # interrupt cannot stop the clean-up half-way, and nothing runs
            # before it that could be interrupted first.
            _cspawn.discard(started)
            raise

    def _spawnRecorded(
        self, plan: SpawnPlan, fdMap: Mapping[int, int], started: list[_Outcome]
    ) -> ChildProcess:
        """
        L{spawn}, each outcome of the extension appended to C{started}.
        """
        slots = self._slots
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
                    )
            finally:
                if held and held[0]:
                    slots.lock.release()
            if outcome is not None:
                pid, pidfd, record, flags = outcome
                if flags & _cspawn.FLAG_SLOTS_FOREIGN:
                    # Forked without the os.register_at_fork hook: the
                    # socket is shared with the other process.
                    slots.broken = "the process was forked; the reserved fd is shared"
                elif not flags & _cspawn.FLAG_SLOTS_UNUSABLE:
                    if record is None or not _reservedFdClosed(record, slots):
                        self.lastUsedSlots = True
                        return self._started(plan, pid, pidfd, record, flags, slots)
        self.lastUsedSlots = False
        # The child moves the error pipe above every fd the program mentions
        # before running it.
        errFd = max((3, *fdMap, *fdMap.values())) + 1
        pid, pidfd, record, flags = self._call(
            started, plan, _encodedProgram(fdMap, errFd), errFd, (), 0, None
        )
        return self._started(plan, pid, pidfd, record, flags)

    def _started(
        self,
        plan: SpawnPlan,
        pid: int,
        pidfd: int,
        record: bytes | None,
        flags: int,
        slots: FdSlots | None = None,
    ) -> ChildProcess:
        """
        The child the extension reported, or the L{SpawnError} it failed
        with (it has been reaped by the extension).
        """
        if record is not None:
            # A malformed record raises MalformedRecord naming the bytes.
            failure = decodeFailure(record)
            if failure.stage is ChildSetupStage.RESERVED_FD and slots is not None:
                # The number holds someone else's file (ESTALE).
                slots.stolen(failure.detail)
            raise failure.toError(plan.failureFilename(failure.stage))
        self.lastUsedVfork = vfork = bool(flags & _cspawn.FLAG_VFORK)
        if flags & _cspawn.FLAG_CLONE3:
            self.lastMode = "clone3"
        else:
            self.lastMode = "clone" if vfork else "fork-like"
        return ChildProcess(pid, pidfd if pidfd >= 0 else None)

    def _call(
        self,
        started: list[_Outcome],
        plan: SpawnPlan,
        ops: tuple[_Op, ...],
        errFd: int,
        sources: tuple[int, ...],
        bound: int,
        reserved: tuple[int, int, int, int, int, int, int, int] | None,
    ) -> tuple[int, int, bytes | None, int]:
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
            )
        except OSError as e:
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.SPAWN
            ) from None
