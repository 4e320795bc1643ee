# -*- test-case-name: tests.test_reactor -*-
"""
The txspawn reactors: Twisted's reactors, spawning and monitoring children
through txspawn.

Importing this module has no side effect: it installs nothing.  Use
L{install} the way you would use C{twisted.internet.epollreactor.install}::

    from txspawn import reactor as txspawnreactor
    txspawnreactor.install()

or C{twistd --reactor=txspawn} / C{trial --reactor=txspawn}.  The other
kinds are C{--reactor=txspawn-poll}, C{txspawn-select} and
C{txspawn-asyncio}.  Each class is defined in a module of its own that also
has an C{install()} for it (as Twisted's reactor modules do), so
C{namedAny(reactor.__class__.__module__).install()} re-creates the same
kind.  To put txspawn behind a reactor that already exists, use
L{txspawn.install}.

@since: txspawn 0.1
"""

from __future__ import annotations

from txspawn._reactor.asyncioreactor import AsyncioSelectorReactor
from txspawn._reactor.epollreactor import EPollReactor, install
from txspawn._reactor.pollreactor import PollReactor
from txspawn._reactor.selectreactor import SelectReactor

__all__ = [
    "AsyncioSelectorReactor",
    "EPollReactor",
    "PollReactor",
    "SelectReactor",
    "install",
]
