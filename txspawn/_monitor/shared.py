# -*- test-case-name: tests.test_monitor -*-
"""
The bookkeeping both child monitors share.

Registering a reader with the reactor so that C{removeAll()} leaves it
alone, calling the C{exited} callback without letting its exceptions reach
the reactor, and forgetting still-running children when the reactor shuts
down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.base import _SystemEventID
from twisted.internet.interfaces import IReactorCore, IReadDescriptor
from twisted.logger import Logger, LogLevel

if TYPE_CHECKING:
    from txspawn._kernel.childhandle import ChildProcess

__all__ = [
    "Exited",
    "ShutdownHook",
    "addInternalReader",
    "callExited",
    "removeInternalReader",
]

#: The type of a monitor's C{exited} callback.
Exited = Callable[["ChildProcess"], object]

_log = Logger()


def addInternalReader(reactor: Any, reader: IReadDescriptor) -> bool:
    """
    Register C{reader} with C{reactor} as part of the reactor's own
    machinery, when the reactor supports that.

    Internal readers survive C{reactor.removeAll()} and so
    C{disconnectAll()} at shutdown: a child's exit stays observable even
    when application code clears the reactor's fd set.

    @return: Whether the reader was registered as internal (C{False}: a
        plain C{addReader}, which C{removeAll()} will remove).
    """
    add = getattr(reactor, "_addInternalReader", None)
    if add is not None:
        add(reader)
        return True
    reactor.addReader(reader)
    return False


def removeInternalReader(reactor: Any, reader: IReadDescriptor, internal: bool) -> None:
    """
    Undo L{addInternalReader}.

    @param internal: What L{addInternalReader} returned.
    """
    internalReaders = getattr(reactor, "_internalReaders", None)
    if internal and internalReaders is not None and reader in internalReaders:
        reactor._removeInternalReader(reader)
    else:
        # Not internal, or the reactor already dropped it after an error
        # event: removeReader is idempotent on every Twisted reactor.
        reactor.removeReader(reader)


def callExited(exited: Exited, child: ChildProcess) -> None:
    """
    Call a monitor's C{exited} callback, logging (never raising) anything it
    raises: the caller is the reactor's I/O loop.
    """
    # What Logger.failuresHandled does, without building its context
    # manager and closure on every exit (this runs right after the reactor
    # woke up, when every call is expensive).
    try:
        exited(child)
    except BaseException:
        _log.failure(
            "txspawn: exited callback {callback!r} failed for pid {pid}",
            level=LogLevel.critical,
            callback=exited,
            pid=child.pid,
        )


class ShutdownHook:
    """
    A reactor C{"after" "shutdown"} trigger that is armed only while there
    is something to clean up, so that monitors on a long-lived reactor do
    not pile up triggers.

    @ivar fired: Whether the reactor shut down while armed.
    @ivar armed: Whether the callback will run at shutdown.
    """

    def __init__(self, reactor: Any, callback: Callable[[], object]) -> None:
        """
        @param reactor: The reactor; if it does not provide L{IReactorCore}
            the hook never fires.
        @param callback: Called once at shutdown if armed then.
        """
        self._reactor = reactor
        self._callback = callback
        self._trigger: _SystemEventID | None = None
        self.fired = False

    @property
    def armed(self) -> bool:
        """
        Whether the callback will run at shutdown.
        """
        return self._trigger is not None

    def arm(self) -> None:
        """
        Make sure the callback runs at shutdown (idempotent).
        """
        if self._trigger is None and IReactorCore.providedBy(self._reactor):
            self._trigger = self._reactor.addSystemEventTrigger(
                "after", "shutdown", self._fire
            )

    def disarm(self) -> None:
        """
        Cancel the callback (idempotent).
        """
        if self._trigger is not None:
            trigger, self._trigger = self._trigger, None
            self._reactor.removeSystemEventTrigger(trigger)

    def _fire(self) -> None:
        # The trigger is being consumed: forget it rather than removing it.
        self._trigger = None
        self.fired = True
        self._callback()
