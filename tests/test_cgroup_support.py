# -*- test-case-name: tests.test_cgroup_support -*-
"""
Tests for L{txspawn._cgroup.support}: the cgroup lines of C{python -m
txspawn info}, found by real probes, and the reading of the
C{CLONE_INTO_CGROUP} probe's result (including the kernel's kill of a
child cloned into a cgroup with another C{cgroup.kill} history).
"""

from __future__ import annotations

import errno
import os
import signal

from twisted.trial.unittest import SynchronousTestCase

from tests.cgrouputil import allLeaves, makeScratchCgroup, mountOrSkip, runInCgroup
from txspawn._cgroup.leaf import createLeaf
from txspawn._cgroup.support import (
    KILLED_BEFORE_RUN,
    cloneIntoCgroupProbe,
    describeProbeStatus,
)
from txspawn.options import Cgroup

__all__ = ["ProbeTests", "SupportTests"]

SUPPORT = """\
import json
from txspawn._cgroup.support import cgroupSupport
print(json.dumps(cgroupSupport()))
"""


class ProbeTests(SynchronousTestCase):
    """
    L{describeProbeStatus}, and the probe itself on real leaves.
    """

    def test_statuses(self) -> None:
        """
        Ran: on; refused by clone3: off with the errno's name; killed by
        the kernel: off with the C{cgroup.kill} history reason.
        """
        self.assertEqual(describeProbeStatus(0)[0], "on")
        self.assertEqual(
            describeProbeStatus(-errno.EBUSY),
            ("off", "clone3(CLONE_INTO_CGROUP) failed with EBUSY"),
        )
        self.assertEqual(
            describeProbeStatus(signal.SIGKILL), ("off", KILLED_BEFORE_RUN)
        )
        self.assertEqual(describeProbeStatus(3 << 8)[0], "off")

    def test_realProbe(self) -> None:
        """
        A child cloned into a fresh leaf runs; into a leaf whose
        C{cgroup.kill} was written once (a history the spawner's cgroup
        does not have), the kernel kills it before it runs.
        """
        probe, missing = cloneIntoCgroupProbe()
        if probe is None:
            self.skipTest(missing)
        scratch = makeScratchCgroup(self)
        fresh = createLeaf(Cgroup(parent=scratch))
        self.addCleanup(fresh.discard)
        self.assertEqual(describeProbeStatus(probe(fresh.dirFd))[0], "on")
        killed = createLeaf(Cgroup(parent=scratch))
        self.addCleanup(killed.discard)
        killed.kill()
        self.assertEqual(
            describeProbeStatus(probe(killed.dirFd)), ("off", KILLED_BEFORE_RUN)
        )


class SupportTests(SynchronousTestCase):
    """
    L{cgroupSupport}, run by a root process at the root of its own cgroup
    namespace (so that the C{txspawn} cgroup it makes is in a scratch
    cgroup).
    """

    def test_lines(self) -> None:
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
        lines = runInCgroup(scratch, SUPPORT, wrapper=wrapper)
        byName = {name: [on, reason] for name, on, reason in lines}
        self.assertEqual(
            [name for name, _, _ in lines],
            [
                "cgroup v2",
                "cgroup (own)",
                "cgroup parent",
                "cgroup controllers",
                "CLONE_INTO_CGROUP",
                "cgroup.kill",
            ],
        )
        self.assertEqual(byName["cgroup v2"], ["on", f"mounted at {mount}"])
        self.assertEqual(byName["cgroup (own)"], ["on", "/"])
        self.assertEqual(
            byName["cgroup parent"],
            ["on", f"{mount}/txspawn: txspawn subtree (root)"],
        )
        if cloneIntoCgroupProbe()[0] is not None:
            self.assertEqual(byName["CLONE_INTO_CGROUP"][0], "on")
        self.assertEqual(byName["cgroup.kill"][0], "on")
        self.assertEqual(allLeaves(scratch), ["txspawn"], "the probe leaf removed")
        self.assertFalse(
            [n for n in os.listdir(scratch + "/txspawn") if n.startswith("txspawn-")]
        )
