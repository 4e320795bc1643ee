# -*- test-case-name: tests.test_bench -*-
"""
The floor of exit-notification latency for I{any} Python implementation.

C{python -m txspawn bench --scenario exit} compares txspawn's reactor with the
C reference loop (a blocking C{waitpid}).  This script asks a different
question: how close to C can Python get at all, with no reactor, no
transport and no protocol machinery?  It measures, interleaved sample by
sample in one process, the time from a child's last act (it writes its
C{CLOCK_MONOTONIC} time and C{_exit}s; the bench's "stamp" child) to:

  - C{C}: the C reference's blocking C{waitpid} returning (a worker of the
    reference binary, as in the bench);
  - C{py-block}: a blocking C{os.waitpid} returning, in Python;
  - C{raw/...}: a bare C{select.epoll} on the child's pidfd, then a reap and
    a call with a reason, each variant one step closer to what an
    C{IReactorProcess} must do:

      - C{waitpid/prebuilt}: C{os.waitpid}, and a reason built before the
        child exited (the least any implementation can do);
      - C{waitpid/Failure}: C{os.waitpid}, then C{Failure(ProcessDone(s))}
        as C{processExited} receives it (no resource usage);
      - C{wait4/Failure}: C{os.wait4} (with rusage), then the same;
      - C{cwait4/Failure}: txspawn's C{_cspawn.wait4}, then the same.

  - C{txspawn}: is not here: the bench measures it against C.

On a machine where the CPU sleeps while the parent waits (a VM's halted
vCPU, deep C-states) the code that runs just after the wake-up is cold, and
each Python call costs several times what it costs in a warm loop; the
C{raw/...} rows show how much of the bench's C{exit} ratio is that cost,
which no Python implementation can avoid.

Usage::

    python benchmarks/exit_floor.py [--samples 80] [--delay-us 20000]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from twisted.internet.error import ProcessDone
from twisted.python.failure import Failure

from txspawn._bench._creference import buildReference

_now = time.monotonic_ns


class _Floor:
    """
    The measuring loop: one stamp child per sample, one sample per variant
    per round.
    """

    def __init__(self, reference: str, scratch: str, delayUs: int) -> None:
        self.stampFile = os.path.join(scratch, "stamp-py")
        self.stampFd = os.open(self.stampFile, os.O_RDWR | os.O_CREAT, 0o600)
        self.argv = [reference, "stamp", self.stampFile, str(delayUs)]
        self.closeStdio = [(os.POSIX_SPAWN_CLOSE, fd) for fd in (0, 1, 2)]
        self.epoll = select.epoll()
        cStamp = os.path.join(scratch, "stamp-c")
        open(cStamp, "wb").close()
        self.delayUs = delayUs
        self.cWorker = subprocess.Popen(
            [reference, "serve", "0", "0", "0", cStamp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.cWorker.stdout is not None
        self.cWorker.stdout.readline()  # "ready ..."

    def close(self) -> None:
        assert self.cWorker.stdin is not None
        self.cWorker.stdin.write("quit\n")
        self.cWorker.stdin.close()
        self.cWorker.wait()
        self.epoll.close()
        os.close(self.stampFd)

    def _spawn(self) -> int:
        os.pwrite(self.stampFd, b"\0" * 8, 0)
        return os.posix_spawn(self.argv[0], self.argv, {}, file_actions=self.closeStdio)

    def _sinceStamp(self, when: int) -> float:
        stamp: int = struct.unpack("=q", os.pread(self.stampFd, 8, 0))[0]
        return (when - stamp) / 1e3

    def c(self) -> float:
        assert self.cWorker.stdin is not None and self.cWorker.stdout is not None
        self.cWorker.stdin.write(f"exit 1 {self.delayUs}\n")
        self.cWorker.stdin.flush()
        return float(self.cWorker.stdout.readline().split()[1])

    def pyBlock(self) -> float:
        pid = self._spawn()
        os.waitpid(pid, 0)
        return self._sinceStamp(_now())

    def raw(self, reap: Callable[[int], int], prebuilt: bool) -> float:
        pid = self._spawn()
        pidfd = os.pidfd_open(pid)
        ready = Failure(ProcessDone(0))  # type: ignore[no-untyped-call]
        notified: list[int] = []

        def processExited(reason: Failure) -> None:
            notified.append(_now())

        self.epoll.register(pidfd, select.EPOLLIN)
        try:
            for _fd, _event in self.epoll.poll(-1):
                status = reap(pid)
                if prebuilt:
                    processExited(ready)
                else:
                    processExited(Failure(ProcessDone(status)))  # type: ignore[no-untyped-call]
        finally:
            self.epoll.unregister(pidfd)
            os.close(pidfd)
        return self._sinceStamp(notified[0])


def _waitpid(pid: int) -> int:
    return os.waitpid(pid, os.WNOHANG)[1]


def _wait4(pid: int) -> int:
    return os.wait4(pid, os.WNOHANG)[1]


def main(argv: list[str]) -> int:
    """
    Run the floor measurement and print one row per variant.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=80)
    parser.add_argument("--delay-us", type=int, default=20_000)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="txspawn-floor-") as scratch:
        reference = buildReference(scratch)
        if reference.binary is None:
            print(f"no C reference: {reference.reason}")
            return 1
        floor = _Floor(reference.binary, scratch, options.delay_us)
        variants: dict[str, Callable[[], float]] = {
            "C": floor.c,
            "py-block": floor.pyBlock,
            "raw/waitpid/prebuilt": lambda: floor.raw(_waitpid, True),
            "raw/waitpid/Failure": lambda: floor.raw(_waitpid, False),
            "raw/wait4/Failure": lambda: floor.raw(_wait4, False),
        }
        try:
            from txspawn._cspawn import wait4 as cwait4

            variants["raw/cwait4/Failure"] = lambda: floor.raw(
                lambda pid: cwait4(pid, os.WNOHANG)[1], False
            )
        except ImportError as e:
            print(f"(no raw/cwait4 row: {e})")
        samples: dict[str, list[float]] = {name: [] for name in variants}
        try:
            for _ in range(options.samples + 3):
                for name, measure in variants.items():
                    samples[name].append(measure())
        finally:
            floor.close()
    cMedian = statistics.median(samples["C"][3:])
    print(f"{'variant':24} {'median us':>10} {'x C':>6}")
    for name, values in samples.items():
        median = statistics.median(values[3:])  # the first rounds warm up
        print(f"{name:24} {median:10.1f} {median / cMedian:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
