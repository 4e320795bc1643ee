# -*- test-case-name: tests.test_reactor -*-
"""
The txspawn reactors: Twisted's reactors, spawning and monitoring children
through txspawn.

Importing this module has no side effect: it installs nothing.  Use
L{install} the way you would use C{twisted.internet.epollreactor.install}::

    from txspawn import reactor as txspawnreactor
    txspawnreactor.install()

or C{twistd --reactor=txspawn} / C{trial --reactor=txspawn}.  To put
txspawn behind a reactor that already exists, use L{txspawn.install}.

@since: txspawn 0.1
"""

from __future__ import annotations

from txspawn._reactor import (
    AsyncioSelectorReactor,
    EPollReactor,
    PollReactor,
    SelectReactor,
)
from txspawn.interfaces import IChildMonitor, ISpawner

__all__ = [
    "AsyncioSelectorReactor",
    "EPollReactor",
    "PollReactor",
    "SelectReactor",
    "install",
]


def install(
    engine: str | ISpawner | None = None,
    monitor: str | IChildMonitor | None = None,
) -> EPollReactor:
    """
    Install an L{EPollReactor} as Twisted's global reactor.

    @param engine: An engine name (C{"python"}, C{"c"}), an L{ISpawner}, or
        C{None} for C{TXSPAWN_ENGINE} or else the best available.
    @param monitor: A monitor name (C{"pidfd"}, C{"sigchld"}), an
        L{IChildMonitor}, or C{None} for C{TXSPAWN_MONITOR} or else the best
        the kernel supports.
    @return: the installed reactor.
    @raise twisted.internet.error.ReactorAlreadyInstalledError: if a reactor
        is already installed.
    """
    reactor = EPollReactor(engine=engine, monitor=monitor)
    from twisted.internet.main import installReactor

    installReactor(reactor)  # type: ignore[no-untyped-call]
    return reactor
