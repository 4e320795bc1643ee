# -*- test-case-name: tests.test_monitor,tests.test_init -*-
"""
One started child: its pid, its pidfd, and the one place it is reaped.

L{ChildProcess} is the single owner of a child's pidfd.  The transport
signals through it, the monitor reaps through it; once reaped it refuses to
signal (L{ProcessExitedAlready}) without making any syscall, because after
reaping the pid may already belong to someone else.

Both monitors reap through L{ChildProcess.tryReap}, so that is where the
I{before reap} hook lives: a transport that still has work to do while the
exited child is a zombie (killing the rest of the process group it leads:
the zombie pins its pid, hence the pgid, see L{txspawn._transport.groupkill}) sets
L{ChildProcess.beforeReap}.  Only then does C{tryReap} first peek with
C{waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT)}: children without a hook
cost no extra syscall.

A child that is txspawn's init (pid 1 of a pid namespace, see
L{txspawn._kernel.initprogram}) comes with the read end of its status pipe
(C{statusFd}): once the child is reaped, by whichever path, the pipe is
read without blocking, and if init wrote the command's raw wait status
there, that becomes L{ChildProcess.status} (init's own stays in
L{ChildProcess.initStatus}); then the pipe is closed, exactly once, even if
the clean-up that reaped the child is interrupted and run again.  Init
writes nothing when it is killed itself (C{signalProcess("KILL")}): its own
status, C{SIGKILL}, is then the child's.

Between the clone and the moment a transport owns the child, nothing may be
lost to an exception, including the C{KeyboardInterrupt} a signal handler
raises: L{recordCall} and L{discardChild} are the two halves of that
handover (see C{docs/design/engines.rst}, "Interrupted spawns"), and
L{completeCleanup} runs a clean-up to its end even if a second exception
interrupts it.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import sys
from collections.abc import Callable
from itertools import chain, starmap
from typing import TypeVar

from attrs import define, field
from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger

from txspawn._kernel.initprogram import INIT_STATUS_SIZE

__all__ = [
    "C_CLEANUP",
    "ChildProcess",
    "completeCleanup",
    "discardChild",
    "recordCall",
    "recordItems",
]

_log = Logger()

_T = TypeVar("_T")

try:
    # os.wait4 with the same results and errors, built with fewer
    # allocations: reaping is on the exit path, which runs right after the
    # reactor woke up, when every allocation is a cache miss.
    from txspawn._cspawn import wait4 as _wait4
except ImportError:  # the C extension is not built: txspawn._engine.selection says why
    _wait4 = os.wait4

#: How many times L{completeCleanup} runs a clean-up that keeps raising
#: before it lets the error through (the extension's own limit is the same).
CLEANUP_ATTEMPTS = 100


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
        For txspawn's init (C{statusFd} given), the command's status when
        init handed it over, else init's own.
    @ivar rusage: The child's resource usage from C{wait4}, once reaped.
    @ivar reaped: Whether the child has been waited for.
    @ivar beforeReap: C{None}, or a callable that L{tryReap} calls once
        with this child after the child has exited but I{before} it is
        reaped (it is a zombie then, so its pid -- and the process group it
        may lead -- cannot be reused yet).  Exceptions are logged.
    @ivar statusFd: For a child that is txspawn's init: the read end of its
        status pipe (non-blocking, close-on-exec), owned from now on by this
        object, which reads and closes it once the child is reaped; then
        C{None}.  C{None} for any other child.
    @ivar initStatus: The wait status the child itself exited with, once
        reaped (C{None} before, or if unknown): for txspawn's init, init's
        own, which L{status} replaces with the command's; for any other
        child, the same as L{status}.
    """

    pid: int
    pidfd: int | None
    status: int | None = None
    rusage: resource.struct_rusage | None = None
    reaped: bool = False
    beforeReap: Callable[[ChildProcess], object] | None = None
    statusFd: int | None = None
    initStatus: int | None = None
    # What the status pipe gave (one item once read), and whether it was
    # closed (one item once closed): recorded in C by recordCall, so that a
    # run of the collection interrupted anywhere and run again neither
    # loses the status nor closes the fd twice.
    _statusRead: list[bytes] = field(factory=list, init=False, repr=False)
    _statusClosed: list[None] = field(factory=list, init=False, repr=False)

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
        created by this child (see L{txspawn._transport.groupkill}).

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
            # An interrupted earlier call may have left the status pipe.
            self._takeCommandStatus()
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
        self.status = self.initStatus = status
        self.rusage = rusage
        self._finish()
        return True

    def killAndReap(self) -> None:
        """
        Kill the child with C{SIGKILL} (through its pidfd when it has one)
        and reap it, blocking: it cannot survive C{SIGKILL}, so the wait
        returns as soon as the kernel has torn it down.  Nothing is done if
        it is reaped already; the pidfd stays open (a monitor may still
        have it registered).

        The status is recorded before any signal handler can raise
        (L{recordCall}, and a C{finally} clause that makes no call): a
        C{KeyboardInterrupt} right after the wait returned cannot leave the
        child reaped but not known to be, so a clean-up that is run again
        (L{completeCleanup}) never signals or waits for its pid once the
        number may be someone else's.  An interrupt during the wait itself
        leaves the child unreaped, for the next attempt.  The status pipe
        of txspawn's init is read and closed after the reap, resumably too
        (so a run after an interrupt there finishes that).
        """
        if self.reaped:
            self._takeCommandStatus()
            return
        try:
            self.sendSignal(signal.SIGKILL)
        except ProcessExitedAlready:
            pass  # reaped by someone else: the wait says so (ECHILD)
        got: list[tuple[int, int, resource.struct_rusage]] = []
        try:
            recordCall(got, _wait4, self.pid, 0)
        except ChildProcessError:
            # SIGCHLD is SIG_IGN, or other code reaped our child.
            self.reapUnknown()
        finally:
            if got:
                # Stores only: no point where a handler could raise.
                _, status, self.rusage = got[0]
                self.status = self.initStatus = status
                self.reaped = True
        self._takeCommandStatus()

    def reapUnknown(self) -> None:
        """
        Record that the child is gone but its status is unknown.
        """
        self._finish()

    def closePidfd(self) -> None:
        """
        Close the pidfd (idempotent).  Once the child is reaped, also read
        and close the status pipe, if a reap interrupted half-way left it
        (every path that forgets a child closes its pidfd).
        """
        if self.reaped:
            self._takeCommandStatus()
        if self.pidfd is not None:
            fd, self.pidfd = self.pidfd, None
            os.close(fd)

    def _finish(self) -> None:
        # The pidfd is left open: the monitor may still have it registered
        # with the reactor, and must unregister it before closing it
        # (closePidfd), or epoll would be left watching a recycled number.
        self.reaped = True
        self._takeCommandStatus()

    def _takeCommandStatus(self) -> None:
        """
        For txspawn's init, once reaped: read the status pipe without
        blocking and close it; if it held the command's wait status (init
        writes it just before it exits), make that L{status}.

        Resumable: the read and the close are each recorded in C
        (L{recordCall}) as they happen, so running this again after an
        interrupt at any point reads nothing twice and closes nothing twice;
        what follows them are stores, the same on every run.
        """
        fd = self.statusFd
        if fd is None:
            return
        got = self._statusRead
        if not got:
            try:
                recordCall(got, os.read, fd, INIT_STATUS_SIZE)
            except OSError:
                # EAGAIN: nothing written, and a write end still open
                # somewhere (init's own is gone with it): no status.
                got.append(b"")
        if not self._statusClosed:
            # Closing a pipe cannot fail but for EBADF, which would be a
            # bug here (a second close): let it show.
            recordCall(self._statusClosed, os.close, fd)
        data = got[0]
        if len(data) == INIT_STATUS_SIZE:
            self.status = int.from_bytes(data, sys.byteorder, signed=True)
        self.statusFd = None


