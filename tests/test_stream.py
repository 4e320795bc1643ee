"""
Tests for L{txspawn.stream}: output delivered as it arrives, with
backpressure, never buffered without bound.
"""

from __future__ import annotations

import signal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import PYTHON, MixinBase, ReactorTestMixin, makeTestCaseClasses
from tests.test_run import runInReactor, succeeded
from txspawn import (
    OutputChunk,
    OutputStream,
    ProcessResult,
    ProcessTimedOut,
    stream,
)
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor


def start(
    **kwargs: Any,
) -> tuple[MemoryProcessReactor, OutputStream, FakeProcessTransport]:
    """
    C{stream(["prog"], **kwargs)} on a fresh fake reactor.
    """
    reactor = MemoryProcessReactor()
    outputStream = stream(["prog"], reactor=reactor, **kwargs)
    return reactor, outputStream, reactor.transports[0]


def drain(test: SynchronousTestCase, outputStream: OutputStream) -> list[OutputChunk]:
    """
    Take every chunk available now, up to the end-of-stream marker if it has
    arrived.
    """
    chunks: list[OutputChunk] = []
    while True:
        d = outputStream.nextChunk()
        if not d.called:
            # Leave the waiter: it gets the next chunk.  Record it so the
            # test can look.
            test.pendingWaiter = d  # type: ignore[attr-defined]
            return chunks
        chunk = test.successResultOf(d)
        if chunk is None:
            return chunks
        chunks.append(chunk)


