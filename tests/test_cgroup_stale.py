# -*- test-case-name: tests.test_cgroup_stale -*-
"""
Tests for L{txspawn._cgroup.stale}: the leaves of a txspawn process that
died are killed and removed by the next one; those of a live process are
kept, whatever is in them.
"""

from __future__ import annotations

import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import allLeaves, childInCgroup, makeScratchCgroup
from txspawn._cgroup.hierarchy import processStartTime
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroup.stale import ownerAlive, sweepStaleAt
from txspawn.options import Cgroup

__all__ = ["SweepTests"]


def deadProcess() -> tuple[int, int]:
    """
    The pid and start time of a process that has exited and been reaped.
    """
    child = subprocess.Popen(["sleep", "1000"])
    start = processStartTime(child.pid)
    assert start is not None
    child.kill()
    child.wait()
    return child.pid, start


class SweepTests(SynchronousTestCase):
    """
    L{sweepStaleAt}, and L{createLeaf}'s sweep.
    """

    def setUp(self) -> None:
        self.scratch = makeScratchCgroup(self)

    def leaf(self, name: str) -> str:
        path = os.path.join(self.scratch, name)
        os.mkdir(path)
        return path

    def test_deadOwner(self) -> None:
        """
        A leaf named for a process that is gone is killed (with the
        process still in it) and removed; so is the leaf such a process
        moved itself into.
        """
        pid, start = deadProcess()
        self.assertFalse(ownerAlive(pid, start))
        busy = self.leaf(f"txspawn-{pid}-{start}-3")
        left = childInCgroup(self, busy)
        self.leaf(f"txspawn-self-{pid}-{start}")
        removed = sweepStaleAt(self.scratch) or []
        self.assertEqual(left.wait(), -9)
        # Killed, but the kernel may still count it for a moment: then it
        # is left for the next sweep.
        removed += sweepStaleAt(self.scratch) or []
        self.assertEqual(
            sorted(removed), [f"txspawn-{pid}-{start}-3", f"txspawn-self-{pid}-{start}"]
        )
        self.assertEqual(allLeaves(self.scratch), [])

    def test_liveOwner(self) -> None:
        """
        Leaves of a live process (this one) are kept, with what runs in
        them; a recycled pid (the same pid, another start time) does not
        keep a dead owner's leaf; names txspawn did not make are left
        alone.
        """
        pid, start = os.getpid(), processStartTime()
        assert start is not None
        mine = self.leaf(f"txspawn-{pid}-{start}-0")
        running = childInCgroup(self, mine)
        self.leaf(f"txspawn-self-{pid}-{start}")
        self.leaf(f"txspawn-{pid}-{start + 1}-0")
        for other in ("other", "txspawn-x-1-2", "txspawn-test-abc"):
            self.leaf(other)
        self.assertEqual(sweepStaleAt(self.scratch), [f"txspawn-{pid}-{start + 1}-0"])
        self.assertIsNone(running.poll())
        self.assertEqual(
            allLeaves(self.scratch),
            sorted(
                [
                    f"txspawn-{pid}-{start}-0",
                    f"txspawn-self-{pid}-{start}",
                    "other",
                    "txspawn-x-1-2",
                    "txspawn-test-abc",
                ]
            ),
        )

    def test_onceByCreateLeaf(self) -> None:
        """
        The first leaf made in a parent sweeps it; later ones do not.
        """
        pid, start = deadProcess()
        self.leaf(f"txspawn-{pid}-{start}-0")
        first = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(first.discard)
        self.assertEqual(allLeaves(self.scratch), [first.name])
        self.leaf(f"txspawn-{pid}-{start}-1")
        second = createLeaf(Cgroup(parent=self.scratch))
        self.addCleanup(second.discard)
        self.assertEqual(
            allLeaves(self.scratch),
            sorted([first.name, second.name, f"txspawn-{pid}-{start}-1"]),
        )

    def test_missingParent(self) -> None:
        """
        A parent that cannot be listed (gone, or no fd free) sweeps
        nothing and raises nothing: L{None} says it was not swept, so that
        a later spawn tries again.
        """
        self.assertIsNone(sweepStaleAt(os.path.join(self.scratch, "gone")))
