"""
Tee a command's output to a log file, with timestamped, named lines.
"""

from __future__ import annotations

import os
import sys
import tempfile

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

import txspawn

BUILD = """
import sys
print("compiling")
print("warning: something", file=sys.stderr)
print("linking")
"""


class Collect(ProcessProtocol):
    """
    Your own protocol: it gets every byte, exactly as the child wrote it.
    """

    def __init__(self) -> None:
        self.out = b""
        self.done: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def processEnded(self, reason: object) -> None:
        self.done.callback(None)


async def example(reactor: object, logPath: str) -> bytes:
    # 1. The convenient way: run() with logFile.
    result = await txspawn.run(
        [sys.executable, "-c", BUILD], reactor=reactor, logFile=logPath, logPrefix=True
    )
    if result.logError is not None:  # e.g. disk full: reported, never hidden
        print("the log is incomplete:", result.logError)

    # 2. Any ProcessProtocol: wrap it in a TeeProtocol.
    collect = Collect()
    tee = txspawn.TeeProtocol(collect, logPath, prefix=True, clock=reactor)  # type: ignore[arg-type]
    reactor.spawnProcess(  # type: ignore[attr-defined]
        tee, sys.executable, [sys.executable, "-c", BUILD], env=None
    )
    await collect.done
    await tee.whenLogged()  # fails if the log could not be written

    with open(logPath, "rb") as f:
        log = f.read()
    print(log.decode(), end="")
    return log


async def exampleInTempFile(reactor: object) -> bytes:
    fd, path = tempfile.mkstemp(suffix=".log")
    os.close(fd)
    try:
        return await example(reactor, path)
    finally:
        os.unlink(path)


def main(reactor: object) -> Deferred[bytes]:
    return Deferred.fromCoroutine(exampleInTempFile(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
