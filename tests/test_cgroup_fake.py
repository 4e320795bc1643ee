"""
The fakes of L{txspawn.testing} with C{cgroup=}: the option is checked as
a real reactor checks it; a spawn gets a fake cgroup whose kills are
recorded, whose statistics the test gives, and whose end the test plays,
in a real transport's order; a reactor told that no cgroup can be had
behaves as a real one then (required: L{UnsupportedFeature}; best-effort:
C{cgroupUnavailable}); and L{txspawn.run} on it reports the statistics and
kills the tree on cancellation.
"""

from __future__ import annotations

import signal
from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txspawn import run
from txspawn.errors import UnsupportedFeature
from txspawn.interfaces import IManagedProcessTransport, IProcessTreeObserver
from txspawn.options import Cgroup, CgroupStats
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor

PARENT = "/sys/fs/cgroup/jobs"


def stats(cpu: int = 5) -> CgroupStats:
    """
    Statistics a test gives the fake.
    """
    return CgroupStats(
        path=PARENT + "/leaf",
        placement="clone",
        placementNote=None,
        cpuUsageUsec=cpu,
        cpuUserUsec=cpu,
        cpuSystemUsec=0,
        cpuThrottledCount=None,
        cpuThrottledUsec=None,
        memoryPeak=None,
        oomKills=None,
        pidsPeak=None,
        io=None,
    )


@implementer(IProcessTreeObserver)
class Observer(ProcessProtocol):
    """
    Records the callbacks, C{processTreeEnded} included.
    """

    def __init__(self) -> None:
        self.events: list[str] = []
        self.reasons: dict[str, Any] = {}
        self.treeStats: CgroupStats | None = None

    def processExited(self, reason: Failure) -> None:
        self.events.append("exited")
        self.reasons["exited"] = reason.value

    def processEnded(self, reason: Failure) -> None:
        self.events.append("ended")
        self.reasons["ended"] = reason.value

    def processTreeEnded(self, stats: CgroupStats) -> None:
        self.events.append("treeEnded")
        self.treeStats = stats


def spawn(
    reactor: MemoryProcessReactor | None = None, **options: Any
) -> tuple[MemoryProcessReactor, Observer, FakeProcessTransport]:
    reactor = MemoryProcessReactor() if reactor is None else reactor
    proto = Observer()
    transport = reactor.spawnProcess(proto, "prog", ["prog"], **options)
    return reactor, proto, transport


