# -*- test-case-name: tests.test_plugins -*-
"""
Twisted plugin dropin: the txspawn reactors for C{--reactor=}, one per kind
of Twisted reactor (C{txspawn} is epoll, the default).

Declarations only, no logic, and nothing heavy imported: the dropin cache
imports this file.  Each entry names the module that defines the reactor
class and its C{install()}.  There must be no C{__init__.py} in C{twisted/}
or C{twisted/plugins/} of this distribution (Twisted plugin howto).
"""

from __future__ import annotations

from twisted.application.reactors import Reactor

__all__ = ["txspawn", "txspawnAsyncio", "txspawnPoll", "txspawnSelect"]

txspawn = Reactor(
    "txspawn",
    "txspawn._reactor.epollreactor",
    "epoll(4) based reactor spawning children through txspawn (pidfd).",
)
txspawnPoll = Reactor(
    "txspawn-poll",
    "txspawn._reactor.pollreactor",
    "poll(2) based reactor spawning children through txspawn.",
)
txspawnSelect = Reactor(
    "txspawn-select",
    "txspawn._reactor.selectreactor",
    "select(2) based reactor spawning children through txspawn.",
)
txspawnAsyncio = Reactor(
    "txspawn-asyncio",
    "txspawn._reactor.asyncioreactor",
    "asyncio based reactor spawning children through txspawn.",
)
