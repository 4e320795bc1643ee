# -*- test-case-name: tests.test_cgroup_parent -*-
"""
Tests for L{txspawn._cgroup.parent}: finding the parent cgroup (given,
delegated, C{<mount>/txspawn} as root, else unavailable with the hint),
and enabling controllers under cgroup v2's "no internal processes" rule.

Whatever depends on "this process" (its own cgroup, the move of it into a
leaf of its own) runs in a child placed in a scratch cgroup
(L{tests.cgrouputil.runInCgroup}): the test runner is never moved.  The
only controller this host's cgroup v2 offers is C{hugetlb}, so it is the
one enabled for real; C{memory} is the one missing.
"""

from __future__ import annotations

import errno
import os
import stat

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import (
    allLeaves,
    childInCgroup,
    enableHugetlbAtRoot,
    makeScratchCgroup,
    mountOrSkip,
    runInCgroup,
)
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroup.parent import (
    DELEGATE_HINT,
    SUBTREE,
    CgroupUnavailable,
    enableControllers,
    findParent,
)
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature
from txspawn.options import Cgroup

__all__ = ["EnableTests", "FindTests"]

#: A child that finds its parent (the path given as argv[1], or
#: automatically) and prints it.
FIND = """\
import json, os, sys
from txspawn._cgroup.parent import CgroupUnavailable, findParent
given = sys.argv[1] if len(sys.argv) > 1 else None
try:
    parent = findParent(given)
except CgroupUnavailable as e:
    print(json.dumps({"unavailable": str(e), "reason": e.reason, "hint": e.hint}))
else:
    st = os.stat(parent.path)
    print(json.dumps({
        "path": parent.path, "how": parent.how,
        "controllers": sorted(parent.controllers),
        "enabled": sorted(parent.enabled),
        "mode": st.st_mode & 0o7777,
    }))
"""

#: A child that enables the controllers of argv[1:] on its automatically
#: found parent, then makes a leaf, and prints where it and the leaf are.
ENABLE = """\
import json, os, sys
from txspawn._cgroup.hierarchy import ownCgroup
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroup.parent import enableControllers, findParent
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature
from txspawn.options import Cgroup
parent = findParent(None)
before = ownCgroup()
try:
    enableControllers(parent, frozenset(sys.argv[1:]))
except UnsupportedFeature as e:
    print(json.dumps({"error": str(e), "own": ownCgroup(),
                      "children": sorted(os.listdir(parent.path))}))
    sys.exit(0)
leaf = createLeaf(Cgroup())
with open(os.path.join(parent.path, "cgroup.subtree_control")) as f:
    control = f.read().split()
files = sorted(os.listdir(leaf.path))
print(json.dumps({
    "before": before, "own": ownCgroup(), "selfLeaf": parent.selfLeaf,
    "pid": os.getpid(), "control": control, "enabled": sorted(parent.enabled),
    "leaf": leaf.path, "leafFiles": files, "removed": leaf.tryRemove(),
}))
"""


