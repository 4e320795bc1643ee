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
failed.

@since: txspawn 0.1
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import socket
import struct
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
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import (
    IDelayedCall,
    IProcessTransport,
    IProtocol,
    IReactorFDSet,
    IReactorTime,
    IReadDescriptor,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.errors import SpawnError
from txspawn.supervise.config import ReadyConfig
from txspawn.supervise.states import IReadinessCheck, ReadyAfter, describeExit

__all__ = [
    "NotReady",
    "Readiness",
    "ReadyCommand",
    "ReadyNotify",
    "ReadyTCP",
    "readinessFor",
]

_log = Logger()

#: The first pause between two attempts of a polling check, and the
#: longest: it doubles from the first up to the longest.
FIRST_INTERVAL = 0.1
MAX_INTERVAL = 1.0

#: Seconds one TCP connection attempt may take.
CONNECT_TIMEOUT = 5.0

#: The longest path a unix socket address holds (C{sun_path}, with its NUL).
_SUN_PATH_MAX = 107

#: C{struct ucred}: pid, uid, gid.
_UCRED = struct.Struct("iII")

#: How many datagrams one wake-up reads at most, so a flood cannot keep
#: the reactor from everything else.
_READS_PER_WAKEUP = 64


class NotReady(Exception):
    """
    A readiness check gave up: the timeout passed, or the check cannot run
    at all (a check command that cannot be executed).

    @since: txspawn 0.1
    """


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


class _Attempt:
    """
    The state every check shares: the current run's L{Deferred}, its
    deadline, and the growing pause between polling attempts.
    """

    def __init__(self, clock: IReactorTime, timeout: float) -> None:
        if not math.isfinite(timeout) or timeout < 0:
            raise ValueError(f"timeout must be >= 0, not {timeout!r}")
        self._clock = clock
        self.timeout = float(timeout)
        self._ready: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None
        self._next: IDelayedCall | None = None
        self._interval = FIRST_INTERVAL
        self._lastProblem = ""

    @property
    def checking(self) -> bool:
        """
        Whether a run's check is in progress.
        """
        return self._ready is not None

    def _begin(self) -> Deferred[None]:
        self.cancel()
        ready: Deferred[None] = Deferred()
        self._ready = ready
        self._interval = FIRST_INTERVAL
        self._lastProblem = ""
        self._deadline = self._clock.callLater(self.timeout, self._timedOut)
        return ready

    def _timedOut(self) -> None:
        self._deadline = None
        why = f"{self._describe()} within {self.timeout:g} s"
        if self._lastProblem:
            why = f"{why} (last: {self._lastProblem})"
        self._fail(NotReady(why))

    def _describe(self) -> str:
        raise NotImplementedError()

    def _again(self, attempt: Callable[[], object], problem: str) -> None:
        """
        The attempt failed with C{problem}: try again after the pause.
        """
        self._lastProblem = problem
        if self._ready is None:
            return
        self._next = self._clock.callLater(self._interval, self._fromTimer, attempt)
        self._interval = min(self._interval * 2, MAX_INTERVAL)

    def _fromTimer(self, attempt: Callable[[], object]) -> None:
        self._next = None
        attempt()

    def _succeed(self) -> None:
        ready = self._end()
        if ready is not None:
            ready.callback(None)

    def _fail(self, error: Exception) -> None:
        ready = self._end()
        if ready is not None:
            ready.errback(error)

    def _end(self) -> Deferred[None] | None:
        ready, self._ready = self._ready, None
        for call in (self._deadline, self._next):
            if call is not None and call.active():
                call.cancel()
        self._deadline = self._next = None
        self._stopAttempt()
        return ready

    def _stopAttempt(self) -> None:
        """
        Abandon the attempt in progress, if any (subclasses).
        """

    def cancel(self) -> None:
        """
        Abandon the current check: its L{Deferred} never fires.
        """
        self._end()


class _Probe(Protocol):
    """
    The protocol of a TCP readiness connection: it only has to connect.
    """


@implementer(IReadinessCheck)
class ReadyTCP(_Attempt):
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
        @param reactor: Provides C{IReactorTCP} and L{IReactorTime}.
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


@implementer(IReadinessCheck, IReadDescriptor)
class ReadyNotify(_Attempt):
    """
    systemd's C{NOTIFY_SOCKET} protocol: the child (or one of its
    descendants) sends a datagram with the line C{READY=1} to the unix
    socket named by C{$NOTIFY_SOCKET}.

    The socket is made at construction, so it exists before any child is
    spawned, with mode C{0666} so that a child running as another user can
    send to it: what makes a message count is its sender, which the kernel
    tells (C{SO_PASSCRED}): only the current child and its descendants are
    heard.  So a C{READY=1} left in the socket by an earlier run, or sent
    by anyone else, is ignored.  A sender that exited and was reaped
    before its message was read cannot be checked and is ignored too:
    notify from the child itself (a shell script that C{exec}s its program
    keeps the pid) or from a descendant still running.

    A path too long for a unix socket address (107 bytes) is replaced by
    an abstract socket named after it (C{@txspawn-notify/<hash>}, as
    C{$NOTIFY_SOCKET} writes it: C{sd_notify} understands the C{@}); a
    child in a network namespace of its own cannot reach that one.

    @ivar path: The socket's path, or its abstract name starting with
        C{@}: what C{$NOTIFY_SOCKET} is set to.
    @ivar status: The last C{STATUS=...} the child sent, or C{None}.
    @ivar timeout: Seconds after which the check fails with L{NotReady}.

    @since: txspawn 0.1
    """

    def __init__(self, reactor: Any, path: str, *, timeout: float = 60.0) -> None:
        """
        Bind the socket at C{path} (replacing a socket file left there)
        and start reading it.

        @param reactor: Provides L{IReactorFDSet} and L{IReactorTime}.
        @param path: Where the socket goes.
        @param timeout: Seconds (finite, C{>= 0}).
        @raise ValueError: The timeout is bad.
        @raise OSError: The socket could not be made.
        """
        super().__init__(reactor, timeout)
        self._reactor: IReactorFDSet = reactor
        self._file: str | None = path
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
            path = f"@txspawn-notify/{digest}"
            self._file = None
        self.path = path
        self.status: str | None = None
        self._pid: int | None = None
        self._socket = socket.socket(
            socket.AF_UNIX,
            socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        )
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            if self._file is None:
                self._socket.bind("\0" + path[1:])
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                self._socket.bind(path)
                os.chmod(path, 0o666)
        except BaseException:
            self._socket.close()
            raise
        self._reactor.addReader(self)

    def _describe(self) -> str:
        return f"no READY=1 received on {self.path}"

    def start(self, pid: int) -> Deferred[None]:
        """
        Wait for C{READY=1} from the child C{pid} or its descendants
        (read at once if it is already in the socket).
        """
        ready = self._begin()
        self._pid = pid
        self.doRead()
        return ready

    def _stopAttempt(self) -> None:
        self._pid = None

    # -- IReadDescriptor ------------------------------------------------------

    def fileno(self) -> int:
        """
        The socket's fd (C{-1} once closed).
        """
        return self._socket.fileno()

    def logPrefix(self) -> str:
        """
        How the reactor's log names this reader.
        """
        return "ReadyNotify"

    def doRead(self) -> None:
        """
        Read the datagrams waiting (a bounded number), and act on those
        from the current child's tree.
        """
        space = socket.CMSG_SPACE(_UCRED.size)
        for _ in range(_READS_PER_WAKEUP):
            try:
                data, ancillary, _flags, _address = self._socket.recvmsg(4096, space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                _log.failure("reading {path}", path=self.path)
                return
            sender = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = _UCRED.unpack(value[: _UCRED.size])[0]
            self._received(sender, data)

    def _received(self, sender: int | None, data: bytes) -> None:
        if self._pid is None or sender is None:
            return
        if not _inTree(sender, self._pid):
            _log.debug(
                "{path}: ignored a message from pid {sender}, not of pid {pid}'s tree",
                path=self.path,
                sender=sender,
                pid=self._pid,
            )
            return
        ready = False
        for line in data.decode("utf-8", "replace").split("\n"):
            key, _, value = line.partition("=")
            if key == "READY" and value == "1":
                ready = True
            elif key == "STATUS":
                self.status = value
        if ready:
            self._succeed()

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped this reader (it is shutting down): close.
        """
        self.close()

    def close(self) -> None:
        """
        Stop reading, close the socket and remove its file.  Calling it
        again does nothing.
        """
        self.cancel()
        if self._socket.fileno() == -1:
            return
        self._reactor.removeReader(self)
        self._socket.close()
        if self._file is not None:
            try:
                os.unlink(self._file)
            except FileNotFoundError:
                pass


def _inTree(pid: int, root: int) -> bool:
    """
    Whether C{pid} is C{root} or, as C{/proc} tells now, a descendant.
    """
    for _ in range(128):
        if pid == root:
            return True
        if pid <= 1:
            return False
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            return False
        pid = int(fields[1])
    return False


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


@implementer(IReadinessCheck)
class ReadyCommand(_Attempt):
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
        @param reactor: Provides C{IReactorProcess} and L{IReactorTime}.
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
        try:
            transport = spawnProcess(
                protocol, self.command[0], self.command, env=env, path=self._path
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
    @raise ValueError: The config is incomplete for its kind.
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
