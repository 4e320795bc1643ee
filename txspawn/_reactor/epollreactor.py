# -*- test-case-name: tests.test_reactor -*-
"""
Twisted's epoll reactor with txspawn composed in, and its C{install()}.

Like L{twisted.internet.epollreactor}, this module defines the reactor class
and an L{install} that installs it, so Twisted code that re-creates "the same
reactor" in a child process with
C{namedAny(reactor.__class__.__module__).install()} gets this one.  This is
the default txspawn reactor (C{--reactor=txspawn}; L{txspawn.reactor.install}
is this module's L{install}).

L{EPollReactor} also dispatches txspawn's own descriptors (pipe ends, pidfds,
the SIGCHLD wakeup) without Twisted's per-event log context; see
L{_DirectDispatchEPollReactor.doPoll}.
"""

from __future__ import annotations

import errno
import select
import sys
from typing import Any

from twisted.internet import epollreactor
from twisted.python import log

from txspawn._reactor.mixin import SpawnReactorMixin, installGlobalReactor
from txspawn.interfaces import IChildMonitor, ISpawner

__all__ = ["EPollReactor", "install"]

_EPOLLIN = select.EPOLLIN
#: A hang-up or error event; without EPOLLIN it means nothing is left to read.
_EPOLLHUPERR = select.EPOLLHUP | select.EPOLLERR


