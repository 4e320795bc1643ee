# -*- test-case-name: tests.test_bench -*-
"""
The benchmark worker for the two reactor columns (stock Twisted, txspawn).

Run as C{python -m txspawn._bench._pyworker CONFIG_JSON}.  One worker is
one process with one reactor: it builds the reactor for its implementation,
does the setup (idle children, memory ballast) through that reactor, prints
C{{"ready": ...}} and then serves one JSON command per stdin line with one
JSON answer per stdout line, all from inside C{reactor.run()}.

Why a process per implementation (and per setup): the things being measured
are process-wide -- the fd table every clone copies, the children alive, the
SIGCHLD handler and wakeup fd, Twisted's global reap registry, the RSS -- so
two implementations in one process would measure each other.  Why a
long-lived worker rather than a process per batch: with stock Twisted,
spawning 4000 idle children costs about a minute, which we pay once per
implementation while still interleaving the timed batches (the driver
rotates which worker runs next each repetition, and only one runs at a
time).

The only difference between the two columns is L{makeReactor}: that is the
implementation adapter.
"""

from __future__ import annotations

import json
import mmap
import os
import resource
import signal
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol, connectionDone
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

__all__ = ["main", "makeReactor"]

_now = time.monotonic_ns  # CLOCK_MONOTONIC, the clock the stamp child uses


def makeReactor(impl: str, engine: str | None, monitor: str | None) -> Any:
    """
    The implementation adapter: build the reactor a column measures.

    @param impl: C{"twisted"} (a stock C{EPollReactor}) or C{"txspawn"}
        (C{txspawn.reactor.EPollReactor}).
    @param engine: For txspawn: the engine name, or C{None} for the default.
    @param monitor: For txspawn: the monitor name, or C{None}.
    @return: A new, not yet installed, reactor.
    @raise ValueError: for an unknown C{impl}.
    """
    if impl == "twisted":
        from twisted.internet.epollreactor import EPollReactor

        return EPollReactor()  # type: ignore[no-untyped-call]
    if impl == "txspawn":
        from txspawn.reactor import EPollReactor as TxspawnEPollReactor

        return TxspawnEPollReactor(engine=engine, monitor=monitor)
    raise ValueError(f"impl must be 'twisted' or 'txspawn', not {impl!r}")


def _describeReactor(reactor: Any) -> str:
    """
    @return: Which engine and monitor a txspawn reactor really uses (empty
        for stock Twisted), for the report header.
    """
    spawner = getattr(getattr(reactor, "processSpawner", None), "spawner", None)
    monitor = getattr(reactor, "childMonitor", None)
    parts = [
        f"{what} {getattr(obj, 'name', type(obj).__name__)}"
        for what, obj in (("engine", spawner), ("monitor", monitor))
        if obj is not None
    ]
    return ", ".join(parts)


def _countFds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # minus listdir's own fd