class FindTests(SynchronousTestCase):
    """
    L{findParent}.
    """

    def test_given(self) -> None:
        """
        A given cgroup v2 directory is the parent, as given, with its
        controllers and enabled controllers; found once per process.
        """
        scratch = makeScratchCgroup(self)
        parent = findParent(scratch + "/")
        with open(os.path.join(scratch, "cgroup.controllers")) as f:
            controllers = frozenset(f.read().split())
        self.assertEqual(
            (parent.path, parent.how, parent.controllers, parent.enabled),
            (scratch, "given", controllers, frozenset()),
        )
        self.assertIs(findParent(scratch + "/"), parent)

    def test_givenNotUnderMount(self) -> None:
        """
        A directory outside the cgroup2 mount (say, a v1 hierarchy) is
        refused, naming it.
        """
        mount = mountOrSkip()
        for given in ("/tmp", "/sys/fs/cgroup/memory"):
            e = self.assertRaises(CgroupUnavailable, findParent, given)
            self.assertIn(f"{given} is not under the cgroup v2 mount {mount}", str(e))

    def test_givenNotACgroup(self) -> None:
        """
        A path under the mount that is not a cgroup directory is refused.
        """
        scratch = makeScratchCgroup(self)
        for given in (scratch + "/missing", scratch + "/cgroup.procs"):
            e = self.assertRaises(CgroupUnavailable, findParent, given)
            self.assertIn(f"{given} is not a cgroup v2 directory", e.reason)

    def test_ownDelegated(self) -> None:
        """
        A process (root here, so its cgroup's files are writable) in a
        cgroup other than the root finds its own cgroup.
        """
        scratch = makeScratchCgroup(self)
        found = runInCgroup(scratch, FIND)
        self.assertEqual(
            (found["path"], found["how"]), (scratch, "delegated (writable)")
        )

    def test_ownDelegatedXattr(self) -> None:
        """
        systemd's mark of a delegated cgroup (C{trusted.delegate}) is
        reported as how it was found.
        """
        scratch = makeScratchCgroup(self)
        try:
            os.setxattr(scratch, "trusted.delegate", b"1")
        except OSError as e:
            self.skipTest(f"cannot set trusted.delegate on cgroupfs: {e}")
        found = runInCgroup(scratch, FIND)
        self.assertEqual(
            (found["path"], found["how"]),
            (scratch, "delegated (xattr trusted.delegate)"),
        )

    def test_rootSubtree(self) -> None:
        """
        A root process in the root cgroup (of its cgroup namespace: a
        scratch cgroup is the root of a namespace with the hierarchy
        mounted afresh) makes C{<mount>/txspawn}, mode 0755, and uses it.
        """
        scratch = makeScratchCgroup(self)
        mount = mountOrSkip()
        wrapper = [
            "unshare",
            "--cgroup",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            f'umount -l {mount} && mount -t cgroup2 cgroup2 {mount} && exec "$@"',
            "sh",
        ]
        found = runInCgroup(scratch, FIND, wrapper=wrapper)
        self.assertEqual(
            (found["path"], found["how"], found["mode"]),
            (os.path.join(mount, "txspawn"), SUBTREE, 0o755),
        )
        self.assertEqual(allLeaves(scratch), ["txspawn"])
        self.assertEqual(stat.S_IMODE(os.stat(scratch + "/txspawn").st_mode), 0o755)

    def test_noMountMessage(self) -> None:
        """
        The hint names systemd's delegation.
        """
        self.assertIn("Delegate=yes", DELEGATE_HINT)
        e = CgroupUnavailable("no cgroup v2 hierarchy is mounted", DELEGATE_HINT)
        self.assertEqual(str(e), f"no cgroup v2 hierarchy is mounted ({DELEGATE_HINT})")