class FakeCgroupTests(SynchronousTestCase):
    """
    A fake child with a cgroup.
    """

    def test_checked(self) -> None:
        """
        C{cgroup=} is checked as a real reactor checks it.
        """
        reactor = MemoryProcessReactor()
        error = self.assertRaises(
            TypeError,
            reactor.spawnProcess,
            Observer(),
            "prog",
            ["prog"],
            cgroup="/sys/fs/cgroup/x",
        )
        self.assertIn("cgroup", str(error))
        self.assertEqual(reactor.spawned, [])

    def test_fakeCgroup(self) -> None:
        """
        A child spawned with C{cgroup=} has a made-up C{cgroupPath} until
        its tree ends; one spawned without has none, and C{killTree}
        refuses.
        """
        _, _, transport = spawn(cgroup=Cgroup(parent=PARENT))
        self.assertIsInstance(transport.cgroupPath, str)
        self.assertIsNone(transport.cgroupUnavailable)
        self.assertTrue(verifyObject(IManagedProcessTransport, transport))
        _, _, plain = spawn()
        self.assertIsNone(plain.cgroupPath)
        self.assertRaises(ValueError, plain.killTree)

    def test_statsAndTreeEnd(self) -> None:
        """
        The statistics given to C{exit} are on both reasons and on the
        transport; the end of the tree played before C{processEnded} is
        told right after it, once, with its statistics then on the
        transport, and the path is gone.
        """
        _, proto, transport = spawn(cgroup=Cgroup(parent=PARENT))
        atReap, final = stats(5), stats(9)
        transport.exit(0, closePipes=False, cgroupStats=atReap)
        self.assertIs(proto.reasons["exited"].cgroup, atReap)
        self.assertIs(transport.cgroupStats, atReap)
        transport.treeEnded(final)
        self.assertEqual(proto.events, ["exited"])
        self.assertRaises(ValueError, transport.treeEnded, final)
        for fd in (0, 1, 2):
            transport.closeFromChild(fd)
        self.assertEqual(proto.events, ["exited", "ended", "treeEnded"])
        self.assertIs(proto.reasons["ended"].cgroup, atReap)
        self.assertIs(proto.treeStats, final)
        self.assertIs(transport.cgroupStats, final)
        self.assertIsNone(transport.cgroupPath)

    def test_treeEndsAfterProcessEnded(self) -> None:
        """
        The end of the tree played after C{processEnded} is told then; a
        tree cannot end before its child exits.
        """
        _, proto, transport = spawn(cgroup=Cgroup(parent=PARENT))
        self.assertRaises(ValueError, transport.treeEnded, stats())
        transport.exit(0)
        self.assertEqual(proto.events, ["exited", "ended"])
        transport.treeEnded(stats())
        self.assertEqual(proto.events, ["exited", "ended", "treeEnded"])

    def test_killsRecorded(self) -> None:
        """
        C{killTree()} (also after the exit), C{terminate()}'s C{SIGKILL}
        step and C{killOnExit} are recorded; nothing once the tree ended.
        """
        reactor, _, transport = spawn(cgroup=Cgroup(parent=PARENT, killOnExit=False))
        transport.killTree()
        transport.terminate(1.0)
        reactor.advance(1.0)
        self.assertEqual(transport.state.treeKills, ["killTree", "terminate"])
        self.assertEqual(transport.state.signals[-2:], [signal.SIGTERM, signal.SIGKILL])
        transport.exit(0)
        transport.killTree()
        self.assertEqual(
            transport.state.treeKills, ["killTree", "terminate", "killTree"]
        )
        transport.treeEnded(stats())
        transport.killTree()
        self.assertEqual(len(transport.state.treeKills), 3)
        _, _, onExit = spawn(cgroup=Cgroup(parent=PARENT))
        onExit.exit(0)
        self.assertEqual(onExit.state.treeKills, ["exit"])

    def test_leaderExitsDuringTermination(self) -> None:
        """
        A child that exits during a termination's grace period has its
        cgroup killed then, as a real transport does.
        """
        _, _, transport = spawn(cgroup=Cgroup(parent=PARENT, killOnExit=False))
        transport.terminate(60.0)
        transport.exit(0)
        self.assertEqual(transport.state.treeKills, ["terminate"])

    def test_unavailable(self) -> None:
        """
        A reactor told that no cgroup can be had: a required cgroup raises
        L{UnsupportedFeature} with the reason (the protocol is not
        connected); a best-effort one gives a transport that says why.
        """
        reactor = MemoryProcessReactor()
        reactor.cgroupUnavailable = "no cgroup v2 hierarchy is mounted"
        proto = Observer()
        error = self.assertRaises(
            UnsupportedFeature,
            reactor.spawnProcess,
            proto,
            "prog",
            ["prog"],
            cgroup=Cgroup(),
        )
        self.assertEqual(error.feature, "cgroup")
        self.assertIn("no cgroup v2", str(error))
        self.assertEqual(reactor.spawned, [])
        _, _, transport = spawn(reactor, cgroup=Cgroup(required=False))
        self.assertEqual(
            transport.cgroupUnavailable, "no cgroup v2 hierarchy is mounted"
        )
        self.assertIsNone(transport.cgroupPath)
        error = self.assertRaises(ValueError, transport.killTree)
        self.assertIn("no cgroup v2", str(error))

    def test_run(self) -> None:
        """
        C{run()} on the fake: the result carries the statistics given at the
        exit; a best-effort cgroup that cannot be had is on the result.
        """
        reactor = MemoryProcessReactor()
        d = run(["prog"], reactor=reactor, cgroup=Cgroup(parent=PARENT))
        given = stats(7)
        reactor.transports[0].exit(0, cgroupStats=given)
        self.assertIs(self.successResultOf(d).cgroup, given)
        reactor.cgroupUnavailable = "no delegated cgroup"
        d = run(["prog"], reactor=reactor, cgroup=Cgroup(required=False))
        reactor.transports[1].exit(0)
        result = self.successResultOf(d)
        self.assertEqual(result.cgroupUnavailable, "no delegated cgroup")
        self.assertIsNone(result.cgroup)

    def test_runCancelKillsTree(self) -> None:
        """
        Cancelling C{run()} kills the child's cgroup, even after the child
        exited (its daemons hold the pipes).
        """
        reactor = MemoryProcessReactor()
        d = run(["prog"], reactor=reactor, cgroup=Cgroup(killOnExit=False))
        transport = reactor.transports[0]
        transport.exit(0, closePipes=False)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(transport.state.treeKills, ["killTree"])

    def test_runTimeoutKillsTree(self) -> None:
        """
        The timeout of C{run()} terminates the child: its C{SIGKILL} step
        kills the cgroup.
        """
        reactor = MemoryProcessReactor()
        run(
            ["prog"],
            reactor=reactor,
            timeout=1.0,
            killAfter=2.0,
            cgroup=Cgroup(killOnExit=False),
        )
        transport = reactor.transports[0]
        reactor.advance(1.0)
        self.assertEqual(transport.state.treeKills, [])
        reactor.advance(2.0)
        self.assertEqual(transport.state.treeKills, ["terminate"])
