# -*- test-case-name: tests.test_supervise_service -*-
"""
Tests for L{txspawn.supervise.service.SupervisorService}: exact sequences
with L{txspawn.testing.MemoryProcessReactor} and its clock (the test plays
the children); real children on txspawn's reactor (both engines x both
monitors) are in L{tests.test_supervise_servicereal}.
"""

from __future__ import annotations

import errno
import signal
import textwrap
from typing import Any

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.svserviceutil import closeLogsAfter
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import CgroupStats
from txspawn.supervise import (
    ProgramFailed,
    ProgramState,
    SupervisorConfig,
    SupervisorService,
    UnknownProgram,
    parseConfig,
)
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor

S = ProgramState

DEPENDENT = """
[programs.web]
command = "web --port 8080"
ready = { after = 1 }
stop = { timeout = 5 }

[programs.poller]
command = ["poll"]
depends_on = ["web"]
ready = { after = 0 }

[programs.worker]
command = "work"
instances = 2
ready = { after = 0 }
"""


def configIn(test: SynchronousTestCase, text: str) -> SupervisorConfig:
    """
    Parse C{text} with a temporary directory as its base (the logs go
    there).
    """
    return parseConfig(textwrap.dedent(text), baseDir=test.mktemp())


def running(
    test: SynchronousTestCase, text: str, start: bool = True
) -> tuple[SupervisorService, MemoryProcessReactor]:
    """
    A service of the config C{text} on a fake reactor, started; its logs
    are closed after the test (most tests leave its fake children alive).
    """
    reactor = MemoryProcessReactor()
    service = SupervisorService(configIn(test, text), reactor, environ={"HOME": "/h"})
    closeLogsAfter(test, service)
    if start:
        service.startService()
    return service, reactor


def transportOf(service: SupervisorService, name: str) -> FakeProcessTransport:
    [process] = service.instances(name)
    transport: Any = process.transport
    assert isinstance(transport, FakeProcessTransport)
    return transport


def programFailed(outcome: list[object]) -> ProgramFailed:
    """
    The L{ProgramFailed} of the only result in C{outcome}, a failure.
    """
    [failure] = outcome
    assert isinstance(failure, Failure)
    error = failure.value
    assert isinstance(error, ProgramFailed), failure
    return error


def result(deferred: object) -> list[object]:
    """
    Collect what C{deferred} fires with (a L{Failure} for a failure).
    """
    seen: list[object] = []
    deferred.addBoth(seen.append)  # type: ignore[attr-defined]
    return seen


def transitions(service: SupervisorService, name: str) -> list[tuple[str, str]]:
    return [
        (str(event.old), str(event.new))
        for event in service.events.recent()
        if event.kind == "transition" and event.program == name
    ]


def treeStats() -> CgroupStats:
    return CgroupStats(
        path="/x",
        placement="clone",
        placementNote=None,
        cpuUsageUsec=2_500_000,
        cpuUserUsec=2_000_000,
        cpuSystemUsec=500_000,
        cpuThrottledCount=None,
        cpuThrottledUsec=None,
        memoryPeak=3 * 1024 * 1024,
        oomKills=None,
        pidsPeak=None,
        io=None,
    )


class NamesTests(SynchronousTestCase):
    """
    Programs and instances by name.
    """

    def test_names(self) -> None:
        """
        C{programNames} is the start order (dependencies first);
        C{instances} takes a program, an instance or C{"all"}.
        """
        service, _ = running(self, DEPENDENT, start=False)
        self.assertEqual(service.programNames(), ("web", "poller", "worker"))
        self.assertEqual(
            [p.name for p in service.instances("all")],
            ["web", "poller", "worker:0", "worker:1"],
        )
        self.assertEqual(
            [p.name for p in service.instances("worker")], ["worker:0", "worker:1"]
        )
        self.assertEqual([p.name for p in service.instances("worker:1")], ["worker:1"])

    def test_unknown(self) -> None:
        """
        An unknown name raises L{UnknownProgram}, a L{KeyError} naming the
        programs there are; so do C{start}, C{stop} and C{logsOf}.
        """
        service, _ = running(self, DEPENDENT, start=False)
        error = self.assertRaises(UnknownProgram, service.instances, "nope")
        self.assertIsInstance(error, KeyError)
        self.assertEqual(
            str(error),
            "unknown program 'nope' (programs: web, poller, worker; or 'all')",
        )
        self.assertRaises(UnknownProgram, service.start, "nope")
        self.assertRaises(UnknownProgram, service.stop, "nope")
        self.assertRaises(UnknownProgram, service.logsOf, "worker")
        self.assertIsNotNone(service.logsOf("worker:0"))