class EnableTests(SynchronousTestCase):
    """
    L{enableControllers}, and L{createLeaf}'s use of it.
    """

    def test_missingController(self) -> None:
        """
        A limit whose controller the hierarchy does not offer raises
        L{UnsupportedFeature} naming the option and the controller, and
        leaves nothing behind.
        """
        scratch = makeScratchCgroup(self)
        e = self.assertRaises(
            UnsupportedFeature, createLeaf, Cgroup(parent=scratch, memoryMax="64M")
        )
        self.assertEqual(e.feature, "cgroup")
        self.assertIn("memoryMax needs the memory controller", str(e))
        self.assertNotIn("memory", findParent(scratch).controllers)
        self.assertIn("(cgroup.controllers: ", str(e))
        self.assertIn("bound to cgroup v1", str(e))
        e = self.assertRaises(
            UnsupportedFeature,
            createLeaf,
            Cgroup(parent=scratch, pidsMax=5, memoryHigh="1G", memoryMax="2G"),
        )
        self.assertIn("memoryMax and memoryHigh needs the memory controller", str(e))
        self.assertEqual(allLeaves(scratch), [])
        with open(os.path.join(scratch, "cgroup.subtree_control")) as f:
            self.assertEqual(f.read().split(), [])

    def test_enableHugetlbMovesSelf(self) -> None:
        """
        Enabling a controller in a cgroup that holds this process first
        moves it into C{txspawn-self-<pid>-<starttime>}, then enables only
        that controller; leaves made then have its files.
        """
        enableHugetlbAtRoot(self)
        scratch = makeScratchCgroup(self)
        mount = mountOrSkip()
        done = runInCgroup(scratch, ENABLE, ["hugetlb"])
        self.assertEqual(done["before"], "/" + os.path.relpath(scratch, mount))
        selfLeaf = done["selfLeaf"]
        self.assertRegex(
            os.path.basename(selfLeaf), rf"^txspawn-self-{done['pid']}-\d+$"
        )
        self.assertEqual(os.path.dirname(selfLeaf), scratch)
        self.assertEqual(done["own"], "/" + os.path.relpath(selfLeaf, mount))
        self.assertEqual(done["control"], ["hugetlb"])
        self.assertEqual(done["enabled"], ["hugetlb"])
        self.assertTrue(any(f.startswith("hugetlb.") for f in done["leafFiles"]))
        self.assertTrue(done["removed"])
        self.assertEqual(allLeaves(scratch), [os.path.basename(selfLeaf)])

    def test_noMoveWithoutLimits(self) -> None:
        """
        Without a controller to enable, the process stays where it is.
        """
        scratch = makeScratchCgroup(self)
        mount = mountOrSkip()
        done = runInCgroup(scratch, ENABLE)
        here = "/" + os.path.relpath(scratch, mount)
        self.assertEqual((done["before"], done["own"]), (here, here))
        self.assertIsNone(done["selfLeaf"])
        self.assertEqual(done["control"], [])

    def test_otherProcesses(self) -> None:
        """
        A parent that holds other processes than this one cannot enable a
        controller: L{UnsupportedFeature} says why, and nothing is moved
        or made.
        """
        enableHugetlbAtRoot(self)
        scratch = makeScratchCgroup(self)
        other = childInCgroup(self, scratch)
        done = runInCgroup(scratch, ENABLE, ["hugetlb"])
        self.assertIn('"no internal processes" rule', done["error"])
        self.assertIn(str(other.pid), done["error"])
        self.assertEqual(done["own"], "/" + os.path.relpath(scratch, mountOrSkip()))
        self.assertEqual(done["children"], sorted(os.listdir(scratch)))
        self.assertEqual(allLeaves(scratch), [])

    def test_enableGivenRunner(self) -> None:
        """
        For a given parent that does not hold this process, the controller
        is enabled with nothing moved; enabling it again writes nothing.
        """
        enableHugetlbAtRoot(self)
        scratch = makeScratchCgroup(self)
        parent = findParent(scratch)
        self.assertEqual(parent.controllers, frozenset({"hugetlb"}))
        enableControllers(parent, frozenset({"hugetlb"}))
        self.assertEqual(parent.enabled, frozenset({"hugetlb"}))
        self.assertIsNone(parent.selfLeaf)
        self.assertEqual(allLeaves(scratch), [])
        # Disabled behind its back: the cached verdict is trusted (no
        # syscall on the spawn path).
        with open(os.path.join(scratch, "cgroup.subtree_control"), "w") as f:
            f.write("-hugetlb")
        enableControllers(parent, frozenset({"hugetlb"}))
        with open(os.path.join(scratch, "cgroup.subtree_control")) as f:
            self.assertEqual(f.read().split(), [])

    def test_writeFailure(self) -> None:
        """
        A failed write of C{cgroup.subtree_control} is a L{SpawnError} of
        stage C{CGROUP} naming the file.
        """
        scratch = makeScratchCgroup(self)
        parent = findParent(scratch)
        # A stale verdict: a controller the hierarchy does not offer (here
        # they are bound to cgroup v1) believed offered.
        missing = [
            c
            for c in ("pids", "memory", "cpu", "io", "rdma", "misc")
            if c not in parent.controllers
        ]
        if not missing:
            self.skipTest("every controller is offered here")
        parent.controllers = frozenset(missing[:1])
        e = self.assertRaises(
            SpawnError, enableControllers, parent, frozenset(missing[:1])
        )
        self.assertEqual(e.stage, ChildSetupStage.CGROUP)
        self.assertEqual(e.errno, errno.ENOENT)
        self.assertEqual(e.filename, os.path.join(scratch, "cgroup.subtree_control"))
