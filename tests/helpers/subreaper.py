"""
Run a command as a child subreaper and report what it leaves alive.

    python subreaper.py COMMAND [ARG...]

This process becomes a child subreaper (C{PR_SET_CHILD_SUBREAPER}), so
every descendant of COMMAND that outlives its parent is reparented to it,
setsid'd daemons included, instead of to init: once COMMAND has exited,
every process still alive that COMMAND started is a child of this one.
C{SIGTERM}, C{SIGINT} and C{SIGHUP} are forwarded to COMMAND.  After
COMMAND exits, the last line on stderr is C{subreaper: } and a JSON object:
C{returncode} (COMMAND's, negative for a signal, as L{subprocess} gives
it) and C{left}, the processes still alive then (pid and command line),
which were killed and reaped, with the processes they had started, so that
nothing outlives this helper.  Its own exit status is 0.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[tuple[int, str, str]]:
    """
    This process's children: pid, state letter and command line.
    """
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[1]) == me:
            found.append((int(entry), fields[0].decode(), cmdline.strip()))
    return found


def main(argv: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    # COMMAND starts with every signal at its default action, as from a
    # terminal: a test runner started in the background by a shell without
    # job control has SIGINT and SIGQUIT ignored, and COMMAND would inherit
    # that (Twisted, rightly, leaves an ignored SIGINT ignored).
    defaults = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
    child = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=defaults)

    def forward(signum: int, frame: object) -> None:
        os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    # Reap every child as it ends, orphans included, as init would, so
    # that a zombie orphan never looks like a process that is left.
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            returncode = os.waitstatus_to_exitcode(status)
            break
    # Kill what is left, and what that leaves: a process's orphans are
    # reparented to this one before its own end is reported here.
    left: dict[int, str] = {}
    while True:
        for pid, state, cmdline in _children():
            if state not in ("Z", "X"):
                left.setdefault(pid, cmdline)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    verdict = {
        "returncode": returncode,
        "left": [{"pid": pid, "cmdline": cmdline} for pid, cmdline in left.items()],
    }
    sys.stderr.write("subreaper: " + json.dumps(verdict) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
