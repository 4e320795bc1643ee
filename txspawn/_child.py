# -*- test-case-name: tests.test_child -*-
"""
One started child: its pid, its pidfd, and the one place it is reaped.

L{ChildProcess} is the single owner of a child's pidfd.  The transport
signals through it, the monitor reaps through it; once reaped it refuses to
signal (L{ProcessExitedAlready}) without making any syscall, because after
reaping the pid may already belong to someone else.
"""

from __future__ import annotations

import errno
import os
import resource
import signal

from attrs import define

from twisted.internet.error import ProcessExitedAlready

__all__ = ["ChildProcess"]


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
    """

    pid: int
    pidfd: int | None
    status: int | None = None
    rusage: resource.struct_rusage | None = None
    reaped: bool = False

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

    def tryReap(self) -> bool:
        """
        Reap the child if it has exited, without blocking.

        @return: C{True} if the child is now reaped (including the case where
            someone else reaped it first: then L{status} stays C{None}).
        """
        if self.reaped:
            return True
        try:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
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
