# -*- test-case-name: tests.test_cgroup_removal -*-
"""
Being told, through the reactor, when a cgroup's C{cgroup.events} changes.

A kernfs file is always readable, so adding it to the reactor as a plain
reader would spin; the kernel instead signals a change of C{populated}
with C{IN_MODIFY} on C{cgroup.events} (and with C{POLLPRI}, which
Twisted's reactors do not watch).  L{EventsWatcher} holds one Twisted
L{INotify} for all the files it watches, opened on the first watch and
closed when the last is dropped, so a reactor that is not waiting for any
cgroup holds no fd for it.

Twisted's L{INotify} closes itself when a watched file is deleted
(C{IN_DELETE_SELF}); the owner drops a watch before removing the cgroup,
but a cgroup removed by someone else would take every other watch with
it: L{EventsWatcher} then tells its owner (C{onLost}), who watches again
what it still waits for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.inotify import IN_MODIFY, INotify, INotifyError
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath

__all__ = ["EventsWatcher"]


class _CgroupINotify(INotify):
    """
    Twisted's L{INotify}, telling its owner when it closed itself.
    """

    def __init__(self, reactor: Any, onClosed: Callable[[_CgroupINotify], None]):
        super().__init__(reactor)  # type: ignore[no-untyped-call]
        self._onClosed = onClosed

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)  # type: ignore[no-untyped-call]
        self._onClosed(self)


class EventsWatcher:
    """
    Watches files for C{IN_MODIFY} through one L{INotify} of a reactor.

    @ivar reactor: The reactor.
    """

    def __init__(self, reactor: Any, onLost: Callable[[], None]) -> None:
        """
        @param onLost: Called when the L{INotify} closed itself (a watched
            file was deleted): every watch is gone.
        """
        self.reactor = reactor
        self._onLost = onLost
        # Twisted's INotify is untyped: held as Any.
        self._notifier: Any = None
        self._closing = False
        self._watched: dict[str, FilePath[bytes]] = {}

    @property
    def fileno(self) -> int | None:
        """
        The inotify fd, while there is one.
        """
        if self._notifier is None:
            return None
        fd: int = self._notifier.fileno()
        return fd

    def watching(self) -> list[str]:
        """
        The paths watched.
        """
        return sorted(self._watched)

    def watch(self, path: str, changed: Callable[[], None]) -> None:
        """
        Call C{changed} (from the reactor) whenever C{path} is modified.

        @raise OSError: It cannot be watched (it does not exist).
        """
        notifier = self._notifier
        if notifier is None:
            notifier = _CgroupINotify(self.reactor, self._closed)
            notifier.startReading()  # type: ignore[no-untyped-call]
            self._notifier = notifier
        filePath = FilePath(path.encode())
        try:
            notifier.watch(
                filePath, mask=IN_MODIFY, callbacks=[lambda *ignored: changed()]
            )
        except INotifyError as e:
            self._closeIfIdle()
            raise OSError(f"cannot watch {path}: {e}") from None
        self._watched[path] = filePath

    def unwatch(self, path: str) -> None:
        """
        Stop watching C{path} (nothing if it is not watched); the
        L{INotify} is closed with the last watch.
        """
        filePath = self._watched.pop(path, None)
        if filePath is not None and self._notifier is not None:
            try:
                self._notifier.ignore(filePath)
            except (KeyError, INotifyError, OSError):
                pass
        self._closeIfIdle()

    def close(self) -> None:
        """
        Drop every watch and close the L{INotify}.
        """
        self._watched.clear()
        self._closeIfIdle()

    def _closeIfIdle(self) -> None:
        notifier = self._notifier
        if notifier is None or self._watched:
            return
        self._notifier = None
        self._closing = True
        try:
            notifier.loseConnection()
        finally:
            self._closing = False

    def _closed(self, notifier: object) -> None:
        if self._closing or notifier is not self._notifier:
            return
        # Closed by Twisted itself: every watch went with it.
        self._notifier = None
        self._watched.clear()
        self._onLost()
