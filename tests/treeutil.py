# -*- test-case-name: tests.test_groups -*-
"""
Helpers for the process-tree tests: protocols that learn the pids of a
child's descendants, and checks (by pid, through C{/proc}) that those
descendants are gone.

A descendant is identified by its pid I{and} its start time, so that a pid
reused by an unrelated process after the descendant died is never mistaken
for it (and never killed by the clean-up).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

from tests.builders import RecordingProtocol

__all__ = [
    "Descendant",
    "LineProtocol",
    "aliveDescendants",
    "killDescendants",
    "waitGone",
]


class Descendant:
    """
    One process, by pid and start time (C{/proc/<pid>/stat} field 22).
    """

    def __init__(self, pid: int) -> None:
        """
        @param pid: A pid alive right now.
        """
        self.pid = pid
        self.startTime = _startTime(pid)

    def __repr__(self) -> str:
        return f"<Descendant pid={self.pid}>"

    def alive(self) -> bool:
        """
        Whether the same process still exists and is not a zombie (a zombie
        reparented to a pid 1 that does not reap counts as dead).
        """
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return False
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            return False
        return int(fields[19]) == self.startTime


def _startTime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def waitGone(descendants: list[Descendant], patience: float = 30.0) -> list[Descendant]:
    """
    Wait (blocking) until every descendant is gone, or C{patience} seconds.

    The kernel delivers C{SIGKILL} at once but tearing a process down takes
    a moment; this only waits for that, it does not time anything.

    @return: Those still alive after C{patience} seconds.
    """
    deadline = time.monotonic() + patience
    while True:
        alive = aliveDescendants(descendants)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


def aliveDescendants(descendants: list[Descendant]) -> list[Descendant]:
    """
    @return: The descendants still alive.
    """
    return [d for d in descendants if d.alive()]


def killDescendants(descendants: list[Descendant]) -> None:
    """
    Clean-up: C{SIGKILL} each descendant that is still the same process.
    """
    for d in descendants:
        if d.alive():
            try:
                os.kill(d.pid, signal.SIGKILL)
            except OSError:
                pass


class LineProtocol(RecordingProtocol):
    """
    A L{RecordingProtocol} that splits fd 1 into lines and calls
    C{onLines(transport, lines)} once C{count} lines arrived.

    @ivar lines: The complete lines received on fd 1 so far.
    """

    def __init__(
        self,
        count: int = 0,
        onLines: Callable[[Any, list[bytes]], object] | None = None,
    ) -> None:
        super().__init__()
        self.lines: list[bytes] = []
        self._partial = b""
        self._count = count
        self._onLines = onLines
        self.callbackError: Failure | None = None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        super().childDataReceived(childFD, data)
        if childFD != 1:
            return
        *complete, self._partial = (self._partial + data).split(b"\n")
        before = len(self.lines)
        self.lines += complete
        if self._onLines is not None and before < self._count <= len(self.lines):
            try:
                self._onLines(self.transport, self.lines[: self._count])
            except BaseException:
                self.callbackError = Failure()


def spawnWithOptions(
    test: Any,
    proto: Any,
    executable: bytes,
    args: list[bytes],
    options: dict[str, Any],
    *,
    reactor: Any = None,
    onSpawned: Callable[[Any], object] | None = None,
) -> Any:
    """
    L{tests.builders.spawnAndRun} with C{spawnProcess} keyword options given
    as a dict, so that the C{timeout} spawn option does not collide with
    C{spawnAndRun}'s own C{timeout} (how long the reactor may run).
    """
    if reactor is None:
        reactor = test.buildReactor()
    result: list[Any] = []

    def spawn() -> None:
        try:
            result.append(reactor.spawnProcess(proto, executable, args, **options))
        except BaseException:
            reactor.stop()
            raise
        if onSpawned is not None:
            onSpawned(result[0])

    proto.ended.addBoth(lambda r: reactor.callLater(0, reactor.stop))
    reactor.callWhenRunning(spawn)
    test.runReactor(reactor, 60)
    if not result:
        test.fail("spawnProcess failed (see the logged error)")
    return result[0]
