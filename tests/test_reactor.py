# -*- test-case-name: tests.test_reactor -*-
"""
Tests for L{txspawn.reactor} and L{txspawn._reactor}: the reactor classes,
their signal-handling composition, and their coexistence with processes
built directly from L{twisted.internet.process.Process}.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from typing import Any, ClassVar, cast

from twisted.internet import (
    asyncioreactor,
    epollreactor,
    pollreactor,
    selectreactor,
)
from twisted.internet import (
    process as twistedProcess,
)
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.python.reflect import namedAny
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyClass, verifyObject

import txspawn
from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from tests.hygiene import peekWakeupFD
from txspawn import reactor as txspawnReactor
from txspawn._monitor.sigchldwakeup import _noopHandler, _wakeup
from txspawn._reactor.mixin import SpawnReactorMixin
from txspawn._reactor.spawner import ProcessSpawner

#: Each txspawn reactor class and the Twisted class it extends.
REACTOR_CLASSES: dict[str, type] = {
    "txspawn.reactor.EPollReactor": epollreactor.EPollReactor,
    "txspawn.reactor.PollReactor": pollreactor.PollReactor,
    "txspawn.reactor.SelectReactor": selectreactor.SelectReactor,
    "txspawn.reactor.AsyncioSelectorReactor": asyncioreactor.AsyncioSelectorReactor,
}

#: Each txspawn reactor class and the module that defines it and installs it.
REACTOR_MODULES: dict[str, str] = {
    "txspawn.reactor.EPollReactor": "txspawn._reactor.epollreactor",
    "txspawn.reactor.PollReactor": "txspawn._reactor.pollreactor",
    "txspawn.reactor.SelectReactor": "txspawn._reactor.selectreactor",
    "txspawn.reactor.AsyncioSelectorReactor": "txspawn._reactor.asyncioreactor",
}

#: Each C{--reactor} name of a txspawn reactor kind and its module.
REACTOR_KINDS: dict[str, str] = {
    "txspawn": "txspawn._reactor.epollreactor",
    "txspawn-poll": "txspawn._reactor.pollreactor",
    "txspawn-select": "txspawn._reactor.selectreactor",
    "txspawn-asyncio": "txspawn._reactor.asyncioreactor",
}


def _dispose(reactor: Any) -> None:
    """
    Release what an unused reactor holds: its waker, its poller, and (for
    the asyncio reactor) the event loop it created for itself.
    """
    reactor._signals.uninstall()
    for reader in list(reactor._internalReaders):
        reactor.removeReader(reader)
        reader.connectionLost(None)
    reactor._internalReaders.clear()
    poller = getattr(reactor, "_poller", None)
    if poller is not None and hasattr(poller, "close"):
        poller.close()
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is not None and not loop.is_closed():
        loop.close()
        import asyncio

        asyncio.set_event_loop(None)


def _runPython(source: str) -> str:
    """
    Run C{source} in a fresh interpreter (so that no global reactor of this
    process is disturbed) and return its stdout.
    """
    result = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        check=True,
        text=True,
    )
    return result.stdout.strip()


class ReactorClassTests(SynchronousTestCase):
    """
    The public reactor classes, without spawning anything.
    """

    def test_publicNames(self) -> None:
        """
        L{txspawn.reactor} exports the four reactor classes of
        L{txspawn._reactor}'s per-kind modules and L{install}.
        """
        for fqpn, module in REACTOR_MODULES.items():
            name = fqpn.rsplit(".", 1)[1]
            self.assertIn(name, txspawnReactor.__all__)
            self.assertIs(namedAny(fqpn), namedAny(f"{module}.{name}"))
        self.assertIn("install", txspawnReactor.__all__)

    def test_extendsTwistedReactor(self) -> None:
        """
        Each class is Twisted's reactor class with L{SpawnReactorMixin}
        composed in, the mixin first so that its methods win.
        """
        for fqpn, twistedClass in REACTOR_CLASSES.items():
            cls = namedAny(fqpn)
            self.assertTrue(issubclass(cls, twistedClass), fqpn)
            self.assertIs(cls.__mro__[1], SpawnReactorMixin, fqpn)

    def test_verifyClass(self) -> None:
        """
        Each class declares and implements L{IReactorProcess}.
        """
        for fqpn in REACTOR_CLASSES:
            self.assertTrue(verifyClass(IReactorProcess, namedAny(fqpn)))

    def test_noArgumentConstruction(self) -> None:
        """
        Each class is constructible with no arguments (Twisted's
        C{ReactorBuilder} does C{namedAny(fqpn)()}), and the instance
        provides L{IReactorProcess} through a L{ProcessSpawner} that does
        not manage signals itself.
        """
        for fqpn in REACTOR_CLASSES:
            reactor = namedAny(fqpn)()
            self.addCleanup(_dispose, reactor)
            self.assertTrue(verifyObject(IReactorProcess, reactor))
            self.assertIsInstance(reactor.processSpawner, ProcessSpawner)
            self.assertTrue(verifyObject(IReactorProcess, reactor.processSpawner))
            self.assertFalse(reactor.processSpawner.manageSignals)
            self.assertIs(reactor.processSpawner.monitor, reactor.childMonitor)
            self.assertIs(reactor.processSpawner.reactor, reactor)

    def test_namesSelectEngineAndMonitor(self) -> None:
        """
        C{engine} and C{monitor} given as names choose the engine and the
        monitor.
        """
        for fqpn in REACTOR_CLASSES:
            for monitor in ("pidfd", "sigchld"):
                reactor = namedAny(fqpn)(engine="python", monitor=monitor)
                self.addCleanup(_dispose, reactor)
                self.assertEqual(reactor.processSpawner.spawner.name, "python")
                self.assertEqual(reactor.childMonitor.name, monitor)

    def test_objectsUsedAsGiven(self) -> None:
        """
        C{engine} and C{monitor} given as objects are used as they are.
        """
        from txspawn._engine.selection import selectSpawner
        from txspawn._monitor.selection import selectMonitor

        for fqpn in REACTOR_CLASSES:
            spawner = selectSpawner("python")
            reactor = namedAny(fqpn)(engine=spawner, monitor="pidfd")
            self.addCleanup(_dispose, reactor)
            monitor = selectMonitor(reactor, "sigchld")
            other = namedAny(fqpn)(engine=spawner, monitor=monitor)
            self.addCleanup(_dispose, other)
            self.assertIs(other.processSpawner.spawner, spawner)
            self.assertIs(other.childMonitor, monitor)
            self.assertIs(other.processSpawner.monitor, monitor)

    def test_spawnProcessSignature(self) -> None:
        """
        C{spawnProcess} has exactly the parameters and defaults of Twisted's
        C{PosixReactorBase.spawnProcess}, followed only by C{**options} for
        txspawn's keyword-only extras.
        """
        import inspect

        from twisted.internet.posixbase import PosixReactorBase

        ours = list(
            inspect.signature(SpawnReactorMixin.spawnProcess).parameters.values()
        )
        theirs = inspect.signature(PosixReactorBase.spawnProcess).parameters.values()
        self.assertEqual(
            [(p.name, p.default, p.kind) for p in ours[: len(theirs)]],
            [(p.name, p.default, p.kind) for p in theirs],
        )
        self.assertEqual(
            [(p.name, p.kind) for p in ours[len(theirs) :]],
            [("options", inspect.Parameter.VAR_KEYWORD)],
        )

    def test_optionsPassedThrough(self) -> None:
        """
        txspawn's keyword options given to the reactor's C{spawnProcess}
        reach the spawner: a bad one is rejected by name, before anything
        is spawned.
        """
        reactor = txspawnReactor.EPollReactor(engine="python")
        self.addCleanup(_dispose, reactor)
        error = self.assertRaises(
            TypeError,
            reactor.spawnProcess,
            ProcessProtocol(),
            PYTHON,
            [PYTHON, b"-c", b""],
            noSuchOption=1,
        )
        self.assertIn("noSuchOption", str(error))

    def test_usePTYWithChildFDs(self) -> None:
        """
        C{usePTY} together with C{childFDs} raises L{ValueError} from
        C{spawnProcess}, as Twisted's does, without spawning.
        """
        reactor = txspawnReactor.EPollReactor(engine="python")
        self.addCleanup(_dispose, reactor)
        self.assertRaises(
            ValueError,
            reactor.spawnProcess,
            ProcessProtocol(),
            PYTHON,
            [PYTHON, b"-c", b""],
            usePTY=True,
            childFDs={1: "r"},
        )

    def test_importHasNoSideEffect(self) -> None:
        """
        Importing L{txspawn} and L{txspawn.reactor} installs no reactor.
        """
        out = _runPython(
            "import sys, txspawn, txspawn.reactor; "
            "print('twisted.internet.reactor' in sys.modules)"
        )
        self.assertEqual(out, "False")

    def test_install(self) -> None:
        """
        L{txspawn.reactor.install} installs an L{EPollReactor} as Twisted's
        global reactor, with the engine and monitor asked for.
        """
        out = _runPython(
            "import txspawn.reactor as r; "
            "installed = r.install(engine='python', monitor='sigchld'); "
            "from twisted.internet import reactor; "
            "print(reactor is installed, type(reactor).__module__, "
            "type(reactor).__name__, reactor.childMonitor.name)"
        )
        self.assertEqual(out, "True txspawn._reactor.epollreactor EPollReactor sigchld")

    def test_installTwice(self) -> None:
        """
        L{txspawn.reactor.install} refuses to replace an installed txspawn
        reactor with Twisted's L{ReactorAlreadyInstalledError}, saying that
        the installed one already spawns through txspawn.
        """
        out = _runPython(
            "import txspawn.reactor as r; r.install()\n"
            "from twisted.internet.error import ReactorAlreadyInstalledError\n"
            "try:\n    r.install()\n"
            "except ReactorAlreadyInstalledError as e:\n    print('refused:', e)"
        )
        self.assertEqual(
            out,
            "refused: a reactor is already installed, and it is txspawn's "
            "(txspawn._reactor.epollreactor.EPollReactor): it already spawns "
            "through txspawn, there is nothing to install",
        )

    def test_installOverStockReactor(self) -> None:
        """
        Every txspawn reactor kind's C{install()}, called after a stock
        reactor is installed, raises Twisted's
        L{ReactorAlreadyInstalledError} (so code catching it keeps working)
        whose message names the installed reactor and says to use
        C{txspawn.install(reactor)} instead; it refuses before building a
        reactor, so no fd is opened.
        """
        out = _runPython(
            textwrap.dedent(
                f"""
                import os
                from twisted.internet import epollreactor
                epollreactor.install()
                from twisted.internet.error import ReactorAlreadyInstalledError
                from twisted.python.reflect import namedModule
                for name in {sorted(REACTOR_MODULES.values())!r}:
                    before = sorted(os.listdir("/proc/self/fd"))
                    try:
                        namedModule(name).install()
                    except ReactorAlreadyInstalledError as e:
                        after = sorted(os.listdir("/proc/self/fd"))
                        print(name, before == after, e)
                """
            )
        )
        lines = out.splitlines()
        self.assertEqual(len(lines), len(REACTOR_MODULES), out)
        for line, (module, kind) in zip(
            lines, sorted((m, k) for k, m in REACTOR_KINDS.items()), strict=True
        ):
            self.assertEqual(
                line,
                f"{module} True a reactor is already installed "
                "(twisted.internet.epollreactor.EPollReactor); a txspawn "
                "reactor must be installed before anything imports "
                f"twisted.internet.reactor (or chosen with twistd/trial "
                f"--reactor={kind}).  To spawn through txspawn on the "
                "reactor you have, call txspawn.install(reactor) instead: it "
                "makes that reactor's spawnProcess use txspawn",
            )

    def test_packageReexports(self) -> None:
        """
        C{txspawn.install} and C{txspawn.ProcessSpawner} are the spawner
        module's L{installSpawner} and L{ProcessSpawner}.
        """
        from txspawn._reactor import spawner as _spawner

        self.assertIs(txspawn.install, _spawner.installSpawner)
        self.assertIs(txspawn.ProcessSpawner, _spawner.ProcessSpawner)
        self.assertIn("install", txspawn.__all__)
        self.assertIn("ProcessSpawner", txspawn.__all__)


#: Run in a fresh interpreter with the reactor module's name formatted in:
#: install that kind with its module's install(), then do what Twisted's own
#: tools and tests (twisted.test.test_stdio) do, through that reactor: spawn
#: children that re-create "the same reactor" with
#: namedAny(reactor.__class__.__module__).install().
_SAME_REACTOR_IN_CHILD = """
import sys
from twisted.python.reflect import namedAny

