# -*- test-case-name: tests.test_cgroup_delegation -*-
"""
Delegation to an unprivileged user: a cgroup that root made and gave to
nobody (the directory, C{cgroup.procs}, C{cgroup.subtree_control} and
C{cgroup.threads} chowned, as systemd does for C{Delegate=yes}) is found
by a txspawn process running as nobody in it, which makes, fills, kills
and removes leaves there, and enables a controller after moving itself
into a leaf of its own; without the delegation it gets
L{CgroupUnavailable} with the hint.

The children run the distribution's Python (nobody cannot enter root's
home, where the venv is) with a world-readable copy of txspawn
(L{tests.nsutil.portableTree}); root places each in its cgroup before
dropping to nobody with C{setpriv}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import (
    NOBODY,
    allLeaves,
    enableHugetlbAtRoot,
    makeScratchCgroup,
    runInCgroup,
)
from tests.nsutil import ANY_PYTHON, portableTree
from txspawn._cgroup.parent import DELEGATE_HINT

__all__ = ["DelegationTests"]

#: As nobody: find the parent, make a leaf, put a process in it, kill it,
#: remove the leaf; then enable the controllers of argv[1:].
DELEGATED = """\
import json, os, subprocess, sys
from txspawn._cgroup.hierarchy import ownCgroup
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroup.parent import enableControllers, findParent
from txspawn.options import Cgroup
parent = findParent(None)
out = {"uid": os.geteuid(), "path": parent.path, "how": parent.how}
leaf = createLeaf(Cgroup())
out["leafOwner"] = os.stat(leaf.path).st_uid
child = subprocess.Popen(["sleep", "1000"])
fd = leaf.openProcs()
os.write(fd, str(child.pid).encode())
os.close(fd)
out["childIn"] = ownCgroup(child.pid)
out["busy"] = not leaf.tryRemove()
leaf.kill()
out["status"] = child.wait()
out["removed"] = leaf.tryRemove()
out["leafExists"] = os.path.exists(leaf.path)
if sys.argv[1:]:
    enableControllers(parent, frozenset(sys.argv[1:]))
    out["selfLeaf"] = parent.selfLeaf
    out["own"] = ownCgroup()
    with open(os.path.join(parent.path, "cgroup.subtree_control")) as f:
        out["control"] = f.read().split()
    second = createLeaf(Cgroup())
    out["secondFiles"] = sorted(os.listdir(second.path))
    out["secondRemoved"] = second.tryRemove()
print(json.dumps(out))
"""

#: As nobody: what finding a parent and making a leaf say.
UNDELEGATED = """\
import json, os, sys
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroup.parent import CgroupUnavailable, findParent
from txspawn.errors import SpawnError
from txspawn.options import Cgroup
out = {"uid": os.geteuid()}
for key, given in (("auto", None), ("given", sys.argv[1])):
    try:
        parent = findParent(given)
    except CgroupUnavailable as e:
        out[key] = {"unavailable": str(e), "hint": e.hint}
    else:
        out[key] = {"path": parent.path, "how": parent.how}
try:
    leaf = createLeaf(Cgroup())
except CgroupUnavailable as e:
    out["leaf"] = {"unavailable": str(e)}
except SpawnError as e:
    out["leaf"] = {"errno": e.errno, "stage": e.stage.name,
                   "filename": e.filename}
else:
    out["leaf"] = {"path": leaf.path}
    leaf.discard()
