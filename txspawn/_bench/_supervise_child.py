# -*- test-case-name: tests.test_bench_supervise -*-
"""
The program the supervisors of the C{supervise} bench rows run: a tiny C
program (compiled at bench time like the C reference loop, see
L{txspawn._bench._creference}), so that what is timed is the supervisor,
not an interpreter starting.

Its modes:

  - C{restart STAMPS LIMIT}: append a start record to C{STAMPS}; if this
    run's index (1 for the first run) is at most the number in the file
    C{LIMIT}, append an exit record and exit 0 at once; else wait for
    C{SIGUSR1}, then append the exit record and exit 0.  The bench moves
    the limit and signals the waiting run to time a batch of restarts
    (from one run's exit record to the next run's start record, both
    C{CLOCK_MONOTONIC}), and the supervisor sits still between batches.
  - C{sleep}: sleep until killed (the idle rows' programs).
  - C{spew STAMPS BYTES}: append a waiting record, wait for C{SIGUSR1}
    (the bench sends it once the supervisor is up), append a start record,
    write numbered lines (L{lineText}) totalling at least C{BYTES} bytes to
    stdout in 64 KiB writes, append an exit record and exit 0.

A record is four native 64-bit integers: kind (1 start, 2 exit, 3 waiting
to start), the run's
index, its pid and C{CLOCK_MONOTONIC} in nanoseconds (L{readRecords}).

Nothing here is public API.
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess

from attrs import frozen

__all__ = [
    "CHILD_SOURCE",
    "EXIT",
    "START",
    "WAITING",
    "ChildBuild",
    "Record",
    "buildChild",
    "lineText",
    "readRecords",
]

#: A record's kind: a run started (first thing in C{main}).
START = 1
#: A record's kind: a run is about to exit.
EXIT = 2
#: A record's kind: a C{spew} run waits for C{SIGUSR1}.
WAITING = 3

_RECORD = struct.Struct("=qqqq")

CHILD_SOURCE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void record(int fd, int64_t kind, int64_t index, int64_t when) {
    int64_t r[4] = {kind, index, (int64_t)getpid(), when};
    if (write(fd, r, sizeof r) != (ssize_t)sizeof r) _exit(3);
}

static volatile sig_atomic_t go = 0;
static void onUsr1(int sig) { (void)sig; go = 1; }

static int64_t readLimit(const char *path) {
    char buf[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? strtoll(buf, NULL, 10) : 0;
}

/* Line n: 10 digits, a space, 20 + n % 97 letters, a newline. */
static size_t line(char *out, uint64_t n) {
    size_t len = 20 + n % 97;
    int head = snprintf(out, 12, "%010llu ", (unsigned long long)n);
    for (size_t i = 0; i < len; i++) out[head + i] = 'a' + (n + i) % 26;
    out[head + len] = '\n';
    return head + len + 1;
}

int main(int argc, char **argv) {
    int64_t started = now();
    if (argc >= 4 && strcmp(argv[1], "restart") == 0) {
        sigset_t usr1, old;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &usr1, &old);
        signal(SIGUSR1, onUsr1);
        int fd = open(argv[2], O_WRONLY | O_APPEND);
        if (fd < 0) return 2;
        struct stat st;
        if (fstat(fd, &st) != 0) return 2;
        int64_t index = (int64_t)(st.st_size / 32) / 2 + 1;
        record(fd, 1, index, started);
        if (index > readLimit(argv[3])) {
            sigdelset(&old, SIGUSR1);
            while (!go) sigsuspend(&old);
        }
        record(fd, 2, index, now());
        _exit(0);
    }
    if (argc >= 2 && strcmp(argv[1], "sleep") == 0) {
        for (;;) pause();
    }
    if (argc >= 4 && strcmp(argv[1], "spew") == 0) {
        sigset_t usr1, old;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &usr1, &old);
        signal(SIGUSR1, onUsr1);
        int fd = open(argv[2], O_WRONLY | O_APPEND);
        if (fd < 0) return 2;
        record(fd, 3, 1, started);
        sigdelset(&old, SIGUSR1);
        while (!go) sigsuspend(&old);
        record(fd, 1, 1, now());
        unsigned long long total = strtoull(argv[3], NULL, 10), done = 0;
        static char buf[65536 + 256];
        size_t used = 0;
        for (uint64_t n = 0; done < total; n++) {
            size_t len = line(buf + used, n);
            used += len;
            done += len;
            if (used >= 65536 || done >= total) {
                for (size_t off = 0; off < used;) {
                    ssize_t w = write(1, buf + off, used - off);
                    if (w < 0) return 4;
                    off += (size_t)w;
                }
                used = 0;
            }
        }
        record(fd, 2, 1, now());
        _exit(0);
    }
    fprintf(stderr, "usage: child restart STAMPS LIMIT | sleep | spew STAMPS BYTES\n");
    return 64;
}
"""