installed = namedAny({module!r}).install()
from twisted.internet import reactor
from twisted.internet.protocol import ProcessProtocol

assert reactor is installed


class Collect(ProcessProtocol):
    def __init__(self):
        self.out = b""
        self.err = b""

    def outReceived(self, data):
        self.out += data

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.code = reason.value.exitCode
        pending.remove(self)
        if not pending:
            reactor.stop()


module = reactor.__class__.__module__
sameKind = Collect()
hostPeer = Collect()
pending = [sameKind, hostPeer]
# A child that re-installs "the same reactor" and names what it got.
reactor.spawnProcess(
    sameKind,
    sys.executable,
    [
        sys.executable,
        "-c",
        "import sys; from twisted.python.reflect import namedAny; "
        "namedAny(sys.argv[1]).install(); "
        "from twisted.internet import reactor; "
        "print(type(reactor).__module__, type(reactor).__qualname__)",
        module,
    ],
    env=None,
)
# Twisted's own child program, as twisted.test.test_stdio runs it.
reactor.spawnProcess(
    hostPeer,
    sys.executable,
    [sys.executable, "-m", "twisted.test.stdio_test_hostpeer", module],
    env=None,
)
reactor.run()
print(type(reactor).__module__, type(reactor).__qualname__)
print(sameKind.code, sameKind.out.decode().strip())
print(hostPeer.code, len(hostPeer.out.splitlines()))
for child in (sameKind, hostPeer):
    if child.err:
        print("stderr:", child.err.decode()[-500:])
