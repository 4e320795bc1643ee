# -*- test-case-name: tests.test_reactor -*-
"""
L{SpawnReactorMixin}, which composes txspawn into a Twisted reactor class,
and L{installGlobalReactor}, which every per-kind C{install()} shares.

The mixin is mixed in I{before} a Twisted reactor class.  It changes exactly
two things, both by composition (nothing in C{twisted.internet.process} is
patched):

  - C{spawnProcess} delegates to a per-reactor
    L{txspawn._reactor.spawner.ProcessSpawner}, with exactly the parameters and
    defaults of L{twisted.internet.posixbase.PosixReactorBase.spawnProcess}
    followed by C{**options}, txspawn's keyword-only extras.
  - C{_signalsFactory} composes Twisted's basic signal handling (SIGINT,
    SIGTERM) with the child monitor's own process-global set-up instead of
    Twisted's C{_ChildSignalHandling}:

      - C{sigchld} monitor: the monitor itself (its SIGCHLD waker);
      - C{pidfd} monitor: the monitor (whose install/uninstall need no
        signal at all) plus
        L{txspawn._monitor.twistedregistry.TwistedRegistryReaping}, so
        that L{twisted.internet.process.Process} objects which other code
        builds directly (buildbot does) are still reaped.  Where the
        reactor waits in C{doIteration} (all but asyncio), the mixin's
        C{doIteration} lets it look at Twisted's registry before each wait,
        and it holds the SIGCHLD wakeup only while that registry is not
        empty: a txspawn child's exit then costs no signal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, cast

from twisted.internet._signals import SignalHandling, _MultiSignalHandling
from twisted.internet.base import ReactorBase
from twisted.internet.error import ReactorAlreadyInstalledError
from twisted.internet.interfaces import (
    IProcessProtocol,
    IProcessTransport,
    IReactorFDSet,
)
from zope.interface import implementer

from txspawn._engine.selection import selectSpawner
from txspawn._monitor.orphans import reaper as orphanReaper
from txspawn._monitor.selection import selectMonitor
from txspawn._monitor.twistedregistry import TwistedRegistryReaping
from txspawn._reactor.spawner import ProcessSpawner
from txspawn._transport.lifecycle import ProcessLifecycle
from txspawn.interfaces import IChildMonitor, IReactorSpawn, ISpawner

__all__ = ["SpawnReactorMixin", "installGlobalReactor"]


@implementer(IReactorSpawn)
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

        This replaces
        L{twisted.internet.posixbase.PosixReactorBase._signalsFactory}, whose
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
        Reap the exited orphans left pending by a reactor that stopped while
        no reaper thread could start (L{txspawn._monitor.orphans}; nothing but one
        attribute test when there are none), let the on-demand registry
        reaping look at Twisted's registry, then wait for events and
        dispatch them as the Twisted reactor does.

        @param timeout: Seconds to wait, or C{None} to wait indefinitely.
        """
        if orphanReaper.pending:
            orphanReaper.reapExited()
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
        Spawn a process, as
        L{twisted.internet.interfaces.IReactorProcess.spawnProcess}, through
        txspawn.

        txspawn's keyword-only options (C{processGroup}, C{newSession},
        C{timeout}, ...) are passed on to
        L{txspawn._reactor.spawner.ProcessSpawner.spawnProcess}.

        The signature and defaults are those of
        L{twisted.internet.posixbase.PosixReactorBase.spawnProcess}
        (C{env={}} means an empty environment, C{env=None} inherits
        C{os.environ}).  Unlike Twisted's fork path, a failure to start the
        child raises L{txspawn.errors.SpawnError} synchronously.

        @return: the L{IProcessTransport}.
        """
        # The mutable default is never mutated: it only marks "not given",
        # which IReactorProcess defines as an empty environment.
        spawner = self.processSpawner
        # This is the entry point, so it owns the clean-up (see
        # ProcessSpawner.spawnInto): a KeyboardInterrupt raised at any
        # point before it returns leaves no child behind.
        made: list[ProcessLifecycle] = []
        try:
            return spawner.spawnInto(
                made,
                processProtocol,
                executable,
                args,
                env,
                path,
                uid,
                gid,
                usePTY,
                childFDs,
                options,
            )
        except BaseException:
            spawner.abandon(made)
            raise


_R = TypeVar("_R", bound=SpawnReactorMixin)


def installGlobalReactor(build: Callable[[], _R], kind: str) -> _R:
    """
    Build a txspawn reactor and install it as Twisted's global reactor: the
    body of each per-kind C{install()}.

    Unlike Twisted's own C{install()} functions, this refuses I{before}
    building the reactor (which would open a waker and a poller for
    nothing), and says how to use txspawn with the reactor that is there.

    @param build: Makes the reactor (the reactor class, with the engine and
        monitor bound).
    @param kind: The C{--reactor} name of the kind, for the message.
    @return: The installed reactor.
    @raise ReactorAlreadyInstalledError: if a reactor is already installed
        (Twisted's own exception, so code that catches it keeps working).
    """
    installed = sys.modules.get("twisted.internet.reactor")
    if installed is not None:
        raise ReactorAlreadyInstalledError(_alreadyInstalledMessage(installed, kind))
    reactor = build()
    from twisted.internet.main import installReactor

    installReactor(reactor)  # type: ignore[no-untyped-call]
    return reactor


def _alreadyInstalledMessage(installed: object, kind: str) -> str:
    """
    Explain what to do when a reactor is installed already.

    @param installed: What C{twisted.internet.reactor} is.
    @param kind: The C{--reactor} name of the kind that was asked for.
    """
    cls = type(installed)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(installed, SpawnReactorMixin):
        return (
            f"a reactor is already installed, and it is txspawn's ({name}): "
            "it already spawns through txspawn, there is nothing to install"
        )
    return (
        f"a reactor is already installed ({name}); a txspawn reactor must be "
        "installed before anything imports twisted.internet.reactor (or "
        f"chosen with twistd/trial --reactor={kind}).  To spawn through "
        "txspawn on the reactor you have, call txspawn.install(reactor) "
        "instead: it makes that reactor's spawnProcess use txspawn"
    )
