# -*- test-case-name: tests.test_supervise_logs -*-
"""
Tests for L{txspawn.supervise.logs}: a program's output in files, whole
lines only, rotated by size; real files in a temporary directory, a fake
clock for the timestamps, and real children writing under load on
txspawn's reactor (both engines x both monitors).
"""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses
from txspawn.supervise.config import LogConfig
from txspawn.supervise.logs import MAX_PARTIAL, ProgramLogs, instanceLogPath

#: 2026-12-05T11:00:00Z, the fake clock's start.
T0 = 1796468400.0

_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z ")


def syscallWrites() -> int:
    """
    How many write system calls this thread made so far.
    """
    with open("/proc/thread-self/io", "rb") as io:
        for line in io:
            if line.startswith(b"syscw:"):
                return int(line.split()[1])
    raise AssertionError("no syscw in /proc/thread-self/io")


class LogsTestMixin:
    """
    A temporary log directory and a fake clock.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()  # type: ignore[attr-defined]
        self.clock = Clock()
        self.clock.advance(T0)
        super().setUp()  # type: ignore[misc]

    def path(self, name: str) -> str:
        return os.path.join(os.path.abspath(self.directory), name)

    def makeLogs(
        self, merge: bool = False, index: int | None = None, **kwargs: Any
    ) -> ProgramLogs:
        config = LogConfig(
            stdout=self.path("web.out"),
            stderr=None if merge else self.path("web.err"),
            **kwargs,
        )
        logs = ProgramLogs(config, "web", self.clock, index)
        self.addCleanup(logs.close)  # type: ignore[attr-defined]
        return logs

    def read(self, name: str) -> bytes:
        with open(self.path(name), "rb") as file:
            return file.read()

    def files(self) -> list[str]:
        return sorted(os.listdir(self.directory))


class LinesTests(LogsTestMixin, SynchronousTestCase):
    """
    What goes into the files: whole lines, stamped as the config says.
    """

    def test_wholeLinesWritten(self) -> None:
        """
        Whole lines are in the file as soon as they are written, stdout in
        the stdout file and stderr in the stderr file.
        """
        logs = self.makeLogs()
        logs.write(1, b"one\ntwo\n")
        logs.write(2, b"oops\n")
        self.assertEqual(self.read("web.out"), b"one\ntwo\n")
        self.assertEqual(self.read("web.err"), b"oops\n")

    def test_partialLineKept(self) -> None:
        """
        A line without its newline stays out of the file until the newline
        comes, even over several writes.
        """
        logs = self.makeLogs()
        logs.write(1, b"one\ntw")
        self.assertEqual(self.read("web.out"), b"one\n")
        logs.write(1, b"o and")
        self.assertEqual(self.read("web.out"), b"one\n")
        logs.write(1, b" more\nthr")
        self.assertEqual(self.read("web.out"), b"one\ntwo and more\n")

    def test_flushWritesPartialLine(self) -> None:
        """
        L{ProgramLogs.flush} writes the pending partial line of each stream,
        ended with a newline, so the next output starts a line of its own.
        """
        logs = self.makeLogs()
        logs.write(1, b"last words")
        logs.write(2, b"err")
        logs.flush()
        logs.write(1, b"next\n")
        self.assertEqual(self.read("web.out"), b"last words\nnext\n")
        self.assertEqual(self.read("web.err"), b"err\n")

    def test_closeFlushesThenIgnores(self) -> None:
        """
        L{ProgramLogs.close} writes the pending partial line; what is
        written after it is dropped.
        """
        logs = self.makeLogs()
        logs.write(1, b"partial")
        logs.close()
        logs.write(1, b"after\n")
        logs.marker("after")
        logs.close()
        self.assertEqual(self.read("web.out"), b"partial\n")

    def test_mergedStreamsNeverMixInALine(self) -> None:
        """
        Merged, stdout and stderr go to one file, each line whole: a
        partial line of one stream is not cut by the other's lines.
        """
        logs = self.makeLogs(merge=True, prefix=True)
        logs.write(1, b"out begins")
        logs.write(2, b"err line\nerr begins")
        logs.write(1, b" and ends\n")
        logs.write(2, b" and ends\n")
        self.assertEqual(
            self.read("web.out"),
            b"stderr | err line\n"
            b"stdout | out begins and ends\n"
            b"stderr | err begins and ends\n",
        )
        self.assertEqual(self.files(), ["web.out"])
        self.assertEqual(
            logs.paths, {"stdout": self.path("web.out"), "stderr": self.path("web.out")}
        )

    def test_sameFileForBoth(self) -> None:
        """
        The same file named for stdout and stderr is written as one merged
        file (one rotation), each stream's lines whole.
        """
        config = LogConfig(
            stdout=self.path("both.log"),
            stderr=self.path("./both.log"),
            maxBytes=10,
            backups=2,
        )
        logs = ProgramLogs(config, "web", self.clock)
        self.addCleanup(logs.close)
        logs.write(1, b"out 1 ")
        logs.write(2, b"err 1\nerr 2\n")
        logs.write(1, b"more\n")
        # Each write fills the file past 10 bytes: it is rotated after it.
        self.assertEqual(self.read("both.log.2"), b"err 1\nerr 2\n")
        self.assertEqual(self.read("both.log.1"), b"out 1 more\n")
        self.assertEqual(self.read("both.log"), b"")
        self.assertEqual(self.files(), ["both.log", "both.log.1", "both.log.2"])

    def test_timestampAndPrefix(self) -> None:
        """
        With C{timestamps} and C{prefix}, every line starts with the UTC
        time it was read (microseconds) and its stream.
        """
        logs = self.makeLogs(timestamps=True, prefix=True)
        self.clock.advance(0.123456)
        logs.write(1, b"a\nb\n")
        logs.write(2, b"c\n")
        stamp = b"2026-12-05T11:00:00.123456Z "
        self.assertEqual(
            self.read("web.out"),
            stamp + b"stdout | a\n" + stamp + b"stdout | b\n",
        )
        self.assertEqual(self.read("web.err"), stamp + b"stderr | c\n")

    def test_timestampIsWhenTheLineEnds(self) -> None:
        """
        A line read in pieces gets the time its newline was read.
        """
        logs = self.makeLogs(timestamps=True)
        logs.write(1, b"sl")
        self.clock.advance(2.5)
        logs.write(1, b"ow\n")
        self.assertEqual(self.read("web.out"), b"2026-12-05T11:00:02.500000Z slow\n")

    def test_timestampsNeverGoBack(self) -> None:
        """
        If the clock goes back, the timestamps stay at the latest time
        written, so they never decrease in a file.
        """
        logs = self.makeLogs(timestamps=True)
        logs.write(1, b"a\n")
        self.clock.rightNow -= 60
        logs.write(1, b"b\n")
        self.assertEqual(
            self.read("web.out"),
            b"2026-12-05T11:00:00.000000Z a\n2026-12-05T11:00:00.000000Z b\n",
        )

    def test_otherFDsAreStdout(self) -> None:
        """
        Output on an fd other than 2 is stdout's.
        """
        logs = self.makeLogs()
        logs.write(3, b"three\n")
        self.assertEqual(self.read("web.out"), b"three\n")

    def test_longPartialLineWrittenOut(self) -> None:
        """
        A partial line longer than L{MAX_PARTIAL} is written as a line of
        its own, so memory stays bounded.
        """
        logs = self.makeLogs()
        logs.write(1, b"x" * MAX_PARTIAL)
        self.assertEqual(self.read("web.out"), b"")
        logs.write(1, b"yy")
        self.assertEqual(self.read("web.out"), b"x" * MAX_PARTIAL + b"yy\n")

    def test_markers(self) -> None:
        """
        L{ProgramLogs.marker} writes a line to each file (timestamped like
        the lines); a pending partial line is not cut by it.
        """
        logs = self.makeLogs(timestamps=True)
        logs.write(1, b"half")
        logs.marker("exited with code 1")
        logs.write(1, b" line\n")
        stamp = b"2026-12-05T11:00:00.000000Z "
        marker = stamp + b"--- txspawn: exited with code 1 ---\n"
        self.assertEqual(self.read("web.out"), marker + stamp + b"half line\n")
        self.assertEqual(self.read("web.err"), marker)

    def test_markerOnceWhenMerged(self) -> None:
        """
        Merged, a marker is written once.
        """
        logs = self.makeLogs(merge=True)
        logs.marker("spawned pid 12")
        self.assertEqual(self.read("web.out"), b"--- txspawn: spawned pid 12 ---\n")

    def test_noMarkers(self) -> None:
        """
        With C{markers} off, L{ProgramLogs.marker} writes nothing.
        """
        logs = self.makeLogs(markers=False)
        logs.marker("spawned pid 12")
        self.assertEqual(self.read("web.out"), b"")

    def test_oneWriteSyscallPerRead(self) -> None:
        """
        A read of many lines is one C{write(2)}, stamps and prefixes
        included: no system call per line.
        """
        logs = self.makeLogs(timestamps=True, prefix=True)
        data = b"".join(b"line %d\n" % n for n in range(5000))
        before = syscallWrites()
        logs.write(1, data)
        self.assertEqual(syscallWrites() - before, 1)

    def test_instanceFiles(self) -> None:
        """
        With an index, the files get C{-<index>} before the extension.
        """
        logs = self.makeLogs(index=1)
        logs.write(1, b"o\n")
        logs.write(2, b"e\n")
        self.assertEqual(self.files(), ["web-1.err", "web-1.out"])
        self.assertEqual(
            [instanceLogPath("/l/web", 0), instanceLogPath("/l/a.b.log", 2)],
            ["/l/web-0", "/l/a.b-2.log"],
        )
        self.assertEqual(instanceLogPath("/l/web.out", None), "/l/web.out")

    def test_directoryMade(self) -> None:
        """
        The log directory is made if it does not exist.
        """
        config = LogConfig(
            stdout=self.path("deep/er/w.out"), stderr=self.path("deep/w.err")
        )
        logs = ProgramLogs(config, "w", self.clock)
        logs.write(1, b"x\n")
        logs.close()
        self.assertEqual(self.read("deep/er/w.out"), b"x\n")

    def test_appendsToExistingFile(self) -> None:
        """
        An existing log file is appended to.
        """
        first = self.makeLogs()
        first.write(1, b"first run\n")
        first.close()
        logs = ProgramLogs(
            LogConfig(stdout=self.path("web.out"), stderr=None), "web", self.clock
        )
        logs.write(1, b"second run\n")
        logs.close()
        self.assertEqual(self.read("web.out"), b"first run\nsecond run\n")

    def test_badStream(self) -> None:
        """
        L{ProgramLogs.tail} and L{ProgramLogs.follow} take C{"stdout"} or
        C{"stderr"} only, and a count of lines >= 0.
        """
        logs = self.makeLogs()
        self.assertRaises(ValueError, logs.tail, 1, "stdin")
        self.assertRaises(ValueError, logs.follow, print, "both")
        self.assertRaises(ValueError, logs.tail, -1)


def numbered(start: int, count: int, width: int = 0) -> bytes:
    """
    Lines C{line <n> <padding>} for n from C{start}, C{count} of them; the
    padding (up to C{width}) varies the line lengths.
    """
    return b"".join(
        b"line %d %s\n" % (n, b"." * (n * 7919 % (width + 1)))
        for n in range(start, start + count)
    )


def lineNumbers(data: bytes) -> list[int]:
    """
    The numbers of C{line <n>} lines (after any stamp or prefix).
    """
    return [int(n) for n in re.findall(rb"line (\d+) \.*\n", data)]


class RotationTests(LogsTestMixin, SynchronousTestCase):
    """
    Rotation by size: only at a line's end, at most C{backups + 1} files.
    """

    def rotated(self, name: str, backups: int) -> bytes:
        """
        The content of every file of C{name}, oldest first.
        """
        parts = []
        for n in range(backups, 0, -1):
            if os.path.exists(self.path(f"{name}.{n}")):
                parts.append(self.read(f"{name}.{n}"))
        return b"".join(parts) + self.read(name)

    def test_rotatedAtTheLineThatReachesTheLimit(self) -> None:
        """
        A file is closed at the end of the line that makes it reach
        C{maxBytes}, even when that line is in the middle of a read; the
        rest goes to the new file.
        """
        logs = self.makeLogs(maxBytes=25, backups=2)
        # 10 bytes a line: the 25th byte is in the third line.
        logs.write(1, b"".join(b"line %04d\n" % n for n in range(5)))
        self.assertEqual(self.read("web.out.1"), b"line 0000\nline 0001\nline 0002\n")
        self.assertEqual(self.read("web.out"), b"line 0003\nline 0004\n")

    def test_rotationInsideAReadIsTwoWrites(self) -> None:
        """
        A read a rotation falls inside is written in two pieces, one per
        file.
        """
        logs = self.makeLogs(maxBytes=100, backups=1)
        before = syscallWrites()
        # The 100th byte is in the second line: the file ends after it.
        first = b"x" * 59 + b"\n" + b"y" * 79 + b"\n"
        logs.write(1, first + b"z" * 19 + b"\n")
        self.assertEqual(syscallWrites() - before, 2)
        self.assertEqual(self.read("web.out.1"), first)
        self.assertEqual(self.read("web.out"), b"z" * 19 + b"\n")

    def test_atMostBackupsPlusOneFiles(self) -> None:
        """
        However much is written, there are at most C{backups + 1} files
        per stream, the lines in them consecutive up to the last written,
        every rotated file at least C{maxBytes} and ended by a line.
        """
        logs = self.makeLogs(maxBytes=1000, backups=3)
        shuffle = random.Random(15)
        data = numbered(0, 20000, width=40)
        position = 0
        while position < len(data):
            size = shuffle.randrange(1, 5000)
            logs.write(1, data[position : position + size])
            position += size
        self.assertEqual(
            self.files(), ["web.err", "web.out"] + [f"web.out.{n}" for n in (1, 2, 3)]
        )
        for n in (1, 2, 3):
            content = self.read(f"web.out.{n}")
            self.assertTrue(content.endswith(b"\n"))
            self.assertGreaterEqual(len(content), 1000)
            self.assertLess(len(content), 1000 + 60)
        numbers = lineNumbers(self.rotated("web.out", 3))
        self.assertEqual(numbers, list(range(numbers[0], 20000)))
        self.assertTrue(data.endswith(self.rotated("web.out", 3)))

    def test_noBackups(self) -> None:
        """
        With C{backups = 0}, a full file is replaced: one file only.
        """
        logs = self.makeLogs(maxBytes=20, backups=0)
        for n in range(10):
            logs.write(1, b"line %04d\n" % n)
        self.assertEqual(self.files(), ["web.err", "web.out"])
        self.assertEqual(self.read("web.out"), b"line 0008\nline 0009\n")

    def test_neverRotate(self) -> None:
        """
        With C{maxBytes = 0}, the file is never rotated.
        """
        logs = self.makeLogs(maxBytes=0, backups=3)
        logs.write(1, numbered(0, 10000))
        self.assertEqual(self.files(), ["web.err", "web.out"])

    def test_fullFileRotatedAtFirstWrite(self) -> None:
        """
        An existing file already at C{maxBytes} is rotated before the first
        line written to it.
        """
        os.makedirs(self.directory)
        with open(self.path("web.out"), "wb") as file:
            file.write(b"old\n" * 10)
        logs = self.makeLogs(maxBytes=40, backups=1)
        logs.write(1, b"new\n")
        self.assertEqual(self.read("web.out.1"), b"old\n" * 10)
        self.assertEqual(self.read("web.out"), b"new\n")

    def test_unrotatableFileKeepsWriting(self) -> None:
        """
        When the file cannot be rotated (LogFile gives up when its
        directory is not writable, here immutable), lines keep going to it.
        """
        # Outside the test's own directory: a run killed while it is
        # immutable must not leave the runner unable to clean its tree.
        directory = tempfile.mkdtemp(prefix="txsv-immutable-")
        self.addCleanup(shutil.rmtree, directory)
        config = LogConfig(
            stdout=os.path.join(directory, "web.out"), stderr=None, maxBytes=10
        )
        logs = ProgramLogs(config, "web", self.clock)
        self.addCleanup(logs.close)
        try:
            subprocess.run(["chattr", "+i", directory], check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            self.skipTest(f"cannot make a directory immutable: {error}")
        self.addCleanup(subprocess.run, ["chattr", "-i", directory], check=True)
        logs.write(1, b"0123456789\n" * 3)
        logs.write(1, b"more\n")
        with open(os.path.join(directory, "web.out"), "rb") as file:
            self.assertEqual(file.read(), b"0123456789\n" * 3 + b"more\n")
        self.assertEqual(os.listdir(directory), ["web.out"])

    def test_writeErrorLoggedOnce(self) -> None:
        """
        A file that cannot be written (here C{/dev/full}: C{ENOSPC}) is
        logged once, not raised (it would reach the child's pipe); the
        lines still go to the followers.
        """
        os.makedirs(self.directory)
        os.symlink("/dev/full", self.path("web.out"))
        logs = self.makeLogs(maxBytes=0)
        seen: list[bytes] = []
        logs.follow(seen.append)
        logs.write(1, b"lost\n")
        logs.write(1, b"lost too\n")
        self.assertEqual(seen, [b"lost\n", b"lost too\n"])
        errors = self.flushLoggedErrors(OSError)
        self.assertEqual([e.value.errno for e in errors], [errno.ENOSPC])


class TailFollowTests(LogsTestMixin, SynchronousTestCase):
    """
    Reading the logs back: the last lines, and the lines to come.
    """

    def test_tail(self) -> None:
        """
        L{ProgramLogs.tail} returns the last lines of the file.
        """
        logs = self.makeLogs()
        logs.write(1, numbered(0, 50))
        self.assertEqual(logs.tail(3), numbered(47, 3))
        self.assertEqual(logs.tail(0), b"")
        self.assertEqual(logs.tail(500), numbered(0, 50))
        self.assertEqual(logs.tail(2, "stderr"), b"")

    def test_tailLongFile(self) -> None:
        """
        The last lines of a file bigger than what is read at a time.
        """
        logs = self.makeLogs(maxBytes=0)
        logs.write(1, numbered(0, 100000, width=30))
        self.assertEqual(logs.tail(1000), numbered(99000, 1000, width=30))
        self.assertEqual(logs.tail(1), numbered(99999, 1, width=30))

    def test_tailAcrossRotation(self) -> None:
        """
        When the current file has fewer lines than asked, the rest comes
        from the newest rotated file.
        """
        logs = self.makeLogs(maxBytes=100, backups=2)
        data = b"".join(b"line %04d\n" % n for n in range(25))
        logs.write(1, data)
        # Files of 10 lines: .2 = 0-9, .1 = 10-19, current = 20-24.
        self.assertEqual(self.read("web.out"), data[200:])
        self.assertEqual(logs.tail(8), data[170:])
        self.assertEqual(logs.tail(100), data[100:])

    def test_tailMerged(self) -> None:
        """
        Merged, both streams' tails are the one file's.
        """
        logs = self.makeLogs(merge=True)
        logs.write(1, b"o\n")
        logs.write(2, b"e\n")
        self.assertEqual(logs.tail(5, "stderr"), b"o\ne\n")
        self.assertEqual(logs.tail(5, "stdout"), b"o\ne\n")

    def test_follow(self) -> None:
        """
        A follower gets the lines written after it started, as written
        (stamped), whole lines only; none after it stopped.
        """
        logs = self.makeLogs(prefix=True)
        logs.write(1, b"before\n")
        seen: list[bytes] = []
        unfollow = logs.follow(seen.append)
        logs.write(1, b"a\nb")
        logs.write(2, b"not mine\n")
        logs.write(1, b"c\n")
        logs.marker("exited")
        unfollow()
        unfollow()
        logs.write(1, b"after\n")
        self.assertEqual(
            seen,
            [b"stdout | a\n", b"stdout | bc\n", b"--- txspawn: exited ---\n"],
        )

    def test_followAcrossRotation(self) -> None:
        """
        A follower gets every line of a read a rotation falls inside.
        """
        logs = self.makeLogs(maxBytes=15)
        seen: list[bytes] = []
        logs.follow(seen.append)
        data = numbered(0, 30)
        logs.write(1, data)
        self.assertEqual(b"".join(seen), data)

    def test_followStderr(self) -> None:
        """
        Following stderr gets stderr's lines.
        """
        logs = self.makeLogs()
        seen: list[bytes] = []
        logs.follow(seen.append, "stderr")
        logs.write(1, b"out\n")
        logs.write(2, b"err\n")
        self.assertEqual(seen, [b"err\n"])

    def test_failingFollower(self) -> None:
        """
        A follower that raises is logged; the lines are still written and
        other followers still called.
        """
        logs = self.makeLogs()
        seen: list[bytes] = []

        def broken(data: bytes) -> None:
            raise RuntimeError("broken follower")

        logs.follow(broken)
        logs.follow(seen.append)
        logs.write(1, b"x\n")
        self.assertEqual(seen, [b"x\n"])
        self.assertEqual(self.read("web.out"), b"x\n")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


#: A child writing numbered lines of varied lengths to stdout and stderr,
#: in writes of varied sizes, as fast as it can: C{argv[1]} lines each.
_WRITER = r"""
import os, random, sys
count = int(sys.argv[1])
shuffle = random.Random(7)
for fd, name in ((1, b"out"), (2, b"err")):
    os.set_blocking(fd, True)
buffers = {1: [], 2: []}
for n in range(count):
    for fd, name in ((1, b"out"), (2, b"err")):
        buffers[fd].append(b"%s line %d %s\n" % (name, n, b"." * (n * 31 % 97)))
        if len(buffers[fd]) >= shuffle.randrange(1, 400):
            data = b"".join(buffers[fd])
            # Cut anywhere, mid-line included.
            cut = shuffle.randrange(0, len(data) + 1)
            os.write(fd, data[:cut])
            os.write(fd, data[cut:])
            buffers[fd] = []
for fd in (1, 2):
    os.write(fd, b"".join(buffers[fd]))
"""


class _Feed(ProcessProtocol):
    """
    Passes a child's output to a L{ProgramLogs}, and fires C{ended}.
    """

    def __init__(self, logs: ProgramLogs) -> None:
        self.logs = logs
        self.ended: Deferred[BaseException] = Deferred()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.logs.write(childFD, data)

    def processEnded(self, reason: Failure) -> None:
        self.logs.flush()
        assert reason.value is not None
        self.ended.callback(reason.value)


class RotationUnderLoadMixin(MixinBase):
    """
    Real children writing fast through the logs, rotated often.
    """

    def writeThrough(self, config: LogConfig, count: int) -> Any:
        reactor = self.buildReactor()
        logs = ProgramLogs(config, "writer", reactor)
        self.addCleanup(logs.close)
        protocol = _Feed(logs)
        results: list[BaseException] = []

        def spawn() -> None:
            reactor.spawnProcess(
                protocol,
                sys.executable,
                [sys.executable, "-c", _WRITER, str(count)],
                env={},
            )

        protocol.ended.addCallback(results.append)
        protocol.ended.addBoth(lambda _: reactor.stop())
        reactor.callWhenRunning(spawn)
        self.runReactor(reactor)
        self.assertEqual(len(results), 1)
        return results[0]

    def checkFiles(
        self,
        path: str,
        backups: int,
        maxBytes: int,
        check: Callable[[list[bytes]], None],
    ) -> None:
        """
        At most C{backups + 1} files; every rotated one ended by a whole
        line and at least C{maxBytes}; C{check} given the lines of them
        all, oldest first.
        """
        directory, name = os.path.split(path)
        names = sorted(n for n in os.listdir(directory) if n.startswith(name))
        self.assertEqual(names, [name] + [f"{name}.{n}" for n in range(1, backups + 1)])
        lines: list[bytes] = []
        for n in range(backups, -1, -1):
            with open(f"{path}.{n}" if n else path, "rb") as file:
                content = file.read()
            if n:
                self.assertGreaterEqual(len(content), maxBytes)
            self.assertTrue(content.endswith(b"\n"), f"{path}.{n}")
            lines.extend(content.splitlines())
        check(lines)

    def test_separateFiles(self) -> None:
        """
        A child writing 2 x 6 MB as fast as it can, in writes cut
        anywhere, rotated at 256 KiB with 3 backups: 4 files per stream,
        every line whole, the lines kept consecutive to the last one,
        timestamps never decreasing.
        """
        directory = os.path.abspath(self.mktemp())
        config = LogConfig(
            stdout=os.path.join(directory, "w.out"),
            stderr=os.path.join(directory, "w.err"),
            maxBytes=256 * 1024,
            backups=3,
            timestamps=True,
        )
        count = 60000
        reason = self.writeThrough(config, count)
        self.assertEqual(reason.exitCode, 0)

        def checker(stream: bytes) -> Callable[[list[bytes]], None]:
            def check(lines: list[bytes]) -> None:
                pattern = re.compile(
                    rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z "
                    + stream
                    + rb" line (\d+) (\.*)$"
                )
                matches = [pattern.match(line) for line in lines]
                self.assertNotIn(None, matches)
                numbers = [int(m.group(2)) for m in matches if m]
                self.assertEqual(numbers, list(range(numbers[0], count)))
                for m in matches:
                    assert m is not None
                    self.assertEqual(len(m.group(3)), int(m.group(2)) * 31 % 97)
                stamps = [m.group(1) for m in matches if m]
                self.assertEqual(stamps, sorted(stamps))
                datetime.fromisoformat(stamps[-1].decode())

            return check

        self.checkFiles(config.stdout, 3, config.maxBytes, checker(b"out"))
        assert config.stderr is not None
        self.checkFiles(config.stderr, 3, config.maxBytes, checker(b"err"))

    def test_merged(self) -> None:
        """
        Merged with stream prefixes: one set of 4 files, every line whole
        and of one stream, each stream's lines consecutive.
        """
        directory = os.path.abspath(self.mktemp())
        config = LogConfig(
            stdout=os.path.join(directory, "w.log"),
            stderr=None,
            maxBytes=512 * 1024,
            backups=3,
            prefix=True,
        )
        count = 50000
        reason = self.writeThrough(config, count)
        self.assertEqual(reason.exitCode, 0)

        def check(lines: list[bytes]) -> None:
            pattern = re.compile(rb"(stdout|stderr) \| (out|err) line (\d+) (\.*)$")
            seen: dict[bytes, list[int]] = {b"stdout": [], b"stderr": []}
            for line in lines:
                match = pattern.match(line)
                assert match is not None, line
                self.assertEqual(match.group(1)[3:], match.group(2))
                self.assertEqual(len(match.group(4)), int(match.group(3)) * 31 % 97)
                seen[match.group(1)].append(int(match.group(3)))
            for numbers in seen.values():
                self.assertEqual(numbers, list(range(numbers[0], count)))

        self.checkFiles(config.stdout, 3, config.maxBytes, check)


globals().update(makeTestCaseClasses(RotationUnderLoadMixin))