out["fds"] = sorted(os.listdir("/proc/self/fd"))
print(json.dumps(out))
"""

#: The files systemd chowns to the delegate.
DELEGATED_FILES = ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads")


class DelegationTests(SynchronousTestCase):
    """
    A txspawn process running as nobody.
    """

    def runAsNobody(self, cgroup: str, script: str, *args: str) -> dict[str, object]:
        tree = portableTree()
        result: dict[str, object] = runInCgroup(
            cgroup,
            script,
            args,
            user=NOBODY,
            python=ANY_PYTHON.decode(),
            pythonPath=tree,
        )
        self.assertEqual(result["uid"], NOBODY)
        return result

    def delegate(self, cgroup: str) -> None:
        for name in DELEGATED_FILES:
            os.chown(os.path.join(cgroup, name), NOBODY, NOBODY)

    def test_delegated(self) -> None:
        """
        In a cgroup given to it, nobody finds it (its own), and makes
        (owns), fills, kills and removes leaves in it; enabling a
        controller moves the process into a leaf of its own first.
        """
        enableHugetlbAtRoot(self)
        scratch = makeScratchCgroup(self)
        self.delegate(scratch)
        out = self.runAsNobody(scratch, DELEGATED, "hugetlb")
        self.assertEqual(
            (out["path"], out["how"], out["leafOwner"]),
            (scratch, "delegated (writable)", NOBODY),
        )
        self.assertIn(os.path.basename(scratch) + "/txspawn-", str(out["childIn"]))
        self.assertEqual(
            (out["busy"], out["status"], out["removed"], out["leafExists"]),
            (True, -9, True, False),
        )
        selfLeaf = str(out["selfLeaf"])
        self.assertEqual(os.path.dirname(selfLeaf), scratch)
        self.assertTrue(str(out["own"]).endswith("/" + os.path.basename(selfLeaf)))
        self.assertEqual(out["control"], ["hugetlb"])
        secondFiles = out["secondFiles"]
        assert isinstance(secondFiles, list)
        self.assertIn("hugetlb.2MB.max", secondFiles)
        self.assertTrue(out["secondRemoved"])
        self.assertEqual(allLeaves(scratch), [os.path.basename(selfLeaf)])

    def test_notDelegated(self) -> None:
        """
        In a cgroup root did not give away, nobody gets
        L{CgroupUnavailable} with the C{Delegate=yes} hint, whether it
        looks for a parent or names that one; no leaf is made and no fd
        left open.
        """
        scratch = makeScratchCgroup(self)
        out = self.runAsNobody(scratch, UNDELEGATED, scratch)
        auto = out["auto"]
        assert isinstance(auto, dict)
        self.assertEqual(auto["hint"], DELEGATE_HINT)
        self.assertIn("is not delegated to it", auto["unavailable"])
        self.assertIn("Delegate=yes", auto["unavailable"])
        given = out["given"]
        assert isinstance(given, dict)
        self.assertIn(
            f"the cgroup parent {scratch}: its cgroup.procs is not writable by "
            f"uid {NOBODY}",
            given["unavailable"],
        )
        leaf = out["leaf"]
        assert isinstance(leaf, dict)
        self.assertIn("Delegate=yes", leaf["unavailable"])
        self.assertEqual(out["fds"], ["0", "1", "2", "3"])  # 3: the listdir
        self.assertEqual(allLeaves(scratch), [])

    def test_xattrWithoutPermission(self) -> None:
        """
        A cgroup marked delegated (C{user.delegate}) is found by the mark;
        when it was not also given away, making a leaf fails with
        L{SpawnError} C{EACCES} of stage C{CGROUP}, leaving nothing.
        """
        scratch = makeScratchCgroup(self)
        os.setxattr(scratch, "user.delegate", b"1")
        out = self.runAsNobody(scratch, UNDELEGATED, scratch)
        self.assertEqual(
            out["auto"], {"path": scratch, "how": "delegated (xattr user.delegate)"}
        )
        leaf = out["leaf"]
        assert isinstance(leaf, dict)
        self.assertEqual((leaf["errno"], leaf["stage"]), (13, "CGROUP"))
        self.assertTrue(str(leaf["filename"]).startswith(scratch + "/txspawn-"))
        self.assertEqual(out["fds"], ["0", "1", "2", "3"])
        self.assertEqual(allLeaves(scratch), [])