class StreamFakeTests(SynchronousTestCase):
    """
    L{stream} against the fake reactor.
    """

    def test_chunks(self) -> None:
        """
        Chunks arrive in order, tagged with their fd; after the process
        ended the stream ends (C{None}); the result has no stdout/stderr
        (it was streamed).
        """
        _, outputStream, transport = start()
        transport.dataFromChild(1, b"a")
        transport.dataFromChild(2, b"b")
        transport.dataFromChild(1, b"c")
        transport.exit(0)
        chunks = drain(self, outputStream)
        self.assertEqual(
            chunks, [OutputChunk(1, b"a"), OutputChunk(2, b"b"), OutputChunk(1, b"c")]
        )
        self.assertEqual([c.name for c in chunks], ["stdout", "stderr", "stdout"])
        self.assertEqual(OutputChunk(5, b"").name, "fd5")
        result = self.successResultOf(outputStream.result)
        self.assertEqual((result.stdout, result.stderr, result.exitCode), (b"", b"", 0))
        self.assertEqual(result.pid, outputStream.pid)

    def test_waiterFirst(self) -> None:
        """
        A consumer already waiting gets the chunk directly: nothing is
        queued.
        """
        _, outputStream, transport = start()
        d = outputStream.nextChunk()
        self.assertNoResult(d)
        transport.dataFromChild(1, b"x")
        self.assertEqual(self.successResultOf(d), OutputChunk(1, b"x"))
        self.assertEqual(outputStream.queuedBytes, 0)
        self.assertEqual(outputStream.maxQueuedBytes, 0)

    def test_lines(self) -> None:
        """
        With C{lines=True}, output is split into lines, each stream on its
        own; an unterminated last line is delivered when its pipe closes.
        """
        _, outputStream, transport = start(lines=True)
        transport.dataFromChild(1, b"one\ntw")
        transport.dataFromChild(2, b"E1\nE")
        transport.dataFromChild(1, b"o\nthree\nfou")
        transport.dataFromChild(2, b"2\n")
        transport.exit(0)
        chunks = drain(self, outputStream)
        self.assertEqual(
            [(c.childFD, c.data) for c in chunks],
            [
                (1, b"one\n"),
                (2, b"E1\n"),
                (1, b"two\n"),
                (1, b"three\n"),
                (2, b"E2\n"),
                (1, b"fou"),
            ],
        )

    def test_longLine(self) -> None:
        """
        A line reaching the high-water mark is delivered in pieces of that
        size, so an endless line cannot make us buffer without bound.
        """
        _, outputStream, transport = start(lines=True, highWater=4, lowWater=1)
        transport.dataFromChild(1, b"abcdefghij\nk")
        transport.exit(0)
        self.assertEqual(
            [c.data for c in drain(self, outputStream)],
            [b"abcd", b"efgh", b"ij\n", b"k"],
        )

    def test_unfinishedLinesTogether(self) -> None:
        """
        When the unfinished lines of stdout and stderr together reach the
        high-water mark and nothing else is queued, they are delivered as
        pieces rather than pausing for ever.
        """
        _, outputStream, transport = start(lines=True, highWater=10, lowWater=2)
        transport.dataFromChild(1, b"123456")
        transport.dataFromChild(2, b"abcdef")
        self.assertEqual(
            [c.data for c in drain(self, outputStream)], [b"123456", b"abcdef"]
        )
        self.assertFalse(transport.state.paused)

    def test_backpressure(self) -> None:
        """
        The transport is paused when the queue reaches C{highWater}, and
        resumed when the consumer brought it down to C{lowWater}.
        """
        _, outputStream, transport = start(highWater=10, lowWater=4)
        transport.dataFromChild(1, b"123456")
        self.assertFalse(transport.state.paused)
        transport.dataFromChild(1, b"789012")
        self.assertTrue(transport.state.paused)
        self.assertEqual(outputStream.queuedBytes, 12)
        self.successResultOf(outputStream.nextChunk())
        self.assertTrue(transport.state.paused)
        self.successResultOf(outputStream.nextChunk())
        self.assertFalse(transport.state.paused)
        self.assertEqual((outputStream.pauseCount, transport.state.pauseCount), (1, 1))

    def test_noPauseWhileConsumerKeepsUp(self) -> None:
        """
        A consumer that always waits never causes a pause.
        """
        _, outputStream, transport = start(highWater=4)
        for _ in range(100):
            d = outputStream.nextChunk()
            transport.dataFromChild(1, b"12345678")
            self.successResultOf(d)
        self.assertEqual(transport.state.pauseCount, 0)

    @settings(max_examples=60, deadline=None)
    @given(
        highWater=st.integers(1, 64),
        lines=st.booleans(),
        steps=st.lists(
            st.tuples(
                st.sampled_from(["out", "err", "consume", "extra"]),
                st.binary(min_size=1, max_size=40),
            ),
            max_size=80,
        ),
    )
    def test_bounded(
        self, highWater: int, lines: bool, steps: list[tuple[str, bytes]]
    ) -> None:
        """
        Whatever the interleaving of output and consumption, and with the
        transport delivering only while not paused (plus one late read per
        pipe, as a reactor may), the queue never holds more than the
        high-water mark plus one read per pipe, nothing is lost or
        reordered, and the transport is never left paused with nothing to
        consume.
        """
        _, outputStream, transport = start(lines=lines, highWater=highWater)
        sent: dict[int, bytes] = {1: b"", 2: b""}
        got: dict[int, bytes] = {1: b"", 2: b""}
        lateRead = {1: False, 2: False}
        largest = 0
        for action, data in steps:
            if action in ("out", "err", "extra"):
                fd = 2 if action == "err" else 1
                if transport.state.paused:
                    if action != "extra" or lateRead[fd]:
                        continue
                    lateRead[fd] = True
                else:
                    lateRead = {1: False, 2: False}
                transport.dataFromChild(fd, data)
                sent[fd] += data
                largest = max(largest, len(data))
            else:
                d = outputStream.nextChunk()
                if d.called:
                    chunk = self.successResultOf(d)
                    assert chunk is not None
                    got[chunk.childFD] += chunk.data
                else:
                    # Nothing to consume: the child says something.
                    transport.dataFromChild(1, b"!\n")
                    sent[1] += b"!\n"
                    chunk = self.successResultOf(d)
                    assert chunk is not None
                    got[chunk.childFD] += chunk.data
            self.assertLessEqual(outputStream.queuedBytes, highWater + 2 * largest)
            if transport.state.paused:
                # Something is there to consume: the consumer can unblock us.
                self.assertTrue(outputStream.queuedBytes > 0)
        self.assertLessEqual(outputStream.maxQueuedBytes, highWater + 2 * largest)
        transport.exit(0)
        for chunk in drain(self, outputStream):
            got[chunk.childFD] += chunk.data
        self.assertEqual(got, sent)

    def test_onOutput(self) -> None:
        """
        With C{onOutput}, every chunk is passed to it in order, and the
        result fires after the last one.
        """
        seen: list[OutputChunk] = []
        _, outputStream, transport = start(onOutput=seen.append, lines=True)
        transport.dataFromChild(1, b"a\nb")
        transport.exit(0)
        self.assertEqual([c.data for c in seen], [b"a\n", b"b"])
        self.successResultOf(outputStream.result)
        self.assertRaises(RuntimeError, outputStream.nextChunk)

    def test_onOutputDeferred(self) -> None:
        """
        When C{onOutput} returns a Deferred, the next chunk waits for it:
        the queue fills and the transport is paused; firing it delivers
        the rest and resumes.  The result waits for the last delivery.
        """
        pending: list[Deferred[None]] = []
        seen: list[bytes] = []

        def onOutput(chunk: OutputChunk) -> Deferred[None]:
            seen.append(chunk.data)
            d: Deferred[None] = Deferred()
            pending.append(d)
            return d

        _, outputStream, transport = start(onOutput=onOutput, highWater=4, lowWater=0)
        transport.dataFromChild(1, b"12")
        transport.dataFromChild(1, b"34")
        transport.dataFromChild(1, b"56")
        self.assertEqual(seen, [b"12"])
        self.assertTrue(transport.state.paused)
        transport.exit(0)
        self.assertNoResult(outputStream.result)
        pending[0].callback(None)
        self.assertEqual(seen, [b"12", b"34"])
        pending[1].callback(None)
        self.assertNoResult(outputStream.result)
        pending[2].callback(None)
        self.assertEqual(seen, [b"12", b"34", b"56"])
        self.successResultOf(outputStream.result)

    def test_onOutputAlreadyFired(self) -> None:
        """
        An C{onOutput} returning an already-fired Deferred goes on at once.
        """
        seen: list[bytes] = []

        def onOutput(chunk: OutputChunk) -> Deferred[None]:
            seen.append(chunk.data)
            return succeed(None)

        _, outputStream, transport = start(onOutput=onOutput)
        transport.dataFromChild(1, b"a")
        transport.dataFromChild(1, b"b")
        transport.exit(0)
        self.assertEqual(seen, [b"a", b"b"])
        self.successResultOf(outputStream.result)

    def test_onOutputRaises(self) -> None:
        """
        If C{onOutput} raises, the child is killed and the result fails
        with that exception once the child is reaped.
        """

        def onOutput(chunk: OutputChunk) -> None:
            raise ZeroDivisionError("consumer bug")

        _, outputStream, transport = start(onOutput=onOutput)
        transport.dataFromChild(1, b"a")
        self.assertEqual(transport.state.signals, [signal.SIGKILL])
        self.assertNoResult(outputStream.result)
        transport.kill(signal.SIGKILL)
        self.failureResultOf(outputStream.result, ZeroDivisionError)

    def test_onOutputFails(self) -> None:
        """
        If the Deferred C{onOutput} returned fails, the child is killed and
        the result fails with that failure.
        """
        pending: list[Deferred[None]] = []

        def onOutput(chunk: OutputChunk) -> Deferred[None]:
            pending.append(Deferred())
            return pending[-1]

        _, outputStream, transport = start(onOutput=onOutput)
        transport.dataFromChild(1, b"a")
        pending[0].errback(ValueError("nope"))
        self.assertEqual(transport.state.signals, [signal.SIGKILL])
        transport.kill(signal.SIGKILL)
        self.failureResultOf(outputStream.result, ValueError)

    def test_cancel(self) -> None:
        """
        Cancelling kills the child, drops undelivered output, ends the
        iteration and fails the result with L{CancelledError} once the
        child is reaped.
        """
        _, outputStream, transport = start()
        transport.dataFromChild(1, b"queued")
        outputStream.cancel()
        self.assertEqual(transport.state.signals, [signal.SIGKILL])
        self.assertIsNone(self.successResultOf(outputStream.nextChunk()))
        self.assertEqual(outputStream.queuedBytes, 0)
        self.assertNoResult(outputStream.result)
        transport.kill(signal.SIGKILL)
        self.failureResultOf(outputStream.result, CancelledError)

    def test_cancelWakesWaiter(self) -> None:
        """
        A consumer waiting for a chunk gets the end-of-stream marker when
        the stream is cancelled.
        """
        _, outputStream, transport = start()
        d = outputStream.nextChunk()
        outputStream.cancel()
        self.assertIsNone(self.successResultOf(d))
        transport.kill(signal.SIGKILL)
        self.failureResultOf(outputStream.result, CancelledError)

    def test_kill(self) -> None:
        """
        C{kill} kills the child (its group when it leads one); the result
        says how it ended, C{check} notwithstanding.
        """
        _, outputStream, transport = start(check=True, processGroup=0)
        outputStream.kill()
        self.assertEqual(transport.state.groupSignals, [signal.SIGKILL])
        transport.kill(signal.SIGKILL)
        result = self.successResultOf(outputStream.result)
        self.assertEqual(result.signal, signal.SIGKILL)
        self.successResultOf(outputStream.whenEnded())
        outputStream.kill()
        self.assertEqual(transport.state.groupSignals, [signal.SIGKILL])

    def test_timeout(self) -> None:
        """
        The timeout works as for L{txspawn.run}; the iteration ends.
        """
        reactor, outputStream, transport = start(timeout=1, killAfter=1)
        transport.dataFromChild(1, b"x")
        reactor.advance(1)
        reactor.advance(1)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])
        transport.kill(signal.SIGKILL)
        self.assertEqual(drain(self, outputStream), [OutputChunk(1, b"x")])
        self.failureResultOf(outputStream.result, ProcessTimedOut)

    def test_spawnError(self) -> None:
        """
        A spawn error fails the result and ends the iteration at once.
        """
        reactor = MemoryProcessReactor()
        reactor.spawnError = SpawnError.fromErrno(13, ChildSetupStage.EXEC, "prog")
        outputStream = stream(["prog"], reactor=reactor)
        self.assertIsNone(self.successResultOf(outputStream.nextChunk()))
        self.failureResultOf(outputStream.result, PermissionError)
        self.successResultOf(outputStream.whenEnded())
        self.assertIsNone(outputStream.pid)

    def test_asyncIteration(self) -> None:
        """
        C{async for} delivers every chunk, then the result can be awaited.
        """
        reactor = MemoryProcessReactor()

        async def main() -> tuple[list[bytes], ProcessResult]:
            outputStream = stream(["prog"], reactor=reactor, lines=True)
            got = [chunk.data async for chunk in outputStream]
            return got, await outputStream.result

        d = Deferred.fromCoroutine(main())
        transport = reactor.transports[0]
        transport.dataFromChild(1, b"a\nb\n")
        self.assertNoResult(d)
        transport.exit(0)
        got, result = self.successResultOf(d)
        self.assertEqual((got, result.exitCode), ([b"a\n", b"b\n"], 0))

    def test_asyncWithKills(self) -> None:
        """
        Leaving C{async with} while the child runs kills it and waits until
        it is reaped; the result says it was killed.
        """
        reactor = MemoryProcessReactor()

        async def main() -> OutputStream:
            async with stream(["prog"], reactor=reactor) as outputStream:
                async for _chunk in outputStream:
                    break
            return outputStream

        d = Deferred.fromCoroutine(main())
        transport = reactor.transports[0]
        transport.dataFromChild(1, b"first")
        self.assertEqual(transport.state.signals, [signal.SIGKILL])
        self.assertNoResult(d)
        transport.kill(signal.SIGKILL)
        outputStream = self.successResultOf(d)
        self.assertEqual(
            self.successResultOf(outputStream.result).signal, signal.SIGKILL
        )

    def test_asyncWithFinished(self) -> None:
        """
        Leaving C{async with} after the child ended does nothing.
        """
        reactor = MemoryProcessReactor()

        async def main() -> OutputStream:
            async with stream(["prog"], reactor=reactor) as outputStream:
                async for _chunk in outputStream:
                    pass
            return outputStream

        d = Deferred.fromCoroutine(main())
        reactor.transports[0].exit(0)
        outputStream = self.successResultOf(d)
        self.assertEqual(reactor.transports[0].state.signals, [])
        self.assertEqual(self.successResultOf(outputStream.result).exitCode, 0)

    def test_logFile(self) -> None:
        """
        With C{logFile}, the output is teed to the log as well as streamed,
        and a log error is reported on the result.
        """
        _, outputStream, transport = start(logFile="/dev/full", lines=True)
        transport.dataFromChild(1, b"a\n")
        transport.exit(0)
        self.assertEqual(drain(self, outputStream), [OutputChunk(1, b"a\n")])
        result = self.successResultOf(outputStream.result)
        self.assertIsInstance(result.logError, OSError)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_badArguments(self) -> None:
        """
        Bad arguments raise L{TypeError}/L{ValueError} naming the argument,
        before anything is spawned.
        """
        reactor = MemoryProcessReactor()
        cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
            (TypeError, "lines", dict(lines=1)),
            (TypeError, "highWater", dict(highWater=1.5)),
            (ValueError, "highWater", dict(highWater=0)),
            (TypeError, "lowWater", dict(lowWater="1")),
            (ValueError, "lowWater", dict(highWater=10, lowWater=10)),
            (ValueError, "lowWater", dict(lowWater=-1)),
            (TypeError, "onOutput", dict(onOutput=3)),
            (ValueError, "argv", dict(argv=[])),
            (TypeError, "stdin", dict(stdin="x")),
        ]
        for exception, name, kwargs in cases:
            argv = kwargs.pop("argv", ["prog"])
            exc = self.assertRaises(exception, stream, argv, reactor=reactor, **kwargs)
            self.assertIn(name, str(exc))
        self.assertEqual(reactor.spawned, [])


