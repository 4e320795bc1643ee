"""
A child in a cgroup of its own, as its transport shows it (C{cgroup=} on
C{spawnProcess}), on every engine x monitor combination: where the child
is, the statistics on every exit reason and on the transport,
C{processTreeEnded} after C{processEnded}, the leaf removed; a required
cgroup that cannot be had is an L{UnsupportedFeature} at the call, with
nothing opened or started, a best-effort one runs the child without and
says why; a spawn that fails leaves no leaf; and a thousand spawns leave
no leaf behind.

The whole-tree kills are in L{tests.test_cgroup_tree}.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest
from zope.interface import implementer

from tests.builders import PYTHON, MixinBase, makeTestCaseClasses, python
from tests.cgrouptransportutil import (
    TreeProtocol,
    cgroupSkipReason,
    leavesIn,
    makeTestParent,
)
from txspawn.errors import SpawnError, UnsupportedFeature
from txspawn.options import Cgroup, CgroupStats

# Burns some CPU, then says which cgroup it is in.
BUSY = (
    "import sys\n"
    "sum(range(3 * 10**6))\n"
    "sys.stdout.write(open('/proc/self/cgroup').read().splitlines()[-1])\n"
)


def _mountOf(path: str) -> str:
    """
    The cgroup v2 mount a cgroup path is under (its C{0::} path is what is
    left).
    """
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                mount = left.split()[4]
                if path.startswith(mount + "/"):
                    return mount
    raise AssertionError(f"{path} is under no cgroup2 mount")


@implementer(ILogObserver)
class _Warnings:
    """
    Collects the text of the log events of a test.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, event: LogEvent) -> None:
        self.texts.append(formatEvent(event))


