# -*- test-case-name: tests.test_supervise_control -*-
"""
The control API's routes: L{ControlAPI}, a C{twisted.web} resource over a
L{txspawn.supervise.service.SupervisorService}.  The routes and the
serving are described in L{txspawn.supervise.control}.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from txspawn.supervise.config import ConfigErrors
from txspawn.supervise.service import ProgramFailed, UnknownProgram

if TYPE_CHECKING:
    from txspawn.supervise.events import SupervisorEvent
    from txspawn.supervise.service import SupervisorService

__all__ = ["ControlAPI", "Request", "answer", "describePeer", "peerCredentials"]

_log = Logger()

_JSON = b"application/json"
_NDJSON = b"application/x-ndjson"
_TEXT = b"text/plain; charset=utf-8"
_STREAMS = ("stdout", "stderr")


class Request(Protocol):
    """
    What the control API uses of a C{twisted.web} request (untyped there).
    """

    method: bytes
    path: bytes
    postpath: list[bytes] | None
    args: dict[bytes, list[bytes]] | None
    content: BinaryIO | None
    channel: Any

    def setResponseCode(self, code: int) -> None: ...
    def setHeader(self, name: bytes, value: bytes) -> None: ...
    def write(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def notifyFinish(self) -> Deferred[None]: ...
    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...
    def getHost(self) -> object: ...
    def getClientAddress(self) -> object: ...


class _HTTPError(Exception):
    """
    A request that gets an error answer: C{{"error": message, **extra}}.
    """

    def __init__(self, code: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def answer(request: Request, code: int, body: object) -> bytes:
    """
    Set C{request}'s code and JSON content type; the body to write.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", _JSON)
    return json.dumps(body).encode("utf-8") + b"\n"


def _errorBody(error: _HTTPError) -> dict[str, object]:
    return {"error": error.message, **error.extra}


def _problem(failure: Failure) -> _HTTPError:
    """
    The error answer for an operation that failed with C{failure}.
    """
    error = failure.value
    if isinstance(error, _HTTPError):
        return error
    if isinstance(error, UnknownProgram):
        return _HTTPError(404, str(error))
    if isinstance(error, ProgramFailed):
        return _HTTPError(409, str(error))
    if isinstance(error, ConfigErrors):
        errors = [
            {"path": e.path, "line": e.line, "message": e.message} for e in error.errors
        ]
        return _HTTPError(400, str(error), errors=errors)
    if isinstance(error, ValueError):
        return _HTTPError(400, str(error))
    _log.failure("control request failed", failure)
    return _HTTPError(500, f"internal error: {type(error).__name__}: {error}")


def _argument(request: Request, name: str, default: str) -> str:
    values = request.args.get(name.encode("ascii")) if request.args else None
    return values[-1].decode("utf-8", "replace") if values else default


def _count(request: Request, name: str, default: int) -> int:
    text = _argument(request, name, str(default))
    if not text.isdigit():
        raise _HTTPError(400, f"{name} must be a whole number >= 0, not {text!r}")
    return int(text)


def _flag(request: Request, name: str) -> bool:
    text = _argument(request, name, "0").lower()
    if text not in ("0", "1", "true", "false", "yes", "no", ""):
        raise _HTTPError(400, f"{name} must be 0 or 1, not {text!r}")
    return text in ("1", "true", "yes")


