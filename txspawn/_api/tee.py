# -*- test-case-name: tests.test_tee -*-
"""
Log teeing: write a child's output to a file as well as delivering it.

L{TeeProtocol} wraps any L{IProcessProtocol} (portage's C{logfile}): every
C{childDataReceived} is appended to a log file and then passed on unchanged.
Optionally each line in the log is prefixed with a timestamp (from an
injectable clock) and the stream name.

A failing log (disk full, a closed file, ...) never costs the wrapped
protocol a byte: the error is logged with L{twisted.logger}, kept on
L{TeeProtocol.error}, reported by L{TeeProtocol.whenLogged}, and the log is
no longer written (it is incomplete from that point, and a log with a hole
in the middle would be worse than a truncated one).
"""

from __future__ import annotations

import datetime
import io
import os
from collections.abc import Callable
from typing import BinaryIO, Union, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IProcessProtocol,
    IProcessTransport,
    IReactorTime,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer, providedBy

from txspawn._plan.argumentchecks import encodeArgument

__all__ = ["LogFile", "TeeProtocol", "checkLogFile"]

#: What L{TeeProtocol} accepts as a log: a path (opened for appending,
#: unbuffered, closed when the process ends) or an open binary file object
#: (written and flushed, never closed).
LogFile = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", BinaryIO]

_log = Logger()

_failure: Callable[[BaseException], Failure] = Failure

_STREAM_NAMES = {0: "stdin", 1: "stdout", 2: "stderr"}


def streamName(childFD: int) -> str:
    """
    The name of a child fd in logs: C{"stdout"}, C{"stderr"}, else
    C{"fd3"}...
    """
    return _STREAM_NAMES.get(childFD, f"fd{childFD}")


def checkLogFile(logFile: object) -> bool:
    """
    Check that C{logFile} can be a L{TeeProtocol}'s log, without writing to
    it or opening it.

    A log file object gets C{bytes} (C{write} is called with bytes-like
    objects, then C{flush}), so it must be a I{binary} file: an
    L{io.TextIOBase} (C{io.StringIO}, C{sys.stdout}, a file opened without
    C{"b"}), or any object whose C{mode} is a string without C{"b"}, is
    refused here rather than failing at the first write.  So is a file that
    is closed, or says (C{writable()}) it cannot be written.

    @param logFile: A path (C{str}, C{bytes} or path-like), or a binary
        file object.
    @return: Whether it is a path (to be opened for appending).
    @raise TypeError: for anything else (a text file included).
    @raise ValueError: for a path with a NUL byte or that cannot be encoded
        with the file system encoding (a lone surrogate), or a file object
        that is closed or not writable.
    """
    if isinstance(logFile, (str, bytes, os.PathLike)):
        # The checks of every path spawnProcess takes: the path is opened
        # later, when the child is spawned, too late to name the argument.
        encodeArgument(logFile, "logFile")
        return True
    mode = getattr(logFile, "mode", None)
    if isinstance(logFile, io.TextIOBase) or (
        isinstance(mode, str) and "b" not in mode
    ):
        raise TypeError(
            "logFile must be a path or a binary file object (it is written "
            f"bytes), not the text file {logFile!r}"
        )
    for method in ("write", "flush"):
        if not callable(getattr(logFile, method, None)):
            raise TypeError(
                "logFile must be a path or a binary file object (with write "
                f"and flush methods), not {type(logFile).__name__}"
            )
    if getattr(logFile, "closed", False) is True:
        raise ValueError(f"logFile is closed: {logFile!r}")
    writable = getattr(logFile, "writable", None)
    if callable(writable) and writable() is False:
        raise ValueError(f"logFile is not open for writing: {logFile!r}")
    return False


def _timestamp(seconds: float) -> bytes:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode("ascii")


