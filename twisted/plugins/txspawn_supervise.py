# -*- test-case-name: tests.test_supervise_twistd -*-
"""
Twisted plugin dropin: txspawn's process supervisor as a twistd/twist
sub-command, C{twistd -n txspawn-supervise -c procs.toml} (see
L{txspawn.supervise.tap}).

Declarations only, no logic, and nothing heavy imported: the dropin cache
imports this file, and twistd imports it to list its sub-commands.  The
L{ServiceMaker} names the module (L{txspawn.supervise.tap}) that defines
C{Options} and C{makeService}; it is imported only when the sub-command is
used.  There must be no C{__init__.py} in C{twisted/} or
C{twisted/plugins/} of this distribution (Twisted plugin howto).
"""

from __future__ import annotations

from twisted.application.service import ServiceMaker

__all__ = ["txspawnSupervise"]

txspawnSupervise = ServiceMaker(  # type: ignore[no-untyped-call]
    "txspawn supervisor",
    "txspawn.supervise.tap",
    "Run programs from a TOML config: dependency order, restarts with "
    "backoff, whole-tree stop, a control API (python -m txspawn ctl).",
    "txspawn-supervise",
)
