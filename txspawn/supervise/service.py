# -*- test-case-name: tests.test_supervise_service -*-
"""
The supervisor as a Twisted service: every program of a config, started in
dependency order, stopped in reverse order as whole trees, driven by name
(C{start}, C{stop}, C{restart}, C{signal}), reported (C{status}, the
L{EventLog}) and reloaded.

Dependency gating: an instance of a program P starts once every instance of
every program P depends on is C{RUNNING} (ready).  Starting P starts its
dependencies first (those not already running or starting).  While it
waits, P is C{STOPPED} and its status says what it waits for; if a
dependency ends C{FATAL} (or stops, or exits for good) before being ready,
P is not started and its status says why.  Stopping runs the other way:
the dependencies of P stop only after P's trees are gone.

@since: txspawn 0.1
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import (
    Deferred,
    DeferredLock,
    maybeDeferred,
)
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.supervise._build import BuiltInstance, buildInstances
from txspawn.supervise._gate import ProgramFailed, StartGate, gather, stopInOrder
from txspawn.supervise._metrics import cpuSeconds, peakMemory
from txspawn.supervise._spawnconfig import signalNumber
from txspawn.supervise.config import SupervisorConfig, loadConfig
from txspawn.supervise.events import EventLog
from txspawn.supervise.program import ProgramProcess
from txspawn.supervise.reload import ReloadResult, diffConfigs
from txspawn.supervise.states import IChildObserver, ProgramState, describeExit
from txspawn.supervise.status import ProgramStatus

__all__ = ["ProgramFailed", "SupervisorService", "UnknownProgram"]

_log = Logger()

S = ProgramState
_ENDED = frozenset({S.STOPPED, S.EXITED, S.FATAL})


class UnknownProgram(KeyError):
    """
    No program or instance has that name.

    @ivar name: The name asked for.
    @ivar known: The program names there are.

    @since: txspawn 0.1
    """

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"unknown program {self.name!r} (programs: {known}; or 'all')"


@implementer(IChildObserver)
class _Watch:
    """
    Hears one instance: records why, publishes its events, writes its log
    markers, and has the service look at its dependents and waiters.
    """

    def __init__(self, service: SupervisorService, built: BuiltInstance) -> None:
        self._service = service
        self._built = built

    def transition(
        self, program: object, old: ProgramState, new: ProgramState, why: str
    ) -> None:
        assert isinstance(program, ProgramProcess)
        service = self._service
        built = self._built
        service._why[built.name] = why
        events = service.events
        events.publish(
            "transition",
            program=built.name,
            old=old.name,
            new=new.name,
            why=why,
            pid=program.pid,
        )
        error = program.lastSpawnError
        if error is not None and why.startswith("spawn failed"):
            events.publish(
                "spawn-failed",
                program=built.name,
                why=why,
                errno=getattr(error, "errno", None),
            )
        if new is S.STARTING and old in (S.BACKOFF, S.EXITED):
            events.publish("restart", program=built.name, why=why)
        if old.hasChild and not new.hasChild:
            logs: Any = built.logs
            logs.flush()
            logs.marker(why)
        service._gate.moved(built.name)

    def childSpawned(self, program: object, pid: int | None) -> None:
        logs: Any = self._built.logs
        logs.marker(f"spawned pid {pid}")


class SupervisorService(MultiService):
    """
    Supervises the programs of a L{SupervisorConfig}.

    @ivar config: The config in force (replaced by L{reload}).
    @ivar configPath: The file the config was loaded from (what L{reload}
        loads again), or C{None}.
    @ivar events: Every transition, spawn failure, restart and reload.

    @since: txspawn 0.1
    """

    def __init__(
        self,
        config: SupervisorConfig,
        reactor: Any = None,
        *,
        configPath: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """
        Build every program instance (nothing starts before
        L{startService}).

        @param config: The programs.
        @param reactor: Provides L{IReactorProcess} and L{IReactorTime}
            (a txspawn reactor); the global reactor if C{None}.
        @param configPath: Where L{reload} loads the config from.
        @param environ: The environment programs inherit and C{${VAR}} is
            expanded from on reload; L{os.environ} if C{None}.
        @raise txspawn.supervise._build.BuildError: a user or group the
            config names does not exist.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self._reactor: IReactorProcess = reactor
        self._clock: IReactorTime = reactor
        self.config = config
        self.configPath = configPath
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.events = EventLog(self._clock)
        self._instances: dict[str, BuiltInstance] = {}
        self._why: dict[str, str] = {}
        self._gate = StartGate(self, self._clock)
        self._reloadLock = DeferredLock()
        self._closed = False
        self._instances = self._build(config, config.startOrder())
        self._index()

    # -- building ---------------------------------------------------------------

    def _build(
        self, config: SupervisorConfig, names: Iterable[str]
    ) -> dict[str, BuiltInstance]:
        """
        Build the instances of the programs C{names} of C{config}; on an
        error, release what was built and raise it.
        """
        built: dict[str, BuiltInstance] = {}
        try:
            for name in names:
                for instance in buildInstances(
                    config.programs[name],
                    self._reactor,
                    environ=self._environ,
                    runDir=config.logDir,
                    configName=self.configPath or "<config>",
                ):
                    built[instance.name] = instance
        except BaseException:
            for instance in built.values():
                _release(instance)
            raise
        for instance in built.values():
            self._why[instance.name] = "not started"
            instance.process.addObserver(_Watch(self, instance))
        return built

    def _drop(self, names: Iterable[str]) -> Deferred[None]:
        """
        Forget instances (stopped already) and release their logs and
        readiness resources.
        """
        releases = []
        for name in names:
            instance = self._instances.pop(name)
            self._why.pop(name, None)
            self._gate.forget([name])
            releases.append(_release(instance))
        self._index()
        return gather(releases)

    # -- names ------------------------------------------------------------------

    def _index(self) -> None:
        """
        Index the instances (kept in start order) by program, and the
        config's start order: looked up on every transition.
        """
        self._programOrder = self.config.startOrder()
        byProgram: dict[str, list[str]] = {}
        for name, instance in self._instances.items():
            byProgram.setdefault(instance.program, []).append(name)
        self._byProgram = {
            program: tuple(names) for program, names in byProgram.items()
        }

    def programNames(self) -> tuple[str, ...]:
        """
        The program names, in start order.
        """
        return self._programOrder

    def _programInstances(self, program: str) -> tuple[str, ...]:
        return self._byProgram.get(program, ())

    def _orderedNames(self) -> list[str]:
        """
        Every instance name, in start order.
        """
        return list(self._instances)

    # The gate's view of the instances (its Roster).
    orderedNames = _orderedNames
    namesOf = _programInstances

    def programOf(self, name: str) -> str:
        """
        The program of the instance C{name}.
        """
        return self._instances[name].program

    def processOf(self, name: str) -> ProgramProcess | None:
        """
        The process of the instance C{name}, or C{None} if it is gone.
        """
        built = self._instances.get(name)
        return None if built is None else built.process

    def whyOf(self, name: str) -> str:
        """
        Why the instance C{name} is in its state.
        """
        return self._gate.blockedWhy(name) or self._why.get(name, "")

    def _names(self, name: str) -> tuple[str, ...]:
        if name == "all":
            return tuple(self._orderedNames())
        if name in self.config.programs:
            return self._programInstances(name)
        if name in self._instances:
            return (name,)
        raise UnknownProgram(name, self.programNames())

    def instances(self, name: str) -> tuple[ProgramProcess, ...]:
        """
        The instances a name means: a program's (all its copies), one
        instance (C{"worker:1"}), or every instance for C{"all"}; in start
        order.

        @raise UnknownProgram: no program or instance has that name.
        """
        return tuple(self._instances[each].process for each in self._names(name))

    def logsOf(self, instance: str) -> Any:
        """
        The C{txspawn.supervise.logs.ProgramLogs} of an instance (or of the
        single instance of a program).

        @raise UnknownProgram: no instance has that name.
        """
        names = self._names(instance) if instance != "all" else ()
        if len(names) != 1:
            raise UnknownProgram(instance, self._orderedNames())
        return self._instances[names[0]].logs

    # -- the service ------------------------------------------------------------

    def startService(self) -> None:
        """
        Start the programs marked C{autostart} (and what they depend on),
        each once its dependencies are ready.
        """
        if self._closed:
            self._instances = self._build(self.config, self.config.startOrder())
            self._index()
            self._closed = False
        super().startService()  # type: ignore[no-untyped-call]
        autostart = [
            name for name, program in self.config.programs.items() if program.autostart
        ]
        names = [each for program in autostart for each in self._names(program)]
        if names:
            self._start(names).addErrback(_logStartFailure)

    def stopService(self) -> Deferred[None]:
        """
        Stop every instance, in stop order, as whole trees.

        @return: A L{Deferred} firing once every child and every process of
            their trees is gone (and the logs are closed).
        """
        stopped = maybeDeferred(super().stopService)
        everything = self._stop(self._orderedNames())

        def close(_: object) -> Deferred[None]:
            # Started again, the service builds its instances anew.
            self._closed = True
            return gather([_release(each) for each in self._instances.values()])

        return gather([stopped, everything.addCallback(close)])

    # -- control ----------------------------------------------------------------

    def start(self, name: str) -> Deferred[None]:
        """
        Start the named instances, after starting their dependencies.

        @return: A L{Deferred} firing once every named instance is
            C{RUNNING}, or failing with L{ProgramFailed} when one of them
            cannot get there (it went C{FATAL}, a dependency failed, it was
            stopped meanwhile).
        @raise UnknownProgram: no program or instance has that name.
        """
        return self._start(self._names(name))

    def stop(self, name: str) -> Deferred[None]:
        """
        Stop the named instances (only them: a program depending on one
        of them keeps running); among them, those that depend on others
        stop first.

        @return: A L{Deferred} firing once their trees are gone.
        @raise UnknownProgram: no program or instance has that name.
        """
        return self._stop(self._names(name))

    def restart(self, name: str) -> Deferred[None]:
        """
        Stop, then start, the named instances.

        @return: As L{start}.
        @raise UnknownProgram: no program or instance has that name.
        """
        names = self._names(name)
        return self._stop(names).addCallback(lambda _: self._start(names))

    def signal(self, name: str, signal: int | str) -> None:
        """
        Send a signal to the child of each named instance that has one
        (the child only, not its tree).

        @param signal: A number, or a name (C{"HUP"}, C{"SIGHUP"}).
        @raise ValueError: not a signal.
        @raise UnknownProgram: no program or instance has that name.
        """
        number = signalNumber(signal)
        for process in self.instances(name):
            transport = process.transport
            if transport is None:
                continue
            try:
                transport.signalProcess(number)
            except ProcessExitedAlready:
                pass

    def status(self) -> list[ProgramStatus]:
        """
        One row per instance, in start order.
        """
        return [self._status(name) for name in self._orderedNames()]

    def _status(self, name: str) -> ProgramStatus:
        built = self._instances[name]
        process = built.process
        why = self._why.get(name, "")
        blocked = self._gate.blockedWhy(name)
        if process.state in _ENDED and blocked is not None:
            why = blocked
        if process.lastSpawnError is not None:
            lastExit: str | None = f"spawn failed: {process.lastSpawnError}"
        elif process.lastExit is not None:
            lastExit = describeExit(process.lastExit)
        else:
            lastExit = None
        return ProgramStatus(
            name=name,
            program=built.program,
            state=process.state,
            pid=process.pid,
            uptime=process.uptime(),
            restarts=process.restarts,
            failures=process.failures,
            lastExit=lastExit,
            why=why,
            cpu=cpuSeconds(process),
            memory=peakMemory(process),
        )

    def _start(self, names: Iterable[str]) -> Deferred[None]:
        return self._gate.start(names)

    def _stop(self, names: Iterable[str]) -> Deferred[None]:
        names = tuple(names)
        self._gate.forget(names)
        stopped = stopInOrder(self, names)
        self._gate.settle()
        return stopped

    # -- reload -------------------------------------------------------------------

    def reload(self, config: SupervisorConfig | None = None) -> Deferred[ReloadResult]:
        """
        Move to a new config: programs removed are stopped and dropped,
        added ones added (and started if C{autostart} and the service
        runs), changed ones stopped, replaced and started again; unchanged
        ones keep running untouched.

        @param config: The new config; C{None} loads L{configPath} again.
        @return: A L{Deferred} firing with what changed, once the stops
            are done and the starts begun; failing (with nothing changed)
            with L{txspawn.supervise.config.ConfigErrors} for a config that
            is not valid or names a user or group that does not exist.
        """
        return self._reloadLock.run(self._reload, config)

    def _reload(self, config: SupervisorConfig | None) -> Deferred[ReloadResult]:
        if config is None:
            if self.configPath is None:
                raise ValueError("no config path to reload from")
            config = loadConfig(self.configPath, environ=self._environ)
        new = config
        diff = diffConfigs(self.config, new)
        replacing = diff.added + diff.changed
        built = self._build(new, replacing)
        goingAway = diff.removed + diff.changed
        wasStarted = {
            program
            for program in goingAway
            if any(
                self._instances[name].process.state is not S.STOPPED
                or self._gate.isPending(name)
                for name in self._programInstances(program)
            )
        }
        oldNames = [
            name for program in goingAway for name in self._programInstances(program)
        ]

        def swap(_: object) -> Deferred[None]:
            released = self._drop(oldNames)
            self.config = new
            self._instances = {
                name: (built[name] if name in built else self._instances[name])
                for program in new.startOrder()
                for name in (
                    new.programs[program].instanceNames
                    if program in replacing
                    else self._programInstances(program)
                )
            }
            self._index()
            if self._closed:
                # Stopped (its stop may have ended while this one waited):
                # the new instances only checked the config, and are built
                # anew at start, so their logs must not stay open till then.
                released = gather([released, *map(_release, built.values())])
            if self.running:
                toStart = [
                    name
                    for program in replacing
                    if new.programs[program].autostart or program in wasStarted
                    for name in self._programInstances(program)
                ]
                if toStart:
                    self._start(toStart).addErrback(_logStartFailure)
            self.events.publish(
                "reload",
                why=(
                    f"added {list(diff.added)}, removed {list(diff.removed)},"
                    f" changed {list(diff.changed)}"
                ),
            )
            self._gate.settle()
            return released

        return self._stop(oldNames).addCallback(swap).addCallback(lambda _: diff)


def _release(instance: BuiltInstance) -> Deferred[None]:
    """
    Close an instance's logs and release its readiness check's resources.
    """
    logs: Any = instance.logs
    logs.close()
    return maybeDeferred(instance.readiness.close).addCallback(lambda _: None)


def _logStartFailure(failure: Failure) -> None:
    if not isinstance(failure.value, ProgramFailed):
        _log.failure("starting programs failed", failure)
        return
    _log.warn("{error}", error=failure.value)