class CgroupTransportMixin(MixinBase):
    """
    The transport of a child with a cgroup of its own.
    """

    def _spawn(
        self,
        proto: TreeProtocol,
        argv: list[bytes],
        waitForTree: bool = True,
        **options: Any,
    ) -> Any:
        """
        Spawn C{argv} once the reactor runs, and run it until the end of
        the tree (or C{processEnded}, without C{waitForTree}).
        """
        reactor = self.buildReactor()
        transports: list[Any] = []

        def spawn() -> None:
            try:
                transports.append(reactor.spawnProcess(proto, argv[0], argv, **options))
            except BaseException:
                reactor.stop()
                raise

        proto.ended.addErrback(lambda reason: None)
        end: Deferred[Any] = proto.treeEnded if waitForTree else proto.ended
        end.addBoth(lambda ignored: reactor.callLater(0, reactor.stop))
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor, 60)
        self.assertEqual(len(transports), 1, "spawnProcess failed")
        return transports[0]

    def test_statsOnEveryReason(self) -> None:
        """
        The child runs in a leaf of the given parent from its first
        instruction (placed by C{CLONE_INTO_CGROUP} on the C engine, by
        writing C{cgroup.procs} on the Python engine); the statistics read
        at its reaping are on the reasons of C{processExited} and
        C{processEnded} and of C{whenEnded} (with the CPU it burnt), the
        transport's C{cgroupStats} become the final ones given to
        C{processTreeEnded}, which comes once, after C{processEnded}; then
        the leaf is gone.
        """
        parent = makeTestParent(self)
        proto = TreeProtocol()
        seen: dict[str, Any] = {}

        def onSpawned(transport: Any) -> None:
            seen["path"] = transport.cgroupPath
            seen["whenEnded"] = transport.whenEnded()
            transport.addExitListener(
                lambda t: seen.setdefault("atListener", t.cgroupStats)
            )

        reactor = self.buildReactor()
        transports: list[Any] = []

        def spawn() -> None:
            transport = reactor.spawnProcess(
                proto, PYTHON, python(BUSY), cgroup=Cgroup(parent=parent)
            )
            transports.append(transport)
            onSpawned(transport)

        proto.ended.addErrback(lambda reason: None)
        proto.treeEnded.addBoth(lambda ignored: reactor.callLater(0, reactor.stop))
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor, 60)
        transport = transports[0]
        path = seen["path"]
        self.assertEqual(os.path.dirname(path), parent)
        self.assertEqual(proto.output[1].decode(), "0::" + path[len(_mountOf(path)) :])
        exited = proto.exitedReason.value.cgroup
        ended = proto.endedReason.value.cgroup
        self.assertIsInstance(exited, CgroupStats)
        self.assertIs(exited, ended)
        self.assertEqual(exited.path, path)
        self.assertGreater(exited.cpuUsageUsec, 0)
        self.assertEqual(
            exited.placement, "clone" if self.engineName == "c" else "procs"
        )
        self.assertIs(self.successResultOf(seen["whenEnded"]).cgroup, exited)
        # The child was alone in its cgroup: the tree was empty when it was
        # reaped, so processTreeEnded came right after processEnded, before
        # the exit listeners, which see the final statistics.
        self.assertIs(seen["atListener"], proto.treeStats)
        self.assertEqual(proto.names()[-2:], ["ended", "treeEnded"])
        self.assertEqual(proto.names().count("treeEnded"), 1)
        self.assertIs(transport.cgroupStats, proto.treeStats)
        assert proto.treeStats is not None
        self.assertGreaterEqual(proto.treeStats.cpuUsageUsec, exited.cpuUsageUsec)
        self.assertIsNone(transport.cgroupPath)
        self.assertFalse(os.path.exists(path))
        self.assertIsNone(transport.cgroupUnavailable)

    def test_aloneRemovedAtReap(self) -> None:
        """
        A child that leaves nothing behind has its leaf removed as it is
        reaped, before C{processExited}: the statistics read then are the
        final ones, and the very same are given to C{processTreeEnded}.
        """
        parent = makeTestParent(self)
        seen: dict[str, Any] = {}

        class AtExit(TreeProtocol):
            def processExited(self, reason: Failure) -> None:
                value: Any = reason.value
                seen["existsAtExit"] = os.path.exists(value.cgroup.path)
                super().processExited(reason)

        proto = AtExit()
        self._spawn(proto, python("pass"), cgroup=Cgroup(parent=parent))
        self.assertEqual(seen, {"existsAtExit": False})
        self.assertIs(proto.treeStats, proto.exitedReason.value.cgroup)

    def test_pty(self) -> None:
        """
        A child on a pty is in its cgroup too, with the same end.
        """
        parent = makeTestParent(self)
        proto = TreeProtocol()
        transport = self._spawn(
            proto, python(BUSY), usePTY=True, cgroup=Cgroup(parent=parent)
        )
        stats = proto.endedReason.value.cgroup
        self.assertEqual(os.path.dirname(stats.path), parent)
        self.assertIn(
            ("0::" + stats.path[len(_mountOf(stats.path)) :]).encode(), proto.output[1]
        )
        self.assertGreater(stats.cpuUsageUsec, 0)
        self.assertEqual(proto.names()[-2:], ["ended", "treeEnded"])
        self.assertIsNone(transport.cgroupPath)
        self.assertFalse(os.path.exists(stats.path))

    def test_withoutCgroup(self) -> None:
        """
        Without C{cgroup=}: no cgroup on the transport or the reasons,
        C{killTree} refuses, and C{processTreeEnded} is never called.
        """
        proto = TreeProtocol()
        transport = self._spawn(proto, python("pass"), waitForTree=False)
        self.assertIsNone(transport.cgroupPath)
        self.assertIsNone(transport.cgroupStats)
        self.assertIsNone(transport.cgroupUnavailable)
        self.assertIsNone(proto.endedReason.value.cgroup)
        self.assertIsNone(proto.exitedReason.value.cgroup)
        error = self.assertRaises(ValueError, transport.killTree)
        self.assertIn("cgroup=Cgroup(...)", str(error))
        self.assertNotIn("treeEnded", proto.names())

    def test_requiredUnavailable(self) -> None:
        """
        A required cgroup under a parent that is not a cgroup is an
        L{UnsupportedFeature} naming C{cgroup} and the path, raised by
        C{spawnProcess} itself: the protocol is never connected, and no
        fd, child or leaf is left (the hygiene checks).
        """
        notACgroup = self.mktemp()
        os.mkdir(notACgroup)
        notACgroup = os.path.abspath(notACgroup)
        reactor = self.buildReactor()
        proto = TreeProtocol()
        error = self.assertRaises(
            UnsupportedFeature,
            reactor.spawnProcess,
            proto,
            PYTHON,
            python("pass"),
            cgroup=Cgroup(parent=notACgroup),
        )
        self.assertEqual(error.feature, "cgroup")
        self.assertIn(notACgroup, str(error))
        self.assertEqual(proto.names(), [])
        self.assertEqual(os.listdir(notACgroup), [])

    def test_bestEffortUnavailable(self) -> None:
        """
        A best-effort cgroup (C{required=False}) that cannot be had: the
        child runs without one, the transport's C{cgroupUnavailable} says
        why (and a warning is logged), C{killTree} refuses with that
        reason, the reasons carry no statistics and the tree's end is not
        told.
        """
        notACgroup = os.path.abspath(self.mktemp())
        os.mkdir(notACgroup)
        logged = _Warnings()
        globalLogPublisher.addObserver(logged)
        self.addCleanup(globalLogPublisher.removeObserver, logged)
        proto = TreeProtocol()
        transport = self._spawn(
            proto,
            python("print('ran')"),
            waitForTree=False,
            cgroup=Cgroup(parent=notACgroup, required=False),
        )
        self.assertEqual(proto.output[1], b"ran\n")
        why = transport.cgroupUnavailable
        self.assertIsInstance(why, str)
        self.assertIn(notACgroup, why)
        self.assertTrue([text for text in logged.texts if why in text], logged.texts)
        self.assertIsNone(transport.cgroupPath)
        self.assertIsNone(proto.endedReason.value.cgroup)
        error = self.assertRaises(ValueError, transport.killTree)
        self.assertIn(why, str(error))
        self.assertNotIn("treeEnded", proto.names())

    def test_limitWithoutController(self) -> None:
        """
        A limit whose controller the hierarchy does not offer is an
        L{UnsupportedFeature} naming it even for a best-effort cgroup (a
        limit asked for is never dropped), and nothing is left.
        """
        parent = makeTestParent(self)
        with open(os.path.join(parent, "cgroup.controllers")) as f:
            if "memory" in f.read().split():
                raise SkipTest("this cgroup v2 hierarchy offers memory")
        reactor = self.buildReactor()
        proto = TreeProtocol()
        error = self.assertRaises(
            UnsupportedFeature,
            reactor.spawnProcess,
            proto,
            PYTHON,
            python("pass"),
            cgroup=Cgroup(parent=parent, memoryMax="64M", required=False),
        )
        self.assertIn("memory", str(error))
        self.assertEqual(proto.names(), [])
        self.assertEqual(leavesIn(parent), [])

    def test_failedSpawnDiscardsLeaf(self) -> None:
        """
        A spawn that fails after its leaf was made (the program cannot be
        executed) raises the engine's L{SpawnError} and leaves no leaf.
        """
        parent = makeTestParent(self)
        program = os.path.abspath(self.mktemp())
        with open(program, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(program, 0o644)
        reactor = self.buildReactor()
        proto = TreeProtocol()
        self.assertRaises(
            SpawnError,
            reactor.spawnProcess,
            proto,
            program,
            [program],
            cgroup=Cgroup(parent=parent),
        )
        self.assertEqual(leavesIn(parent), [])
        self.assertEqual(proto.names(), [])


class ThousandSpawnsMixin(MixinBase):
    """
    Many children, each in its own leaf.
    """

    #: How many children.
    SPAWNS = 1000
    #: How many run at once.
    AT_ONCE = 25

    def test_noLeafLeft(self) -> None:
        """
        A thousand children, each in a fresh leaf of the same parent, a few
        at a time: every one is told C{processTreeEnded}, every leaf was a
        different one, and none is left once they all ended -- but the one
        spare leaf made ahead for the next spawn, which no child was in, and
        which is gone once the reactor stopped.
        """
        parent = makeTestParent(self)
        reactor = self.buildReactor()
        paths: set[str] = set()
        atLastEnd: list[str] = []
        counts = {"started": 0, "treeEnded": 0}
        failures: list[Failure] = []

        def spawnOne() -> None:
            if counts["started"] == self.SPAWNS:
                return
            counts["started"] += 1
            proto = TreeProtocol()
            # Fired with the exit reason as a failure: checked below.
            proto.ended.addErrback(lambda reason: None)
            proto.treeEnded.addCallback(treeEnded)
            proto.treeEnded.addErrback(failures.append)
            try:
                transport = reactor.spawnProcess(
                    proto, "/bin/true", ["true"], cgroup=Cgroup(parent=parent)
                )
            except BaseException:
                failures.append(Failure())
                reactor.stop()
                return
            paths.add(transport.cgroupPath)

        def treeEnded(stats: CgroupStats) -> None:
            counts["treeEnded"] += 1
            if counts["treeEnded"] == self.SPAWNS:
                atLastEnd.extend(leavesIn(parent))
                reactor.callLater(0, reactor.stop)
            else:
                spawnOne()

        def start() -> None:
            for _ in range(self.AT_ONCE):
                spawnOne()

        reactor.callWhenRunning(start)
        self.runReactor(reactor, 300)
        if failures:
            failures[0].raiseException()
        self.assertEqual(counts, {"started": self.SPAWNS, "treeEnded": self.SPAWNS})
        self.assertEqual(len(paths), self.SPAWNS)
        self.assertLessEqual(len(atLastEnd), 1, atLastEnd)
        self.assertFalse(paths & {os.path.join(parent, name) for name in atLastEnd})
        self.assertEqual(leavesIn(parent), [])


_SKIP = cgroupSkipReason()
for _mixin in (CgroupTransportMixin, ThousandSpawnsMixin):
    for _name, _case in makeTestCaseClasses(_mixin).items():
        if _SKIP is not None:
            _case.skip = _SKIP
        globals()[_name] = _case
del _mixin, _name, _case
