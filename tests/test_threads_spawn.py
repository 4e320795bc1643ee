# -*- test-case-name: tests.test_threads_spawn -*-
"""
Stress: spawning from a reactor while other threads allocate memory, hold
locks, open and close inheritable (non-close-on-exec) fds, and spawn
children of their own, must never deadlock and never leak any of those fds
into a child.

This is what the child-side rules exist for: a vfork child that called
C{malloc} or took a lock could deadlock on a lock another thread held at
the clone; a child that closed fds before unsharing its fd table, or an fd
opened by another thread without C{O_CLOEXEC}, could leak into children.
Runs on every engine x monitor (L{tests.builders.makeTestCaseClasses}).
The default suite spawns L{CHILDREN} children per variant; the long form
of the adversarial suite (C{TXSPAWN_ADVERSARIAL=1}, see
L{tests.adversarial}) spawns many more, a deadlock being a matter of
chance.  L{tests.adversarial.test_threads} adds the other half of the
adversarial run's thread noise: forks, every API that makes an inheritable
fd, and other code's spawners.
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.adversarial import scaled
from tests.builders import MixinBase, makeTestCaseClasses
from txspawn._engine.selection import selectSpawner
from txspawn._plan.plan import SpawnPlan

LS = b"/bin/ls"
#: Reactor children per engine x monitor.
CHILDREN = scaled(120, 1000)
AT_ONCE = 16
#: ls lists fds 0, 1, 2 and the directory fd it reads /proc/self/fd with.
EXPECTED = ["0", "1", "2", "3"]


class _Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.ended: Deferred[tuple[bytes, Failure]] = Deferred()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 1:
            self.out += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback((self.out, reason))


class _Noise:
    """
    The background threads: allocation, lock holding, inheritable fds, and
    direct spawns through a second spawner of the same engine.
    """

    def __init__(self, engineName: str) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.directListings: list[list[str]] = []
        self.engineName = engineName
        self.locks = [threading.Lock() for _ in range(4)]
        self.threads = [
            threading.Thread(target=self._guard(self.allocate)),
            threading.Thread(target=self._guard(self.holdLocks)),
            threading.Thread(target=self._guard(self.holdLocks)),
            threading.Thread(target=self._guard(self.openFds)),
            threading.Thread(target=self._guard(self.spawnDirectly)),
        ]

    def _guard(self, f: Any) -> Any:
        def run() -> None:
            try:
                f()
            except BaseException as e:
                self.errors.append(e)

        return run

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def allocate(self) -> None:
        keep: list[object] = []
        while not self.stop.is_set():
            keep.append(bytearray(random.randrange(1, 1 << 16)))
            keep.append([object() for _ in range(100)])
            if len(keep) > 200:
                keep.clear()

    def holdLocks(self) -> None:
        while not self.stop.is_set():
            lock = random.choice(self.locks)
            with lock:
                # Hold it across a GIL release, as real code does.
                self.stop.wait(0.0005)

    def openFds(self) -> None:
        held: list[int] = []
        try:
            while not self.stop.is_set():
                r, w = os.pipe()
                os.set_inheritable(r, True)
                os.set_inheritable(w, True)
                held += [r, w]
                if len(held) > 64:
                    for fd in held[:32]:
                        os.close(fd)
                    del held[:32]
        finally:
            for fd in held:
                os.close(fd)

    def spawnDirectly(self) -> None:
        spawner = selectSpawner(self.engineName)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            while not self.stop.is_set():
                r, w = os.pipe2(os.O_CLOEXEC)
                try:
                    plan = SpawnPlan(
                        executable=LS,
                        candidates=(LS,),
                        argv=(b"ls", b"/proc/self/fd"),
                        envp=(),
                    )
                    child = spawner.spawn(plan, {0: null, 1: w, 2: null}, None)
                    os.close(w)
                    w = -1
                    out = b""
                    while chunk := os.read(r, 4096):
                        out += chunk
                    os.waitpid(child.pid, 0)
                    child.closePidfd()
                    self.directListings.append(sorted(out.decode().split()))
                finally:
                    os.close(r)
                    if w != -1:
                        os.close(w)
        finally:
            os.close(null)


class ThreadStressMixin(MixinBase):
    """
    Spawning under thread noise.
    """

    def test_noDeadlockNoLeak(self) -> None:
        """
        C{CHILDREN} children spawned from the reactor, C{AT_ONCE} at a
        time, while five threads make noise (see L{_Noise}), all run to
        completion within the timeout, and each (and each child the noise
        thread spawned directly) sees exactly its stdio plus ls's own
        directory fd: none of the inheritable fds opened concurrently.
        """
        reactor = self.buildReactor()
        noise = _Noise(self.engineName)
        listings: list[list[str]] = []
        reasons: list[Failure] = []
        remaining = [CHILDREN]

        def spawnOne() -> Deferred[Any]:
            proto = _Collect()
            reactor.spawnProcess(proto, LS, [b"ls", b"/proc/self/fd"], env={})
            return proto.ended.addCallback(record)

        def record(result: tuple[bytes, Failure]) -> None:
            out, reason = result
            listings.append(sorted(out.decode().split()))
            reasons.append(reason)

        def lane() -> Deferred[Any]:
            d: Deferred[Any] = Deferred()

            def next(_: object = None) -> None:
                if remaining[0] == 0:
                    d.callback(None)
                    return
                remaining[0] -= 1
                spawnOne().addCallbacks(next, d.errback)

            next()
            return d

        def start() -> None:
            noise.start()
            gatherResults([lane() for _ in range(AT_ONCE)]).addBoth(finish)

        def finish(result: object) -> object:
            noise.join()
            reactor.stop()
            return result

        reactor.callWhenRunning(start)
        try:
            self.runReactor(reactor, timeout=scaled(120, 600))
        finally:
            noise.join()
        self.assertEqual(noise.errors, [])
        self.assertEqual(len(listings), CHILDREN)
        self.assertTrue(noise.directListings, "the direct spawner never ran")
        for listing in listings + noise.directListings:
            self.assertEqual(listing, EXPECTED)
        for reason in reasons:
            self.assertEqual(getattr(reason.value, "exitCode", None), 0)


globals().update(makeTestCaseClasses(ThreadStressMixin))
