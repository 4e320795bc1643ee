# -*- test-case-name: tests.test_reactor -*-
"""
Twisted's select reactor with txspawn composed in, and its C{install()}
(C{--reactor=txspawn-select}).

Like L{twisted.internet.selectreactor}, this module defines the reactor
class and an L{install} that installs it, so that
C{namedAny(reactor.__class__.__module__).install()} re-creates this kind.
"""

from __future__ import annotations

from twisted.internet import selectreactor

from txspawn._reactor.mixin import SpawnReactorMixin, installGlobalReactor
from txspawn.interfaces import IChildMonitor, ISpawner

__all__ = ["SelectReactor", "install"]


class SelectReactor(SpawnReactorMixin, selectreactor.SelectReactor):
    """
    Twisted's select reactor, spawning through txspawn.
    """


def install(
    engine: str | ISpawner | None = None,
    monitor: str | IChildMonitor | None = None,
) -> SelectReactor:
    """
    Install a L{SelectReactor} as Twisted's global reactor.

    @param engine: See L{txspawn._reactor.epollreactor.install}.
    @param monitor: See L{txspawn._reactor.epollreactor.install}.
    @return: the installed reactor.
    @raise twisted.internet.error.ReactorAlreadyInstalledError: if a reactor
        is already installed.
    """
    return installGlobalReactor(
        lambda: SelectReactor(engine=engine, monitor=monitor), "txspawn-select"
    )
