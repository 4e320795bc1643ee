# -*- test-case-name: tests.test_reactor -*-
"""
Reactor integration: Twisted's reactors with txspawn composed in.

L{SpawnReactorMixin} is mixed in I{before} a Twisted reactor class.  It
changes exactly two things, both by composition (nothing in
C{twisted.internet.process} is patched):

  - C{spawnProcess} delegates to a per-reactor
    L{txspawn._spawner.ProcessSpawner}, with exactly the parameters and
    defaults of L{twisted.internet.posixbase.PosixReactorBase.spawnProcess}
    followed by C{**options}, txspawn's keyword-only extras.
  - C{_signalsFactory} composes Twisted's basic signal handling (SIGINT,
    SIGTERM) with the child monitor's own process-global set-up instead of
    Twisted's C{_ChildSignalHandling}:

      - C{sigchld} monitor: the monitor itself (its SIGCHLD waker);
      - C{pidfd} monitor: the monitor (whose install/uninstall need no
        signal at all) plus L{txspawn._sigchldmonitor.TwistedRegistryReaping},
        so that L{twisted.internet.process.Process} objects which other code
        builds directly (buildbot does) are still reaped.  Where the
        reactor waits in C{doIteration} (all but asyncio), the mixin's
        C{doIteration} lets it look at Twisted's registry before each wait,
        and it holds the SIGCHLD wakeup only while that registry is not
        empty: a txspawn child's exit then costs no signal.

The concrete classes L{EPollReactor}, L{PollReactor}, L{SelectReactor} and
L{AsyncioSelectorReactor} are constructible with no arguments, because
Twisted's C{ReactorBuilder} builds reactors with C{namedAny(fqpn)()}.

L{EPollReactor} also dispatches txspawn's own descriptors (pipe ends, pidfds,
the SIGCHLD wakeup) without Twisted's per-event log context; see
L{EPollReactor.doPoll}.

A note on asyncio: Twisted's asyncio reactor does not use asyncio's own
signal machinery (C{loop.add_signal_handler}); it installs the same
C{SignalHandling} objects as every other Twisted reactor, so there is no
second owner of C{signal.set_wakeup_fd} unless application code calls
C{loop.add_signal_handler} itself.  If it does, asyncio replaces the wakeup
fd (and resets it to C{-1} when its last handler is removed): with the
C{sigchld} monitor SIGCHLD wake-ups are then lost, exactly as with stock
Twisted; with the C{pidfd} monitor (the default) txspawn's own children do
not depend on the wakeup fd at all.
"""

from __future__ import annotations

import errno
import select
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

from twisted.internet import asyncioreactor, epollreactor, pollreactor, selectreactor
from twisted.internet._signals import SignalHandling, _MultiSignalHandling
from twisted.internet.base import ReactorBase
from twisted.internet.interfaces import (
    IProcessProtocol,
    IProcessTransport,
    IReactorFDSet,
)
from twisted.python import log

from txspawn._engines import selectSpawner
from txspawn._monitor import selectMonitor
from txspawn._sigchldmonitor import TwistedRegistryReaping
from txspawn._spawner import ProcessSpawner
from txspawn.interfaces import IChildMonitor, ISpawner

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

_EPOLLIN = select.EPOLLIN
#: A hang-up or error event; without EPOLLIN it means nothing is left to read.
_EPOLLHUPERR = select.EPOLLHUP | select.EPOLLERR

__all__ = [
    "AsyncioSelectorReactor",
    "EPollReactor",
    "PollReactor",
    "SelectReactor",
    "SpawnReactorMixin",
]


