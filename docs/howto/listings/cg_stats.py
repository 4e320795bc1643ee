"""
Read what a job used, its children included: CPU time from cpu.stat
(always there), and its peak memory from memory.peak, which needs the
memory controller (ru_maxrss cannot give it: it is the largest single
process, and for a child started by vfork it may be the parent's).  A
memory cap turns the controller on for the job's cgroup; where this host
has no memory controller in its cgroup v2 hierarchy, the job runs without
the cap and only its CPU time is read.
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn
from txspawn.options import Cgroup

# A job whose worker (a child of its own) burns CPU and holds 64 MiB.
JOB = """
import subprocess, sys
WORK = "data = bytearray(64 << 20); sum(range(3_000_000))"
subprocess.run([sys.executable, "-c", WORK], check=True)
"""


async def example(reactor: object) -> txspawn.ProcessResult:
    argv = [sys.executable, "-c", JOB]
    try:
        # A cap the job never reaches: it turns on the memory controller.
        measured = Cgroup(memoryMax="1G")
        result = await txspawn.run(argv, reactor=reactor, cgroup=measured, check=True)
    except txspawn.UnsupportedFeature as e:
        print("no memory controller here:", e)
        result = await txspawn.run(argv, reactor=reactor, cgroup=Cgroup(), check=True)
    stats = result.cgroup
    assert stats is not None
    print(
        f"CPU: {stats.cpuUsageUsec / 1000:.0f} ms "
        f"(user {stats.cpuUserUsec / 1000:.0f} ms, "
        f"system {stats.cpuSystemUsec / 1000:.0f} ms)"
    )
    if stats.memoryPeak is not None:
        print(f"peak memory: {stats.memoryPeak >> 20} MiB")
    else:
        print("peak memory: not measured here (no memory controller)")
    return result


def main(reactor: object) -> Deferred[txspawn.ProcessResult]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
