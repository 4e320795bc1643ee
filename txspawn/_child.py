# -*- test-case-name: tests.test_child -*-
"""
One started child: its pid, its pidfd, and the one place it is reaped.

L{ChildProcess} is the single owner of a child's pidfd.  The transport
signals through it, the monitor reaps through it; once reaped it refuses to
signal (L{ProcessExitedAlready}) without making any syscall, because after
reaping the pid may already belong to someone else.

Both monitors reap through L{ChildProcess.tryReap}, so that is where the
I{before reap} hook lives: a transport that still has work to do while the
exited child is a zombie (killing the rest of the process group it leads:
the zombie pins its pid, hence the pgid, see L{txspawn._groupkill}) sets
L{ChildProcess.beforeReap}.  Only then does C{tryReap} first peek with
C{waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT)}: children without a hook
cost no extra syscall.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
from collections.abc import Callable

from attrs import define
from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger

__all__ = ["ChildProcess"]

_log = Logger()

try:
    # os.wait4 with the same results and errors, built with fewer
    # allocations: reaping is on the exit path, which runs right after the
    # reactor woke up, when every allocation is a cache miss.
    from txspawn._cspawn import wait4 as _wait4
except ImportError:  # the C extension is not built: txspawn._engines says why
    _wait4 = os.wait4


@define(eq=False)
class ChildProcess:
    """
    A child process started by an engine and not yet forgotten.

    @ivar pid: The child's pid.  Still set after reaping (for messages);
        use L{reaped} to know whether it may be signalled.
    @ivar pidfd: The child's pidfd, or C{None} (no pidfd support, or closed
        by the monitor after reaping).
    @ivar status: The classic wait status once reaped; C{None} before, and
        also C{None} after L{reapUnknown} (someone else reaped the child).
    @ivar rusage: The child's resource usage from C{wait4}, once reaped.
    @ivar reaped: Whether the child has been waited for.
    @ivar beforeReap: C{None}, or a callable that L{tryReap} calls once
        with this child after the child has exited but I{before} it is
        reaped (it is a zombie then, so its pid -- and the process group it
        may lead -- cannot be reused yet).  Exceptions are logged.
    """

    pid: int
    pidfd: int | None
    status: int | None = None
    rusage: resource.struct_rusage | None = None
    reaped: bool = False
    beforeReap: Callable[[ChildProcess], object] | None = None

    def sendSignal(self, signum: int) -> None:
        """
        Send C{signum} to the child, through its pidfd when it has one.

        @raise ProcessExitedAlready: if the child was reaped, or has already
            exited and been reaped by someone else (C{ESRCH}).
        """
        if self.reaped:
            raise ProcessExitedAlready()
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            raise ProcessExitedAlready() from None

    def signalGroup(self, signum: int) -> None:
        """
        Send C{signum} to the process group whose pgid is this child's pid.

        Safe only because it refuses once the child is reaped: while the
        child is unreaped (running or a zombie) its pid cannot be given to
        another process, and a process group can only be I{created} with
        the pid of its creator as its pgid, so a group with this pgid was
        created by this child (see L{txspawn._groupkill}).

        @raise ProcessExitedAlready: if the child was reaped (no syscall is
            made), or no process is left in the group.
        """
        if self.reaped:
            raise ProcessExitedAlready()
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            raise ProcessExitedAlready() from None

    def tryReap(self) -> bool:
        """
        Reap the child if it has exited, without blocking.

        With a L{beforeReap} hook set, the child is first looked at without
        being reaped (C{WNOWAIT}); if it has exited, the hook runs (once)
        while the child is still a zombie, and the child is reaped after.

        @return: C{True} if the child is now reaped (including the case where
            someone else reaped it first: then L{status} stays C{None}).
        """
        if self.reaped:
            return True
        if self.beforeReap is not None:
            try:
                peeked = os.waitid(
                    os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT
                )
            except ChildProcessError:
                self.beforeReap = None
                self.reapUnknown()
                return True
            if peeked is None:
                return False
            hook, self.beforeReap = self.beforeReap, None
            with _log.failuresHandled(
                "txspawn: before-reap hook {hook!r} failed for pid {pid}",
                hook=hook,
                pid=self.pid,
            ):
                hook(self)
        try:
            pid, status, rusage = _wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            # ECHILD: SIGCHLD is SIG_IGN, or some other code reaped our child
            # (waitpid(-1) elsewhere).  The exit status is lost for good.
            self.reapUnknown()
            return True
        except OSError as e:  # pragma: no cover - EINTR is retried by PEP 475
            if e.errno == errno.EINTR:
                return False
            raise
        if pid == 0:
            return False
        self.status = status
        self.rusage = rusage
        self._finish()
        return True

    def reapUnknown(self) -> None:
        """
        Record that the child is gone but its status is unknown.
        """
        self._finish()

    def closePidfd(self) -> None:
        """
        Close the pidfd (idempotent).
        """
        if self.pidfd is not None:
            fd, self.pidfd = self.pidfd, None
            os.close(fd)

    def _finish(self) -> None:
        # The pidfd is left open: the monitor may still have it registered
        # with the reactor, and must unregister it before closing it
        # (closePidfd), or epoll would be left watching a recycled number.
        self.reaped = True
