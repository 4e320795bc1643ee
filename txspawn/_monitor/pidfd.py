# -*- test-case-name: tests.test_monitor -*-
"""
The pidfd child monitor: each child's pidfd is a reactor reader.

A pidfd becomes readable when its process exits.  Registering it with the
reactor turns "a child exited" into an ordinary I/O event: no signal handler,
no wakeup fd, no thread, no scan over every child.  When it fires the
monitor reaps exactly that child with C{wait4(pid, WNOHANG)} (the unreaped
zombie keeps the pid from being reused, so this is race-free), which also
yields the child's resource usage.

Because it needs no process-global state, L{PidfdMonitor.install} and
L{PidfdMonitor.uninstall} do nothing, and the monitor works with
C{reactor.run(installSignalHandlers=False)}, with a reactor running in a
thread other than the main one, and beside asyncio or anything else that
owns C{SIGCHLD} or the signal wakeup fd.

The exit path is kept short on purpose: the event arrives after the
reactor slept, when each Python call costs several times what it costs in a
warm loop, and everything between the wake-up and C{processExited} is exit
latency.  So the readers are dispatched without Twisted's per-event log
context (C{dispatchWithoutLogContext}, see
L{txspawn._reactor.epollreactor.EPollReactor.doPoll}), and the shutdown trigger stays
armed while the monitor is installed rather than being added and removed
with every child.

At reactor shutdown (its C{"after" "shutdown"} trigger) the monitor forgets
the children it still watches: it unregisters their pidfds and never calls
their C{exited} callbacks.  The children are left running, as stock Twisted
leaves them, and reaped in the background when they exit
(L{txspawn._monitor.orphans}); see L{PidfdMonitor.forgetAll}.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn._kernel.childhandle import ChildProcess, completeCleanup
from txspawn._monitor.orphans import adoptOrphans
from txspawn._monitor.shared import (
    Exited,
    ShutdownHook,
    addInternalReader,
    callExited,
)
from txspawn.interfaces import IChildMonitor

__all__ = ["PidfdMonitor"]

_log = Logger()


@implementer(IReadDescriptor)
class _PidfdReader:
    """
    One watched child's pidfd, as the reactor sees it.

    @ivar child: The child.
    @ivar exited: The callback for its exit.
    @ivar internal: Whether it is registered as an internal reader.
    @ivar registered: Whether it may be registered with the reactor: set
        before it is registered, cleared only once it is removed.
    @ivar reported: Whether C{exited} was called.
    """

    # Its logPrefix only names the pid; stock Twisted reports exits from its
    # SIGCHLD waker, under the default "-".
    dispatchWithoutLogContext = True

    def __init__(
        self, monitor: PidfdMonitor, child: ChildProcess, exited: Exited
    ) -> None:
        self._monitor = monitor
        self.child = child
        self.exited = exited
        self.internal = False
        self.registered = False
        self.reported = False

    def fileno(self) -> int:
        """
        @return: The pidfd, or -1 once it is closed (the reactor then finds
            the reader by identity).
        """
        fd = self.child.pidfd
        return -1 if fd is None else fd

    def doRead(self) -> None:
        """
        The child exited (or was reaped by someone else): reap and report.
        """
        self._monitor._pidfdReadable(self)

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped this reader (C{disconnectAll} at shutdown when it
        could not be registered as internal, or an error event).
        """
        self._monitor._readerLost(self, reason)

    def logPrefix(self) -> str:
        """
        @return: The log prefix naming the watched pid.
        """
        return f"txspawn pidfd monitor (pid {self.child.pid})"


