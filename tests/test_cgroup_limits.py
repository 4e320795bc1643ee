"""
cgroup v2 limits enforced for real (issue 14, item 6): memory.max ends a
child with an OOM kill that is told apart from another SIGKILL, pids.max
makes a fork fail with EAGAIN, cpu.max throttles, controllers are enabled
only as needed, and the reactor's process leaves a parent that is its own
cgroup before a controller is enabled there.

This host's cgroup v2 has no controllers (they are bound to cgroup v1), so
the limits run in a small VM that is a pure cgroup v2 host (tools/vm.sh):
the VM is booted once for the whole module and runs tests/vm/limits_inside.py
there, which uses txspawn's public API on both engines and prints what it
saw as JSON; each test asserts on one part of it.  A failed boot or run is
an error of every test, never a skip.

C{TXSPAWN_VM_TESTS} selects the run: C{1} boots the VM (tools/test.sh's
C{vm} stage sets it); C{host} runs the in-VM half directly on this machine,
for a pure cgroup v2 host where we are root; unset, the tests are skipped
(the rest of the suite runs on every leg, and the VM is booted once, by the
C{vm} stage, not by each suite run).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from functools import cache
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INSIDE = os.path.join(HERE, "vm", "limits_inside.py")
VM = os.path.join(ROOT, "tools", "vm.sh")
MARK = "TXSPAWN-VM-RESULT "
MODE = os.environ.get("TXSPAWN_VM_TESTS", "")
MB = 1 << 20


def _command() -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if MODE == "host":
        return [sys.executable, INSIDE], env
    # The files the in-VM Python imports, copied into the guest's tmpfs:
    # reading them through 9p one by one is what is slow under emulation.
    listed = subprocess.run(
        [sys.executable, INSIDE, "--list-files"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fd, bundle = tempfile.mkstemp(prefix="txspawn-vm-bundle-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(listed)
    env["TXSPAWN_VM_BUNDLE"] = bundle
    return ["bash", VM, "run", shlex.join([sys.executable, INSIDE])], env


@cache
def _outcome() -> dict[str, Any] | str:
    """
    Run the in-VM half once: its result, or why there is none (cached too,
    so that a failed boot is reported by every test without another boot).
    """
    argv, env = _command()
    try:
        done = subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            cwd=ROOT,
        )
    finally:
        if "TXSPAWN_VM_BUNDLE" in env:
            os.unlink(env["TXSPAWN_VM_BUNDLE"])
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            result: dict[str, Any] = json.loads(line[len(MARK) :])
            # Shown by trial/pytest with the test's output: the VM's own
            # account of its boot and run time.
            result["vmLog"] = done.stderr[-4000:]
            seconds = {
                f"{engine}.{name}": value.get("seconds")
                for engine in ("c", "python")
                for name, value in result.get(engine, {}).items()
                if isinstance(value, dict) and "seconds" in value
            }
            sys.stderr.write(
                f"{done.stderr[-4000:]}\nin the VM: imports "
                f"{result.get('importSeconds')} s, the whole program "
                f"{result.get('seconds')} s; each scenario (s): {seconds}\n"
            )
            return result
    return (
        f"{shlex.join(argv)} exited with {done.returncode} and printed no "
        f"result.\nstdout (end):\n{done.stdout[-6000:]}\n"
        f"stderr (end):\n{done.stderr[-6000:]}"
    )


def vmResult() -> dict[str, Any]:
    outcome = _outcome()
    if isinstance(outcome, str):
        raise RuntimeError(outcome)
    return outcome


class _LimitsMixin:
    """
    The limits on one engine; C{engine} names it.
    """

    engine: str
    # Overridden by the trial base class.
    fail: Any
    assertEqual: Any
    assertTrue: Any
    assertIsNotNone: Any

    skip: str | None = None
    if MODE not in ("1", "host"):
        skip = (
            "the limits run in a VM: tools/test.sh's vm stage "
            "(TXSPAWN_VM_TESTS=1 boots it; =host runs here, on a pure cgroup "
            "v2 host)"
        )

    def phase(self) -> dict[str, Any]:
        phase: dict[str, Any] = vmResult()[self.engine]
        if "error" in phase:
            self.fail(f"the {self.engine} phase failed:\n{phase['error']}")
        return phase

    def scenario(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.phase()[name]
        if "error" in found:
            self.fail(f"{name} on the {self.engine} engine failed:\n{found['error']}")
        return found

    def test_memoryMaxOomKillRun(self) -> None:
        """
        memoryMax=64M and a 200 MB allocation: run() reports signal 9 and
        the cgroup's OOM kill, with a peak no higher than the limit.
        """
        found = self.scenario("oomRun")
        stats = found["stats"]
        self.assertEqual(
            (found["signal"], found["exitCode"], stats["oomKilled"]), (9, None, True)
        )
        self.assertTrue(stats["oomKills"] >= 1, stats)
        self.assertIsNotNone(stats["memoryPeak"])
        self.assertTrue(0 < stats["memoryPeak"] <= 64 * MB, stats)

    def test_memoryMaxOomKillSpawnProcess(self) -> None:
        """
        The same through spawnProcess: processEnded gets ProcessTerminated
        with signal 9 and C{reason.cgroup.oomKilled}.
        """
        found = self.scenario("oomSpawn")
        self.assertEqual(
            (
                found["isProcessTerminated"],
                found["signal"],
                found["stats"]["oomKilled"],
            ),
            (True, 9, True),
            found,
        )

    def test_memoryUnderLimit(self) -> None:
        """
        The control: the same allocation under memoryMax=512M exits 0, with
        no OOM kill, and memory.peak counts the 200 MB.
        """
        found = self.scenario("memoryControl")
        stats = found["stats"]
        self.assertEqual(
            (found["exitCode"], found["signal"], stats["oomKilled"], stats["oomKills"]),
            (0, None, False, 0),
        )
        self.assertTrue(stats["memoryPeak"] >= 200 * MB, stats)

    def test_pidsMax(self) -> None:
        """
        pidsMax=5: the child and 4 forks fill the cgroup; the fork that would
        make a 6th process fails with EAGAIN, and so does the next.
        """
        found = self.scenario("pids")
        self.assertEqual(found["exitCode"], 0, found)
        self.assertEqual(found["forks"], ["ok"] * 4 + ["EAGAIN"] * 2)

    def test_cpuMaxThrottles(self) -> None:
        """
        cpuMax of 20% (20 ms per 100 ms) and a busy child: cpu.stat counts
        throttled periods.
        """
        stats = self.scenario("cpuLimited")["stats"]
        self.assertIsNotNone(stats["cpuThrottledCount"])
        self.assertTrue(stats["cpuThrottledCount"] > 0, stats)

    def test_cpuMaxUnlimited(self) -> None:
        """
        The control: cpuMax with no quota enables the cpu controller but
        never throttles the same busy child.
        """
        stats = self.scenario("cpuControl")["stats"]
        self.assertEqual(stats["cpuThrottledCount"], 0, stats)

    def test_everyLimitWritten(self) -> None:
        """
        Every limit option is in the child's own cgroup, as the kernel has
        it, read by the child itself: memoryMax, memoryHigh (bytes from
        "256M"/"128M"), pidsMax, cpuMax and ioWeight.
        """
        found = self.scenario("limitFiles")
        self.assertEqual(found["exitCode"], 0, found)
        self.assertEqual(
            found["files"],
            {
                "memory.max": str(256 << 20),
                "memory.high": str(128 << 20),
                "pids.max": "50",
                "cpu.max": "50000 100000",
                "io.weight": "default 200",
            },
        )

    def test_controllersOnlyAsNeeded(self) -> None:
        """
        The parent's cgroup.subtree_control gains a controller only when a
        limit first needs it: none for a spawn with no limit, memory for
        memoryMax, pids for pidsMax, cpu for cpuMax, io for ioWeight.
        """
        steps = [(s["step"], s.get("enabled")) for s in self.phase()["subtreeControl"]]
        memory = ["memory"]
        pids = ["memory", "pids"]
        every = ["cpu", "memory", "pids"]
        start: list[str] | None = None if self.engine == "c" else []
        self.assertEqual(
            steps,
            [
                ("start", start),
                ("plain", []),
                ("oomRun", memory),
                ("oomSpawn", memory),
                ("memoryControl", memory),
                ("pids", pids),
                ("cpuLimited", every),
                ("cpuControl", every),
                ("limitFiles", ["cpu", "io", "memory", "pids"]),
            ],
        )


class CEngineLimits(_LimitsMixin, SynchronousTestCase):
    """
    The C engine: the parent is found automatically (the process is in the
    root cgroup: C{<mount>/txspawn}) and the child is cloned into its leaf.
    """

    engine = "c"

    def test_rootEnablesOnlyWhatIsNeeded(self) -> None:
        """
        The root cgroup (no systemd: nothing enabled) gets only the
        controllers the limits needed, for the txspawn subtree.
        """
        result = vmResult()
        self.assertEqual(
            (result["rootEnabledBefore"], result["rootEnabledAfterC"]),
            ([], ["cpu", "io", "memory", "pids"]),
        )
        self.assertTrue(
            {"cpu", "io", "memory", "pids"} <= set(result["rootControllers"]),
            result["rootControllers"],
        )

    def test_placement(self) -> None:
        """
        Every child was cloned into its leaf (CLONE_INTO_CGROUP), and the
        reactor's process stayed in the root cgroup (no move needed there).
        """
        phase = self.phase()
        names = ["plain", "oomRun", "memoryControl", "pids", "cpuLimited"]
        self.assertEqual(
            [self.scenario(n)["stats"]["placement"] for n in names], ["clone"] * 5
        )
        self.assertEqual(
            {s["ownCgroup"] for s in phase["subtreeControl"]},
            {"/"},
        )


class PythonEngineLimits(_LimitsMixin, SynchronousTestCase):
    """
    The Python engine, with the reactor's process in a cgroup of its own
    given as the parent.
    """

    engine = "python"

    def test_placement(self) -> None:
        """
        Every child placed itself by writing cgroup.procs.
        """
        names = ["plain", "oomRun", "memoryControl", "pids", "cpuLimited"]
        self.assertEqual(
            [self.scenario(n)["stats"]["placement"] for n in names], ["procs"] * 5
        )

    def test_reactorMovedIntoItsOwnLeaf(self) -> None:
        """
        The parent was the process's own cgroup: the spawn with no limit
        left it there; the first controller to enable moved it into a leaf
        of its own, C{txspawn-self-<pid>-<starttime>}, where it stayed.
        """
        phase = self.phase()
        job = "/txspawn-vm-job"
        own = {s["step"]: s["ownCgroup"] for s in phase["subtreeControl"]}
        self.assertEqual(
            (phase["ownCgroupBefore"], own["start"], own["plain"]), (job, job, job)
        )
        moved = own["oomRun"]
        self.assertTrue(moved.startswith(job + "/txspawn-self-"), moved)
        self.assertEqual(phase["ownCgroupAfter"], moved)
