# -*- test-case-name: tests.test_supervise_twistd -*-
"""
The supervisor as a twistd/twist plugin: C{twistd -n txspawn-supervise -c
procs.toml}, C{twist txspawn-supervise -c procs.toml}.

L{Options} parses the command line and loads the config at once, so that a
bad config stops twistd before it daemonizes, with every problem's key path
and line.  L{makeService} builds the L{SupervisorService} with two more
services under it: the control API listening on the config's C{control}
endpoint, and a C{SIGHUP} handler that reloads the config (as supervisord
and most daemons do).

The supervisor needs a txspawn reactor (one that provides
L{txspawn.interfaces.IReactorSpawn}): its programs' whole trees, cgroups
and stop deadlines come from txspawn.  When no reactor is installed yet
when the options are parsed (C{twist}, and C{twistd} without
C{--reactor}), txspawn's is installed; when another one is, the options
are refused and say to pass C{--reactor=txspawn}.

@since: txspawn 0.1
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IListeningPort, IReactorProcess
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from txspawn.interfaces import IReactorSpawn
from txspawn.supervise.config import ConfigErrors, SupervisorConfig, loadConfig

__all__ = [
    "ControlService",
    "Options",
    "ReloadOnHangup",
    "makeService",
    "txspawnReactor",
]

if TYPE_CHECKING:
    from txspawn.supervise.service import SupervisorService

_log = Logger()


def txspawnReactor() -> IReactorProcess:
    """
    The global reactor, installing txspawn's when none is installed yet.

    @return: The global reactor, which provides L{IReactorSpawn}.
    @raise usage.UsageError: another kind of reactor is installed.

    @since: txspawn 0.1
    """
    if "twisted.internet.reactor" not in sys.modules:
        from txspawn.reactor import install

        install()
    from twisted.internet import reactor

    if not IReactorSpawn.providedBy(reactor):
        kind = f"{type(reactor).__module__}.{type(reactor).__qualname__}"
        raise usage.UsageError(
            f"the supervisor runs on a txspawn reactor, and {kind} is "
            "installed: pass --reactor=txspawn (twistd --reactor=txspawn "
            "txspawn-supervise ...)"
        )
    return cast(IReactorProcess, reactor)


class Options(usage.Options):
    """
    The plugin's options: C{-c/--config}, the config file.

    Parsing them loads the config (L{loadConfig}): the loaded config is
    C{self["loaded"]}, and the reactor (L{txspawnReactor}) C{self["reactor"]}.

    @since: txspawn 0.1
    """

    synopsis = "[-c procs.toml]"
    longdesc = (
        "Run txspawn's process supervisor on a TOML config: its programs "
        "started in dependency order, restarted with backoff, stopped as "
        "whole trees, controlled with 'python -m txspawn ctl'.  SIGHUP "
        "reloads the config."
    )
    optParameters = [
        ["config", "c", "procs.toml", "The supervisor's config file (TOML)."],
    ]

    def postOptions(self) -> None:
        """
        Load the config, and make sure a txspawn reactor is installed.

        @raise usage.UsageError: the config cannot be read or is not
            valid (every problem listed, with its line and key path), or
            another kind of reactor is installed.
        """
        try:
            self["loaded"] = loadConfig(self["config"])
        except ConfigErrors as e:
            raise usage.UsageError(f"the config is not valid:\n{e}") from None
        except OSError as e:
            raise usage.UsageError(
                f"cannot read the config {self['config']!r}: {e.strerror}"
            ) from None
        self["reactor"] = txspawnReactor()


class ControlService(Service):
    """
    The control API (L{txspawn.supervise.control}) on an endpoint while the
    service runs.

    Not being able to listen stops the reactor, after logging why: a
    supervisor that cannot be controlled should not go on unnoticed (the
    programs are then stopped as at any shutdown).

    @ivar port: The listening port while the service runs, else C{None}.
    @ivar listenFailure: Why it could not listen, or C{None}.

    @since: txspawn 0.1
    """

    def __init__(
        self, supervisor: SupervisorService, endpoint: str, reactor: Any
    ) -> None:
        """
        @param supervisor: The L{SupervisorService} to control.
        @param endpoint: A Twisted server endpoint string.
        @param reactor: The reactor to listen with.
        """
        self._supervisor = supervisor
        self._endpoint = endpoint
        self._reactor = reactor
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None
        self.listenFailure: Failure | None = None

    def startService(self) -> None:
        from txspawn.supervise.control import listenControl

        super().startService()  # type: ignore[no-untyped-call]
        listening = listenControl(self._supervisor, self._endpoint, self._reactor)
        self._listening = listening

        def listened(port: IListeningPort) -> None:
            self._listening = None
            self.port = port
            _log.info("control API listening on {endpoint}", endpoint=self._endpoint)

        def failed(failure: Failure) -> None:
            self._listening = None
            if isinstance(failure.value, CancelledError):
                # stopService cancelled it.
                return
            self.listenFailure = failure
            _log.error(
                "control API: cannot listen on {endpoint}: {why}; stopping",
                endpoint=self._endpoint,
                why=failure.getErrorMessage(),
            )
            # Not reactor.stop(): under twistd, startService runs before the
            # reactor does.
            self._reactor.callWhenRunning(self._reactor.stop)

        listening.addCallbacks(listened, failed)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._listening is not None:
            self._listening.cancel()
        port, self.port = self.port, None
        if port is None:
            return None
        stopped: Deferred[None] | None = port.stopListening()
        return stopped


class ReloadOnHangup(Service):
    """
    Reload the supervisor's config on C{SIGHUP}, while the service runs.

    The handler only schedules the reload on the reactor
    (C{callFromThread}, the one reactor call safe from a signal handler);
    the handler that was there before is put back when the service stops.
    Outside the main thread, where Python cannot install signal handlers,
    nothing is installed (and that is logged).

    @since: txspawn 0.1
    """

    def __init__(self, supervisor: SupervisorService, reactor: Any) -> None:
        """
        @param supervisor: The L{SupervisorService} whose C{reload} runs.
        @param reactor: Its reactor.
        """
        self._supervisor = supervisor
        self._reactor = reactor
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None
        self._installed = False

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        try:
            self._previous = signal.signal(signal.SIGHUP, self._hangup)
        except ValueError:
            _log.warn("not in the main thread: SIGHUP will not reload the config")
            return
        self._installed = True

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._installed:
            self._installed = False
            signal.signal(signal.SIGHUP, self._previous)

    def _hangup(self, signum: int, frame: FrameType | None) -> None:
        self._reactor.callFromThread(self.reload)

    def reload(self) -> Deferred[None]:
        """
        Reload the config now, logging what changed or why it could not.

        @return: A L{Deferred} that fires when the reload is done (it never
            fails: failures are logged).
        """
        _log.info("SIGHUP: reloading the config")
        reloading: Deferred[Any] = self._supervisor.reload()

        def done(result: Any) -> None:
            _log.info(
                "config reloaded: added {added}, removed {removed}, "
                "changed {changed}, unchanged {unchanged}",
                added=_names(getattr(result, "added", ())),
                removed=_names(getattr(result, "removed", ())),
                changed=_names(getattr(result, "changed", ())),
                unchanged=_names(getattr(result, "unchanged", ())),
            )

        def failed(failure: Failure) -> None:
            if isinstance(failure.value, ConfigErrors):
                _log.error(
                    "config not reloaded, nothing changed: {errors}",
                    errors=str(failure.value),
                )
            else:
                _log.failure("config not reloaded", failure)

        return reloading.addCallbacks(done, failed)


def _names(names: Any) -> str:
    names = list(names)
    return ", ".join(names) if names else "-"


def makeService(options: Options, reactor: Any = None) -> SupervisorService:
    """
    The supervisor for the parsed options: a L{SupervisorService} on
    C{options["loaded"]}, with the control API (a L{ControlService} named
    C{"control"}) and the C{SIGHUP} reload (a L{ReloadOnHangup} named
    C{"reload"}) as services under it.

    @param options: Parsed L{Options}.
    @param reactor: The reactor to run on; the global reactor (installed
        by L{Options.postOptions}) if C{None}.
    @return: The L{SupervisorService}.

    @since: txspawn 0.1
    """
    from txspawn.supervise.service import SupervisorService

    if reactor is None:
        reactor = options.get("reactor") or txspawnReactor()
    config: SupervisorConfig = options["loaded"]
    # Absolute: a reload reads the same file whatever the directory is by
    # then (twistd's --rundir).
    configPath = os.path.abspath(options["config"])
    supervisor = SupervisorService(config, reactor, configPath=configPath)
    control = ControlService(supervisor, config.control, reactor)
    control.setName("control")  # type: ignore[no-untyped-call]
    control.setServiceParent(supervisor)  # type: ignore[no-untyped-call]
    reload = ReloadOnHangup(supervisor, reactor)
    reload.setName("reload")  # type: ignore[no-untyped-call]
    reload.setServiceParent(supervisor)  # type: ignore[no-untyped-call]
    return supervisor
