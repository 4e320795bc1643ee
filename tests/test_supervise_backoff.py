# -*- test-case-name: tests.test_supervise_backoff -*-
"""
Tests for L{txspawn.supervise.backoff}: the delays, the give-up and the
stability rule of the restart policy, exactly.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txspawn.supervise.backoff import Backoff


class BackoffDelayTests(SynchronousTestCase):
    """
    L{Backoff.delay} gives exact delays.
    """

    def test_defaults(self) -> None:
        """
        By default: 1 s, doubled after each failure, capped at 60 s; stable
        after 30 s; giving up after 10 failures; no jitter.
        """
        backoff = Backoff()
        self.assertEqual(
            (
                backoff.initial,
                backoff.factor,
                backoff.max,
                backoff.resetAfter,
                backoff.giveUpAfter,
                backoff.jitter,
            ),
            (1.0, 2.0, 60.0, 30.0, 10, 0.0),
        )

    def test_sequence(self) -> None:
        """
        No failure: no delay; then C{initial}, multiplied by C{factor} for
        each further failure, until C{max}, which it stays at.
        """
        backoff = Backoff(initial=1, factor=2, max=60)
        self.assertEqual(
            [backoff.delay(n) for n in range(10)],
            [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0],
        )

    def test_otherFactor(self) -> None:
        """
        Any factor and initial delay: C{0.5 * 3 ** (n - 1)}, capped.
        """
        backoff = Backoff(initial=0.5, factor=3, max=10)
        self.assertEqual(
            [backoff.delay(n) for n in range(1, 6)], [0.5, 1.5, 4.5, 10.0, 10.0]
        )

    def test_constant(self) -> None:
        """
        A factor of 1 gives the same delay every time; an initial delay
        above the cap gives the cap.
        """
        self.assertEqual(
            [Backoff(initial=3, factor=1).delay(n) for n in (1, 2, 50)],
            [3.0, 3.0, 3.0],
        )
        self.assertEqual(Backoff(initial=90, max=60).delay(1), 60.0)

    def test_zero(self) -> None:
        """
        An initial delay of 0 restarts at once, however many failures.
        """
        self.assertEqual(Backoff(initial=0).delay(10**6), 0.0)

    def test_longCrashLoop(self) -> None:
        """
        After a very long crash loop the delay is the cap, computed without
        overflowing.
        """
        self.assertEqual(Backoff(max=60).delay(10**9), 60.0)
        self.assertEqual(Backoff(initial=1e-300, factor=1.0000001).delay(10**12), 60)

    def test_negative(self) -> None:
        """
        A negative count of failures is a L{ValueError}.
        """
        self.assertRaises(ValueError, Backoff().delay, -1)

    def test_jitter(self) -> None:
        """
        With C{jitter}, the delay is shortened by the random draw times the
        jitter fraction of it: never longer than the exact delay.
        """
        backoff = Backoff(initial=8, factor=2, max=60, jitter=0.5)
        self.assertEqual(backoff.delay(1, random=lambda: 0.0), 8.0)
        self.assertEqual(backoff.delay(1, random=lambda: 0.5), 6.0)
        self.assertEqual(backoff.delay(2, random=lambda: 0.25), 14.0)
        self.assertEqual(backoff.delay(0, random=lambda: 0.5), 0.0)

    def test_noJitterDrawsNothing(self) -> None:
        """
        Without jitter no random number is drawn.
        """

        def draw() -> float:
            raise AssertionError("drawn")

        self.assertEqual(Backoff().delay(3, random=draw), 4.0)


class BackoffRuleTests(SynchronousTestCase):
    """
    L{Backoff.givesUp} and L{Backoff.isStable}.
    """

    def test_givesUp(self) -> None:
        """
        The program gives up when the count reaches C{giveUpAfter}, not
        before.
        """
        backoff = Backoff(giveUpAfter=3)
        self.assertEqual(
            [backoff.givesUp(n) for n in range(5)], [False, False, False, True, True]
        )

    def test_neverGivesUp(self) -> None:
        """
        C{giveUpAfter=None} never gives up.
        """
        self.assertFalse(Backoff(giveUpAfter=None).givesUp(10**9))

    def test_isStable(self) -> None:
        """
        A run is stable from C{resetAfter} seconds on.
        """
        backoff = Backoff(resetAfter=30)
        self.assertEqual(
            [backoff.isStable(t) for t in (0, 29.999, 30, 31)],
            [False, False, True, True],
        )


class BackoffValidationTests(SynchronousTestCase):
    """
    L{Backoff} refuses values that make no sense, naming the field.
    """

    def test_badValues(self) -> None:
        """
        Negative or non-finite seconds, a factor below 1, a give-up count
        below 1 and a jitter outside [0, 1] are L{ValueError}s naming the
        field.
        """
        cases: list[tuple[dict[str, object], str]]
        cases = [
            ({"initial": -1}, "initial"),
            ({"max": float("inf")}, "max"),
            ({"resetAfter": float("nan")}, "resetAfter"),
            ({"factor": 0.5}, "factor"),
            ({"giveUpAfter": 0}, "giveUpAfter"),
            ({"jitter": 1.5}, "jitter"),
        ]
        for kwargs, name in cases:
            with self.subTest(kwargs=kwargs):
                error = self.assertRaises(ValueError, Backoff, **kwargs)
                self.assertIn(f"Backoff.{name}", str(error))

    def test_badTypes(self) -> None:
        """
        Values of the wrong type (a bool is no number) are L{TypeError}s
        naming the field.
        """
        cases: list[tuple[dict[str, object], str]]
        cases = [
            ({"initial": "1"}, "initial"),
            ({"factor": True}, "factor"),
            ({"giveUpAfter": 2.0}, "giveUpAfter"),
            ({"jitter": None}, "jitter"),
        ]
        for kwargs, name in cases:
            with self.subTest(kwargs=kwargs):
                error = self.assertRaises(TypeError, Backoff, **kwargs)
                self.assertIn(f"Backoff.{name}", str(error))
