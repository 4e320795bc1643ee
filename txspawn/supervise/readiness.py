# -*- test-case-name: tests.test_supervise_readiness -*-
"""
Readiness checks: when a started program counts as ready (C{STARTING} to
C{RUNNING}), so that the programs depending on it may start.

One provider of L{IReadinessCheck} per kind of the config's C{ready} table:
L{txspawn.supervise.states.ReadyAfter} (up for N seconds), L{ReadyTCP} (a
port accepts a connection), L{ReadyNotify} (systemd's C{NOTIFY_SOCKET}
protocol: the child sends C{READY=1}) and L{ReadyCommand} (a check command
exits 0).  L{readinessFor} builds the one a L{ReadyConfig} asks for, with
the environment the child needs and what to release when the program goes.

Every check fails with L{NotReady} once the config's C{timeout} has passed
without the program being ready; the program then counts the start as
failed.  (C{ReadyAfter} cannot fail: an C{after} longer than the timeout
is refused when the check is built.)

@since: txspawn 0.1
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.interfaces import IProtocol, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.supervise._readycommand import ReadyCommand
from txspawn.supervise._readynotify import ReadyNotify
from txspawn.supervise._timedcheck import NotReady, TimedCheck
from txspawn.supervise.config import ReadyConfig
from txspawn.supervise.states import IReadinessCheck, ReadyAfter

__all__ = [
    "NotReady",
    "Readiness",
    "ReadyCommand",
    "ReadyNotify",
    "ReadyTCP",
    "notifySocketPath",
    "readinessFor",
]

#: Seconds one TCP connection attempt may take.
CONNECT_TIMEOUT = 5.0


@frozen
class Readiness:
    """
    A program's readiness check and what comes with it.

    @ivar check: The check, given to the
        L{txspawn.supervise.program.ProgramProcess}.
    @ivar environment: Variables to add to the child's environment (for
        C{notify}: C{NOTIFY_SOCKET}).
    @ivar close: Releases what the check holds (its socket, a check
        command still running) when the program is removed; returns
        C{None} or a L{Deferred} that fires once all is released.

    @since: txspawn 0.1
    """

    check: IReadinessCheck
    environment: Mapping[str, str]
    close: Callable[[], Deferred[None] | None]


def _nothingToClose() -> None:
    return None


class _Probe(Protocol):
    """
    The protocol of a TCP readiness connection: it only has to connect.
    """


@implementer(IReadinessCheck)
class ReadyTCP(TimedCheck):
    """
    Ready once C{host:port} accepts a TCP connection (closed at once).
    Connections are tried every 0.1 s, the pause doubling up to 1 s.

    @ivar host: The host (an IPv4 or IPv6 address, or a name resolved by
        the reactor's resolver).
    @ivar port: The port.
    @ivar timeout: Seconds after which the check fails with L{NotReady}.

    @since: txspawn 0.1
    """

    def __init__(
        self, reactor: Any, host: str, port: int, *, timeout: float = 60.0
    ) -> None:
        """
        @param reactor: Provides C{IReactorTCP} and
            L{twisted.internet.interfaces.IReactorTime}.
        @param host: Where to connect.
        @param port: The port (1 to 65535).
        @param timeout: Seconds (finite, C{>= 0}).
        @raise ValueError: A bad port or timeout.
        """
        super().__init__(reactor, timeout)
        if not 0 < port < 65536:
            raise ValueError(f"port must be from 1 to 65535, not {port!r}")
        self._reactor = reactor
        self.host = host
        self.port = port
        self._connecting: Deferred[IProtocol] | None = None

    def _endpoint(self) -> IStreamClientEndpoint:
        # Addresses go straight to their endpoint: HostnameEndpoint would
        # resolve them in the reactor's thread pool.
        if isIPAddress(self.host):
            return TCP4ClientEndpoint(
                self._reactor, self.host, self.port, timeout=CONNECT_TIMEOUT
            )
        if isIPv6Address(self.host):
            return TCP6ClientEndpoint(  # type: ignore[no-untyped-call]
                self._reactor, self.host, self.port, timeout=CONNECT_TIMEOUT
            )
        return HostnameEndpoint(
            self._reactor, self.host, self.port, timeout=CONNECT_TIMEOUT
        )

    def _describe(self) -> str:
        return f"no connection to {self.host}:{self.port} accepted"

    def start(self, pid: int) -> Deferred[None]:
        """
        Start connecting.
        """
        ready = self._begin()
        self._attempt()
        return ready

    def _attempt(self) -> None:
        connecting = self._endpoint().connect(Factory.forProtocol(_Probe))
        self._connecting = connecting
        connecting.addCallbacks(self._connected, self._refused)

    def _connected(self, protocol: IProtocol) -> None:
        self._connecting = None
        assert isinstance(protocol, _Probe) and protocol.transport is not None
        protocol.transport.loseConnection()
        self._succeed()

    def _refused(self, failure: Failure) -> None:
        self._connecting = None
        self._again(self._attempt, failure.getErrorMessage())

    def _stopAttempt(self) -> None:
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            # Its errback (CancelledError) comes back to _refused, which
            # sees no run in progress.
            connecting.cancel()


def notifySocketPath(runDir: str, instance: str) -> str:
    """
    Where the C{NOTIFY_SOCKET} of an instance is: C{<runDir>/<instance>.notify}.

    @since: txspawn 0.1
    """
    return os.path.join(runDir, f"{instance}.notify")


def readinessFor(
    config: ReadyConfig,
    reactor: Any,
    *,
    instance: str,
    runDir: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Readiness:
    """
    The readiness check a program's C{ready} config asks for.

    @param config: The C{ready} config.
    @param reactor: The reactor the check runs on (a txspawn reactor).
    @param instance: The instance's name (names its notify socket).
    @param runDir: The directory the notify socket goes in (made if
        missing, mode C{0755}).
    @param env: The environment of a check command (default: the
        supervisor's); the program's own is the natural choice.
    @param cwd: The working directory of a check command.
    @return: The check, the child's extra environment, and its release.
    @raise ValueError: The config is incomplete for its kind, or its
        C{after} is longer than its C{timeout}.
    @raise OSError: The notify socket could not be made.

    @since: txspawn 0.1
    """
    if config.kind == "after":
        after = 1.0 if config.after is None else config.after
        if after > config.timeout:
            raise ValueError(
                f"ready after {after:g} s can never happen within the"
                f" timeout of {config.timeout:g} s"
            )
        return Readiness(ReadyAfter(reactor, after), {}, _nothingToClose)
    if config.kind == "tcp":
        if config.host is None or config.port is None:
            raise ValueError("a tcp readiness check needs a host and a port")
        tcp = ReadyTCP(reactor, config.host, config.port, timeout=config.timeout)
        return Readiness(tcp, {}, tcp.cancel)
    if config.kind == "command":
        if not config.command:
            raise ValueError("a command readiness check needs a command")
        command = ReadyCommand(
            reactor, config.command, timeout=config.timeout, env=env, path=cwd
        )
        return Readiness(command, {}, command.close)
    if config.kind == "notify":
        os.makedirs(runDir, mode=0o755, exist_ok=True)
        notify = ReadyNotify(
            reactor, notifySocketPath(runDir, instance), timeout=config.timeout
        )
        return Readiness(notify, {"NOTIFY_SOCKET": notify.path}, notify.close)
    raise ValueError(f"unknown readiness kind {config.kind!r}")
