# -*- test-case-name: tests.adversarial.test_threads -*-
"""
Adversarial: threads fork, open inheritable fds with every API that makes
one, and spawn with other code's spawners while the reactor spawns.  No
child anywhere gets a stray fd, and nothing steals anyone's child.

L{tests.test_threads_spawn} covers the other half of the adversarial run's
thread noise (threads allocating memory, holding locks, and spawning
through a second spawner of the same engine) with C{os.pipe} as its only
inheritable fd.  This module adds what it leaves out, on every engine x
monitor (L{tests.builders.makeTestCaseClasses}), with the reactor spawning
in turn through C{spawnProcess} (plain, with C{path}, with C{usePTY}) and
L{txspawn.run} (plain, with C{path}); C{path} and C{usePTY} send the
Python engine down its fork path:

  - B{inheritable fds from every API} that makes one without
    C{O_CLOEXEC}: C{os.open}, C{os.pipe} and C{socket.socketpair} and
    C{os.openpty} followed by C{set_inheritable}, C{os.pipe2(0)},
    C{os.dup2(inheritable=True)}, C{fcntl(F_DUPFD)},
    C{os.memfd_create(flags=0)} and C{os.eventfd(flags=0)}.  Every reactor
    child must list exactly its stdio and C{ls}'s own directory fd.
  - B{C{os.fork()} from a thread}, the forked copy then doing what real
    code does with a copy of a process that runs a txspawn reactor:
    C{_exit} at once; close every fd and C{_exit} (a daemoniser); C{exec}
    (it must not take any of txspawn's fds along: everything txspawn
    holds is close-on-exec, even while it is being made); or spawn a child
    of its own through txspawn, with the engine it holds a copy of (that
    child must get exactly its stdio, and the parent's spawns must not
    notice).  Each copy's exact exit
    status must reach the thread that forked it: txspawn's monitors never
    reap a pid they were not given (the SIGCHLD monitor wakes up for every
    copy).  And the parent's reactor must not notice any of it: every
    child it spawned exits 0 with the right listing.
  - B{other spawners}: C{subprocess.Popen} (with and without
    C{close_fds}) and C{os.posix_spawn}, each child's exit status checked
    (a stolen child would be status 0 for C{Popen}: these children exit
    2).

What a child of other code (a forked copy that execs, C{Popen} with
C{close_fds=False}, C{posix_spawn}) inherits is whatever the process holds
without close-on-exec; each fd it lists must be one of the noise's own, or
one that was inheritable before the test began, or its stdio: anything
else leaked out of txspawn (or Twisted).  The listings are judged after
the noise has stopped, when every fd the noise made has been recorded.
(Every pty master reads C{/dev/ptmx}: one of txspawn's without
close-on-exec would pass here for one of the noise's.)

The test ends through Deferreds only: when the reactor's children have
ended and every noise thread has gone round its cycle L{CYCLES} times, the
noise is told to stop and the reactor stops when every thread said it has.
A forked copy that hung would keep its thread from saying so: the
reactor's timeout then fails the test and the copy is killed, so that the
test still finishes.

Sizes (L{tests.adversarial.scaled}): L{CHILDREN} reactor children per
engine x monitor.  Each variant logs what it checked (C{_trial_temp/
test.log}): children per kind, stray fds found (0), forks and foreign
spawns per kind, inheritable fds opened per API.
"""

from __future__ import annotations

import fcntl
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

import txspawn
from tests.adversarial import scaled
from tests.builders import MixinBase, RecordingProtocol, makeTestCaseClasses
from tests.engineutil import makePlan
from tests.hygiene import openFDs
from txspawn._engine.selection import selectSpawner

