"""
Unit-test code that spawns processes, without spawning anything.

C{countWords} is the code under test; C{CountWordsTests} tests it with
txspawn.testing's verified fakes: the test plays the child and drives the
clock.
"""

from __future__ import annotations

import signal

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

import txspawn
from txspawn.testing import MemoryProcessReactor


async def countWords(reactor: object, text: bytes) -> int:
    """
    The code under test: count words with C{wc -w}, within 10 seconds.
    """
    result = await txspawn.run(
        ["wc", "-w"], reactor=reactor, stdin=text, timeout=10, check=True
    )
    return int(result.stdout)


class CountWordsTests(SynchronousTestCase):
    def test_counts(self) -> None:
        """
        The text goes to wc's stdin; its answer is parsed.
        """
        reactor = MemoryProcessReactor()
        d = Deferred.fromCoroutine(countWords(reactor, b"a b c"))

        [spawned] = reactor.spawned
        self.assertEqual(spawned.args, ("wc", "-w"))
        transport = spawned.transport
        self.assertEqual(transport.state.writtenTo(0), b"a b c")
        self.assertEqual(transport.state.closedFDs, [0])  # stdin closed

        transport.dataFromChild(1, b"3\n")
        transport.exit(0)
        self.assertEqual(self.successResultOf(d), 3)

    def test_timeout(self) -> None:
        """
        A wc that hangs gets SIGTERM after 10 seconds, then SIGKILL.
        """
        reactor = MemoryProcessReactor()
        d = Deferred.fromCoroutine(countWords(reactor, b"a"))
        transport = reactor.transports[0]

        reactor.advance(10)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        reactor.advance(5)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])
        transport.kill(signal.SIGKILL)
        self.failureResultOf(d, txspawn.ProcessTimedOut)

    def test_fails(self) -> None:
        """
        A failing wc raises ProcessFailed, carrying its stderr.
        """
        reactor = MemoryProcessReactor()
        d = Deferred.fromCoroutine(countWords(reactor, b"a"))
        transport = reactor.transports[0]
        transport.dataFromChild(2, b"wc: out of memory\n")
        transport.exit(1)
        failure = self.failureResultOf(d, txspawn.ProcessFailed)
        self.assertEqual(failure.value.result.stderr, b"wc: out of memory\n")


if __name__ == "__main__":
    import unittest

    unittest.main()
