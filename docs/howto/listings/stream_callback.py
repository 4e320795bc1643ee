"""
Stream a big output to a slow consumer through a callback.

The callback returns a Deferred: the next chunk waits for it, the queue
fills up to the high-water mark, and then the child's pipes are paused, so
memory stays bounded whatever the child writes.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn

SIZE = 16 * 1024 * 1024


def example(reactor: object) -> Deferred[dict[str, int]]:
    total = 0

    def slowConsumer(chunk: txspawn.OutputChunk) -> Deferred[None] | None:
        nonlocal total
        before, total = total, total + len(chunk.data)
        if before // (1024 * 1024) != total // (1024 * 1024):
            # Every MiB, pretend to do slow work.
            return task.deferLater(reactor, 0.001, lambda: None)  # type: ignore[arg-type]
        return None

    output = txspawn.stream(
        ["head", "-c", str(SIZE), "/dev/zero"],
        reactor=reactor,
        onOutput=slowConsumer,
        highWater=128 * 1024,
    )

    def report(result: txspawn.ProcessResult) -> dict[str, int]:
        stats = {
            "total": total,
            "pauses": output.pauseCount,
            "maxQueued": output.maxQueuedBytes,
            "largestRead": output.largestRead,
        }
        print(stats)
        return stats

    return output.result.addCallback(report)


def main(reactor: object) -> Deferred[dict[str, int]]:
    return example(reactor)


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
