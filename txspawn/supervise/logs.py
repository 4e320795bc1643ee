# -*- test-case-name: tests.test_supervise_logs -*-
"""
A supervised program's log files: its output cut into lines, optionally
stamped with the time and the stream, written to files rotated by size
(L{twisted.python.logfile.LogFile}), never splitting a line between two
files; the last lines read back, new lines followed.

Throughput is the point of the design.  A read from the child (one
L{ProgramLogs.write} call) becomes one system call, whatever the number of
lines in it: a C{writev(2)} of the line left pending by the last read and
the read's whole lines, neither copied; the lines are found with
C{bytes.rfind} and the per-line stamps put in with one C{bytes.replace},
never a loop in Python over lines.

A file is rotated once it reaches C{maxBytes}, at the end of the line that
reaches it (cutting a read in two there if needed): a rotated file holds at
least C{maxBytes} and less than C{maxBytes} plus its last line, and no line
is ever split between two files.

File names: the config's C{stdout}/C{stderr} paths for a program with one
instance; with several, each instance's files get C{-<index>} before the
extension (C{web.out} -> C{web-0.out}, C{web-1.out}; a name with no
extension gets it at the end: C{web} -> C{web-0}).  Rotated files are
C{<name>.1} (the newest) to C{<name>.<backups>}, as C{LogFile} names them.

@since: txspawn 0.1
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, cast

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.logfile import LogFile

from txspawn.supervise.config import LogConfig

__all__ = ["ProgramLogs", "instanceLogPath"]

_log = Logger()

#: A partial line (no newline yet) longer than this is written out as a
#: line of its own, so that a child writing without newlines cannot make
#: the supervisor's memory grow without bound.
MAX_PARTIAL = 1024 * 1024

#: How much of a file L{ProgramLogs.tail} reads at a time, from its end.
_TAIL_BLOCK = 64 * 1024

_STREAMS = ("stdout", "stderr")


def instanceLogPath(path: str, index: int | None) -> str:
    """
    The log file of one instance of a program: C{path} itself for a
    program with one instance (C{index} is C{None}), else C{path} with
    C{-<index>} before its extension.

    @param path: The config's log file path.
    @param index: The instance's index, or C{None}.
    @return: The path for that instance.

    @since: txspawn 0.1
    """
    if index is None:
        return path
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(directory, f"{stem}-{index}{extension}")


class _RotatingFile(Protocol):
    """
    What this module uses of L{LogFile} (which has no annotations).
    """

    size: int

    def writeBuffers(self, head: bytes, body: memoryview) -> None: ...
    def rotate(self) -> None: ...
    def close(self) -> None: ...


class _LineLogFile(LogFile):
    """
    A L{LogFile} that never rotates on its own (it would do so before a
    write, wherever the lines fall: L{_File} rotates it between lines), and
    writes two buffers with one C{writev(2)}, taking no lock (C{LogFile}'s
    C{write} is synchronized for threads; a program's output is written
    from the reactor's thread only).
    """

    def shouldRotate(self) -> bool:
        return False

    def writeBuffers(self, head: bytes, body: memoryview) -> None:
        """
        Write C{head} then C{body}, at the end of the file (the file object
        is unbuffered: its fd's offset is the file's).
        """
        fd = self._file.fileno()
        written = os.writev(fd, (head, body)) if head else os.write(fd, body)
        self.size += written
        left = len(head) + len(body) - written
        while left:
            # A regular file takes it all unless the disk is full (which
            # raises next time): go on with what is left.
            rest = memoryview(b"".join((head, body)))[-left:]
            written = os.write(fd, rest)
            self.size += written
            left -= written


def _samePath(one: str, other: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)


def _timestamp(seconds: float) -> bytes:
    """
    C{seconds} since the epoch as C{2026-12-05T11:00:00.123456Z }, in UTC.
    """
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ ").encode("ascii")


class _File:
    """
    One log file, rotated between lines, with the callbacks following it.

    @ivar path: The file's path.
    @ivar followers: The callbacks given every line written from now on.
    """

    def __init__(self, path: str, maxBytes: int, backups: int) -> None:
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        self.path = path
        self._maxBytes = maxBytes
        self._backups = backups
        self._file = cast(
            _RotatingFile,
            _LineLogFile(  # type: ignore[no-untyped-call]
                name, directory, rotateLength=None, maxRotatedFiles=backups
            ),
        )
        self.followers: list[Callable[[bytes], object]] = []
        self._failing = False

    def write(self, head: bytes, data: bytes, end: int | None = None) -> None:
        """
        Write whole lines: C{head} (the start of a line, with no newline)
        then C{data} up to C{end} (its last byte a newline), without
        copying them, rotating the file each time it reaches the size
        limit, at the end of the line that reaches it.  A file that cannot
        be written (disk full) is logged, once until it can be again; the
        lines still go to the followers: an error here must never reach
        the child's pipe.
        """
        if end is None:
            end = len(data)
        try:
            self._write(head, data, end)
        except (OSError, ValueError):
            if not self._failing:
                _log.failure("cannot write the log file {path}", path=self.path)
            self._failing = True
        else:
            self._failing = False
        if self.followers:
            lines = b"".join((head, memoryview(data)[:end]))
            for follower in list(self.followers):
                try:
                    follower(lines)
                except Exception:
                    _log.failure("log follower {follower!r} failed", follower=follower)

    def _write(self, head: bytes, data: bytes, end: int) -> None:
        view = memoryview(data)
        start = 0
        if self._maxBytes:
            while True:
                if self._file.size >= self._maxBytes:
                    self._rotate()
                    if self._file.size >= self._maxBytes:
                        # LogFile could not rotate (the directory is not
                        # writable) and keeps the file: keep writing it.
                        break
                room = self._maxBytes - self._file.size
                if len(head) + end - start <= room:
                    break
                # The line holding the last byte that fits ends the file
                # (head has no newline: that line ends in data).
                last = start + max(0, room - 1 - len(head))
                cut = data.index(b"\n", last, end) + 1
                self._file.writeBuffers(head, view[start:cut])
                head = b""
                start = cut
        if head or start < end:
            self._file.writeBuffers(head, view[start:end])

    def _rotate(self) -> None:
        self._file.rotate()
        if self._backups == 0:
            # LogFile keeps at least the file it just moved aside.
            try:
                os.remove(f"{self.path}.1")
            except FileNotFoundError:
                pass

    def tail(self, count: int) -> bytes:
        """
        The last C{count} lines, from the rotated file too when the current
        one has fewer.
        """
        found: list[bytes] = []
        for path in (self.path, f"{self.path}.1"):
            count -= _lastLines(path, count, found)
            if count <= 0:
                break
        return b"".join(reversed(found))

    def close(self) -> None:
        self._file.close()


def _lastLines(path: str, count: int, found: list[bytes]) -> int:
    """
    Append the last C{count} lines of the file at C{path} (or all it has)
    to C{found}, as one piece; return how many lines that was.
    """
    if count <= 0:
        return 0
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return 0
    with file:
        end = file.seek(0, os.SEEK_END)
        position = end
        data = b""
        # count + 1 newlines, or the start of the file, bound count lines.
        # (while True and a break, not a while condition: CPython 3.13
        # copies that to the loop's end, outside the with's exception
        # range; tests.test_exceptiontable.)
        while True:
            if position <= 0 or data.count(b"\n") > count:
                break
            step = min(_TAIL_BLOCK, position)
            position -= step
            file.seek(position)
            data = file.read(step) + data
    if not data:
        return 0
    lines = data.splitlines(keepends=True)
    if position > 0:
        # The first piece is the end of a line begun before what was read.
        lines = lines[1:]
    lines = lines[-count:]
    found.append(b"".join(lines))
    return len(lines)


class ProgramLogs:
    """
    The log files of one program instance: its stdout and stderr files (or
    one file for both, when merged), written a line at a time.

    Each stream keeps its own partial line until its newline comes (or
    L{flush}), so in a merged file a line of stdout and a line of stderr
    never mix.  A timestamp, when the config asks for one, is the time the
    bytes were read (the clock's), the same for every line of one read,
    and never goes backwards in a file even if the clock does.

    @ivar config: The program's log config.
    @ivar instance: The instance's name.
    @ivar paths: The stream name (C{"stdout"}, C{"stderr"}) to its file's
        path (the same for both when merged).

    @since: txspawn 0.1
    """

    def __init__(
        self,
        config: LogConfig,
        instance: str,
        clock: IReactorTime,
        index: int | None = None,
    ) -> None:
        """
        Open (creating them and their directory if needed) the files.

        @param config: Where the output goes, rotation, stamps, markers.
        @param instance: The instance's name (for messages).
        @param clock: Gives the time of the timestamps.
        @param index: The instance's index when the program has several
            instances (the file names get it: see L{instanceLogPath}),
            else C{None}.
        @raise OSError: A file could not be opened.
        """
        self.config = config
        self.instance = instance
        self._clock = clock
        self._closed = False
        self._lastStamp = float("-inf")
        stdout = _File(
            instanceLogPath(config.stdout, index), config.maxBytes, config.backups
        )
        stderr = stdout
        # The same file named for both streams is one file, as if merged:
        # two rotations of one file would lose lines.
        if config.stderr is not None and not _samePath(config.stderr, config.stdout):
            try:
                stderr = _File(
                    instanceLogPath(config.stderr, index),
                    config.maxBytes,
                    config.backups,
                )
            except BaseException:
                stdout.close()
                raise
        self._files = {"stdout": stdout, "stderr": stderr}
        self.paths = {name: file.path for name, file in self._files.items()}
        self._partial = {"stdout": b"", "stderr": b""}
        self._prefix = {
            name: f"{name} | ".encode("ascii") if config.prefix else b""
            for name in _STREAMS
        }

    def _stamp(self) -> bytes:
        if not self.config.timestamps:
            return b""
        now = max(self._clock.seconds(), self._lastStamp)
        self._lastStamp = now
        return _timestamp(now)

    def _emit(self, stream: str, pending: bytes, data: bytes, end: int) -> None:
        """
        Write the lines C{pending + data[:end]} of C{stream} to its file,
        each line stamped as the config says.
        """
        head = self._stamp() + self._prefix[stream]
        if head:
            # One replace over the whole read, which is never copied first:
            # the partial line a read ends with gets a head too, and is
            # left out (with it) by the end given to the file; the partial
            # line an earlier read left goes after the first head.
            stamped = data.replace(b"\n", b"\n" + head)
            tail = len(data) - end
            self._files[stream].write(
                head + pending, stamped, len(stamped) - len(head) - tail
            )
        else:
            # No copy of the read: its write is the only pass over it.
            self._files[stream].write(pending, data, end)

    def write(self, childFD: int, data: bytes) -> None:
        """
        Log what the child wrote on C{childFD}: the whole lines now, the
        rest once its newline comes.  Nothing happens after L{close}.

        @param childFD: C{2} for stderr; any other fd (C{1}) is stdout.
        @param data: The bytes read.
        """
        if self._closed or not data:
            return
        stream = "stderr" if childFD == 2 else "stdout"
        pending = self._partial[stream]
        end = data.rfind(b"\n") + 1
        if end == 0:
            pending += data
            if len(pending) > MAX_PARTIAL:
                self._partial[stream] = b""
                self._emit(stream, pending, b"\n", 1)
            else:
                self._partial[stream] = pending
            return
        self._partial[stream] = data[end:]
        self._emit(stream, pending, data, end)

    def marker(self, text: str) -> None:
        """
        Write C{--- txspawn: <text> ---} as a line of its own to each file
        (timestamped if lines are), when the config asks for markers.  A
        partial line stays pending: the marker goes before it.

        @param text: What happened (C{"spawned pid 123"}).
        """
        if self._closed or not self.config.markers:
            return
        line = self._stamp() + f"--- txspawn: {text} ---\n".encode()
        for file in self._distinctFiles():
            file.write(b"", line)

    def flush(self) -> None:
        """
        Write each stream's pending partial line, ended with a newline (the
        child exited, or its pipe closed).
        """
        if self._closed:
            return
        for stream in _STREAMS:
            pending = self._partial[stream]
            if pending:
                self._partial[stream] = b""
                self._emit(stream, pending, b"\n", 1)

    def tail(self, lines: int = 100, stream: str = "stdout") -> bytes:
        """
        The last lines of a stream's file, taken from the newest rotated
        file too when the current one has fewer.

        @param lines: How many lines (at most).
        @param stream: C{"stdout"} or C{"stderr"} (the same file when
            merged).
        @raise ValueError: Unknown C{stream}, or C{lines} negative.
        """
        if lines < 0:
            raise ValueError(f"lines must be >= 0, not {lines!r}")
        return self._file(stream).tail(lines)

    def follow(
        self, callback: Callable[[bytes], object], stream: str = "stdout"
    ) -> Callable[[], None]:
        """
        Call C{callback} with the lines written to a stream's file from
        now on, as written (stamps included), whole lines only, a call per
        write.  An exception it raises is logged.

        @param callback: Called with the bytes of one or more lines.
        @param stream: C{"stdout"} or C{"stderr"}.
        @return: Stops the following (calling it again does nothing).
        @raise ValueError: Unknown C{stream}.
        """
        followers = self._file(stream).followers
        followers.append(callback)

        def unfollow() -> None:
            if callback in followers:
                followers.remove(callback)

        return unfollow

    def close(self) -> None:
        """
        Write the pending partial lines and close the files.  Later calls
        of every method but L{tail} do nothing.
        """
        if self._closed:
            return
        self.flush()
        self._closed = True
        for file in self._distinctFiles():
            file.followers.clear()
            file.close()

    def _file(self, stream: str) -> _File:
        try:
            return self._files[stream]
        except KeyError:
            raise ValueError(
                f"stream must be 'stdout' or 'stderr', not {stream!r}"
            ) from None

    def _distinctFiles(self) -> list[_File]:
        stdout, stderr = self._files["stdout"], self._files["stderr"]
        return [stdout] if stderr is stdout else [stdout, stderr]
