"""
Stream a command's output line by line, with backpressure.
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn

CHATTY = """
import sys
for i in range(5):
    print("step", i, flush=True)
print("done", file=sys.stderr)
"""


async def example(reactor: object) -> list[tuple[str, bytes]]:
    seen = []
    async with txspawn.stream(
        [sys.executable, "-c", CHATTY],
        reactor=reactor,
        lines=True,
        highWater=64 * 1024,  # pause the child's pipes beyond this
    ) as output:
        async for chunk in output:
            print(f"[{chunk.name}] {chunk.data.decode().rstrip()}")
            seen.append((chunk.name, chunk.data))
        result = await output.result
    print(result.describeEnd())
    return seen


def main(reactor: object) -> Deferred[list[tuple[str, bytes]]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
