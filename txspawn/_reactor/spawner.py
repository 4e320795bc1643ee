# -*- test-case-name: tests.test_spawner -*-
"""
L{ProcessSpawner}: the one place where a spawn request becomes a running,
watched child with a connected transport.

It ties the layers together, in this order (each step only runs if the
previous one succeeded, and a failure leaves nothing behind):

  1. the protocol and the options are checked
     (L{txspawn._api.arguments}), and L{txspawn._plan.planner.planSpawn}
     validates every other argument (all bad input is rejected here, before
     any fd is opened or child created, with errors naming
     C{spawnProcess()} and the argument);
  2. the transport (L{txspawn._transport.pipetransport.Process} or
     L{txspawn._transport.ptytransport.PTYProcess}) opens its pipes or pty
     and has the engine
     start the child, then closes the child's ends;
  3. C{protocol.makeConnection(transport)} runs, synchronously inside
     C{spawnProcess}, as in Twisted;
  4. the child monitor watches the child and calls the transport back once
     it is reaped;
  5. the transport's timers (C{timeout}, C{closePipesAfterExit}) are armed,
     and a protocol providing L{txspawn.interfaces.IProcessStateObserver}
     gets its child watched for stops and continues.

L{installSpawner} and L{uninstallSpawner} put a L{ProcessSpawner} behind an
existing reactor's C{spawnProcess}.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import (
    IProcessProtocol,
    IProcessTransport,
    IReactorCore,
    IReactorFDSet,
    IReactorProcess,
    IReactorTime,
)
from zope.interface import alsoProvides, implementer, noLongerProvides

from txspawn._api.arguments import callError, checkProtocol, splitSpawnOptions
from txspawn._cgroup.removal import LeafRemover
from txspawn._kernel.childhandle import completeCleanup
from txspawn._monitor.orphans import reapPendingOrphans
from txspawn._monitor.statewatch import StateChangeWatcher
from txspawn._plan.planner import isOpenFD, planSpawn
from txspawn._transport.pipetransport import Process, ProcessLifecycle
from txspawn._transport.ptytransport import PTYProcess
from txspawn._transport.timelimits import NO_LIFETIME
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import (
    IChildMonitor,
    IProcessStateObserver,
    IReactorSpawn,
    ISpawner,
)

if TYPE_CHECKING:
    from twisted.internet.base import _SystemEventID

__all__ = [
    "ProcessSpawner",
    "installSpawner",
    "installedSpawner",
    "uninstallSpawner",
]


@implementer(IReactorProcess)
class ProcessSpawner:
    """
    An L{IReactorProcess} provider that spawns through a txspawn engine and
    watches children with a txspawn monitor, on behalf of one reactor.

    @ivar reactor: The reactor the transports and the monitor use.
    @ivar spawner: The engine (L{ISpawner}).
    @ivar monitor: The child monitor (L{IChildMonitor}).
    @ivar manageSignals: Whether this object installs and uninstalls the
        monitor's process-global set-up itself (see L{__init__}).
    @ivar declaredSpawn: Whether L{installSpawner} declared
        L{IReactorSpawn} on the reactor (so L{uninstallSpawner} takes it
        back).
    @ivar abandon: C{abandon(made)}: the clean-up of an entry point whose
        L{spawnInto} call raised (or was interrupted right after it
        returned): kill and reap the child of each transport in C{made}
        (L{txspawn._transport.lifecycle.ProcessLifecycle._abandon}), to the end even
        if a second exception -- another C{KeyboardInterrupt} -- interrupts
        it: that one is raised once the clean-up is done.  A C callable (a
        C{functools.partial} of L{txspawn._kernel.childhandle.completeCleanup}), not a
        method: calling a method runs its first instruction, where a signal
        handler may raise, before anything is cleaned up.
    """

    def __init__(
        self,
        reactor: IReactorFDSet,
        spawner: ISpawner | None = None,
        monitor: IChildMonitor | None = None,
        manageSignals: bool = True,
    ) -> None:
        """
        @param reactor: An L{IReactorFDSet} (and, with C{manageSignals},
            L{IReactorCore}) reactor.
        @param spawner: The engine; C{None} for
            L{txspawn._engine.selection.selectSpawner}'s choice.
        @param monitor: The monitor; C{None} for
            L{txspawn._monitor.selection.selectMonitor}'s choice for C{reactor}.
        @param manageSignals: C{True} (for a reactor that knows nothing of
            txspawn, see L{installSpawner}): install the monitor on the
            first spawn and uninstall it at the reactor's C{"after"
            "shutdown"} trigger.  C{False}: the reactor class composes the
            monitor into its own signal handling (L{txspawn._reactor}).
        """
        if spawner is None:
            from txspawn._engine.selection import selectSpawner

            spawner = selectSpawner()
        if monitor is None:
            from txspawn._monitor.selection import selectMonitor

            monitor = selectMonitor(reactor)
        self.reactor = reactor
        self.spawner = spawner
        self.monitor = monitor
        self.manageSignals = manageSignals
        self.declaredSpawn = False
        self.abandon: Callable[[list[ProcessLifecycle]], None] = partial(
            completeCleanup, self._abandonEach
        )
        self._installed = False
        self._shutdownTrigger: _SystemEventID | None = None
        self._startupTrigger: _SystemEventID | None = None
        self._stateWatcher: StateChangeWatcher | None = None
        self._leafRemover: LeafRemover | None = None

    def leafRemover(self) -> LeafRemover:
        """
        The remover of this reactor's cgroup leaves, which also keeps their
        parents' spare leaves (made on first use, by the first spawn with
        C{cgroup=}; its C{inotify} instance is opened only while a leaf
        waits for its tree to end; nothing for a reactor that never uses
        cgroups).
        """
        if self._leafRemover is None:
            self._leafRemover = LeafRemover(self.reactor)
        return self._leafRemover

    def stateWatcher(self) -> StateChangeWatcher:
        """
        The watcher reporting stops and continues to protocols that provide
        L{IProcessStateObserver} (made on first use: nothing is subscribed
        until such a protocol is spawned).  Its module is imported with this
        one, not on first use: an import opens files, and the first such
        spawn when every fd is in use must fail with the same
        L{SpawnError} as any other.
        """
        if self._stateWatcher is None:
            self._stateWatcher = StateChangeWatcher(self.reactor)
        return self._stateWatcher

    def spawnProcess(
        self,
        processProtocol: IProcessProtocol,
        executable: bytes | str,
        args: Sequence[bytes | str] = (),
        env: Mapping[Any, Any] | None = {},
        path: bytes | str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        usePTY: Any = 0,
        childFDs: Mapping[int, int | str] | None = None,
        **options: Any,
    ) -> IProcessTransport:
        """
        Spawn a child process, as L{IReactorProcess.spawnProcess}.

        The positional signature and the defaults are exactly those of
        L{twisted.internet.posixbase.PosixReactorBase.spawnProcess}:
        C{env={}} (the default) gives the child an I{empty} environment and
        C{env=None} inherits C{os.environ}; C{childFDs} defaults to
        C{{0: "w", 1: "r", 2: "r"}}; C{usePTY} is a truth value or a
        C{(masterfd, slavefd, ttyname)} tuple and excludes C{childFDs}.

        @param options: txspawn's extra options, keyword only: those of
            L{txspawn.options.SpawnOptions} (C{umask}, C{groups},
            C{newSession}, C{processGroup}, C{rlimits}, C{deathSignal}),
            and the lifetime options of
            L{txspawn._transport.timelimits.LifetimeOptions}:
            C{timeout} (seconds the child may run before the transport's
            C{terminate(killAfter)}: C{SIGTERM}, then C{SIGKILL}, to the
            process group it leads if any), C{killAfter} (that grace
            period, default 5 seconds; only with C{timeout}) and
            C{closePipesAfterExit} (seconds after the child's exit at which
            the pipes are closed even if a descendant holds them, so that
            C{processEnded} comes).
        @return: The connected transport, an
            L{txspawn.interfaces.IManagedProcessTransport}.  The protocol's
            C{makeConnection} has been called before this returns.
        @raise TypeError: An argument has the wrong type, or an option is
            unknown, or C{processProtocol} does not provide
            L{IProcessProtocol} (the message names C{spawnProcess()} and
            the argument).
        @raise ValueError: An argument has a bad value (idem).
        @raise txspawn.errors.SpawnError: The child could not be started; it
            has been reaped, every fd closed, and C{makeConnection} was not
            called.
        @raise txspawn.errors.UnsupportedFeature: The protocol provides
            L{IProcessStateObserver} and this is not the main thread
            (nothing was started).
        @raise BaseException: Anything else raised during the call -- a
            C{KeyboardInterrupt} from Python's C{SIGINT} handler (a REPL,
            C{reactor.run(installSignalHandlers=False)}) at any point, or the
            monitor failing -- leaves no child, zombie or fd behind: a child
            already started is killed with C{SIGKILL} and reaped before the
            exception propagates.  A protocol that already got
            C{makeConnection} then gets C{processEnded} (once its pipes are
            done) with that C{SIGKILL}; one that did not is never called.
        """
        made: list[ProcessLifecycle] = []
        try:
            # Positional arguments only: CPython then runs spawnInto in this
            # same evaluation loop, and its return gives no signal handler a
            # chance to run before this one returns (a call with **options
            # would: see docs/design/engines.rst, "Interrupted spawns").
            return self.spawnInto(
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
            self.abandon(made)
            raise

    def _abandonEach(self, made: list[ProcessLifecycle]) -> None:
        """
        L{abandon}'s work, run again by L{txspawn._kernel.childhandle.completeCleanup}
        until it finishes.

        It is resumable, each step done once whichever attempt got to it.
        First the child is killed and reaped by
        L{txspawn._kernel.childhandle.ChildProcess.killAndReap}, which records the reap
        before a handler can raise, so no later attempt signals or waits for
        a pid that may be someone else's by then.  Then the monitor reports
        it (C{processExited}) and forgets it, its pidfd unregistered from
        the reactor and only then closed.  Last, the transport's
        C{_abandon} finds all that done, closes the pipes of a protocol that
        was never connected and tells a connected one (once).  Then the
        C{SIGCHLD} subscription the spawn of an observing protocol took
        before starting its child (L{spawnInto}) is dropped if no child
        uses it.
        """
        for transport in made:
            child = transport._child
            if child is not None:
                child.killAndReap()
                # Set only after makeConnection (spawnInto): the protocol
                # this reports to was connected.
                monitor = transport._monitor
                if monitor is not None:
                    monitor.reapIfExited(child)  # type: ignore[no-untyped-call]
            transport._abandon()
        watcher = self._stateWatcher
        if watcher is not None:
            watcher.releaseIdle()

    def spawnInto(
        self,
        made: list[ProcessLifecycle],
        processProtocol: IProcessProtocol,
        executable: bytes | str,
        args: Sequence[bytes | str],
        env: Mapping[Any, Any] | None,
        path: bytes | str | None,
        uid: int | None,
        gid: int | None,
        usePTY: Any,
        childFDs: Mapping[int, int | str] | None,
        options: Mapping[str, Any],
    ) -> IProcessTransport:
        """
        L{spawnProcess}'s work, for an entry point (L{spawnProcess} itself,
        the reactor mixin's C{spawnProcess}) that owns the clean-up.

        The transport appends itself to C{made} as soon as it is complete;
        from then on, if anything raises before the entry point has
        returned the transport to its caller -- even a signal handler right
        after this method returned -- the entry point must call
        L{abandon}, first thing in its C{except} clause.  Before that, the
        transport's constructor cleans up after itself.

        @param made: An empty list.
        @param options: The keyword-only options of L{spawnProcess}.
        @return: See L{spawnProcess}.
        """
        checkProtocol("spawnProcess()", processProtocol)
        try:
            if options:
                lifetime, spawnOptions = splitSpawnOptions(options)
            else:
                lifetime, spawnOptions = NO_LIFETIME, None
            plan = planSpawn(
                executable,
                args,
                env,
                path,
                uid,
                gid,
                usePTY,
                childFDs,
                parentEnviron=os.environb,
                isOpenFD=isOpenFD,
                options=spawnOptions,
            )
        except (TypeError, ValueError) as error:
            raise callError("spawnProcess()", error) from None
        observeState = IProcessStateObserver.providedBy(processProtocol)
        if observeState:
            # Subscribed to SIGCHLD now, before any child exists: that may
            # open the wakeup pipe, and fd exhaustion must fail the spawn
            # here (SpawnError), not after makeConnection.  A failure from
            # here on has abandon() drop the subscription if it is unused.
            self.stateWatcher().prepare()
        # Orphans of a stopped reactor that no thread could be started for
        # are reaped first: their zombies would make this spawn fail with
        # EAGAIN under RLIMIT_NPROC (txspawn._monitor.orphans).
        reapPendingOrphans()
        if self.manageSignals:
            self._installMonitor()
        # The transport, once complete, appends itself to made as its
        # constructor's last step (even an exception raised right after the
        # constructor returned then finds it there).
        kind: type[Process] | type[PTYProcess] = (
            Process if plan.pty is None else PTYProcess
        )
        transport = kind(
            self.reactor, plan, processProtocol, self.spawner, made, self.leafRemover
        )
        transport._connect()
        child = transport._child
        assert child is not None
        if child.reaped:
            # The engine found the child already reaped by the kernel
            # (SIGCHLD ignored: see PythonSpawner._withPidfd), so no monitor
            # can watch it, and its status is lost for good.  Report that
            # from the reactor's next iteration, as the monitors report a
            # child someone else reaped (never from inside spawnProcess).
            clock: IReactorTime = self.reactor  # type: ignore[assignment]
            clock.callLater(0, transport._childExited, child)
            if observeState:
                # Nothing to watch: what prepare() took is not needed.
                self.stateWatcher().releaseIdle()
        else:
            if observeState:
                # Before the monitor watches: the SIGCHLD monitor reaps a
                # child that exited already as it starts watching it, and
                # a reaped child cannot be watched for stops (its pid may
                # be someone else's).  Watching it never reaps it.
                transport._observeState(self.stateWatcher())
            # Set first: if watch raises (or is interrupted), the entry
            # point's abandon() has the monitor drop whatever it recorded,
            # kills and reaps the child, and the protocol still gets
            # processEnded.
            transport._monitor = self.monitor
            self.monitor.watch(child, transport._childExited)
        transport._armLifetime(lifetime)
        childCgroup = transport._cgroup
        if childCgroup is not None:
            # This spawn took its parent's spare leaf, or made its own: have
            # the next one made in the reactor's next turn, off this spawn's
            # path (it runs while the child does, on another CPU if there is
            # one: the work is moved, not saved).
            self.leafRemover().spareLater(childCgroup.leaf.parent)
        return transport

    def _installMonitor(self) -> None:
        """
        Install the monitor (once) and arrange for it to be uninstalled when
        the reactor shuts down.

        If the reactor is not running yet, the installation waits for the
        reactor's C{"after" "startup"} event: a stock Twisted reactor
        installs its own SIGCHLD handling I{during} startup, and the monitor
        must come after it, so that it forwards wake-ups to Twisted's waker
        rather than being silently replaced by it.  Children spawned in the
        meantime are reaped when the monitor is installed (reap-on-install).

        @raise txspawn.errors.SpawnError: (stage C{SPAWN}) the monitor could
            not be installed (the SIGCHLD wakeup pipe hit C{EMFILE}): the
            spawn fails as for any other fd that cannot be opened, and the
            next one tries again.
        """
        if self._installed or self._startupTrigger is not None:
            return
        core: IReactorCore = self.reactor  # type: ignore[assignment]
        if self._shutdownTrigger is None:
            # Only once: an installation that failed left its trigger here,
            # and each spawn retrying it must not add one more.
            self._shutdownTrigger = core.addSystemEventTrigger(
                "after", "shutdown", self._shutdownUninstall
            )
        if core.running:
            try:
                self.monitor.install()
            except OSError as e:
                if isinstance(e, SpawnError):
                    raise
                raise SpawnError.fromErrno(
                    e.errno or errno.EINVAL, ChildSetupStage.SPAWN
                ) from None
            self._installed = True
        else:
            self._startupTrigger = core.addSystemEventTrigger(
                "after", "startup", self._startupInstall
            )

    def _startupInstall(self) -> None:
        self._startupTrigger = None
        if not self._installed:
            self.monitor.install()
            self._installed = True

    def _shutdownUninstall(self) -> None:
        # The trigger is being run, so it must not be removed again.
        self._shutdownTrigger = None
        self.uninstallMonitor()

    def uninstallMonitor(self) -> None:
        """
        Undo what L{spawnProcess} installed under C{manageSignals}: the
        monitor's process-global set-up and the shutdown trigger.
        Idempotent; a later spawn installs again.
        """
        core: IReactorCore = self.reactor  # type: ignore[assignment]
        for trigger in (self._shutdownTrigger, self._startupTrigger):
            if trigger is not None:
                core.removeSystemEventTrigger(trigger)
        self._shutdownTrigger = self._startupTrigger = None
        if self._installed:
            self._installed = False
            self.monitor.uninstall()


def installSpawner(
    reactor: IReactorFDSet,
    engine: str | ISpawner | None = None,
    monitor: str | IChildMonitor | None = None,
) -> ProcessSpawner:
    """
    Make an existing reactor's C{spawnProcess} spawn through txspawn.

    The reactor gets an I{instance attribute} C{spawnProcess}, bound to a
    new L{ProcessSpawner}, which shadows the class's method.  That is the
    least invasive composition for a reactor that already exists (it may
    even be running): nothing global is patched, the reactor's class and
    every other instance are untouched, no new reactor object replaces the
    one other code holds, and L{uninstallSpawner} undoes it by deleting one
    attribute.  The instance also provides L{IReactorSpawn} while it is
    installed, so that L{txspawn.run} and L{txspawn.stream} pass it spawn
    options.  The spawner manages the monitor itself (C{manageSignals}):
    installed on the first spawn, uninstalled at the reactor's shutdown.

    @param reactor: A running or not-yet-running L{IReactorFDSet} and
        L{IReactorCore} reactor.
    @param engine: An engine name (C{"python"}, C{"c"}), an L{ISpawner}, or
        C{None} for the default choice.
    @param monitor: A monitor name (C{"pidfd"}, C{"sigchld"}), an
        L{IChildMonitor}, or C{None} for the default choice.
    @return: The L{ProcessSpawner} now serving C{reactor.spawnProcess}.
    @raise RuntimeError: txspawn is already installed on C{reactor}.
    """
    if installedSpawner(reactor) is not None:
        raise RuntimeError(f"txspawn is already installed on {reactor!r}")
    from txspawn._engine.selection import selectSpawner
    from txspawn._monitor.selection import selectMonitor

    spawner = (
        selectSpawner(engine) if engine is None or isinstance(engine, str) else engine
    )
    childMonitor = (
        selectMonitor(reactor, monitor)
        if monitor is None or isinstance(monitor, str)
        else monitor
    )
    processSpawner = ProcessSpawner(reactor, spawner, childMonitor, manageSignals=True)
    reactor.spawnProcess = processSpawner.spawnProcess  # type: ignore[attr-defined]
    if not IReactorSpawn.providedBy(reactor):
        # Its spawnProcess takes txspawn's options now: say so, for run()
        # and stream() (which look only at interfaces, not at spawners).
        alsoProvides(reactor, IReactorSpawn)
        processSpawner.declaredSpawn = True
    return processSpawner


def installedSpawner(reactor: object) -> ProcessSpawner | None:
    """
    The L{ProcessSpawner} that L{installSpawner} put on C{reactor}, if any.
    """
    bound = vars(reactor).get("spawnProcess") if hasattr(reactor, "__dict__") else None
    owner = getattr(bound, "__self__", None)
    return owner if isinstance(owner, ProcessSpawner) else None


def uninstallSpawner(reactor: IReactorFDSet) -> None:
    """
    Undo L{installSpawner}: C{reactor.spawnProcess} is the class's again and
    the monitor's process-global set-up is removed.  Idempotent.

    Children spawned before stay watched by the pidfd monitor (their pidfds
    stay registered with the reactor); with the SIGCHLD monitor they are
    only reaped if it is installed again.
    """
    processSpawner = installedSpawner(reactor)
    if processSpawner is None:
        return
    del reactor.spawnProcess  # type: ignore[attr-defined]
    if processSpawner.declaredSpawn:
        noLongerProvides(reactor, IReactorSpawn)
    processSpawner.uninstallMonitor()
