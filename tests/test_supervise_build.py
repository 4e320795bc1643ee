# -*- test-case-name: tests.test_supervise_build -*-
"""
Tests for L{txspawn.supervise._build}: from a program's config to its
processes (spawn options completed for the stop, environment, user and
group, backoff, readiness, logs).
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import textwrap

from twisted.trial.unittest import SynchronousTestCase

from txspawn.options import Cgroup
from txspawn.supervise import Backoff, ConfigErrors, Restart, parseConfig
from txspawn.supervise._build import (
    BuildError,
    buildInstances,
    resolveIds,
    spawnOptionsFor,
)
from txspawn.supervise.config import ProgramConfig
from txspawn.testing import MemoryProcessReactor


def program(test: SynchronousTestCase, keys: str) -> ProgramConfig:
    """
    The program C{p} with the TOML C{keys} (after its command).
    """
    text = "[programs.p]\ncommand = 'p'\n" + textwrap.dedent(keys)
    return parseConfig(text, baseDir=test.mktemp()).programs["p"]


class SpawnOptionsTests(SynchronousTestCase):
    """
    L{spawnOptionsFor}: the options completed for the stop.
    """

    def test_treeAddsCgroupAndSession(self) -> None:
        """
        C{kill = "tree"} (the default) without a cgroup adds a best-effort
        cgroup and a new session.
        """
        options = spawnOptionsFor(program(self, ""))
        self.assertEqual(options.cgroup, Cgroup(required=False))
        self.assertTrue(options.newSession)

    def test_treeKeepsConfiguredCgroup(self) -> None:
        """
        A cgroup the config gives is kept as it is.
        """
        options = spawnOptionsFor(
            program(self, "spawn = { cgroup = { pids_max = 10 } }\n")
        )
        self.assertEqual(options.cgroup, Cgroup(pidsMax=10))

    def test_group(self) -> None:
        """
        C{kill = "group"} adds a new session, no cgroup.
        """
        options = spawnOptionsFor(program(self, "stop = { kill = 'group' }\n"))
        self.assertIsNone(options.cgroup)
        self.assertTrue(options.newSession)

    def test_ownGroupKept(self) -> None:
        """
        A child placed in a process group by the config is not put in a
        new session.
        """
        options = spawnOptionsFor(program(self, "spawn = { process_group = 0 }\n"))
        self.assertEqual((options.processGroup, options.newSession), (0, False))


class IdsTests(SynchronousTestCase):
    """
    L{resolveIds}: user and group names.
    """

    def test_userName(self) -> None:
        """
        A user name gives its uid and its primary group's gid.
        """
        nobody = pwd.getpwnam("nobody")
        uid, gid, problems = resolveIds(program(self, "user = 'nobody'\n"))
        self.assertEqual((uid, gid, problems), (nobody.pw_uid, nobody.pw_gid, []))

    def test_groupName(self) -> None:
        """
        A group name overrides the user's primary group.
        """
        group = grp.getgrgid(0).gr_name
        uid, gid, _ = resolveIds(program(self, f"user = 'nobody'\ngroup = '{group}'\n"))
        self.assertEqual((uid, gid), (pwd.getpwnam("nobody").pw_uid, 0))

    def test_ownIds(self) -> None:
        """
        This process's own uid (and gid) ask for no change.
        """
        uid, gid, _ = resolveIds(program(self, f"user = {os.geteuid()}\n"))
        self.assertEqual((uid, gid), (None, None))

    def test_unknownNames(self) -> None:
        """
        Names that do not exist are problems naming their key; building
        the program raises them as a L{BuildError} (a L{ConfigErrors}).
        """
        config = program(self, "user = 'no-such-user'\ngroup = 'no-such-group'\n")
        error = self.assertRaises(
            BuildError,
            buildInstances,
            config,
            MemoryProcessReactor(),
            environ={},
            runDir=self.mktemp(),
            configName="procs.toml",
        )
        self.assertIsInstance(error, ConfigErrors)
        self.assertEqual(
            str(error),
            "procs.toml: programs.p.user: no user named 'no-such-user' here\n"
            "procs.toml: programs.p.group: no group named 'no-such-group' here",
        )


class InstancesTests(SynchronousTestCase):
    """
    L{buildInstances}.
    """

    def test_instances(self) -> None:
        """
        Each instance is a L{ProgramProcess} named after it, with the
        program's restart policy, backoff, stop signal and timeout, and
        its own log files (numbered for several instances).
        """
        config = program(
            self,
            """
            instances = 2
            restart = "always"
            stop = { signal = "INT", timeout = 2.5 }
            [programs.p.backoff]
            initial = 0.5
            factor = 3
            max = 9
            reset_after = 4
            give_up_after = 7
            """,
        )
        built = buildInstances(
            config, MemoryProcessReactor(), environ={}, runDir=self.mktemp()
        )
        for each in built:
            self.addCleanup(each.logs.close)
        self.assertEqual([each.name for each in built], ["p:0", "p:1"])
        self.assertEqual({each.program for each in built}, {"p"})
        process = built[1].process
        self.assertEqual(process.name, "p:1")
        self.assertEqual(process._restart, Restart.ALWAYS)
        self.assertEqual(process._backoff, Backoff(0.5, 3, 9, 4, 7))
        self.assertEqual(
            (process._stopSignal, process._stopTimeout), (signal.SIGINT, 2.5)
        )
        self.assertEqual(
            [os.path.basename(each.logs.paths["stdout"]) for each in built],
            ["p-0.out", "p-1.out"],
        )