def _raiseNofile(needed: int) -> None:
    """
    Raise the soft fd limit to the hard one, and the hard one to C{needed}
    if that is allowed (it needs C{CAP_SYS_RESOURCE}).  Best effort: if the
    limit is really too low, the setup fails with C{EMFILE}, which the report
    shows.
    """
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _ballast(mib: int) -> mmap.mmap | None:
    if not mib:
        return None
    chunk = 1 << 20
    # MAP_PRIVATE, like the heap of a real big process: fork() must copy
    # its page tables (about 100 ms for 2 GiB here).  Python's default for
    # an anonymous mmap is MAP_SHARED, whose page tables fork() does not
    # copy, so a shared ballast would make a big parent look free to fork.
    memory = mmap.mmap(-1, mib * chunk, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    ones = b"\1" * chunk
    for offset in range(0, mib * chunk, chunk):
        memory[offset : offset + chunk] = ones  # touch: really resident
    return memory


class _Measured(ProcessProtocol):
    """
    A child whose end we wait for; counts the bytes it writes.
    """

    def __init__(self, done: Deferred[_Measured]) -> None:
        self.done = done
        self.received = 0
        self.exitedAt = 0
        self.endedAt = 0

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.received += len(data)

    def processExited(self, reason: Failure) -> None:
        self.exitedAt = _now()

    def processEnded(self, reason: Failure) -> None:
        self.endedAt = _now()
        if reason.check(ProcessDone):  # type: ignore[no-untyped-call]
            self.done.callback(self)
        else:
            self.done.errback(reason)


class _Settled(_Measured):
    """
    A child whose sample ends one reactor turn after its last callback
    (L{txspawn._bench._model.Task.settle}): C{processEnded}, or with a
    cgroup C{processTreeEnded} and the removal of the child's leaf, which
    txspawn does right after that callback returns.

    @ivar counts: Where this batch's counts go: where each child's leaf
        was (in the parent made for the run, or where txspawn found one),
        how the child was placed in it (and why not by
        C{CLONE_INTO_CGROUP}), and the
        children whose leaf was not yet removed one turn after
        C{processTreeEnded} (txspawn retries C{rmdir} on C{EBUSY}).
    """

    def __init__(
        self,
        done: Deferred[_Measured],
        reactor: Any,
        cgroup: bool,
        counts: dict[str, int],
        parent: str | None = None,
    ) -> None:
        super().__init__(done)
        self.reactor = reactor
        self.cgroup = cgroup
        self.parent = parent
        self.counts = counts
        self.reason: Failure | None = None
        self.leaf: str | None = None
        self.stats: Any = None
        self.checks = 0

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def processEnded(self, reason: Failure) -> None:
        self.reason = reason
        if not self.cgroup:
            self.reactor.callLater(0, self._settled)

    def processTreeEnded(self, stats: Any) -> None:
        self.stats = stats
        self.leaf = stats.path
        self.reactor.callLater(0, self._settled)

    def _countLeaf(self) -> None:
        # Once the sample is taken: counting is not what is measured.
        stats = self.stats
        where = os.path.dirname(stats.path)
        self._count(
            "leaf in the run's parent" if where == self.parent else f"leaf in {where}"
        )
        self._count(f"placed by {stats.placement}")
        if stats.placementNote:
            self._count(f"not by clone: {stats.placementNote}")

    def _settled(self) -> None:
        self.checks += 1
        if self.leaf is not None and os.path.isdir(self.leaf):
            if self.checks == 1:
                self._count("leaf still there one turn after processTreeEnded")
            self.reactor.callLater(0, self._settled)
            return
        self.endedAt = _now()
        if self.stats is not None:
            self._countLeaf()
        assert self.reason is not None
        if self.reason.check(ProcessDone):  # type: ignore[no-untyped-call]
            self.done.callback(self)
        else:
            self.done.errback(self.reason)


class _Idle(ProcessProtocol):
    """
    An idle child: nothing to do until it ends.
    """


class _Worker:
    """
    Runs tasks on one reactor.
    """

    def __init__(self, reactor: Any, config: dict[str, Any]) -> None:
        self.reactor = reactor
        self.config = config
        self.idle: list[Any] = []
        self.stampFile = os.path.join(config["scratch"], f"stamp-{os.getpid()}")
        self.stampFd = os.open(self.stampFile, os.O_RDWR | os.O_CREAT, 0o600)
        self.stampArgv: list[str] = config["stamp"]
        self.ballast: mmap.mmap | None = None

    def setUp(self) -> dict[str, object]:
        start = time.monotonic()
        for _ in range(self.config["idle"]):
            self.idle.append(
                self.reactor.spawnProcess(_Idle(), "/bin/cat", ["cat"], env={})
            )
        self.ballast = _ballast(self.config["ballastMiB"])
        return {
            "ready": True,
            "fds": _countFds(),
            "setupSeconds": time.monotonic() - start,
            "detail": _describeReactor(self.reactor),
        }

    def tearDown(self) -> None:
        # Kill each cat (closeStdin would only close the pipe on a later
        # reactor iteration) and reap it with a blocking per-pid waitpid
        # (never waitpid(-1)) rather than through the reactor: stock Twisted
        # would scan its whole registry on every SIGCHLD, which is
        # O(children^2) to tear down 4000 children and measures nothing.
        # The pids are safe to signal: nobody has reaped them yet.
        pids = [t.pid for t in self.idle if t.pid is not None]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        os.close(self.stampFd)
        os.unlink(self.stampFile)

    def _sequential(
        self, count: int, one: Callable[[], Deferred[float]]
    ) -> Deferred[list[float]]:
        """
        Run C{one} C{count} times, each after the previous one finished,
        each from a fresh reactor iteration (not from inside the previous
        child's C{processEnded}).
        """
        result: Deferred[list[float]] = Deferred()
        samples: list[float] = []

        def step() -> None:
            if len(samples) == count:
                result.callback(samples)
                return
            try:
                d = one()
            except BaseException:
                result.errback()
                return

            def record(value: float) -> None:
                samples.append(value)
                self.reactor.callLater(0, step)

            d.addCallbacks(record, result.errback)

        self.reactor.callLater(0, step)
        return result

    def spawnOnce(
        self, task: dict[str, Any], counts: dict[str, int]
    ) -> Deferred[float]:
        done: Deferred[_Measured] = Deferred()
        options = dict(task["options"])
        if "childFDs" in options:
            options["childFDs"] = {int(k): v for k, v in options["childFDs"].items()}
        if "namespaces" in options:
            from txspawn.options import Namespaces

            options["namespaces"] = Namespaces(**options["namespaces"])
        cgroup = "cgroup" in options
        if cgroup:
            from txspawn.options import Cgroup

            # The parent the driver made for the run (or None: found
            # automatically, as for any user).
            given = {"parent": self.config.get("cgroupParent"), **options["cgroup"]}
            options["cgroup"] = Cgroup(**given)
        executable = task["executable"]
        # Everything but the spawnProcess call is built before the clock
        # starts: the C column times only posix_spawn too.
        protocol: _Measured
        if task.get("settle"):
            protocol = _Settled(
                done, self.reactor, cgroup, counts, self.config.get("cgroupParent")
            )
            if cgroup:
                from zope.interface import alsoProvides

                from txspawn.interfaces import IProcessTreeObserver

                alsoProvides(protocol, IProcessTreeObserver)
        else:
            protocol = _Measured(done)
        args = task.get("args") or [os.path.basename(executable)]
        env: dict[str, str] = {}
        started = _now()
        self.reactor.spawnProcess(protocol, executable, args, env=env, **options)
        return done.addCallback(lambda p: (p.endedAt - started) / 1e3)

    def exitOnce(self, task: dict[str, Any], late: list[int]) -> Deferred[float]:
        # The exit-latency method: the child (the C reference's "stamp"
        # mode, or a Python stand-in without a compiler) sleeps, writes its
        # CLOCK_MONOTONIC time to a file as its last act, and _exits; we
        # take CLOCK_MONOTONIC in processExited.  The difference is exactly
        # "child exits -> parent notified": process teardown, the kernel's
        # wake-up of the parent, and the implementation's path from its
        # event (pidfd readable or SIGCHLD) to the callback, and nothing of
        # spawning.  The sleep puts the parent back in epoll_wait before the
        # child exits; samples where the child stamped before spawnProcess
        # had even returned are counted in "late" (and reported), as they
        # would include the parent's own spawn work.
        os.pwrite(self.stampFd, b"\0" * 8, 0)
        done: Deferred[_Measured] = Deferred()
        argv = [*self.stampArgv, self.stampFile, str(task["delayUs"])]
        self.reactor.spawnProcess(_Measured(done), argv[0], argv, env={}, childFDs={})
        returned = _now()

        def latency(p: _Measured) -> float:
            (stamp,) = struct.unpack("=q", os.pread(self.stampFd, 8, 0))
            if stamp == 0:
                raise RuntimeError("the stamp child exited without a stamp")
            if stamp < returned:
                late.append(stamp)
            return (p.exitedAt - int(stamp)) / 1e3

        return done.addCallback(latency)

    def pipeOnce(self, task: dict[str, Any]) -> Deferred[list[float]]:
        mib = task["count"]
        done: Deferred[_Measured] = Deferred()
        argv = ["dd", "if=/dev/zero", "bs=1M", f"count={mib}", "status=none"]
        started = _now()
        self.reactor.spawnProcess(_Measured(done), task["executable"], argv, env={})

        def rate(p: _Measured) -> list[float]:
            if p.received != mib << 20:
                raise RuntimeError(f"read {p.received} bytes, expected {mib << 20}")
            return [mib / ((p.endedAt - started) / 1e9)]

        return done.addCallback(rate)

    def run(self, task: dict[str, Any]) -> Deferred[dict[str, object]]:
        kind = task["kind"]
        if kind == "spawn":
            counts: dict[str, int] = {}
            d = self._sequential(task["count"], lambda: self.spawnOnce(task, counts))
            return d.addCallback(lambda s: {"ok": s, "counts": counts})
        if kind == "exit":
            late: list[int] = []
            d = self._sequential(task["count"], lambda: self.exitOnce(task, late))
            return d.addCallback(lambda s: {"ok": s, "late": len(late)})
        if kind == "pipe":
            return self.pipeOnce(task).addCallback(lambda s: {"ok": s})
        if kind == "fds":
            return Deferred.fromCoroutine(_value({"ok": [_countFds()]}))
        raise ValueError(f"unknown task kind {kind!r}")


async def _value(value: dict[str, object]) -> dict[str, object]:
    return value


class _Commands(LineOnlyReceiver):
    """
    The command channel: one JSON command per line, one JSON answer per
    line.  Batches never overlap: the driver waits for each answer.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker

    def answer(self, message: dict[str, object]) -> None:
        self.sendLine(json.dumps(message).encode())  # type: ignore[no-untyped-call]

    def lineReceived(self, line: bytes) -> None:
        command = json.loads(line)
        if command["kind"] == "quit":
            self.worker.tearDown()
            self.answer({"ok": []})
            self.worker.reactor.stop()
            return
        try:
            d = self.worker.run(command)
        except Exception as e:
            self.answer({"error": f"{type(e).__name__}: {e}"})
            return

        def failed(f: Failure) -> None:
            name = f.type.__name__ if f.type is not None else "Error"
            self.answer({"error": f"{name}: {f.getErrorMessage()}"})

        d.addCallbacks(self.answer, failed)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # The driver went away: stop (the idle children see EOF and exit).
        if self.worker.reactor.running:
            self.worker.reactor.stop()


def main(argv: list[str]) -> int:
    """
    Run one worker.

    @param argv: C{[CONFIG_JSON]}: C{impl}, C{engine}, C{monitor}, C{idle},
        C{ballastMiB}, C{scratch} (a directory), C{stamp} (the argv prefix
        of the exit-latency child), C{cgroupParent} (the cgroup v2
        directory the driver made for C{cgroup} spawns, or C{None}).
    @return: The exit code.
    """
    config = json.loads(argv[0])
    # Each idle child holds three pipe ends and (txspawn) a pidfd.
    _raiseNofile(config["idle"] * 4 + 1024)
    try:
        reactor = makeReactor(config["impl"], config["engine"], config["monitor"])
    except Exception as e:
        sys.stdout.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
        return 1
    from twisted.internet.main import installReactor

    installReactor(reactor)  # type: ignore[no-untyped-call]
    worker = _Worker(reactor, config)

    def start() -> None:
        from twisted.internet.stdio import StandardIO

        try:
            ready = worker.setUp()
        except Exception as e:
            sys.stdout.write(json.dumps({"error": f"setup: {type(e).__name__}: {e}"}))
            sys.stdout.write("\n")
            sys.stdout.flush()
            reactor.stop()
            return
        commands = _Commands(worker)
        StandardIO(commands, reactor=reactor)  # type: ignore[no-untyped-call]
        commands.answer(ready)

    reactor.callWhenRunning(start)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
