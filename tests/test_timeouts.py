"""
Tests for the lifetime spawn options: C{timeout}/C{killAfter} (terminate a
child, and the group it leads, after a while) and C{closePipesAfterExit}
(stop waiting for pipes a daemonised grandchild holds), with real
processes on every engine x monitor combination, and for their validation.
"""

from __future__ import annotations

import math
import signal
from typing import Any, cast

from twisted.internet.error import ProcessDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from tests.treeutil import (
    Descendant,
    LineProtocol,
    killDescendants,
    spawnWithOptions,
    waitGone,
)
from txspawn._transport.groupkill import checkSeconds
from txspawn._transport.timelimits import (
    DEFAULT_KILL_AFTER,
    LifetimeOptions,
    splitLifetimeOptions,
)

SH = b"/bin/sh"
SLEEPER = python("import time; time.sleep(1000)")
IGNORING_GRANDCHILD = "(trap '' TERM; exec sh -c 'echo $$; exec sleep 1000') &"
# A daemon-like grandchild: it keeps the child's stdout (and, on a pty, the
# terminal: it ignores the SIGHUP of the session leader's exit, from birth,
# as the shell ignores it before forking) and its pid is reported before the
# child exits.
HOLDING_GRANDCHILD = "trap '' HUP; sleep 1000 & echo $!"


def _farCalls(reactor: Any) -> list[Any]:
    """
    The reactor's delayed calls more than 1000 seconds ahead (the long
    timers the tests arm, which must have been cancelled).
    """
    now = reactor.seconds()
    return [c for c in reactor.getDelayedCalls() if c.getTime() - now > 1000]


class TimeoutMixin(MixinBase):
    """
    C{timeout}, C{killAfter} and C{closePipesAfterExit} on real children.
    """

    def test_timeoutTerminates(self) -> None:
        """
        A child still running at C{timeout} gets C{SIGTERM};
        C{transport.timedOut} says why it ended.
        """
        proto = RecordingProtocol()
        transport = spawnWithOptions(
            self, proto, PYTHON, SLEEPER, {"timeout": 0.2, "killAfter": 60}
        )
        self.assertEqual(proto.endedReason.value.signal, signal.SIGTERM)
        self.assertTrue(transport.timedOut)

    def test_timeoutEscalates(self) -> None:
        """
        A child that ignores C{SIGTERM} gets C{SIGKILL} C{killAfter} seconds
        later.
        """
        proto = RecordingProtocol()
        transport = spawnWithOptions(
            self,
            proto,
            SH,
            [SH, b"-c", b"trap '' TERM; while :; do sleep 1; done"],
            {"timeout": 0.2, "killAfter": 0.1},
        )
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)
        self.assertTrue(transport.timedOut)

    def test_timeoutKillsTheTree(self) -> None:
        """
        With C{processGroup=0}, the timeout takes the whole tree down: a
        shell and grandchildren that all ignore C{SIGTERM} are gone after
        C{killAfter}, checked by pid.
        """
        descendants: list[Descendant] = []
        self.addCleanup(killDescendants, descendants)
        script = f"trap '' TERM\n{IGNORING_GRANDCHILD}\n{IGNORING_GRANDCHILD}\nwait"

        def record(transport: Any, lines: list[bytes]) -> None:
            descendants.extend(Descendant(int(line)) for line in lines)

        proto = LineProtocol(2, record)
        transport = spawnWithOptions(
            self,
            proto,
            SH,
            [SH, b"-c", script.encode()],
            {"processGroup": 0, "timeout": 1.0, "killAfter": 0.1},
        )
        self.assertTrue(transport.timedOut)
        self.assertEqual(len(descendants), 2)
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)
        self.assertEqual(waitGone(descendants), [])

    def test_noTimeoutAfterExit(self) -> None:
        """
        A child that exits in time is not signalled, and its timer is
        cancelled (no delayed call is left behind).
        """
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        transport = spawnWithOptions(
            self, proto, PYTHON, python("pass"), {"timeout": 3600}, reactor=reactor
        )
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertFalse(transport.timedOut)
        self.assertEqual(_farCalls(reactor), [])

    def _holder(
        self, usePTY: bool = False, **options: Any
    ) -> tuple[LineProtocol, list[Descendant], list[bool]]:
        """
        Run a shell that leaves a grandchild holding its output and exits.
        While the grandchild lives, note whether C{processEnded} came, then
        kill the grandchild (which closes the pipes).

        @return: The protocol, the grandchild, and C{[ended]} as seen half
            a second after the child exited (only without
            C{closePipesAfterExit}).
        """
        descendants: list[Descendant] = []
        self.addCleanup(killDescendants, descendants)
        seen: list[bool] = []
        reactor = self.buildReactor()

        def record(transport: Any, lines: list[bytes]) -> None:
            descendants.append(Descendant(int(lines[0].strip())))

        class Holder(LineProtocol):
            def processExited(self, reason: Failure) -> None:
                super().processExited(reason)
                if "closePipesAfterExit" not in options:
                    reactor.callLater(0.5, self.look)

            def look(self) -> None:
                seen.append(self.endedReason is not None)
                killDescendants(descendants)

            def processEnded(self, reason: Failure) -> None:
                if "closePipesAfterExit" in options:
                    seen.append(all(d.alive() for d in descendants))
                super().processEnded(reason)

        proto = Holder(1, record)
        spawnAndRun(
            self,
            proto,
            SH,
            [SH, b"-c", HOLDING_GRANDCHILD.encode()],
            reactor=reactor,
            usePTY=usePTY,
            **options,
        )
        self.assertEqual(len(descendants), 1, proto.output)
        return proto, descendants, seen

    def test_defaultWaitsForPipes(self) -> None:
        """
        By default (as Twisted) C{processEnded} waits for every pipe: while
        a grandchild holds stdout it does not come, and it comes once the
        grandchild is gone.
        """
        proto, _, seen = self._holder()
        self.assertEqual(seen, [False])
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertEqual(proto.names().count("exited"), 1)
        self.assertLess(proto.names().index("exited"), proto.names().index("ended"))

    def test_closePipesAfterExit(self) -> None:
        """
        With C{closePipesAfterExit}, C{processEnded} comes while the
        grandchild still holds stdout, each pipe reported lost once, and
        the output written before the child exited is delivered.
        """
        proto, descendants, seen = self._holder(closePipesAfterExit=0.1)
        self.assertEqual(seen, [True])
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        lost = sorted(cast(int, d) for n, d in proto.events if n == "lost")
        self.assertEqual(lost, [0, 1, 2])
        self.assertEqual(proto.lines[0], str(descendants[0].pid).encode())

    def test_closePipesAfterExitPTY(self) -> None:
        """
        On a pty, C{closePipesAfterExit} closes the master even though a
        grandchild still holds the terminal.
        """
        proto, _, seen = self._holder(usePTY=True, closePipesAfterExit=0.1)
        self.assertEqual(seen, [True])
        self.assertIsInstance(proto.endedReason.value, ProcessDone)

    def test_closePipesAfterExitNotNeeded(self) -> None:
        """
        When the pipes close with the child, C{closePipesAfterExit} changes
        nothing and leaves no timer behind.
        """
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("print('hi')"),
            reactor=reactor,
            closePipesAfterExit=3600,
        )
        self.assertEqual(proto.output[1], b"hi\n")
        self.assertEqual(_farCalls(reactor), [])

    def test_badOptionsStartNothing(self) -> None:
        """
        Bad lifetime options raise before anything is opened or started
        (the hygiene checks see no fd and no child), naming the option.
        """
        reactor = self.buildReactor()
        cases: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"timeout": -1}, ValueError, "timeout"),
            ({"timeout": 0}, ValueError, "timeout"),
            ({"timeout": math.nan}, ValueError, "timeout"),
            ({"timeout": math.inf}, ValueError, "timeout"),
            ({"timeout": "5"}, TypeError, "timeout"),
            ({"timeout": True}, TypeError, "timeout"),
            ({"timeout": 1, "killAfter": -0.5}, ValueError, "killAfter"),
            ({"killAfter": 1}, ValueError, "killAfter"),
            ({"closePipesAfterExit": -1}, ValueError, "closePipesAfterExit"),
            ({"closePipesAfterExit": [1]}, TypeError, "closePipesAfterExit"),
        ]
        for options, kind, name in cases:
            with self.assertRaises(kind) as caught:
                reactor.spawnProcess(RecordingProtocol(), PYTHON, SLEEPER, **options)
            self.assertIn(name, str(caught.exception))


