# -*- test-case-name: tests.test_bench_supervise -*-
"""
What the C{supervise} bench rows read: a supervisor's CPU time and wake-ups
(L{cpuOf}), restart batches of the C{restart} program (L{Restarts}) and
the log files a C{spew} program left (L{checkLogs}).

Nothing here is public API.
"""

from __future__ import annotations

import glob
import os
import signal
import time

from attrs import define, frozen

from txspawn._bench._supervise_child import EXIT, START, lineText, readRecords

__all__ = ["CpuSample", "LogCheck", "Restarts", "checkLogs", "cpuOf"]

_TICK = os.sysconf("SC_CLK_TCK")


@frozen
class CpuSample:
    """
    A process's CPU use so far.

    @ivar seconds: CPU time, user and system, of every thread alive now
        (C{/proc/PID/task/*/schedstat}: nanoseconds); falls back on
        L{ticks} where schedstat is missing.
    @ivar ticks: C{utime + stime} from C{/proc/PID/stat}, in seconds (clock
        ticks: a coarse 10 ms grain).
    @ivar switches: Context switches, voluntary and not, of every thread
        alive now: how often it woke up, near enough.
    """

    seconds: float
    ticks: float
    switches: int

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            self.seconds - other.seconds,
            self.ticks - other.ticks,
            self.switches - other.switches,
        )


