"""
Tests for L{txspawn._reactor.spawner}: L{ProcessSpawner} as an L{IReactorProcess}
provider, its monitor management, and L{installSpawner} /
L{uninstallSpawner} on an existing (stock Twisted) reactor.
"""

from __future__ import annotations

import inspect
import os
import signal

from twisted.internet.epollreactor import EPollReactor as StockEPollReactor
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.posixbase import PosixReactorBase
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from tests.hygiene import openFDs
from txspawn._engine.selection import selectSpawner
from txspawn._monitor.selection import selectMonitor
from txspawn._plan.planner import isOpenFD
from txspawn._reactor.spawner import (
    ProcessSpawner,
    installedSpawner,
    installSpawner,
    uninstallSpawner,
)
from txspawn._transport.pipetransport import Process
from txspawn.interfaces import IChildMonitor


class SpawnerMixin(MixinBase):
    """
    L{ProcessSpawner} and L{installSpawner} with every engine and monitor.
    """

    def buildStockReactor(self) -> StockEPollReactor:
        """
        A stock Twisted epoll reactor, torn down after the test like the
        txspawn ones.
        """
        reactor = StockEPollReactor()
        self._reactors.append(reactor)
        return reactor

    def test_interface(self) -> None:
        """
        L{ProcessSpawner} provides L{IReactorProcess}.
        """
        reactor = self.buildStockReactor()
        spawner = ProcessSpawner(
            reactor,
            selectSpawner(self.engineName),
            selectMonitor(reactor, self.monitorName),
        )
        self.assertTrue(verifyObject(IReactorProcess, spawner))

    def test_install(self) -> None:
        """
        After L{installSpawner}, a stock reactor's C{spawnProcess} spawns
        through txspawn (the transport is a txspawn L{Process}), with the
        reactor's signal handlers installed.
        """
        reactor = self.buildStockReactor()
        spawner = installSpawner(
            reactor,
            engine=self.engineName,
            monitor=self.monitorName,
        )
        self.assertIs(installedSpawner(reactor), spawner)
        self.assertEqual(spawner.monitor.name, self.monitorName)
        proto = RecordingProtocol()
        transport = spawnAndRun(
            self, proto, PYTHON, python("raise SystemExit(6)"), reactor=reactor
        )
        self.assertIsInstance(transport, Process)
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 6)

    def test_installWithoutSignalHandlers(self) -> None:
        """
        L{installSpawner} also works when the reactor runs with
        C{installSignalHandlers=False}: the monitor installs itself.
        """
        reactor = self.buildStockReactor()
        installSpawner(
            reactor,
            engine=self.engineName,
            monitor=self.monitorName,
        )
        proto = RecordingProtocol()
        reactor.callWhenRunning(
            reactor.spawnProcess, proto, PYTHON, python("raise SystemExit(2)")
        )
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor, installSignalHandlers=False)
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 2)

    def test_installSpawnBeforeRun(self) -> None:
        """
        A child spawned through an installed spawner before the reactor runs
        is reaped once it runs (the monitor is installed after the
        reactor's own signal handling, and reaps what exited meanwhile).
        """
        reactor = self.buildStockReactor()
        installSpawner(
            reactor,
            engine=self.engineName,
            monitor=self.monitorName,
        )
        handler = signal.getsignal(signal.SIGCHLD)
        proto = RecordingProtocol()
        reactor.spawnProcess(proto, PYTHON, python("raise SystemExit(9)"))
        # Nothing process-global is touched before the reactor runs.
        self.assertEqual(signal.getsignal(signal.SIGCHLD), handler)
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor)
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 9)

    def test_monitorInstalledWhileRunning(self) -> None:
        """
        With C{manageSignals}, the SIGCHLD monitor's handler is in place
        while the reactor runs after a spawn, and gone after shutdown (the
        hygiene check verifies the restoration).
        """
        reactor = self.buildStockReactor()
        installSpawner(
            reactor,
            engine=self.engineName,
            monitor=self.monitorName,
        )
        seen: list[object] = []

        class Watcher(RecordingProtocol):
            def processEnded(self, reason: object) -> None:
                seen.append(signal.getsignal(signal.SIGCHLD))
                super().processEnded(reason)  # type: ignore[arg-type]

        proto = Watcher()
        reactor.callWhenRunning(reactor.spawnProcess, proto, PYTHON, python("pass"))
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor, installSignalHandlers=False)
        if self.monitorName == "sigchld":
            self.assertNotIn(seen[0], (signal.SIG_DFL, None))
        else:
            self.assertEqual(seen, [signal.SIG_DFL])

    def test_installTwiceAndUninstall(self) -> None:
        """
        Installing twice raises L{RuntimeError}; L{uninstallSpawner}
        restores the class's C{spawnProcess} and is idempotent.
        """
        reactor = self.buildStockReactor()
        installSpawner(reactor, engine=self.engineName)
        self.assertRaises(RuntimeError, installSpawner, reactor)
        uninstallSpawner(reactor)
        self.assertIsNone(installedSpawner(reactor))
        self.assertNotIn("spawnProcess", vars(reactor))
        self.assertEqual(
            getattr(reactor.spawnProcess, "__func__", None),
            PosixReactorBase.spawnProcess,
        )
        uninstallSpawner(reactor)

    def test_uninstallBeforeRun(self) -> None:
        """
        L{uninstallSpawner} before the reactor ran cancels the monitor
        installation that a spawn scheduled for startup: running the reactor
        then installs nothing of txspawn's.
        """
        reactor = self.buildStockReactor()
        processSpawner = installSpawner(
            reactor,
            engine=self.engineName,
            monitor=self.monitorName,
        )
        # What the first spawnProcess does before the reactor runs.
        processSpawner._installMonitor()
        self.assertIsNotNone(processSpawner._startupTrigger)
        uninstallSpawner(reactor)
        self.assertFalse(processSpawner._installed)
        self.assertIsNone(processSpawner._startupTrigger)
        self.assertIsNone(processSpawner._shutdownTrigger)
        seen: list[object] = []
        reactor.callWhenRunning(lambda: seen.append(signal.getsignal(signal.SIGCHLD)))
        reactor.callWhenRunning(reactor.stop)
        self.runReactor(reactor, installSignalHandlers=False)
        self.assertEqual(seen, [signal.SIG_DFL])
        self.assertFalse(processSpawner._installed)

    def test_options(self) -> None:
        """
        txspawn's extra keyword options reach the child (here C{umask} and
        C{processGroup}).
        """
        source = (
            "import os\n"
            "old = os.umask(0)\n"
            "os.write(1, repr((oct(old), os.getpgrp() == os.getpid())).encode())\n"
        )
        reactor = self.buildStockReactor()
        installSpawner(
            reactor,
            engine=self.engineName,
            monitor=self.monitorName,
        )
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(source),
            reactor=reactor,
            umask=0o027,
            processGroup=0,
        )
        self.assertEqual(proto.output[1], b"('0o27', True)")

    def test_badOptionOpensNothing(self) -> None:
        """
        An unknown or invalid extra option raises before any fd is opened
        or child started.
        """
        reactor = self.buildReactor()
        fds = openFDs()
        proto = RecordingProtocol()
        self.assertRaises(
            TypeError, reactor.processSpawner.spawnProcess, proto, "/bin/true", bogus=1
        )
        exc = self.assertRaises(
            (TypeError, ValueError),
            reactor.processSpawner.spawnProcess,
            proto,
            "/bin/true",
            umask=-1,
        )
        self.assertIn("umask", str(exc))
        self.assertEqual(proto.events, [])
        self.assertEqual(openFDs(), fds)
        self.assertNoNewChildren()


