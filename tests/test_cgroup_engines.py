# -*- test-case-name: tests.test_cgroup_engines -*-
"""
Placing a child in its cgroup leaf, on both engines (issue 14, item 3):
C{ISpawner.spawn(plan, fdMap, ttyName, cgroupLeaf)}.

Every test spawns real children into real leaves made under a scratch
cgroup of the cgroup v2 hierarchy (L{tests.cgrouputil}); a child reads
its own C{/proc/self/cgroup} as its first action after the exec, so what
it prints is where the engine put it before the exec.  The C engine
clones it there (C{CLONE_INTO_CGROUP}) in its C{clone3} modes, and falls
back to the child writing C{cgroup.procs} elsewhere; the Python engine
always does the latter.  The fallbacks the kernel can be made to take
for real (a busy target, a domain-invalid one, a removed leaf, a spawner
whose cgroup has another C{cgroup.kill} history) are provoked, and every
failure is the same L{SpawnError} of stage C{CGROUP} on every engine,
leaving no child, no fd and the leaf as it was.

The C-only mechanics (the extension's flags, the errno of each refusal,
the probe) are in C{tests/test_cspawn.py}'s C{CgroupTests}.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import (
    enableHugetlbAtRoot,
    makeScratchCgroup,
    mountOrSkip,
    runInCgroup,
)
from tests.engineutil import makePlan, waitExit
from tests.hygiene import HygieneMixin, openFDs
from tests.test_cspawn import parentMap
from tests.test_engines import C_UNAVAILABLE, REQUIRE_C
from tests.test_rollback_interrupts import (
    Interrupter,
    requireCCleanup,
    starting,
    sweep,
    txspawnPoints,
)
from txspawn._cgroup.leaf import CgroupLeaf, createLeaf
from txspawn._cgroup.parent import CgroupParent
from txspawn._cgroupoptions import Cgroup
from txspawn._engine.pyengine import PYTHON_PLACEMENT_NOTE, PythonSpawner
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import ISpawner

if C_UNAVAILABLE is None:
    from txspawn import _cspawn
    from txspawn._engine.cengine import CGROUP_KILLED_NOTE, CSpawner

CAT = b"/bin/cat"
CLONE_NEWCGROUP = 0x02000000
#: The errno injected at stage CGROUP.
INJECTED = errno.EREMOTEIO


def cloneIntoWorksHere(scratch: str) -> bool:
    """
    Whether a child cloned into a fresh leaf under C{scratch} by this
    process runs: not when this process's cgroup has a C{cgroup.kill}
    history (then the kernel kills it; see L{KillSeqTests}).
    """
    if C_UNAVAILABLE is not None:
        return False
    path = os.path.join(scratch, "probe")
    os.mkdir(path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _cspawn.probeCloneIntoCgroup(fd) == 0
    finally:
        os.close(fd)
        os.rmdir(path)


if TYPE_CHECKING:
    _TestCase = SynchronousTestCase
else:
    _TestCase = object


class PlacementMixin(HygieneMixin, _TestCase):
    """
    What every engine (and every mode of the C engine) does with a leaf.
    Subclasses say how to make the spawner and how it places a child.
    """

    #: Makes the spawner under test.
    makeSpawner: ClassVar[Callable[[], ISpawner]]
    #: C{"clone"} or C{"procs"} (where the clone works at all here).
    placement: ClassVar[str]
    #: A part of the placement note; L{None}: no note.
    note: ClassVar[str | None]
    #: Whether the spawner needs the C engine.
    needsC: ClassVar[bool] = True

    def setUp(self) -> None:
        if self.needsC and C_UNAVAILABLE is not None:
            if REQUIRE_C:
                self.fail(f"TXSPAWN_REQUIRE_C=1 but {C_UNAVAILABLE}")
            raise self.skipTest(C_UNAVAILABLE)
        self.mount = mountOrSkip()
        self.setUpHygiene()
        self.scratch = makeScratchCgroup(self, "engines-")
        self.spawner = type(self).makeSpawner()
        self.expected = (self.placement, self.note)
        if self.placement == "clone" and not cloneIntoWorksHere(self.scratch):
            self.expected = ("procs", CGROUP_KILLED_NOTE)

    def makeLeaf(self) -> CgroupLeaf:
        """
        A fresh leaf under the scratch cgroup, discarded after the test.
        """
        leaf = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(leaf.discard)
        return leaf

    def standIn(self, path: str) -> CgroupLeaf:
        """
        A leaf for the existing cgroup C{path} (not made by L{createLeaf}),
        its fd closed after the test.
        """
        parent = CgroupParent(
            path=os.path.dirname(path),
            how="given",
            controllers=frozenset(),
            enabled=frozenset(),
        )
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        leaf = CgroupLeaf(parent, path, fd, frozenset())
        self.addCleanup(leaf.closeFd)
        return leaf

    def relative(self, path: str) -> str:
        """
        C{path} as C{/proc/<pid>/cgroup} shows it from the root cgroup.
        """
        return "/" + os.path.relpath(path, self.mount)

    def spawnAndRead(
        self, leaf: CgroupLeaf | None, argv: tuple[bytes, ...], **plan: Any
    ) -> str:
        """
        Spawn C{argv} into C{leaf}, its stdout a pipe; return what it
        printed once it exited 0.
        """
        null = self.devnull()
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            try:
                child = self.spawner.spawn(
                    makePlan(argv[0], argv=argv, **plan),
                    {0: null, 1: w, 2: null},
                    None,
                    leaf,
                )
            finally:
                os.close(w)
            output = b""
            try:
                while chunk := os.read(r, 65536):
                    output += chunk
                self.assertEqual(waitExit(child.pid), 0)
            finally:
                child.closePidfd()
        finally:
            os.close(r)
        return output.decode()

    def ownCgroupLine(self, leaf: CgroupLeaf | None, **plan: Any) -> str:
        """
        The C{0::} line of C{/proc/self/cgroup} of a child spawned into
        C{leaf}, read first thing after its exec.
        """
        lines = self.spawnAndRead(leaf, (CAT, b"/proc/self/cgroup"), **plan)
        return next(line for line in lines.splitlines() if line.startswith("0::"))

    def assertPlaced(self, leaf: CgroupLeaf) -> None:
        """
        The engine told C{leaf} how it placed the child, as expected.
        """
        placement, note = self.expected
        self.assertEqual(leaf.placement, placement)
        if note is None:
            self.assertIsNone(leaf.placementNote)
        else:
            self.assertIn(note, leaf.placementNote or "")

    def assertUntouched(self, leaf: CgroupLeaf) -> None:
        """
        A failed spawn left C{leaf} as it was: there, empty, not placed.
        """
        self.assertIsNone(leaf.placement)
        self.assertTrue(os.path.isdir(leaf.path))
        self.assertFalse(leaf.populated())

    def assertFailsCleanly(
        self,
        leaf: CgroupLeaf,
        stage: ChildSetupStage,
        code: int,
        executable: bytes = b"/bin/true",
        **plan: Any,
    ) -> None:
        """
        Spawning C{executable} into C{leaf} raises L{SpawnError}(C{stage},
        C{code}), leaving no child, no new fd and the leaf untouched.
        """
        null = self.devnull()
        before = openFDs()
        e = self.assertRaises(
            SpawnError,
            self.spawner.spawn,
            makePlan(executable, argv=(b"true",), **plan),
            {0: null, 1: null, 2: null},
            None,
            leaf,
        )
        self.assertEqual((e.stage, e.errno), (stage, code))
        self.assertNoNewChildren()
        self.assertEqual(openFDs(), before)
        self.assertUntouched(leaf)

    def test_inLeafBeforeExec(self) -> None:
        """
        The child is in its leaf when it execs: the first thing the
        program does, reading its own cgroup, sees the leaf; the leaf is
        told how the child got there.
        """
        leaf = self.makeLeaf()
        line = self.ownCgroupLine(leaf)
        self.assertEqual(line, "0::" + self.relative(leaf.path))
        self.assertPlaced(leaf)

    def test_withoutLeaf(self) -> None:
        """
        Without a leaf the child stays in the spawner's cgroup.
        """
        with open("/proc/self/cgroup") as f:
            ours = [line for line in f.read().splitlines() if line.startswith("0::")]
        self.assertEqual([self.ownCgroupLine(None)], ours)

    def test_everySpawnItsOwnLeaf(self) -> None:
        """
        Two spawns into two leaves: each child is in its own.
        """
        first, second = self.makeLeaf(), self.makeLeaf()
        self.assertEqual(self.ownCgroupLine(first), "0::" + self.relative(first.path))
        self.assertEqual(self.ownCgroupLine(second), "0::" + self.relative(second.path))
        self.assertPlaced(first)
        self.assertPlaced(second)

    def test_cgroupNamespaceRootedAtLeaf(self) -> None:
        """
        With a new cgroup namespace, its root is the leaf, however the
        child was placed: the child sees itself at C{/}.
        """
        leaf = self.makeLeaf()
        line = self.ownCgroupLine(
            leaf, namespaces=NamespacePlan(cloneFlags=CLONE_NEWCGROUP)
        )
        self.assertEqual(line, "0::/")
        # ... and that root is the leaf, not where the spawner is: the
        # child's CPU time was charged to it.
        self.assertGreater(leaf.readStats().cpuUsageUsec, 0)
        self.assertPlaced(leaf)

    def test_mapHandoff(self) -> None:
        """
        A user namespace whose maps the parent writes while the child
        waits (the C engine's map handoff: C{CLONE_VM} without
        C{CLONE_VFORK}) is placed the same way, with a cgroup namespace
        rooted at the leaf.
        """
        leaf = self.makeLeaf()
        line = self.ownCgroupLine(leaf, namespaces=parentMap(CLONE_NEWCGROUP))
        self.assertEqual(line, "0::/")
        self.assertGreater(leaf.readStats().cpuUsageUsec, 0)
        self.assertPlaced(leaf)

    def test_failedExecLeavesLeaf(self) -> None:
        """
        A child that fails after it was placed (its exec) is reaped, and
        the leaf is left as it was for the caller to discard.
        """
        leaf = self.makeLeaf()
        self.assertFailsCleanly(
            leaf,
            ChildSetupStage.EXEC,
            errno.ENOENT,
            b"/nonexistent/true",
        )

    def test_injectedFault(self) -> None:
        """
        Stage C{CGROUP} can be made to fail (fault injection): the spawn
        raises it with the injected errno, with nothing left behind; the
        same plan without a leaf has no such step, and runs.
        """
        leaf = self.makeLeaf()
        fault = (int(ChildSetupStage.CGROUP), INJECTED)
        self.assertFailsCleanly(
            leaf, ChildSetupStage.CGROUP, INJECTED, injectedFault=fault
        )
        self.assertIn("0::", self.ownCgroupLine(None, injectedFault=fault))

    def test_removedLeaf(self) -> None:
        """
        A leaf removed before the spawn (its directory fd still open)
        fails the spawn at stage C{CGROUP}, the same way on every engine:
        C{cgroup.procs} is gone.
        """
        path = os.path.join(self.scratch, "removed")
        os.mkdir(path)
        leaf = self.standIn(path)
        os.rmdir(path)
        null = self.devnull()
        before = openFDs()
        e = self.assertRaises(
            SpawnError,
            self.spawner.spawn,
            makePlan(b"/bin/true", argv=(b"true",)),
            {0: null, 1: null, 2: null},
            None,
            leaf,
        )
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.CGROUP, errno.ENOENT))
        self.assertNoNewChildren()
        self.assertEqual(openFDs(), before)
        self.assertIsNone(leaf.placement)

    def test_busyTarget(self) -> None:
        """
        A cgroup that enables a controller for its children can hold no
        process ("no internal processes"): the clone is refused (EBUSY)
        and so is the child's own move, and the spawn fails at stage
        C{CGROUP} with C{EBUSY} on every engine.
        """
        enableHugetlbAtRoot(self)
        busy = os.path.join(self.scratch, "busy")
        os.mkdir(busy)
        with open(os.path.join(self.scratch, "cgroup.subtree_control"), "w") as f:
            f.write("+hugetlb")
        with open(os.path.join(busy, "cgroup.subtree_control"), "w") as f:
            f.write("+hugetlb")
        self.assertFailsCleanly(self.standIn(busy), ChildSetupStage.CGROUP, errno.EBUSY)

    def test_domainInvalidTarget(self) -> None:
        """
        A domain cgroup beside a threaded sibling is "domain invalid": no
        process may enter it (EOPNOTSUPP), by the clone or by
        C{cgroup.procs}, and the spawn fails so at stage C{CGROUP}.
        """
        threaded = os.path.join(self.scratch, "threaded")
        invalid = os.path.join(self.scratch, "invalid")
        os.mkdir(threaded)
        os.mkdir(invalid)
        with open(os.path.join(threaded, "cgroup.type"), "w") as f:
            f.write("threaded")
        with open(os.path.join(invalid, "cgroup.type")) as f:
            self.assertEqual(f.read().strip(), "domain invalid")
        self.assertFailsCleanly(
            self.standIn(invalid), ChildSetupStage.CGROUP, errno.EOPNOTSUPP
        )


def _c(**kwargs: Any) -> Callable[[], ISpawner]:
    def make() -> ISpawner:
        return CSpawner(**kwargs)

    return make


class CEngineTests(PlacementMixin, SynchronousTestCase):
    """
    The C engine's default mode (clone3, vfork mode, slot mode): cloned
    into the leaf.
    """

    makeSpawner = _c()
    placement = "clone"
    note = None


class CEngineWithoutSlotsTests(PlacementMixin, SynchronousTestCase):
    """
    The C engine's clone3 mode without slot mode (the error pipe): cloned
    into the leaf.
    """

    makeSpawner = _c(slots=False)
    placement = "clone"
    note = None


class CEngineGlibcCloneTests(PlacementMixin, SynchronousTestCase):
    """
    The C engine's glibc C{clone()} mode cannot pass a cgroup: the child
    writes C{cgroup.procs}, and the note says why.
    """

    makeSpawner = _c(clone3=False)
    placement = "procs"
    note = "CLONE_INTO_CGROUP needs the clone3 mode; this spawn is clone"


class CEngineForkLikeTests(PlacementMixin, SynchronousTestCase):
    """
    The C engine's fork-like mode: the child writes C{cgroup.procs}.
    """

    makeSpawner = _c(vfork=False)
    placement = "procs"
    note = "CLONE_INTO_CGROUP needs the clone3 mode; this spawn is fork-like"


class PythonEngineTests(PlacementMixin, SynchronousTestCase):
    """
    The Python engine: its fork path's child writes C{cgroup.procs} first.
    """

    makeSpawner = PythonSpawner
    placement = "procs"
    note = PYTHON_PLACEMENT_NOTE
    needsC = False

    def test_posixSpawnForced(self) -> None:
        """
        C{posix_spawn} cannot place a child: forced, a spawn with a leaf
        is refused, with nothing started.
        """
        from txspawn.errors import UnsupportedFeature

        self.spawner = PythonSpawner(method="posix_spawn")
        null = self.devnull()
        e = self.assertRaises(
            UnsupportedFeature,
            self.spawner.spawn,
            makePlan(b"/bin/true", argv=(b"true",)),
            {0: null, 1: null, 2: null},
            None,
            self.makeLeaf(),
        )
        self.assertIn("cgroup", str(e))


class InterruptedPlacementTests(HygieneMixin, SynchronousTestCase):
    """
    A spawn with a leaf interrupted (a signal handler's
    C{KeyboardInterrupt}) at any point leaves no child, no zombie and no
    fd, on both engines: the C engine opens C{cgroup.procs} only inside the
    extension, the Python engine records its fd as it opens it (see
    C{docs/design/engines.rst}, "Interrupted spawns").
    """

    def setUp(self) -> None:
        requireCCleanup(self)
        self.setUpHygiene()
        self.scratch = makeScratchCgroup(self, "interrupted-")

    def sweepEngine(self, spawner: ISpawner, firstAt: str | None) -> int:
        """
        Interrupt a spawn of C{/bin/true} into a leaf at its 1st, 2nd, ...
        point (after the first interrupt as C{firstAt} starts, if given),
        until a run has fewer points; after each, check nothing is left.

        @return: The number of points.
        """
        leaf = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(leaf.discard)
        null = self.devnull()
        plan = makePlan(b"/bin/true", argv=(b"true",))
        before = openFDs()

        def attempt(point: int) -> bool:
            where = f"{spawner.name}: interrupted at {firstAt} then at {point}"
            child = None
            first = None if firstAt is None else starting(firstAt)
            with Interrupter(first, point, txspawnPoints) as interrupter:
                try:
                    child = spawner.spawn(plan, {0: null, 1: null, 2: null}, None, leaf)
                except KeyboardInterrupt:
                    pass
            if child is not None:
                self.assertFalse(interrupter.firstFired and firstAt, where)
                waitExit(child.pid)
                child.closePidfd()
            where += " " + interrupter.secondAt
            self.assertNoNewChildren(where)
            self.assertEqual(openFDs(), before, where)
            return interrupter.secondFired

        return sweep(attempt)

    def test_cInterruptedAnywhere(self) -> None:
        """
        The C engine, interrupted once at any point of a spawn with a leaf.
        """
        if C_UNAVAILABLE is not None:
            raise self.skipTest(C_UNAVAILABLE)
        self.assertGreater(self.sweepEngine(CSpawner(), None), 0)

    def test_pythonInterruptedAnywhere(self) -> None:
        """
        The Python engine, interrupted once at any point of a spawn with a
        leaf (its fork path, with the leaf's C{cgroup.procs} open).
        """
        self.assertGreater(self.sweepEngine(PythonSpawner(), None), 0)

    def test_interruptedAsPlacedThenInCleanUp(self) -> None:
        """
        Interrupted as the engine tells the leaf how it placed the child
        (the child exists and is not returned yet), then again at every
        point of the clean-up: still nothing left.
        """
        spawners: list[ISpawner] = [PythonSpawner()]
        if C_UNAVAILABLE is None:
            spawners.append(CSpawner())
        for spawner in spawners:
            self.assertGreater(self.sweepEngine(spawner, "placed"), 0)


#: Run in a child placed in a cgroup whose cgroup.kill was written (empty):
#: with each spawner, two spawns into fresh leaves of a parent of its own
#: (argv[1]/<name>); for each, how the child was placed, the note, whether
#: the parent's cloneInto was set, whether the C engine asked for
#: CLONE_INTO_CGROUP, and the child's own cgroup line against its leaf's
#: path; and the raw probe of a fresh leaf from here.
_KILLED_SPAWNER = """
import json, os, sys
from tests.engineutil import makePlan
from tests.test_cspawn import parentMap
from txspawn._cgroup.hierarchy import cgroupMount
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroupoptions import Cgroup
from txspawn._engine.pyengine import PythonSpawner
spawners = {"python": PythonSpawner()}
try:
    from txspawn import _cspawn
    from txspawn._engine.cengine import CSpawner
except ImportError:
    _cspawn = None
else:
    spawners.update(c=CSpawner(), cNoSlots=CSpawner(slots=False),
                    cFork=CSpawner(vfork=False), cHandoff=CSpawner())
mount = cgroupMount()
report = {}
for name, spawner in spawners.items():
    # cHandoff: a user namespace whose maps we write while the child waits
    # (CLONE_VM without CLONE_VFORK: the map handoff).
    namespaces = parentMap() if name == "cHandoff" else None
    parent = os.path.join(sys.argv[1], name)
    os.mkdir(parent)
    spawns = []
    for _ in range(2):
        leaf = createLeaf(Cgroup(parent=parent))
        r, w = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        plan = makePlan(b"/bin/cat", argv=(b"cat", b"/proc/self/cgroup"),
                        namespaces=namespaces)
        child = spawner.spawn(plan, {0: null, 1: w, 2: null}, None, leaf)
        os.close(w)
        os.close(null)
        out = b""
        while chunk := os.read(r, 65536):
            out += chunk
        os.close(r)
        _, status = os.waitpid(child.pid, 0)
        child.closePidfd()
        line = [l for l in out.decode().splitlines() if l.startswith("0::")][0]
        spawns.append({
            "status": status,
            "placement": leaf.placement,
            "note": leaf.placementNote,
            "cloneInto": leaf.parent.cloneInto,
            "tried": getattr(spawner, "lastClonedIntoCgroup", None),
            "inLeaf": line == "0::/" + os.path.relpath(leaf.path, mount),
        })
        leaf.discard()
    report[name] = spawns
if _cspawn is not None:
    probe = os.path.join(sys.argv[1], "probe")
    os.mkdir(probe)
    fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    report["probe"] = _cspawn.probeCloneIntoCgroup(fd)
    os.close(fd)
    os.rmdir(probe)
print(json.dumps(report))
"""


class KillSeqTests(SynchronousTestCase):
    """
    The kernel behaviour issue 14 pins: a child cloned into a cgroup
    (C{CLONE_INTO_CGROUP}) is killed before its first instruction when the
    spawner's cgroup and the target have a different C{cgroup.kill}
    history (the kernel compares their C{kill_seq}; a fresh leaf has 0,
    each write of C{cgroup.kill} adds one in the cgroup and below).  The
    engines recognise it, place the child through C{cgroup.procs}, and
    say why; later spawns into that parent go straight there.

    The spawner runs in a child process placed in a scratch cgroup whose
    C{cgroup.kill} was written while it was empty: the test runner itself
    is never moved.
    """

    def setUp(self) -> None:
        if C_UNAVAILABLE is not None and REQUIRE_C:
            self.fail(f"TXSPAWN_REQUIRE_C=1 but {C_UNAVAILABLE}")
        self.scratch = makeScratchCgroup(self, "killseq-")

    def runKilledSpawner(self) -> dict[str, Any]:
        """
        L{_KILLED_SPAWNER}'s report, run in C{<scratch>/killed} (killed
        while empty), making its leaves under C{<scratch>/leaves}.
        """
        killed = os.path.join(self.scratch, "killed")
        leaves = os.path.join(self.scratch, "leaves")
        os.mkdir(killed)
        os.mkdir(leaves)
        with open(os.path.join(killed, "cgroup.kill"), "w") as f:
            f.write("1")
        report: dict[str, Any] = runInCgroup(killed, _KILLED_SPAWNER, [leaves])
        return report

    def test_killedBeforeStartFallsBackToProcs(self) -> None:
        """
        From a cgroup with a kill history, a child cloned into a fresh leaf
        is killed by the kernel (the probe's child dies of C{SIGKILL});
        the C engine sees its child never ran, places a new one through
        C{cgroup.procs}, and the command runs in its leaf.  The note and
        the parent's C{cloneInto} name the C{cgroup.kill} history, and the
        second spawn into that parent does not try the clone at all.  The
        Python engine, which never clones into a cgroup, is not affected.
        """
        report = self.runKilledSpawner()
        if C_UNAVAILABLE is None:
            status = report.pop("probe")
            self.assertTrue(os.WIFSIGNALED(status), status)
            self.assertEqual(os.WTERMSIG(status), signal.SIGKILL)
            for name in ("c", "cNoSlots", "cHandoff"):
                first, second = report.pop(name)
                for spawn in (first, second):
                    self.assertEqual(spawn["status"], 0, name)
                    self.assertTrue(spawn["inLeaf"], name)
                    self.assertEqual(spawn["placement"], "procs", name)
                    self.assertIn("cgroup.kill", spawn["note"], name)
                    self.assertEqual(spawn["cloneInto"], CGROUP_KILLED_NOTE, name)
                self.assertEqual([first["tried"], second["tried"]], [True, False])
            # The fork-like mode never clones into a cgroup: untouched.
            for spawn in report.pop("cFork"):
                self.assertEqual(spawn["status"], 0)
                self.assertTrue(spawn["inLeaf"])
                self.assertEqual(spawn["placement"], "procs")
                self.assertNotIn("cgroup.kill", spawn["note"])
                self.assertIsNone(spawn["cloneInto"])
                self.assertFalse(spawn["tried"])
        python = report.pop("python")
        self.assertEqual(
            python,
            [
                {
                    "status": 0,
                    "placement": "procs",
                    "note": PYTHON_PLACEMENT_NOTE,
                    "cloneInto": None,
                    "tried": None,
                    "inLeaf": True,
                }
            ]
            * 2,
        )
        self.assertEqual(report, {})

    def test_noKillHistoryClones(self) -> None:
        """
        The other half of the pin: from this test's own cgroup (never
        killed), a child cloned into a fresh leaf runs.
        """
        if C_UNAVAILABLE is not None:
            raise self.skipTest(C_UNAVAILABLE)
        with open("/proc/self/cgroup") as f:
            ours = [line for line in f.read().splitlines() if line.startswith("0::")]
        mount = mountOrSkip()
        path = mount + ours[0][3:]
        if os.path.exists(os.path.join(path, "cgroup.kill")):
            # Not the root cgroup: it may have been killed.
            raise self.skipTest("the test runner is not in the root cgroup")
        self.assertTrue(cloneIntoWorksHere(self.scratch))


__all__ = [
    "CEngineForkLikeTests",
    "CEngineGlibcCloneTests",
    "CEngineTests",
    "CEngineWithoutSlotsTests",
    "InterruptedPlacementTests",
    "KillSeqTests",
    "PythonEngineTests",
]
