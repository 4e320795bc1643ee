# -*- test-case-name: tests.test_supervise_procmon -*-
"""
Tests for L{txspawn.supervise.procmon}: procmon's API on a txspawn reactor.

Twisted's own procmon suite runs against the class in
L{tests.twisted_procmon_suite}; these tests cover what that suite cannot
see: the spawn options and the whole-tree stop on a txspawn reactor (its
verified fake, L{txspawn.testing.MemoryProcessReactor}, and real children
on both engines x monitors), the Deferred of C{stopService}, the logging
fixes, pickling, and a procmon user's C{.tac} under C{twistd}, with
Twisted's procmon as the contrast (a C{setsid} grandchild that ignores
C{SIGTERM} outlives it).
"""

from __future__ import annotations

import errno
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, Logger

# The contrast.  Imported here, not in a test: it imports the global reactor,
# whose fds would count as a test's leak.
from twisted.runner.procmon import ProcessMonitor as TwistedProcessMonitor
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import Cgroup, CgroupStats
from txspawn.supervise.procmon import (
    CLOSE_PIPES_AFTER_EXIT,
    LOG_NAMESPACE,
    LoggingProtocol,
    ProcessMonitor,
)
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor

TERM, KILL = int(signal.SIGTERM), int(signal.SIGKILL)


def stats() -> CgroupStats:
    """
    The final statistics of a fake tree.
    """
    return CgroupStats(
        path="/txspawn-fake-cgroup/leaf",
        placement="clone",
        placementNote=None,
        cpuUsageUsec=0,
        cpuUserUsec=0,
        cpuSystemUsec=0,
        cpuThrottledCount=None,
        cpuThrottledUsec=None,
        memoryPeak=None,
        oomKills=None,
        pidsPeak=None,
        io=None,
    )


def fired(deferred: Deferred[Any]) -> list[object]:
    """
    What C{deferred} fired with so far (empty: not yet).
    """
    results: list[object] = []
    deferred.addBoth(results.append)
    return results


def monitorOf(
    reactor: MemoryProcessReactor, **kwargs: Any
) -> tuple[ProcessMonitor, list[dict[str, Any]]]:
    """
    A monitor of C{reactor} whose log events are kept.
    """
    monitor = ProcessMonitor(reactor, **kwargs)
    events: list[dict[str, Any]] = []
    monitor.log = Logger(
        namespace=LOG_NAMESPACE, observer=cast(ILogObserver, events.append)
    )
    return monitor, events


class SpawnTests(SynchronousTestCase):
    """
    What a txspawn reactor is asked to spawn.
    """

    def test_treeOptions(self) -> None:
        """
        Each child leads a session of its own, gets a best-effort cgroup,
        and its pipes close one second after it exited; the argv, uid,
        gid, env and cwd are procmon's.
        """
        reactor = MemoryProcessReactor()
        monitor, _ = monitorOf(reactor)
        monitor.addProcess("web", ["srv", "-p"], uid=5, gid=6, env={"A": "b"}, cwd="/")
        monitor.startService()
        [spawned] = reactor.spawned
        self.assertEqual(
            (spawned.executable, spawned.args, spawned.uid, spawned.gid),
            ("srv", ("srv", "-p"), 5, 6),
        )
        self.assertEqual((spawned.env, spawned.path), ({"A": "b"}, "/"))
        self.assertEqual(
            spawned.options,
            {
                "newSession": True,
                "closePipesAfterExit": CLOSE_PIPES_AFTER_EXIT,
                "cgroup": Cgroup(required=False),
            },
        )

    def test_cgroupChosen(self) -> None:
        """
        The C{cgroup} argument replaces the default cgroup; C{None} spawns
        without one.
        """
        reactor = MemoryProcessReactor()
        limited = Cgroup(pidsMax=10)
        for cgroup in (limited, None):
            monitor, _ = monitorOf(reactor, cgroup=cgroup)
            monitor.addProcess("p", ["p"])
            monitor.startProcess("p")
        self.assertEqual(reactor.spawned[0].options["cgroup"], limited)
        self.assertNotIn("cgroup", reactor.spawned[1].options)

    def test_spawnFailureBacksOff(self) -> None:
        """
        A spawn that fails (a missing executable: txspawn raises
        L{SpawnError}) is logged and retried after a delay that doubles,
        never in a loop.
        """
        reactor = MemoryProcessReactor()
        reactor.spawnError = SpawnError(errno.ENOENT, ChildSetupStage.EXEC, "/no/such")
        monitor, events = monitorOf(reactor)
        monitor.addProcess("missing", ["/no/such"])
        monitor.startService()
        self.assertEqual(monitor.protocols, {})
        attempts = [reactor.seconds()]
        for _ in range(4):
            reactor.advance(monitor.restart["missing"].getTime() - reactor.seconds())
            attempts.append(reactor.seconds())
        self.assertEqual(attempts, [0, 1, 3, 7, 15])
        failures = [event for event in events if "log_failure" in event]
        self.assertEqual(len(failures), 5)
        self.assertIsInstance(failures[0]["log_failure"].value, SpawnError)


