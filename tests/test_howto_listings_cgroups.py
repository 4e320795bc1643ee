"""
The listings of the cgroups how-to (C{docs/howto/cgroups.rst}) run on
every engine x monitor and do what the page says, on this host: where its
cgroup v2 hierarchy lacks a controller a limit needs (a hybrid host), the
listings take the path they document for it (C{UnsupportedFeature}, then
no limit), and the limits themselves are checked for real in a pure
cgroup v2 VM (C{tests/test_cgroup_limits.py}).
"""

from __future__ import annotations

import os
from typing import Any, cast

from twisted.internet.error import ProcessDone, ProcessTerminated

from tests.builders import MixinBase, makeTestCaseClasses
from tests.hygiene import isLive
from tests.test_howto_listings import ListingsMixin, loadListing


def _unavailable() -> str | None:
    """
    Why no child can have a cgroup of its own here (as C{python -m
    txspawn info} reports it), or C{None}.
    """
    from txspawn._cgroup.parent import CgroupUnavailable, findParent

    try:
        findParent(None)
    except CgroupUnavailable as e:
        return str(e)
    return None


def _offered() -> frozenset[str]:
    """
    The controllers a leaf can have here: those of the parent txspawn
    finds, and for its own subtree at the root of the hierarchy, those the
    root offers (enabled there when a limit needs them).
    """
    from txspawn._cgroup.hierarchy import readControllers
    from txspawn._cgroup.parent import SUBTREE, findParent

    parent = findParent(None)
    offered = set(readControllers(parent.path))
    if parent.how == SUBTREE:
        offered |= readControllers(os.path.dirname(parent.path))
    return frozenset(offered)


class CgroupListingsMixin(MixinBase):
    """
    Each listing's C{main(reactor)} succeeds on a real reactor.
    """

    def runListing(self, name: str) -> tuple[Any, str]:
        """
        L{ListingsMixin.runListing}, borrowed; skipped with txspawn's own
        reason where no child can have a cgroup here.
        """
        reason = _unavailable()
        if reason is not None:
            raise self.skipTest(reason)
        return ListingsMixin.runListing(cast(Any, self), name)

    def test_buildStep(self) -> None:
        """
        C{cg_build_step.py} builds in a cgroup of its own: limited where
        this hierarchy offers the memory, pids and cpu controllers; else
        (this hybrid host) the spawn with limits raised C{UnsupportedFeature}
        naming a missing controller, and the build ran in a cgroup without
        limits, as the listing says.
        """
        result, printed = self.runListing("cg_build_step")
        run = result["result"]
        self.assertEqual(run.exitCode, 0, run.stderr)
        self.assertRegex(run.stdout.decode(), r"^\d+ modules compiled\n$")
        stats = run.cgroup
        self.assertIn(stats.placement, ("clone", "procs"))
        self.assertGreater(stats.cpuUsageUsec, 0)
        missing = {"memory", "pids", "cpu"} - _offered()
        if missing:
            self.assertIs(result["limited"], False)
            why = result["why"]
            self.assertRegex(
                why, r"(memoryMax|pidsMax|cpuMax) needs the \w+ controller"
            )
            self.assertTrue(any(f"the {c} controller" in why for c in missing), why)
            self.assertIn(f"limits unavailable here: {why}", printed)
            self.assertIn("limited: False", printed)
        else:
            self.assertEqual((result["limited"], result["why"]), (True, None))
            self.assertFalse(stats.oomKilled)
            self.assertIn("limited: True", printed)

    def test_killTree(self) -> None:
        """
        C{cg_kill_tree.py}: the daemons a job left when it exited (setsid,
        double-forked, ignoring SIGTERM) are all gone by the time
        C{processTreeEnded} is called, and so are those of a job killed
        with C{killTree()} while it ran (which ended by C{SIGKILL}).
        """
        result, printed = self.runListing("cg_kill_tree")
        daemons = result["daemons"]
        self.assertEqual(len(daemons), 6)
        self.assertEqual([pid for pid in daemons if isLive(pid)], [])
        exited, killed = result["reasons"]
        self.assertIsInstance(exited.value, ProcessDone)
        self.assertIsInstance(killed.value, ProcessTerminated)
        self.assertEqual(killed.value.signal, 9)
        self.assertIn("job exited, and so did its daemons", printed)
        self.assertIn("CPU of the whole tree: ", printed)

    def test_stats(self) -> None:
        """
        C{cg_stats.py} reads the CPU time of the job and of its worker
        (more than the job alone, a Python start-up, could use), and its
        peak memory where the memory controller is offered (at least the
        worker's 64 MiB); else it says it is not measured here.
        """
        result, printed = self.runListing("cg_stats")
        stats = result.cgroup
        self.assertEqual(result.exitCode, 0)
        self.assertGreater(stats.cpuUsageUsec, 0)
        self.assertGreater(stats.cpuUserUsec, 0)
        self.assertLessEqual(stats.cpuUserUsec, stats.cpuUsageUsec)
        self.assertIn(f"CPU: {stats.cpuUsageUsec / 1000:.0f} ms", printed)
        if "memory" in _offered():
            assert stats.memoryPeak is not None
            self.assertGreaterEqual(stats.memoryPeak, 64 << 20)
            self.assertIn("peak memory: ", printed)
        else:
            self.assertIsNone(stats.memoryPeak)
            self.assertIn("the memory controller", printed)
            self.assertIn("peak memory: not measured here", printed)


globals().update(makeTestCaseClasses(CgroupListingsMixin))

__all__ = ["loadListing"]
