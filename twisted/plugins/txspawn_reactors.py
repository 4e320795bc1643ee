# -*- test-case-name: tests.test_plugins -*-
"""
Twisted plugin dropin: the C{txspawn} reactor for C{--reactor=txspawn}.

One declaration, no logic.  There must be no C{__init__.py} in C{twisted/}
or C{twisted/plugins/} of this distribution (Twisted plugin howto).
"""

from __future__ import annotations

from twisted.application.reactors import Reactor

__all__ = ["txspawn"]

txspawn = Reactor(
    "txspawn",
    "txspawn.reactor",
    "epoll(4) based reactor spawning children through txspawn (pidfd).",
)
