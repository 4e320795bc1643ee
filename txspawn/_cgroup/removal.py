# -*- test-case-name: tests.test_cgroup_removal -*-
"""
Removing a child's leaf once every process in it has exited.

L{LeafRemover.removeWhenEmpty} takes a leaf whose child was reaped.  While
processes the child left are still in it (daemons, or processes that a
C{cgroup.kill} has not finished killing yet), it waits for
C{cgroup.events} to say C{populated 0}, told by inotify through the reactor
(L{txspawn._cgroup.events}); the file is read again right after the watch
is added, so an emptying between the first read and the watch is not
lost.  Then it reads the final statistics, hands them to the caller
(C{onEmpty}: the transport's "the whole tree has exited") and removes the
leaf.  The kernel may still count a dying process for a moment
(C{rmdir} fails with C{EBUSY}): the removal is then retried from the
reactor, 1 ms later, doubling to at most 100 ms between tries.

When the reactor shuts down, what the remover still holds is killed and
removed there and then, each leaf with a bounded number of tries: a
reactor leaves no cgroup behind.

The remover also keeps each parent's spare leaf (L{LeafRemover.spareLater}:
the next leaf, made in the reactor turn after a spawn, while the reactor
would wait for the child anyway: the work is moved off the spawn's path,
not saved; see L{txspawn._cgroup.leaf.prepareSpare}), and removes
the spares once no spawn has used them for L{SPARE_IDLE} seconds, and at
shutdown.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from txspawn._cgroup.events import EventsWatcher
from txspawn._cgroup.hierarchy import removeCgroup
from txspawn._cgroup.leaf import (
    DISCARD_ATTEMPTS,
    CgroupLeaf,
    discardSpare,
    prepareSpare,
)
from txspawn._cgroup.parent import CgroupParent
from txspawn._cgroupoptions import CgroupStats

__all__ = ["FIRST_RETRY", "LAST_RETRY", "SPARE_IDLE", "LeafRemover"]

#: The first wait before another C{rmdir} of a busy leaf, in seconds.
FIRST_RETRY = 0.001
#: The longest wait between two tries.
LAST_RETRY = 0.1
#: Seconds without a spawn after which the spare leaves are removed.
SPARE_IDLE = 1.0

_log = Logger()


class _Held:
    """
    A leaf the remover holds, and what to do once it is empty.
    """

    __slots__ = ("delayed", "eventsPath", "lastKnown", "leaf", "onEmpty", "watched")

    def __init__(
        self,
        leaf: CgroupLeaf,
        onEmpty: Callable[[CgroupStats], None] | None,
        lastKnown: CgroupStats | None,
    ) -> None:
        self.leaf = leaf
        self.onEmpty = onEmpty
        self.lastKnown = lastKnown
        self.eventsPath = os.path.join(leaf.path, "cgroup.events")
        self.watched = False
        self.delayed: Any = None


class LeafRemover:
    """
    Removes the leaves of one reactor's children once they are empty.

    @ivar reactor: The reactor.
    """

    def __init__(self, reactor: Any, clock: Any = None) -> None:
        """
        @param clock: What schedules the retries of a busy leaf
            (C{callLater}); the reactor unless a test gives a
            L{twisted.internet.task.Clock}.
        """
        self.reactor = reactor
        self._clock = reactor if clock is None else clock
        self._held: dict[str, _Held] = {}
        self._watcher = EventsWatcher(reactor, self._watchesLost)
        self._trigger: Any = reactor.addSystemEventTrigger(
            "before", "shutdown", self.stop
        )
        #: Whether L{stop} ran: the reactor is shutting down, and what comes
        #: now is removed at once.
        self._stopped = False
        #: The parents whose spare leaf is due (made next turn) or made.
        self._spareParents: set[CgroupParent] = set()
        self._spareCall: Any = None
        self._spareExpiry: Any = None

    def spareLater(self, parent: CgroupParent) -> None:
        """
        Have C{parent}'s next leaf made in the reactor's next turn (off
        the path of the spawn that just took the last one), and arrange
        for the spares to be removed after L{SPARE_IDLE} seconds without
        a spawn.  Nothing once the reactor is shutting down.
        """
        if self._stopped:
            return
        self._spareParents.add(parent)
        if self._spareCall is None:
            self._spareCall = self._clock.callLater(0, self._makeSpares)
        expiry = self._spareExpiry
        if expiry is not None and expiry.active():
            expiry.reset(SPARE_IDLE)
        else:
            self._spareExpiry = self._clock.callLater(SPARE_IDLE, self.dropSpares)

    def _makeSpares(self) -> None:
        self._spareCall = None
        for parent in list(self._spareParents):
            try:
                prepareSpare(parent)
            except OSError:
                # The next spawn makes its own leaf, and says why if it
                # cannot.
                pass

    def dropSpares(self) -> None:
        """
        Remove every spare leaf made for this reactor's spawns.
        """
        self._spareExpiry = None
        call, self._spareCall = self._spareCall, None
        if call is not None and call.active():
            call.cancel()
        parents = list(self._spareParents)
        self._spareParents.clear()
        for parent in parents:
            discardSpare(parent)

    def held(self) -> list[str]:
        """
        The paths of the leaves not removed yet.
        """
        return sorted(self._held)

    @property
    def watcher(self) -> EventsWatcher:
        """
        The inotify watcher of C{cgroup.events} files.
        """
        return self._watcher

    def removeWhenEmpty(
        self,
        leaf: CgroupLeaf,
        onEmpty: Callable[[CgroupStats], None] | None = None,
        lastKnown: CgroupStats | None = None,
    ) -> None:
        """
        Remove C{leaf} once no process is left in it, first calling
        C{onEmpty} with its final statistics.  C{onEmpty} is called before
        this returns when the leaf is empty already, and when the reactor
        is shutting down (L{stop} ran: what is left is killed now, as
        L{stop} kills what it holds).

        @param lastKnown: The statistics C{onEmpty} gets if the final ones
            cannot be read (the leaf was removed by someone else, no fd
            free): the end of the tree is told whatever happens.
        """
        held = _Held(leaf, onEmpty, lastKnown)
        if self._stopped:
            _removeNow(held)
            return
        self._held[leaf.path] = held
        if leaf.populated():
            self._watch(held)
            if held.watched and leaf.populated():
                return
        self._emptied(held)

    def _watch(self, held: _Held) -> None:
        try:
            self._watcher.watch(held.eventsPath, lambda: self._changed(held))
        except OSError:
            # Gone already (removed by someone else): nothing to wait for.
            return
        held.watched = True

    def _changed(self, held: _Held) -> None:
        if held.watched and not held.leaf.populated():
            self._emptied(held)

    def _watchesLost(self) -> None:
        # A watched cgroup.events was deleted and Twisted's INotify closed
        # itself: watch again what is still waited for, then look again.
        for held in list(self._held.values()):
            if held.watched:
                held.watched = False
                self._watch(held)
                if not held.watched or not held.leaf.populated():
                    self._emptied(held)

    def _emptied(self, held: _Held) -> None:
        if held.watched:
            held.watched = False
            self._watcher.unwatch(held.eventsPath)
        try:
            stats = held.leaf.readStats()
        except FileNotFoundError:
            # Removed by someone else: there is nothing to read or remove.
            _log.warn(
                "txspawn: cgroup {path} was removed by someone else",
                path=held.leaf.path,
            )
        except OSError:
            _log.failure(
                "txspawn: could not read the final statistics of cgroup {path}",
                path=held.leaf.path,
            )
        else:
            _tell(held, stats)
        # Told whatever happened above (once: _tell forgets onEmpty).
        _tellLastKnown(held)
        self._tryRemove(held, FIRST_RETRY)

    def _tryRemove(self, held: _Held, delay: float) -> None:
        held.delayed = None
        try:
            gone = held.leaf.tryRemove()
        except OSError:
            _log.failure("txspawn: could not remove cgroup {path}", path=held.leaf.path)
            gone = True
        if gone:
            self._held.pop(held.leaf.path, None)
            return
        held.delayed = self._clock.callLater(
            delay, self._tryRemove, held, min(delay * 2, LAST_RETRY)
        )

    def stop(self) -> None:
        """
        Kill and remove every leaf still held, now (each with a bounded
        number of tries), and close the inotify watcher.  Called when the
        reactor shuts down.
        """
        expiry = self._spareExpiry
        if expiry is not None and expiry.active():
            expiry.cancel()
        self.dropSpares()
        self._stopped = True
        held = list(self._held.values())
        self._held.clear()
        for entry in held:
            if entry.delayed is not None and entry.delayed.active():
                entry.delayed.cancel()
            entry.delayed = None
            entry.watched = False
            _removeNow(entry)
        self._watcher.close()


def _tell(held: _Held, stats: CgroupStats) -> None:
    """
    Call a held leaf's C{onEmpty}, once.
    """
    onEmpty, held.onEmpty = held.onEmpty, None
    if onEmpty is None:
        return
    try:
        onEmpty(stats)
    except BaseException:
        _log.failure(
            "txspawn: while telling that cgroup {path} is empty", path=held.leaf.path
        )


def _tellLastKnown(held: _Held) -> None:
    """
    Call a held leaf's C{onEmpty} with the last statistics known, if it was
    not told the final ones.
    """
    if held.lastKnown is not None:
        _tell(held, held.lastKnown)


def _removeNow(held: _Held) -> None:
    """
    Kill a held leaf, tell its owner once it is empty, and remove it; give
    up after L{DISCARD_ATTEMPTS} tries (the stale sweep of a later txspawn
    process will find it).
    """
    leaf = held.leaf
    try:
        leaf.kill()
    except OSError:
        pass
    for _ in range(DISCARD_ATTEMPTS):
        if not leaf.populated():
            break
        os.sched_yield()
    if held.onEmpty is not None and not leaf.populated():
        try:
            stats = leaf.readStats()
        except OSError:
            pass
        else:
            _tell(held, stats)
    _tellLastKnown(held)
    leaf.closeFd()
    for _ in range(DISCARD_ATTEMPTS):
        try:
            if removeCgroup(leaf.path):
                return
        except OSError:
            return
        os.sched_yield()