@implementer(IChildMonitor)
class PidfdMonitor:
    """
    Watch children through their pidfds, one internal reactor reader each.

    @ivar name: C{"pidfd"}.
    @ivar reason: Why this monitor was chosen (for C{python -m txspawn
        info}).
    @ivar forgetAll: C{forgetAll()}: stop watching every child, without
        reaping or reporting them (called at reactor shutdown).  Each pidfd
        is unregistered from the reactor and the children, still running,
        are handed to L{txspawn._monitor.orphans.adoptOrphans}, which reaps
        each in the background when it exits, so none is left a zombie for
        the rest of the parent's life.  Their protocols are not called
        again, as with stock Twisted.  Run to its end even if an exception
        (a second C{KeyboardInterrupt}) interrupts it, which is raised
        after: a C callable (a C{functools.partial} of
        L{txspawn._kernel.childhandle.completeCleanup}), as
        L{txspawn._reactor.spawner.ProcessSpawner.abandon}.
    """

    name = "pidfd"

    def __init__(self, reactor: Any, reason: str = "chosen explicitly") -> None:
        """
        @param reactor: An L{twisted.internet.interfaces.IReactorFDSet}
            provider; if it also provides
            C{_addInternalReader} (every Twisted POSIX reactor does) pidfds
            are registered as internal readers, which C{removeAll()} leaves
            in place.
        @param reason: Why this monitor was chosen.
        """
        self._reactor = reactor
        self.reason = reason
        self._readers: dict[int, _PidfdReader] = {}
        # The readers of reaped children whose report or clean-up is under
        # way: reapIfExited finishes them if an exception interrupted it.
        self._leaving: dict[ChildProcess, _PidfdReader] = {}
        self.forgetAll: Callable[[], None] = partial(completeCleanup, self._forgetAll)
        self._shutdown = ShutdownHook(reactor, self.forgetAll)
        self._installed = False
        # Looked up once: removing a reader is on the exit path.
        self._internalReaders: Any = getattr(reactor, "_internalReaders", None)
        self._removeInternalReader: Any = getattr(
            reactor, "_removeInternalReader", None
        )

    def __repr__(self) -> str:
        return f"<PidfdMonitor watching {len(self._readers)} children>"

    def install(self) -> None:
        """
        Nothing process-global to install: pidfds need no such state.

        While installed, the shutdown trigger stays armed once a child was
        watched, instead of being removed when the last watched child exits
        and added again with the next one.
        """
        self._installed = True

    def uninstall(self) -> None:
        """
        Nothing process-global to uninstall; the shutdown trigger is removed
        if no child is watched (else when the last one exits).
        """
        self._installed = False
        if not self._readers:
            self._shutdown.disarm()

    def watch(self, child: ChildProcess, exited: Exited) -> None:
        """
        Register C{child}'s pidfd with the reactor.

        A child that already exited has a readable pidfd, so it is reported
        on the reactor's next iteration (when it runs, if it is not running
        yet); C{exited} is never called from inside C{watch}.

        @param child: A child with an open pidfd, not yet reaped.
        @param exited: Called once, from the reactor thread, with C{child}
            reaped (C{child.status} set, or C{None} if someone else reaped
            it); the pidfd is unregistered and closed right after it
            returns.  Its exceptions are logged.
        @raise ValueError: if C{child} has no pidfd, is already reaped or is
            already watched.
        """
        if child.reaped:
            raise ValueError(f"child {child.pid} is already reaped")
        if child.pidfd is None:
            raise ValueError(
                f"child {child.pid} has no pidfd: the pidfd monitor cannot "
                f"watch it (use the sigchld monitor)"
            )
        if child.pid in self._readers:
            raise ValueError(f"child {child.pid} is already watched")
        reader = _PidfdReader(self, child, exited)
        # Recorded, and marked registered, before it is registered: if an
        # exception interrupts the registration (a signal handler's
        # KeyboardInterrupt), the spawner's clean-up still finds it here
        # (reapIfExited) and unregisters it, from wherever it got to.
        reader.internal = self._internalReaders is not None
        reader.registered = True
        self._readers[child.pid] = reader
        reader.internal = addInternalReader(self._reactor, reader)
        if not self._shutdown.armed:
            self._shutdown.arm()

    def reapIfExited(self, child: ChildProcess) -> bool:
        """
        Reap C{child} now if it has exited, as if its pidfd had become
        readable (see L{IChildMonitor.reapIfExited}).

        Run again after an exception interrupted it (or the C{exited}
        callback it called), it finishes the job: C{exited} called once,
        the pidfd unregistered, and only then closed.

        @return: Whether C{child} is reaped now.
        """
        reader = self._readers.get(child.pid)
        if reader is not None and reader.child is child:
            self._pidfdReadable(reader)
        else:
            reader = self._leaving.get(child)
            if reader is not None:
                self._finish(reader)
        return child.reaped

    def watching(self) -> list[ChildProcess]:
        """
        @return: The children currently watched.
        """
        return [reader.child for reader in self._readers.values()]

    def _forgetAll(self) -> None:
        """
        L{forgetAll}'s work, run again by L{completeCleanup} until it
        finishes: every reader is unregistered while it is still listed,
        then all the children are handed to the orphan reaper at once, with
        no point between their removal from the list and the hand-over
        (C{adoptOrphans} is a C callable) where a signal handler could
        raise and lose them.
        """
        for reader in list(self._readers.values()):
            self._unregister(reader)
        for reader in list(self._leaving.values()):
            # Reaped already, their report interrupted: never reported now.
            self._forget(reader)
        orphans = [reader.child for reader in self._readers.values()]
        if orphans:
            self._readers = {}
            adoptOrphans(orphans)
        self._shutdown.disarm()

    def _unregister(self, reader: _PidfdReader) -> None:
        # Marked unregistered only once it is: run again after an exception
        # interrupted the removal, this removes what is left (both removals
        # are idempotent).
        if reader.registered:
            # removeInternalReader(), with the reactor's methods looked up once.
            internalReaders = self._internalReaders
            if reader.internal and internalReaders and reader in internalReaders:
                self._removeInternalReader(reader)
            else:
                self._reactor.removeReader(reader)
            reader.registered = False

    def _forget(self, reader: _PidfdReader) -> None:
        # Unregister before closing: epoll must not be left watching a
        # closed number that the next open() may reuse.  Each step is
        # idempotent, and the reader leaves _leaving last, so that
        # reapIfExited can finish what an exception interrupted.
        child = reader.child
        if self._readers.get(child.pid) is reader:
            del self._readers[child.pid]
        self._unregister(reader)
        child.closePidfd()
        if not self._readers and not self._installed:
            # A monitor that is not installed may be dropped (a spawner
            # uninstalled from a long-lived reactor): leave no trigger behind.
            self._shutdown.disarm()
        if self._leaving.get(child) is reader:
            del self._leaving[child]

    def _pidfdReadable(self, reader: _PidfdReader) -> None:
        child = reader.child
        if self._readers.get(child.pid) is not reader:
            # A stale event for a reader already handled; never happens with
            # the reactors in Twisted, but a spurious doRead must be harmless.
            self._unregister(reader)
            return
        try:
            reaped = child.tryReap()
        except Exception:
            # wait4 failing with anything but ECHILD/EINTR would be a kernel
            # or interpreter bug; logging and giving up on the status beats
            # a level-triggered reader spinning forever.
            _log.failure("txspawn: wait4({pid}) failed", pid=child.pid)
            child.reapUnknown()
            reaped = True
        if not reaped:
            # A readable pidfd means the process exited, so wait4 finds the
            # zombie; stay registered in case the kernel ever says otherwise.
            return
        # The reader moves from the watched children to the leaving ones in
        # one step (no call between, so no signal handler can raise there):
        # a repeated event for it (a nested reactor iteration inside the
        # callback) only unregisters it, and if an exception interrupts
        # what follows, reapIfExited finishes it.
        self._leaving[child] = reader
        del self._readers[child.pid]
        # _finish, inline: this is every child's exit path.
        try:
            reader.reported = True
            callExited(reader.exited, child)
        finally:
            self._forget(reader)

    def _finish(self, reader: _PidfdReader) -> None:
        """
        Report a reaped child, then forget its reader (what
        L{_pidfdReadable} does once the child is reaped, for
        L{reapIfExited} to finish it after an interrupt).

        Report first, clean up after: unregistering and closing the pidfd
        cost two syscalls that need not delay C{processExited}.  C{exited}
        is marked called before the call, so a run after an interrupt never
        calls it twice; if the interrupt came before it was called, the
        spawner's clean-up of the interrupted spawn tells the transport
        itself (L{txspawn._transport.lifecycle.ProcessLifecycle._abandon}).
        """
        try:
            if not reader.reported:
                reader.reported = True
                callExited(reader.exited, reader.child)
        finally:
            self._forget(reader)

    def _readerLost(self, reader: _PidfdReader, reason: Failure) -> None:
        # The reactor already removed the reader from its fd set (but not
        # from its internal-reader set after an error event); unregistering
        # again is harmless and drops it from both.
        if self._readers.get(reader.child.pid) is reader:
            self._forget(reader)
        else:
            self._unregister(reader)
