# -*- test-case-name: tests.test_supervise_procmon -*-
"""
Killing what is left of a process group after its leader was reaped, and
knowing when it is gone: the tree of a child that has no cgroup.

The leader's transport sends C{SIGKILL} to its group before reaping it
when it exits during a termination, but a signal is only queued: the
members may still be running when the leader's end is reported, and
members may remain after a leader that exited on its own.  Here each
member is found in C{/proc} (its C{pgrp}), held by a pidfd (so a later
signal cannot reach a process that reused its pid), killed through it,
and watched on the reactor until it exited (a pidfd is readable once its
process has terminated, whoever its parent is).  The group is scanned
again once those are gone, for members forked meanwhile, until none is
left.

The scan is the one racy step: between the leader's reaping and the scan,
the group may empty and a new process take the pgid as its pid and lead a
group of that number.  A member must therefore have started no earlier
than the leader and not after the leader's end was seen.

@since: txspawn 0.1
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFDSet, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["killGroup", "parentAndStartTime", "processStartTime"]

_log = Logger()


def processStartTime(pid: int) -> int | None:
    """
    The start time of process C{pid} (clock ticks since boot, as
    C{/proc/<pid>/stat} has it), or C{None} if it is gone.
    """
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def parentAndStartTime(pid: int) -> tuple[int, int] | None:
    """
    The parent pid and start time (as L{processStartTime}) of process
    C{pid}, or C{None} if it is gone.
    """
    fields = _stat(pid)
    return None if fields is None else (int(fields[1]), int(fields[19]))


def _stat(pid: int) -> list[bytes] | None:
    """
    The fields of C{/proc/<pid>/stat} after the command (C{state} first),
    or C{None} if the process is gone.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(b")") + 2 :].split()


def _members(pgid: int, startedFrom: int, startedBy: int) -> list[int]:
    """
    The live processes of group C{pgid} that started between C{startedFrom}
    and C{startedBy} (clock ticks since boot).
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields is None or fields[0] in (b"Z", b"X"):
            continue
        if int(fields[2]) == pgid and startedFrom <= int(fields[19]) <= startedBy:
            found.append(int(entry))
    return found


@implementer(IReadDescriptor)
class _ExitWatch:
    """
    A pidfd on the reactor: readable once its process terminated.
    """

    def __init__(self, fd: int, ended: Callable[[_ExitWatch], None]) -> None:
        self._fd = fd
        self._ended = ended

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "txspawn-group-watch"

    def doRead(self) -> None:
        self._ended(self)

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped the watch (it is shutting down): close the fd.
        """
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def killGroup(reactor: IReactorFDSet, pgid: int, leaderStart: int) -> Deferred[None]:
    """
    C{SIGKILL} every process left in group C{pgid} (its leader, started at
    C{leaderStart}, already reaped) and fire once none is left.

    @return: A L{Deferred} that fires with C{None} once no member is
        alive: at once when the group is empty (or C{pidfd_open} is
        missing: then the members get C{killpg} and are not waited for).
    """
    startedBy = _ticksNow()
    done: Deferred[None] = Deferred()
    watching: set[_ExitWatch] = set()

    def scan() -> None:
        members = _members(pgid, leaderStart, startedBy)
        if not members:
            done.callback(None)
            return
        if not hasattr(os, "pidfd_open"):
            os.killpg(pgid, signal.SIGKILL)
            done.callback(None)
            return
        for pid in members:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            fields = _stat(pid)
            if fields is None or int(fields[2]) != pgid:
                # Gone, or the pid is someone else's now: not a member.
                os.close(fd)
                continue
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            watch = _ExitWatch(fd, ended)
            watching.add(watch)
            reactor.addReader(watch)
        if not watching:
            reactor.callLater(0, scan)  # type: ignore[attr-defined]

    def ended(watch: _ExitWatch) -> None:
        reactor.removeReader(watch)
        watch.close()
        watching.discard(watch)
        if not watching:
            scan()

    try:
        scan()
    except OSError:
        _log.failure("cannot kill what is left of process group {pgid}", pgid=pgid)
        if not done.called:
            done.callback(None)
    return done


def _ticksNow() -> int:
    """
    The time since boot in clock ticks, as C{/proc/<pid>/stat} counts
    start times.
    """
    with open("/proc/uptime", "rb") as f:
        seconds = float(f.read().split()[0])
    return int(seconds * os.sysconf("SC_CLK_TCK")) + 1