LS = b"/bin/ls"
#: What each txspawn child runs: its fd table, with each fd's target.
LISTING = (LS, b"-ln", b"/proc/self/fd")
#: What other code's children run: the same and a path that does not
#: exist, so that ls exits L{FOREIGN_EXIT}, not 0.  (C{Popen} reports a
#: child someone else reaped as exit code 0.)
FOREIGN_LISTING = (*LISTING, b"/nonexistent/txspawn-adversarial")
FOREIGN_EXIT = 2
#: The exit code of a forked copy that does not exec.
COPY_EXIT = 42
#: What a txspawn child lists: stdio, and the directory fd ls reads
#: C{/proc/self/fd} with (the lowest free number).
EXPECTED = {0, 1, 2, 3}
_LS_DIR = re.compile(r"/proc/[0-9]+/fd")

#: Reactor children per engine x monitor.
CHILDREN = scaled(120, 1500)
#: Reactor children alive at once.
AT_ONCE = 16
#: Times each noise thread goes round all its kinds at least.
CYCLES = scaled(3, 25)
#: Inheritable fds the fd thread holds at most.
POOL = 48
TIMEOUT = scaled(60, 600)
#: Problems of each kind shown when the test fails.
SHOWN = 10

#: The reactor's kinds of spawn, taken in turn: (API, keyword arguments).
#: C{path} and C{usePTY} take the Python engine's fork path.
KINDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("spawnProcess", {}),
    ("spawnProcess", {"path": "/"}),
    ("spawnProcess", {"usePTY": True}),
    ("run", {}),
    ("run", {"path": "/"}),
)

_log = Logger()


def parseListing(out: bytes) -> dict[int, str]:
    """
    The fds in the output of C{ls -ln /proc/self/fd}, with their targets.
    """
    fds = {}
    for line in out.decode("utf-8", "replace").splitlines():
        left, arrow, target = line.partition(" -> ")
        if arrow:
            fds[int(left.rsplit(None, 1)[1])] = target
    return fds


def strictStrays(out: bytes) -> list[str]:
    """
    What is wrong with a txspawn child's listing: each fd beyond
    L{EXPECTED} (with its target), each one missing.
    """
    listing = parseListing(out)
    wrong = [f"{fd} -> {listing[fd]}" for fd in sorted(set(listing) - EXPECTED)]
    wrong += [f"{fd} missing" for fd in sorted(EXPECTED - set(listing))]
    return wrong


def inheritableFDs() -> dict[int, str]:
    """
    The fds of this process that a child of C{fork}+C{exec} inherits,
    with their targets.
    """
    found = {}
    for fd in openFDs():
        try:
            if os.get_inheritable(fd):
                found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
    return found


def _undeleted(target: str) -> str:
    """
    C{target} without the C{" (deleted)"} the kernel adds once the file is
    gone: a pty slave's C{/dev/pts/N} is, once its master is closed.
    """
    return target.removesuffix(" (deleted)")


