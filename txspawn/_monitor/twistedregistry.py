# -*- test-case-name: tests.test_monitor -*-
"""
Reaping the children of Twisted's own process registry.

A C{twisted.internet.process.Process} built directly (as buildbot does)
registers in Twisted's module-global C{reapProcessHandlers} and relies on
the reactor to call C{reapAllProcesses()} on C{SIGCHLD}.  The SIGCHLD
monitor (L{txspawn._monitor.sigchld}) does so on every wake-up; in pidfd
mode, where nothing else would, the reactors install
L{TwistedRegistryReaping}, subscribed to the shared SIGCHLD wakeup
(L{txspawn._monitor.sigchldwakeup}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import process as _twistedProcess

from txspawn._monitor.sigchldwakeup import (
    _requireMainThread,
    _Subscription,
    _wakeup,
)

__all__ = ["TwistedRegistryReaping", "reapTwistedRegistry"]


def reapTwistedRegistry() -> None:
    """
    Reap the processes in Twisted's own registry (C{Process} objects built
    directly from C{twisted.internet.process}).  Each one reaps only its own
    pid.
    """
    _twistedProcess.reapAllProcesses()


class TwistedRegistryReaping:
    """
    A Twisted C{SignalHandling} (C{install}/C{uninstall}) that reaps the
    processes of Twisted's own registry,
    C{twisted.internet.process.reapProcessHandlers}, through the shared
    SIGCHLD wakeup.

    txspawn's reactors use it in pidfd mode, where nothing else would reap
    a C{twisted.internet.process.Process} built directly (as buildbot
    does).

    I{Eager} (the default), it subscribes to the wakeup at L{install}, so
    every child's exit (txspawn's included) costs a signal and a reactor
    wake-up, as with stock Twisted.

    I{On demand} (C{onDemand=True}), it subscribes only while the registry
    holds a process: the reactor calls L{beforeWait} before every wait for
    events, and that is where a new registry entry is noticed -- before
    the reactor can sleep through its exit -- and where the subscription is
    dropped once the registry is empty again.  An exit that came before the
    subscription (its C{SIGCHLD} went to the default disposition, which
    discards it) is caught by the reap that follows every subscription.
    Only a reactor that calls L{beforeWait} from its every
    C{doIteration} may ask for this; with txspawn's own children watched
    through pidfds, no signal at all is then involved in a child's exit.
    """

    def __init__(self, reactor: Any, onDemand: bool = False) -> None:
        """
        @param reactor: The reactor whose thread runs the reaping.
        @param onDemand: Subscribe only while Twisted's registry is not
            empty; the reactor promises to call L{beforeWait} before every
            wait for events.
        """
        self._reactor = reactor
        self._onDemand = onDemand
        self._armed = False
        self._subscription: _Subscription | None = None

    @property
    def subscribed(self) -> bool:
        """
        Whether the SIGCHLD wakeup is subscribed to now.
        """
        return self._subscription is not None

    def install(self) -> None:
        """
        Start reaping: subscribe to the SIGCHLD wakeup (on demand: if
        Twisted's registry holds a process), and reap once for the exits
        that happened before (idempotent).

        @raise ValueError: outside the main thread.
        """
        _requireMainThread("installing the SIGCHLD wakeup")
        self._armed = True
        if self._onDemand:
            self.beforeWait()
        else:
            self._subscribe()

    def uninstall(self) -> None:
        """
        Stop reaping and unsubscribe (idempotent).
        """
        self._armed = False
        self._unsubscribe()

    def beforeWait(self) -> None:
        """
        On demand, called by the reactor before every wait for events:
        subscribe (and reap once) if Twisted's registry holds a process and
        we are not subscribed; unsubscribe if it is empty and we are.

        Twisted's registry is only added to from the reactor's thread (by
        C{Process.__init__}), the thread running this, so no entry can
        appear between this check and the wait.
        """
        if not self._armed:
            return
        # Read through the module every time: a test may rebind it.
        if _twistedProcess.reapProcessHandlers:
            if self._subscription is None:
                self._subscribe()
        elif self._subscription is not None:
            self._unsubscribe()

    def _subscribe(self) -> None:
        if self._subscription is None:
            self._subscription = _wakeup.subscribe(self._reactor, reapTwistedRegistry)
        reapTwistedRegistry()

    def _unsubscribe(self) -> None:
        subscription = self._subscription
        if subscription is not None:
            # Forgotten only once ended: unsubscribe is resumable, so a run
            # interrupted inside it is finished by the next.
            _wakeup.unsubscribe(subscription)
            self._subscription = None