globals().update(makeTestCaseClasses(TimeoutMixin))


class SplitLifetimeOptionsTests(SynchronousTestCase):
    """
    L{splitLifetimeOptions} and L{checkSeconds}.
    """

    def test_split(self) -> None:
        """
        The lifetime options are taken out, validated and given defaults;
        every other option is left for L{txspawn.options.SpawnOptions}.
        """
        lifetime, rest = splitLifetimeOptions(
            {"timeout": 2, "umask": 0o22, "closePipesAfterExit": 0}
        )
        self.assertEqual(
            lifetime,
            LifetimeOptions(
                timeout=2.0, killAfter=DEFAULT_KILL_AFTER, closePipesAfterExit=0.0
            ),
        )
        self.assertTrue(lifetime.armsTimers)
        self.assertEqual(rest, {"umask": 0o22})

    def test_none(self) -> None:
        """
        C{None} values mean "not given"; nothing arms a timer.
        """
        lifetime, rest = splitLifetimeOptions(
            {"timeout": None, "killAfter": None, "closePipesAfterExit": None}
        )
        self.assertEqual(lifetime, LifetimeOptions())
        self.assertFalse(lifetime.armsTimers)
        self.assertEqual(rest, {})

    def test_checkSeconds(self) -> None:
        """
        Durations are finite, non-negative numbers (positive on request).
        """
        self.assertEqual(checkSeconds(0, "x"), 0.0)
        self.assertEqual(checkSeconds(1.5, "x", positive=True), 1.5)
        for bad in (-1, -0.001, math.nan, math.inf, -math.inf):
            self.assertRaises(ValueError, checkSeconds, bad, "x")
        self.assertRaises(ValueError, checkSeconds, 0, "x", positive=True)
        for wrong in (None, "1", b"1", False, [1]):
            self.assertRaises(TypeError, checkSeconds, wrong, "x")
