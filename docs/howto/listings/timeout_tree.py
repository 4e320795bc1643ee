"""
Give a command at most half a second: a timeout that takes down the whole
tree the command started, not just the command.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

# "make -j" stands in for any command that starts helpers of its own.
SLOW_BUILD = "sleep 3600 & sleep 3600 & wait"


async def example(reactor: object) -> bool:
    transport = reactor.spawnProcess(  # type: ignore[attr-defined]
        ProcessProtocol(),
        "/bin/sh",
        ["sh", "-c", SLOW_BUILD],
        processGroup=0,
        timeout=0.5,  # then SIGTERM to the group...
        killAfter=2,  # ...and SIGKILL 2 s later if anything is left
    )
    reason = await transport.whenEnded()
    print("timed out:", transport.timedOut, "- signal:", reason.signal)
    return bool(transport.timedOut)


def main(reactor: object) -> Deferred[bool]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
