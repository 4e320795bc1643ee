"""
Kill a whole process tree: the child leads its own process group, and
C{terminate()} sends SIGTERM, then SIGKILL, to every process in it --
including grandchildren that ignore SIGTERM.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

# A shell that starts two grandchildren ignoring SIGTERM, tells us when they
# run, and waits for them.
TREE = """
trap '' TERM
sleep 3600 &
sleep 3600 &
echo ready
wait
"""


class Tree(ProcessProtocol):
    def outReceived(self, data: bytes) -> None:
        if b"ready" in data:
            # SIGTERM to the group now; SIGKILL to what is left 0.5 s later.
            self.transport.terminate(killAfter=0.5)  # type: ignore[union-attr]


async def example(reactor: object) -> str:
    transport = reactor.spawnProcess(  # type: ignore[attr-defined]
        Tree(),
        "/bin/sh",
        ["sh", "-c", TREE],
        processGroup=0,  # lead a new process group (newSession=True works too)
    )
    print("leader and group:", transport.pid, transport.processGroup)
    reason = await transport.whenEnded()
    print("the shell was killed by signal", reason.signal)
    # The group leader is reaped now: its pgid may be reused, so the group
    # can no longer be signalled (ProcessExitedAlready).
    return f"killed by {reason.signal}"


def main(reactor: object) -> Deferred[str]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
