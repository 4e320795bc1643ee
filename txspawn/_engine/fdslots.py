# -*- test-case-name: tests.test_cspawn -*-
"""
Slot mode: the reserved low fd through which the C engine
(L{txspawn._engine.cengine}) sends a child its fds, so that the child
need not copy the parent's fd table.

A child cloned with C{CLONE_FILES} starts on the parent's own fd table and,
as its very first step, keeps only fds below a bound
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
planned with (L{SlotLayout}).  The parent never writes a fixed fd number, so
code that closes the reserved fd and reuses the number (a bug of that code)
can never have its file replaced or handed to a child: the spawn fails with
L{txspawn.errors.ReservedFdError} instead, and slot mode is given up.
Spawns that do not fit (too many fds, or the lock is busy because another
thread is spawning) take the ordinary path, which copies the fd table.  See
C{docs/design/engines.rst}.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import threading
from collections.abc import Mapping

from attrs import define, field

from txspawn._engine.cextension import _cspawn
from txspawn._engine.cfdprogram import EncodedOp, encodedProgram
from txspawn._plan.failurerecord import decodeFailure
from txspawn.errors import ChildSetupStage

__all__ = [
    "SLOTS_ENV",
    "FdSlots",
    "SlotLayout",
    "defaultSlots",
    "reservedFdClosed",
]

#: The environment variable giving the most fds one spawn sends in slot mode
#: (default 16; C{0} turns slot mode off).
SLOTS_ENV = "TXSPAWN_FD_SLOTS"
_DEFAULT_SLOTS = 16
#: The reserved fd is the lowest free number from 3 up, so that a thread
#: redirecting stdio (C{dup2} onto 0, 1 or 2, legitimate even while those
#: are closed) never hits it.
_FIRST_SLOT = 3


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
        L{encodedProgram}).
    """

    sources: tuple[int, ...]
    ops: tuple[EncodedOp, ...]


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
        return SlotLayout(tuple(sources), encodedProgram(childMap, None))

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


def reservedFdClosed(record: bytes, slots: FdSlots) -> bool:
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
