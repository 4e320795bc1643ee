# -*- test-case-name: tests.test_cspawn -*-
"""
Engine-level benchmark of the C engine (issue 3 item 8), without a reactor.

Measures, interleaved, the median time to spawn C{/bin/true} with three
pipes and reap it (C{waitpid}), for:

  - C{c-ref}: a C C{posix_spawn} + C{waitpid} loop (compiled here) with the
    same number of open fds as this process;
  - C{c-engine}: L{txspawn._engine.cengine.CSpawner} (plain, C{path=}, uid/gid,
    pty), and C{c-noslots}: the same without slot mode;
  - C{python}: the Python engine, for reference;

in three parent states: empty, a 2 GiB parent (touched memory), and N idle
children alive (each C{cat} with three pipes and a pidfd held).

Usage::

    python benchmarks/bench_cengine.py [--idle 4000] [--reps 5] [--count 200]

The reactor-level numbers (spawnProcess to processEnded, against stock
Twisted) come from C{python -m txspawn bench --engine c --scenario ...}.
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from txspawn._engine.cengine import CSpawner
from txspawn._engine.pyengine import PythonSpawner
from txspawn._plan.plan import PTYSpec, SpawnPlan

__all__ = ["main"]

TRUE = b"/bin/true"
_REF = r"""
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/wait.h>
extern char **environ;
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
int main(int argc, char **argv) {
    int count = atoi(argv[1]), pad = atoi(argv[2]);
    for (int i = 0; i < pad; i++) open("/dev/null", O_RDONLY | O_CLOEXEC);
    double *t = malloc(sizeof(double) * count);
    char *args[] = {"true", NULL};
    for (int i = 0; i < count; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int p[3][2];
        for (int j = 0; j < 3; j++) pipe2(p[j], O_CLOEXEC);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
        posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
        posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
        pid_t pid;
        posix_spawn(&pid, "/bin/true", &fa, NULL, args, environ);
        posix_spawn_file_actions_destroy(&fa);
        for (int j = 0; j < 3; j++) { close(p[j][0]); close(p[j][1]); }
        int st;
        waitpid(pid, &st, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(t, count, sizeof(double), cmp);
    printf("%f\n", t[count / 2]);
    return 0;
}
"""


def _buildRef(directory: str) -> str:
    src = os.path.join(directory, "ref.c")
    binary = os.path.join(directory, "ref")
    with open(src, "w") as f:
        f.write(_REF)
    subprocess.run(["cc", "-O2", "-o", binary, src], check=True)
    return binary


def _openFds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1


def _spawnOnce(spawner: object, variant: str) -> float:
    start = time.perf_counter()
    ends: list[int] = []
    kwargs: dict[str, Any] = {}
    tty = None
    if variant == "pty":
        master, slave = os.openpty()
        ends = [master, slave]
        fdMap = {0: slave, 1: slave, 2: slave}
        tty = os.ttyname(slave).encode()
        kwargs["pty"] = PTYSpec()
    else:
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        ends = [fd for p in pipes for fd in p]
        fdMap = {0: pipes[0][0], 1: pipes[1][1], 2: pipes[2][1]}
    if variant == "path":
        kwargs["cwd"] = b"/"
    elif variant == "uid":
        kwargs["uid"] = os.getuid()
        kwargs["gid"] = os.getgid()
    plan = SpawnPlan(
        executable=TRUE, candidates=(TRUE,), argv=(b"true",), envp=(), **kwargs
    )
    child = spawner.spawn(plan, fdMap, tty)  # type: ignore[attr-defined]
    for fd in ends:
        os.close(fd)
    os.waitpid(child.pid, 0)
    child.closePidfd()
    return (time.perf_counter() - start) * 1e6


def _median(f: Callable[[], float], count: int) -> float:
    return statistics.median(f() for _ in range(count))


def _idle(n: int) -> list[tuple[int, list[int], int | None]]:
    spawner = CSpawner()
    kids = []
    for _ in range(n):
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        plan = SpawnPlan(
            executable=b"/bin/cat", candidates=(b"/bin/cat",), argv=(b"cat",), envp=()
        )
        fdMap = {0: pipes[0][0], 1: pipes[1][1], 2: pipes[2][1]}
        child = spawner.spawn(plan, fdMap, None)
        os.close(pipes[0][0])
        os.close(pipes[1][1])
        os.close(pipes[2][1])
        kids.append((child.pid, [pipes[0][1], pipes[1][0], pipes[2][0]], child.pidfd))
    return kids


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=4000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp()
    ref = _buildRef(tmp)
    engines = {
        "c-engine": CSpawner(),
        "c-noslots": CSpawner(slots=False),
        "python": PythonSpawner(),
    }
    rows: list[tuple[str, str, float]] = []

    def measure(state: str) -> None:
        fds = _openFds()
        samples: dict[str, list[float]] = {}
        for _ in range(args.reps):
            out = subprocess.run(
                [ref, str(args.count), str(fds)], capture_output=True, text=True
            )
            samples.setdefault("c-ref", []).append(float(out.stdout))
            for variant in ("plain", "path", "uid", "pty"):
                for name, engine in engines.items():
                    if name != "c-engine" and variant != "plain":
                        continue

                    def once(e: object = engine, v: str = variant) -> float:
                        return _spawnOnce(e, v)

                    samples.setdefault(f"{name} {variant}", []).append(
                        _median(once, args.count)
                    )
        for key, values in samples.items():
            rows.append((state, key, statistics.median(values)))
        print(f"[{state}] {fds} fds open", file=sys.stderr)

    measure("empty")
    ballast = mmap.mmap(-1, 2 << 30)
    for off in range(0, 2 << 30, 4096):
        ballast[off] = 1
    measure("2 GiB parent")
    ballast.close()
    kids = _idle(args.idle)
    measure(f"{args.idle} idle")
    for pid, ends, pidfd in kids:
        for fd in ends:
            os.close(fd)
        if pidfd is not None:
            os.close(pidfd)
        os.waitpid(pid, 0)

    refs = {state: us for state, key, us in rows if key == "c-ref"}
    own = {key: us for state, key, us in rows if state == "empty"}
    print(f"{'state':<16} {'what':<22} {'us':>8} {'x c-ref':>8} {'x own empty':>11}")
    for state, key, us in rows:
        print(
            f"{state:<16} {key:<22} {us:8.0f} {us / refs[state]:8.2f} "
            f"{us / own[key]:11.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