@implementer(IChildMonitor)
class _ReapRecordingMonitor:
    """
    A real monitor, recording what each C{reapIfExited} call returned.
    """

    def __init__(self, monitor: IChildMonitor) -> None:
        self._monitor = monitor
        self.name = monitor.name
        self.reaps: list[bool] = []

    def install(self) -> None:
        self._monitor.install()

    def uninstall(self) -> None:
        self._monitor.uninstall()

    def watch(self, child: object, exited: object) -> None:
        self._monitor.watch(child, exited)

    def reapIfExited(self, child: object) -> bool:
        reaped: bool = self._monitor.reapIfExited(child)
        self.reaps.append(reaped)
        return reaped


@implementer(IChildMonitor)
class _RefusingMonitor:
    """
    A monitor whose C{watch} fails, to exercise the spawner's clean-up.
    """

    name = "refusing"

    def install(self) -> None:
        pass

    def uninstall(self) -> None:
        pass

    def watch(self, child: object, exited: object) -> None:
        raise RuntimeError("cannot watch")

    def reapIfExited(self, child: object) -> bool:
        # Asked by the spawner's clean-up after watch failed: it watches
        # nothing, so it leaves the child alone.
        return False


class SpawnerReapMixin(MixinBase):
    """
    When a child's pipes are done, its transport has the monitor reap it.
    """

    def test_reapWhenPipesDone(self) -> None:
        """
        When the last pipe of a child that has exited reaches end of file,
        the transport has the monitor reap the child at once (as Twisted's
        C{Process} does) instead of waiting for the monitor's own event:
        the pipes' events come first (the kernel closes an exiting
        process's fds before it makes it a zombie), and the reap happens in
        the last one.
        """
        reactor = StockEPollReactor()
        self._reactors.append(reactor)
        monitor = _ReapRecordingMonitor(selectMonitor(reactor, self.monitorName))
        spawner = ProcessSpawner(reactor, selectSpawner(self.engineName), monitor)
        proto = RecordingProtocol()

        def spawnAndWaitForExit() -> None:
            transport = spawner.spawnProcess(proto, PYTHON, python("pass"))
            # A zombie before the reactor looks at any of its events.
            os.waitid(os.P_PID, transport.pid, os.WEXITED | os.WNOWAIT)

        reactor.callWhenRunning(spawnAndWaitForExit)
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor)
        self.assertEqual(monitor.reaps, [True])
        self.assertEqual(
            proto.names(),
            ["connectionMade", "lost", "lost", "lost", "exited", "ended"],
        )
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 0)