"""


class ReactorModuleTests(SynchronousTestCase):
    """
    Each txspawn reactor class is defined in a module with an C{install()}
    installing that class, as Twisted's reactor modules are: Twisted code
    re-creates "the same reactor" in a child process with
    C{namedAny(reactor.__class__.__module__).install()}.
    """

    def test_classModules(self) -> None:
        """
        Each class's C{__module__} is its own module, which has an
        C{install()}; L{txspawn.reactor.install} is the epoll module's.
        """
        for fqpn, module in REACTOR_MODULES.items():
            cls = namedAny(fqpn)
            self.assertEqual(cls.__module__, module)
            self.assertIs(namedAny(f"{module}.{cls.__name__}"), cls)
            self.assertTrue(callable(namedAny(f"{module}.install")), module)
        self.assertIs(
            txspawnReactor.install, namedAny("txspawn._reactor.epollreactor.install")
        )

    def test_installEachKind(self) -> None:
        """
        Each module's C{install(engine=, monitor=)}, in a fresh interpreter,
        installs its own class as Twisted's global reactor, with the engine
        and monitor asked for.
        """
        for fqpn, module in REACTOR_MODULES.items():
            out = _runPython(
                f"from twisted.python.reflect import namedAny\n"
                f"installed = namedAny({module!r}).install("
                "engine='python', monitor='sigchld')\n"
                "from twisted.internet import reactor\n"
                f"print(reactor is installed, type(reactor) is namedAny({fqpn!r}), "
                "reactor.childMonitor.name, reactor.processSpawner.spawner.name)"
            )
            self.assertEqual(out, "True True sigchld python", module)

    def test_sameReactorInChild(self) -> None:
        """
        On each txspawn reactor kind, a child spawned through it that runs
        C{namedAny(reactor.__class__.__module__).install()} gets the same
        reactor class, and Twisted's own child program that does so
        (C{twisted.test.stdio_test_hostpeer}, as C{twisted.test.test_stdio}
        runs it) works end to end.
        """
        for fqpn, module in REACTOR_MODULES.items():
            name = fqpn.rsplit(".", 1)[1]
            out = _runPython(_SAME_REACTOR_IN_CHILD.format(module=module))
            self.assertEqual(
                out.splitlines(),
                [f"{module} {name}", f"0 {module} {name}", "0 2"],
                module,
            )


class _RecordingTwistedProcess(ProcessProtocol):
    """
    Records C{processEnded} for a process Twisted's own code spawned.

    @ivar reasons: The C{processEnded} reasons received.
    @ivar ended: Fires (with C{None}) on C{processEnded}.
    """

    def __init__(self) -> None:
        self.reasons: list[Failure] = []
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.reasons.append(reason)
        self.ended.callback(None)


class ReactorProcessMixin(MixinBase):
    """
    Real-process tests of one txspawn reactor class, for one engine and
    monitor (see L{tests.builders}).
    """

    engineName: ClassVar[str]
    monitorName: ClassVar[str]
    reactorClassName: ClassVar[str]

    def _wakeupEager(self, reactor: Any) -> bool:
        """
        Whether C{reactor} keeps the SIGCHLD wakeup installed for as long
        as it runs: with the SIGCHLD monitor (its waker), and with pidfds
        on a reactor that does not wait in C{doIteration} (asyncio), whose
        L{TwistedRegistryReaping} cannot subscribe on demand.
        """
        return self.monitorName == "sigchld" or not type(reactor)._hasWaitHook

    def test_signalHandlingWhileRunning(self) -> None:
        """
        While the reactor runs (with signal handlers), a SIGCHLD handler and
        a wakeup fd are installed if the reactor needs them for every exit
        (see L{_wakeupEager}); with pidfds and an empty Twisted registry,
        neither is touched, so a child's exit costs no signal.  After
        C{run()} returns both are what they were before.
        """
        before = (signal.getsignal(signal.SIGCHLD), peekWakeupFD())
        during: list[tuple[Any, int]] = []
        reactor = self.buildReactor()

        def probe() -> None:
            during.append((signal.getsignal(signal.SIGCHLD), peekWakeupFD()))
            reactor.stop()

        reactor.callWhenRunning(probe)
        self.runReactor(reactor)
        self.assertEqual(len(during), 1)
        if self._wakeupEager(reactor):
            handler, wakeup = during[0]
            self.assertIs(handler, _noopHandler)
            self.assertNotEqual(wakeup, -1)
        else:
            self.assertEqual(during[0], before)
        self.assertEqual((signal.getsignal(signal.SIGCHLD), peekWakeupFD()), before)

    def test_registryWakeupOnDemand(self) -> None:
        """
        The SIGCHLD wakeup is installed while a process built with Twisted's
        own C{Process} class is in Twisted's registry, and, unless the
        reactor keeps it for every exit (L{_wakeupEager}), removed once the
        registry is empty again; that process is reaped either way.
        """
        reactor = self.buildReactor()
        proto = _RecordingTwistedProcess()
        seen: dict[str, bool] = {}

        def afterNextWait(label: str, then: Any = None) -> None:
            # A delayed call runs before the iteration's wait, so the state
            # after one wait is seen two delayed calls later.
            def record() -> None:
                seen[label] = _wakeup.installed
                if then is not None:
                    then()

            reactor.callLater(0, reactor.callLater, 0, record)

        def spawn() -> None:
            seen["idle"] = _wakeup.installed
            proc = twistedProcess.Process(
                reactor,
                PYTHON,
                python("import sys; sys.stdin.read()"),
                {},
                None,
                proto,
            )
            afterNextWait("registered", proc.closeStdin)

        reactor.callWhenRunning(spawn)
        proto.ended.addCallback(lambda _: afterNextWait("reaped", reactor.stop))
        self.runReactor(reactor)
        self.assertEqual(len(proto.reasons), 1)
        self.assertIsInstance(proto.reasons[0].value, ProcessDone)
        eager = self._wakeupEager(reactor)
        self.assertEqual(seen, {"idle": eager, "registered": True, "reaped": eager})
        self.assertEqual(twistedProcess.reapProcessHandlers, {})
        self.assertFalse(_wakeup.installed)

    def test_spawnAndReap(self) -> None:
        """
        C{spawnProcess} on the reactor spawns through txspawn: the exit code
        arrives in C{processEnded}, and the reactor's monitor is the one
        that watched the child.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdout.write('hi'); sys.exit(3)"),
        )
        assert proto.endedReason is not None
        self.assertIsInstance(proto.endedReason.value, ProcessTerminated)
        self.assertEqual(cast(ProcessTerminated, proto.endedReason.value).exitCode, 3)
        self.assertEqual(proto.output[1], b"hi")
        self.assertIsNone(transport.pid)
        self.assertNotIn(transport, twistedProcess.reapProcessHandlers.values())

    def test_twistedProcessReaped(self) -> None:
        """
        A L{twisted.internet.process.Process} built directly (as buildbot
        does) on a txspawn reactor is still reaped: it gets C{processEnded}
        and leaves Twisted's registry.
        """
        reactor = self.buildReactor()
        proto = _RecordingTwistedProcess()
        registered: list[bool] = []

        def spawn() -> None:
            proc = twistedProcess.Process(
                reactor,
                PYTHON,
                python("import sys; sys.exit(5)"),
                {},
                None,
                proto,
            )
            registered.append(proc.pid in twistedProcess.reapProcessHandlers)

        reasons = proto.reasons
        proto.ended.addCallback(lambda _: reactor.stop())
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor)
        self.assertEqual(registered, [True])
        self.assertEqual(len(reasons), 1)
        self.assertIsInstance(reasons[0].value, ProcessTerminated)
        self.assertEqual(cast(ProcessTerminated, reasons[0].value).exitCode, 5)
        self.assertEqual(twistedProcess.reapProcessHandlers, {})

    def test_withoutSignalHandlers(self) -> None:
        """
        With C{installSignalHandlers=False} nothing is installed; with the
        pidfd monitor children are still reaped (stock Twisted, and the
        SIGCHLD monitor, need the signal handlers for that).
        """
        if self.monitorName != "pidfd":
            raise SkipTest("the SIGCHLD monitor reaps only with signal handlers")
        before = (signal.getsignal(signal.SIGCHLD), peekWakeupFD())
        during: list[tuple[Any, int]] = []
        reactor = self.buildReactor()
        proto = RecordingProtocol()

        def spawn() -> None:
            during.append((signal.getsignal(signal.SIGCHLD), peekWakeupFD()))
            reactor.spawnProcess(proto, PYTHON, python(""))

        proto.ended.addBoth(lambda _: reactor.stop())
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor, installSignalHandlers=False)
        self.assertEqual(during, [before])
        assert proto.endedReason is not None
        self.assertIsInstance(proto.endedReason.value, ProcessDone)

    def test_asyncioSignalHandlerBeside(self) -> None:
        """
        On the asyncio reactor with the pidfd monitor, application code
        that takes the signal wakeup fd over with C{loop.add_signal_handler}
        (and drops it again) does not keep txspawn's children from being
        reaped.
        """
        if not self.reactorClassName.endswith(".AsyncioSelectorReactor"):
            raise SkipTest("only the asyncio reactor has an asyncio loop")
        if self.monitorName != "pidfd":
            raise SkipTest("with SIGCHLD, asyncio's wakeup fd hides exits")
        reactor = self.buildReactor()
        loop = reactor._asyncioEventloop
        proto = RecordingProtocol()

        def spawn() -> None:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
            reactor.spawnProcess(proto, PYTHON, python("raise SystemExit(4)"))

        def ended(result: object) -> None:
            loop.remove_signal_handler(signal.SIGUSR1)
            reactor.stop()

        proto.ended.addBoth(ended)
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor)
        assert proto.endedReason is not None
        self.assertEqual(cast(ProcessTerminated, proto.endedReason.value).exitCode, 4)


