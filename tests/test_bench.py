# -*- test-case-name: tests.test_bench -*-
"""
Tests for the benchmark machinery in L{txspawn._bench}, on tiny sizes.

These prove that the harness runs every kind of task in every column and
that the report prints the ratios; they assert nothing about speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import attrs
from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouptransportutil import cgroupMountPath
from tests.test_engines import C_UNAVAILABLE
from txspawn._bench._cgroups import (
    CGROUP_SCENARIOS,
    GOAL_US,
    benchParent,
    removeTree,
)
from txspawn._bench._cgroups import SUITE as CGROUP_SUITE
from txspawn._bench._creference import buildReference, referenceSource
from txspawn._bench._driver import (
    BenchOptions,
    BenchRun,
    ImplRun,
    ScenarioRun,
    WorkerError,
    runBench,
)
from txspawn._bench._namespaces import NAMESPACE_SCENARIOS, SUITE
from txspawn._bench._pairs import pairResults
from txspawn._bench._pyworker import _ballast, makeReactor
from txspawn._bench._report import (
    formatReport,
    ratio,
    ratioInterval,
    repetitionRatios,
    toJSON,
)
from txspawn._bench._scenarios import (
    FULL,
    QUICK,
    SCENARIOS,
    Params,
    Setup,
    Task,
    defaultScenarios,
    scenarioNamed,
    selectScenarios,
)

__all__ = [
    "CReferenceTests",
    "CgroupSuiteTests",
    "EndToEndTests",
    "NamespaceSuiteTests",
    "PairedRowsTests",
    "ReportTests",
    "ScenarioTests",
]

#: The smallest run that still exercises every code path.
TINY = Params(
    mode="tiny",
    reps=1,
    idle=2,
    spawnCount=2,
    idleSpawnCount=2,
    exitCount=2,
    exitDelayUs=2000,
    pipeMiB=2,
    ballastMiB=4,
)

_HAVE_CC = shutil.which(os.environ.get("CC") or "cc") is not None


def _children() -> set[int]:
    """
    @return: The pids of this process's live (or zombie) children.
    """
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            found.add(int(entry))
    return found


class ScenarioTests(SynchronousTestCase):
    """
    The scenario registry.
    """

    def test_namesUnique(self) -> None:
        """
        Every scenario has its own name.
        """
        names = [s.name for s in SCENARIOS]
        self.assertEqual(len(names), len(set(names)))

    def test_defaultSet(self) -> None:
        """
        The default set: spawn, exit and pipe, with and without idle
        children, and the supervisor against its anchors.
        """
        self.assertEqual(
            [s.name for s in defaultScenarios()],
            ["spawn", "spawn-idle", "exit", "exit-idle", "pipe", "supervise"],
        )

    def test_unknownName(self) -> None:
        """
        L{scenarioNamed} rejects an unknown name, naming it and the known
        ones.
        """
        with self.assertRaises(ValueError) as raised:
            scenarioNamed("fork-bomb")
        self.assertIn("'fork-bomb'", str(raised.exception))
        self.assertIn("spawn-pty", str(raised.exception))

    def test_fullSizes(self) -> None:
        """
        The full run uses the full sizes: 4000 idle children, 512 MiB, a
        2 GiB parent; the quick run is smaller but runs every scenario.
        """
        self.assertEqual(FULL.idle, 4000)
        self.assertEqual(FULL.pipeMiB, 512)
        self.assertEqual(FULL.ballastMiB, 2048)
        self.assertLess(QUICK.idle, FULL.idle)
        self.assertLess(QUICK.reps, FULL.reps)

    def test_plans(self) -> None:
        """
        Each scenario plans a setup and a task from the parameters: the idle
        ones ask for C{idle} children, the 2 GiB ones for the ballast, the
        option variants pass their C{spawnProcess} keywords.
        """
        setup, task = scenarioNamed("spawn-idle").plan(TINY)
        self.assertEqual(setup, Setup(idle=2))
        self.assertEqual((task.kind, task.count), ("spawn", 2))
        setup, task = scenarioNamed("spawn-pty-2g").plan(TINY)
        self.assertEqual(setup, Setup(ballastMiB=4))
        self.assertEqual(dict(task.options), {"usePTY": True})
        setup, task = scenarioNamed("exit-idle").plan(TINY)
        self.assertEqual((task.kind, task.delayUs), ("exit", 2000))
        setup, task = scenarioNamed("pipe").plan(TINY)
        self.assertEqual((task.kind, task.count, setup), ("pipe", 2, Setup()))

    def test_warmupSmaller(self) -> None:
        """
        A warm-up batch is the same task, never bigger.
        """
        task = Task("spawn", 300, options={"path": "/"})
        warm = task.warmup()
        self.assertEqual(warm.kind, "spawn")
        self.assertEqual(dict(warm.options), {"path": "/"})
        self.assertLessEqual(warm.count, task.count)
        self.assertEqual(Task("exit", 1).warmup().count, 1)

    def test_ballastPrivateAndResident(self) -> None:
        """
        The big-parent ballast is a private mapping (fork() must copy its
        page tables, as for a real heap; a shared one would be free to
        fork) and every page of it is resident.
        """
        import ctypes

        memory = _ballast(4)
        assert memory is not None
        self.addCleanup(memory.close)
        view = ctypes.c_char.from_buffer(memory)
        address = ctypes.addressof(view)
        del view
        with open("/proc/self/smaps") as f:
            smaps = f.read().split("\n")
        for n, line in enumerate(smaps):
            span, _, rest = line.partition(" ")
            if "-" not in span or not rest:
                continue
            try:
                low, high = (int(x, 16) for x in span.split("-"))
            except ValueError:
                continue
            if low <= address < high:
                self.assertEqual(rest.split()[0][3], "p", line)
                rss = next(x for x in smaps[n + 1 :] if x.startswith("Rss:"))
                self.assertGreaterEqual(int(rss.split()[1]), 4 * 1024)
                break
        else:
            self.fail("ballast mapping not found in /proc/self/smaps")
        self.assertIsNone(_ballast(0))

    def test_unknownImplementation(self) -> None:
        """
        The worker's adapter rejects an unknown implementation by name.
        """
        with self.assertRaises(ValueError) as raised:
            makeReactor("asyncio", None, None)
        self.assertIn("'asyncio'", str(raised.exception))

    def test_taskArgs(self) -> None:
        """
        A task's argv travels to the worker and survives its warm-up copy.
        """
        task = Task(
            "spawn", 9, "/usr/bin/unshare", args=["unshare", "-Ur", "/bin/true"]
        )
        self.assertEqual(task.toJSON()["args"], ["unshare", "-Ur", "/bin/true"])
        self.assertEqual(task.warmup().args, ("unshare", "-Ur", "/bin/true"))
        self.assertIsNone(Task("spawn", 1).toJSON()["args"])


class NamespaceSuiteTests(SynchronousTestCase):
    """
    The namespace rows: one suite, txspawn column only, paired with the
    plain row and with util-linux C{unshare}.
    """

    def test_suite(self) -> None:
        """
        Every namespace row is in the suite, runs in the txspawn column
        only and is not in the default set; C{--scenario namespaces}
        selects exactly them.
        """
        for s in NAMESPACE_SCENARIOS:
            self.assertEqual(
                (s.suite, s.columns, s.default), (SUITE, ("txspawn",), False)
            )
            self.assertTrue(s.runs("txspawn"))
            self.assertFalse(s.runs("twisted") or s.runs("c"))
        self.assertEqual(selectScenarios([SUITE]), list(NAMESPACE_SCENARIOS))
        self.assertTrue(all(s.runs("c") for s in defaultScenarios()))

    def test_pairsBringTheirRows(self) -> None:
        """
        Selecting a row brings the rows it is paired with (and theirs), in
        report order; C{"all"} selects every row.
        """
        self.assertEqual(
            [s.name for s in selectScenarios(["ns-user-2g", "spawn"])],
            ["spawn", "ns-plain", "ns-user", "ns-unshare-user", "ns-user-2g"],
        )
        self.assertEqual(selectScenarios(["all"]), list(SCENARIOS))
        self.assertRaises(ValueError, selectScenarios, ["ns-nope"])

    def test_goals(self) -> None:
        """
        The goals: a self-map at most 1.3x a plain spawn, six namespaces
        with /proc 2.5x, with net and lo 5x, every namespace row at most
        1.0x its unshare command, and a 2 GiB parent at most 1.5x a small
        one; every pair names a row of the suite.
        """
        goals = {(s.name, p.over): p.goal for s in NAMESPACE_SCENARIOS for p in s.pairs}
        self.assertEqual(
            goals,
            {
                ("ns-user", "ns-plain"): 1.3,
                ("ns-user", "ns-unshare-user"): 1.0,
                ("ns-isolated", "ns-plain"): 2.5,
                ("ns-isolated", "ns-unshare-pid"): 1.0,
                ("ns-net", "ns-plain"): 5.0,
                ("ns-net", "ns-unshare-net"): 1.0,
                ("ns-idmap", "ns-plain"): None,
                ("ns-idmap", "ns-unshare-user"): 1.0,
                ("ns-user-2g", "ns-user"): 1.5,
                ("ns-idmap-2g", "ns-idmap"): 1.5,
            },
        )

    def test_plans(self) -> None:
        """
        The txspawn rows ask for the namespaces the row says, as keywords
        of the public L{Namespaces} (what the worker builds); the
        parent-written maps are two ranges starting with our own id; the
        2 GiB rows hold the ballast; the anchors run util-linux C{unshare}
        with the matching options.
        """
        from txspawn.options import Namespaces

        def plan(name: str) -> tuple[Setup, Task]:
            return scenarioNamed(name).plan(TINY)

        built = {}
        for s in NAMESPACE_SCENARIOS:
            _, task = s.plan(TINY)
            self.assertEqual(task.kind, "spawn")
            if "namespaces" in task.options:
                self.assertEqual(task.executable, "/bin/true")
                options = task.options["namespaces"]
                assert isinstance(options, dict)
                built[s.name] = Namespaces(**options)
        self.assertEqual(
            sorted(built),
            [
                "ns-idmap",
                "ns-idmap-2g",
                "ns-isolated",
                "ns-net",
                "ns-user",
                "ns-user-2g",
            ],
        )
        self.assertEqual(built["ns-user"], Namespaces(user=True))
        isolated = built["ns-isolated"]
        self.assertEqual(
            (isolated.pid, isolated.mount, isolated.uts, isolated.ipc),
            (True, True, True, True),
        )
        self.assertTrue(isolated.cgroup and isolated.mountProc and not isolated.net)
        net = built["ns-net"]
        self.assertTrue(net.net and net.loopback and net.mountProc and net.cgroup)
        maps = built["ns-idmap"].uidMap
        assert maps is not None
        self.assertEqual(len(maps), 2)
        self.assertEqual((maps[0].inside, maps[0].outside), (0, os.geteuid()))
        self.assertEqual(plan("ns-plain")[1].options, {})
        self.assertEqual(plan("ns-user-2g")[0], Setup(ballastMiB=TINY.ballastMiB))
        self.assertEqual(plan("ns-user")[0], Setup())
        _, user = plan("ns-unshare-user")
        self.assertEqual(user.args, ("unshare", "-Ur", "/bin/true"))
        self.assertEqual(os.path.basename(user.executable), "unshare")
        _, pid = plan("ns-unshare-pid")
        self.assertEqual(pid.args, ("unshare", "-Urpf", "--mount-proc", "/bin/true"))
        _, anchor = plan("ns-unshare-net")
        assert anchor.args is not None
        self.assertEqual(anchor.args[:3], ("unshare", "-Urnpf", "--mount-proc"))
        if shutil.which("ip", path=f"{os.defpath}:/usr/sbin:/sbin"):
            self.assertIn("link set lo up; true", anchor.args[-1])


def _benchParentUnavailable() -> str | None:
    """
    Why the bench cannot make its own parent cgroup here, or C{None}.
    """
    mount = cgroupMountPath()
    if mount is None:
        return "no cgroup v2 hierarchy is mounted"
    if not os.access(mount, os.W_OK):
        return f"{mount} is not writable by this user"
    return None


class CgroupSuiteTests(SynchronousTestCase):
    """
    The cgroup rows: one suite, txspawn column only, each spawn with a leaf
    of its own paired with a plain spawn on the same engine, and the parent
    cgroup the bench makes for them.
    """

    def test_suite(self) -> None:
        """
        Every cgroup row is in the suite, runs in the txspawn column only,
        is not in the default set, settles (its sample ends after the
        spawn's last callback) and names its engine: a C and a Python
        pair; C{--scenario cgroup} selects exactly them.
        """
        engines = []
        for s in CGROUP_SCENARIOS:
            self.assertEqual(
                (s.suite, s.columns, s.default), (CGROUP_SUITE, ("txspawn",), False)
            )
            setup, task = s.plan(TINY)
            self.assertTrue(task.settle)
            self.assertEqual((task.kind, task.executable), ("spawn", "/bin/true"))
            self.assertEqual((setup.idle, setup.ballastMiB), (0, 0))
            engines.append(setup.engine)
        self.assertEqual(engines, ["c", "c", "python", "python", "python"])
        self.assertEqual(selectScenarios([CGROUP_SUITE]), list(CGROUP_SCENARIOS))
        self.assertEqual(
            [s.name for s in selectScenarios(["cg-leaf-py"])],
            ["cg-plain-py", "cg-fork-py", "cg-leaf-py"],
        )

    def test_goals(self) -> None:
        """
        Each leaf row is compared with the plain row of its engine: at most
        150 us more at the median, and a ratio without a goal; the Python
        leaf row is also compared, without a goal, with a spawn that takes
        the same fork path without a cgroup.
        """
        self.assertEqual(GOAL_US, 150.0)
        goals = {
            (s.name, p.over): (p.goal, p.differenceGoal)
            for s in CGROUP_SCENARIOS
            for p in s.pairs
        }
        self.assertEqual(
            goals,
            {
                ("cg-leaf-c", "cg-plain-c"): (None, 150.0),
                ("cg-leaf-py", "cg-plain-py"): (None, 150.0),
                ("cg-leaf-py", "cg-fork-py"): (None, None),
            },
        )

    def test_plans(self) -> None:
        """
        The leaf rows ask for a cgroup with the defaults of the public
        L{Cgroup} (what the worker builds, with the bench's parent); the
        plain rows ask for nothing; the engine travels in the setup, and
        the workers of the two engines are told apart in the log.
        """
        from txspawn.options import Cgroup

        for s in CGROUP_SCENARIOS:
            _, task = s.plan(TINY)
            if s.name.startswith("cg-leaf"):
                options = task.options["cgroup"]
                assert isinstance(options, dict)
                self.assertEqual(Cgroup(**options), Cgroup())
            elif s.name == "cg-fork-py":
                self.assertEqual(dict(task.options), {"path": "/"})
            else:
                self.assertEqual(dict(task.options), {})
            self.assertTrue(task.toJSON()["settle"])
            self.assertTrue(task.warmup().settle)
        self.assertEqual(Setup(engine="c").describe(), "empty parent, c engine")
        self.assertNotEqual(Setup(engine="c"), Setup(engine="python"))

    def test_benchParent(self) -> None:
        """
        L{benchParent} makes C{txspawn-bench-<pid>} at the top of the cgroup
        v2 mount and removes it afterwards, with whatever was left in it:
        a nested cgroup holding a live process is killed and removed too.
        """
        reason = _benchParentUnavailable()
        if reason is not None:
            raise self.skipTest(reason)
        mount = cgroupMountPath()
        assert mount is not None
        lines: list[str] = []
        with benchParent(lines.append) as parent:
            self.assertEqual(
                parent, os.path.join(mount, f"txspawn-bench-{os.getpid()}")
            )
            assert parent is not None
            self.assertTrue(os.path.isfile(os.path.join(parent, "cgroup.procs")))
            leaf = os.path.join(parent, "left", "behind")
            os.makedirs(leaf)
            child = subprocess.Popen(["sleep", "60"])
            self.addCleanup(child.wait)
            with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
                f.write(str(child.pid))
        self.assertFalse(os.path.exists(parent))
        self.assertEqual(child.wait(), -9)
        self.assertIn(f"leaves in {parent}", lines[0])
        removeTree(parent)  # already gone: nothing to do

    def test_staleParentRemoved(self) -> None:
        """
        A parent left by a run whose driver died is removed (with what is
        in it) by the next run; one whose driver is alive is left alone.
        """
        reason = _benchParentUnavailable()
        if reason is not None:
            raise self.skipTest(reason)
        mount = cgroupMountPath()
        assert mount is not None
        dead = subprocess.Popen([sys.executable, "-c", ""])
        dead.wait()
        stale = os.path.join(mount, f"txspawn-bench-{dead.pid}")
        alive = os.path.join(mount, f"txspawn-bench-{os.getppid()}")
        os.makedirs(os.path.join(stale, "leaf"))
        os.mkdir(alive)
        self.addCleanup(removeTree, alive)
        self.addCleanup(removeTree, stale)
        lines: list[str] = []
        with benchParent(lines.append):
            pass
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.isdir(alive))
        self.assertIn(f"removed txspawn-bench-{dead.pid}", "\n".join(lines))

    def test_noParent(self) -> None:
        """
        Where the parent cannot be made, L{benchParent} gives C{None} and
        says why (the leaves then go where txspawn finds a parent itself).
        """
        mount = cgroupMountPath()
        if mount is None:
            raise self.skipTest("no cgroup v2 hierarchy is mounted")
        # An existing path: mkdir fails with EEXIST, as for any refusal.
        path = os.path.join(mount, f"txspawn-bench-{os.getpid()}")
        if _benchParentUnavailable() is not None:
            lines: list[str] = []
            with benchParent(lines.append) as parent:
                self.assertIsNone(parent)
            self.assertIn("txspawn finds a parent itself", lines[0])
            return
        os.mkdir(path)
        self.addCleanup(os.rmdir, path)
        lines = []
        with benchParent(lines.append) as parent:
            self.assertIsNone(parent)
        self.assertIn(f"cannot make {path}", lines[0])
        self.assertIn("txspawn finds a parent itself", lines[0])
        self.assertTrue(os.path.isdir(path))  # not removed: it was not ours


class CReferenceTests(SynchronousTestCase):
    """
    Building the C reference loop.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def test_shipped(self) -> None:
        """
        The C source ships inside the package.
        """
        self.assertIn("posix_spawn", referenceSource())

    def test_noCompiler(self) -> None:
        """
        Without a compiler, the build reports why and produces nothing.
        """
        built = buildReference(self.directory, "/nonexistent/cc")
        self.assertIsNone(built.binary)
        self.assertIn("no C compiler", built.reason)

    def test_compilerFails(self) -> None:
        """
        A compiler that fails is reported with its command and exit status.
        """
        built = buildReference(self.directory, "false")
        self.assertIsNone(built.binary)
        self.assertIn("exited 1", built.reason)

    def test_stamp(self) -> None:
        """
        The compiled reference's C{stamp} mode writes a non-zero 8-byte
        monotonic time and exits 0.
        """
        if not _HAVE_CC:
            raise self.skipTest("no C compiler (cc or $CC) on PATH")
        built = buildReference(self.directory)
        assert built.binary is not None, built.reason
        stampFile = os.path.join(self.directory, "stamp")
        with open(stampFile, "wb") as f:
            f.write(b"\0" * 8)
        subprocess.run([built.binary, "stamp", stampFile, "0"], check=True)
        with open(stampFile, "rb") as f:
            self.assertNotEqual(f.read(), b"\0" * 8)


def _fakeRun(values: dict[str, list[float]], name: str = "spawn") -> ScenarioRun:
    scenario = scenarioNamed(name)
    setup, task = scenario.plan(TINY)
    impls = {impl: ImplRun(values=list(v)) for impl, v in values.items()}
    return ScenarioRun(scenario, setup, task, impls)


class ReportTests(SynchronousTestCase):
    """
    Medians, ratios and the table, from made-up results.
    """

    def _bench(self, runs: list[ScenarioRun]) -> BenchRun:
        from txspawn._bench._creference import CReference

        options = BenchOptions(TINY, [r.scenario for r in runs])
        env = {
            "kernel": "Linux",
            "cpus": 2,
            "python": "3",
            "twisted": "26",
            "txspawn": "0",
        }
        return BenchRun(options, CReference("/x", "cc -O2"), runs, env, 1.0)

    def test_pairedRatio(self) -> None:
        """
        A ratio is the median of the per-repetition ratios, pairing the
        columns' values repetition by repetition; a column that stopped
        early (its values end at its failure) pairs only the repetitions it
        completed.
        """
        run = _fakeRun(
            {"txspawn": [110, 150, 900], "twisted": [300], "c": [100, 140, 600]}
        )
        self.assertEqual(
            repetitionRatios(run, "txspawn", "c"), [110 / 100, 150 / 140, 900 / 600]
        )
        self.assertEqual(ratio(run, "txspawn", "c"), 110 / 100)
        # The ratio of the medians would be 150 / 140: it would compare
        # batches from different repetitions.
        self.assertNotEqual(ratio(run, "txspawn", "c"), 150 / 140)
        self.assertEqual(repetitionRatios(run, "twisted", "txspawn"), [300 / 110])
        self.assertEqual(ratio(run, "twisted", "txspawn"), 300 / 110)

    def test_ratioInterval(self) -> None:
        """
        The interval brackets the paired ratio, is reproducible (seeded),
        narrows to the value itself for a single repetition, and is
        L{None} without ratios.
        """
        run = _fakeRun(
            {"txspawn": [110, 150, 900, 130, 125], "c": [100, 140, 600, 100, 110]}
        )
        interval = ratioInterval(run, "txspawn", "c")
        assert interval is not None
        low, high = interval
        paired = ratio(run, "txspawn", "c")
        assert paired is not None
        self.assertLessEqual(low, paired)
        self.assertLessEqual(paired, high)
        ratios = repetitionRatios(run, "txspawn", "c")
        self.assertGreaterEqual(low, min(ratios))
        self.assertLessEqual(high, max(ratios))
        self.assertLess(low, high)
        self.assertEqual(ratioInterval(run, "txspawn", "c"), interval)
        single = _fakeRun({"txspawn": [120], "c": [100]})
        self.assertEqual(ratioInterval(single, "txspawn", "c"), (1.2, 1.2))
        self.assertIsNone(ratioInterval(single, "twisted", "c"))

    def test_missingColumn(self) -> None:
        """
        A column without values gives C{None} ratios and C{n/a} cells, and
        its error is printed.
        """
        run = _fakeRun({"txspawn": [], "twisted": [300], "c": [100]})
        run.impls["txspawn"].error = "engine exploded"
        self.assertIsNone(ratio(run, "txspawn", "c"))
        report = formatReport(self._bench([run]))
        self.assertIn("n/a", report)
        self.assertIn("spawn / txspawn: engine exploded", report)

    def test_table(self) -> None:
        """
        The table has the three ratio columns and checks each row's goal
        for latency (at most) and throughput (at least).
        """
        runs = [
            _fakeRun({"txspawn": [120], "twisted": [360], "c": [100]}, "spawn-idle"),
            _fakeRun({"txspawn": [700], "twisted": [200], "c": [1000]}, "pipe"),
            _fakeRun({"txspawn": [200], "twisted": [2000], "c": [100]}, "exit"),
        ]
        report = formatReport(self._bench(runs))
        header = next(line for line in report.splitlines() if "txspawn/C" in line)
        for column in ("txspawn/C", "twisted/C", "txspawn/twisted"):
            self.assertIn(column, header)
        idle = next(line for line in report.splitlines() if line.startswith("spawn-i"))
        self.assertIn("1.20", idle)
        self.assertIn("3.60", idle)
        self.assertIn("0.33", idle)
        self.assertIn("<=1.50 ok", idle)
        pipe = next(line for line in report.splitlines() if line.startswith("pipe "))
        self.assertIn(">=0.80 MISS", pipe)
        exitRow = next(line for line in report.splitlines() if line.startswith("exit "))
        self.assertIn("<=1.30 MISS", exitRow)

    def test_idlePenalty(self) -> None:
        """
        With both C{spawn} and C{spawn-idle} in the run, the report gives
        each column's own idle penalty, and checks txspawn's against its
        goal (at most 1.3x its own cost with no idle children).
        """
        runs = [
            _fakeRun({"txspawn": [100], "twisted": [100], "c": [100]}, "spawn"),
            _fakeRun({"txspawn": [130], "twisted": [900], "c": [250]}, "spawn-idle"),
        ]
        report = formatReport(self._bench(runs))
        self.assertIn("txspawn 1.30 ok; twisted 9.00; C 2.50", report)
        self.assertIn("txspawn's goal: <=1.30", " ".join(report.split()))
        self.assertNotIn("\nmissed goals:\n", report)
        runs[1] = _fakeRun(
            {"txspawn": [140], "twisted": [900], "c": [250]}, "spawn-idle"
        )
        report = formatReport(self._bench(runs))
        self.assertIn("txspawn 1.40 MISS", report)
        missed = report.split("\nmissed goals:\n", 1)[1]
        self.assertIn("  idle penalty: txspawn 1.40, goal <=1.30.", missed)
        words = " ".join(missed.split())
        self.assertIn("It measures how much slower a txspawn spawn gets", words)
        self.assertIn("The goal: a spawn should cost about the same", words)
        self.assertIn("not paired", words)

    def test_missedGoalExplained(self) -> None:
        """
        Under the table, every row that misses its goal says what it
        measures, why txspawn has that goal and whether the run can tell (its
        ratio's interval includes the goal or not); rows that meet theirs
        are not listed.
        """
        runs = [
            _fakeRun(
                {"txspawn": [125, 150, 200], "twisted": [9, 9, 9], "c": [100] * 3},
                "exit",
            ),
            _fakeRun(
                {"txspawn": [140, 150, 160], "twisted": [9, 9, 9], "c": [100] * 3},
                "exit-idle",
            ),
            _fakeRun({"txspawn": [900], "twisted": [9], "c": [1000]}, "pipe"),
        ]
        report = formatReport(self._bench(runs))
        self.assertIn("\nmissed goals:\n", report)
        missed = report.split("\nmissed goals:\n", 1)[1]
        for run in runs[:2]:
            s = run.scenario
            self.assertIn(f"  {s.name}: txspawn/C 1.50, goal <=1.30.", missed)
            self.assertIn(" ".join(s.measures.split()[:5]), " ".join(missed.split()))
            self.assertIn(" ".join(s.why.split()[:5]), " ".join(missed.split()))
        self.assertNotIn("pipe:", missed)
        exitPart, idlePart = missed.split("  exit-idle:", 1)
        self.assertIn("includes the goal: this run cannot tell", exitPart)
        self.assertIn("all of it beyond the goal", idlePart)

    def test_plainWords(self) -> None:
        """
        The report, with every scenario in it and goals both met and
        missed, names no issue or issue item.
        """
        from tests.test_cli import assertNoInternalLabels

        runs = [
            _fakeRun({"txspawn": [130 + n], "twisted": [300], "c": [100]}, s.name)
            for n, s in enumerate(SCENARIOS)
        ]
        report = formatReport(self._bench(runs))
        self.assertIn("MISS", report)
        self.assertIn(" ok", report)
        assertNoInternalLabels(self, report)

    def test_json(self) -> None:
        """
        The JSON document carries the parameters, every value and every
        ratio, and is serialisable.
        """
        run = _fakeRun({"txspawn": [120], "twisted": [360], "c": [100]})
        document = json.loads(json.dumps(toJSON(self._bench([run]))))
        self.assertEqual(document["params"]["reps"], 1)
        row = document["scenarios"][0]
        self.assertEqual(row["implementations"]["c"]["values"], [100])
        self.assertAlmostEqual(row["ratios"]["txspawn/c"], 1.2)
        self.assertEqual(row["repetitionRatios"]["txspawn/c"], [1.2])
        self.assertEqual(row["ratioIntervals90"]["txspawn/c"], [1.2, 1.2])
        self.assertEqual(row["measures"], run.scenario.measures)
        self.assertEqual(row["why"], run.scenario.why)
        self.assertIs(row["missed"], False)


class PairedRowsTests(SynchronousTestCase):
    """
    Ratios between rows of a suite, from made-up results.
    """

    def _bench(self, values: dict[str, list[float]], *others: ScenarioRun) -> BenchRun:
        runs = [_fakeRun({"txspawn": v}, name) for name, v in values.items()]
        return ReportTests._bench(self, [*others, *runs])  # type: ignore[arg-type]

    def test_paired(self) -> None:
        """
        A pair's ratio is the median of the per-repetition ratios of the
        two rows' batch medians in the txspawn column; a pair whose other
        row is not in the run is left out.
        """
        bench = self._bench(
            {
                "ns-plain": [100, 200, 100],
                "ns-user": [120, 220, 400],
                "ns-user-2g": [130],
            }
        )
        results = pairResults(bench)
        self.assertEqual(
            [(r.run.scenario.name, r.pair.over) for r in results],
            [("ns-user", "ns-plain"), ("ns-user-2g", "ns-user")],
        )
        first, second = results
        self.assertEqual(first.ratios, (1.2, 1.1, 4.0))
        self.assertEqual(first.value, 1.2)
        self.assertFalse(first.missed)
        self.assertEqual(second.ratios, (130 / 120,))

    def test_table(self) -> None:
        """
        The report has a paired-rows table: each pair with its ratio, its
        interval and its goal met or missed; the columns a row does not run
        in are C{-} in the main table; a missed pair is explained under
        'missed goals' with what it compares, why the goal and whether the
        run can tell.
        """
        bench = self._bench(
            {
                "ns-plain": [100, 100, 100],
                "ns-user": [110, 120, 115],
                "ns-net": [600, 700, 650],
                "ns-unshare-user": [300, 310, 320],
            },
            _fakeRun({"txspawn": [90], "twisted": [300], "c": [80]}),
        )
        report = formatReport(bench)
        self.assertIn("\npaired rows:", report)
        table = report.split("\npaired rows:", 1)[1]
        user = next(line for line in table.splitlines() if "ns-user  " in line)
        self.assertRegex(user, r"ns-user +ns-plain +1\.15 +1\.10\.\.1\.20 +<=1\.30 ok")
        unshare = next(line for line in table.splitlines() if "ns-unshare-user" in line)
        self.assertIn("<=1.00 ok", unshare)
        net = next(
            line for line in table.splitlines() if line.strip().startswith("ns-net")
        )
        self.assertIn("6.50", net)
        self.assertIn("<=5.00 MISS", net)
        plainRow = next(
            line for line in report.splitlines() if line.startswith("ns-plain ")
        )
        self.assertRegex(plainRow, r"ns-plain +us +100 +- +-")
        missed = " ".join(report.split("\nmissed goals:\n", 1)[1].split())
        self.assertIn("ns-net over ns-plain: 6.50, goal <=5.00.", missed)
        self.assertIn("with the row ns-plain", missed)
        self.assertIn("The goal: with a network namespace too", missed)
        self.assertIn("is all beyond the goal", missed)
        self.assertNotIn("ns-user over", missed)

    def test_difference(self) -> None:
        """
        A pair with a difference goal compares the rows' batch medians
        repetition by repetition by subtraction too: the table shows the
        median difference, its interval and the goal met or missed; a
        missed one is explained under 'missed goals'.
        """
        bench = self._bench(
            {
                "cg-plain-c": [300, 320, 310],
                "cg-leaf-c": [400, 520, 380],
                "cg-plain-py": [500, 500],
                "cg-leaf-py": [600, 610],
            }
        )
        results = {r.run.scenario.name: r for r in pairResults(bench)}
        c = results["cg-leaf-c"]
        self.assertEqual(c.differences, (100, 200, 70))
        self.assertEqual(c.difference, 100)
        self.assertFalse(c.missed)
        py = results["cg-leaf-py"]
        self.assertEqual(py.difference, 105)
        report = formatReport(bench)
        table = report.split("\npaired rows:", 1)[1]
        leaf = next(line for line in table.splitlines() if "cg-leaf-c " in line)
        self.assertRegex(
            leaf, r"cg-leaf-c +cg-plain-c +1\.\d\d .* - +\+100 us .* <=150 ok"
        )
        self.assertNotIn("\nmissed goals:", report)
        missed = self._bench({"cg-plain-c": [300, 300], "cg-leaf-c": [500, 520]})
        self.assertTrue(pairResults(missed)[0].differenceMissed)
        self.assertFalse(pairResults(missed)[0].ratioMissed)
        report = formatReport(missed)
        self.assertIn("<=150 MISS", report)
        explained = " ".join(report.split("\nmissed goals:\n", 1)[1].split())
        self.assertIn("cg-leaf-c minus cg-plain-c: +210 us, goal <=150 us.", explained)
        self.assertIn("per-repetition differences +200..+220", explained)
        self.assertIn("is all beyond the goal", explained)
        document = json.loads(json.dumps(toJSON(missed)))
        (pair,) = document["scenarios"][1]["pairs"]
        self.assertEqual(pair["differenceGoal"], 150.0)
        self.assertEqual(pair["repetitionDifferences"], [200, 220])
        self.assertEqual(pair["difference"], 210)
        self.assertIs(pair["missed"], True)

    def test_counts(self) -> None:
        """
        What a worker counted (how each child was placed in its cgroup) is
        printed in the notes and kept in the JSON.
        """
        leaf = _fakeRun({"txspawn": [400]}, "cg-leaf-c")
        leaf.impls["txspawn"].counts = {"placed by clone": 7}
        bench = self._bench({"cg-plain-c": [300]}, leaf)
        self.assertIn("cg-leaf-c / txspawn: 7 x placed by clone", formatReport(bench))
        document = json.loads(json.dumps(toJSON(bench)))
        counts = document["scenarios"][0]["implementations"]["txspawn"]["counts"]
        self.assertEqual(counts, {"placed by clone": 7})

    def test_onlyColumnsRun(self) -> None:
        """
        A run of txspawn-only rows shows no Twisted or C column.
        """
        report = formatReport(self._bench({"ns-plain": [100], "ns-user": [110]}))
        header = next(line for line in report.splitlines() if "scenario" in line)
        self.assertEqual(
            header.split(), ["scenario", "unit", "txspawn", "goal", "txspawn/C"]
        )

    def test_json(self) -> None:
        """
        The JSON document gives each row's pairs with their per-repetition
        ratios, interval, goal and verdict.
        """
        bench = self._bench({"ns-plain": [100, 100], "ns-user": [150, 160]})
        document = json.loads(json.dumps(toJSON(bench)))
        plain, user = document["scenarios"]
        self.assertEqual(plain["pairs"], [])
        (pair,) = user["pairs"]
        self.assertEqual(pair["over"], "ns-plain")
        self.assertEqual(pair["goal"], 1.3)
        self.assertEqual(pair["repetitionRatios"], [1.5, 1.6])
        self.assertIs(pair["missed"], True)
        self.assertEqual(len(pair["interval90"]), 2)


class EndToEndTests(SynchronousTestCase):
    """
    Real runs on tiny sizes: real workers, real children.
    """

    def benchTiny(self, options: BenchOptions) -> BenchRun:
        before = _children()
        fdsBefore = set(os.listdir("/proc/self/fd"))
        lines: list[str] = []
        bench = runBench(options, lines.append)
        self.assertEqual(_children() - before, set(), "a worker was left behind")
        # Nothing leaked in the driver either (the listing's own fd is the
        # same number both times).
        self.assertEqual(set(os.listdir("/proc/self/fd")), fdsBefore)
        self.assertTrue(lines)
        return bench

    def test_everyKind(self) -> None:
        """
        A spawn, an exit-latency (with idle children) and a pipe scenario
        each produce one value per repetition for stock Twisted and for the
        C reference, and a value or a recorded error for txspawn; the table
        prints the ratios.
        """
        if not _HAVE_CC:
            raise self.skipTest("no C compiler (cc or $CC) on PATH")
        scenarios = [scenarioNamed(n) for n in ("spawn", "exit-idle", "pipe")]
        bench = self.benchTiny(BenchOptions(TINY, scenarios))
        for run in bench.scenarios:
            for impl in ("twisted", "c"):
                result = run.impls[impl]
                self.assertIsNone(result.error)
                self.assertEqual(len(result.values), TINY.reps)
                self.assertTrue(all(v > 0 for v in result.values))
            tx = run.impls["txspawn"]
            self.assertTrue(tx.values or tx.error)
            if tx.values:
                # The worker says which engine and monitor it really used.
                self.assertIn("engine ", tx.detail)
                self.assertIn("monitor ", tx.detail)
        idle = bench.scenarios[1]
        # The C worker holds as many fds as the one it is compared with.
        compared = idle.impls["txspawn"].fds or idle.impls["twisted"].fds
        self.assertEqual(idle.impls["c"].fds, compared)
        report = formatReport(bench)
        spawnRow = next(
            line for line in report.splitlines() if line.startswith("spawn ")
        )
        self.assertRegex(spawnRow, r"\d+\.\d\d")

    def test_optionsAndBallast(self) -> None:
        """
        The option and big-parent shapes (a C{spawnProcess} option, a big
        parent) run
        through the same harness.
        """
        scenarios = [scenarioNamed("spawn-path-2g")]
        bench = self.benchTiny(
            BenchOptions(TINY, scenarios, implementations=["twisted"])
        )
        result = bench.scenarios[0].impls["twisted"]
        self.assertIsNone(result.error)
        self.assertEqual(len(result.values), 1)

    def test_namespaceSuite(self) -> None:
        """
        The namespace rows run in the txspawn column only, on one worker
        per setup (a small and a big parent), every repetition timing each
        row once before the next repetition starts, so that each pair has
        one ratio per repetition.
        """
        from txspawn._kernel.nsprobe import SELF_MAP, probeNamespaces

        unavailable = probeNamespaces().unavailable("user", SELF_MAP)
        if unavailable is not None:
            raise self.skipTest(unavailable)
        if shutil.which("unshare") is None:
            raise self.skipTest("util-linux unshare is not installed")
        params = attrs.evolve(TINY, reps=2)
        scenarios = selectScenarios(["ns-user-2g"])
        lines: list[str] = []
        before = _children()
        bench = runBench(BenchOptions(params, scenarios), lines.append)
        self.assertEqual(_children() - before, set(), "a worker was left behind")
        for run in bench.scenarios:
            self.assertEqual(list(run.impls), ["txspawn"])
            result = run.impls["txspawn"]
            self.assertIsNone(result.error, run.scenario.name)
            self.assertEqual(len(result.values), 2, run.scenario.name)
        starts = [line for line in lines if "starting" in line]
        self.assertEqual(
            starts,
            [
                "[empty parent] starting txspawn worker",
                "[4 MiB parent] starting txspawn worker",
            ],
        )
        reps = [line.split()[2] for line in lines if ": rep " in line]
        self.assertEqual(reps, ["1/2"] * 4 + ["2/2"] * 4)
        for paired in pairResults(bench):
            self.assertEqual(len(paired.ratios), 2)
        self.assertIn("\npaired rows:", formatReport(bench))

    def test_cgroupSuite(self) -> None:
        """
        The cgroup rows run on one worker per engine, every repetition
        timing each row once; each leaf row's children were placed in a
        leaf of their own, in the parent made for the run (by
        C{CLONE_INTO_CGROUP} on the C engine where it works, by
        C{cgroup.procs} on the Python engine), and that parent is gone
        afterwards, leaves and all.
        """
        reason = _benchParentUnavailable()
        if reason is not None:
            raise self.skipTest(reason)
        if C_UNAVAILABLE is not None:
            raise self.skipTest(C_UNAVAILABLE)
        params = attrs.evolve(TINY, reps=2)
        lines: list[str] = []
        before = _children()
        bench = runBench(BenchOptions(params, CGROUP_SCENARIOS), lines.append)
        self.assertEqual(_children() - before, set(), "a worker was left behind")
        mount = cgroupMountPath()
        assert mount is not None
        self.assertFalse(
            os.path.exists(os.path.join(mount, f"txspawn-bench-{os.getpid()}"))
        )
        for run in bench.scenarios:
            result = run.impls["txspawn"]
            self.assertIsNone(result.error, run.scenario.name)
            self.assertEqual(len(result.values), 2, run.scenario.name)
            self.assertIn(f"engine {run.setup.engine}", result.detail)
        counts = {r.scenario.name: r.impls["txspawn"].counts for r in bench.scenarios}
        self.assertEqual(counts["cg-plain-c"], {})
        self.assertEqual(counts["cg-plain-py"], {})
        self.assertEqual(counts["cg-fork-py"], {})
        self.assertEqual(counts["cg-leaf-py"].get("placed by procs"), 4)
        self.assertEqual(
            counts["cg-leaf-py"].get(
                "not by clone: the Python engine has no CLONE_INTO_CGROUP"
            ),
            4,
        )
        for leafRow in ("cg-leaf-c", "cg-leaf-py"):
            self.assertEqual(counts[leafRow].get("leaf in the run's parent"), 4)
        placed = counts["cg-leaf-c"]
        self.assertEqual(
            placed.get("placed by clone", 0) + placed.get("placed by procs", 0), 4
        )
        starts = [line for line in lines if "starting" in line]
        self.assertEqual(
            starts,
            [
                "[empty parent, c engine] starting txspawn worker",
                "[empty parent, python engine] starting txspawn worker",
            ],
        )
        for paired in pairResults(bench):
            self.assertEqual(len(paired.differences), 2)
        self.assertIn("<=150", formatReport(bench))

    def test_noCompiler(self) -> None:
        """
        Without a compiler the C column is skipped with the reason, and the
        exit-latency scenario still runs (with a Python stamp child).
        """
        scenarios = [scenarioNamed("exit")]
        options = BenchOptions(
            TINY,
            scenarios,
            compiler="/nonexistent/cc",
            implementations=["twisted", "c"],
        )
        bench = self.benchTiny(options)
        run = bench.scenarios[0]
        self.assertEqual(len(run.impls["twisted"].values), 1)
        self.assertIn("no C compiler", run.impls["c"].error or "")
        self.assertIn("no C compiler", formatReport(bench))

    def test_workerCannotStart(self) -> None:
        """
        A worker whose program cannot be executed is a L{WorkerError}
        naming the column, and leaves no fd behind.
        """
        from txspawn._bench._creference import CReference
        from txspawn._bench._driver import _startWorker

        scratch = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, scratch)
        fds = set(os.listdir("/proc/self/fd"))
        options = BenchOptions(TINY, [scenarioNamed("spawn")])
        missing = CReference(os.path.join(scratch, "no-such-reference"), "cc -O2")
        with self.assertRaises(WorkerError) as raised:
            _startWorker("c", Setup(), options, missing, scratch, 8)
        self.assertIn("c worker could not start", str(raised.exception))
        self.assertEqual(set(os.listdir("/proc/self/fd")), fds)

    def test_brokenImplementation(self) -> None:
        """
        A column whose worker cannot start (here: an unknown txspawn engine)
        records the error and the other columns still run.
        """
        scenarios = [scenarioNamed("spawn")]
        options = BenchOptions(
            TINY,
            scenarios,
            engine="no-such-engine",
            implementations=["txspawn", "twisted"],
        )
        bench = self.benchTiny(options)
        run = bench.scenarios[0]
        self.assertEqual(run.impls["txspawn"].values, [])
        self.assertIsNotNone(run.impls["txspawn"].error)
        self.assertEqual(len(run.impls["twisted"].values), 1)

    def test_commandLine(self) -> None:
        """
        C{python -m txspawn bench} runs a chosen scenario with the chosen
        repetitions and batch size, prints the table with the ratio columns,
        and writes the JSON file.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        output = os.path.join(directory, "bench.json")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "txspawn",
                "bench",
                "--quick",
                "--scenario",
                "spawn",
                "--reps",
                "1",
                "--spawns",
                "7",
                "--json",
                output,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("txspawn/twisted", result.stdout)
        self.assertIn("reps=1", result.stdout)
        with open(output) as f:
            document = json.load(f)
        self.assertEqual([s["name"] for s in document["scenarios"]], ["spawn"])
        self.assertEqual(document["params"]["spawnCount"], 7)
        (run,) = document["scenarios"]
        for impl in run["implementations"].values():
            self.assertEqual(len(impl["samples"]), 7)


def runFloorScript(
    test: SynchronousTestCase, name: str, *args: str
) -> dict[str, float]:
    """
    Run C{benchmarks/NAME} (in a source checkout) with C{args}, and parse
    its table.

    @return: Each variant's ratio to C.
    @raise SkipTest: without a C compiler, or outside a source checkout.
    """
    if not _HAVE_CC:
        raise test.skipTest("no C compiler (cc or $CC) on PATH")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "benchmarks", name)
    if not os.path.exists(script):
        raise test.skipTest(f"not a source checkout: no {script}")
    result = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        line.split()[0]: float(line.split()[-1])
        for line in result.stdout.splitlines()[1:]
        if line and not line.startswith("(")
    }


class ExitFloorTests(SynchronousTestCase):
    """
    C{benchmarks/exit_floor.py} (in a source checkout) runs end to end.
    """

    def test_smallRun(self) -> None:
        """
        A tiny run prints one row per variant with a ratio against C, and
        leaves no child behind (it exits normally).
        """
        rows = runFloorScript(
            self, "exit_floor.py", "--samples", "1", "--delay-us", "1000"
        )
        self.assertEqual(rows["C"], 1.0)
        expected = {
            "C",
            "py-block",
            "raw/waitpid/prebuilt",
            "raw/waitpid/Failure",
            "raw/wait4/Failure",
        }
        if C_UNAVAILABLE is None:
            expected.add("raw/cwait4/Failure")
        self.assertEqual(set(rows), expected)
        self.assertTrue(all(value > 0 for value in rows.values()))


class SpawnFloorTests(SynchronousTestCase):
    """
    C{benchmarks/spawn_floor.py} (in a source checkout) runs end to end.
    """

    def test_smallRun(self) -> None:
        """
        A tiny run prints one row per variant with a ratio against C, and
        leaves no child behind (it exits normally).
        """
        rows = runFloorScript(self, "spawn_floor.py", "--samples", "1")
        self.assertEqual(rows["C"], 1.0)
        expected = {"C", "py-block", "py-epoll"}
        if C_UNAVAILABLE is None:
            expected.add("py-epoll/c-engine")
        self.assertEqual(set(rows), expected)
        self.assertTrue(all(value > 0 for value in rows.values()))
