# -*- test-case-name: tests.test_supervise_readiness -*-
"""
The C{NOTIFY_SOCKET} readiness check (systemd's protocol): a unix datagram
socket the child sends C{READY=1} to, its sender told by the kernel.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFDSet, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.supervise._timedcheck import TimedCheck
from txspawn.supervise.states import IReadinessCheck

__all__ = ["ReadyNotify"]

_log = Logger()

#: The longest path a unix socket address holds (C{sun_path}, with its NUL).
_SUN_PATH_MAX = 107

#: C{struct ucred}: pid, uid, gid.
_UCRED = struct.Struct("iII")

#: How many datagrams one wake-up reads at most, so a flood cannot keep
#: the reactor from everything else.
_READS_PER_WAKEUP = 64


@implementer(IReadinessCheck, IReadDescriptor)
class ReadyNotify(TimedCheck):
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
    @ivar status: The last C{STATUS=...} the current child's tree sent
        (heard while it runs, after it is ready too), or C{None}.
    @ivar timeout: Seconds after which the check fails with
        L{txspawn.supervise.readiness.NotReady}.

    @since: txspawn 0.1
    """

    def __init__(self, reactor: Any, path: str, *, timeout: float = 60.0) -> None:
        """
        Bind the socket at C{path} (replacing a socket file left there)
        and start reading it.

        @param reactor: Provides L{IReactorFDSet} and
            L{twisted.internet.interfaces.IReactorTime}.
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

    def cancel(self) -> None:
        """
        Abandon the current check (its L{Deferred} never fires) and stop
        hearing the child: it exited, or is being stopped.
        """
        super().cancel()
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
        if ready and self.checking:
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
