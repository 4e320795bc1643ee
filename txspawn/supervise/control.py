# -*- test-case-name: tests.test_supervise_control -*-
"""
The control API: HTTP and JSON, served by C{twisted.web}, for status,
start/stop/restart/signal, log tails, the event stream and reload.

Routes (C{<name>} is a program, an instance such as C{worker:1}, or
C{all}); every answer that is not a stream is C{application/json}, and
every error is C{{"error": "..."}} with 400 (a bad request or config), 403
(a refused peer), 404 (an unknown program or route), 405 (a wrong method)
or 409 (the program went C{FATAL})::

    GET  /v1/status                         {"programs": [row, ...]}
    POST /v1/programs/<name>/start          answers when done, with the
    POST /v1/programs/<name>/stop           status rows of the instances
    POST /v1/programs/<name>/restart        named: {"programs": [...]}
    POST /v1/programs/<name>/signal         body {"signal": "HUP"}
    GET  /v1/programs/<instance>/log?stream=stdout&lines=100[&follow=1]
                                            text/plain; follow streams
                                            until the client goes
    GET  /v1/events?since=N[&follow=1]      application/x-ndjson
    POST /v1/reload                         {"added": [...], "removed":
                                            [...], "changed": [...],
                                            "unchanged": [...]}

L{listenControl} serves it on an endpoint string.  A unix socket gets
mode C{0600} unless the string sets C{mode=}; a stale socket left by a
supervisor that died is replaced; and every request's peer is checked with
C{SO_PEERCRED}: only the supervisor's own (effective) uid and root are
served, anyone else gets 403 and the refusal is logged (so a wider
C{mode=} lets more users connect, never drive the supervisor).  A tcp
endpoint is accepted only on a loopback interface: no uid can be checked
there, so any local user can drive the supervisor through it.

@since: txspawn 0.1
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from txspawn.supervise._controlapi import ControlAPI, Request, answer, peerCredentials
from txspawn.supervise._endpoint import (
    isLoopback,
    joinEndpoint,
    splitEndpoint,
    unixPath,
)
from txspawn.supervise.service import SupervisorService

__all__ = ["controlResource", "listenControl"]

_log = Logger()


def controlResource(service: SupervisorService) -> IResource:
    """
    The control API's resource over C{service}, to serve under any path.

    It checks no peer: L{listenControl} does.  Embedded in a site of your
    own, guard it yourself.

    @since: txspawn 0.1
    """
    return ControlAPI(service)


# -- serving it -------------------------------------------------------------------


class _ControlSite(Site):
    """
    The site of L{listenControl}: refuses peers whose uid is not allowed,
    and keeps no access log (a status poll every second would fill it).
    """

    noisy = False

    def __init__(
        self, resource: IResource, allowedUIDs: frozenset[int], reactor: Any
    ) -> None:
        # The reactor given: else the site imports (installs) the global one.
        super().__init__(resource, reactor=reactor)  # type: ignore[no-untyped-call]
        self._allowedUIDs = allowedUIDs

    def getResourceFor(self, request: Request) -> IResource:
        try:
            credentials = peerCredentials(request)
        except OSError as error:
            _log.warn(
                "control: refused a peer whose credentials cannot be read: {error}",
                error=error,
            )
            return _Refusal("the peer's credentials cannot be read")
        if credentials is not None and credentials[1] not in self._allowedUIDs:
            pid, uid, _ = credentials
            _log.warn(
                "control: refused {method} {path} from uid {uid} pid {pid}: "
                "only uids {allowed} are served",
                method=request.method.decode("ascii", "replace"),
                path=request.path.decode("ascii", "replace"),
                uid=uid,
                pid=pid,
                allowed=sorted(self._allowedUIDs),
            )
            return _Refusal(
                f"uid {uid} may not control this supervisor (only uids "
                f"{', '.join(map(str, sorted(self._allowedUIDs)))})"
            )
        resource: IResource = super().getResourceFor(request)  # type: ignore[no-untyped-call]
        return resource

    def log(self, request: object) -> None:
        pass

    def _updateLogDateTime(self) -> None:
        # HTTPFactory refreshes its access log's date every second, for
        # ever, from startFactory: with no access log that is a wake-up a
        # second for nothing, the whole of an idle supervisor's CPU.
        pass


class _Refusal(Resource):
    isLeaf = True

    def __init__(self, message: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._message = message

    def render(self, request: Request) -> bytes:
        return answer(request, 403, {"error": self._message})


def _unixDescription(positional: list[str], keywords: dict[str, str]) -> str:
    """
    The server endpoint string of a unix control socket: its path given as
    Twisted's C{address=} (the config says C{path=}, as Twisted's client
    strings do), mode 0600 unless a mode is given; a stale socket at the
    path (no one accepts on it) removed.

    @raise ValueError: No path is given.
    @raise CannotListenError: A supervisor is listening there already.
    """
    path = unixPath(positional, keywords)
    if path is None:
        raise ValueError("a unix control endpoint needs a path (unix:path=...)")
    if not path.startswith("\0"):
        _removeStale(path)
    rest = {k: v for k, v in keywords.items() if k not in ("path", "address")}
    # Twisted's positional order after the path: unix:PATH:MODE:BACKLOG:LOCKFILE.
    named = "path" in keywords or "address" in keywords
    extra = positional if named else positional[1:]
    if len(extra) > len(_UNIX_POSITIONAL):
        raise ValueError(f"too many arguments in the unix endpoint: {extra!r}")
    for name, value in zip(_UNIX_POSITIONAL, extra, strict=False):
        rest.setdefault(name, value)
    rest.setdefault("mode", "600")
    return joinEndpoint("unix", [], {"address": path, **rest})


_UNIX_POSITIONAL = ("mode", "backlog", "lockfile")


def _removeStale(path: str) -> None:
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(5)
    try:
        probe.connect(path)
    except OSError as error:
        if error.errno != errno.ECONNREFUSED:
            return
        # A socket file no one listens on: left by a supervisor that died.
        _log.info("control: removing the stale socket {path}", path=path)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    else:
        raise CannotListenError(  # type: ignore[no-untyped-call]
            None, path, "a supervisor is already listening on this socket"
        )
    finally:
        probe.close()


def _checkInterface(kind: str, positional: list[str], keywords: dict[str, str]) -> None:
    interface = keywords.get("interface", positional[1] if len(positional) > 1 else "")
    if not isLoopback(interface):
        raise ValueError(
            f"the control API listens on {kind} only on a loopback interface "
            f"(such as interface=127.0.0.1 or interface=\\:\\:1), not "
            f"{interface or 'every interface'!r}: no peer's uid can be checked over "
            f"{kind}, so only local users may reach it"
        )


def listenControl(
    service: SupervisorService, endpoint: str, reactor: Any
) -> Deferred[IListeningPort]:
    """
    Serve the control API of C{service} on C{endpoint}.

    @param endpoint: A Twisted server endpoint string: C{unix:path=P} (mode
        C{0600} unless C{mode=} is given; a stale socket file at C{P} is
        replaced) or C{tcp:PORT:interface=127.0.0.1} (a loopback interface
        only).
    @param reactor: The reactor to listen with.
    @return: A L{Deferred} firing with the listening port; failing with
        L{ValueError} for an endpoint refused (a bad string, a tcp endpoint
        not on loopback), or L{CannotListenError} (a supervisor already
        listening there, a path that cannot be bound).

    @since: txspawn 0.1
    """
    allowed = frozenset({os.geteuid(), 0})

    def listen() -> Deferred[IListeningPort]:
        kind, positional, keywords = splitEndpoint(endpoint)
        description = endpoint
        if kind == "unix":
            description = _unixDescription(positional, keywords)
        elif kind in ("tcp", "tcp6", "ssl"):
            _checkInterface(kind, positional, keywords)
        site = _ControlSite(controlResource(service), allowed, reactor)
        listening: Deferred[IListeningPort] = serverFromString(  # type: ignore[no-untyped-call]
            reactor, description
        ).listen(site)
        return listening.addCallback(_checkHost, endpoint)

    return maybeDeferred(listen)


def _checkHost(port: IListeningPort, endpoint: str) -> IListeningPort | Deferred[Any]:
    """
    Keep C{port} if it is a unix socket or on a loopback address: whatever
    endpoint type made it (C{systemd:...} included).
    """
    host = port.getHost()
    if isinstance(host, UNIXAddress):
        return port
    if isinstance(host, IPv4Address | IPv6Address) and isLoopback(host.host):
        return port

    def refuse(_: object) -> IListeningPort:
        raise ValueError(
            f"the control API listens only on a unix socket or a loopback "
            f"address, and {endpoint!r} listened on {host}"
        )

    return maybeDeferred(port.stopListening).addBoth(refuse)