def _tail(n: int) -> bytes:
    return bytes(97 + (n + i) % 26 for i in range(20 + n % 97)) + b"\n"


# A line's letters depend on n % 26 and n % 97 only.
_TAILS = tuple(_tail(n) for n in range(26 * 97))


def lineText(n: int) -> bytes:
    """
    @param n: A line number, from 0.
    @return: The line the C{spew} mode writes for it, newline included (the
        log check compares what it reads with this).
    """
    return b"%010d " % n + _TAILS[n % (26 * 97)]


@frozen
class Record:
    """
    One record of a stamp file.

    @ivar kind: L{START}, L{EXIT} or L{WAITING}.
    @ivar index: The run's number, from 1.
    @ivar pid: The run's pid.
    @ivar ns: C{CLOCK_MONOTONIC} in nanoseconds.
    """

    kind: int
    index: int
    pid: int
    ns: int


def readRecords(path: str) -> list[Record]:
    """
    @param path: A stamp file.
    @return: Its whole records, in order.
    """
    with open(path, "rb") as f:
        data = f.read()
    whole = len(data) - len(data) % _RECORD.size
    return [Record(*values) for values in _RECORD.iter_unpack(data[:whole])]


@frozen
class ChildBuild:
    """
    The outcome of compiling the child.

    @ivar binary: Its path, or C{None} if it could not be built.
    @ivar reason: The compiler command used (with C{-static} when it could
        link so), or why it could not be built.
    """

    binary: str | None
    reason: str


def buildChild(directory: str, compiler: str | None = None) -> ChildBuild:
    """
    Compile the child into C{directory}.

    @param directory: An existing directory.
    @param compiler: The compiler command (split like a shell word list);
        C{None} for C{$CC}, else C{cc}.
    @return: A L{ChildBuild}: linked statically if the C library allows,
        else dynamically; never raises for a missing or failing compiler.
    """
    command = shlex.split(compiler or os.environ.get("CC") or "cc")
    if not command or shutil.which(command[0]) is None:
        name = command[0] if command else "(empty)"
        return ChildBuild(None, f"no C compiler: {name!r} not found on PATH")
    source = os.path.join(directory, "supervise_child.c")
    binary = os.path.join(directory, "supervise_child")
    with open(source, "w", encoding="utf-8") as f:
        f.write(CHILD_SOURCE)
    # Static where the libc allows it: the run's start stamp then comes
    # right after exec, without the dynamic loader's work before main.
    failure = ""
    for extra in (["-static"], []):
        argv = [*command, "-O2", "-std=gnu11", *extra, "-o", binary, source]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            failure = f"{shlex.join(argv)} failed: {e}"
            continue
        if result.returncode == 0:
            return ChildBuild(binary, shlex.join([*command, "-O2", *extra]))
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        failure = f"{shlex.join(argv)} exited {result.returncode}: " + " / ".join(tail)
    return ChildBuild(None, failure)
