"""
Tests for L{txspawn.TeeProtocol}: a child's output teed to a log file,
errors reported and never costing the delivered output.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import tempfile
from typing import Any

from twisted.internet.interfaces import IProcessProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from tests.builders import PYTHON, MixinBase, makeTestCaseClasses
from tests.test_run import runInReactor, succeeded
from tests.test_testing import Recorder
from txspawn import ProcessResult, TeeProtocol, run
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor


def tempPath(test: SynchronousTestCase, content: bytes = b"") -> str:
    fd, path = tempfile.mkstemp()
    os.write(fd, content)
    os.close(fd)
    test.addCleanup(os.unlink, path)
    return path


def readFile(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def spawnTee(
    logFile: Any, **kwargs: Any
) -> tuple[TeeProtocol, Recorder, FakeProcessTransport]:
    reactor = MemoryProcessReactor()
    recorder = Recorder()
    tee = TeeProtocol(recorder, logFile, **kwargs)
    transport = reactor.spawnProcess(tee, "prog", ["prog"])
    return tee, recorder, transport


class ShortWriter(io.RawIOBase):
    """
    A raw file that accepts at most 3 bytes per write, as a raw file may.
    """

    def __init__(self) -> None:
        self.data = b""

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        piece = bytes(b[:3])
        self.data += piece
        return len(piece)


class WouldBlock(io.RawIOBase):
    """
    A non-blocking raw file that is always full.
    """

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> None:
        return None


class IExtraNotifications(Interface):
    """
    An interface a protocol may opt into beyond L{IProcessProtocol}.
    """

    def processStopped(signal: int) -> None:
        """
        The child was stopped.
        """


@implementer(IExtraNotifications)
class ExtraRecorder(Recorder):
    def processStopped(self, signal: int) -> None:
        self.events.append(("stopped", signal))


class TeeTests(SynchronousTestCase):
    """
    L{TeeProtocol} with files that work.
    """

    def test_forwardsOtherInterfaces(self) -> None:
        """
        The interfaces the wrapped protocol opted into are provided by the
        tee too, and their methods reach the wrapped protocol.
        """
        wrapped = ExtraRecorder()
        tee = TeeProtocol(wrapped, io.BytesIO())
        self.assertTrue(verifyObject(IExtraNotifications, tee))
        IExtraNotifications(tee).processStopped(19)
        self.assertEqual(wrapped.events, [("stopped", 19)])
        plain = TeeProtocol(Recorder(), io.BytesIO())
        self.assertFalse(IExtraNotifications.providedBy(plain))
        self.assertRaises(AttributeError, getattr, plain, "processStopped")

    def test_interface(self) -> None:
        """
        L{TeeProtocol} provides L{IProcessProtocol}.
        """
        tee, _, _ = spawnTee(io.BytesIO())
        self.assertTrue(verifyObject(IProcessProtocol, tee))

    def test_forwards(self) -> None:
        """
        Every callback reaches the wrapped protocol, in order, with the
        real transport.
        """
        tee, recorder, transport = spawnTee(io.BytesIO())
        self.assertIs(recorder.transport, transport)
        self.assertIs(tee.transport, transport)
        transport.dataFromChild(1, b"out")
        transport.dataFromChild(2, b"err")
        transport.exit(0)
        self.assertEqual(
            recorder.events,
            [
                ("connectionMade", None),
                ("data", (1, b"out")),
                ("data", (2, b"err")),
                ("exited", None),
                ("lost", 0),
                ("lost", 1),
                ("lost", 2),
                ("ended", None),
            ],
        )

    def test_path(self) -> None:
        """
        A path is opened for appending (what it held is kept), receives the
        output as it arrives, and is closed when the process ends.
        """
        path = tempPath(self, b"before\n")
        tee, _, transport = spawnTee(path)
        transport.dataFromChild(1, b"out ")
        self.assertEqual(readFile(path), b"before\nout ")
        transport.dataFromChild(2, b"err")
        transport.exit(0)
        self.assertEqual(readFile(path), b"before\nout err")
        self.assertIsNone(tee.error)
        self.assertIsNone(self.successResultOf(tee.whenLogged()))

    def test_fileObject(self) -> None:
        """
        A file object is written and flushed, and left open.
        """
        log = io.BytesIO()
        _, _, transport = spawnTee(log)
        transport.dataFromChild(1, b"data")
        transport.exit(0)
        self.assertFalse(log.closed)
        self.assertEqual(log.getvalue(), b"data")

    def test_shortWrites(self) -> None:
        """
        A raw file that writes only part of the data is written until all
        of it is.
        """
        log = ShortWriter()
        _, _, transport = spawnTee(log)
        transport.dataFromChild(1, b"0123456789")
        self.assertEqual(log.data, b"0123456789")

    def test_prefix(self) -> None:
        """
        With C{prefix} and no clock, each line starts with the stream name.
        """
        log = io.BytesIO()
        _, _, transport = spawnTee(log, prefix=True)
        transport.dataFromChild(1, b"a\nb\n")
        transport.dataFromChild(2, b"c\n")
        self.assertEqual(log.getvalue(), b"stdout: a\nstdout: b\nstderr: c\n")

    def test_prefixClock(self) -> None:
        """
        With a clock, each line also carries the UTC time its first byte
        arrived; lines of stdout and stderr are never mixed, and an
        unterminated last line is completed when its pipe closes.
        """
        clock = Clock()
        log = io.BytesIO()
        _, recorder, transport = spawnTee(log, prefix=True, clock=clock)
        clock.advance(1)
        transport.dataFromChild(1, b"hel")
        clock.advance(1)
        transport.dataFromChild(2, b"oops\n")
        transport.dataFromChild(1, b"lo\nwor")
        clock.advance(86400)
        transport.dataFromChild(1, b"ld")
        transport.exit(0)
        self.assertEqual(
            log.getvalue(),
            b"1970-01-01T00:00:02.000000Z stderr: oops\n"
            b"1970-01-01T00:00:01.000000Z stdout: hello\n"
            b"1970-01-01T00:00:02.000000Z stdout: world\n",
        )
        # The wrapped protocol got the bytes exactly as they came.
        self.assertEqual(
            [d for e, d in recorder.events if e == "data"],
            [(1, b"hel"), (2, b"oops\n"), (1, b"lo\nwor"), (1, b"ld")],
        )

    def test_maxLineLength(self) -> None:
        """
        A line longer than C{maxLineLength} is logged in prefixed pieces.
        """
        log = io.BytesIO()
        _, _, transport = spawnTee(log, prefix=True, maxLineLength=4)
        transport.dataFromChild(1, b"abcdefghij")
        transport.dataFromChild(1, b"\n")
        self.assertEqual(log.getvalue(), b"stdout: abcd\nstdout: efgh\nstdout: ij\n")

    def test_whenLoggedBefore(self) -> None:
        """
        C{whenLogged} asked before the end fires when the process ended.
        """
        tee, _, transport = spawnTee(io.BytesIO())
        d = tee.whenLogged()
        self.assertNoResult(d)
        transport.exit(0)
        self.assertIsNone(self.successResultOf(d))

    def test_badArguments(self) -> None:
        """
        A log that is neither a path nor a file is a L{TypeError}; a
        C{maxLineLength} below 1 a L{ValueError}; a path that cannot be
        opened raises at once.
        """
        self.assertRaises(TypeError, TeeProtocol, Recorder(), 42)
        self.assertRaises(
            ValueError, TeeProtocol, Recorder(), io.BytesIO(), maxLineLength=0
        )
        self.assertRaises(
            FileNotFoundError, TeeProtocol, Recorder(), "/nonexistent/dir/log"
        )

    def test_unencodablePath(self) -> None:
        """
        A path that holds NUL, or that the file system encoding cannot
        encode (a lone surrogate), is a L{ValueError} naming C{logFile},
        raised before anything is opened (it used to escape from C{open()}
        as a L{UnicodeEncodeError}).
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        base = os.path.join(directory, "log")
        for path in (
            base + "\ud800",
            base + "\udfff",
            base + "\0",
            os.fsencode(base) + b"\0",
        ):
            error = self.assertRaises(ValueError, TeeProtocol, Recorder(), path)
            self.assertTrue(str(error).startswith("logFile "), str(error))
        self.assertEqual(os.listdir(directory), [])


