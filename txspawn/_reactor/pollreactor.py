# -*- test-case-name: tests.test_reactor -*-
"""
Twisted's poll reactor with txspawn composed in, and its C{install()}
(C{--reactor=txspawn-poll}).

Like L{twisted.internet.pollreactor}, this module defines the reactor class
and an L{install} that installs it, so that
C{namedAny(reactor.__class__.__module__).install()} re-creates this kind.
"""

from __future__ import annotations

from twisted.internet import pollreactor

from txspawn._reactor.mixin import SpawnReactorMixin, installGlobalReactor
from txspawn.interfaces import IChildMonitor, ISpawner

__all__ = ["PollReactor", "install"]


class PollReactor(SpawnReactorMixin, pollreactor.PollReactor):
    """
    Twisted's poll reactor, spawning through txspawn.
    """


def install(
    engine: str | ISpawner | None = None,
    monitor: str | IChildMonitor | None = None,
) -> PollReactor:
    """
    Install a L{PollReactor} as Twisted's global reactor.

    @param engine: See L{txspawn._reactor.epollreactor.install}.
    @param monitor: See L{txspawn._reactor.epollreactor.install}.
    @return: the installed reactor.
    @raise twisted.internet.error.ReactorAlreadyInstalledError: if a reactor
        is already installed.
    """
    return installGlobalReactor(
        lambda: PollReactor(engine=engine, monitor=monitor), "txspawn-poll"
    )
