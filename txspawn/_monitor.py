# -*- test-case-name: tests.test_monitor -*-
"""
Choosing a child monitor, and the bookkeeping both monitors share.

A reactor has exactly one L{IChildMonitor}.  L{selectMonitor} picks it:
the pidfd monitor (L{txspawn._pidfdmonitor}) whenever the kernel has
C{pidfd_open} (Linux 5.3), else the classic SIGCHLD self-pipe monitor
(L{txspawn._sigchldmonitor}); C{TXSPAWN_MONITOR} or an explicit name
overrides the choice.  The returned monitor remembers why it was chosen in
its C{reason} attribute, so C{python -m txspawn info} can say why a fallback
happened.

The helpers below are the parts both monitors need: registering a reader
with the reactor so that C{removeAll()} leaves it alone, calling the
C{exited} callback without letting its exceptions reach the reactor, and
forgetting still-running children when the reactor shuts down.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.base import _SystemEventID
from twisted.internet.interfaces import IReactorCore, IReadDescriptor
from twisted.logger import Logger, LogLevel

if TYPE_CHECKING:
    from txspawn._child import ChildProcess
    from txspawn._features import Features
    from txspawn._pidfdmonitor import PidfdMonitor
    from txspawn._sigchldmonitor import SIGCHLDMonitor

__all__ = [
    "MONITOR_ENVIRONMENT_VARIABLE",
    "MONITOR_NAMES",
    "Exited",
    "ShutdownHook",
    "addInternalReader",
    "callExited",
    "removeInternalReader",
    "selectMonitor",
]

#: The valid monitor names, best first.
MONITOR_NAMES: tuple[str, ...] = ("pidfd", "sigchld")

#: The environment variable that overrides the default monitor.
MONITOR_ENVIRONMENT_VARIABLE = "TXSPAWN_MONITOR"

#: The type of a monitor's C{exited} callback.
Exited = Callable[["ChildProcess"], object]

_log = Logger()


def selectMonitor(
    reactor: Any,
    name: str | None = None,
    features: Features | None = None,
    environ: Mapping[str, str] | None = None,
) -> PidfdMonitor | SIGCHLDMonitor:
    """
    Build the child monitor for C{reactor}.

    @param reactor: The reactor the monitor will serve (an
        L{twisted.internet.interfaces.IReactorFDSet}; L{IReactorCore} too
        for the shutdown hooks).
    @param name: C{"pidfd"}, C{"sigchld"}, or C{None} for the value of
        C{TXSPAWN_MONITOR} if set (and not empty), else C{"pidfd"} when the
        kernel supports C{pidfd_open} and C{"sigchld"} otherwise.
    @param features: The probed features; C{None} for
        L{txspawn._features.probeFeatures}'s (tests inject their own).
    @param environ: Where to look up C{TXSPAWN_MONITOR}; C{None} for
        C{os.environ} (tests inject their own).
    @return: A new L{IChildMonitor} provider, whose C{reason} attribute
        says why it was chosen.
    @raise ValueError: if the name (given or from the environment) is not a
        monitor name, or names the pidfd monitor on a kernel without pidfds.
    """
    source = "name"
    if name is None:
        if environ is None:
            environ = os.environ
        fromEnvironment = environ.get(MONITOR_ENVIRONMENT_VARIABLE, "")
        if fromEnvironment:
            name, source = fromEnvironment, MONITOR_ENVIRONMENT_VARIABLE
    if name is not None and name not in MONITOR_NAMES:
        raise ValueError(
            f"unknown child monitor {name!r} (from {source}); valid names: "
            f"{', '.join(MONITOR_NAMES)}"
        )

    from txspawn._features import PIDFD_OPEN, probeFeatures

    if features is None:
        features = probeFeatures()
    pidfdOK = features.enabled(PIDFD_OPEN)
    pidfdWhy = features.reason(PIDFD_OPEN)

    if name == "pidfd" and not pidfdOK:
        raise ValueError(
            f"the pidfd child monitor was requested (by {source}) but is not "
            f"available: {pidfdWhy}"
        )
    if name is None:
        if pidfdOK:
            name, reason = "pidfd", f"default: {pidfdWhy}"
        else:
            name, reason = "sigchld", f"fallback: pidfd unavailable: {pidfdWhy}"
    else:
        reason = f"chosen by {source}"

    if name == "pidfd":
        from txspawn._pidfdmonitor import PidfdMonitor

        return PidfdMonitor(reactor, reason)
    from txspawn._sigchldmonitor import SIGCHLDMonitor

    return SIGCHLDMonitor(reactor, reason)


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
