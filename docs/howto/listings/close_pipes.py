"""
A command that leaves a daemon behind, holding its stdout: without
C{closePipesAfterExit}, C{processEnded} would wait for the daemon.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

# The daemon (a 2-second sleep here) inherits the shell's stdout.
STARTS_A_DAEMON = "sleep 2 & echo daemon started"


class Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data


async def example(reactor: object) -> bytes:
    proto = Collect()
    transport = reactor.spawnProcess(  # type: ignore[attr-defined]
        proto,
        "/bin/sh",
        ["sh", "-c", STARTS_A_DAEMON],
        closePipesAfterExit=0.2,  # seconds after the shell's exit
    )
    reason = await transport.whenEnded()
    print("ended:", type(reason).__name__, "- output:", repr(proto.output))
    return proto.output


def main(reactor: object) -> Deferred[bytes]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