def recordCall(into: list[_T], function: Callable[..., _T], *args: object) -> _T:
    """
    Call C{function(*args)}, append what it returns to C{into}, and return
    it, with no Python bytecode in between.

    Python runs signal handlers -- and so raises the C{KeyboardInterrupt}
    of a Ctrl-C -- only at certain points between bytecodes, and one of
    them is right after a call to a C function returns: with C{pid =
    os.fork()} the interrupt is raised before the result is stored, and the
    child is lost, whatever C{try} surrounds the line.  Here the call and
    the append both run in C (C{list.extend} pulling one item from
    C{itertools.starmap}), so once C{function} has returned its result is
    in C{into}, which the caller made before the call and cleans up if an
    exception escapes.  In the parent of a C{fork}, Python-level
    C{after_in_parent} hooks run inside C{os.fork}: an exception from them
    is reported as unraisable, never propagated.

    @param into: Where the result goes.
    @param function: A function implemented in C (a builtin, a C{ctypes}
        function, a C{functools.partial} of one): a Python function would
        itself give signal handlers a chance to run after its own C calls.
    @return: The result (also C{into[-1]}).
    """
    into.extend(starmap(function, (args,)))
    return into[-1]


def recordItems(
    into: list[_T], function: Callable[..., tuple[_T, ...]], *args: object
) -> None:
    """
    Call C{function(*args)} and append the items of the tuple it returns to
    C{into}, with no Python bytecode in between: L{recordCall} for calls
    that return several fds at once (C{os.pipe2}).
    """
    into.extend(chain.from_iterable(starmap(function, (args,))))


