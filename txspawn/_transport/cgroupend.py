# -*- test-case-name: tests.test_cgroup_transport,tests.test_cgroup_tree -*-
"""
A child's cgroup as its transport sees it: the leaf made first thing in a
spawn, and its end.

A spawn with C{cgroup=} creates the child's leaf before anything else
(L{openLeaf}: before the pipes or the pty, so that a spawn that cannot
have its cgroup fails having opened nothing).  A required cgroup that is
unavailable (no cgroup v2, no delegated parent: see
L{txspawn._cgroup.parent.findParent}) is an
L{txspawn.errors.UnsupportedFeature} naming C{cgroup}; a best-effort one
lets the child run without a cgroup, and the reason is logged and kept on
the transport (C{cgroupUnavailable}).

The end of the leaf, once the child is reaped, is
L{txspawn._transport.lifecycle.ProcessLifecycle}'s: the statistics are
read while the leaf still holds whatever the child left behind (L{readStats}),
before the exit reason is made; then, when the C{Cgroup} says
C{killOnExit} (or a termination was in progress, or the spawn is being
undone), C{cgroup.kill} takes whatever is left; then the leaf goes to the
reactor's L{txspawn._cgroup.removal.LeafRemover}, which tells the
transport when the tree is empty (L{TreeEnd}) and removes the leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.logger import Logger, LogLevel

from txspawn._cgroup.leaf import CgroupLeaf, createLeaf
from txspawn._cgroup.parent import CgroupUnavailable
from txspawn._kernel.childhandle import recordCall
from txspawn.errors import UnsupportedFeature
from txspawn.interfaces import IProcessTreeObserver

if TYPE_CHECKING:
    from twisted.internet.interfaces import IProcessProtocol

    from txspawn._cgroup.removal import LeafRemover
    from txspawn._cgroupoptions import Cgroup, CgroupStats

__all__ = ["CgroupMembers", "ChildCgroup", "TreeEnd", "openLeaf", "readStats"]

_log = Logger()


def openLeaf(cgroup: Cgroup | None, into: list[CgroupLeaf]) -> str | None:
    """
    Create the leaf of a child about to be spawned with C{cgroup}.

    The leaf is appended to C{into} by C (L{recordCall}) as soon as
    L{createLeaf} returns, so that the caller's clean-up finds it even if
    a signal handler raises right after.

    @param cgroup: The spawn's C{cgroup} option (C{SpawnPlan.cgroup}).
    @param into: Where the new leaf goes (the caller discards it if the
        spawn fails).
    @return: C{None} when there is a leaf or none was asked for; for a
        best-effort C{cgroup} (C{required=False}) that cannot be had here,
        why not (also logged as a warning).
    @raise txspawn.errors.UnsupportedFeature: A required cgroup cannot be
        had here (its message says why and what to do), or a limit needs a
        controller the hierarchy does not offer (even for a best-effort
        C{cgroup}: a limit asked for is never silently dropped).
    @raise txspawn.errors.SpawnError: The leaf could not be made (stage
        C{CGROUP}).
    """
    if cgroup is None:
        return None
    try:
        recordCall(into, createLeaf, cgroup)
    except CgroupUnavailable as e:
        if cgroup.required:
            raise UnsupportedFeature("cgroup", str(e)) from None
        reason = str(e)
        _log.warn(
            "txspawn: the child runs without a cgroup of its own "
            "(Cgroup(required=False)): {reason}",
            reason=reason,
        )
        return reason
    return None


def readStats(leaf: CgroupLeaf) -> CgroupStats | None:
    """
    Read the statistics of C{leaf} at the child's reaping.

    @return: The statistics, or C{None} if they could not be read (logged:
        the exit is reported anyway).
    """
    try:
        return leaf.readStats()
    except OSError:
        _log.failure(
            "txspawn: could not read the statistics of cgroup {path}",
            level=LogLevel.error,
            path=leaf.path,
        )
        return None


class TreeEnd:
    """
    The end of the tree of one child's cgroup: the leaf's remover calls
    L{emptied} when every process in it has exited, and the protocol, if it
    provides L{IProcessTreeObserver}, gets C{processTreeEnded} once, after
    C{processEnded} (L{processEnded} says when that happened).

    @ivar stats: The statistics read when the tree ended, once it has.
    """

    def __init__(self, proto: IProcessProtocol | None) -> None:
        """
        @param proto: The transport's protocol (told only if it provides
            L{IProcessTreeObserver}).
        """
        self._observer: IProcessTreeObserver | None = (
            cast(IProcessTreeObserver, proto)
            if proto is not None and IProcessTreeObserver.providedBy(proto)
            else None
        )
        self._processEnded = False
        self.stats: CgroupStats | None = None

    @property
    def emptiedAlready(self) -> bool:
        """
        Whether the tree has ended.
        """
        return self.stats is not None

    def emptied(self, stats: CgroupStats) -> None:
        """
        The remover saw the cgroup empty and read its final statistics.
        """
        if self.stats is not None:
            return
        self.stats = stats
        if self._processEnded:
            self._tell()

    def processEnded(self) -> None:
        """
        C{processEnded} was delivered (or would have been, without a
        protocol).
        """
        self._processEnded = True
        if self.stats is not None:
            self._tell()

    def _tell(self) -> None:
        # Forgotten before the call: told exactly once.
        observer, self._observer = self._observer, None
        stats = self.stats
        if observer is None or stats is None:
            return
        try:
            observer.processTreeEnded(stats)
        except BaseException:
            _log.failure("while calling processTreeEnded:", level=LogLevel.critical)


def noCgroupError(pid: int | None, unavailable: str | None) -> ValueError:
    """
    The error of C{killTree} on a transport whose child has no cgroup.

    @param pid: The child's pid.
    @param unavailable: Why a best-effort cgroup could not be had, if so.
    """
    why = (
        f" ({unavailable})"
        if unavailable is not None
        else ": spawn it with cgroup=Cgroup(...)"
    )
    return ValueError(f"the child (pid {pid}) has no cgroup of its own{why}")


class CgroupMembers:
    """
    What a transport adds for the child's cgroup (C{cgroup=}): mixed into
    L{txspawn._transport.lifecycle.ProcessLifecycle}.

    @ivar cgroupUnavailable: Why a child spawned with a best-effort
        C{cgroup=Cgroup(required=False)} runs without a cgroup of its own
        (also logged as a warning), else C{None}.
    """

    cgroupUnavailable: str | None = None
    #: The child's cgroup (set with the child), if it has one.
    _cgroup: ChildCgroup | None = None

    @property
    def cgroupPath(self) -> str | None:
        """
        The path of the child's cgroup (its leaf under the cgroup v2
        mount) while it exists: C{None} for a child without one, and once
        every process in it has exited and it is being removed.

        @since: txspawn 0.1
        """
        return None if self._cgroup is None else self._cgroup.path

    @property
    def cgroupStats(self) -> CgroupStats | None:
        """
        The statistics of the child's cgroup: those read when the child
        was reaped (the exit reason's C{cgroup}), replaced by the final
        ones once every process of the cgroup has exited (those given to
        C{processTreeEnded}); C{None} before the child is reaped, and for a
        child without a cgroup.

        @since: txspawn 0.1
        """
        return None if self._cgroup is None else self._cgroup.stats

    def killTree(self) -> None:
        """
        Kill every process in the child's cgroup now (C{cgroup.kill}:
        C{SIGKILL} to the child and to all its descendants, those that
        left its session or process group included), whether or not the
        child was reaped already.  Nothing is done once every process of
        the cgroup has exited.

        @raise ValueError: The child has no cgroup of its own (spawned
            without C{cgroup=}, or a best-effort one was unavailable: see
            L{cgroupUnavailable}).
        @raise OSError: C{cgroup.kill} could not be written.

        @since: txspawn 0.1
        """
        if self._cgroup is None:
            pid = getattr(self, "spawnedPid", None)
            raise noCgroupError(pid, self.cgroupUnavailable)
        self._cgroup.killTree()


class ChildCgroup:
    """
    The cgroup of one child, as its transport holds it: the leaf, the
    statistics read at the reaping, the kill and hand-over to the remover
    that follow it, and the end of the tree.

    Every step is resumable, as the transport's C{_childExited} that
    calls them (L{txspawn._kernel.childhandle.completeCleanup}): run again
    after an interrupt, each does what is left, once.

    @ivar leaf: The leaf.
    @ivar options: The spawn's C{cgroup} option.
    @ivar reapStats: The statistics read at the reaping (every exit reason
        carries them), once read.
    @ivar killDue: Whether what is left in the leaf is killed at the
        reaping whatever C{options.killOnExit} says: a termination was in
        progress, or the spawn is being undone.
    @ivar treeEnd: The end of the tree (its protocol set by L{connect}).
    """

    def __init__(
        self,
        leaf: CgroupLeaf,
        options: Cgroup,
        getRemover: Callable[[], LeafRemover] | None,
    ) -> None:
        """
        @param getRemover: Gives the reactor's remover; C{None}: the leaf
            is removed at the reaping with a bounded wait (a transport made
            outside a spawner).
        """
        self.leaf = leaf
        self.options = options
        self._getRemover = getRemover
        self.reapStats: CgroupStats | None = None
        self.killDue = False
        self._handedOver = False
        self._emptyAtReap = False
        self.treeEnd = TreeEnd(None)

    @property
    def path(self) -> str | None:
        """
        The leaf's path until the tree has ended (then it is being
        removed).
        """
        return None if self.treeEnd.emptiedAlready else self.leaf.path

    @property
    def stats(self) -> CgroupStats | None:
        """
        The latest statistics: the final ones once the tree ended, else
        those of the reaping.
        """
        final = self.treeEnd.stats
        return self.reapStats if final is None else final

    def connect(self, proto: IProcessProtocol | None) -> None:
        """
        The protocol is connected: it hears of the end of the tree if it
        provides L{IProcessTreeObserver}.
        """
        self.treeEnd = TreeEnd(proto)

    def killTree(self) -> None:
        """
        C{cgroup.kill} now, unless the tree has ended.
        """
        if self.path is not None:
            self.leaf.kill()

    def reaped(self) -> None:
        """
        The child was reaped: read the statistics (before anything is
        killed, and before the exit reason is made), then kill what is left
        if asked to (C{killOnExit}, L{killDue}), then hand the leaf to the
        remover, which removes it once it is empty and tells L{treeEnd}.
        """
        leaf = self.leaf
        if self.reapStats is None:
            # Looked at first: an empty cgroup stays empty (nothing of ours
            # can enter it any more), so the statistics read next are then
            # the final ones.
            self._emptyAtReap = not leaf.populated()
            self.reapStats = readStats(leaf)
        if self._handedOver:
            return
        if self._emptyAtReap and self.reapStats is not None:
            if self._removedAtOnce(leaf):
                return
        if self.killDue or self.options.killOnExit:
            try:
                leaf.kill()
            except OSError:
                _log.failure(
                    "txspawn: could not kill the cgroup {path}",
                    level=LogLevel.error,
                    path=leaf.path,
                )
        # Marked just before: a hand-over interrupted half-way is not done
        # twice (the remover's shutdown removes what it holds).
        self._handedOver = True
        getRemover = self._getRemover
        if getRemover is None:
            leaf.discard()
            if self.reapStats is not None:
                self.treeEnd.emptied(self.reapStats)
            return
        getRemover().removeWhenEmpty(leaf, self.treeEnd.emptied, self.reapStats)

    def _removedAtOnce(self, leaf: CgroupLeaf) -> bool:
        """
        The common end, made cheap: the child left nothing behind (its
        leaf was empty when it was reaped, before the statistics were
        read), so its leaf is removed here, with no kill, no watch and no
        second read of the statistics: those read are the final ones.

        @return: Whether the leaf is gone (C{False}: it could not be
            removed; the usual way takes over).
        """
        try:
            gone = leaf.tryRemove()
        except OSError:
            return False
        if gone:
            # Marked before the call, as the usual hand-over is.
            self._handedOver = True
            stats = self.reapStats
            assert stats is not None
            self.treeEnd.emptied(stats)
        return gone
