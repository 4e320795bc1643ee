# -*- test-case-name: tests.test_bench -*-
"""
The floor of the spawn-and-reap cycle for I{any} Python implementation.

C{python -m txspawn bench --scenario spawn} times one cycle -- spawn
C{/bin/true} with three pipes, see every pipe end and the exit, reap -- for
txspawn's reactor against the C reference loop (C{posix_spawn}, blocking
reads to end of file, blocking C{waitpid}).  This script asks how close to C
Python can get at all.  Interleaved sample by sample in one process, it
times the same cycle:

  - C{C}: the C reference (a worker of the reference binary, as in the
    bench);
  - C{py-block}: the C loop written in Python: C{os.pipe2}, C{os.posix_spawn},
    blocking C{os.read} to end of file, blocking C{os.waitpid};
  - C{py-epoll}: what an event loop must do, with no reactor: non-blocking
    parent ends, a pidfd, one C{select.epoll} for the pipes and the pidfd,
    C{wait4} with resource usage, C{Failure(ProcessDone(status))} for
    C{processExited} and C{processEnded};
  - C{py-epoll/c-engine}: the same with the child started by txspawn's C
    engine (C{CSpawner.spawn} from a plan built once).

On a machine whose CPU sleeps while the parent waits, the code after each
wake-up runs cold (see C{docs/design/monitoring.rst}, "Exit latency"); the
C{py-epoll} rows show how much of the bench's ratio is that cost, which no
C{IReactorProcess} written in Python avoids.

Usage::

    python benchmarks/spawn_floor.py [--samples 200]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from twisted.internet.error import ProcessDone
from twisted.python.failure import Failure

from txspawn._bench._creference import buildReference

_now = time.perf_counter_ns
_TRUE = "/bin/true"


def _pipes() -> tuple[list[int], dict[int, int]]:
    """
    Three pipes as Twisted's default C{childFDs}: the parent's ends
    (non-blocking) and the child fd to child end map.
    """
    parentEnds: list[int] = []
    childMap: dict[int, int] = {}
    for childFD in (0, 1, 2):
        readEnd, writeEnd = os.pipe2(os.O_CLOEXEC)
        if childFD == 0:
            parentEnd, childEnd = writeEnd, readEnd
        else:
            parentEnd, childEnd = readEnd, writeEnd
        os.set_blocking(parentEnd, False)
        parentEnds.append(parentEnd)
        childMap[childFD] = childEnd
    return parentEnds, childMap


def _spawnPosix(childMap: dict[int, int]) -> tuple[int, int]:
    actions = [(os.POSIX_SPAWN_DUP2, end, fd) for fd, end in childMap.items()]
    pid = os.posix_spawn(_TRUE, [_TRUE], {}, file_actions=actions)
    return pid, os.pidfd_open(pid)


def pyBlock() -> float:
    """
    The C reference loop, in Python.
    """
    started = _now()
    fds = []
    for childFD in (0, 1, 2):
        readEnd, writeEnd = os.pipe2(os.O_CLOEXEC)
        fds.append((readEnd, writeEnd) if childFD else (writeEnd, readEnd))
    actions = [(os.POSIX_SPAWN_DUP2, child, fd) for fd, (_, child) in enumerate(fds)]
    pid = os.posix_spawn(_TRUE, [_TRUE], {}, file_actions=actions)
    for _, child in fds:
        os.close(child)
    os.close(fds[0][0])
    for parent, _ in fds[1:]:
        while os.read(parent, 4096):
            pass
        os.close(parent)
    os.waitpid(pid, 0)
    return (_now() - started) / 1e3


def pyEpoll(spawn: Callable[[dict[int, int]], tuple[int, int]]) -> float:
    """
    What an event loop must do, without a reactor.
    """
    from txspawn._cspawn import wait4

    started = _now()
    parentEnds, childMap = _pipes()
    pid, pidfd = spawn(childMap)
    for end in childMap.values():
        os.close(end)
    poller = select.epoll()
    for fd in (*parentEnds, pidfd):
        poller.register(fd, select.EPOLLIN)
    open_ = set(parentEnds)
    reaped = False
    ended: list[int] = []

    def processExited(reason: Failure) -> None:
        pass

    def processEnded(reason: Failure) -> None:
        ended.append(_now())

    status = 0
    while open_ or not reaped:
        for fd, event in poller.poll(-1):
            if fd == pidfd:
                status = wait4(pid, os.WNOHANG)[1]
                reaped = True
                processExited(Failure(ProcessDone(status)))  # type: ignore[no-untyped-call]
                poller.unregister(pidfd)
                os.close(pidfd)
            elif fd in open_:
                if event & select.EPOLLIN and os.read(fd, 65536):
                    continue
                open_.discard(fd)
                poller.unregister(fd)
                os.close(fd)
    processEnded(Failure(ProcessDone(status)))  # type: ignore[no-untyped-call]
    poller.close()
    return (ended[0] - started) / 1e3


def main(argv: list[str]) -> int:
    """
    Run the floor measurement and print one row per variant.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="txspawn-floor-") as scratch:
        reference = buildReference(scratch)
        if reference.binary is None:
            print(f"no C reference: {reference.reason}")
            return 1
        cWorker = subprocess.Popen(
            [reference.binary, "serve", "0", "0", "0", os.path.join(scratch, "s")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert cWorker.stdin is not None and cWorker.stdout is not None
        cWorker.stdout.readline()  # "ready ..."

        def c() -> float:
            assert cWorker.stdin is not None and cWorker.stdout is not None
            cWorker.stdin.write(f"spawn 1 {_TRUE}\n")
            cWorker.stdin.flush()
            return float(cWorker.stdout.readline().split()[1])

        variants: dict[str, Callable[[], float]] = {
            "C": c,
            "py-block": pyBlock,
            "py-epoll": lambda: pyEpoll(_spawnPosix),
        }
        try:
            from txspawn._engine.cengine import CSpawner
            from txspawn._plan.planner import isOpenFD, planSpawn

            spawner = CSpawner()
            plan = planSpawn(
                _TRUE, [_TRUE], {}, parentEnviron=os.environb, isOpenFD=isOpenFD
            )

            def cEngine(childMap: dict[int, int]) -> tuple[int, int]:
                child = spawner.spawn(plan, childMap, None)
                assert child.pidfd is not None
                return child.pid, child.pidfd

            variants["py-epoll/c-engine"] = lambda: pyEpoll(cEngine)
        except ImportError as e:
            print(f"(no py-epoll/c-engine row: {e})")
        samples: dict[str, list[float]] = {name: [] for name in variants}
        try:
            for _ in range(options.samples + 5):
                for name, measure in variants.items():
                    samples[name].append(measure())
        finally:
            cWorker.stdin.write("quit\n")
            cWorker.stdin.close()
            cWorker.wait()
    cMedian = statistics.median(samples["C"][5:])
    print(f"{'variant':24} {'median us':>10} {'x C':>6}")
    for name, values in samples.items():
        median = statistics.median(values[5:])  # the first rounds warm up
        print(f"{name:24} {median:10.1f} {median / cMedian:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
