# -*- test-case-name: tests.test_monitor -*-
"""
The classic SIGCHLD child monitor.

When pidfds are not available (or not wanted), a child's exit is noticed the
way Twisted always has: through C{SIGCHLD}, heard from the process-wide
SIGCHLD wakeup (L{txspawn._monitor.sigchldwakeup}) that this monitor
subscribes to.  On every wake-up the monitor tries C{wait4(pid, WNOHANG)} on
each child it watches -- I{never} C{waitpid(-1)}, which would steal other
code's children and race with pid reuse -- and reaps Twisted's own registry
too (L{txspawn._monitor.twistedregistry}).

Signal dispositions can only be changed from the main thread; installing
or uninstalling the monitor from any other thread raises L{ValueError}
saying so (the pidfd monitor is the one to use in a reactor thread).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from txspawn._kernel.childhandle import ChildProcess, completeCleanup
from txspawn._monitor.orphans import adoptOrphans
from txspawn._monitor.shared import Exited, ShutdownHook, callExited
from txspawn._monitor.sigchldwakeup import _Subscription, _wakeup
from txspawn._monitor.twistedregistry import reapTwistedRegistry
from txspawn.interfaces import IChildMonitor

__all__ = ["SIGCHLDMonitor"]

_log = Logger()


@implementer(IChildMonitor)
class SIGCHLDMonitor:
    """
    Watch children through C{SIGCHLD} and per-pid C{wait4(pid, WNOHANG)}.

    Until L{install} is called (the reactor does it when it installs signal
    handlers; with C{installSignalHandlers=False} it never does, as with
    stock Twisted), exits are only noticed by the reap at registration.
    On every wake-up the monitor also calls Twisted's C{reapAllProcesses()},
    so C{twisted.internet.process.Process} objects built directly are reaped
    too.

    @ivar name: C{"sigchld"}.
    @ivar reason: Why this monitor was chosen.
    @ivar forgetAll: C{forgetAll()}: stop watching every child without
        reporting it, handing the ones still running to
        L{txspawn._monitor.orphans.adoptOrphans} to be reaped in the
        background (see L{txspawn._monitor.pidfd.PidfdMonitor}).  Called at
        reactor shutdown.  A C callable, run to its end even if interrupted
        (L{txspawn._kernel.childhandle.completeCleanup}).
    """

    name = "sigchld"

    def __init__(self, reactor: Any, reason: str = "chosen explicitly") -> None:
        """
        @param reactor: The reactor: an
            L{twisted.internet.interfaces.IReactorFDSet} with C{callLater}.
        @param reason: Why this monitor was chosen.
        """
        self._reactor = reactor
        self.reason = reason
        self._children: dict[int, tuple[ChildProcess, Exited]] = {}
        self._subscription: _Subscription | None = None
        self.forgetAll: Callable[[], None] = partial(completeCleanup, self._forgetAll)
        self._shutdown = ShutdownHook(reactor, self.forgetAll)

    def __repr__(self) -> str:
        return f"<SIGCHLDMonitor watching {len(self._children)} children>"

    @property
    def installed(self) -> bool:
        """
        Whether this monitor is subscribed to the SIGCHLD wakeup.
        """
        return self._subscription is not None

    def install(self) -> None:
        """
        Subscribe to the SIGCHLD wakeup, then reap once: exits before now
        sent no wake-up we could see (idempotent).

        @raise ValueError: outside the main thread.
        """
        if self._subscription is None:
            self._subscription = _wakeup.subscribe(self._reactor, self._reapWatched)
        self._reapWatched()

    def uninstall(self) -> None:
        """
        Unsubscribe, restoring the previous handler and wakeup fd if this
        was the last user (idempotent).  Watched children stay watched.
        """
        subscription = self._subscription
        if subscription is not None:
            # Forgotten only once ended: unsubscribe is resumable, so a run
            # interrupted inside it is finished by the next.
            _wakeup.unsubscribe(subscription)
            self._subscription = None

    def watch(self, child: ChildProcess, exited: Exited) -> None:
        """
        Watch C{child}, reaping it once right away in case its C{SIGCHLD}
        came before it was registered.

        C{exited} is never called from inside C{watch}: a child found
        already exited is reported from the reactor's next iteration.

        @param child: A child, not yet reaped.
        @param exited: Called once, from the reactor thread, with C{child}
            reaped (C{child.status} set, or C{None} if someone else reaped
            it) and its pidfd (if any) closed.  Its exceptions are logged.
        @raise ValueError: if C{child} is already reaped or watched.
        """
        if child.reaped:
            raise ValueError(f"child {child.pid} is already reaped")
        if child.pid in self._children:
            raise ValueError(f"child {child.pid} is already watched")
        self._children[child.pid] = (child, exited)
        self._shutdown.arm()
        if self._tryReap(child):
            self._reactor.callLater(0, self._report, child)

    def reapIfExited(self, child: ChildProcess) -> bool:
        """
        Reap C{child} now if it has exited, as a C{SIGCHLD} would (see
        L{IChildMonitor.reapIfExited}); only C{child} is waited for.

        @return: Whether C{child} is reaped now.
        """
        entry = self._children.get(child.pid)
        if entry is not None and entry[0] is child and self._tryReap(child):
            self._report(child)
        return child.reaped

    def watching(self) -> list[ChildProcess]:
        """
        @return: The children currently watched.
        """
        return [child for child, _ in self._children.values()]

    def _forgetAll(self) -> None:
        """
        L{forgetAll}'s work, run again by L{completeCleanup} until it
        finishes.
        """
        orphans = [child for child, _ in self._children.values()]
        if orphans:
            # Dropped and handed over with no point between where a signal
            # handler could raise and lose them (adoptOrphans is a C
            # callable, which adopts them all before it raises such an
            # exception), as a list: the items of an iterator consumed when
            # the interrupt came would be gone for its next attempt.
            self._children = {}
            adoptOrphans(orphans)
        self._shutdown.disarm()

    def _tryReap(self, child: ChildProcess) -> bool:
        try:
            return child.tryReap()
        except Exception:
            _log.failure("txspawn: wait4({pid}) failed", pid=child.pid)
            child.reapUnknown()
            return True

    def _reapWatched(self) -> None:
        # O(watched children) per SIGCHLD: the price of the fallback.
        for child, _ in list(self._children.values()):
            if self._tryReap(child):
                self._report(child)
        reapTwistedRegistry()

    def _report(self, child: ChildProcess) -> None:
        entry = self._children.get(child.pid)
        if entry is None or entry[0] is not child:
            # Already reported (a wake-up beat the registration's callLater);
            # the pid may even belong to a newer child by now.
            return
        # The steps before the child leaves the list are idempotent, and it
        # leaves it just before its callback is called: run again after an
        # exception interrupted it (the clean-up of an interrupted spawn
        # does, through reapIfExited), this finishes the job and calls
        # exited at most once.
        child.closePidfd()
        if len(self._children) == 1:
            self._shutdown.disarm()
        del self._children[child.pid]
        callExited(entry[1], child)
