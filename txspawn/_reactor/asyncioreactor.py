# -*- test-case-name: tests.test_reactor -*-
"""
Twisted's asyncio reactor with txspawn composed in, and its C{install()}
(C{--reactor=txspawn-asyncio}).

Like L{twisted.internet.asyncioreactor}, this module defines the reactor
class and an L{install} that installs it, so that
C{namedAny(reactor.__class__.__module__).install()} re-creates this kind.

A note on asyncio: Twisted's asyncio reactor does not use asyncio's own
signal machinery (C{loop.add_signal_handler}); it installs the same
C{SignalHandling} objects as every other Twisted reactor, so there is no
second owner of C{signal.set_wakeup_fd} unless application code calls
C{loop.add_signal_handler} itself.  If it does, asyncio replaces the wakeup
fd (and resets it to C{-1} when its last handler is removed): with the
C{sigchld} monitor SIGCHLD wake-ups are then lost, exactly as with stock
Twisted; with the C{pidfd} monitor (the default) txspawn's own children do
not depend on the wakeup fd at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import asyncioreactor

from txspawn._reactor.mixin import SpawnReactorMixin, installGlobalReactor
from txspawn.interfaces import IChildMonitor, ISpawner

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

__all__ = ["AsyncioSelectorReactor", "install"]


class AsyncioSelectorReactor(SpawnReactorMixin, asyncioreactor.AsyncioSelectorReactor):
    """
    Twisted's asyncio reactor, spawning through txspawn.

    Unlike Twisted's, L{run} uninstalls the reactor's signal handling when
    the loop returns (Twisted's asyncio reactor leaves it installed until
    C{_uninstallHandler}), so that the SIGCHLD disposition and wakeup fd are
    restored after C{reactor.run()} as with every other reactor.
    """

    # The asyncio loop waits for events itself, never through doIteration:
    # Twisted's registry gets the eager SIGCHLD subscription.
    _hasWaitHook = False

    def __init__(
        self,
        eventloop: AbstractEventLoop | None = None,
        *,
        engine: str | ISpawner | None = None,
        monitor: str | IChildMonitor | None = None,
    ) -> None:
        """
        @param eventloop: The asyncio event loop to wrap; C{None} for the
            running loop or a new one, as Twisted's reactor does.
        @param engine: See L{SpawnReactorMixin.__init__}.
        @param monitor: See L{SpawnReactorMixin.__init__}.
        """
        asyncioreactor.AsyncioSelectorReactor.__init__(self, eventloop)
        self._setUpSpawning(engine, monitor)

    def run(self, installSignalHandlers: bool = True) -> None:
        """
        Run the asyncio loop until the reactor stops, then uninstall signal
        handling (as L{twisted.internet.base.ReactorBase.run} does).

        @param installSignalHandlers: As for
            L{twisted.internet.interfaces.IReactorCore.run}.
        """
        try:
            super().run(  # type: ignore[no-untyped-call]
                installSignalHandlers=installSignalHandlers
            )
        finally:
            self._signals.uninstall()


def install(
    engine: str | ISpawner | None = None,
    monitor: str | IChildMonitor | None = None,
    *,
    eventloop: AbstractEventLoop | None = None,
) -> AsyncioSelectorReactor:
    """
    Install an L{AsyncioSelectorReactor} as Twisted's global reactor.

    @param engine: See L{txspawn._reactor.epollreactor.install}.
    @param monitor: See L{txspawn._reactor.epollreactor.install}.
    @param eventloop: The asyncio event loop to wrap, as for
        L{twisted.internet.asyncioreactor.install}; C{None} for the running
        loop or a new one.
    @return: the installed reactor.
    @raise twisted.internet.error.ReactorAlreadyInstalledError: if a reactor
        is already installed.
    """
    return installGlobalReactor(
        lambda: AsyncioSelectorReactor(eventloop, engine=engine, monitor=monitor),
        "txspawn-asyncio",
    )