class BackoffTests(SynchronousTestCase):
    """
    procmon's restart rules, exactly, on a fake clock.
    """

    def test_sequence(self) -> None:
        """
        Instant deaths restart after 1, 2, 4 s ... capped at
        C{maxRestartDelay}; a run of C{threshold} seconds or more restarts
        at once and the delay starts again from C{minRestartDelay}.
        """
        reactor = MemoryProcessReactor()
        monitor, _ = monitorOf(reactor)
        monitor.maxRestartDelay = 5
        monitor.addProcess("crash", ["crash"])
        monitor.startService()
        starts = []
        for _ in range(5):
            starts.append(reactor.seconds())
            reactor.transports[-1].exit(1)
            reactor.advance(monitor.restart["crash"].getTime() - reactor.seconds())
        self.assertEqual(starts, [0, 1, 3, 7, 12])
        reactor.advance(monitor.threshold)
        reactor.transports[-1].exit(0)
        self.assertEqual(monitor.restart["crash"].getTime(), reactor.seconds())
        self.assertEqual(monitor.delay["crash"], monitor.minRestartDelay)


class StopTests(SynchronousTestCase):
    """
    Stopping on a txspawn reactor: C{SIGTERM} to the group, C{SIGKILL} to
    the tree, and a C{stopService} that waits for every tree.
    """

    def setUp(self) -> None:
        self.reactor = MemoryProcessReactor()
        self.monitor, _ = monitorOf(self.reactor)
        self.monitor.addProcess("a", ["a"])
        self.monitor.startService()
        self.transport: FakeProcessTransport = self.reactor.transports[0]

    def test_stopProcessTerminates(self) -> None:
        """
        C{stopProcess} sends C{SIGTERM} to the child's process group;
        C{killTime} seconds later its cgroup is killed (by the transport's
        termination and by procmon's C{murder} call).
        """
        self.monitor.stopProcess("a")
        self.assertEqual(self.transport.state.groupSignals, [TERM])
        self.assertEqual(self.transport.state.signals, [])
        self.assertTrue(self.monitor.murder["a"].active())
        self.reactor.advance(self.monitor.killTime)
        self.assertEqual(self.transport.state.groupSignals, [TERM, KILL])
        self.assertEqual(
            sorted(self.transport.state.treeKills), ["killTree", "terminate"]
        )

    def test_stopServiceWaitsForTree(self) -> None:
        """
        C{stopService}'s L{Deferred} fires neither at the stop signal nor
        when the child exited while its cgroup still has processes, but
        once the tree ended; nothing is started again.
        """
        stopped = fired(self.monitor.stopService())
        self.assertEqual(self.transport.state.groupSignals, [TERM])
        self.assertEqual(stopped, [])
        self.transport.exit(0)
        self.assertEqual(stopped, [])
        self.transport.treeEnded(stats())
        self.assertEqual(stopped, [None])
        self.assertEqual(len(self.reactor.spawned), 1)
        self.assertEqual(self.monitor.protocols, {})

    def test_stopServiceNoCgroup(self) -> None:
        """
        A child without a cgroup (none could be had) is gone once it ended:
        members of its group that remained were killed before it was
        reaped.
        """
        reactor = MemoryProcessReactor()
        reactor.cgroupUnavailable = "no cgroup v2 here"
        monitor, _ = monitorOf(reactor)
        monitor.addProcess("a", ["a"])
        monitor.startService()
        [transport] = reactor.transports
        stopped = fired(monitor.stopService())
        transport.exit(0)
        self.assertEqual(transport.state.groupSignals, [TERM, KILL])
        self.assertEqual(stopped, [None])

    def test_stopServiceKillsLeftovers(self) -> None:
        """
        What an earlier run left in its cgroup (with C{killOnExit=False})
        is killed by C{stopService}, which waits for that tree too.
        """
        reactor = MemoryProcessReactor()
        monitor, _ = monitorOf(reactor, cgroup=Cgroup(killOnExit=False))
        monitor.addProcess("a", ["a"])
        monitor.startService()
        monitor.threshold = 0
        first = reactor.transports[0]
        first.exit(1)
        reactor.advance(0)
        second = reactor.transports[1]
        stopped = fired(monitor.stopService())
        self.assertEqual(first.state.treeKills, ["killTree"])
        second.exit(0)
        second.treeEnded(stats())
        self.assertEqual(stopped, [])
        first.treeEnded(stats())
        self.assertEqual(stopped, [None])

    def test_stopServiceIdle(self) -> None:
        """
        With no child alive (a restart pending), C{stopService} fires at
        once and cancels the restart.
        """
        self.transport.exit(1)
        self.transport.treeEnded(stats())
        pending = self.monitor.restart["a"]
        self.assertEqual(fired(self.monitor.stopService()), [None])
        self.assertFalse(pending.active())

    def test_restartAfterStop(self) -> None:
        """
        As with procmon, a process stopped while the service runs is
        started again once it exited.
        """
        self.reactor.advance(self.monitor.threshold)
        self.monitor.stopProcess("a")
        self.transport.exit(0)
        self.reactor.advance(0)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertFalse(self.monitor.murder)


