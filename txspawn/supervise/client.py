# -*- test-case-name: tests.test_supervise_ctl -*-
"""
A synchronous client of the control API (L{txspawn.supervise.control}), on
the stdlib alone: C{http.client} over a unix socket or tcp.  No reactor:
it is what C{python -m txspawn ctl} uses, and what a script or a test in a
thread can use::

    from txspawn.supervise.client import ControlClient
    from txspawn.supervise.status import formatTable

    client = ControlClient("unix:path=/srv/app/txspawn.sock")
    print(formatTable(client.status()))
    for chunk in client.follow("web"):
        print(chunk.decode(), end="")

@since: txspawn 0.1
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from txspawn.supervise._endpoint import ControlAddress, controlAddress

__all__ = [
    "ControlClient",
    "ControlError",
    "ControlRefused",
    "Streaming",
    "SupervisorNotListening",
]


class ControlError(Exception):
    """
    A control request failed.

    @ivar status: The HTTP status of the answer (C{400}, C{404}, C{409},
        ...), or C{None} when there was no answer.
    @ivar message: What went wrong (the server's C{"error"}).
    @ivar body: The whole JSON answer, or C{None}.

    @since: txspawn 0.1
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class SupervisorNotListening(ControlError):
    """
    No supervisor answers at the endpoint: no socket there, or no one
    accepting on it.

    @since: txspawn 0.1
    """


class ControlRefused(ControlError):
    """
    The supervisor refused this user (403), or the socket's mode does not
    let this user connect at all.

    @since: txspawn 0.1
    """


class _UNIXConnection(http.client.HTTPConnection):
    """
    HTTP over a unix socket.
    """

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class ControlClient:
    """
    Drives a supervisor through its control API.

    Each call is one request on a connection of its own.  Every method
    raises L{SupervisorNotListening} when no supervisor answers,
    L{ControlRefused} when this user may not drive it, and L{ControlError}
    (with the HTTP status) for a request that failed: an unknown program
    (404), a program that went C{FATAL} (409), a bad config at reload
    (400, the errors in C{body["errors"]}).

    @ivar address: Where it connects.

    @since: txspawn 0.1
    """

    def __init__(self, endpoint: str, timeout: float | None = None) -> None:
        """
        @param endpoint: The control endpoint string, as in the config's
            C{[supervisor] control} (C{unix:path=...}, C{tcp:PORT:interface=...}).
        @param timeout: Seconds to wait on the socket for a request that
            does not stream, or C{None} to wait as long as it takes (a stop
            lasts up to the program's stop timeout).
        @raise ValueError: C{endpoint} is not a unix or tcp endpoint.
        """
        self.address: ControlAddress = controlAddress(endpoint)
        self._timeout = timeout

    # -- the API ------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """
        One status row per instance (L{ProgramStatus.toJSON} dicts), in
        start order.
        """
        return self._programs(self._json("GET", "/v1/status"))

    def start(self, name: str) -> list[dict[str, Any]]:
        """
        Start C{name} (a program, an instance or C{"all"}); return once
        every instance named is C{RUNNING}, with their status rows.
        """
        return self._programs(self._json("POST", _programPath(name, "start")))

    def stop(self, name: str) -> list[dict[str, Any]]:
        """
        Stop C{name}; return once its trees are gone, with its status rows.
        """
        return self._programs(self._json("POST", _programPath(name, "stop")))

    def restart(self, name: str) -> list[dict[str, Any]]:
        """
        Stop then start C{name}; return its status rows.
        """
        return self._programs(self._json("POST", _programPath(name, "restart")))

    def signal(self, name: str, signal: str | int) -> list[dict[str, Any]]:
        """
        Send C{signal} (C{"HUP"}, C{"SIGHUP"}, C{1}) to each instance's
        child; return their status rows.
        """
        body = {"signal": signal}
        return self._programs(self._json("POST", _programPath(name, "signal"), body))

    def reload(self) -> dict[str, list[str]]:
        """
        Reload the supervisor's config file: the names C{"added"},
        C{"removed"}, C{"changed"} and C{"unchanged"}.
        """
        answer = self._json("POST", "/v1/reload")
        return {key: list(answer.get(key, [])) for key in _RELOAD_KEYS}

    def tail(self, name: str, lines: int = 100, stream: str = "stdout") -> bytes:
        """
        The last C{lines} lines of an instance's C{stream} log.
        """
        path = _programPath(name, "log", stream=stream, lines=lines)
        connection, response = self._open("GET", path)
        try:
            return response.read()
        finally:
            connection.close()

    def follow(
        self, name: str, lines: int = 10, stream: str = "stdout"
    ) -> Streaming[bytes]:
        """
        The last C{lines} lines of an instance's log, then what it writes
        from now on, as it comes (C{tail -f}).

        The request is made at once (so an unknown name raises here, and
        every line written after this returns is in the iterator); closing
        the iterator closes the connection.
        """
        path = _programPath(name, "log", stream=stream, lines=lines, follow=1)
        connection, response = self._open("GET", path, streaming=True)
        return Streaming(connection, _chunks(response))

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """
        The events the supervisor keeps whose C{seq} is above C{since}
        (L{SupervisorEvent.toJSON} dicts).
        """
        connection, response = self._open(
            "GET", "/v1/events?" + urlencode({"since": since})
        )
        try:
            body = response.read()
        finally:
            connection.close()
        return _eventLines(body)

    def followEvents(self, since: int = 0) -> Streaming[dict[str, Any]]:
        """
        The events kept whose C{seq} is above C{since}, then every new one as
        it happens.

        The request is made at once (every event after this returns is in
        the iterator); closing the iterator closes the connection.
        """
        query = urlencode({"since": since, "follow": 1})
        connection, response = self._open("GET", "/v1/events?" + query, streaming=True)
        return Streaming(connection, _events(response))

    # -- the plumbing -------------------------------------------------------------

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.address.path is not None:
            return _UNIXConnection(self.address.path, timeout)
        assert self.address.host is not None
        return http.client.HTTPConnection(
            self.address.host, self.address.port, timeout=timeout
        )

    def _open(
        self, method: str, path: str, body: object = None, *, streaming: bool = False
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """
        Send a request; its connection and its answer, checked: an error
        answer is raised.
        """
        connection = self._connection(None if streaming else self._timeout)
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            try:
                connection.request(method, path, payload, headers)
            except OSError as error:
                raise self._unreachable(error) from error
            try:
                response = connection.getresponse()
            except (http.client.HTTPException, OSError) as error:
                raise ControlError(
                    f"the supervisor at {self.address} did not answer: {error}"
                ) from error
            if response.status >= 400:
                raise _errorFrom(response)
        except BaseException:
            connection.close()
            raise
        return connection, response

    def _json(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        connection, response = self._open(method, path, body)
        try:
            answer = json.loads(response.read())
        finally:
            connection.close()
        if not isinstance(answer, dict):
            raise ControlError(f"the supervisor answered {answer!r}, not an object")
        return answer

    def _programs(self, answer: dict[str, Any]) -> list[dict[str, Any]]:
        return list(answer.get("programs", []))

    def _unreachable(self, error: OSError) -> ControlError:
        where = self.address
        if error.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return SupervisorNotListening(f"no supervisor is listening at {where}")
        if error.errno in (errno.EACCES, errno.EPERM):
            return ControlRefused(
                f"permission denied connecting to {where}: the socket lets only "
                f"its owner in (run as the supervisor's user, or root)"
            )
        return SupervisorNotListening(f"cannot reach a supervisor at {where}: {error}")


_RELOAD_KEYS = ("added", "removed", "changed", "unchanged")


_T = TypeVar("_T")


class Streaming(Iterator[_T]):
    """
    What a following request gives: its items as they come.  L{close}
    (or leaving a C{with} block) closes the connection, and so ends the
    following on the supervisor's side, even before the first item.

    @since: txspawn 0.1
    """

    def __init__(
        self, connection: http.client.HTTPConnection, items: Iterator[_T]
    ) -> None:
        self._connection = connection
        self._items = items

    def __next__(self) -> _T:
        try:
            return next(self._items)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """
        Close the connection.
        """
        self._connection.close()

    def __enter__(self) -> Streaming[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while chunk := response.read1(65536):
        yield chunk


def _events(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    while line := response.readline():
        if line.strip():
            yield json.loads(line)


def _programPath(name: str, action: str, **query: object) -> str:
    path = f"/v1/programs/{quote(name, safe='')}/{action}"
    return f"{path}?{urlencode(query)}" if query else path


def _errorFrom(response: http.client.HTTPResponse) -> ControlError:
    """
    The exception for an error answer.
    """
    raw = response.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    else:
        body = None
        message = raw.decode("utf-8", "replace").strip() or response.reason
    if response.status == 403:
        return ControlRefused(message, response.status, body)
    return ControlError(message, response.status, body)


def _eventLines(body: bytes) -> list[dict[str, Any]]:
    """
    The events of an answer of C{/v1/events}: one JSON object per line.
    """
    return [json.loads(line) for line in body.splitlines() if line]
