# -*- test-case-name: tests.test_supervise_readiness -*-
"""
The check-command readiness check: a command run until it exits 0.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IProcessTransport
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.errors import SpawnError
from txspawn.interfaces import IReactorSpawn
from txspawn.supervise._timedcheck import NotReady, TimedCheck
from txspawn.supervise.states import IReadinessCheck, describeExit

__all__ = ["ReadyCommand"]


class _CheckProtocol(ProcessProtocol):
    """
    One run of a check command: keeps the end of its output for the
    message, tells its end.
    """

    def __init__(self, ended: Callable[[_CheckProtocol, Failure], object]) -> None:
        self.output = b""
        #: Killed because its run's check ended: its exit means nothing.
        self.abandoned = False
        self._ended = ended

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.output = (self.output + data)[-512:]

    def processEnded(self, reason: Failure) -> None:
        self._ended(self, reason)


#: Spawn failures a later attempt may not meet (as for programs).
_PASSING_ERRNOS = frozenset({errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOMEM})


#: Seconds after a check command exits at which its pipes are closed even
#: if a process it left holds them.
CLOSE_PIPES_AFTER_EXIT = 0.5


@implementer(IReadinessCheck)
class ReadyCommand(TimedCheck):
    """
    Ready once a check command exits 0.  It is run at the start, then
    again after each failure, the pause between runs growing from 0.1 s to
    1 s.  A command that cannot be executed (missing, not executable)
    fails the check at once with the reason.  The command gets
    C{TXSPAWN_PID}, the program's child's pid, in its environment.

    @ivar command: The check's argv.
    @ivar timeout: Seconds after which the check fails with L{NotReady}
        (a check command still running is killed).

    @since: txspawn 0.1
    """

    def __init__(
        self,
        reactor: Any,
        command: tuple[str, ...],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        """
        @param reactor: Provides C{IReactorProcess} and
            L{twisted.internet.interfaces.IReactorTime}.
        @param command: The argv (C{command[0]} looked up on C{PATH}).
        @param timeout: Seconds (finite, C{>= 0}).
        @param env: The command's environment (default: the supervisor's).
        @param path: Its working directory (default: the supervisor's).
        @raise ValueError: An empty command or a bad timeout.
        """
        super().__init__(reactor, timeout)
        if not command:
            raise ValueError("a check command needs at least a program name")
        self._reactor = reactor
        self.command = tuple(command)
        self._env = env
        self._path = path
        self._pid: int | None = None
        self._running: tuple[_CheckProtocol, IProcessTransport] | None = None
        self._closed: list[Deferred[None]] = []

    def _describe(self) -> str:
        return f"check command {self.command[0]!r} did not succeed"

    def start(self, pid: int) -> Deferred[None]:
        """
        Run the command now, and again until it succeeds.
        """
        ready = self._begin()
        self._pid = pid
        self._attempt()
        return ready

    def _attempt(self) -> None:
        if self._running is not None or self._pid is None:
            return
        env = dict(os.environ if self._env is None else self._env)
        env["TXSPAWN_PID"] = str(self._pid)
        protocol = _CheckProtocol(self._checkEnded)
        spawnProcess: Callable[..., IProcessTransport] = self._reactor.spawnProcess
        options: dict[str, Any] = {}
        if IReactorSpawn.providedBy(self._reactor):
            # A check that leaves a process holding its output (C{cmd &})
            # still ends: its pipes are closed soon after it exits.
            options["closePipesAfterExit"] = CLOSE_PIPES_AFTER_EXIT
        try:
            transport = spawnProcess(
                protocol,
                self.command[0],
                self.command,
                env=env,
                path=self._path,
                **options,
            )
        except SpawnError as error:
            if error.errno in _PASSING_ERRNOS:
                self._again(self._attempt, str(error))
            else:
                self._fail(NotReady(f"check command cannot run: {error}"))
            return
        except OSError as error:
            self._fail(NotReady(f"check command cannot run: {error}"))
            return
        transport.closeStdin()
        self._running = (protocol, transport)

    def _checkEnded(self, protocol: _CheckProtocol, reason: Failure) -> None:
        self._running = None
        if protocol.abandoned:
            waiters, self._closed = self._closed, []
            for waiter in waiters:
                waiter.callback(None)
            # A new run began while this one's command was dying.
            self._attempt()
            return
        value = reason.value
        if isinstance(value, ProcessDone):
            self._succeed()
            return
        assert isinstance(value, ProcessTerminated)
        problem = describeExit(value)
        last = protocol.output.strip().rpartition(b"\n")[2]
        if last:
            problem = f"{problem}: {last.decode('utf-8', 'replace')}"
        self._again(self._attempt, problem)

    def _stopAttempt(self) -> None:
        self._pid = None
        if self._running is not None and not self._running[0].abandoned:
            self._running[0].abandoned = True
            try:
                self._running[1].signalProcess("KILL")
            except ProcessExitedAlready:
                pass

    def close(self) -> Deferred[None] | None:
        """
        Abandon the check; kill a check command still running.

        @return: C{None}, or a L{Deferred} firing once the killed command
            was reaped.
        """
        self.cancel()
        if self._running is None:
            return None
        closed: Deferred[None] = Deferred()
        self._closed.append(closed)
        return closed