class LoggingTests(SynchronousTestCase):
    """
    Child output, logged line by line under procmon's namespace.
    """

    def setUp(self) -> None:
        self.reactor = MemoryProcessReactor()
        self.monitor, self.events = monitorOf(self.reactor)
        self.monitor.addProcess("p", ["p"])
        self.monitor.startService()
        self.transport: FakeProcessTransport = self.reactor.transports[0]

    def lines(self) -> list[tuple[str, str, str]]:
        return [(e["tag"], e["stream"], e["line"]) for e in self.events]

    def test_lines(self) -> None:
        """
        Lines split across reads are logged whole, each with its stream;
        a partial line is logged when the child exits, and a complete
        output adds no empty line then (procmon logs one per stream).
        """
        self.transport.dataFromChild(1, b"one\ntw")
        self.transport.dataFromChild(2, b"err\n")
        self.transport.dataFromChild(1, b"o\nthr")
        self.transport.exit(0)
        self.assertEqual(
            self.lines(),
            [
                ("p", "stdout", "one"),
                ("p", "stderr", "err"),
                ("p", "stdout", "two"),
                ("p", "stdout", "thr"),
            ],
        )
        self.assertEqual(
            {e["log_namespace"] for e in self.events},
            {"twisted.runner.procmon.ProcessMonitor"},
        )

    def test_longLine(self) -> None:
        """
        A partial line that grows past C{maxLength} is logged in pieces of
        that size, the rest when it ends; a complete long line is logged
        whole.
        """
        protocol = self.monitor.protocols["p"]
        self.assertIsInstance(protocol, LoggingProtocol)
        size = protocol.output.maxLength
        self.transport.dataFromChild(1, b"x" * (2 * size + 1))
        self.assertEqual([len(line) for _, _, line in self.lines()], [size, size])
        self.transport.dataFromChild(1, b"\n" + b"y" * (size + 1) + b"\n")
        self.assertEqual(
            [len(line) for _, _, line in self.lines()], [size, size, 1, size + 1]
        )

    def test_invalidUTF8(self) -> None:
        """
        A line that is not UTF-8 is logged as its C{repr}.
        """
        self.transport.dataFromChild(1, b"\xff\n")
        self.assertEqual(self.lines(), [("p", "stdout", repr(b"\xff"))])


class PickleTests(SynchronousTestCase):
    """
    procmon's pickle state, and a monitor made from it.
    """

    def test_roundTrip(self) -> None:
        """
        A pickled monitor comes back with its processes (C{cwd} included),
        knobs and name, and no run.
        """
        reactor = MemoryProcessReactor()
        monitor, _ = monitorOf(reactor, cgroup=None)
        monitor.setName("pm")
        monitor.killTime = 2
        monitor.addProcess("p", ["p", "x"], uid=1, gid=2, env={"K": "v"}, cwd="/tmp")
        monitor.startService()
        copy = pickle.loads(pickle.dumps(monitor))
        self.assertEqual(
            [w["category"] for w in self.flushWarnings()],
            [DeprecationWarning] * 3,
        )
        self.assertEqual((copy.name, copy.killTime, copy.running), ("pm", 2, 0))
        self.assertEqual(copy.protocols, {})
        self.assertEqual(copy._processes, monitor._processes)
        self.assertIsNone(copy._cgroup)


