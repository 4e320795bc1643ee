# -*- test-case-name: tests.test_stream -*-
"""
Streaming a child's output as it arrives, with backpressure.

L{stream} is L{txspawn.run} for output you want as it comes (a build log, a
C{tail -f}, a 10 GiB dump): chunks or lines are delivered through an async
iterator over a bounded queue, or to a callback.  When the consumer falls
behind and the queue reaches the high-water mark, the transport is paused
(C{pauseProducing}: the reactor stops reading the child's pipes, the pipes
fill, and the child blocks in C{write}); it is resumed when the consumer has
brought the queue down to the low-water mark.  Nothing is ever buffered
without bound.

The queue, its backpressure and the chunks it holds are
L{txspawn._api.streambuffer}'s; this module starts the child and gives the
consumer its L{OutputStream}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from txspawn._api.arguments import (
    KILL_AFTER_DEFAULT,
    checkRunCall,
    checkStreamArguments,
    resolveReactor,
)
from txspawn._api.result import ProcessResult
from txspawn._api.runprotocol import ChildRun
from txspawn._api.streambuffer import OutputChunk, StreamBuffer
from txspawn._api.tee import LogFile

__all__ = ["OutputStream", "stream"]

_failure: Callable[[BaseException], Failure] = Failure

#: The default high-water mark: how many bytes may wait for the consumer
#: before the child's pipes are paused.
DEFAULT_HIGH_WATER = 256 * 1024


class OutputStream:
    """
    A running child whose output is delivered as it arrives (see L{stream}).

    Iterate it (C{async for chunk in outputStream}) from a coroutine run by
    Twisted (C{Deferred.fromCoroutine}, C{ensureDeferred}, C{task.react}),
    or call L{nextChunk}; or pass C{onOutput} to L{stream} instead.

    @ivar result: A L{Deferred} firing with the L{ProcessResult} (with empty
        C{stdout}/C{stderr}: the output went to the consumer) or failing as
        L{txspawn.run}'s does.  Cancelling it kills the child.

    @since: txspawn 0.1
    """

    def __init__(
        self, child: ChildRun, buffer: StreamBuffer, result: Deferred[Any]
    ) -> None:
        self._child = child
        self._buffer = buffer
        self.result = cast("Deferred[ProcessResult]", result)

    @property
    def pid(self) -> int | None:
        """
        The child's pid (C{None} if the spawn failed).
        """
        return self._child.pid

    @property
    def queuedBytes(self) -> int:
        """
        Bytes received and not yet handed to the consumer.
        """
        return self._buffer.queuedBytes

    @property
    def maxQueuedBytes(self) -> int:
        """
        The most bytes ever waiting for the consumer: at most the high-water
        mark plus one read per pipe.
        """
        return self._buffer.maxQueuedBytes

    @property
    def largestRead(self) -> int:
        """
        The largest single read delivered by the transport so far.
        """
        return self._buffer.largestRead

    @property
    def pauseCount(self) -> int:
        """
        How many times the child's pipes were paused for the consumer.
        """
        return self._buffer.pauseCount

    def nextChunk(self) -> Deferred[OutputChunk | None]:
        """
        The next chunk of output.

        @return: A L{Deferred} firing with the next L{OutputChunk}, or with
            C{None} once all output was delivered (or the stream was
            cancelled).
        @raise RuntimeError: if the stream delivers to C{onOutput}.
        """
        return self._buffer.nextChunk()

    def kill(self) -> None:
        """
        Kill the child now (C{SIGKILL}, to its group when it leads one, and
        with C{cgroup=} to everything in its cgroup, even once the child
        itself has exited) and drop the output not yet delivered; L{result}
        fires with the
        L{ProcessResult} saying how the child ended (C{check} does not
        apply to a child you killed).  Does nothing once the child ended.
        """
        self._child.kill()

    def whenEnded(self) -> Deferred[None]:
        """
        A L{Deferred} firing with C{None} once the child was reaped and its
        pipes closed (or it failed to start).  It never fails: how the child
        ended is on L{result}.
        """
        return self._child.whenEnded()

    def cancel(self) -> None:
        """
        Kill the child (C{SIGKILL}, to its group when it leads one, and with
        C{cgroup=} to everything in its cgroup) and drop the output not yet
        delivered; L{result} fails with
        L{CancelledError} once the child is reaped.
        """
        self.result.cancel()

    def __aiter__(self) -> OutputStream:
        return self

    async def __anext__(self) -> OutputChunk:
        chunk = await self._buffer.nextChunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def __aenter__(self) -> OutputStream:
        return self

    async def __aexit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """
        Leaving the block while the child still runs kills it (L{kill}:
        L{result} then says it was killed by C{SIGKILL}) and waits until it
        is reaped (rsyscall's kill-on-exit).
        """
        if not self._child.ended:
            self.kill()
            await self._child.whenEnded()


def stream(
    argv: Sequence[str | bytes],
    *,
    reactor: object | None = None,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    path: str | bytes | None = None,
    uid: int | None = None,
    gid: int | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    killAfter: float | None = KILL_AFTER_DEFAULT,
    check: bool = False,
    closePipesAfterExit: float | None = None,
    lines: bool = False,
    highWater: int = DEFAULT_HIGH_WATER,
    lowWater: int | None = None,
    onOutput: Callable[[OutputChunk], object] | None = None,
    logFile: LogFile | None = None,
    logPrefix: bool = False,
    **options: object,
) -> OutputStream:
    """
    Run C{argv} and deliver its stdout and stderr as they arrive.

    Usage::

        outputStream = txspawn.stream(["make", "-j8"], lines=True)
        async for chunk in outputStream:
            print(chunk.name, chunk.data.decode(errors="replace"), end="")
        result = await outputStream.result

    Every argument L{txspawn.run} takes means the same here; the result's
    C{stdout} and C{stderr} are empty.  The extra ones:

    @param lines: Deliver whole lines (each ending with C{b"\\n"}) instead
        of chunks as read.  A line that alone reaches C{highWater} bytes is
        delivered in pieces, as are the unfinished lines of stdout and
        stderr together when they reach it while nothing else is queued;
        the unterminated last line of a stream is delivered when the stream
        closes.
    @param highWater: When this many bytes wait for the consumer, the
        child's pipes are paused (C{transport.pauseProducing()}).  The queue
        never holds more than C{highWater} plus one read per pipe.
    @param lowWater: The pipes are resumed when the queue is down to this
        many bytes (or holds nothing consumable).  C{None}: C{highWater //
        4}.
    @param onOutput: Instead of iterating, have each L{OutputChunk} passed
        to this callable, in order.  If it returns a L{Deferred}, the next
        chunk waits until that fires (and the queue fills, and the pipes
        pause).  If it raises or its Deferred fails, the child is killed and
        L{OutputStream.result} fails with that error once it is reaped.
        With C{onOutput}, C{result} fires only after every chunk was
        delivered.
    @return: An L{OutputStream}.  Leaving C{async with} on it kills a child
        still running.
    @raise TypeError: an argument has the wrong type, or a keyword argument
        is unknown; the message names C{stream()} and the argument.  Nothing
        has been opened or started.
    @raise ValueError: an argument has a bad value (idem).
    @raise txspawn.errors.UnsupportedFeature: spawn options were given with
        a reactor that does not take them (as for L{txspawn.run}).

    @since: txspawn 0.1
    """
    argvTuple, timeout, killAfter, closePipesAfterExit = checkRunCall(
        "stream()",
        argv,
        env,
        path,
        uid,
        gid,
        stdin,
        timeout,
        killAfter,
        check,
        closePipesAfterExit,
        logFile,
        logPrefix,
        options,
    )
    highWater, lowWater = checkStreamArguments(lines, highWater, lowWater, onOutput)
    resolved = resolveReactor("stream()", reactor, options)
    buffer = StreamBuffer(lines, highWater, lowWater, onOutput)
    child = ChildRun(
        cast(IReactorTime, resolved),
        argvTuple,
        buffer,
        stdin=stdin,
        timeout=timeout,
        killAfter=killAfter,
        check=check,
        closePipesAfterExit=closePipesAfterExit,
    )
    result: Deferred[Any] = child.deferred
    consumerFailure: list[Failure] = []

    def consumerFailed(failure: Failure) -> None:
        consumerFailure.append(failure)
        if not child.deferred.called:
            child.deferred.cancel()

    def preferConsumerFailure(failure: Failure) -> Failure:
        if consumerFailure and isinstance(failure.value, CancelledError):
            return consumerFailure[0]
        return failure

    buffer.failed = consumerFailed
    child.start(resolved, env, path, uid, gid, options, logFile, logPrefix)
    if onOutput is not None:

        def afterDelivery(outcome: object) -> Deferred[Any]:
            delivered = buffer.whenDelivered()
            return delivered.addCallback(lambda ignored: outcome)

        result.addBoth(afterDelivery)
    result.addErrback(preferConsumerFailure)
    return OutputStream(child, buffer, result)
