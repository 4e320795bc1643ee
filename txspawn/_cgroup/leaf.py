# -*- test-case-name: tests.test_cgroup_leaf -*-
"""
A child's own cgroup: a fresh leaf per spawn, never reused.

L{createLeaf} finds the parent (L{findParent}), enables what the limits
need (L{enableControllers}), sweeps the parent's stale leaves once per
process, makes a leaf named for this process
(C{txspawn-<pid>-<starttime>-<n>}, C{n} counting up for good), writes the
limits into it, and opens it as a directory: that fd is what C{clone3}'s
C{CLONE_INTO_CGROUP} takes.  If any step fails, nothing is left: the leaf
is removed and the fd closed before the error is raised.

The leaf then belongs to the caller (the transport), who reads its
statistics (L{CgroupLeaf.readStats}), kills what the child left
(L{CgroupLeaf.kill}) and removes it once empty
(L{txspawn._cgroup.removal.LeafRemover}, or L{CgroupLeaf.discard} after
a failed spawn).

Making a cgroup is the dearest step of a spawn with one (C{mkdir} on
cgroupfs sets up every controller's state: about 40 to 50 microseconds
here, a third of the whole cost).  So the next leaf can be made ahead,
off the spawn's path, while the reactor waits anyway (L{prepareSpare}, called by the
remover in the reactor turn after a spawn): L{createLeaf} takes that
spare, still fresh and empty -- never one a child has been in -- and
writes the limits of its own spawn into it.  An unused spare is removed
after a second of idleness and when the reactor shuts down
(L{discardSpare}); one left by a process that died is a stale leaf like
any other.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from functools import partial

from txspawn._cgroup.hierarchy import (
    killCgroup,
    processStartTime,
    readText,
    removeCgroup,
    writeText,
)
from txspawn._cgroup.parent import (
    EXHAUSTION_ERRNOS,
    CgroupParent,
    CgroupUnavailable,
    enableControllers,
    findParent,
)
from txspawn._cgroup.stale import sweepStale
from txspawn._cgroup.stats import parsePopulated, readLeafStats
from txspawn._cgroupoptions import Cgroup, CgroupStats
from txspawn._kernel.childhandle import recordCall
from txspawn.errors import ChildSetupStage, SpawnError

__all__ = [
    "DISCARD_ATTEMPTS",
    "CgroupLeaf",
    "createLeaf",
    "discardSpare",
    "leafLimits",
    "prepareSpare",
]

#: How many times L{CgroupLeaf.discard} tries C{rmdir} while the kernel
#: still counts a killed process in the leaf.
DISCARD_ATTEMPTS = 1000

#: Numbers the leaves of this process (never reused).
_SEQUENCE = itertools.count()
#: This process's start time, by pid (a forked child has its own).
_START: dict[int, int] = {}
#: Serialises taking and making spare leaves (spawns may come from
#: several threads).
_SPARE_LOCK = threading.Lock()


def _leafPrefix() -> str:
    pid = os.getpid()
    start = _START.get(pid)
    if start is None:
        start = processStartTime()
        if start is None:
            raise CgroupUnavailable(
                "this process's start time cannot be read from /proc/self/stat "
                "(it names the process's cgroups)",
                "mount /proc",
            )
        _START.clear()
        _START[pid] = start
    return f"txspawn-{pid}-{start}-"


def leafLimits(options: Cgroup) -> list[tuple[str, str]]:
    """
    The files of a leaf to write, and what, for the limits of C{options}.
    """
    limits = []
    if options.memoryMax is not None:
        limits.append(("memory.max", str(options.memoryMax)))
    if options.memoryHigh is not None:
        limits.append(("memory.high", str(options.memoryHigh)))
    if options.pidsMax is not None:
        limits.append(("pids.max", str(options.pidsMax)))
    if options.cpuMax is not None:
        quota, period = options.cpuMax
        limits.append(("cpu.max", f"{'max' if quota is None else quota} {period}"))
    if options.ioWeight is not None:
        limits.append(("io.weight", f"default {options.ioWeight}"))
    return limits


class CgroupLeaf:
    """
    One child's cgroup.

    @ivar parent: The parent it was made in.
    @ivar path: Its path.
    @ivar name: Its name (the last part of C{path}).
    @ivar dirFd: Its directory, opened C{O_RDONLY | O_DIRECTORY |
        O_CLOEXEC} (for C{clone3}'s C{cgroup} field); C{-1} once closed.
    @ivar cpuStatFd: Its C{cpu.stat}, opened C{O_RDONLY | O_CLOEXEC} when
        it was made, or C{-1}: read with C{pread} at the child's exit.
    @ivar eventsFd: Its C{cgroup.events}, the same way, or C{-1}.
    @ivar controllers: The controllers enabled for it.
    @ivar placement: How the child was placed in it (C{"clone"} or
        C{"procs"}), set by the engine through L{placed}; L{None} before.
    @ivar placementNote: Why the placement is not C{"clone"}, else L{None}.
    """

    def __init__(
        self,
        parent: CgroupParent,
        path: str,
        dirFd: int,
        controllers: frozenset[str],
        cpuStatFd: int = -1,
        eventsFd: int = -1,
    ) -> None:
        self.parent = parent
        self.path = path
        self.name = os.path.basename(path)
        self.dirFd = dirFd
        self.cpuStatFd = cpuStatFd
        self.eventsFd = eventsFd
        self.controllers = controllers
        self.placement: str | None = None
        self.placementNote: str | None = None

    def __repr__(self) -> str:
        return f"<CgroupLeaf {self.path} fd={self.dirFd} {self.placement}>"

    def placed(self, placement: str, note: str | None) -> None:
        """
        Record how the child was placed in the leaf.
        """
        self.placement = placement
        self.placementNote = note

    def openProcs(self) -> int:
        """
        A new fd on the leaf's C{cgroup.procs}, for writing (the caller
        closes it): a child writes C{"0"} to it to move itself in.
        """
        return os.open(
            os.path.join(self.path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC
        )

    def kill(self) -> None:
        """
        Kill every process in the leaf (C{cgroup.kill}); nothing if it is
        gone.
        """
        killCgroup(self.path)

    def populated(self) -> bool:
        """
        Whether any process is still in the leaf (C{cgroup.events}); a
        removed leaf is not.
        """
        try:
            if self.eventsFd >= 0:
                # A cgroup file is generated anew by each read from its
                # start: no open or close on the child's exit path.
                return parsePopulated(os.pread(self.eventsFd, 4096, 0).decode())
            return parsePopulated(readText(os.path.join(self.path, "cgroup.events")))
        except FileNotFoundError:
            return False

    def readStats(self) -> CgroupStats:
        """
        The leaf's statistics now.

        @raise OSError: The leaf is gone.
        """
        placement = self.placement if self.placement is not None else "unplaced"
        if self.dirFd >= 0:
            return readLeafStats(
                self.path,
                self.dirFd,
                self.controllers,
                placement,
                self.placementNote,
                self.cpuStatFd,
            )
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return readLeafStats(
                self.path, fd, self.controllers, placement, self.placementNote
            )
        finally:
            os.close(fd)

    def closeFd(self) -> None:
        """
        Close L{dirFd}, L{cpuStatFd} and L{eventsFd} (once; again does
        nothing).
        """
        fd, self.dirFd = self.dirFd, -1
        statFd, self.cpuStatFd = self.cpuStatFd, -1
        eventsFd, self.eventsFd = self.eventsFd, -1
        for each in (eventsFd, statFd, fd):
            if each >= 0:
                os.close(each)

    def tryRemove(self) -> bool:
        """
        Close L{dirFd} and remove the leaf.

        @return: C{True} when it is gone, C{False} while the kernel still
            counts a process in it (C{EBUSY}: try again later).
        """
        self.closeFd()
        return removeCgroup(self.path)

    def discard(self) -> None:
        """
        Undo L{createLeaf} after a failed spawn: kill what is in the leaf,
        close its fd and remove it, trying a bounded number of times while
        it is busy.  Never raises: a leaf that cannot be removed is left
        for the stale sweep of a later txspawn process.
        """
        try:
            self.kill()
        except OSError:
            pass
        self.closeFd()
        for _ in range(DISCARD_ATTEMPTS):
            try:
                if removeCgroup(self.path):
                    return
            except OSError:
                return
            os.sched_yield()


def createLeaf(options: Cgroup) -> CgroupLeaf:
    """
    Make a fresh leaf for one child, with the limits of C{options}.

    @raise txspawn._cgroup.parent.CgroupUnavailable: No parent can be had
        (the caller decides whether that fails the spawn).
    @raise txspawn.errors.UnsupportedFeature: A limit needs a controller the
        parent does not offer (always raised).
    @raise SpawnError: A syscall failed (stage L{ChildSetupStage.CGROUP});
        nothing is left behind.
    """
    try:
        parent = findParent(options.parent)
        needed = options.controllersNeeded()
        if needed:
            enableControllers(parent, needed, _limitNames(options))
        if not parent.swept:
            # Marked only once it was done: a sweep that could not list the
            # parent (no fd free) is tried again by the next spawn.
            parent.swept = sweepStale(parent) is not None
        # Read once per process (its start time names its leaves).
        _leafPrefix()
    except SpawnError:
        raise
    except OSError as e:
        # What is read once per process or parent (the mount, our start
        # time, the parent's files).  With no fd (or memory) free, the
        # spawn fails as any spawn does under exhaustion; any other error
        # means no cgroup can be had here (a best-effort cgroup then runs
        # the child without one).
        if e.errno in EXHAUSTION_ERRNOS:
            raise _cgroupError(e, e.filename or options.parent or "") from None
        raise CgroupUnavailable(
            f"{e.filename or 'a cgroup file'} cannot be read: {e.strerror}",
            "check that /proc and the cgroup v2 hierarchy are mounted",
        ) from None
    made: list[LeafFiles] = []
    try:
        # Taken inside the try: an interrupt right after still finds it.
        with _SPARE_LOCK:
            if parent.spare is not None:
                made.append(parent.spare)
                parent.spare = None
        if not made:
            made.append(_makeLeaf(parent))
        files = made[0]
        for name, value in leafLimits(options):
            filename = os.path.join(files[0], name)
            try:
                writeText(filename, value)
            except OSError as e:
                raise _cgroupError(e, filename) from None
        return CgroupLeaf(parent, files[0], files[1], parent.enabled, *files[2:])
    except BaseException:
        for files in made:
            _unmake(*files)
        raise


#: A leaf as made: its path, and fds on its directory, C{cpu.stat} and
#: C{cgroup.events}.
LeafFiles = tuple[str, int, int, int]


def _makeLeaf(parent: CgroupParent) -> LeafFiles:
    """
    Make a fresh leaf in C{parent} and open it.

    Nothing is left if this raises, an interrupt included: each fd is
    recorded by C as it is opened (L{recordCall}), and the directory is
    removed.

    @raise SpawnError: (stage L{ChildSetupStage.CGROUP}).
    """
    prefix = os.path.join(parent.path, _leafPrefix())
    fds: list[int] = []
    path = ""
    try:
        while True:
            path = prefix + str(next(_SEQUENCE))
            try:
                os.mkdir(path)
            except FileExistsError:
                # Left by an earlier process that had our pid and start
                # time (another pid namespace); never reuse it.
                continue
            break
        dirFd = recordCall(
            fds, os.open, path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        )
        inLeaf = partial(os.open, dir_fd=dirFd)
        recordCall(fds, inLeaf, "cpu.stat", os.O_RDONLY | os.O_CLOEXEC)
        recordCall(fds, inLeaf, "cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException as e:
        _unmake(path, *reversed(fds))
        if isinstance(e, OSError):
            raise _cgroupError(e, path) from None
        raise
    return path, fds[0], fds[1], fds[2]


def _unmake(path: str, *fds: int) -> None:
    """
    Undo L{_makeLeaf} for a leaf no process was ever in: close its fds
    (those given), remove it (if it was made).
    """
    for fd in fds:
        if fd >= 0:
            os.close(fd)
    if not path:
        return
    try:
        removeCgroup(path)
    except OSError:
        pass


def prepareSpare(parent: CgroupParent) -> None:
    """
    Make C{parent}'s next leaf now, unless it has one ready: the next
    L{createLeaf} in this parent takes it instead of making its own.

    @raise SpawnError: The leaf could not be made (stage
        L{ChildSetupStage.CGROUP}); nothing is left, and the next spawn
        makes its own.
    """
    if parent.spare is not None:
        return
    made = [_makeLeaf(parent)]
    try:
        with _SPARE_LOCK:
            if parent.spare is None:
                parent.spare = made.pop()
    finally:
        # Another thread made one meanwhile (or an interrupt came).
        for files in made:
            _unmake(*files)


def discardSpare(parent: CgroupParent) -> None:
    """
    Remove C{parent}'s spare leaf, if it has one.
    """
    with _SPARE_LOCK:
        spare, parent.spare = parent.spare, None
    if spare is not None:
        _unmake(*spare)


def _limitNames(options: Cgroup) -> list[str]:
    """
    The names of the limits C{options} sets.

    A function of its own, not a comprehension in L{createLeaf}: CPython
    3.13 inlines a comprehension, and the last backward jump of its loop
    would fall outside the C{try} around it (tests/test_exceptiontable.py).
    """
    return [name for name, value in _limitOptions(options) if value is not None]


def _limitOptions(options: Cgroup) -> list[tuple[str, object]]:
    return [
        ("memoryMax", options.memoryMax),
        ("memoryHigh", options.memoryHigh),
        ("pidsMax", options.pidsMax),
        ("cpuMax", options.cpuMax),
        ("ioWeight", options.ioWeight),
    ]


def _cgroupError(e: OSError, filename: str) -> SpawnError:
    return SpawnError.fromErrno(e.errno or errno.EIO, ChildSetupStage.CGROUP, filename)