#: The monitored program: it starts a grandchild that ignores SIGTERM (in a
#: session of its own unless argv[2] is "group"), reports the grandchild's
#: pid (to stdout, or to the FIFO argv[1]) and waits to be stopped.  The
#: grandchild lets go of the pipes, as a daemon does.
DAEMON = """\
import os, signal, sys
report, where = sys.argv[1], sys.argv[2]
if os.fork() == 0:
    if where == "session":
        os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    line = ("grandchild %d\\n" % os.getpid()).encode()
    if report == "-":
        os.write(1, line)
    else:
        fd = os.open(report, os.O_WRONLY)
        os.write(fd, line)
        os.close(fd)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
while True:
    signal.pause()
"""


def processStart(pid: int) -> tuple[str, int] | None:
    """
    The state letter and start time of process C{pid}, or C{None} if it
    does not exist.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def isAlive(pid: int, start: int) -> bool:
    """
    Whether the process C{pid} that started at C{start} runs (a zombie is
    gone: it only waits to be reaped).
    """
    now = processStart(pid)
    return now is not None and now[1] == start and now[0] != "Z"


def killIfAlive(pid: int, start: int) -> None:
    """
    Kill what a failed (or the contrast) test left running.
    """
    if isAlive(pid, start):
        os.kill(pid, signal.SIGKILL)


class ProcmonRealMixin(MixinBase):
    """
    Real children on a txspawn reactor.
    """

    def runUntilGrandchild(
        self, monitor: Any, where: str
    ) -> tuple[int, int, list[object]]:
        """
        Run C{monitor} on its reactor with L{DAEMON}; once the grandchild
        reported, stop the service, and the reactor when the service's
        stop fired.

        @return: The grandchild's pid and start time, and what the stop
            returned (C{None} from procmon, else what its Deferred fired
            with).
        """
        reactor = monitor._reactor
        grandchild: list[int] = []
        stopped: list[object] = []

        def observe(event: dict[str, Any]) -> None:
            line = event.get("line", "")
            if not line.startswith("grandchild "):
                return
            pid = int(line.split()[1])
            started = processStart(pid)
            assert started is not None
            grandchild.extend([pid, started[1]])
            self.addCleanup(killIfAlive, pid, started[1])
            result = monitor.stopService()
            if isinstance(result, Deferred):
                result.addBoth(stopped.append).addBoth(lambda _: reactor.stop())
            else:
                stopped.append(result)
                # procmon says nothing: wait for the child's own end.
                transport = monitor.protocols["daemon"].transport
                transport.whenEnded().addBoth(lambda _: reactor.stop())

        monitor.log = Logger(
            namespace=LOG_NAMESPACE, observer=cast(ILogObserver, observe)
        )
        monitor.addProcess("daemon", [sys.executable, "-c", DAEMON, "-", where])
        reactor.callWhenRunning(monitor.startService)
        self.runReactor(reactor)
        pid, start = grandchild
        return pid, start, stopped

    def test_setsidGrandchildGone(self) -> None:
        """
        A grandchild in a session of its own that ignores C{SIGTERM} is
        gone once C{stopService}'s L{Deferred} fired (its cgroup was
        killed).
        """
        monitor = ProcessMonitor(self.buildReactor())
        pid, start, stopped = self.runUntilGrandchild(monitor, "session")
        self.assertEqual(stopped, [None])
        self.assertFalse(isAlive(pid, start))

    def test_groupGrandchildGone(self) -> None:
        """
        Without a cgroup, a grandchild that stayed in the child's process
        group and ignores C{SIGTERM} is gone once C{stopService}'s
        L{Deferred} fired (the group was killed before its leader was
        reaped).
        """
        monitor = ProcessMonitor(self.buildReactor(), cgroup=None)
        pid, start, stopped = self.runUntilGrandchild(monitor, "group")
        self.assertEqual(stopped, [None])
        self.assertFalse(isAlive(pid, start))

    def test_procmonLeavesGrandchild(self) -> None:
        """
        The contrast: Twisted's procmon, on the same reactor, returns
        C{None} from C{stopService} and the grandchild outlives its
        child's end.
        """
        monitor = TwistedProcessMonitor(self.buildReactor())
        pid, start, stopped = self.runUntilGrandchild(monitor, "session")
        self.assertEqual(stopped, [None])
        self.assertTrue(isAlive(pid, start))

    def test_restarts(self) -> None:
        """
        A real child that exits at once is started again after the
        backoff delays, until the service is stopped.
        """
        reactor = self.buildReactor()
        monitor = ProcessMonitor(reactor)
        monitor.minRestartDelay = 0.01
        runs: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            runs.append(event["line"])
            if len(runs) == 3:
                monitor.stopService().addBoth(lambda _: reactor.stop())

        monitor.log = Logger(
            namespace=LOG_NAMESPACE, observer=cast(ILogObserver, observe)
        )
        monitor.addProcess("crash", [sys.executable, "-c", "print('run'); exit(3)"])
        reactor.callWhenRunning(monitor.startService)
        self.runReactor(reactor)
        self.assertEqual(runs, ["run"] * 3)
        self.assertEqual(monitor.delay["crash"], 0.08)


globals().update(makeTestCaseClasses(ProcmonRealMixin))


#: A procmon user's .tac, with the import line to fill in.
TAC = """\
import sys
from twisted.application import service
{importLine}

