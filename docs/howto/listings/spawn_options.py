"""
Spawn with the options Twisted's spawnProcess does not have: a umask,
resource limits, a new session and a parent-death signal.  Each option is
honoured by both engines, at the same cost as a plain spawn on the C engine.
"""

from __future__ import annotations

import resource
import signal

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol


class Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data


async def example(reactor: object) -> list[str]:
    proto = Collect()
    transport = reactor.spawnProcess(  # type: ignore[attr-defined]
        proto,
        "/bin/sh",
        ["sh", "-c", "umask; ulimit -n; cut -d' ' -f6 /proc/$$/stat"],
        env={"PATH": "/usr/bin:/bin"},
        umask=0o027,
        rlimits={resource.RLIMIT_NOFILE: (256, 256)},
        newSession=True,  # the child leads a new session: its sid is its pid
        deathSignal=signal.SIGTERM,  # sent to the child if we die first
    )
    pid = transport.pid
    await transport.whenEnded()
    umask, nofile, sid = proto.output.decode().split()
    print(f"umask {umask}, RLIMIT_NOFILE {nofile}, session leader: {sid == str(pid)}")
    return [umask, nofile, str(sid == str(pid))]


def main(reactor: object) -> Deferred[list[str]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
