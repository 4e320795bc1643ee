# -*- test-case-name: tests.test_supervise_procmon -*-
"""
A drop-in for L{twisted.runner.procmon.ProcessMonitor} that stops whole
process trees and says when they are gone.

Code written for procmon switches with one import::

    # from twisted.runner.procmon import ProcessMonitor
    from txspawn.supervise.procmon import ProcessMonitor

The API is procmon's (L{ProcessMonitor.addProcess},
L{ProcessMonitor.removeProcess}, L{ProcessMonitor.startProcess},
L{ProcessMonitor.stopProcess}, L{ProcessMonitor.restartAll}, the
C{threshold}, C{killTime}, C{minRestartDelay} and C{maxRestartDelay}
knobs, the C{processes}, C{protocols}, C{delay}, C{timeStarted},
C{murder} and C{restart} views) and so is the restart behaviour: a child
that dies is started again, at once after a run of C{threshold} seconds or
more, else after a delay that doubles with each quick death (from
C{minRestartDelay} up to C{maxRestartDelay}).  Child output is logged line
by line under procmon's log namespace, so log observers keep matching.
Twisted's own C{twisted.runner.test.test_procmon} runs against this class
in CI (C{tests.twisted_procmon_suite}).

What differs, on a txspawn reactor (one providing
L{txspawn.interfaces.IReactorSpawn}: C{twistd --reactor=txspawn}):

  - Each child leads a session of its own and, where the machine allows,
    has a cgroup of its own (C{Cgroup(required=False)} by default; the
    C{cgroup} argument changes it).  Stopping it sends C{SIGTERM} to its
    process group, then C{SIGKILL} to the whole tree after C{killTime}:
    the cgroup (daemons that called C{setsid} included) or, without one,
    the process group.  What a child leaves behind when it exits (during a
    stop or not) is killed at once.
  - L{ProcessMonitor.stopService} returns a L{Deferred} that fires once
    every child and everything it started is gone, so C{twistd} waits for
    them before it exits.  procmon returns C{None} and a child that ignores
    C{SIGTERM} outlives C{twistd}.
  - Pipes a descendant keeps open are closed one second after the child
    exited, so a daemonising child's end is still seen.
  - A child's output that ends with a newline adds no empty log line at
    its exit (procmon logs one per stream), and a partial line is logged
    in pieces once it grows past L{LineLogger.maxLength}.

On any other reactor (Twisted's own, or a fake one) it behaves as procmon:
signals go to the child alone, and the L{Deferred} fires when the children
have exited.

@since: txspawn 0.1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import incremental
from attrs import Factory, frozen
from twisted.application import service
from twisted.internet import error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IProcessTransport,
    IReactorFDSet,
    IReactorProcess,
    IReactorTime,
)
from twisted.logger import Logger
from twisted.python import deprecate
from twisted.python.failure import Failure

from txspawn.interfaces import IManagedProcessTransport, IReactorSpawn
from txspawn.options import Cgroup
from txspawn.supervise._groupwatch import killGroup, processStartTime
from txspawn.supervise._procmonlog import LineLogger, LoggingProtocol

__all__ = ["LineLogger", "LoggingProtocol", "ProcessMonitor"]

#: procmon's log namespace: observers that select procmon's child output by
#: it keep working after the switch.
LOG_NAMESPACE = "twisted.runner.procmon.ProcessMonitor"

#: Seconds after a child's exit at which pipes a descendant still holds are
#: closed, so that its end is seen (the C{closePipesAfterExit} option).
CLOSE_PIPES_AFTER_EXIT = 1.0

_DEFAULT_CGROUP = Cgroup(required=False)

_log = Logger()


@frozen
class _Process:
    """
    The parameters of a monitored process (procmon's record, same fields).

    @ivar args: The argv; C{args[0]} is also the executable.
    @ivar uid: The uid to run as, or C{None} (inherit).
    @ivar gid: The gid to run as, or C{None} (inherit).
    @ivar env: The environment (as C{spawnProcess}'s C{env}).
    @ivar cwd: The working directory, or C{None} (inherit).
    """

    args: list[str]
    uid: int | None = None
    gid: int | None = None
    env: dict[str, str] = Factory(dict)
    cwd: str | None = None

    @deprecate.deprecated(incremental.Version("Twisted", 18, 7, 0))
    def toTuple(self) -> tuple[list[str], int | None, int | None, dict[str, str]]:
        """
        procmon's legacy tuple, C{(args, uid, gid, env)}, as its deprecated
        C{processes} view shows.
        """
        return (self.args, self.uid, self.gid, self.env)


def _killTree(transport: IProcessTransport) -> None:
    """
    C{SIGKILL} to the child's whole tree: its cgroup when it has one, else
    the process group it leads, else the child.

    @raise error.ProcessExitedAlready: nothing could be reached.
    """
    if IManagedProcessTransport.providedBy(transport):
        if transport.cgroupPath is not None:
            transport.killTree()
            return
        if transport.processGroup is not None:
            transport.signalProcessGroup("KILL")
            return
    transport.signalProcess("KILL")


class ProcessMonitor(service.Service):
    """
    Runs processes, restarts them when they die, stops them as whole
    trees: procmon's API and restart rules (see L{txspawn.supervise.procmon}
    for what differs).

    @ivar threshold: Seconds a process must live for its death not to count
        as instant (instant deaths back off).
    @ivar killTime: Seconds between C{SIGTERM} and C{SIGKILL} when stopping.
    @ivar minRestartDelay: The first backoff delay, in seconds.
    @ivar maxRestartDelay: The largest backoff delay, in seconds.
    @ivar protocols: Name to the L{LoggingProtocol} of its live run.
    @ivar delay: Name to the delay before its next restart after an
        instant death.
    @ivar timeStarted: Name to when its current (or last) run was spawned.
    @ivar murder: Name to the pending C{SIGKILL} of a stop in progress.
    @ivar restart: Name to its pending restart.
    @ivar log: The logger child output goes to (procmon's namespace).

    @since: txspawn 0.1
    """

    threshold: float = 1
    killTime: float = 5
    minRestartDelay: float = 1
    maxRestartDelay: float = 3600

    def __init__(
        self,
        reactor: IReactorProcess | None = None,
        *,
        cgroup: Cgroup | None = _DEFAULT_CGROUP,
    ) -> None:
        """
        @param reactor: Provides L{IReactorProcess} and L{IReactorTime};
            C{None}, the global reactor (resolved now, not at import).
        @param cgroup: On a txspawn reactor, the cgroup each child gets
            (L{txspawn.options.Cgroup}); C{None} for none, and the process
            group is the tree.  Ignored on other reactors.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self._reactor = reactor
        self._clock = IReactorTime(reactor)
        self._cgroup = cgroup
        self.log = Logger(namespace=LOG_NAMESPACE, source=self)
        self._processes: dict[str, _Process] = {}
        self.protocols: dict[str, LoggingProtocol] = {}
        self.delay: dict[str, float] = {}
        self.timeStarted: dict[str, float] = {}
        self.murder: dict[str, IDelayedCall] = {}
        self.restart: dict[str, IDelayedCall] = {}
        self._runs: set[LoggingProtocol] = set()
        self._noRunsWaiters: list[Deferred[None]] = []
        if not IReactorSpawn.providedBy(reactor):
            _log.warn(
                "{reactor!r} is not a txspawn reactor: children are stopped as "
                "procmon stops them, not as whole trees (use --reactor=txspawn)",
                reactor=reactor,
            )

    # -- procmon's deprecated views and pickling ---------------------------------

    @deprecate.deprecatedProperty(incremental.Version("Twisted", 18, 7, 0))
    def processes(
        self,
    ) -> dict[str, tuple[list[str], int | None, int | None, dict[str, str]]]:
        """
        Name to C{(args, uid, gid, env)}: procmon's deprecated view.
        """
        return {name: process.toTuple() for name, process in self._processes.items()}

    @deprecate.deprecated(incremental.Version("Twisted", 18, 7, 0))
    def __getstate__(self) -> dict[str, Any]:
        """
        procmon's pickle state: the processes as C{processes} tuples (their
        C{cwd} kept aside), without the reactor or any run.
        """
        state: dict[str, Any] = service.Service.__getstate__(self)  # type: ignore[no-untyped-call]
        for transient in ("_reactor", "_clock", "log", "_runs", "_noRunsWaiters"):
            del state[transient]
        state.update(protocols={}, delay={}, timeStarted={}, murder={}, restart={})
        del state["_processes"]
        state["processes"] = self.processes
        state["_cwds"] = {name: p.cwd for name, p in self._processes.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """
        A monitor from L{__getstate__}'s state, on the global reactor.
        """
        state = dict(state)
        processes = state.pop("processes")
        cwds = state.pop("_cwds", {})
        self.__init__(cgroup=state.pop("_cgroup", _DEFAULT_CGROUP))  # type: ignore[misc]
        self.__dict__.update(state)
        for name, (args, uid, gid, env) in processes.items():
            self.addProcess(name, args, uid, gid, env, cwds.get(name))

    # -- adding and removing -----------------------------------------------------

    def addProcess(
        self,
        name: str,
        args: list[str],
        uid: int | None = None,
        gid: int | None = None,
        env: dict[str, str] = {},  # noqa: B006 (procmon's signature: never mutated)
        cwd: str | None = None,
    ) -> None:
        """
        Add a process to monitor; start it now if the service is running.

        @param name: The process name, unique in this monitor.
        @param args: The argv, not run by a shell (C{args[0]} is the
            executable, looked up on C{PATH}).
        @param uid: The uid to run as, or C{None} (this process's).
        @param gid: The gid to run as, or C{None} (this process's).
        @param env: The child's environment: as C{spawnProcess}'s C{env}, so
            the default C{{}} is an empty one and C{None} is this process's.
        @param cwd: The working directory, or C{None} (this process's).
        @raise KeyError: A process of that name exists.
        """
        if name in self._processes:
            raise KeyError(f"remove {name} first")
        self._processes[name] = _Process(args, uid, gid, env, cwd)
        self.delay[name] = self.minRestartDelay
        if self.running:
            self.startProcess(name)

    def removeProcess(self, name: str) -> None:
        """
        Stop the named process and stop monitoring it.

        @raise KeyError: No process has that name.
        """
        self.stopProcess(name)
        del self._processes[name]

    # -- the service -------------------------------------------------------------

    def startService(self) -> None:
        """
        Start every monitored process.
        """
        service.Service.startService(self)  # type: ignore[no-untyped-call]
        for name in list(self._processes):
            self.startProcess(name)

    def stopService(self) -> Deferred[None]:
        """
        Cancel pending restarts and stop every process (C{SIGTERM}, then the
        tree's C{SIGKILL} after C{killTime}).

        @return: A L{Deferred} that fires once no child of this monitor is
            left: on a txspawn reactor, every process of each child's tree
            (its cgroup, else its process group).
        """
        service.Service.stopService(self)  # type: ignore[no-untyped-call]
        for delayedCall in list(self.restart.values()):
            if delayedCall.active():
                delayedCall.cancel()
        for name in list(self._processes):
            self.stopProcess(name)
        for run in list(self._runs):
            if self.protocols.get(run.name) is not run:
                # An earlier run's leftovers (a cgroup whose child exited,
                # spawned with killOnExit=False): nothing will stop them.
                self._killLeftovers(run)
        return self._whenNoRuns()

    def _killLeftovers(self, run: LoggingProtocol) -> None:
        transport = run.transport
        assert transport is not None
        try:
            _killTree(transport)
        except (error.ProcessExitedAlready, ValueError, OSError):
            self.log.failure("cannot kill what {name} left", name=run.name)

    def _whenNoRuns(self) -> Deferred[None]:
        if not self._runs:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._noRunsWaiters.append(waiter)
        return waiter

    def _childEnded(self, run: LoggingProtocol) -> None:
        """
        C{run}'s child ended: its run ends with its tree, when the cgroup
        says so, or once what is left of its process group was killed.
        """
        if run.waitsForTree:
            return
        if run.group is None:
            self._runEnded(run)
            return
        assert IReactorFDSet.providedBy(self._reactor)
        killGroup(self._reactor, *run.group).addBoth(lambda _: self._runEnded(run))

    def _runEnded(self, run: LoggingProtocol) -> None:
        """
        C{run}'s child and every process of its tree are gone.
        """
        self._runs.discard(run)
        if not self._runs:
            waiters, self._noRunsWaiters = self._noRunsWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    # -- one process -------------------------------------------------------------

    def startProcess(self, name: str) -> None:
        """
        Spawn the named process, unless it is running.

        A spawn that raises L{OSError} (on a txspawn reactor, a missing
        executable is one: L{txspawn.errors.SpawnError}) is logged and
        counts as an instant death.

        @raise KeyError: No process has that name.
        """
        if name in self.protocols:
            return
        process = self._processes[name]
        proto = LoggingProtocol()
        proto.service = self
        proto.name = name
        self.protocols[name] = proto
        self.timeStarted[name] = self._clock.seconds()
        # Twisted's stub wants one of str or bytes throughout; keep procmon's
        # call as it is.
        spawnProcess: Callable[..., IProcessTransport] = self._reactor.spawnProcess
        try:
            transport = spawnProcess(
                proto,
                process.args[0],
                process.args,
                uid=process.uid,
                gid=process.gid,
                env=process.env,
                path=process.cwd,
                **self._spawnOptions(),
            )
        except OSError:
            self._monitoredProcessExited(name, Failure())  # type: ignore[no-untyped-call]
            return
        self._runs.add(proto)
        if not IManagedProcessTransport.providedBy(transport):
            return
        if transport.cgroupPath is not None:
            proto.waitsForTree = True
        elif transport.processGroup is not None and IReactorFDSet.providedBy(
            self._reactor
        ):
            started = processStartTime(transport.processGroup)
            if started is not None:
                proto.group = (transport.processGroup, started)

    def _spawnOptions(self) -> dict[str, object]:
        """
        txspawn's options for a tree of its own, on a reactor that takes them.
        """
        if not IReactorSpawn.providedBy(self._reactor):
            return {}
        options: dict[str, object] = {
            "newSession": True,
            "closePipesAfterExit": CLOSE_PIPES_AFTER_EXIT,
        }
        if self._cgroup is not None:
            options["cgroup"] = self._cgroup
        return options

    def stopProcess(self, name: str) -> None:
        """
        Stop the named process: C{SIGTERM} (to its process group on a
        txspawn reactor), then C{SIGKILL} (to its tree) after C{killTime}.
        A running service starts it again when it is gone, as procmon does.

        @raise KeyError: No process has that name.
        """
        if name not in self._processes:
            raise KeyError(f"Unrecognized process name: {name}")
        proto = self.protocols.get(name)
        if proto is None:
            return
        transport = proto.transport
        assert transport is not None
        try:
            if IManagedProcessTransport.providedBy(transport):
                # The transport's termination also kills what is left of the
                # group (or cgroup) when the child exits during the grace.
                transport.terminate(self.killTime)
            else:
                transport.signalProcess("TERM")
        except error.ProcessExitedAlready:
            pass
        else:
            self.murder[name] = self._clock.callLater(
                self.killTime, self._forceStopProcess, transport
            )

    def _forceStopProcess(self, proc: IProcessTransport) -> None:
        """
        C{SIGKILL} to the tree of a process that did not stop in time (the
        transport's own termination does the same at the same moment; this
        one is procmon's, in C{murder}).
        """
        try:
            _killTree(proc)
        except error.ProcessExitedAlready:
            pass

    def restartAll(self) -> None:
        """
        Stop every process; the running service starts each again.
        """
        for name in self._processes:
            self.stopProcess(name)

    @deprecate.deprecated(incremental.Version("Twisted", 25, 5, 0))
    def connectionLost(self, name: str) -> None:
        """
        procmon's deprecated name for a process's death.
        """
        self._monitoredProcessExited(name)

    def _monitoredProcessExited(self, name: str, reason: Failure | None = None) -> None:
        """
        The named process died (or could not be spawned): restart it if the
        service runs, at once after a long run, else after the backoff
        delay, which doubles (up to C{maxRestartDelay}).
        """
        if reason is not None and not reason.check(  # type: ignore[no-untyped-call]
            error.ProcessDone, error.ProcessTerminated
        ):
            self.log.failure(
                "Process '{name}' has exited: {failure!r}", failure=reason, name=name
            )
        murder = self.murder.pop(name, None)
        if murder is not None and murder.active():
            murder.cancel()
        del self.protocols[name]
        if self._clock.seconds() - self.timeStarted[name] < self.threshold:
            nextDelay = self.delay[name]
            self.delay[name] = min(self.delay[name] * 2, self.maxRestartDelay)
        else:
            nextDelay = 0
            self.delay[name] = self.minRestartDelay
        if self.running and name in self._processes:
            self.restart[name] = self._clock.callLater(
                nextDelay, self.startProcess, name
            )

    def __repr__(self) -> str:
        described = []
        for name, process in self._processes.items():
            uidgid = ""
            if process.uid is not None:
                uidgid = str(process.uid)
            if process.gid is not None:
                uidgid += ":" + str(process.gid)
            if uidgid:
                uidgid = "(" + uidgid + ")"
            described.append(f"{name!r}{uidgid}: {process.args!r}")
        return "<" + self.__class__.__name__ + " " + " ".join(described) + ">"
