# -*- test-case-name: tests.test_monitor -*-
"""
Choosing a child monitor.

A reactor has exactly one L{IChildMonitor}.  L{selectMonitor} picks it:
the pidfd monitor (L{txspawn._monitor.pidfd}) whenever the kernel has
C{pidfd_open} (Linux 5.3), else the classic SIGCHLD self-pipe monitor
(L{txspawn._monitor.sigchld}); C{TXSPAWN_MONITOR} or an explicit name
overrides the choice.  The returned monitor remembers why it was chosen in
its C{reason} attribute, so C{python -m txspawn info} can say why a fallback
happened.

What both monitors share lives in L{txspawn._monitor.shared}.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from txspawn._kernel.features import Features
    from txspawn._monitor.pidfd import PidfdMonitor
    from txspawn._monitor.sigchld import SIGCHLDMonitor

__all__ = [
    "MONITOR_ENVIRONMENT_VARIABLE",
    "MONITOR_NAMES",
    "selectMonitor",
]

#: The valid monitor names, best first.
MONITOR_NAMES: tuple[str, ...] = ("pidfd", "sigchld")

#: The environment variable that overrides the default monitor.
MONITOR_ENVIRONMENT_VARIABLE = "TXSPAWN_MONITOR"


def selectMonitor(
    reactor: Any,
    name: str | None = None,
    features: Features | None = None,
    environ: Mapping[str, str] | None = None,
) -> PidfdMonitor | SIGCHLDMonitor:
    """
    Build the child monitor for C{reactor}.

    @param reactor: The reactor the monitor will serve (an
        L{twisted.internet.interfaces.IReactorFDSet}; L{IReactorCore
        <twisted.internet.interfaces.IReactorCore>} too
        for the shutdown hooks).
    @param name: C{"pidfd"}, C{"sigchld"}, or C{None} for the value of
        C{TXSPAWN_MONITOR} if set (and not empty), else C{"pidfd"} when the
        kernel supports C{pidfd_open} and C{"sigchld"} otherwise.
    @param features: The probed features; C{None} for
        L{txspawn._kernel.probes.probeFeatures}'s (tests inject their own).
    @param environ: Where to look up C{TXSPAWN_MONITOR}; C{None} for
        C{os.environ} (tests inject their own).
    @return: A new L{IChildMonitor} provider, whose C{reason} attribute
        says why it was chosen.
    @raise ValueError: if the name (given or from the environment) is not a
        monitor name, or names the pidfd monitor on a kernel without pidfds.
    """
    source = "name"
    if name is None:
        if environ is None:
            environ = os.environ
        fromEnvironment = environ.get(MONITOR_ENVIRONMENT_VARIABLE, "")
        if fromEnvironment:
            name, source = fromEnvironment, MONITOR_ENVIRONMENT_VARIABLE
    if name is not None and name not in MONITOR_NAMES:
        raise ValueError(
            f"unknown child monitor {name!r} (from {source}); valid names: "
            f"{', '.join(MONITOR_NAMES)}"
        )

    from txspawn._kernel.features import PIDFD_OPEN
    from txspawn._kernel.probes import probeFeatures

    if features is None:
        features = probeFeatures()
    pidfdOK = features.enabled(PIDFD_OPEN)
    pidfdWhy = features.reason(PIDFD_OPEN)

    if name == "pidfd" and not pidfdOK:
        raise ValueError(
            f"the pidfd child monitor was requested (by {source}) but is not "
            f"available: {pidfdWhy}"
        )
    if name is None:
        if pidfdOK:
            name, reason = "pidfd", f"default: {pidfdWhy}"
        else:
            name, reason = "sigchld", f"fallback: pidfd unavailable: {pidfdWhy}"
    else:
        reason = f"chosen by {source}"

    if name == "pidfd":
        from txspawn._monitor.pidfd import PidfdMonitor

        return PidfdMonitor(reactor, reason)
    from txspawn._monitor.sigchld import SIGCHLDMonitor

    return SIGCHLDMonitor(reactor, reason)