class SpawnReactorMixin:
    """
    Make a Twisted reactor spawn and monitor children through txspawn.

    Mix this in before a L{twisted.internet.posixbase.PosixReactorBase}
    subclass.

    @ivar processSpawner: The L{ProcessSpawner} that serves this reactor's
        C{spawnProcess}; its own C{spawnProcess} also accepts txspawn's extra
        options.
    @ivar childMonitor: The L{IChildMonitor} watching this reactor's
        children.
    """

    processSpawner: ProcessSpawner
    childMonitor: IChildMonitor

    def __init__(
        self,
        *,
        engine: str | ISpawner | None = None,
        monitor: str | IChildMonitor | None = None,
    ) -> None:
        """
        @param engine: An engine name (C{"python"}, C{"c"}), an L{ISpawner},
            or C{None} for C{TXSPAWN_ENGINE} or else the best available.
        @param monitor: A monitor name (C{"pidfd"}, C{"sigchld"}), an
            L{IChildMonitor}, or C{None} for C{TXSPAWN_MONITOR} or else the
            best the kernel supports.
        """
        super().__init__()
        self._setUpSpawning(engine, monitor)

    def _setUpSpawning(
        self,
        engine: str | ISpawner | None,
        monitor: str | IChildMonitor | None,
    ) -> None:
        """
        Build this reactor's L{ProcessSpawner}.  Called once the Twisted
        reactor itself is initialised, because the monitor may need the
        reactor's fd-set.
        """
        spawner = (
            selectSpawner(engine)
            if engine is None or isinstance(engine, str)
            else engine
        )
        childMonitor = (
            selectMonitor(self, monitor)
            if monitor is None or isinstance(monitor, str)
            else monitor
        )
        self.childMonitor = childMonitor
        # manageSignals=False: the monitor's process-global set-up is
        # installed and removed with the reactor's own signal handling (see
        # _signalsFactory), at the moments Twisted chooses, and never
        # outlives reactor.run().
        self.processSpawner = ProcessSpawner(
            cast(IReactorFDSet, self), spawner, childMonitor, manageSignals=False
        )

    def _signalsFactory(self) -> SignalHandling:
        """
        Compose Twisted's basic signal handling with the child monitor's.

        This replaces L{PosixReactorBase._signalsFactory}, whose
        C{_ChildSignalHandling} would reap through Twisted's global registry
        on every SIGCHLD.

        @return: the L{SignalHandling} that C{reactor.run()} installs and
            uninstalls.
        """
        # Skip PosixReactorBase's override (which adds Twisted's SIGCHLD
        # handling) and take the basic SIGINT/SIGTERM/SIGBREAK behaviour.
        baseHandling = ReactorBase._signalsFactory(cast(ReactorBase, self))
        handlings: list[SignalHandling] = [baseHandling]
        monitor = self.childMonitor
        handlings.append(cast(SignalHandling, monitor))
        self._registryReaping = None
        if monitor.name != "sigchld":
            # The sigchld monitor also reaps Twisted's registry from its
            # waker; with pidfds nothing else would, so add the waker that
            # only serves twisted.internet.process.reapProcessHandlers --
            # subscribed only while that registry holds a process, where
            # doIteration lets it look before every wait.
            reaping = TwistedRegistryReaping(self, onDemand=self._hasWaitHook)
            if self._hasWaitHook:
                self._registryReaping = reaping
            handlings.append(reaping)
        return _MultiSignalHandling(handlings)

    #: Whether this reactor waits for events in C{doIteration} (so that
    #: L{_registryReaping} can look at Twisted's registry before each wait).
    _hasWaitHook: ClassVar[bool] = True

    #: The on-demand L{TwistedRegistryReaping} that C{doIteration} calls
    #: before each wait, or L{None} (sigchld monitor, or no wait hook).
    _registryReaping: TwistedRegistryReaping | None = None

    def doIteration(self, timeout: float | None) -> None:
        """
        Let the on-demand registry reaping look at Twisted's registry, then
        wait for events and dispatch them as the Twisted reactor does.

        @param timeout: Seconds to wait, or C{None} to wait indefinitely.
        """
        reaping = self._registryReaping
        if reaping is not None:
            reaping.beforeWait()
        super().doIteration(timeout)  # type: ignore[misc]

    def spawnProcess(
        self,
        processProtocol: IProcessProtocol,
        executable: bytes | str,
        args: Sequence[bytes | str] = (),
        env: Mapping[bytes | str, bytes | str] | None = {},
        path: bytes | str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        usePTY: Any = 0,
        childFDs: Mapping[int, int | str] | None = None,
        **options: Any,
    ) -> IProcessTransport:
        """
        Spawn a process, as L{IReactorProcess.spawnProcess}, through
        txspawn.

        txspawn's keyword-only options (C{processGroup}, C{newSession},
        C{timeout}, ...) are passed on to
        L{txspawn._spawner.ProcessSpawner.spawnProcess}.

        The signature and defaults are those of
        L{twisted.internet.posixbase.PosixReactorBase.spawnProcess}
        (C{env={}} means an empty environment, C{env=None} inherits
        C{os.environ}).  Unlike Twisted's fork path, a failure to start the
        child raises L{txspawn.errors.SpawnError} synchronously.

        @return: the L{IProcessTransport}.
        """
        # The mutable default is never mutated: it only marks "not given",
        # which IReactorProcess defines as an empty environment.
        return self.processSpawner.spawnProcess(
            processProtocol,
            executable,
            args,
            env,
            path,
            uid,
            gid,
            usePTY,
            childFDs,
            **options,
        )


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
                                # that is only reading, done here: it is
                                # known to be in epoll and in no other set.
                                del selectables[fd]
                                poller.unregister(fd)
                                reads.remove(fd)
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

    def _removeInternalReader(self, reader: Any) -> None:
        """
        Remove an internal reader, as L{ReactorBase._removeInternalReader}
        does, taking the short way for the common case: a descriptor
        registered with epoll for reading only (a child's pidfd, removed as
        soon as the child is reaped, on the exit path).
        """
        self._internalReaders.remove(reader)
        fd = reader.fileno()
        if (
            fd in self._reads
            and fd not in self._writes
            and self._selectables.get(fd) is reader
        ):
            # What EPollReactor.removeReader -> _remove does for it.
            del self._selectables[fd]
            self._poller.unregister(fd)
            self._reads.remove(fd)
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


