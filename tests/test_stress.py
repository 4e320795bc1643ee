"""
Stress: one reactor spawns and reaps 2000 children with 1000 alive at once,
on every engine x monitor combination; every exit status must be right and
nothing may leak (the builder's hygiene check).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.builders import MixinBase, makeTestCaseClasses

TOTAL = 2000
ALIVE = 1000
# Children released at a time once ALIVE are up: enough to keep the reactor
# busy, few enough that the population stays near ALIVE.
IN_FLIGHT = 25


class _Child(ProcessProtocol):
    """
    A child that blocks reading stdin until released, then exits with its
    own code.
    """

    def __init__(self, run: _StressRun, index: int) -> None:
        self.run = run
        self.index = index
        self.expected = index % 256
        self.reasons: list[Failure] = []

    def release(self) -> None:
        self.transport.write(b"\n")  # type: ignore[union-attr]

    def processEnded(self, reason: Failure) -> None:
        self.reasons.append(reason)
        self.run.ended(self)


class _StressRun:
    """
    Keeps about L{ALIVE} children alive until L{TOTAL} have run.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.children: list[_Child] = []
        self.blocked: deque[_Child] = deque()
        self.alive = 0
        self.peak = 0
        self.done = 0
        self.errors: list[str] = []

    def spawn(self) -> None:
        child = _Child(self, len(self.children))
        self.children.append(child)
        self.reactor.spawnProcess(
            child,
            "/bin/sh",
            ["sh", "-c", f"read x; exit {child.expected}"],
            childFDs={0: "w"},
        )
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        self.blocked.append(child)

    def start(self) -> None:
        for _ in range(ALIVE):
            self.spawn()
        for _ in range(IN_FLIGHT):
            self.blocked.popleft().release()

    def ended(self, child: _Child) -> None:
        self.alive -= 1
        self.done += 1
        if len(self.children) < TOTAL:
            self.spawn()
        if self.blocked:
            self.blocked.popleft().release()
        if self.done == TOTAL:
            self.reactor.stop()


class StressMixin(MixinBase):
    """
    Thousands of children on one reactor.
    """

    def test_twoThousandChildren(self) -> None:
        """
        2000 children, 1000 of them alive at once, are all reaped exactly
        once with their own exit status, and nothing is left behind.
        """
        reactor = self.buildReactor()
        run = _StressRun(reactor)

        def start() -> None:
            try:
                run.start()
            except BaseException:
                reactor.stop()
                raise

        reactor.callWhenRunning(start)
        self.runReactor(reactor, 600)
        self.assertEqual(run.done, TOTAL)
        self.assertEqual(run.peak, ALIVE)
        for child in run.children:
            self.assertEqual(len(child.reasons), 1)
            value: Any = child.reasons[0].value
            if child.expected == 0:
                self.assertIsInstance(value, ProcessDone)
            else:
                self.assertIsInstance(value, ProcessTerminated)
                self.assertEqual(value.exitCode, child.expected)
            self.assertIsNotNone(value.rusage)


globals().update(makeTestCaseClasses(StressMixin))