class TeeErrorTests(SynchronousTestCase):
    """
    L{TeeProtocol} with files that fail: the error is reported, never
    swallowed, and the output is still delivered whole.
    """

    def test_diskFull(self) -> None:
        """
        Writing to a full disk (C{/dev/full}) records the error, logs it
        once, stops writing the log, and fails C{whenLogged}; every byte
        still reaches the wrapped protocol.
        """
        tee, recorder, transport = spawnTee("/dev/full")
        transport.dataFromChild(1, b"first")
        transport.dataFromChild(1, b"second")
        transport.exit(0)
        self.assertIsInstance(tee.error, OSError)
        assert isinstance(tee.error, OSError)
        self.assertEqual(tee.error.errno, errno.ENOSPC)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(
            [d for e, d in recorder.events if e == "data"],
            [(1, b"first"), (1, b"second")],
        )
        self.assertEqual(recorder.events[-1], ("ended", None))
        self.failureResultOf(tee.whenLogged(), OSError)

    def test_closedFile(self) -> None:
        """
        A file closed under our feet is reported (L{ValueError}), and the
        output is delivered.
        """
        log = io.BytesIO()
        tee, recorder, transport = spawnTee(log)
        log.close()
        transport.dataFromChild(2, b"err")
        transport.exit(1)
        self.assertIsInstance(tee.error, ValueError)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertIn(("data", (2, b"err")), recorder.events)

    def test_flushError(self) -> None:
        """
        A buffered file whose data only fails when flushed at the end
        (C{/dev/full} behind a buffer) is reported too.
        """
        log = open("/dev/full", "wb")

        def close() -> None:
            # Closing flushes the data still buffered, which fails again.
            try:
                log.close()
            except OSError:
                pass

        self.addCleanup(close)
        tee, _, transport = spawnTee(log)
        transport.dataFromChild(1, b"small")
        self.assertIsNone(tee.error)
        transport.exit(0)
        self.assertIsInstance(tee.error, OSError)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.failureResultOf(tee.whenLogged(), OSError)

    def test_wouldBlock(self) -> None:
        """
        A non-blocking file that cannot take the data is an error, not a
        silent loss.
        """
        tee, recorder, transport = spawnTee(WouldBlock())
        transport.dataFromChild(1, b"x")
        self.assertIsInstance(tee.error, BlockingIOError)
        self.assertEqual(len(self.flushLoggedErrors(BlockingIOError)), 1)
        self.assertIn(("data", (1, b"x")), recorder.events)

    def test_errorVisibleAtEnd(self) -> None:
        """
        The wrapped protocol's C{processEnded} already sees the error.
        """
        seen: list[object] = []
        recorder = Recorder()
        reactor = MemoryProcessReactor()
        tee = TeeProtocol(recorder, "/dev/full")
        recorder.processEnded = lambda reason: seen.append(tee.error)  # type: ignore[method-assign]
        transport = reactor.spawnProcess(tee, "prog", ["prog"])
        transport.dataFromChild(1, b"x")
        transport.kill(signal.SIGTERM)
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0], OSError)
        self.flushLoggedErrors(OSError)


class TeeRealMixin(MixinBase):
    """
    Teeing a real child's output through L{txspawn.run}.
    """

    def test_runLog(self) -> None:
        """
        C{run(logFile=..., logPrefix=True)} writes every line of both
        streams, prefixed, and still returns the output.
        """
        reactor = self.buildReactor()
        path = tempPath(self)
        source = "import sys\nprint('out')\nsys.stderr.write('err\\n')\n"

        async def main() -> ProcessResult:
            return await run(
                [PYTHON, b"-c", source], reactor=reactor, logFile=path, logPrefix=True
            )

        result = succeeded(runInReactor(self, reactor, main))
        self.assertEqual((result.stdout, result.stderr), (b"out\n", b"err\n"))
        lines = readFile(path).splitlines()
        self.assertEqual(
            sorted(line.split(b" ", 1)[1] for line in lines),
            [b"stderr: err", b"stdout: out"],
        )


globals().update(makeTestCaseClasses(TeeRealMixin))