def cpuOf(pid: int) -> CpuSample:
    """
    @param pid: A living process.
    @return: Its CPU use so far.
    @raise OSError: it is gone.
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    ticks = (int(fields[11]) + int(fields[12])) / _TICK
    nanoseconds = 0
    switches = 0
    schedstat = True
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                nanoseconds += int(f.read().split()[0])
        except FileNotFoundError:
            schedstat = False  # (no CONFIG_SCHED_INFO, or the thread ended)
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")):
                        switches += int(line.split()[-1])
        except FileNotFoundError:
            pass
    return CpuSample(nanoseconds / 1e9 if schedstat else ticks, ticks, switches)


class RestartError(Exception):
    """
    A restart batch did not complete.
    """


@define
class Restarts:
    """
    The C{restart} program of one supervisor, between batches: its latest
    run waits for C{SIGUSR1} (see L{txspawn._bench._supervise_child}).

    @ivar stamps: Its stamp file.
    @ivar limit: Its limit file.
    """

    stamps: str
    limit: str
    _first: int = 0
    _target: int = 0

    def waitFirst(self, timeout: float) -> None:
        """
        Wait for the first run to wait.
        """
        self._waitStart(1, timeout)

    def _waitStart(self, index: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            records = readRecords(self.stamps)
            if any(r.kind == START and r.index >= index for r in records):
                return
            if time.monotonic() > deadline:
                last = records[-1] if records else None
                raise RestartError(
                    f"run {index} did not start within {timeout:.0f} s "
                    f"(last record: {last})"
                )
            time.sleep(0.002)

    def begin(self, count: int) -> None:
        """
        Let the waiting run exit and C{count - 1} more run and exit at once:
        C{count} restarts, after which a new run waits.
        """
        records = readRecords(self.stamps)
        last = records[-1]
        assert last.kind == START, last
        self._first = last.index
        self._target = last.index + count
        temporary = self.limit + ".new"
        with open(temporary, "w") as f:
            f.write(f"{last.index + count - 1}\n")
        os.replace(temporary, self.limit)
        os.kill(last.pid, signal.SIGUSR1)

    def finish(self, timeout: float) -> list[float]:
        """
        Wait for the batch L{begin} started.

        @return: Each restart's latency, in milliseconds: from a run's exit
            record to the next run's start record.
        """
        self._waitStart(self._target, timeout)
        records = readRecords(self.stamps)
        exits = {r.index: r.ns for r in records if r.kind == EXIT}
        starts = {r.index: r.ns for r in records if r.kind == START}
        return [
            (starts[i + 1] - exits[i]) / 1e6
            for i in range(self._first, self._target)
            if i in exits and i + 1 in starts
        ]

    def batch(self, count: int, timeout: float) -> list[float]:
        """
        L{begin} then L{finish}.
        """
        self.begin(count)
        return self.finish(timeout)


@frozen
class LogCheck:
    """
    What a C{spew} program's log files hold.

    @ivar files: How many files the log left (the current one and its
        backups).
    @ivar lines: Whole, correct lines found, across the files (a line split
        across two files counts, once).
    @ivar first: The first whole line's number, or C{None}.
    @ivar last: The last whole line's number, or C{None}.
    @ivar lost: Lines missing between the first and the last.
    @ivar split: Lines cut in two by a rotation: the end of one file and
        the start of the next (or the start of the oldest file: the rest of
        a line whose start was in a file rotated away).
    @ivar broken: Lines that are not a line the program wrote, nor part of
        a split one.
    @ivar timestamps: C{True} if every line has a timestamp and they never
        go back, C{False} if one goes back or is missing, C{None} without
        timestamps.
    """

    files: int
    lines: int
    first: int | None
    last: int | None
    lost: int
    split: int
    broken: int
    timestamps: bool | None


def _logFiles(path: str) -> list[str]:
    """
    The files of a log, oldest first: C{PATH.N} .. C{PATH.1}, C{PATH}.
    """
    prefix = len(path) + 1
    rotated = [p for p in glob.glob(glob.escape(path) + ".*") if p[prefix:].isdigit()]
    rotated.sort(key=lambda p: -int(p[prefix:]))
    return rotated + ([path] if os.path.exists(path) else [])


def _stamp(line: bytes) -> tuple[bytes | None, bytes]:
    # txspawn's timestamp: "2026-12-05T11:00:00.123456Z " before the line.
    if line[4:5] == b"-" and line[10:11] == b"T" and b"Z " in line[:40]:
        stamp, _, rest = line.partition(b" ")
        return stamp, rest
    return None, line


def _number(line: bytes) -> int | None:
    """
    @return: The number of a whole line the program wrote, or C{None}.
    """
    head = line[:10]
    if head.isdigit() and line + b"\n" == lineText(int(head)):
        return int(head)
    return None


def _fragment(raw: bytes, marker: bytes) -> bool:
    line = _stamp(raw)[1]
    return not line.startswith(marker) and _number(line) is None


class _Reader:
    """
    Follows the lines of a log across its files.
    """

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.expected: int | None = None
        self.first: int | None = None
        self.last: int | None = None
        self.lines = self.lost = self.split = self.broken = 0
        self.previousStamp: bytes | None = None
        self.timestamps: bool | None = None

    def stamp(self, stamp: bytes | None) -> None:
        """
        A line's timestamp (C{None}: it has none).
        """
        if stamp is None:
            if self.timestamps is not None:
                self.timestamps = False  # a line without one, among others
            return
        if self.timestamps is None:
            self.timestamps = True
        if self.previousStamp is not None and stamp < self.previousStamp:
            self.timestamps = False
        self.previousStamp = stamp

    def found(self, n: int) -> None:
        """
        Line C{n}, whole: count the lines missing before it.
        """
        if self.expected is not None and n > self.expected:
            self.lost += n - self.expected
        if self.first is None:
            self.first = n
        self.last = n
        self.expected = n + 1
        self.lines += 1

    def line(self, raw: bytes) -> None:
        """
        One line read from a file, without its newline.
        """
        stamp, line = _stamp(raw)
        if line.startswith(self.marker):
            return
        self.stamp(stamp)
        n = _number(line)
        if n is None:
            self.broken += 1
        else:
            self.found(n)

    def joined(self, tail: bytes, head: bytes) -> None:
        """
        The end of one file (no newline) and the start of the next.
        """
        stamp, line = _stamp(tail + head)
        n = _number(line)
        if n is None:
            self.broken += 1 + bool(head)
            return
        self.stamp(stamp)
        self.split += 1
        self.found(n)

    def leading(self, fragment: bytes) -> None:
        """
        The start of the oldest file, when it is the end of a line.
        """
        n = self.first if self.first is not None else None
        if n is None or not lineText(n - 1).endswith(fragment + b"\n"):
            self.broken += 1
        else:
            self.split += 1


def checkLogs(path: str, marker: bytes = b"--- ") -> LogCheck:
    """
    Read every file of a log and check its lines against what the C{spew}
    program wrote.

    @param path: The current log file (its backups are C{PATH.1} ...).
    @param marker: How the supervisor's own marker lines start (skipped).
    @return: What was found.
    """
    files = _logFiles(path)
    reader = _Reader(marker)
    tail: bytes | None = None
    leading: bytes | None = None
    for n, name in enumerate(files):
        with open(name, "rb") as f:
            pieces = f.read().split(b"\n")
        end = pieces.pop()  # b"" when the file ends with a newline
        if tail is not None and pieces:
            reader.joined(tail, pieces.pop(0))
        elif tail is not None:
            end = tail + end  # a file with no newline at all
        elif n == 0 and pieces and _fragment(pieces[0], marker):
            leading = pieces.pop(0)
        for raw in pieces:
            reader.line(raw)
        tail = end or None
    if leading is not None:
        reader.leading(leading)
    if tail is not None:
        reader.broken += 1  # the last file ends inside a line
    return LogCheck(
        len(files),
        reader.lines,
        reader.first,
        reader.last,
        reader.lost,
        reader.split,
        reader.broken,
        reader.timestamps,
    )


def spewLines(total: int) -> int:
    """
    @param total: The bytes a C{spew} program is asked for.
    @return: The number of its last line.
    """
    # Line n is 32 + n % 97 bytes long: a cycle of 97 lines is 7760 bytes.
    cycles, rest = divmod(total, 7760)
    if rest == 0:
        return cycles * 97 - 1
    n, written = cycles * 97, cycles * 7760
    while True:
        written += 32 + n % 97
        if written >= total:
            return n
        n += 1


def logGlob(logDir: str) -> list[str]:
    """
    @return: Every file under a log directory.
    """
    return sorted(glob.glob(os.path.join(logDir, "*")))
