"""
Run a command and look at its result: txspawn.run().
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn


async def example(reactor: object) -> txspawn.ProcessResult:
    result = await txspawn.run(
        [sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
        reactor=reactor,
        stdin=b"hello, world",
        check=True,  # a non-zero exit raises txspawn.ProcessFailed
    )
    print(f"pid {result.pid} {result.describeEnd()} after {result.duration:.3f} s")
    print("stdout:", result.stdout.decode().strip())
    if result.rusage is not None:  # txspawn's reactors report it
        print(f"max RSS: {result.rusage.ru_maxrss} KiB")
    return result


def main(reactor: object) -> Deferred[txspawn.ProcessResult]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
