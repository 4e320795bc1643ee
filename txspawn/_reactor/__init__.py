# -*- test-case-name: tests.test_reactor -*-
"""
The reactor layer: Twisted's reactors with txspawn composed in.

What it owns:

  - L{txspawn._reactor.mixin}: L{SpawnReactorMixin}, which makes a Twisted
    reactor class spawn and monitor children through txspawn (its
    C{spawnProcess} and C{_signalsFactory}), and the shared body of every
    C{install()};
  - one module per reactor kind, named like Twisted's, each defining its
    class I{and} an C{install(engine=None, monitor=None)} that installs that
    kind, as C{twisted.internet.epollreactor} does.  Twisted code re-creates
    "the same reactor" in a child process with
    C{namedAny(reactor.__class__.__module__).install()}, and the
    C{twisted/plugins} dropin points C{--reactor=txspawn[-kind]} at these
    modules:

      - L{txspawn._reactor.epollreactor}: L{EPollReactor} (C{txspawn}, the
        default);
      - L{txspawn._reactor.pollreactor}: L{PollReactor} (C{txspawn-poll});
      - L{txspawn._reactor.selectreactor}: L{SelectReactor}
        (C{txspawn-select});
      - L{txspawn._reactor.asyncioreactor}: L{AsyncioSelectorReactor}
        (C{txspawn-asyncio}).

The classes are constructible with no arguments, because Twisted's
C{ReactorBuilder} builds reactors with C{namedAny(fqpn)()}.

What it may import: Twisted's reactor modules, and txspawn's spawner
(L{txspawn._spawner}), engine and monitor selection, and the SIGCHLD
monitor's Twisted-registry reaping.  What imports it: the public
L{txspawn.reactor} (which re-exports the classes and the epoll
C{install}), the plugin dropin (by dotted name), and tests.  Importing it
installs nothing.
"""

from __future__ import annotations

from txspawn._reactor.asyncioreactor import AsyncioSelectorReactor
from txspawn._reactor.epollreactor import EPollReactor
from txspawn._reactor.mixin import SpawnReactorMixin
from txspawn._reactor.pollreactor import PollReactor
from txspawn._reactor.selectreactor import SelectReactor

__all__ = [
    "AsyncioSelectorReactor",
    "EPollReactor",
    "PollReactor",
    "SelectReactor",
    "SpawnReactorMixin",
]