@implementer(IProcessProtocol)
class TeeProtocol:
    """
    An L{IProcessProtocol} that writes the child's output to a log file and
    delivers it to another protocol.

    The log is written synchronously from the reactor thread, as portage
    does: fine for local files, not for a slow network filesystem.

    @ivar wrapped: The protocol the output is delivered to.
    @ivar error: The first error writing (or flushing, or closing) the log,
        or C{None}.

    @since: txspawn 0.1
    """

    def __init__(
        self,
        wrapped: IProcessProtocol,
        logFile: LogFile,
        *,
        prefix: bool = False,
        clock: IReactorTime | None = None,
        maxLineLength: int = 65536,
    ) -> None:
        """
        @param wrapped: The protocol to deliver everything to.
        @param logFile: A path (opened now, for appending, unbuffered; closed
            when the process ends or L{closeLog} is called) or a binary file
            object (written and flushed, never closed: it is yours).
        @param prefix: Write the log line by line, each line prefixed with
            C{b"<timestamp> <stream>: "} (C{b"stdout: "} without a
            C{clock}).  Each line's timestamp is the time its first byte
            arrived.  Lines from stdout and stderr are never mixed within a
            line; an unterminated last line gets a newline in the log.
        @param clock: Where timestamps come from (C{clock.seconds()},
            written as UTC ISO 8601); C{None}: no timestamps.
        @param maxLineLength: With C{prefix}, a line longer than this is
            logged in pieces of this size (each prefixed), so that a child
            that never writes a newline cannot make us buffer without bound.
        @raise OSError: if C{logFile} is a path that cannot be opened.
        @raise TypeError: for a C{logFile} that is neither (a text file
            included: see L{checkLogFile}).
        @raise ValueError: for a C{maxLineLength} below 1, a C{logFile}
            path that holds a NUL or cannot be encoded, or a C{logFile}
            that is closed or not writable.
        """
        if maxLineLength < 1:
            raise ValueError(f"maxLineLength must be at least 1, not {maxLineLength!r}")
        self.wrapped = wrapped
        # Whatever else the wrapped protocol opted into (say, an interface
        # for stop/continue notifications), the tee provides too, and
        # forwards (see __getattr__): wrapping must not silently drop it.
        alsoProvides(self, providedBy(wrapped))
        self.transport: IProcessTransport | None = None
        self.error: BaseException | None = None
        self._prefix = prefix
        self._clock = clock
        self._maxLineLength = maxLineLength
        self._partial: dict[int, tuple[bytes, bytes]] = {}
        self._waiters: list[Deferred[None]] = []
        self._finished = False
        self._file: BinaryIO | None
        if checkLogFile(logFile):
            assert isinstance(logFile, (str, bytes, os.PathLike))
            self._name: object = os.fsdecode(logFile)
            self._file = open(logFile, "ab", buffering=0)
            self._owned = True
        else:
            self._name = getattr(logFile, "name", repr(logFile))
            self._file = cast(BinaryIO, logFile)
            self._owned = False

    def __getattr__(self, name: str) -> object:
        # Only called for names the tee does not have: the methods of the
        # wrapped protocol's other interfaces.
        if name.startswith("__") or name == "wrapped":
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    # -- the log ---------------------------------------------------------------

    def _fail(self, what: str) -> None:
        failure = Failure()  # type: ignore[no-untyped-call]
        if self.error is None:
            self.error = failure.value
        _log.failure(
            "Could not {what} the log {logFile} of process {pid}; "
            "the log is incomplete from here on (the output itself is not "
            "affected)",
            failure,
            what=what,
            logFile=self._name,
            pid=getattr(self.transport, "pid", None),
        )

    def _write(self, data: bytes) -> None:
        if self.error is not None or self._file is None or not data:
            return
        try:
            view = memoryview(data)
            # "while True ... break": see tests/test_exceptiontable.py.
            while True:
                if not view:
                    break
                # A raw (unbuffered) file may write only part of the data.
                written = self._file.write(view)
                if written is None:
                    # A non-blocking raw file that would block: nothing we
                    # can wait for here.
                    raise BlockingIOError("the log file would block")
                if not isinstance(written, int) or written >= len(view):
                    break
                view = view[written:]
        except Exception:
            self._fail("write")

    def _tee(self, childFD: int, data: bytes) -> None:
        if not self._prefix:
            self._write(data)
            return
        started, pending = self._partial.pop(childFD, (b"", b""))
        records: list[bytes] = []
        lines = data.split(b"\n")
        for index, piece in enumerate(lines):
            last = index == len(lines) - 1
            if last and not piece:
                break
            if not pending:
                started = self._prefixFor(childFD)
            pending += piece
            while len(pending) >= self._maxLineLength:
                chunk, pending = (
                    pending[: self._maxLineLength],
                    pending[self._maxLineLength :],
                )
                records.append(started + chunk + b"\n")
                started = self._prefixFor(childFD)
            if not last:
                records.append(started + pending + b"\n")
                pending = b""
        if pending:
            self._partial[childFD] = (started, pending)
        self._write(b"".join(records))

    def _prefixFor(self, childFD: int) -> bytes:
        name = streamName(childFD).encode("ascii")
        if self._clock is None:
            return name + b": "
        return _timestamp(self._clock.seconds()) + b" " + name + b": "

    def _flushPartial(self, childFD: int) -> None:
        started, pending = self._partial.pop(childFD, (b"", b""))
        if pending:
            self._write(started + pending + b"\n")

    def closeLog(self) -> None:
        """
        Flush what is buffered, flush the file, and close it if we opened
        it.  Called when the process ends; idempotent.
        """
        if self._finished:
            return
        self._finished = True
        for childFD in sorted(self._partial):
            self._flushPartial(childFD)
        file, self._file = self._file, None
        if file is not None and self.error is None:
            try:
                file.flush()
            except Exception:
                self._fail("flush")
        if file is not None and self._owned:
            try:
                file.close()
            except Exception:
                self._fail("close")
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            self._fire(waiter)

    def _fire(self, waiter: Deferred[None]) -> None:
        if self.error is None:
            waiter.callback(None)
        else:
            waiter.errback(_failure(self.error))

    def whenLogged(self) -> Deferred[None]:
        """
        A L{Deferred} that fires with C{None} once the log is complete and
        closed (when the process ended), or fails with the first error
        writing it.
        """
        waiter: Deferred[None] = Deferred()
        if self._finished:
            self._fire(waiter)
        else:
            self._waiters.append(waiter)
        return waiter

    # -- IProcessProtocol ----------------------------------------------------

    def makeConnection(self, process: IProcessTransport) -> None:
        """
        Connect, and connect the wrapped protocol to the same transport.
        """
        self.transport = process
        self.wrapped.makeConnection(process)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        """
        Log C{data} (errors are caught and reported), then deliver it.
        """
        self._tee(childFD, data)
        self.wrapped.childDataReceived(childFD, data)

    def childConnectionLost(self, childFD: int) -> None:
        """
        Log the unterminated last line of C{childFD}, if any, and pass on.
        """
        self._flushPartial(childFD)
        self.wrapped.childConnectionLost(childFD)

    def processExited(self, reason: Failure) -> None:
        """
        Pass on.
        """
        self.wrapped.processExited(reason)

    def processEnded(self, reason: Failure) -> None:
        """
        Complete and close the log, then pass on (so the wrapped protocol
        can already see L{error}).
        """
        self.closeLog()
        self.wrapped.processEnded(reason)