def readAll(fd: int) -> bytes:
    """
    Read C{fd} (blocking) until end-of-file.
    """
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def writeAll(fd: int, data: bytes) -> None:
    """
    Write all of C{data} to C{fd} (blocking).
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def spawnListing(spawner: Any, null: int) -> tuple[bytes, int]:
    """
    Spawn L{LISTING} through C{spawner} (an engine, no reactor) and wait
    for it.

    @return: Its output and wait status.
    """
    r, w = os.pipe()
    try:
        plan = makePlan(LS, argv=LISTING, envp=())
        child = spawner.spawn(plan, {0: null, 1: w, 2: w}, None)
        os.close(w)
        w = -1
        out = readAll(r)
        _, status = os.waitpid(child.pid, 0)
        child.closePidfd()
        return out, status
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def describeStatus(status: int | None) -> str:
    """
    A wait status in words; C{None} stands for "someone else reaped it".
    """
    if status is None:
        return "not ours to reap (someone else reaped it)"
    if os.WIFEXITED(status):
        return f"exit {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {status:#x}"


class _NoiseThread:
    """
    One noise thread: runs C{cycle} until told to stop, and tells the
    reactor through two Deferreds when it has run it L{CYCLES} times and
    when it has returned.
    """

    def __init__(
        self,
        reactor: Any,
        name: str,
        cycle: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self.reactor = reactor
        self.name = name
        self.cycle = cycle
        self.stop = stop
        self.cycled: Deferred[None] = Deferred()
        self.done: Deferred[None] = Deferred()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"noise-{name}")

    def _run(self) -> None:
        count = 0
        try:
            while not self.stop.is_set():
                self.cycle()
                count += 1
                if count == CYCLES:
                    self.reactor.callFromThread(self.cycled.callback, None)
        except BaseException:
            self.error = f"{self.name}: {traceback.format_exc()}"
            if count < CYCLES:
                self.reactor.callFromThread(self.cycled.errback, Failure())
        finally:
            self.reactor.callFromThread(self.done.callback, None)


class _Noise:
    """
    The noise threads (see the module docstring) and what they saw.

    @ivar identities: The target (C{readlink} of C{/proc/self/fd/N}) of
        every fd the fd thread made inheritable.  Only grows.
    @ivar foreign: C{(who, output)} of each child of other code.
    @ivar copySpawns: The output of each child a forked copy spawned
        through txspawn.
    @ivar problems: Wrong exit statuses and the like, as messages.
    @ivar counts: Forks and other code's spawns done, by kind.
    @ivar fdCounts: Inheritable fds made, by API.
    @ivar unavailable: fd APIs this system lacks, with the reason.
    """

    def __init__(self, reactor: Any, engineName: str) -> None:
        self.stop = threading.Event()
        self.identities: set[str] = set()
        self.foreign: list[tuple[str, bytes]] = []
        self.copySpawns: list[bytes] = []
        self.problems: list[str] = []
        self.counts: Counter[str] = Counter()
        self.fdCounts: Counter[str] = Counter()
        self.unavailable: dict[str, str] = {}
        # Built here: a forked copy uses its copy of it, as real code
        # would use the spawner it already has.
        self.spawner = selectSpawner(engineName)
        self.null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.tempdir = tempfile.mkdtemp(prefix="txspawn-noise-")
        self.marker = os.path.join(self.tempdir, "marker")
        self.markerFD = os.open(self.marker, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        self.maxFD = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._copyLock = threading.Lock()
        self._copyPidfd: int | None = None
        self._copyWhat = ""
        self.fdMakers = self._availableMakers()
        self.threads = [
            _NoiseThread(reactor, "fds", self.fdCycle, self.stop),
            _NoiseThread(reactor, "fork", self.forkCycle, self.stop),
            _NoiseThread(reactor, "spawners", self.foreignCycle, self.stop),
        ]
        self._pool: list[int] = []

    # -- the threads ---------------------------------------------------

    def start(self) -> None:
        for noise in self.threads:
            noise.thread.start()

    def abort(self) -> str:
        """
        Stop the threads and kill the forked copy being waited for, if
        any: the test is failing and must still finish.

        @return: What was killed, for the failure message.
        """
        self.stop.set()
        with self._copyLock:
            if self._copyPidfd is None:
                return "no forked copy was being waited for"
            try:
                signal.pidfd_send_signal(self._copyPidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return f"killed the forked copy being waited for ({self._copyWhat})"

    def join(self) -> None:
        self.stop.set()
        for noise in self.threads:
            noise.thread.join()
        for fd in self._pool:
            os.close(fd)
        self._pool = []
        os.close(self.null)
        os.close(self.markerFD)
        shutil.rmtree(self.tempdir)

    @property
    def errors(self) -> list[str]:
        return [t.error for t in self.threads if t.error is not None]

    # -- inheritable fds -----------------------------------------------

    def _availableMakers(self) -> list[tuple[str, Callable[[], list[int]]]]:
        makers = [
            ("os.open", self.openPlain),
            ("os.pipe+set_inheritable", self.pipeThenInheritable),
            ("os.pipe2(0)", self.pipe2Plain),
            ("socketpair+set_inheritable", self.socketpairThenInheritable),
            ("os.openpty+set_inheritable", self.openptyThenInheritable),
            ("os.dup2(inheritable=True)", self.dup2Inheritable),
            ("fcntl(F_DUPFD)", self.fcntlDupfd),
            ("os.memfd_create(flags=0)", self.memfdPlain),
            ("os.eventfd(flags=0)", self.eventfdPlain),
        ]
        available = []
        for name, maker in makers:
            try:
                fds = maker()
            except (OSError, AttributeError) as e:
                self.unavailable[name] = repr(e)
                continue
            for fd in fds:
                os.close(fd)
            available.append((name, maker))
        return available

    def _record(self, *fds: int) -> list[int]:
        for fd in fds:
            self.identities.add(_undeleted(os.readlink(f"/proc/self/fd/{fd}")))
        return list(fds)

    def _inheritable(self, *fds: int) -> list[int]:
        self._record(*fds)
        for fd in fds:
            os.set_inheritable(fd, True)
        return list(fds)

    def openPlain(self) -> list[int]:
        # No O_CLOEXEC: inheritable from the start.
        return self._record(os.open(self.marker, os.O_RDONLY))

    def pipeThenInheritable(self) -> list[int]:
        return self._inheritable(*os.pipe())

    def pipe2Plain(self) -> list[int]:
        return self._record(*os.pipe2(0))

    def socketpairThenInheritable(self) -> list[int]:
        a, b = socket.socketpair()
        return self._inheritable(a.detach(), b.detach())

    def openptyThenInheritable(self) -> list[int]:
        return self._inheritable(*os.openpty())

    def dup2Inheritable(self) -> list[int]:
        # A number of our own (a close-on-exec duplicate), atomically
        # replaced by an inheritable copy.
        fd = os.dup(self.markerFD)
        os.dup2(self.markerFD, fd, inheritable=True)
        return self._record(fd)

    def fcntlDupfd(self) -> list[int]:
        return self._record(fcntl.fcntl(self.markerFD, fcntl.F_DUPFD, 0))

    def memfdPlain(self) -> list[int]:
        return self._record(os.memfd_create("txspawn-noise", 0))

    def eventfdPlain(self) -> list[int]:
        return self._record(os.eventfd(0, 0))

    def fdCycle(self) -> None:
        for name, maker in self.fdMakers:
            self._pool += maker()
            self.fdCounts[name] += 1
            if len(self._pool) > POOL:
                for fd in self._pool[: POOL // 2]:
                    os.close(fd)
                del self._pool[: POOL // 2]

    # -- forked copies -------------------------------------------------

    def _fork(self, what: str, child: Callable[[], int]) -> int:
        """
        Fork; the copy runs C{child} and C{_exit}s with what it returns (1
        if it raised), never returning into this thread's code.

        @param what: What the copy does, for messages.
        """
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child()
            finally:
                os._exit(code)
        with self._copyLock:
            self._copyPidfd = os.pidfd_open(pid)
            self._copyWhat = f"pid {pid}: {what}"
        return pid

    def _reapCopy(self, pid: int) -> int | None:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return None
        finally:
            with self._copyLock:
                assert self._copyPidfd is not None
                os.close(self._copyPidfd)
                self._copyPidfd = None

    def _expect(
        self, who: str, status: int | None, code: int, out: bytes = b""
    ) -> None:
        """
        Count one C{who}, and note a problem unless C{status} is exit
        C{code}.

        @param out: What the child said, for the message.
        """
        self.counts[who] += 1
        if status is None or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != code:
            self.problems.append(
                f"{who}: {describeStatus(status)}, wanted exit {code} {out[-300:]!r}"
            )

    def forkExit(self) -> None:
        pid = self._fork("_exit", lambda: COPY_EXIT)
        self._expect("fork, _exit", self._reapCopy(pid), COPY_EXIT)

    def forkCloseAll(self) -> None:
        def child() -> int:
            # A daemoniser: the copy's pidfds, epoll and wake-up pipe go,
            # which must leave the parent's alone.
            os.closerange(3, self.maxFD)
            return COPY_EXIT

        pid = self._fork("close every fd, _exit", child)
        self._expect("fork, close every fd, _exit", self._reapCopy(pid), COPY_EXIT)

    def forkExec(self) -> None:
        r, w = os.pipe()
        try:

            def child() -> int:
                os.dup2(w, 1)
                os.dup2(self.null, 2)
                os.execv(LS, FOREIGN_LISTING)

            pid = self._fork("exec ls", child)
        finally:
            os.close(w)
        try:
            out = readAll(r)
        finally:
            os.close(r)
        self._expect("fork, exec", self._reapCopy(pid), FOREIGN_EXIT)
        self.foreign.append(("fork, exec", out))

    def forkSpawn(self) -> None:
        r, w = os.pipe()
        try:

            def child() -> int:
                try:
                    out, status = spawnListing(self.spawner, self.null)
                except BaseException as e:
                    writeAll(w, f"txspawn spawn failed: {e!r}".encode())
                    return 1
                writeAll(w, out)
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                    return 0
                return 2

            pid = self._fork("spawn through txspawn", child)
        finally:
            os.close(w)
        try:
            out = readAll(r)
        finally:
            os.close(r)
        status = self._reapCopy(pid)
        self._expect("fork, spawn through txspawn", status, 0, out)
        self.copySpawns.append(out)

    def forkCycle(self) -> None:
        self.forkExit()
        self.forkCloseAll()
        self.forkExec()
        self.forkSpawn()

    # -- other code's spawners -----------------------------------------

    def popen(self, closeFds: bool) -> None:
        who = f"subprocess.Popen(close_fds={closeFds})"
        process = subprocess.Popen(
            FOREIGN_LISTING,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=closeFds,
            env={},
        )
        out, _ = process.communicate()
        status = process.returncode
        self.counts[who] += 1
        if status != FOREIGN_EXIT:
            self.problems.append(f"{who}: returncode {status}")
        self.foreign.append((who, out))

    def posixSpawn(self) -> None:
        r, w = os.pipe()
        try:
            pid = os.posix_spawn(
                LS,
                FOREIGN_LISTING,
                {},
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, w, 1),
                    (os.POSIX_SPAWN_DUP2, self.null, 2),
                ],
            )
        finally:
            os.close(w)
        try:
            out = readAll(r)
        finally:
            os.close(r)
        try:
            status: int | None = os.waitpid(pid, 0)[1]
        except ChildProcessError:
            status = None
        self._expect("os.posix_spawn", status, FOREIGN_EXIT)
        self.foreign.append(("os.posix_spawn", out))

    def foreignCycle(self) -> None:
        self.popen(True)
        self.popen(False)
        self.posixSpawn()

    # -- judging -------------------------------------------------------

    def foreignStrays(self, baseline: Mapping[int, str]) -> list[str]:
        """
        The fds in other code's children that are neither stdio, nor
        ls's directory, nor inheritable before the test, nor the noise's.
        Call after L{join}: by then every noise fd is in L{identities}.
        """
        strays = []
        for who, out in self.foreign:
            for fd, target in sorted(parseListing(out).items()):
                if (
                    fd <= 2
                    or _LS_DIR.fullmatch(target)
                    or baseline.get(fd) == target
                    or _undeleted(target) in self.identities
                ):
                    continue
                strays.append(f"{who}: {fd} -> {target}")
        return strays


class ThreadForkFdMixin(MixinBase):
    """
    Reactor spawns under forking, fd-opening and spawning threads.
    """

    def test_noStrayFd(self) -> None:
        """
        L{CHILDREN} reactor children (C{spawnProcess} and L{txspawn.run},
        with and without C{path}) spawned while the noise threads run
        (see the module docstring) each list exactly L{EXPECTED}, as does
        each child a forked copy spawned through txspawn; the children of
        other code inherit none of txspawn's fds; every forked copy and
        foreign child is reaped by its own code with its own status; and
        everything ends without a deadlock.
        """
        started = time.monotonic()
        # Before the reactor exists, so that none of its fds can hide here.
        baseline = inheritableFDs()
        reactor = self.buildReactor()
        noise = _Noise(reactor, self.engineName)
        listings: dict[str, list[bytes]] = {}
        problems: list[str] = []
        nextIndex = [0]
        outcome: list[object] = []

        def spawnOne(index: int) -> Deferred[None]:
            api, kwargs = KINDS[index % len(KINDS)]
            kind = f"{api}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
            if api == "run":
                d = txspawn.run(
                    list(LISTING), reactor=reactor, env={}, check=True, **kwargs
                )
                return d.addCallback(lambda r: record(kind, r.stdout))
            proto = RecordingProtocol()
            reactor.spawnProcess(proto, LS, LISTING, env={}, **kwargs)

            def ended(reason: Failure) -> None:
                if getattr(reason.value, "exitCode", None) != 0:
                    problems.append(f"{kind}: {reason.value!r}")
                record(kind, proto.output.get(1, b""))

            return proto.ended.addBoth(ended)

        def record(kind: str, out: bytes) -> None:
            listings.setdefault(kind, []).append(out)

        def lane() -> Deferred[None]:
            d: Deferred[None] = Deferred()

            def next(_: object = None) -> None:
                if nextIndex[0] == CHILDREN:
                    d.callback(None)
                    return
                nextIndex[0] += 1
                spawnOne(nextIndex[0]).addCallbacks(next, d.errback)

            next()
            return d

        def start() -> None:
            noise.start()
            work = [lane() for _ in range(AT_ONCE)]
            work += [t.cycled for t in noise.threads]
            gatherResults(work, consumeErrors=True).addBoth(quiet)

        def quiet(result: object) -> Deferred[Any]:
            outcome.append(result)
            noise.stop.set()
            done = DeferredList([t.done for t in noise.threads])
            return done.addCallback(lambda _: reactor.stop())

        reactor.callWhenRunning(start)
        with warnings.catch_warnings():
            # Python 3.12+: os.fork() in a process with threads warns;
            # forking from a thread is what this test does on purpose.
            warnings.filterwarnings(
                "ignore", ".*multi-threaded.*fork", DeprecationWarning
            )
            try:
                self.runReactor(reactor, timeout=TIMEOUT)
            except self.failureException as e:
                # A timeout: say who was stuck (a forked copy is killed).
                raise self.failureException(f"{e}; {noise.abort()}") from None
            except BaseException:
                noise.abort()
                raise
            finally:
                noise.join()

        failures = [f"noise thread failed: {error}" for error in noise.errors]
        if isinstance(outcome[0], Failure):
            failures.append(f"reactor side failed: {outcome[0].getTraceback()}")
        checked = sum(len(outs) for outs in listings.values())
        if checked != CHILDREN:
            failures.append(f"{checked} reactor children checked, not {CHILDREN}")
        failures += problems + noise.problems
        strays = [
            f"{kind}: {wrong}"
            for kind, outs in sorted(listings.items())
            for out in outs
            for wrong in strictStrays(out)
        ]
        strays += [
            f"forked copy's txspawn child: {wrong}"
            for out in noise.copySpawns
            for wrong in strictStrays(out)
        ]
        foreignStrays = noise.foreignStrays(baseline)
        _log.info(
            "threads {engine}/{monitor}: {checked} reactor children checked "
            "({kinds}), {strays} stray or missing fds; forked copies and other "
            "spawners: {counts}; {foreignStrays} stray fds in {foreign} "
            "children of other code; inheritable fds made: {fds} "
            "(unavailable: {unavailable}); {seconds:.1f}s",
            engine=self.engineName,
            monitor=self.monitorName,
            checked=checked,
            kinds=", ".join(f"{k} {len(v)}" for k, v in sorted(listings.items())),
            strays=len(strays),
            counts=dict(noise.counts),
            foreignStrays=len(foreignStrays),
            foreign=len(noise.foreign),
            fds=dict(noise.fdCounts),
            unavailable=noise.unavailable or "none",
            seconds=time.monotonic() - started,
        )
        for what, found in (
            ("stray or missing fds in txspawn's children", strays),
            ("stray fds in other code's children", foreignStrays),
        ):
            if found:
                failures.append(f"{len(found)} {what}, first: {found[:SHOWN]}")
        if failures:
            self.fail("\n".join(failures[:SHOWN]))


globals().update(makeTestCaseClasses(ThreadForkFdMixin))
