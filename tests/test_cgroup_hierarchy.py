# -*- test-case-name: tests.test_cgroup_hierarchy -*-
"""
Tests for L{txspawn._cgroup.hierarchy}: finding the cgroup v2 mount (and
only it, never a v1 hierarchy), a process's own cgroup, its start time,
and killing and removing a cgroup tree.
"""

from __future__ import annotations

import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import (
    childInCgroup,
    makeScratchCgroup,
    mountOrSkip,
    waitEmpty,
)
from txspawn._cgroup.hierarchy import (
    CgroupMount,
    cgroupMount,
    cgroupPath,
    killCgroup,
    ownCgroup,
    parseMountinfo,
    processStartTime,
    removeCgroup,
)

__all__ = ["KillRemoveTests", "MountTests", "ProcessTests"]

#: A hybrid host's mountinfo (this host's shape): v1 hierarchies first.
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

#: A pure v2 host's.
PURE = """\
22 1 0:21 / / rw - ext4 /dev/vda rw
29 22 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""


class MountTests(SynchronousTestCase):
    """
    L{parseMountinfo} and L{cgroupMount}.
    """

    def test_hybrid(self) -> None:
        """
        On a hybrid host the cgroup2 mount is found beside the v1 ones.
        """
        found = parseMountinfo(HYBRID)
        assert found is not None
        self.assertEqual((found.path, found.root), ("/sys/fs/cgroup/unified", "/"))

    def test_pure(self) -> None:
        """
        Optional fields (C{shared:4}) before the separator are skipped.
        """
        found = parseMountinfo(PURE)
        assert found is not None
        self.assertEqual((found.path, found.root), ("/sys/fs/cgroup", "/"))

    def test_none(self) -> None:
        """
        Without a cgroup2 mount (v1 only), L{None}.
        """
        self.assertIsNone(parseMountinfo(HYBRID.replace("cgroup2", "cgroup")))

    def test_escapedAndUnreachable(self) -> None:
        """
        Octal escapes are decoded; a mount whose root is outside this
        cgroup namespace (C{/..}) is passed over for a reachable one.
        """
        text = (
            "50 1 0:38 /.. /outer rw - cgroup2 cgroup2 rw\n"
            "51 1 0:38 /a\\040b /my\\040cg rw - cgroup2 cgroup2 rw\n"
        )
        found = parseMountinfo(text)
        assert found is not None
        self.assertEqual((found.path, found.root), ("/my cg", "/a b"))

    def test_thisHost(self) -> None:
        """
        L{cgroupMount} is a cgroup2 mount of C{/proc/self/mountinfo} and
        holds the root cgroup's files.
        """
        mount = mountOrSkip()
        with open("/proc/self/mountinfo") as f:
            kinds = {
                line.split()[4]: line.split(" - ")[1].split()[0]
                for line in f.read().splitlines()
            }
        self.assertEqual(kinds[mount], "cgroup2")
        self.assertTrue(os.path.isfile(os.path.join(mount, "cgroup.procs")))
        self.assertIs(cgroupMount(), cgroupMount())

    def test_cgroupPath(self) -> None:
        """
        A cgroup's directory under a mount of the whole tree, or of a
        subtree (a mount made in another cgroup namespace).
        """
        whole = CgroupMount("/m", "/")
        self.assertEqual(cgroupPath(whole, "/"), "/m")
        self.assertEqual(cgroupPath(whole, "/a/b"), "/m/a/b")
        sub = CgroupMount("/m", "/a")
        self.assertEqual(cgroupPath(sub, "/a/b"), "/m/b")
        self.assertEqual(cgroupPath(sub, "/a"), "/m")
        self.assertIsNone(cgroupPath(sub, "/ab"))
        self.assertIsNone(cgroupPath(sub, "/c"))


class ProcessTests(SynchronousTestCase):
    """
    L{ownCgroup} and L{processStartTime}.
    """

    def test_ownCgroupOfChild(self) -> None:
        """
        A child placed in a scratch cgroup is in it by L{ownCgroup}, whose
        path under the mount is the scratch directory.
        """
        scratch = makeScratchCgroup(self)
        child = childInCgroup(self, scratch)
        mount = mountOrSkip()
        own = ownCgroup(child.pid)
        self.assertEqual(own, "/" + os.path.relpath(scratch, mount))
        self.assertEqual(cgroupPath(CgroupMount(mount, "/"), own), scratch)

    def test_ownCgroupSelf(self) -> None:
        """
        Our own: the C{0::} line of C{/proc/self/cgroup}.
        """
        with open("/proc/self/cgroup") as f:
            line = next(x for x in f.read().splitlines() if x.startswith("0::"))
        self.assertEqual(ownCgroup(), line[3:])

    def test_startTime(self) -> None:
        """
        Field 22 of C{/proc/<pid>/stat}, even when the command name holds
        spaces and parentheses; L{None} for a reaped child.
        """
        child = subprocess.Popen(
            ["/bin/sh", "-c", "exec -a 'a ) b (c' sleep 1000"],
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        with open(f"/proc/{child.pid}/stat", "rb") as f:
            raw = f.read()
        expected = int(raw[raw.rindex(b")") + 2 :].split()[19])
        self.assertEqual(processStartTime(child.pid), expected)
        child.kill()
        child.wait()
        self.assertIsNone(processStartTime(child.pid))
        self.assertIsNotNone(processStartTime())


class KillRemoveTests(SynchronousTestCase):
    """
    L{killCgroup} and L{removeCgroup}.
    """

    def test_removeNested(self) -> None:
        """
        A cgroup with cgroups made inside it (as a child in its own cgroup
        namespace may) is removed whole.
        """
        scratch = makeScratchCgroup(self)
        leaf = os.path.join(scratch, "leaf")
        os.makedirs(os.path.join(leaf, "a", "b"))
        os.mkdir(os.path.join(leaf, "c"))
        self.assertTrue(removeCgroup(leaf))
        self.assertFalse(os.path.exists(leaf))
        self.assertTrue(removeCgroup(leaf), "a removed cgroup counts as gone")

    def test_busy(self) -> None:
        """
        A cgroup with a process in it is not removed: C{False} (C{EBUSY}).
        """
        scratch = makeScratchCgroup(self)
        leaf = os.path.join(scratch, "leaf")
        os.mkdir(leaf)
        child = childInCgroup(self, leaf)
        self.assertFalse(removeCgroup(leaf))
        self.assertTrue(os.path.isdir(leaf))
        child.kill()
        child.wait()
        self.assertTrue(removeCgroup(leaf))

    def test_killTree(self) -> None:
        """
        L{killCgroup} kills every process of the cgroup, a grandchild that
        left the session and process group included; nothing for a
        removed cgroup.
        """
        scratch = makeScratchCgroup(self)
        leaf = os.path.join(scratch, "leaf")
        os.mkdir(leaf)
        child = childInCgroup(
            self,
            leaf,
            ["/bin/sh", "-c", "setsid sh -c 'echo $$; exec sleep 1000' & wait"],
        )
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        self.assertEqual(ownCgroup(grandchild), ownCgroup(child.pid))
        self.assertNotEqual(os.getsid(grandchild), os.getsid(child.pid))
        killCgroup(leaf)
        self.assertEqual(child.wait(), -9)
        waitEmpty(leaf)
        self.assertTrue(removeCgroup(leaf))
        killCgroup(leaf)