@implementer(IPushProducer)
class _Stream:
    """
    Lines streamed to one client (a followed log, the event stream) while
    it keeps up.  When the client reads slower than lines come, the
    connection's buffer would grow without bound; instead the transport
    pauses this producer and, while paused, what comes is handed to
    C{whilePaused} (which drops or remembers it) and C{onResume} is told
    when the client caught up.
    """

    def __init__(
        self,
        request: Request,
        whilePaused: Callable[[bytes], object],
        onResume: Callable[[], object],
    ) -> None:
        self._request = request
        self._whilePaused = whilePaused
        self._onResume = onResume
        self.paused = False
        self.stopped = False
        self._stopCallbacks: list[Callable[[], object]] = []
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(lambda _: self.stopProducing())

    def onStop(self, callback: Callable[[], object]) -> None:
        """
        Call C{callback} once, when the client is gone.
        """
        if self.stopped:
            callback()
        else:
            self._stopCallbacks.append(callback)

    def write(self, data: bytes) -> None:
        if self.stopped or not data:
            return
        if self.paused:
            self._whilePaused(data)
        else:
            self._request.write(data)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused and not self.stopped:
            self.paused = False
            self._onResume()

    def stopProducing(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        callbacks, self._stopCallbacks = self._stopCallbacks, []
        for callback in callbacks:
            callback()


class ControlAPI(Resource):
    """
    The control API's routes over one L{SupervisorService}: see
    L{txspawn.supervise.control}.
    """

    isLeaf = True

    def __init__(self, service: SupervisorService) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._service = service

    def render(self, request: Request) -> bytes | int:
        segments = [s.decode("utf-8", "replace") for s in request.postpath or []]
        if segments and not segments[-1]:
            segments.pop()
        try:
            method, handler = self._route(segments)
            if request.method != method:
                request.setHeader(b"allow", method)
                raise _HTTPError(
                    405, f"use {method.decode()} for /{'/'.join(segments)}"
                )
            return handler(request)
        except _HTTPError as error:
            return answer(request, error.code, _errorBody(error))

    def _route(
        self, segments: list[str]
    ) -> tuple[bytes, Callable[[Request], bytes | int]]:
        match segments:
            case ["v1", "status"]:
                return b"GET", self._status
            case ["v1", "programs", name, "start" | "stop" | "restart" as action]:
                return b"POST", lambda request: self._act(request, action, name)
            case ["v1", "programs", name, "signal"]:
                return b"POST", lambda request: self._signal(request, name)
            case ["v1", "programs", name, "log"]:
                return b"GET", lambda request: self._log(request, name)
            case ["v1", "events"]:
                return b"GET", self._events
            case ["v1", "reload"]:
                return b"POST", self._reload
        raise _HTTPError(404, f"no route /{'/'.join(segments)}")

    # -- helpers -----------------------------------------------------------------

    def _rows(self, names: frozenset[str] | None = None) -> list[dict[str, object]]:
        return [
            row.toJSON()
            for row in self._service.status()
            if names is None or row.name in names
        ]

    def _instanceNames(self, name: str) -> frozenset[str]:
        try:
            return frozenset(p.name for p in self._service.instances(name))
        except UnknownProgram as error:
            raise _HTTPError(404, str(error)) from None

    def _later(
        self,
        request: Request,
        work: Callable[[], Deferred[Any] | Any],
        body: Callable[[Any], tuple[int, object]],
    ) -> int:
        """
        Answer C{request} once C{work}'s L{Deferred} fires: with C{body} of
        its result, or with the error its failure means.
        """
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)

        def done(result: object) -> None:
            if not gone:
                code, content = body(result)
                request.write(answer(request, code, content))
                request.finish()

        def failed(failure: Failure) -> None:
            error = _problem(failure)
            if not gone:
                request.write(answer(request, error.code, _errorBody(error)))
                request.finish()

        maybeDeferred(work).addCallbacks(done, failed).addErrback(
            lambda failure: _log.failure("answering a control request", failure)
        )
        return NOT_DONE_YET

    # -- the routes --------------------------------------------------------------

    def _status(self, request: Request) -> bytes:
        return answer(request, 200, {"programs": self._rows()})

    def _act(self, request: Request, action: str, name: str) -> int:
        names = self._instanceNames(name)
        _log.info(
            "control: {action} {name} ({peer})",
            action=action,
            name=name,
            peer=describePeer(request),
        )
        operation = getattr(self._service, action)

        def failedRows(failure: Failure) -> Failure:
            if isinstance(failure.value, ProgramFailed):
                error = _problem(failure)
                error.extra["programs"] = self._rows(names)
                raise error
            return failure

        return self._later(
            request,
            lambda: maybeDeferred(operation, name).addErrback(failedRows),
            lambda _: (200, {"programs": self._rows(names)}),
        )

    def _signal(self, request: Request, name: str) -> bytes:
        try:
            raw = request.content.read() if request.content is not None else b""
            body = json.loads(raw or b"{}")
        except ValueError as error:
            raise _HTTPError(400, f"the body is not JSON: {error}") from None
        number = body.get("signal") if isinstance(body, dict) else None
        if isinstance(number, bool) or not isinstance(number, str | int):
            raise _HTTPError(400, 'the body must be {"signal": NAME or NUMBER}')
        names = self._instanceNames(name)
        _log.info(
            "control: signal {signal} {name} ({peer})",
            signal=number,
            name=name,
            peer=describePeer(request),
        )
        try:
            self._service.signal(name, number)
        except UnknownProgram as error:
            raise _HTTPError(404, str(error)) from None
        except ValueError as error:
            raise _HTTPError(400, str(error)) from None
        return answer(request, 200, {"programs": self._rows(names)})

    def _log(self, request: Request, instance: str) -> bytes | int:
        stream = _argument(request, "stream", "stdout")
        if stream not in _STREAMS:
            raise _HTTPError(400, f"stream must be stdout or stderr, not {stream!r}")
        lines = _count(request, "lines", 100)
        follow = _flag(request, "follow")
        names = sorted(self._instanceNames(instance))
        if len(names) != 1:
            raise _HTTPError(
                400,
                f"{instance} has {len(names)} instances: name one ({', '.join(names)})",
            )
        logs = self._service.logsOf(names[0])
        tail = logs.tail(lines, stream) if lines else b""
        request.setHeader(b"content-type", _TEXT)
        if not follow:
            return tail
        dropped = [0]

        def drop(data: bytes) -> None:
            dropped[0] += data.count(b"\n")

        def resumed() -> None:
            if dropped[0]:
                request.write(
                    b"--- txspawn: %d lines not shown: the reader was slower "
                    b"than the program ---\n" % (dropped[0],)
                )
                dropped[0] = 0

        stream_ = _Stream(request, drop, resumed)
        request.write(tail)
        stream_.onStop(logs.follow(stream_.write, stream))
        return NOT_DONE_YET

    def _events(self, request: Request) -> bytes | int:
        since = _count(request, "since", 0)
        follow = _flag(request, "follow")
        log = self._service.events
        request.setHeader(b"content-type", _NDJSON)
        recent = log.recent(since)
        if not follow:
            return b"".join(_eventLine(event) for event in recent)
        last = [recent[-1].seq if recent else since]

        def send(event: SupervisorEvent) -> None:
            # While the client is slow, nothing is sent: it gets what it
            # missed from the log when it catches up.
            if event.seq > last[0] and not stream.paused:
                last[0] = event.seq
                stream.write(_eventLine(event))

        def caughtUp() -> None:
            # The client was slow: send what it missed from the log itself
            # (events older than the log keeps show as a gap in seq).
            for event in log.recent(last[0]):
                send(event)

        stream = _Stream(request, lambda data: None, caughtUp)
        request.write(b"".join(_eventLine(event) for event in recent))
        stream.onStop(log.subscribe(send))
        return NOT_DONE_YET

    def _reload(self, request: Request) -> int:
        _log.info("control: reload ({peer})", peer=describePeer(request))

        return self._later(
            request, self._service.reload, lambda result: (200, result.toJSON())
        )


def _eventLine(event: SupervisorEvent) -> bytes:
    return json.dumps(event.toJSON()).encode("utf-8") + b"\n"


def peerCredentials(request: Request) -> tuple[int, int, int] | None:
    """
    The C{(pid, uid, gid)} of the process at the other end of a unix
    socket request, or C{None} for another kind of connection.

    @raise OSError: The credentials cannot be read.
    """
    if not isinstance(request.getHost(), UNIXAddress):
        return None
    handle = request.channel.transport.getHandle()
    size = struct.calcsize("3i")
    pid, uid, gid = struct.unpack(
        "3i", handle.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    )
    return pid, uid, gid


def describePeer(request: Request) -> str:
    try:
        credentials = peerCredentials(request)
    except OSError:
        credentials = None
    if credentials is None:
        return f"from {request.getClientAddress()}"
    return f"from uid {credentials[1]} pid {credentials[0]}"
