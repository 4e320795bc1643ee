"""
A process tree that no process-group kill can end, for the cgroup tests.

Usage: C{python cgrouptree.py COUNT LEADER}

The leader starts C{COUNT} daemons the classic way: it forks a child,
which calls C{setsid} (a session and group of its own, so neither the
leader's group nor its session reaches it), forks the daemon and exits
(the daemon is orphaned: its parent is no longer the leader).  Each
daemon ignores C{SIGTERM}, waits until its parent has exited (a pidfd),
writes its pid and a newline to its stdout (inherited from the leader:
the reader sees one line per daemon), and becomes C{sleep} (the ignored
C{SIGTERM} survives C{exec}), which holds the pipe open until it is
killed.  So once a reader has every line, no intermediate child is left,
and the leader's cgroup holds the leader and the daemons only.  The leader
goes on once every daemon has written its line and exec'd (the end of
file of a close-on-exec pipe every daemon inherits).

C{LEADER} says what the leader does then:
  - C{wait}: waits on its stdin until end of file (C{SIGTERM} kills it);
  - C{ignore}: the same, ignoring C{SIGTERM} too;
  - C{exit}: exits with code 0 (the daemons stay);
  - C{sigwait}: it has C{SIGTERM} blocked from its start, so a C{SIGTERM}
    sent while it builds the tree waits; once the tree is complete, it
    waits for C{SIGTERM} and exits with code 0 when it comes (a leader
    that obeys C{SIGTERM}, whose daemons do not).
"""

from __future__ import annotations

import os
import select
import signal
import sys


def daemon(parent: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    try:
        parentFD = os.pidfd_open(parent)
    except ProcessLookupError:
        pass
    else:
        # Readable once the parent has exited (gone from the cgroup).
        select.select([parentFD], [], [])
        os.close(parentFD)
    os.write(1, b"%d\n" % os.getpid())
    # The leader's close-on-exec "done" pipe closes here.
    os.execv("/bin/sleep", ["sleep", "100000"])


def intermediate() -> None:
    os.setsid()
    me = os.getpid()
    if os.fork() == 0:
        daemon(me)


def main() -> None:
    count, leader = int(sys.argv[1]), sys.argv[2]
    if leader == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Both ends close-on-exec (os.pipe): each daemon's copy of the write
    # end closes when it execs, each intermediate's when it exits.
    doneRead, doneWrite = os.pipe()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                intermediate()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    os.close(doneWrite)
    os.read(doneRead, 1)
    if leader == "exit":
        return
    if leader == "sigwait":
        signal.sigwait({signal.SIGTERM})
        return
    # Until the parent closes stdin (it does not in these tests) or a
    # signal ends us.
    while os.read(0, 1):
        pass


if __name__ == "__main__":
    if sys.argv[2] == "sigwait":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    main()
