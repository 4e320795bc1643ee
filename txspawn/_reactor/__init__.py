# -*- test-case-name: tests.test_reactor -*-
"""
The reactor layer: Twisted's reactors with txspawn composed in.

What it owns:

  - L{txspawn._reactor.spawner}: L{ProcessSpawner}, the one place where a
    spawn request becomes a running, watched child with a connected
    transport (engine, monitor and transport tied together), and
    L{installSpawner} (the public C{txspawn.install}), which puts one
    behind a reactor that already exists;
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

What it may import: every layer below (result API, transports, monitors,
engines, plan, kernel) and Twisted's reactor modules.  What imports it:
the public face (L{txspawn.reactor} re-exports the classes and the epoll
C{install}; L{txspawn} re-exports L{ProcessSpawner} and C{install}), the
plugin dropin (by dotted name), and the command line.  Importing it
installs nothing, and this package itself imports no reactor module, so
that C{import txspawn} stays light.
"""