HUGE = 100 * 1024 * 1024


class StreamRealMixin(MixinBase):
    """
    L{stream} with real children.
    """

    def test_hugeOutputSlowConsumer(self) -> None:
        """
        A child writing 100 MiB to a slow consumer: every byte arrives, the
        pipes were paused, and the queue never held more than the high-water
        mark plus one read.
        """
        reactor = self.buildReactor()
        highWater = 256 * 1024

        async def main() -> tuple[int, OutputStream]:
            outputStream = stream(
                ["head", "-c", str(HUGE), "/dev/zero"],
                reactor=reactor,
                highWater=highWater,
            )
            total = 0
            nextNap = 0
            async for chunk in outputStream:
                total += len(chunk.data)
                if total >= nextNap:
                    # Fall behind: let the child fill the queue.
                    nextNap += 4 * 1024 * 1024
                    await deferLater(reactor, 0.01, lambda: None)
            await outputStream.result
            return total, outputStream

        total, outputStream = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(total, HUGE)
        self.assertGreater(outputStream.pauseCount, 0)
        self.assertLessEqual(
            outputStream.maxQueuedBytes, highWater + outputStream.largestRead
        )

    def test_lines(self) -> None:
        """
        Lines from a real child arrive whole, per stream.
        """
        reactor = self.buildReactor()
        source = (
            "import sys\n"
            "for i in range(1000):\n"
            "    print('line', i)\n"
            "sys.stderr.write('no newline')\n"
        )

        async def main() -> list[OutputChunk]:
            outputStream = stream([PYTHON, b"-c", source], reactor=reactor, lines=True)
            chunks = [chunk async for chunk in outputStream]
            await outputStream.result
            return chunks

        chunks = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(
            [c.data for c in chunks if c.childFD == 1],
            [f"line {i}\n".encode() for i in range(1000)],
        )
        self.assertEqual([c.data for c in chunks if c.childFD == 2], [b"no newline"])

    def test_breakKills(self) -> None:
        """
        Breaking out of C{async with} kills a child that would run for a
        minute; it is reaped (the hygiene check finds no child).
        """
        reactor = self.buildReactor()
        source = "import time\nprint('hi', flush=True)\ntime.sleep(60)\n"

        async def main() -> ProcessResult:
            async with stream([PYTHON, b"-c", source], reactor=reactor) as s:
                async for _chunk in s:
                    break
            return await s.result

        result = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(result.signal, signal.SIGKILL)


globals().update(makeTestCaseClasses(StreamRealMixin))


class StreamStockTwistedTests(StreamRealMixin, ReactorTestMixin, SynchronousTestCase):
    """
    L{stream} on a stock Twisted reactor.
    """

    engineName = "stock"
    monitorName = "stock"

    def buildReactor(self) -> Any:
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self._reactors.append(reactor)
        return reactor