class StartTests(SynchronousTestCase):
    """
    Starting in dependency order.
    """

    def test_dependentWaitsForReady(self) -> None:
        """
        At start, every program without dependencies is spawned; a
        dependent stays STOPPED, saying what it waits for, until its
        dependency is RUNNING (its readiness passed), and is spawned then.
        """
        service, reactor = running(self, DEPENDENT)
        self.assertEqual(
            [spawned.args[0] for spawned in reactor.spawned], ["web", "work", "work"]
        )
        [poller] = [row for row in service.status() if row.name == "poller"]
        self.assertEqual(poller.state, S.STOPPED)
        self.assertEqual(poller.why, "waiting for web (STARTING) to be ready")
        reactor.advance(0.5)
        self.assertEqual(len(reactor.spawned), 3)
        reactor.advance(0.5)
        self.assertEqual(service.instances("web")[0].state, S.RUNNING)
        reactor.advance(0)
        self.assertEqual(reactor.spawned[-1].args, ("poll",))
        self.assertEqual([row.state for row in service.status()], [S.RUNNING] * 4)
        webReady = [
            e.seq
            for e in service.events.recent()
            if e.program == "web" and e.new == "RUNNING"
        ]
        pollerStarting = [
            e.seq
            for e in service.events.recent()
            if e.program == "poller" and e.new == "STARTING"
        ]
        self.assertLess(webReady[0], pollerStarting[0])

    def test_spawnArguments(self) -> None:
        """
        Each instance is spawned with its argv, the supervisor's
        environment plus its own and its instance name, its cwd, in a new
        session with a best-effort cgroup (for the whole-tree stop).
        """
        service, reactor = running(
            self,
            """
            [programs.worker]
            command = "work -v"
            instances = 2
            env = { A = "1" }
            """,
        )
        first, second = reactor.spawned
        self.assertEqual(first.args, ("work", "-v"))
        self.assertEqual(
            first.env, {"HOME": "/h", "A": "1", "TXSPAWN_INSTANCE": "worker:0"}
        )
        assert second.env is not None
        self.assertEqual(second.env["TXSPAWN_INSTANCE"], "worker:1")
        self.assertTrue(first.options["newSession"])
        cgroup: Any = first.options["cgroup"]
        self.assertFalse(cgroup.required)
        self.assertEqual(first.path, service.config.programs["worker"].cwd)

    def test_startStartsDependencies(self) -> None:
        """
        C{start} of a program that is not autostarted starts its
        dependencies first; its L{Deferred} fires once it is RUNNING.
        """
        service, reactor = running(
            self,
            """
            [programs.db]
            command = "db"
            autostart = false
            [programs.app]
            command = "app"
            autostart = false
            depends_on = ["db"]
            ready = { after = 2 }
            """,
        )
        self.assertEqual(reactor.spawned, [])
        started = result(service.start("app"))
        self.assertEqual([s.args[0] for s in reactor.spawned], ["db"])
        reactor.advance(1)
        reactor.advance(0)
        self.assertEqual([s.args[0] for s in reactor.spawned], ["db", "app"])
        self.assertEqual(started, [])
        reactor.advance(2)
        reactor.advance(0)
        self.assertEqual(started, [None])

    def test_dependencyFatal(self) -> None:
        """
        A dependency that goes FATAL leaves its dependent STOPPED, with
        why, and a C{start} waiting for the dependent fails with
        L{ProgramFailed}.
        """
        service, reactor = running(
            self,
            """
            [programs.web]
            command = "web"
            restart = "never"
            [programs.poller]
            command = "poll"
            depends_on = ["web"]
            """,
        )
        started = result(service.start("poller"))
        transportOf(service, "web").exit(2)
        reactor.advance(0)
        self.assertEqual(service.instances("web")[0].state, S.FATAL)
        self.assertEqual(len(reactor.spawned), 1)
        error = programFailed(started)
        self.assertEqual((error.name, error.state), ("poller", S.STOPPED))
        [poller] = [row for row in service.status() if row.name == "poller"]
        self.assertEqual(poller.state, S.STOPPED)
        self.assertTrue(poller.why.startswith("dependency web is FATAL: exited"))

    def test_startFailsWhenFatal(self) -> None:
        """
        C{start} fails with L{ProgramFailed} when the program goes FATAL,
        here at once: its executable is missing (never a tight loop).
        """
        service, reactor = running(self, "[programs.a]\ncommand = 'a'\n", False)
        reactor.spawnError = SpawnError(errno.ENOENT, ChildSetupStage.EXEC, "a")
        started = result(service.start("a"))
        self.assertEqual(programFailed(started).state, S.FATAL)
        [row] = service.status()
        self.assertRegex(str(row.lastExit), "^spawn failed: ")
        failed = [e for e in service.events.recent() if e.kind == "spawn-failed"]
        self.assertEqual([(e.program, e.errno) for e in failed], [("a", errno.ENOENT)])
        # Nothing is retried.
        reactor.advance(0)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(reactor.spawned, [])


