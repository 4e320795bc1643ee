# -*- test-case-name: tests.test_supervise_reload -*-
"""
Tests for L{txspawn.supervise.reload} and L{SupervisorService.reload}: the
diff of two configs, and a reload on the fake reactor (exact) and with real
children on txspawn's reactor (both engines x both monitors): unchanged
programs keep their pids.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses
from tests.svserviceutil import closeLogsAfter, openLogFiles
from tests.test_supervise_service import result, treeStats
from tests.test_supervise_servicereal import aliveOrNone
from txspawn.supervise import (
    ConfigErrors,
    ProgramState,
    ReloadResult,
    SupervisorService,
    parseConfig,
)
from txspawn.supervise.reload import diffConfigs
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor

S = ProgramState

OLD = """
[programs.keep]
command = "keep"
ready = { after = 0 }
[programs.change]
command = "change"
env = { V = "1" }
ready = { after = 0 }
[programs.drop]
command = "drop"
ready = { after = 0 }
[programs.dependent]
command = "dependent"
depends_on = ["change"]
ready = { after = 0 }
"""

NEW = """
[programs.keep]
command = "keep"
ready = { after = 0 }
[programs.change]
command = "change"
env = { V = "2" }
ready = { after = 0 }
[programs.dependent]
command = "dependent"
depends_on = ["change"]
ready = { after = 0 }
[programs.add]
command = "add"
ready = { after = 0 }
[programs.later]
command = "later"
autostart = false
"""


def transportOf(process: object) -> FakeProcessTransport:
    transport = process.transport  # type: ignore[attr-defined]
    assert isinstance(transport, FakeProcessTransport)
    return transport


class DiffTests(SynchronousTestCase):
    """
    L{diffConfigs}.
    """

    def test_diff(self) -> None:
        """
        Programs are added, removed, changed or unchanged by
        L{ProgramConfig} equality, in the order of the config.
        """
        base = self.mktemp()
        old = parseConfig(OLD, baseDir=base)
        new = parseConfig(NEW, baseDir=base)
        self.assertEqual(
            diffConfigs(old, new),
            ReloadResult(
                added=("add", "later"),
                removed=("drop",),
                changed=("change",),
                unchanged=("keep", "dependent"),
            ),
        )
        self.assertEqual(
            diffConfigs(old, new).toJSON(),
            {
                "added": ["add", "later"],
                "removed": ["drop"],
                "changed": ["change"],
                "unchanged": ["keep", "dependent"],
            },
        )
        self.assertEqual(
            diffConfigs(old, old), ReloadResult(unchanged=tuple(old.programs))
        )


class FakeReloadTests(SynchronousTestCase):
    """
    A reload on the fake reactor.
    """

    def setUp(self) -> None:
        self.base = self.mktemp()
        self.reactor = MemoryProcessReactor()
        self.service = SupervisorService(
            parseConfig(OLD, baseDir=self.base), self.reactor, environ={}
        )
        self.service.startService()
        self.reactor.advance(0)
        # Its fake children never end: it is never stopped.
        closeLogsAfter(self, self.service)

    def endStop(self, name: str) -> None:
        """
        Play the end of the child of C{name}, asked to stop.
        """
        [process] = self.service.instances(name)
        transport = transportOf(process)
        self.assertEqual(transport.state.groupSignals, [signal.SIGTERM])
        transport.kill(signal.SIGTERM)
        transport.treeEnded(treeStats())

    def test_reload(self) -> None:
        """
        Unchanged programs keep the same process objects and pids (and are
        never signalled); the changed one is stopped, replaced and started;
        the removed one is stopped and dropped; the added one is started,
        unless it is not autostarted.
        """
        service, reactor = self.service, self.reactor
        [keep] = service.instances("keep")
        [dependent] = service.instances("dependent")
        keepPid, dependentPid = keep.pid, dependent.pid
        [drop] = service.instances("drop")
        reloaded: list[object] = []
        service.reload(parseConfig(NEW, baseDir=self.base)).addBoth(reloaded.append)
        self.assertEqual(reloaded, [])
        self.endStop("change")
        self.endStop("drop")
        self.assertEqual(
            reloaded,
            [
                ReloadResult(
                    added=("add", "later"),
                    removed=("drop",),
                    changed=("change",),
                    unchanged=("keep", "dependent"),
                )
            ],
        )
        reactor.advance(0)
        self.assertEqual(service.instances("keep"), (keep,))
        self.assertEqual(service.instances("dependent"), (dependent,))
        self.assertEqual((keep.pid, dependent.pid), (keepPid, dependentPid))
        self.assertEqual(transportOf(keep).state.groupSignals, [])
        self.assertEqual(transportOf(dependent).state.groupSignals, [])
        self.assertRaises(KeyError, service.instances, "drop")
        self.assertEqual(drop.state, S.STOPPED)
        [change] = service.instances("change")
        self.assertEqual(change.state, S.RUNNING)
        self.assertEqual((reactor.spawned[-2].env or {})["V"], "2")
        self.assertEqual(service.instances("add")[0].state, S.RUNNING)
        self.assertEqual(service.instances("later")[0].state, S.STOPPED)
        self.assertEqual(
            service.programNames(), ("keep", "change", "dependent", "add", "later")
        )
        [event] = [e for e in service.events.recent() if e.kind == "reload"]
        self.assertIn("removed ['drop']", event.why)

    def test_reloadGatesDependencies(self) -> None:
        """
        An added program that depends on a changed one starts only once
        the changed one's new child is ready.
        """
        service, reactor = self.service, self.reactor
        new = parseConfig(
            NEW.replace('env = { V = "2" }\nready = { after = 0 }', 'env = { V = "2" }')
            + '[programs.after]\ncommand = "after"\ndepends_on = ["change"]\n',
            baseDir=self.base,
        )
        service.reload(new)
        self.endStop("change")
        self.endStop("drop")
        reactor.advance(0)
        spawned = [s.args[0] for s in reactor.spawned]
        self.assertEqual(spawned[4:], ["change", "add"])
        [after] = [row for row in service.status() if row.name == "after"]
        self.assertEqual(after.why, "waiting for change (STARTING) to be ready")
        reactor.advance(1)
        reactor.advance(0)
        self.assertEqual(reactor.spawned[-1].args, ("after",))

    def test_badConfigChangesNothing(self) -> None:
        """
        A reload from a file that is not valid fails with L{ConfigErrors}
        and changes nothing.
        """
        path = os.path.join(self.base, "procs.toml")
        with open(path, "w") as f:
            f.write('[programs.keep]\ncommand = "keep"\nrestart = "sometimes"\n')
        self.service.configPath = path
        config = self.service.config
        failures: list[Failure] = []
        self.service.reload().addErrback(failures.append)
        [failure] = failures
        failure.trap(ConfigErrors)
        self.assertIn("programs.keep.restart", str(failure.value))
        self.assertIs(self.service.config, config)
        self.assertEqual(
            [p.state for p in self.service.instances("all")], [S.RUNNING] * 4
        )
        self.assertEqual(
            [t.state.groupSignals for t in self.reactor.transports], [[]] * 4
        )

    def test_unknownUserChangesNothing(self) -> None:
        """
        A new program whose user does not exist fails the reload (a
        L{ConfigErrors} naming its key) before anything is stopped.
        """
        new = parseConfig(
            OLD + '[programs.x]\ncommand = "x"\nuser = "no-such-user-here"\n',
            baseDir=self.base,
        )
        failures: list[Failure] = []
        self.service.reload(new).addErrback(failures.append)
        [failure] = failures
        failure.trap(ConfigErrors)
        self.assertIn("programs.x.user: no user named", str(failure.value))
        self.assertEqual(self.service.programNames(), tuple(parseConfig(OLD).programs))

    def test_reloadFromFile(self) -> None:
        """
        C{reload()} with no config loads the service's C{configPath} again.
        """
        path = os.path.join(self.base, "procs.toml")
        with open(path, "w") as f:
            f.write(OLD.replace('"keep"', '"kept"', 1))
        self.service.configPath = path
        results: list[ReloadResult] = []
        self.service.reload().addCallback(results.append)
        self.endStop("keep")
        self.assertEqual(results[0].changed, ("keep",))


class StoppedReloadTests(SynchronousTestCase):
    """
    A reload of a service that was stopped (its logs closed), or is
    stopping.
    """

    #: One program, C{a}, with C{V} in its environment.
    PROGRAM = '[programs.a]\ncommand = "a"\nenv = {{ V = "{}" }}\n'

    def setUp(self) -> None:
        self.base = self.mktemp()
        self.reactor = MemoryProcessReactor()
        self.service = SupervisorService(
            parseConfig(self.PROGRAM.format(1), baseDir=self.base),
            self.reactor,
            environ={},
        )
        closeLogsAfter(self, self.service)
        self.service.startService()

    def reload(self) -> list[object]:
        """
        Reload with C{V} changed; what the reload fires with.
        """
        new = parseConfig(self.PROGRAM.format(2), baseDir=self.base)
        return result(self.service.reload(new))

    def stop(self) -> None:
        """
        Stop the service, playing its child's end; check that every log
        file is closed.
        """
        stopped = result(self.service.stopService())
        transport = self.reactor.transports[-1]
        transport.kill(signal.SIGTERM)
        transport.treeEnded(treeStats())
        self.assertEqual(stopped, [None])
        self.assertEqual(openLogFiles(self.service), set())

    def test_reloadLeavesLogsClosed(self) -> None:
        """
        The instances a reload of a stopped service builds (checking the
        new config) are released at once, as the others were: no log file
        stays open until the service starts again, which builds its
        instances anew.
        """
        self.stop()
        self.assertEqual(self.reload(), [ReloadResult(changed=("a",))])
        self.assertEqual(openLogFiles(self.service), set())
        self.service.startService()
        self.assertEqual((self.reactor.spawned[-1].env or {})["V"], "2")
        self.assertEqual(len(openLogFiles(self.service)), 2)
        self.stop()

    def test_reloadWhileStopping(self) -> None:
        """
        A reload asked while the service stops ends after the stop (it
        waits for the same child): its new instances are released too.
        """
        stopped = result(self.service.stopService())
        reloaded = self.reload()
        transport = self.reactor.transports[-1]
        transport.kill(signal.SIGTERM)
        transport.treeEnded(treeStats())
        self.assertEqual(stopped, [None])
        self.assertEqual(reloaded, [ReloadResult(changed=("a",))])
        self.assertEqual(len(self.reactor.spawned), 1)
        self.assertEqual(openLogFiles(self.service), set())


#: A program that sleeps until it is stopped.
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def realConfig(base: str, programs: dict[str, dict[str, str]]) -> str:
    """
    A config of sleeping programs, each with C{env} from C{programs}.
    """
    text = ""
    for name, env in programs.items():
        pairs = ", ".join(f'{key} = "{value}"' for key, value in env.items())
        text += textwrap.dedent(
            f"""
            [programs.{name}]
            command = {SLEEP!r}
            env = {{ {pairs} }}
            ready = {{ after = 0 }}
            stop = {{ timeout = 5 }}
            """
        ).replace("'", '"')
    return text


class RealReloadMixin(MixinBase):
    """
    A reload with real children.
    """

    def test_reloadKeepsPids(self) -> None:
        """
        After a reload, the unchanged program has the same pid (and the
        same child, still alive); the changed one has a new pid; the
        removed one's child is gone; the added one runs.
        """
        reactor = self.buildReactor()
        base = self.mktemp()
        old = parseConfig(
            realConfig(base, {"keep": {"V": "1"}, "change": {"V": "1"}, "drop": {}}),
            baseDir=base,
        )
        new = parseConfig(
            realConfig(base, {"keep": {"V": "1"}, "change": {"V": "2"}, "add": {}}),
            baseDir=base,
        )
        service = SupervisorService(old, reactor)
        pids: dict[str, dict[str, int | None]] = {}

        def snapshot(_: object, when: str) -> None:
            pids[when] = {p.name: p.pid for p in service.instances("all")}

        def run() -> Deferred[None]:
            service.startService()
            started = service.start("all")
            started.addCallback(snapshot, "before")
            started.addCallback(lambda _: service.reload(new))
            started.addCallback(lambda _: service.start("all"))
            started.addCallback(snapshot, "after")
            started.addCallback(lambda _: service.stopService())
            started.addBoth(lambda result: (reactor.stop(), result)[1])
            return started

        reactor.callWhenRunning(run)
        self.runReactor(reactor)
        before, after = pids["before"], pids["after"]
        self.assertEqual(after["keep"], before["keep"])
        self.assertIsNotNone(after["keep"])
        self.assertNotEqual(after["change"], before["change"])
        self.assertIsNotNone(after["change"])
        self.assertNotIn("drop", after)
        self.assertIsNotNone(after["add"])
        # The old children of the changed and removed programs are gone.
        for name in ("change", "drop"):
            pid = before[name]
            assert pid is not None
            self.assertIn(aliveOrNone(pid), (None, "Z"), name)
        self.assertEqual({row.state for row in service.status()}, {S.STOPPED})


globals().update(makeTestCaseClasses(RealReloadMixin))