class _ReactorClassChoice:
    """
    Build the reactor class named by C{reactorClassName} (instead of
    L{tests.builders}' default), and dispose of it fully afterwards.
    """

    reactorClassName: ClassVar[str]
    engineName: ClassVar[str]
    monitorName: ClassVar[str]

    def buildReactor(self) -> Any:
        reactor = namedAny(self.reactorClassName)(
            engine=self.engineName, monitor=self.monitorName
        )
        self._reactors.append(reactor)  # type: ignore[attr-defined]
        return reactor

    def _unbuildReactor(self, reactor: Any) -> None:
        super()._unbuildReactor(reactor)  # type: ignore[misc]
        _dispose(reactor)


def _perReactorClass(classes: dict[str, type]) -> dict[str, type]:
    """
    Multiply the engine x monitor classes by the four reactor classes.
    """
    result: dict[str, type] = {}
    for name, cls in classes.items():
        for fqpn in REACTOR_CLASSES:
            short = fqpn.rsplit(".", 1)[1]
            newName = f"{name}_{short}"
            result[newName] = type(
                newName,
                (_ReactorClassChoice, cls),
                {
                    "reactorClassName": fqpn,
                    "__module__": __name__,
                    "__qualname__": newName,
                },
            )
    return result


globals().update(_perReactorClass(makeTestCaseClasses(ReactorProcessMixin)))


class OsEnvironUntouchedTests(SynchronousTestCase):
    """
    Building txspawn reactors changes no process-global state.
    """

    def test_constructionInstallsNothing(self) -> None:
        """
        Constructing (and disposing of) each reactor class leaves the
        SIGCHLD disposition and the wakeup fd alone.
        """
        before = (signal.getsignal(signal.SIGCHLD), peekWakeupFD())
        for fqpn in REACTOR_CLASSES:
            _dispose(namedAny(fqpn)())
            self.assertEqual((signal.getsignal(signal.SIGCHLD), peekWakeupFD()), before)