class SpawnerFailureMixin(MixinBase):
    """
    What the spawner does when a later step fails.
    """

    def test_watchFails(self) -> None:
        """
        If the monitor cannot watch the child, C{spawnProcess} raises, the
        child is killed and reaped, and the protocol (already connected)
        still gets C{processExited} and, once its pipes close,
        C{processEnded}; nothing leaks.
        """
        reactor = StockEPollReactor()
        self._reactors.append(reactor)
        spawner = ProcessSpawner(
            reactor, selectSpawner(self.engineName), _RefusingMonitor()
        )
        proto = RecordingProtocol()
        self.assertRaises(
            RuntimeError,
            spawner.spawnProcess,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
        )
        self.assertEqual(proto.names(), ["connectionMade", "exited"])
        self.assertEqual(proto.exitedReason.value.signal, signal.SIGKILL)
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor)
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)


class SpawnerSignatureTests(SynchronousTestCase):
    """
    Tests for the shape of L{ProcessSpawner.spawnProcess}.
    """

    def test_mirrorsTwisted(self) -> None:
        """
        The positional parameters, their order and their defaults are
        exactly those of L{PosixReactorBase.spawnProcess}; the extra options
        are keyword only.
        """
        ours = inspect.signature(ProcessSpawner.spawnProcess).parameters
        theirs = inspect.signature(PosixReactorBase.spawnProcess).parameters
        positional = [p for p in ours.values() if p.kind is not p.VAR_KEYWORD]
        self.assertEqual(
            [(p.name, p.default) for p in positional],
            [(p.name, p.default) for p in theirs.values()],
        )
        self.assertEqual(list(ours)[-1], "options")
        self.assertIs(ours["options"].kind, inspect.Parameter.VAR_KEYWORD)

    def test_isOpenFD(self) -> None:
        """
        L{isOpenFD} tells open fds from closed and negative ones.
        """
        fd = os.open(os.devnull, os.O_RDONLY)
        self.assertTrue(isOpenFD(fd))
        os.close(fd)
        self.assertFalse(isOpenFD(fd))
        self.assertFalse(isOpenFD(-1))


globals().update(makeTestCaseClasses(SpawnerMixin))
globals().update(makeTestCaseClasses(SpawnerFailureMixin))
globals().update(makeTestCaseClasses(SpawnerReapMixin))