class PollReactor(SpawnReactorMixin, pollreactor.PollReactor):
    """
    Twisted's poll reactor, spawning through txspawn.
    """


class SelectReactor(SpawnReactorMixin, selectreactor.SelectReactor):
    """
    Twisted's select reactor, spawning through txspawn.
    """


class AsyncioSelectorReactor(SpawnReactorMixin, asyncioreactor.AsyncioSelectorReactor):
    """
    Twisted's asyncio reactor, spawning through txspawn.

    Unlike Twisted's, L{run} uninstalls the reactor's signal handling when
    the loop returns (Twisted's asyncio reactor leaves it installed until
    C{_uninstallHandler}), so that the SIGCHLD disposition and wakeup fd are
    restored after C{reactor.run()} as with every other reactor.
    """

    # The asyncio loop waits for events itself, never through doIteration:
    # Twisted's registry gets the eager SIGCHLD subscription.
    _hasWaitHook = False

    def __init__(
        self,
        eventloop: AbstractEventLoop | None = None,
        *,
        engine: str | ISpawner | None = None,
        monitor: str | IChildMonitor | None = None,
    ) -> None:
        """
        @param eventloop: The asyncio event loop to wrap; C{None} for the
            running loop or a new one, as Twisted's reactor does.
        @param engine: See L{SpawnReactorMixin.__init__}.
        @param monitor: See L{SpawnReactorMixin.__init__}.
        """
        asyncioreactor.AsyncioSelectorReactor.__init__(self, eventloop)
        self._setUpSpawning(engine, monitor)

    def run(self, installSignalHandlers: bool = True) -> None:
        """
        Run the asyncio loop until the reactor stops, then uninstall signal
        handling (as L{twisted.internet.base.ReactorBase.run} does).

        @param installSignalHandlers: As for L{IReactorCore.run}.
        """
        try:
            super().run(  # type: ignore[no-untyped-call]
                installSignalHandlers=installSignalHandlers
            )
        finally:
            self._signals.uninstall()
