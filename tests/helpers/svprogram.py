"""
A program for the supervisor's entry-point tests to supervise.

    python svprogram.py FIFO NAME [--tree] [--ignore-term]

It writes one line to the named pipe FIFO, C{NAME PID GRANDCHILD}, and then
waits for a signal for ever.  With C{--tree} it first forks a grandchild
that leaves the session and process group (C{setsid}), ignores
C{SIGTERM} and closes its standard streams, as a daemon would: only a
whole-tree kill (a cgroup's) reaches it.  The line is written by the
grandchild once it is all that, so that a test that has read it knows the
tree it must kill; GRANDCHILD is C{-} without C{--tree}.  With
C{--ignore-term} the program itself ignores C{SIGTERM} too, so that its
stop needs C{SIGKILL}.
"""

from __future__ import annotations

import os
import signal
import sys


def report(fifo: str, line: str) -> None:
    fd = os.open(fifo, os.O_WRONLY)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    fifo, name, *flags = argv
    if "--ignore-term" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "--tree" in flags:
        if os.fork() == 0:
            parent = os.getppid()
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            report(fifo, f"{name} {parent} {os.getpid()}\n")
            while True:
                signal.pause()
    else:
        report(fifo, f"{name} {os.getpid()} -\n")
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