class BackoffTests(SynchronousTestCase):
    """
    A crash loop, on the fake clock.
    """

    def test_crashLoopExactDelays(self) -> None:
        """
        A program that exits at once is started again after 1, 2, 4
        seconds (its backoff), then FATAL at the give-up limit; each start
        again is a C{restart} event and counts in the status.
        """
        service, reactor = running(
            self,
            """
            [programs.crash]
            command = "crash"
            restart = "always"
            backoff = { initial = 1, factor = 2, max = 10, give_up_after = 4 }
            """,
        )
        spawnTimes = [reactor.seconds()]
        for delay in (1, 2, 4):
            transportOf(service, "crash").exit(1)
            reactor.advance(delay - 0.001)
            self.assertEqual(len(reactor.spawned), len(spawnTimes))
            reactor.advance(0.001)
            spawnTimes.append(reactor.seconds())
        self.assertEqual(len(reactor.spawned), 4)
        transportOf(service, "crash").exit(1)
        [row] = service.status()
        self.assertEqual(row.state, S.FATAL)
        self.assertEqual((row.restarts, row.failures), (3, 4))
        self.assertEqual(row.lastExit, "exited with code 1")
        self.assertIn("gave up after 4 failures", row.why)
        restarts = [e for e in service.events.recent() if e.kind == "restart"]
        self.assertEqual(len(restarts), 3)
        self.assertEqual(
            [new for _, new in transitions(service, "crash")],
            ["STARTING", "BACKOFF"] * 3 + ["STARTING", "FATAL"],
        )


