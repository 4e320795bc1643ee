"""
Time a command out, and cancel another: SIGTERM, then SIGKILL; no zombie.
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import CancelledError, Deferred

import txspawn

# A child that ignores SIGTERM: only SIGKILL will stop it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("started", flush=True)
time.sleep(3600)
"""


async def example(reactor: object) -> list[str]:
    outcomes = []
    try:
        await txspawn.run(
            [sys.executable, "-c", STUBBORN],
            reactor=reactor,
            timeout=0.5,  # then SIGTERM
            killAfter=0.5,  # then SIGKILL
        )
    except txspawn.ProcessTimedOut as e:
        print(e)  # ... timed out after 0.5 s and was killed by SIGKILL
        print("partial output:", e.result.stdout)
        outcomes.append("timed out")

    d = txspawn.run(["sleep", "3600"], reactor=reactor)
    task.deferLater(reactor, 0.1, d.cancel)  # type: ignore[arg-type]
    try:
        await d
    except CancelledError:
        # Only raised once the child has been killed and reaped.
        outcomes.append("cancelled")
    return outcomes


def main(reactor: object) -> Deferred[list[str]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
