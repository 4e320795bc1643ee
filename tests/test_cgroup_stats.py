# -*- test-case-name: tests.test_cgroup_stats -*-
"""
Tests for L{txspawn._cgroup.stats}: the parsers of the cgroup files, and
L{readLeafStats} over a directory of such files as the kernel writes them
(this host's cgroup v2 has no memory, pids, cpu or io controller, so their
files are written here; the real ones are read in the VM, see
C{tests/test_cgroup_limits.py}).
"""

from __future__ import annotations

import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from txspawn._cgroup.stats import (
    parseFlatKeyed,
    parseIoStat,
    parsePopulated,
    parseSingleValue,
    readLeafStats,
)

__all__ = ["ParserTests", "ReadTests"]

#: C{cpu.stat} with the cpu controller (Linux 6.x).
CPU_STAT = """\
usage_usec 123456
user_usec 100000
system_usec 23456
core_sched.force_idle_usec 0
nr_periods 40
nr_throttled 12
throttled_usec 98765
nr_bursts 0
burst_usec 0
"""

#: C{cpu.stat} without it.
CPU_STAT_BARE = "usage_usec 7\nuser_usec 5\nsystem_usec 2\n"

MEMORY_EVENTS = "low 0\nhigh 3\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n"

IO_STAT = """\
8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021
"""


class ParserTests(SynchronousTestCase):
    """
    The pure parsers.
    """

    def test_flatKeyed(self) -> None:
        """
        C{"key value"} lines; other shapes are skipped.
        """
        self.assertEqual(
            parseFlatKeyed(CPU_STAT_BARE + "odd line here\nx notanumber\n\n"),
            {"usage_usec": 7, "user_usec": 5, "system_usec": 2},
        )
        self.assertEqual(parseFlatKeyed(MEMORY_EVENTS)["oom_kill"], 1)

    def test_single(self) -> None:
        """
        An integer, or L{None} for C{"max"}.
        """
        self.assertEqual(parseSingleValue("4096\n"), 4096)
        self.assertIsNone(parseSingleValue("max\n"))

    def test_io(self) -> None:
        """
        By device, each counter.
        """
        parsed = parseIoStat(IO_STAT + "\n259:0 rbytes=1 junk wbytes=x\n")
        self.assertEqual(parsed["8:16"]["wbytes"], 314773504)
        self.assertEqual(parsed["8:0"]["dios"], 3021)
        self.assertEqual(parsed["259:0"], {"rbytes": 1})
        self.assertEqual(parseIoStat(""), {})

    def test_populated(self) -> None:
        """
        C{cgroup.events}' C{populated} line.
        """
        self.assertTrue(parsePopulated("populated 1\nfrozen 0\n"))
        self.assertFalse(parsePopulated("populated 0\nfrozen 0\n"))


class ReadTests(SynchronousTestCase):
    """
    L{readLeafStats}.
    """

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="txspawn-stats-")
        self.addCleanup(self._remove)
        self.fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.addCleanup(os.close, self.fd)

    def _remove(self) -> None:
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def write(self, name: str, text: str) -> None:
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def test_everything(self) -> None:
        """
        With every controller enabled, every counter.
        """
        self.write("cpu.stat", CPU_STAT)
        self.write("memory.peak", "67108864\n")
        self.write("memory.events", MEMORY_EVENTS)
        self.write("pids.peak", "6\n")
        self.write("io.stat", IO_STAT)
        stats = readLeafStats(
            "/leaf", self.fd, {"cpu", "memory", "pids", "io"}, "clone", None
        )
        self.assertEqual(
            (
                stats.path,
                stats.placement,
                stats.placementNote,
                stats.cpuUsageUsec,
                stats.cpuUserUsec,
                stats.cpuSystemUsec,
                stats.cpuThrottledCount,
                stats.cpuThrottledUsec,
                stats.memoryPeak,
                stats.oomKills,
                stats.pidsPeak,
            ),
            ("/leaf", "clone", None, 123456, 100000, 23456, 12, 98765, 67108864, 1, 6),
        )
        self.assertTrue(stats.oomKilled)
        assert stats.io is not None
        self.assertEqual(stats.io["8:0"]["rbytes"], 90430464)

    def test_onlyEnabled(self) -> None:
        """
        The files of controllers not enabled are not read: their counters
        are L{None}, even if such a file is there.
        """
        self.write("cpu.stat", CPU_STAT_BARE)
        self.write("memory.peak", "1\n")
        self.write("memory.events", MEMORY_EVENTS)
        stats = readLeafStats("/leaf", self.fd, {"hugetlb"}, "procs", "why")
        self.assertEqual(
            (stats.cpuUsageUsec, stats.cpuThrottledCount, stats.memoryPeak),
            (7, None, None),
        )
        self.assertEqual((stats.oomKills, stats.pidsPeak, stats.io), (None, None, None))
        self.assertFalse(stats.oomKilled)
        self.assertEqual(stats.placementNote, "why")

    def test_absentFiles(self) -> None:
        """
        A controller enabled without its file (C{pids.peak} before Linux
        6.1, C{memory.peak} before 5.19): L{None}.
        """
        self.write("cpu.stat", CPU_STAT_BARE)
        stats = readLeafStats("/leaf", self.fd, {"memory", "pids", "io"}, "clone", None)
        self.assertEqual(
            (stats.memoryPeak, stats.oomKills, stats.pidsPeak, stats.io),
            (None, None, None, None),
        )

    def test_noCpuStat(self) -> None:
        """
        Without C{cpu.stat} the leaf is gone: L{FileNotFoundError}.
        """
        self.assertRaises(
            FileNotFoundError, readLeafStats, "/leaf", self.fd, set(), "clone", None
        )