class StopTests(SynchronousTestCase):
    """
    Stopping, in reverse dependency order, as whole trees.
    """

    def test_stopServiceReverseOrder(self) -> None:
        """
        C{stopService} stops the dependent first; its dependency is asked
        to stop only once the dependent's child (and tree) is gone; the
        L{Deferred} fires once every tree is gone.
        """
        service, reactor = running(self, DEPENDENT)
        reactor.advance(1)
        reactor.advance(0)
        stopped = result(service.stopService())
        web = transportOf(service, "web")
        poller = transportOf(service, "poller")
        worker = transportOf(service, "worker:0")
        self.assertEqual(poller.state.groupSignals, [signal.SIGTERM])
        self.assertEqual(worker.state.groupSignals, [signal.SIGTERM])
        self.assertEqual(web.state.groupSignals, [])
        poller.kill(signal.SIGTERM)
        self.assertEqual(web.state.groupSignals, [])
        poller.treeEnded(treeStats())
        self.assertEqual(web.state.groupSignals, [signal.SIGTERM])
        for name in ("web", "worker:0", "worker:1"):
            transport = transportOf(service, name)
            transport.kill(signal.SIGTERM)
            transport.treeEnded(treeStats())
        self.assertEqual(stopped, [None])
        self.assertEqual({row.state for row in service.status()}, {S.STOPPED})

    def test_stopWaitsForTree(self) -> None:
        """
        C{stop} fires when the child's cgroup is empty, not when the child
        exited: descendants may outlive it.  The status then reports the
        run's CPU time and peak memory from the cgroup's final statistics.
        """
        service, _ = running(self, "[programs.a]\ncommand = 'a'\n")
        transport = transportOf(service, "a")
        stopped = result(service.stop("a"))
        transport.kill(signal.SIGTERM)
        self.assertEqual(service.instances("a")[0].state, S.STOPPED)
        self.assertEqual(stopped, [])
        transport.treeEnded(treeStats())
        self.assertEqual(stopped, [None])
        [row] = service.status()
        self.assertEqual((row.cpu, row.memory), (2.5, 3 * 1024 * 1024))

    def test_stopTimeoutKills(self) -> None:
        """
        A child that outlives its stop timeout is killed (the transport's
        escalation: SIGKILL to its group and its cgroup).
        """
        service, reactor = running(
            self, "[programs.a]\ncommand = 'a'\nstop = { timeout = 3 }\n"
        )
        transport = transportOf(service, "a")
        service.stop("a")
        reactor.advance(2.9)
        self.assertEqual(transport.state.groupSignals, [signal.SIGTERM])
        reactor.advance(0.1)
        self.assertEqual(transport.state.groupSignals, [signal.SIGTERM, signal.SIGKILL])
        self.assertEqual(transport.state.treeKills, ["terminate"])

    def test_stopWhileWaiting(self) -> None:
        """
        Stopping a dependent that waits for its dependency cancels its
        start: it is never spawned, and the start's L{Deferred} fails.
        """
        service, reactor = running(self, DEPENDENT)
        started = result(service.start("poller"))
        self.assertEqual(result(service.stop("poller")), [None])
        reactor.advance(1)
        reactor.advance(0)
        self.assertNotIn(("poll",), [s.args for s in reactor.spawned])
        programFailed(started)

    def test_restart(self) -> None:
        """
        C{restart} stops the instance, then starts it again.
        """
        service, reactor = running(
            self, "[programs.a]\ncommand = 'a'\nready = { after = 0 }\n"
        )
        first = transportOf(service, "a")
        restarted = result(service.restart("a"))
        first.kill(signal.SIGTERM)
        first.treeEnded(treeStats())
        reactor.advance(0)
        self.assertEqual(len(reactor.spawned), 2)
        self.assertEqual(restarted, [None])
        self.assertIsNot(transportOf(service, "a"), first)


class StartAgainTests(SynchronousTestCase):
    """
    Starting what is stopping, or what left a tree behind.
    """

    def test_startWhileStopping(self) -> None:
        """
        A start asked while the instance stops waits until its tree is
        gone, then spawns it again.
        """
        service, reactor = running(
            self, "[programs.a]\ncommand = 'a'\nready = { after = 0 }\n"
        )
        first = transportOf(service, "a")
        service.stop("a")
        started = result(service.start("a"))
        [row] = service.status()
        self.assertEqual((row.state, row.why), (S.STOPPING, "stop requested"))
        first.kill(signal.SIGTERM)
        reactor.advance(0)
        self.assertEqual(len(reactor.spawned), 1)
        [row] = service.status()
        self.assertEqual(row.why, "waiting for its stop to finish")
        first.treeEnded(treeStats())
        reactor.advance(0)
        self.assertEqual(len(reactor.spawned), 2)
        self.assertEqual(started, [None])

    def test_restartWithoutCgroup(self) -> None:
        """
        Without a cgroup, the stop's L{Deferred} fires as the program
        moves to STOPPED; the start that follows (a C{restart}) is run by
        the program's machine after that move, and C{restart} fires once
        the new child is ready.
        """
        reactor = MemoryProcessReactor()
        reactor.cgroupUnavailable = "no cgroup in this test"
        service = SupervisorService(
            configIn(self, "[programs.a]\ncommand = 'a'\nready = { after = 0 }\n"),
            reactor,
            environ={},
        )
        closeLogsAfter(self, service)
        service.startService()
        first = transportOf(service, "a")
        restarted = result(service.restart("a"))
        first.kill(signal.SIGTERM)
        reactor.advance(0)
        self.assertEqual(restarted, [None])
        self.assertEqual(len(reactor.spawned), 2)
        self.assertEqual(service.instances("a")[0].state, S.RUNNING)

    def test_startWithTreeLeft(self) -> None:
        """
        A program that went FATAL while its cgroup still has processes is
        started again only once they are killed (the tree is killed at
        once) and gone.
        """
        service, reactor = running(
            self, "[programs.a]\ncommand = 'a'\nrestart = 'never'\n"
        )
        first = transportOf(service, "a")
        first.exit(1)
        reactor.advance(0)
        self.assertEqual(service.instances("a")[0].state, S.FATAL)
        started = result(service.start("a"))
        # "exit": killOnExit's kill when the child was reaped; then the
        # start's.
        self.assertEqual(first.state.treeKills, ["exit", "killTree"])
        self.assertEqual(len(reactor.spawned), 1)
        first.treeEnded(treeStats())
        reactor.advance(0)
        self.assertEqual(len(reactor.spawned), 2)
        reactor.advance(1)
        reactor.advance(0)
        self.assertEqual(started, [None])

    def test_serviceStartedAgain(self) -> None:
        """
        A service stopped (its logs closed) and started again builds its
        instances anew and starts them.
        """
        service, reactor = running(self, "[programs.a]\ncommand = 'a'\n")
        [before] = service.instances("a")
        logs = service.logsOf("a")
        stopped = result(service.stopService())
        first = transportOf(service, "a")
        first.kill(signal.SIGTERM)
        first.treeEnded(treeStats())
        self.assertEqual(stopped, [None])
        service.startService()
        [after] = service.instances("a")
        self.assertIsNot(after, before)
        self.assertIsNot(service.logsOf("a"), logs)
        self.assertEqual((after.state, len(reactor.spawned)), (S.STARTING, 2))


