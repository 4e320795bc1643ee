# -*- test-case-name: tests.test_stream -*-
"""
The buffer between a streamed child and its consumer: L{OutputChunk}, and
L{StreamBuffer}, a bounded queue with backpressure.

The buffer receives the child's output (it is the
L{txspawn._api.runprotocol.OutputSink} of L{txspawn._api.stream.stream}),
optionally splits it into lines, and hands it to the consumer: an async
iterator asking for the next chunk, or a callback.  When the consumer falls
behind and the queue reaches the high-water mark, the transport is paused
(C{pauseProducing}: the reactor stops reading the child's pipes, the pipes
fill, and the child blocks in C{write}); it is resumed when the consumer has
brought the queue down to the low-water mark.  Nothing is ever buffered
without bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProcessTransport
from twisted.python.failure import Failure

from txspawn._api.tee import streamName

__all__ = ["OutputChunk", "StreamBuffer"]


class _Pausable(Protocol):
    """
    What a process transport does for backpressure (Twisted's C{Process}
    and C{PTYProcess}, txspawn's transports, the fake in
    L{txspawn.testing}): C{IProcessTransport} itself does not say it.
    """

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...


@frozen
class OutputChunk:
    """
    Some output of the child.

    @ivar childFD: The child fd it was written to: 1 for stdout, 2 for
        stderr.
    @ivar data: The bytes.  With C{lines=True}: one line, ending with
        C{b"\\n"}, except the last line of a stream that does not end with
        a newline, and the pieces of a line too long to buffer (see
        L{txspawn.stream}).

    @since: txspawn 0.1
    """

    childFD: int
    data: bytes

    @property
    def name(self) -> str:
        """
        C{"stdout"}, C{"stderr"}, or C{"fd<n>"}.
        """
        return streamName(self.childFD)


class StreamBuffer:
    """
    The L{txspawn._api.runprotocol.OutputSink} of
    L{txspawn._api.stream.stream}: a bounded queue with backpressure,
    emptied by an async iterator or by a callback.

    L{queuedBytes} counts every byte received and not yet handed to the
    consumer (queued chunks and unfinished lines).
    """

    def __init__(
        self,
        lines: bool,
        highWater: int,
        lowWater: int,
        onOutput: Callable[[OutputChunk], object] | None,
    ) -> None:
        self._lines = lines
        self._highWater = highWater
        self._lowWater = lowWater
        self._onOutput = onOutput
        self._transport: _Pausable | None = None
        self._queue: deque[OutputChunk] = deque()
        self._partial: dict[int, bytes] = {}
        self._waiters: deque[Deferred[OutputChunk | None]] = deque()
        self._deliveredWaiters: list[Deferred[None]] = []
        self._ended = False
        self._paused = False
        self._pumping = False
        self._delivering = False
        self.failed: Callable[[Failure], None] = lambda f: None
        self.queuedBytes = 0
        self.maxQueuedBytes = 0
        self.largestRead = 0
        self.pauseCount = 0

    # -- OutputSink ------------------------------------------------------

    def connect(self, transport: IProcessTransport) -> None:
        self._transport = cast(_Pausable, transport)

    def dataReceived(self, childFD: int, data: bytes) -> None:
        if self._ended or not data:
            return
        self.largestRead = max(self.largestRead, len(data))
        self.queuedBytes += len(data)
        if not self._lines:
            self._queue.append(OutputChunk(childFD, data))
        else:
            self._splitLines(childFD, data)
            if self.queuedBytes >= self._highWater and not self._queue:
                # Everything is in unfinished lines (stdout's and stderr's
                # together): make them consumable, or pausing would wait
                # for ever.
                self._flushPartials()
        self._pump()
        self.maxQueuedBytes = max(self.maxQueuedBytes, self.queuedBytes)
        if self.queuedBytes >= self._highWater and not self._paused:
            self._paused = True
            self.pauseCount += 1
            if self._transport is not None:
                self._transport.pauseProducing()

    def fdClosed(self, childFD: int) -> None:
        self._flushPartial(childFD)
        self._pump()

    def finish(self) -> None:
        self._flushPartials()
        self._ended = True
        self._transport = None
        self._pump()

    def abandon(self) -> None:
        self._ended = True
        self._transport = None
        self._queue.clear()
        self._partial.clear()
        self.queuedBytes = 0
        self._pump()

    def output(self, childFD: int) -> bytes:
        # Streamed output is not kept.
        return b""

    # -- splitting -------------------------------------------------------

    def _splitLines(self, childFD: int, data: bytes) -> None:
        pending = self._partial.pop(childFD, b"") + data
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            self._queuePieces(childFD, pending[start : end + 1])
            start = end + 1
        rest = pending[start:]
        # A line that alone reaches the high-water mark is delivered in
        # pieces: buffering it whole could take any amount of memory.
        while len(rest) >= self._highWater:
            self._queue.append(OutputChunk(childFD, rest[: self._highWater]))
            rest = rest[self._highWater :]
        if rest:
            self._partial[childFD] = rest

    def _queuePieces(self, childFD: int, line: bytes) -> None:
        # Long complete lines are cut the same way as long unfinished ones,
        # so where a line is cut does not depend on how the reads fell.
        while len(line) > self._highWater:
            self._queue.append(OutputChunk(childFD, line[: self._highWater]))
            line = line[self._highWater :]
        self._queue.append(OutputChunk(childFD, line))

    def _flushPartial(self, childFD: int) -> None:
        rest = self._partial.pop(childFD, b"")
        if rest:
            self._queue.append(OutputChunk(childFD, rest))

    def _flushPartials(self) -> None:
        for childFD in sorted(self._partial):
            self._flushPartial(childFD)

    # -- delivery ----------------------------------------------------------

    def nextChunk(self) -> Deferred[OutputChunk | None]:
        if self._onOutput is not None:
            raise RuntimeError(
                "this stream delivers its output to onOutput; it cannot also "
                "be iterated"
            )
        waiter: Deferred[OutputChunk | None] = Deferred()
        self._waiters.append(waiter)
        self._pump()
        return waiter

    def whenDelivered(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self._deliveredWaiters.append(waiter)
        self._pump()
        return waiter

    def _take(self) -> OutputChunk:
        chunk = self._queue.popleft()
        self.queuedBytes -= len(chunk.data)
        return chunk

    def _pump(self) -> None:
        # Delivering runs consumer code, which may ask for the next chunk
        # (or fire a Deferred) and so re-enter: the outermost call loops.
        if self._pumping:
            return
        self._pumping = True
        try:
            # Each loop is spelled "while True ... break" so that every
            # backward jump stays inside this try, whose finally must run
            # (see tests/test_exceptiontable.py).
            if self._onOutput is None:
                while True:
                    if not (self._waiters and self._queue):
                        break
                    self._waiters.popleft().callback(self._take())
                if self._ended and not self._queue:
                    while True:
                        if not self._waiters:
                            break
                        self._waiters.popleft().callback(None)
            else:
                while True:
                    if self._delivering or not self._queue:
                        break
                    self._deliver(self._onOutput, self._take())
            self._maybeResume()
            if self._ended and not self._queue and not self._delivering:
                waiters, self._deliveredWaiters = self._deliveredWaiters, []
                for waiter in waiters:
                    waiter.callback(None)
        finally:
            self._pumping = False

    def _deliver(
        self, onOutput: Callable[[OutputChunk], object], chunk: OutputChunk
    ) -> None:
        try:
            result = onOutput(chunk)
        except BaseException:
            self._consumerFailed(Failure())  # type: ignore[no-untyped-call]
            return
        if isinstance(result, Deferred):
            self._delivering = True
            result.addCallbacks(self._delivered, self._consumerFailed)

    def _delivered(self, ignored: object) -> None:
        self._delivering = False
        self._pump()

    def _consumerFailed(self, failure: Failure) -> None:
        self._delivering = False
        self.abandon()
        self.failed(failure)

    def _maybeResume(self) -> None:
        # Resume at the low-water mark, or as soon as nothing is left to
        # consume (unfinished lines cannot be consumed: waiting for the
        # consumer would wait for ever).
        if (
            self._paused
            and not self._delivering
            and (self.queuedBytes <= self._lowWater or not self._queue)
        ):
            self._paused = False
            if self._transport is not None:
                self._transport.resumeProducing()
