# -*- test-case-name: tests.test_bench -*-
"""
Paired ratios between two rows of a suite (L{txspawn._bench._model.Pair}):
how a row compares with another row in the same column, e.g. a namespace
spawn against a plain spawn, or against util-linux C{unshare}.

The driver times every row of a suite once per repetition, back to back, so
the two rows' batch medians of one repetition were taken close together:
each ratio here is the median of the per-repetition ratios, as the column
ratios of L{txspawn._bench._report} are.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

from attrs import frozen

from txspawn._bench._driver import BenchRun, ScenarioRun
from txspawn._bench._model import Pair
from txspawn._bench._text import prose as _prose
from txspawn._bench._text import ratioText as _ratio
from txspawn._bench._text import table as _table

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
    """

    run: ScenarioRun
    pair: Pair
    ratios: tuple[float, ...]

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
    def missed(self) -> bool:
        """
        Whether the ratio is over its goal in this run.
        """
        value = self.value
        return (
            self.pair.goal is not None and value is not None and value > self.pair.goal
        )


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
            if top is not None and bottom is not None:
                ratios = tuple(
                    a / b for a, b in zip(top.values, bottom.values, strict=False) if b
                )
            results.append(PairResult(run, pair, ratios))
    return results


def _pairGoal(result: PairResult) -> str:
    goal = result.pair.goal
    if goal is None:
        return "-"
    if result.value is None:
        return f"<={goal:.2f}"
    return f"<={goal:.2f}" + (" MISS" if result.missed else " ok")


def pairsTable(bench: BenchRun) -> list[str]:
    """
    The paired ratios between rows, if the run has any.
    """
    results = pairResults(bench)
    if not results:
        return []
    rows = [["row", "over", "ratio", "90% CI", "goal"]]
    for r in results:
        interval = r.interval
        spread = "n/a" if interval is None else f"{interval[0]:.2f}..{interval[1]:.2f}"
        rows.append(
            [r.run.scenario.name, r.pair.over, _ratio(r.value), spread, _pairGoal(r)]
        )
    return [
        "",
        *_prose(
            "paired rows: each row over another in the txspawn column, the "
            "median of per-repetition ratios of their batches (timed back to "
            "back in each repetition); goal: the most txspawn aims for:",
            "",
        ),
        *("  " + line for line in _table(rows)),
    ]


def _missedPair(result: PairResult) -> list[str]:
    s, pair = result.run.scenario, result.pair
    goal = pair.goal
    assert goal is not None  # only a pair with a goal can miss it
    out = [f"  {s.name} over {pair.over}: {_ratio(result.value)}, goal <={goal:.2f}."]
    out += _prose(f"It compares {s.measures}, with the row {pair.over}.")
    out += _prose(f"The goal: {pair.why}.")
    interval = result.interval
    if interval is not None:
        low, high = interval
        verdict = (
            "includes the goal: this run cannot tell"
            if low <= goal
            else "is all beyond the goal"
        )
        out += _prose(
            f"This run: per-repetition ratios {_ratio(min(result.ratios))}.."
            f"{_ratio(max(result.ratios))}; the 90% interval of their median, "
            f"{_ratio(low)}..{_ratio(high)}, {verdict}."
        )
    return out


def missedPairs(bench: BenchRun) -> list[str]:
    """
    @return: For every pair that misses its goal: what it compares, why the
        goal and whether this run can tell (under 'missed goals').
    """
    return [line for r in pairResults(bench) if r.missed for line in _missedPair(r)]