class _DirectDispatchEPollReactor(epollreactor.EPollReactor):
    """
    Twisted's epoll reactor, dispatching txspawn's own descriptors directly
    (see L{doPoll}).  A class of its own so that
    L{SpawnReactorMixin.doIteration}'s C{super()} call reaches this
    C{doPoll}.
    """

    def doPoll(self, timeout: float | None) -> None:
        """
        Poll for events and dispatch them, as
        L{twisted.internet.epollreactor.EPollReactor.doPoll} does, except
        that a descriptor whose class sets C{dispatchWithoutLogContext =
        True} is dispatched directly rather than through
        C{log.callWithLogger}.

        txspawn's own descriptors opt in: their C{logPrefix} is Twisted's
        default C{"-"} (so the context would be the one already current),
        or only names a txspawn object whose callbacks stock Twisted runs
        under C{"-"} anyway (it reports a child's exit from its SIGCHLD
        waker, whose prefix is C{"-"}).  Skipping the context saves about a
        dozen Python calls per event, which matters because these events
        arrive after the reactor slept, when each call costs several times
        what it costs in a warm loop.

        For those descriptors a plain "readable" event (C{EPOLLIN} alone)
        also skips C{_doReadOrWrite}'s frame and C{fileno()} call: C{doRead}
        is called inline, and, as there, an exception from it is logged and
        disconnects the descriptor, as does a true return value.  A pure
        hang-up (C{EPOLLHUP} or C{EPOLLERR} without C{EPOLLIN}) of such a
        descriptor that is reading and not writing, and has a C{hangUp()}
        method, removes it as C{removeReader} would and then calls that
        method: where C{_doReadOrWrite} and C{_disconnectSelectable} would
        end in C{connectionLost} with the shared C{ConnectionDone} failure,
        the descriptor, told it is no longer watched, does the same directly
        (a pipe whose child exited, on every child's exit path).
        Every other event goes through the same C{_doReadOrWrite}.  An
        exception escaping any of them (from C{connectionLost}) is logged
        with the descriptor's C{logPrefix} as the system, as
        C{callWithLogger} does.

        @param timeout: Seconds to wait, or C{None} to wait indefinitely.
        """
        if timeout is None:
            timeout = -1  # Wait indefinitely.
        try:
            # As Twisted: at most as many events as descriptors tracked.
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        reads = self._reads
        poller = self._poller
        dispatch = self._doReadOrWrite
        disconnect = self._disconnectSelectable
        for fd, event in events:
            try:
                selectable = selectables[fd]
            except KeyError:
                continue
            if getattr(selectable, "dispatchWithoutLogContext", False):
                try:
                    if event != _EPOLLIN:
                        if (
                            event & _EPOLLHUPERR
                            and not event & _EPOLLIN
                            and fd in reads
                            and fd not in self._writes
                        ):
                            hangUp = getattr(selectable, "hangUp", None)
                            if hangUp is not None:
                                # What removeReader does for a descriptor
                                # that is only reading, done here (in
                                # _remove's order): it is known to be in
                                # epoll and in no other set.
                                del selectables[fd]
                                reads.remove(fd)
                                poller.unregister(fd)
                                hangUp()
                                continue
                        dispatch(selectable, fd, event)  # type: ignore[no-untyped-call]
                        continue
                    # Just readable (a child's pidfd when it exits, a pipe
                    # with data): _doReadOrWrite's doRead branch, inline and
                    # without its fileno() check (txspawn's descriptors never
                    # report -1 while registered).  As there, an exception
                    # is logged and disconnects the descriptor.
                    try:
                        why = selectable.doRead()
                    except BaseException:
                        why = sys.exc_info()[1]
                        log.err()  # type: ignore[no-untyped-call]
                    if why:
                        disconnect(selectable, why, True)  # type: ignore[no-untyped-call]
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    prefix = _logPrefix(selectable)
                    log.err(system=prefix)  # type: ignore[no-untyped-call]
            else:
                log.callWithLogger(  # type: ignore[no-untyped-call]
                    selectable, dispatch, selectable, fd, event
                )

    doIteration = doPoll

    def _add(
        self,
        xer: Any,
        primary: set[int],
        other: set[int],
        selectables: dict[int, Any],
        event: int,
        antievent: int,
    ) -> None:
        """
        Register C{xer} for C{event}, as
        L{twisted.internet.epollreactor.EPollReactor._add} does, but record
        it in C{selectables} I{before} adding its fd to C{primary}.

        Twisted records them the other way round, and Python may run a
        signal handler right after C{primary.add} returns: a
        C{KeyboardInterrupt} raised there leaves an fd in C{primary} without
        its selectable, and every later C{removeReader} of it and
        C{removeAll} fail with C{KeyError}.  In this order an exception at
        any point leaves the descriptor either fully recorded or not at all
        (registered with epoll at most, which forgets the fd when it is
        closed), so the clean-up of an interrupted spawn can unregister it
        (see C{docs/design/engines.rst}, "Interrupted spawns").
        """
        fd = xer.fileno()
        if fd not in primary:
            flags = event
            if fd in other:
                flags |= antievent
                self._poller.modify(fd, flags)
            else:
                self._poller.register(fd, flags)
            selectables[fd] = xer
            primary.add(fd)

    def _remove(
        self,
        xer: Any,
        primary: set[int],
        other: set[int],
        selectables: dict[int, Any],
        event: int,
        antievent: int,
    ) -> None:
        """
        Stop watching C{xer} for C{event}, as
        L{twisted.internet.epollreactor.EPollReactor._remove} does, but in
        an order that an exception at any point cannot leave inconsistent.

        Twisted unregisters the fd from epoll between forgetting the
        descriptor and dropping its fd from C{primary}, and Python may run a
        signal handler right after C{unregister} returns: a
        C{KeyboardInterrupt} raised there leaves an fd in C{primary} without
        its selectable, and every later removal of that fd number,
        C{getReaders} and C{removeAll} (so C{disconnectAll}) fail with
        C{KeyError}, while a new descriptor given the same number is never
        registered (C{_add} finds the number taken).  Here:

          - a descriptor that is only watched for C{event} is forgotten
            first and unregistered last (the order L{_add} records it in,
            reversed): interrupted after the bookkeeping, epoll alone still
            has the fd, which it forgets when the fd is closed (and
            L{doPoll} ignores an event without a selectable);
          - one watched for both stays in C{primary} until epoll has
            stopped reporting C{event} for it: interrupted in between, the
            next removal does the same idempotent C{modify} again.

        So the clean-up of an interrupted spawn, run again until it
        completes (see C{docs/design/engines.rst}, "Interrupted spawns"),
        finishes every removal it started.
        """
        fd = xer.fileno()
        if fd == -1:
            # Closed already: found by identity, as Twisted does.
            for candidate, fdes in selectables.items():
                if xer is fdes:
                    fd = candidate
                    break
            else:
                return
        if fd in primary:
            if fd in other:
                self._poller.modify(fd, antievent)
                primary.remove(fd)
            else:
                del selectables[fd]
                primary.remove(fd)
                self._poller.unregister(fd)

    def _removeInternalReader(self, reader: Any) -> None:
        """
        Remove an internal reader, as
        L{twisted.internet.base.ReactorBase._removeInternalReader} does,
        taking the short way for the common case: a descriptor registered
        with epoll for reading only (a child's pidfd, removed as soon as the
        child is reaped, on the exit path).

        In L{_remove}'s order, bookkeeping first and the system call last,
        for the same reason: interrupted at any point, the reader is either
        still an internal reader (and the next removal finds it), or only a
        reader (removed by C{removeReader}), or forgotten by the reactor
        with at most epoll still watching the fd until it is closed.
        """
        self._internalReaders.remove(reader)
        fd = reader.fileno()
        reads = self._reads
        selectables = self._selectables
        if fd in reads and fd not in self._writes and selectables.get(fd) is reader:
            # What _remove does for it.
            del selectables[fd]
            reads.remove(fd)
            self._poller.unregister(fd)
        else:
            self.removeReader(reader)  # type: ignore[no-untyped-call]


class EPollReactor(SpawnReactorMixin, _DirectDispatchEPollReactor):
    """
    Twisted's epoll reactor, spawning through txspawn.
    """


def _logPrefix(selectable: Any) -> str:
    # callWithLogger's fallback for a broken logPrefix, on the error path only.
    try:
        return str(selectable.logPrefix())
    except BaseException:
        return "(buggy logPrefix method)"


def install(
    engine: str | ISpawner | None = None,
    monitor: str | IChildMonitor | None = None,
) -> EPollReactor:
    """
    Install an L{EPollReactor} as Twisted's global reactor.

    @param engine: An engine name (C{"python"}, C{"c"}), an L{ISpawner}, or
        C{None} for C{TXSPAWN_ENGINE} or else the best available.
    @param monitor: A monitor name (C{"pidfd"}, C{"sigchld"}), an
        L{IChildMonitor}, or C{None} for C{TXSPAWN_MONITOR} or else the best
        the kernel supports.
    @return: the installed reactor.
    @raise twisted.internet.error.ReactorAlreadyInstalledError: if a reactor
        is already installed; the message says how to use
        L{txspawn.install} with it instead.
    """
    return installGlobalReactor(
        lambda: EPollReactor(engine=engine, monitor=monitor), "txspawn"
    )
