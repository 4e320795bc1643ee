"""
Kill everything a job started: daemons that left its session and process
group and ignore SIGTERM included.  With a cgroup of its own, what the job
leaves behind is killed when it exits (killOnExit, the default), or at
once with killTree(); processTreeEnded says when every process is gone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.interfaces import IProcessTreeObserver
from txspawn.options import Cgroup, CgroupStats

# A job that starts three daemons and exits: each daemon forks twice, calls
# setsid, ignores SIGTERM and prints its pid; no process group holds them.
JOB = """
import os, signal, sys, time
for _ in range(3):
    up, upWrite = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print(os.getpid(), flush=True)
            os.close(upWrite)
            time.sleep(3600)
        os.close(upWrite)
        os.read(up, 1)  # end of file: the daemon has printed its pid
        os._exit(0)
    os.close(upWrite)
    os.close(up)
    os.wait()
if sys.argv[1:] == ["stay"]:
    time.sleep(3600)
"""


@implementer(IProcessTreeObserver)
class Job(ProcessProtocol):
    def __init__(self, onDaemonsUp: Callable[[], object] = lambda: None) -> None:
        self.onDaemonsUp = onDaemonsUp
        self.output = b""
        self.ended: Failure | None = None
        self.treeEnded: Deferred[CgroupStats] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if self.output.count(b"\n") == 3:  # every daemon is up
            self.onDaemonsUp()

    def processEnded(self, reason: Failure) -> None:
        self.ended = reason

    def processTreeEnded(self, stats: CgroupStats) -> None:
        # Every process of the job's cgroup has exited.
        self.treeEnded.callback(stats)


async def example(reactor: object) -> dict[str, object]:
    spawn = reactor.spawnProcess  # type: ignore[attr-defined]

    # 1. The job exits, leaving its daemons: they go with it.
    job = Job()
    spawn(job, sys.executable, [sys.executable, "-c", JOB], env={}, cgroup=Cgroup())
    stats = await job.treeEnded
    print("job exited, and so did its daemons", job.output.split())
    print(f"CPU of the whole tree: {stats.cpuUsageUsec / 1000:.1f} ms")

    # 2. A job still running: killTree() kills it and everything it started.
    stays = Job(onDaemonsUp=lambda: transport.killTree())
    transport = spawn(
        stays,
        sys.executable,
        [sys.executable, "-c", JOB, "stay"],
        env={},
        cgroup=Cgroup(),
    )
    await stays.treeEnded
    print("killed:", stays.ended.getErrorMessage() if stays.ended else None)
    return {
        "daemons": [int(pid) for pid in (job.output + stays.output).split()],
        "reasons": [job.ended, stays.ended],
    }


def main(reactor: object) -> Deferred[dict[str, object]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