application = service.Application("procmon-user")
monitor = ProcessMonitor()
monitor.addProcess("daemon", [sys.executable, "-c", {daemon!r}, {fifo!r}, "session"])
monitor.setServiceParent(application)
"""


#: twistd in the foreground, no pid file, a log file, on txspawn's reactor.
TWISTD_OPTIONS = ["--reactor=txspawn", "-n", "--pidfile=", "-l", "twistd.log", "-y"]


class TacMixin(MixinBase):
    """
    A procmon user's C{.tac} under C{twistd --reactor=txspawn}, stopped
    with C{SIGTERM}.
    """

    def runTac(self, importLine: str) -> tuple[int, int, int]:
        """
        Run the C{.tac} with C{importLine} until its grandchild reported
        its pid, then C{SIGTERM} C{twistd} and wait for its exit.

        @return: twistd's exit status, the grandchild's pid and its start
            time.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        fifo = os.path.join(directory, "report")
        os.mkfifo(fifo)
        with open(os.path.join(directory, "app.tac"), "w") as f:
            f.write(TAC.format(importLine=importLine, daemon=DAEMON, fifo=fifo))
        env = dict(
            os.environ, TXSPAWN_ENGINE=self.engineName, TXSPAWN_MONITOR=self.monitorName
        )
        twistd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
        reportFD = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reportFD)
        outputPath = os.path.join(directory, "twistd.out")
        output = open(outputPath, "wb")
        self.addCleanup(output.close)
        process = subprocess.Popen(
            [*twistd, *TWISTD_OPTIONS, "app.tac"],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        exited = os.pidfd_open(process.pid)
        self.addCleanup(os.close, exited)
        # The report, or twistd's end if it never comes; 60 s only so that
        # a broken run fails instead of hanging.
        ready, _, _ = select.select([reportFD, exited], [], [], 60)
        if reportFD not in ready:
            process.kill()
            process.wait()
            said = []
            for name in ("twistd.out", "twistd.log"):
                path = os.path.join(directory, name)
                if os.path.exists(path):
                    with open(path) as f:
                        said.append(f"{name}:\n{f.read()}")
            self.fail("no grandchild reported; " + "\n".join(said))
        pid = int(os.read(reportFD, 100).split()[1])
        started = processStart(pid)
        assert started is not None
        self.addCleanup(killIfAlive, pid, started[1])
        process.send_signal(signal.SIGTERM)
        status = process.wait(60)
        return status, pid, started[1]

    def test_oneImportSwitch(self) -> None:
        """
        With txspawn's C{ProcessMonitor} imported in procmon's place,
        C{twistd} stops on C{SIGTERM} (and exits by it, as twistd does)
        and the C{setsid} grandchild that ignores C{SIGTERM} is gone.
        """
        status, pid, start = self.runTac(
            "from txspawn.supervise.procmon import ProcessMonitor"
        )
        self.assertEqual(status, -signal.SIGTERM)
        self.assertFalse(isAlive(pid, start))

    def test_procmonProbe(self) -> None:
        """
        The contrast, the issue's probe: with Twisted's procmon the
        grandchild outlives C{twistd}.
        """
        status, pid, start = self.runTac(
            "from twisted.runner.procmon import ProcessMonitor"
        )
        self.assertEqual(status, -signal.SIGTERM)
        self.assertTrue(isAlive(pid, start))


globals().update(makeTestCaseClasses(TacMixin))