class SignalTests(SynchronousTestCase):
    """
    C{signal}.
    """

    def test_signal(self) -> None:
        """
        A signal by name or number goes to each instance's child (not its
        group); an unknown signal is a L{ValueError}.
        """
        service, _ = running(self, DEPENDENT)
        service.signal("worker", "HUP")
        service.signal("worker:1", "SIGUSR1")
        service.signal("web", 10)
        self.assertEqual(
            transportOf(service, "worker:0").state.signals, [signal.SIGHUP]
        )
        self.assertEqual(
            transportOf(service, "worker:1").state.signals,
            [signal.SIGHUP, signal.SIGUSR1],
        )
        self.assertEqual(transportOf(service, "web").state.signals, [10])
        self.assertEqual(transportOf(service, "web").state.groupSignals, [])
        self.assertRaises(ValueError, service.signal, "web", "NOPE")
        # A program with no child (poller waits) is skipped.
        service.signal("poller", "HUP")


class StatusTests(SynchronousTestCase):
    """
    Status rows and events.
    """

    def test_rows(self) -> None:
        """
        One row per instance in start order, with its program, state, pid,
        uptime, restart and failure counts, last exit and why.
        """
        service, reactor = running(self, DEPENDENT)
        reactor.advance(1)
        reactor.advance(0)
        reactor.advance(2)
        transportOf(service, "worker:1").exit(3)
        rows = {row.name: row for row in service.status()}
        self.assertEqual(list(rows), ["web", "poller", "worker:0", "worker:1"])
        web = rows["web"]
        self.assertEqual(
            (web.program, web.state, web.pid, web.uptime, web.lastExit, web.why),
            ("web", S.RUNNING, 1000, 3.0, None, "ready"),
        )
        worker = rows["worker:1"]
        self.assertEqual(worker.program, "worker")
        self.assertEqual(worker.state, S.BACKOFF)
        self.assertEqual(worker.pid, None)
        self.assertEqual(worker.lastExit, "exited with code 3")
        self.assertEqual(worker.failures, 1)
        self.assertEqual(worker.toJSON()["state"], "BACKOFF")

    def test_events(self) -> None:
        """
        Every transition is an event, numbered, with the instance, the
        states' names, why and the pid.
        """
        service, reactor = running(self, "[programs.a]\ncommand='a'\n")
        reactor.advance(1)
        events = service.events.recent()
        self.assertEqual(
            [(e.seq, e.kind, e.program, e.old, e.new, e.why) for e in events],
            [
                (1, "transition", "a", "STOPPED", "STARTING", "start requested"),
                (2, "transition", "a", "STARTING", "RUNNING", "ready"),
            ],
        )
        self.assertEqual(events[1].pid, 1000)
        self.assertEqual(service.events.recent(since=1), [events[1]])
