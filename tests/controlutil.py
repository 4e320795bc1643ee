# -*- test-case-name: tests.test_supervise_control -*-
"""
A real supervisor serving its control API, for the tests of the control API
and of C{ctl}: L{SupervisorMixin.supervise} runs a scenario against a
L{SupervisorService} with real children on the test's reactor, its control
socket in a short temporary directory.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from twisted.internet import tcp
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase
from txspawn.supervise.client import ControlClient
from txspawn.supervise.config import loadConfig
from txspawn.supervise.control import listenControl
from txspawn.supervise.service import SupervisorService

__all__ = [
    "SLEEPER",
    "Supervised",
    "SupervisorMixin",
    "inThread",
    "linesOf",
    "program",
    "rawRequest",
    "shortTempDir",
]

T = TypeVar("T")

# Twisted's first listening port opens one fd (/dev/null) that it keeps for
# the life of the process, to accept-and-close connections under EMFILE.
# Open it now, as any earlier listen would have, so that the per-test fd
# check does not count it as this test's leak.
tcp._reservedFD.reserve()

#: A program that says it started, answers SIGHUP with a line, and waits.
SLEEPER = """
import signal, sys, time
signal.signal(signal.SIGHUP, lambda *a: print("got HUP", flush=True))
print("started", flush=True)
while True:
    time.sleep(60)
"""


def program(name: str, source: str, *extra: str) -> str:
    """
    The TOML of a program running C{source} with this test's Python.
    """
    command = json.dumps([sys.executable, "-c", source])
    return "\n".join([f"[programs.{name}]", f"command = {command}", *extra, ""])


def inThread(reactor: Any, work: Callable[..., T], *args: object) -> Deferred[T]:
    """
    Run the blocking C{work} in a daemon thread of its own (a thread pool's
    would be joined at reactor shutdown, and hang it if C{work} hangs);
    its result or exception in the reactor's thread.
    """
    done: Deferred[T] = Deferred()

    def run() -> None:
        try:
            result = work(*args)
        except BaseException:
            failure = Failure()
            reactor.callFromThread(done.errback, failure)
        else:
            reactor.callFromThread(done.callback, result)

    threading.Thread(target=run, daemon=True).start()
    return done


def rawRequest(
    path: str, method: str, target: str, body: bytes | None = None
) -> tuple[int, str, bytes]:
    """
    One HTTP request over the unix socket at C{path}, without the client:
    the status, the content type and the body.
    """

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)

    connection = Connection("localhost")
    try:
        connection.request(method, target, body)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()


def shortTempDir(case: SynchronousTestCase) -> str:
    """
    A new directory, removed after the test, with a path short enough for a
    unix socket in it (C{sun_path} holds 108 bytes; trial's temporary
    directories are deeper than that).
    """
    base = tempfile.mkdtemp(prefix="txspawn-ctl-")
    case.addCleanup(shutil.rmtree, base, True)
    return base


def linesOf(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


class Supervised:
    """
    One supervisor under test: its service, its control port's client, its
    directory and config file.
    """

    def __init__(
        self, reactor: Any, service: SupervisorService, base: str, path: str
    ) -> None:
        self.reactor = reactor
        self.service = service
        self.base = base
        self.configPath = path
        self.client = ControlClient(service.config.control, timeout=30)

    def call(self, work: Callable[..., T], *args: object) -> Deferred[T]:
        """
        C{work} in a thread: what a client process would do.
        """
        return inThread(self.reactor, work, *args)


class SupervisorMixin(MixinBase):
    """
    Runs scenarios against a real supervisor.
    """

    def supervise(
        self,
        programs: str,
        scenario: Callable[[Supervised], Coroutine[Any, Any, object]],
        control: str = "unix:path=ctl.sock",
        base: str | None = None,
    ) -> None:
        """
        Run C{scenario} against a supervisor of C{programs} serving its
        control API on C{control}; then stop it all and check that nothing
        is left.
        """
        reactor = self.buildReactor()
        if base is None:
            base = shortTempDir(self)
        path = os.path.join(base, "procs.toml")
        with open(path, "w") as configFile:
            configFile.write(
                f"[supervisor]\ncontrol = {json.dumps(control)}\n{programs}"
            )
        service = SupervisorService(loadConfig(path), reactor, configPath=path)
        outcome: list[object] = []

        async def run() -> None:
            service.startService()
            try:
                port = await listenControl(service, service.config.control, reactor)
                try:
                    await scenario(Supervised(reactor, service, base, path))
                finally:
                    await maybeDeferred(port.stopListening)
            finally:
                await service.stopService()

        def main() -> None:
            finished = Deferred.fromCoroutine(run())
            finished.addBoth(outcome.append).addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(main)
        self.runReactor(reactor)
        [result] = outcome
        if isinstance(result, Failure):
            result.raiseException()

    async def assertFailsWith(self, deferred: Deferred[Any], kind: type[T]) -> T:
        try:
            result = await deferred
        except BaseException as error:
            if isinstance(error, kind):
                return error
            raise
        self.fail(f"expected {kind.__name__}, got {result!r}")
