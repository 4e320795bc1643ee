"""
Code written for Twisted's procmon, switched to txspawn's ProcessMonitor
with one import: the same calls, but stopService() returns a Deferred that
fires once every process is gone, including a daemon the child started
that left its session and ignores SIGTERM.
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.logger import LogEvent, globalLogPublisher

# from twisted.runner.procmon import ProcessMonitor
from txspawn.supervise import ProcessMonitor

# A job that starts a daemon (forked twice, setsid, SIGTERM ignored) that
# prints its pid, then waits.
JOB = """
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("daemon", os.getpid(), flush=True)
        time.sleep(3600)
    os._exit(0)
time.sleep(3600)
"""


async def example(reactor: object) -> int:
    monitor = ProcessMonitor(reactor=reactor)
    monitor.killTime = 2
    monitor.addProcess("job", [sys.executable, "-c", JOB])

    # procmon logs each line of output, tagged with the process's name.
    daemonUp: Deferred[int] = Deferred()

    def observe(event: LogEvent) -> None:
        words = str(event.get("line", "")).split()
        if event.get("tag") == "job" and words[:1] == ["daemon"]:
            daemonUp.callback(int(words[1]))

    globalLogPublisher.addObserver(observe)
    monitor.startService()
    try:
        daemon = await daemonUp
    finally:
        globalLogPublisher.removeObserver(observe)
    print("the job's daemon is up:", daemon)

    # Fires once the job and its daemon are gone (procmon's returns None).
    await monitor.stopService()
    print("stopped: the job and its daemon are gone")
    return daemon


def main(reactor: object) -> Deferred[int]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
