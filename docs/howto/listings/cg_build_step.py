"""
Limit a build step: at most 256 MiB of memory, 64 processes and one and a
half CPUs, in a cgroup of its own.  Where this host cannot enforce a limit
(no such controller in its cgroup v2 hierarchy, as on a hybrid host whose
memory controller is bound to cgroup v1), the spawn raises
UnsupportedFeature naming the controller: this build then runs in a cgroup
of its own without limits, and says so.
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn
from txspawn.options import Cgroup

LIMITS = Cgroup(
    memoryMax="256M",  # memory.max: the kernel's OOM killer stops it beyond
    pidsMax=64,  # pids.max: fork fails with EAGAIN beyond
    cpuMax=1.5,  # cpu.max: 150 ms of CPU time per 100 ms
)

# The build step: compile every module of the standard library's json
# package in memory (a stand-in for any compiler run), print how many.
COMPILE = """
import json, pathlib
sources = sorted(pathlib.Path(json.__file__).parent.glob("*.py"))
for source in sources:
    compile(source.read_text(), str(source), "exec")
print(len(sources), "modules compiled")
"""
BUILD = [sys.executable, "-c", COMPILE]


async def example(reactor: object) -> dict[str, object]:
    try:
        result = await txspawn.run(BUILD, reactor=reactor, cgroup=LIMITS)
        limited, why = True, None
    except txspawn.UnsupportedFeature as e:
        # A limit asked for is never silently dropped: decide here.
        print("limits unavailable here:", e)
        result = await txspawn.run(BUILD, reactor=reactor, cgroup=Cgroup())
        limited, why = False, str(e)
    stats = result.cgroup
    assert stats is not None  # required=True (the default): always a cgroup
    if stats.oomKilled:
        print("the build ran out of memory (killed by the OOM killer)")
    else:
        print(result.stdout.decode().strip(), f"- limited: {limited}")
    print(f"CPU: {stats.cpuUsageUsec / 1000:.0f} ms, in {stats.path}")
    return {"limited": limited, "why": why, "result": result}


def main(reactor: object) -> Deferred[dict[str, object]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