def _discardChild(pid: int, pidfd: int | None) -> None:
    """
    Kill and reap a child that nobody owns yet: the clean-up of a spawn that
    an exception interrupted between the clone and the handover.  Use
    L{discardChild}: this is its pure-Python form, for when the extension
    is not built.

    The child is killed only while it is still ours and unreaped: through
    its pidfd, which names that very process whatever happened to it, or,
    without one, after looking with C{waitid(WNOWAIT)} (with C{SIGCHLD}
    ignored the kernel reaps children itself, and a bare pid it freed may
    be someone else's by now).  Then it is reaped, blocking: it has just
    been sent C{SIGKILL}, which cannot be caught, so the wait returns as
    soon as the kernel has torn it down.  The pidfd is not closed here (the
    caller owns it).

    @param pid: The child's pid.
    @param pidfd: Its pidfd, or L{None}.
    """
    try:
        if pidfd is not None:
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        else:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        # Already reaped (by the kernel, SIGCHLD being ignored), or not ours.
        return
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # pragma: no cover - exited and auto-reaped
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # pragma: no cover - auto-reaped just now
        pass


def _completeCleanup(function: Callable[..., object], *args: object) -> None:
    """
    Call C{function(*args)} again until one call returns without raising,
    then raise the first exception a call raised, if any: the clean-up is
    finished before anything propagates.  Use L{completeCleanup}: this is
    its pure-Python form, for when the extension is not built.

    A clean-up that runs in an C{except BaseException} clause (killing and
    reaping a child, closing its fds) can itself be interrupted: Python
    runs signal handlers, and so raises a second C{KeyboardInterrupt}, at
    every function entry and after every call to C, and the clean-up would
    stop half-way and leave a zombie or an fd.  Run through this, it is
    started again instead, and the interrupt is raised once it is done
    (with the exception it interrupted as its C{__context__}, as Python
    chains any exception raised while handling another).  C{function} must
    therefore be I{resumable}: running it again after it stopped at any
    point finishes the job, each step idempotent or skipped once done
    (recorded in C, see L{recordCall}, where a repeated step would be
    wrong, like closing an fd).

    A clean-up still raising after L{CLEANUP_ATTEMPTS} attempts is broken,
    not interrupted: that last error propagates.
    """
    first: BaseException | None = None
    for attempt in range(CLEANUP_ATTEMPTS):
        try:
            function(*args)
        except BaseException as e:
            if attempt + 1 == CLEANUP_ATTEMPTS:
                raise
            if first is None:
                first = e
            continue
        if first is not None:
            raise first
        return


discardChild: Callable[[int, int | None], None]
completeCleanup: Callable[..., None]
try:
    from txspawn._cspawn import completeCleanup, discardChild
except ImportError:  # the C extension is not built: txspawn._engine.selection says why
    discardChild = _discardChild
    completeCleanup = _completeCleanup

#: L{discardChild} and L{completeCleanup}: with the extension built, its
#: functions, which do the same as L{_discardChild} and L{_completeCleanup}
#: in C.  That is the point: inside a call to C no signal handler runs, so
#: a second C{KeyboardInterrupt} cannot stop C{discardChild} half-way (a
#: child killed and never reaped stays a zombie), nor come between two
#: attempts of C{completeCleanup}.  Call them directly from the clean-up,
#: first thing in the C{except} clause (a call to C starts with no point
#: where a handler may run), not through a Python function of your own,
#: whose first instruction is such a point; the pure-Python fallbacks have
#: that weakness themselves, at their own start and loop.
C_CLEANUP = discardChild is not _discardChild
