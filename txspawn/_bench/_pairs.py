# -*- test-case-name: tests.test_bench -*-
"""
Paired ratios and differences between two rows of a suite
(L{txspawn._bench._model.Pair}): how a row compares with another row in the
same column, e.g. a namespace spawn against a plain spawn, or against
util-linux C{unshare}, or a spawn with a cgroup of its own against a plain
spawn (a fixed cost on top: a difference in microseconds).

The driver times every row of a suite once per repetition, back to back, so
the two rows' batch medians of one repetition were taken close together:
each ratio (difference) here is the median of the per-repetition ratios
(differences), as the column ratios of L{txspawn._bench._report} are.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence

from attrs import frozen

from txspawn._bench._driver import BenchRun, ScenarioRun
from txspawn._bench._model import Pair
from txspawn._bench._text import prose as _prose
from txspawn._bench._text import ratioText as _ratio
from txspawn._bench._text import table as _table
from txspawn._bench._text import valueText as _value

__all__ = [
    "PAIRED_COLUMN",
    "PairResult",
    "medianInterval",
    "missedPairs",
    "pairResults",
    "pairsTable",
]

#: The column the pairs compare rows in.
PAIRED_COLUMN = "txspawn"

#: Bootstrap resamples behind L{medianInterval}.
_RESAMPLES = 2000


def medianInterval(
    ratios: Sequence[float], level: float = 0.9
) -> tuple[float, float] | None:
    """
    How well the median of C{ratios} is known: a percentile-bootstrap
    confidence interval for it.  The resampling is seeded, so a report is
    reproducible from its samples.

    @param ratios: Per-repetition ratios.
    @param level: The interval's coverage.
    @return: C{(low, high)}, or C{None} if there are no ratios.
    """
    if not ratios:
        return None
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(_RESAMPLES)
    )
    tail = int((1 - level) / 2 * _RESAMPLES)
    return medians[tail], medians[_RESAMPLES - 1 - tail]


@frozen
class PairResult:
    """
    One paired ratio of a run.

    @ivar run: The row.
    @ivar pair: What it is compared with, and the goal.
    @ivar ratios: Per repetition both rows completed: the row's batch median
        over the other row's.
    @ivar differences: Per repetition both rows completed: the row's batch
        median minus the other row's.
    """

    run: ScenarioRun
    pair: Pair
    ratios: tuple[float, ...]
    differences: tuple[float, ...] = ()

    @property
    def value(self) -> float | None:
        """
        The median of L{ratios}, or C{None} without any.
        """
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """
        The 90% interval of L{value} (L{medianInterval}).
        """
        return medianInterval(self.ratios)

    @property
    def difference(self) -> float | None:
        """
        The median of L{differences}, or C{None} without any.
        """
        return statistics.median(self.differences) if self.differences else None

    @property
    def differenceInterval(self) -> tuple[float, float] | None:
        """
        The 90% interval of L{difference} (L{medianInterval}).
        """
        return medianInterval(self.differences)

    @property
    def ratioMissed(self) -> bool:
        """
        Whether the ratio is over its goal in this run.
        """
        value = self.value
        return (
            self.pair.goal is not None and value is not None and value > self.pair.goal
        )

    @property
    def differenceMissed(self) -> bool:
        """
        Whether the difference is over its goal in this run.
        """
        goal, value = self.pair.differenceGoal, self.difference
        return goal is not None and value is not None and value > goal

    @property
    def missed(self) -> bool:
        """
        Whether the ratio or the difference is over its goal in this run.
        """
        return self.ratioMissed or self.differenceMissed


def pairResults(bench: BenchRun) -> list[PairResult]:
    """
    @param bench: The results.
    @return: Every pair of every row whose other row is in the run, in
        report order.  (A column's values are one per repetition from the
        first on and stop at its first failure, so equal indexes are the
        same repetition.)
    """
    runs = {run.scenario.name: run for run in bench.scenarios}
    results = []
    for run in bench.scenarios:
        for pair in run.scenario.pairs:
            other = runs.get(pair.over)
            if other is None:
                continue
            top = run.impls.get(PAIRED_COLUMN)
            bottom = other.impls.get(PAIRED_COLUMN)
            ratios: tuple[float, ...] = ()
            differences: tuple[float, ...] = ()
            if top is not None and bottom is not None:
                both = list(zip(top.values, bottom.values, strict=False))
                ratios = tuple(a / b for a, b in both if b)
                differences = tuple(a - b for a, b in both)
            results.append(PairResult(run, pair, ratios, differences))
    return results


def _pairGoal(result: PairResult) -> str:
    goal = result.pair.goal
    if goal is None:
        return "-"
    if result.value is None:
        return f"<={goal:.2f}"
    return f"<={goal:.2f}" + (" MISS" if result.ratioMissed else " ok")


def _differenceGoal(result: PairResult) -> str:
    goal = result.pair.differenceGoal
    if goal is None:
        return "-"
    if result.difference is None:
        return f"<={goal:.0f}"
    return f"<={goal:.0f}" + (" MISS" if result.differenceMissed else " ok")


def _signed(value: float | None) -> str:
    if value is None:
        return "n/a"
    return ("+" if value >= 0 else "-") + _value(abs(value))


def _interval(
    interval: tuple[float, float] | None, text: Callable[[float], str]
) -> str:
    return "n/a" if interval is None else f"{text(interval[0])}..{text(interval[1])}"


def pairsTable(bench: BenchRun) -> list[str]:
    """
    The paired ratios between rows, if the run has any.
    """
    results = pairResults(bench)
    if not results:
        return []
    rows = [["row", "over", "ratio", "90% CI", "goal", "diff", "diff 90% CI", "goal"]]
    for r in results:
        unit = r.run.scenario.unit
        rows.append(
            [
                r.run.scenario.name,
                r.pair.over,
                _ratio(r.value),
                _interval(r.interval, lambda v: f"{v:.2f}"),
                _pairGoal(r),
                _signed(r.difference) + (f" {unit}" if r.differences else ""),
                _interval(r.differenceInterval, _signed),
                _differenceGoal(r),
            ]
        )
    return [
        "",
        *_prose(
            "paired rows: each row over (and minus) another in the txspawn "
            "column, the median of per-repetition ratios (differences) of "
            "their batch medians (timed back to back in each repetition); "
            "goal: the most txspawn aims for:",
            "",
        ),
        *("  " + line for line in _table(rows)),
    ]


def _missedPair(result: PairResult) -> list[str]:
    s, pair = result.run.scenario, result.pair
    out: list[str] = []
    checks: list[tuple[str, float, str, Sequence[float], Callable[[float], str]]] = []
    if result.ratioMissed:
        assert pair.goal is not None  # only a pair with a goal can miss it
        head = (
            f"  {s.name} over {pair.over}: {_ratio(result.value)}, goal "
            f"<={pair.goal:.2f}."
        )
        checks.append((head, pair.goal, "ratios", result.ratios, _ratio))
    if result.differenceMissed:
        assert pair.differenceGoal is not None
        head = (
            f"  {s.name} minus {pair.over}: {_signed(result.difference)} {s.unit}, "
            f"goal <={pair.differenceGoal:.0f} {s.unit}."
        )
        checks.append(
            (head, pair.differenceGoal, "differences", result.differences, _signed)
        )
    for head, goal, what, samples, text in checks:
        out.append(head)
        out += _prose(f"It compares {s.measures}, with the row {pair.over}.")
        out += _prose(f"The goal: {pair.why}.")
        interval = medianInterval(samples)
        if interval is None:
            continue
        low, high = interval
        verdict = (
            "includes the goal: this run cannot tell"
            if low <= goal
            else "is all beyond the goal"
        )
        out += _prose(
            f"This run: per-repetition {what} {text(min(samples))}.."
            f"{text(max(samples))}; the 90% interval of their median, "
            f"{text(low)}..{text(high)}, {verdict}."
        )
    return out


def missedPairs(bench: BenchRun) -> list[str]:
    """
    @return: For every pair that misses its goal: what it compares, why the
        goal and whether this run can tell (under 'missed goals').
    """
    return [line for r in pairResults(bench) if r.missed for line in _missedPair(r)]
