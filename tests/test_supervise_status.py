# -*- test-case-name: tests.test_supervise_status -*-
"""
Tests for L{txspawn.supervise.status} (status rows and their table) and
L{txspawn.supervise._metrics} (CPU and memory of a run that ended).
"""

from __future__ import annotations

import json
import resource

from twisted.trial.unittest import SynchronousTestCase

from txspawn.supervise import ProgramProcess, ProgramSpawn, ProgramState
from txspawn.supervise._metrics import cpuSeconds, peakMemory
from txspawn.supervise.status import (
    ProgramStatus,
    formatBytes,
    formatDuration,
    formatTable,
)
from txspawn.testing import MemoryProcessReactor

S = ProgramState

ROWS = [
    ProgramStatus(
        name="web",
        program="web",
        state=S.RUNNING,
        pid=4242,
        uptime=3725.0,
        restarts=0,
        failures=0,
        lastExit=None,
        why="ready",
        cpu=12.34,
        memory=45 * 1024 * 1024 + 600 * 1024,
    ),
    ProgramStatus(
        name="worker:1",
        program="worker",
        state=S.BACKOFF,
        pid=None,
        uptime=0.0,
        restarts=12,
        failures=3,
        lastExit="exited with code 1",
        why="exited with code 1 after 0.2 s",
        cpu=None,
        memory=None,
    ),
]


class FormatTests(SynchronousTestCase):
    """
    Human units and the table.
    """

    def test_duration(self) -> None:
        """
        Seconds under a minute with a tenth; then minutes and seconds,
        hours and minutes, days and hours.
        """
        self.assertEqual(
            [
                formatDuration(value)
                for value in (None, 0, 12.34, 59.94, 60, 245, 3725, 86399, 273600)
            ],
            [
                "-",
                "0.0s",
                "12.3s",
                "59.9s",
                "1m00s",
                "4m05s",
                "1h02m",
                "23h59m",
                "3d04h",
            ],
        )

    def test_bytes(self) -> None:
        """
        Bytes in powers of 1024, with a tenth above the byte.
        """
        self.assertEqual(
            [
                formatBytes(value)
                for value in (None, 0, 1023, 1024, 46_763_622, 3 * 1024**3, 1024**5)
            ],
            ["-", "0B", "1023B", "1.0K", "44.6M", "3.0G", "1024.0T"],
        )

    def test_table(self) -> None:
        """
        The table has the header, then one aligned line per row, C{"-"}
        for what is not known (the uptime of a program without a child
        included).
        """
        self.assertEqual(
            formatTable(ROWS).splitlines(),
            [
                "NAME      STATE    PID   UPTIME  RESTARTS  LAST EXIT"
                "           CPU    MEMORY",
                "web       RUNNING  4242  1h02m   0         -"
                "                   12.3s  45.6M",
                "worker:1  BACKOFF  -     -       12        exited with code 1"
                "  -      -",
            ],
        )
        self.assertTrue(formatTable(ROWS).endswith("\n"))

    def test_tableFromJSON(self) -> None:
        """
        The rows' C{toJSON} dicts (what the control API sends), through
        JSON, give the same table.
        """
        sent = json.loads(json.dumps([row.toJSON() for row in ROWS]))
        self.assertEqual(formatTable(sent), formatTable(ROWS))

    def test_toJSON(self) -> None:
        """
        C{toJSON} has every field, the state by its name.
        """
        self.assertEqual(
            ROWS[1].toJSON(),
            {
                "name": "worker:1",
                "program": "worker",
                "state": "BACKOFF",
                "pid": None,
                "uptime": 0.0,
                "restarts": 12,
                "failures": 3,
                "lastExit": "exited with code 1",
                "why": "exited with code 1 after 0.2 s",
                "cpu": None,
                "memory": None,
            },
        )

    def test_empty(self) -> None:
        """
        No rows: the header alone.
        """
        self.assertEqual(
            formatTable([]),
            "NAME  STATE  PID  UPTIME  RESTARTS  LAST EXIT  CPU  MEMORY\n",
        )


def usage(user: float, system: float, maxrss: int) -> resource.struct_rusage:
    values = [0.0, 0.0] + [0] * 14
    values[0], values[1], values[2] = user, system, maxrss
    return resource.struct_rusage(values)


class MetricsTests(SynchronousTestCase):
    """
    CPU and memory of a program whose child ended.
    """

    def test_nothingKnown(self) -> None:
        """
        Before any run: C{None}.
        """
        program = ProgramProcess("a", MemoryProcessReactor(), ProgramSpawn(["a"]))
        self.assertEqual((cpuSeconds(program), peakMemory(program)), (None, None))

    def test_lastRunRusage(self) -> None:
        """
        After a run without a cgroup: its C{rusage}'s user + system CPU;
        no memory, since C{ru_maxrss} counts the supervisor's own resident
        set for a child spawned with C{vfork}.
        """
        reactor = MemoryProcessReactor()
        program = ProgramProcess("a", reactor, ProgramSpawn(["a"]))
        program.start()
        reactor.transports[-1].exit(0, rusage=usage(1.25, 0.5, 2048))
        self.assertEqual(program.state, S.EXITED)
        self.assertEqual((cpuSeconds(program), peakMemory(program)), (1.75, None))
