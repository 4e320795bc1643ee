# -*- test-case-name: tests.test_bench -*-
"""
Turn a L{txspawn._bench._driver.BenchRun} into the printed table and the
C{--json} document.

Each cell is the median over repetitions of each batch's median.  Each
ratio is paired: the median over repetitions of the ratio of the two
columns' batch medians I{in that repetition}.  A repetition runs its
batches back to back, so a host that drifts between repetitions (this one
moves the C column alone by a third from one repetition to the next)
shifts both terms of each ratio together, where a ratio of the two columns'
medians would compare batches run at different times.

For latency rows (microseconds) lower is better and C{txspawn/C} is "times
the practical limit"; for throughput rows (MiB/s) higher is better and
C{txspawn/C} is "fraction of the practical limit".  The goal column
checks txspawn/C against the scenario's goal, and every row that misses
it is explained below the table: what the row measures, why txspawn has
that goal, and whether the run can tell (its ratio's interval).  Rows of
a suite are also compared with each other (L{txspawn._bench._pairs}): a
second table gives those paired ratios and their goals.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from txspawn._bench._driver import BenchRun, ImplRun, ScenarioRun
from txspawn._bench._pairs import medianInterval, missedPairs, pairResults, pairsTable
from txspawn._bench._supervise_report import superviseJSON, superviseTable
from txspawn._bench._text import prose as _prose
from txspawn._bench._text import ratioText as _ratio
from txspawn._bench._text import table as _table
from txspawn._bench._text import valueText as _value

__all__ = [
    "IDLE_PENALTY_GOAL",
    "RATIOS",
    "formatReport",
    "idlePenalty",
    "missed",
    "ratio",
    "ratioInterval",
    "repetitionRatios",
    "toJSON",
]

#: The ratio columns: (numerator, denominator).
RATIOS: tuple[tuple[str, str], ...] = (
    ("txspawn", "c"),
    ("twisted", "c"),
    ("txspawn", "twisted"),
)

_LABELS = {"txspawn": "txspawn", "twisted": "twisted", "c": "C"}


def _median(impl: ImplRun | None) -> float | None:
    if impl is None or not impl.values:
        return None
    return statistics.median(impl.values)


def repetitionRatios(run: ScenarioRun, numerator: str, denominator: str) -> list[float]:
    """
    @param run: One scenario's results.
    @param numerator: An implementation name.
    @param denominator: An implementation name.
    @return: For every repetition both columns completed, the ratio of
        their batch medians in it.  (A column's values are one per
        repetition from the first on, and stop at its first failure, so
        equal indexes are the same repetition.)
    """
    top = run.impls.get(numerator)
    bottom = run.impls.get(denominator)
    if top is None or bottom is None:
        return []
    return [a / b for a, b in zip(top.values, bottom.values, strict=False) if b != 0]


def ratioInterval(
    run: ScenarioRun, numerator: str, denominator: str, level: float = 0.9
) -> tuple[float, float] | None:
    """
    How well L{ratio} is known: a percentile-bootstrap confidence interval
    for the median of the per-repetition ratios.  The resampling is seeded,
    so a report is reproducible from its samples.

    @param run: One scenario's results.
    @param numerator: An implementation name.
    @param denominator: An implementation name.
    @param level: The interval's coverage.
    @return: C{(low, high)}, or C{None} if there are no ratios.
    """
    return medianInterval(repetitionRatios(run, numerator, denominator), level)


def ratio(run: ScenarioRun, numerator: str, denominator: str) -> float | None:
    """
    @param run: One scenario's results.
    @param numerator: An implementation name.
    @param denominator: An implementation name.
    @return: The median of the per-repetition ratios (L{repetitionRatios}),
        or C{None} if there are none.
    """
    ratios = repetitionRatios(run, numerator, denominator)
    return statistics.median(ratios) if ratios else None


def _bound(run: ScenarioRun) -> str:
    target = run.scenario.target
    assert target is not None
    return f">={target:.2f}" if run.scenario.higherIsBetter else f"<={target:.2f}"


def _meets(run: ScenarioRun, value: float) -> bool:
    target = run.scenario.target
    assert target is not None
    return value >= target if run.scenario.higherIsBetter else value <= target


def missed(run: ScenarioRun) -> bool:
    """
    @param run: One scenario's results.
    @return: Whether txspawn/C misses the scenario's goal in this run.
    """
    value = ratio(run, "txspawn", "c")
    return (
        run.scenario.target is not None and value is not None and not _meets(run, value)
    )


def _target(run: ScenarioRun) -> str:
    if run.scenario.target is None:
        return "-"
    value = ratio(run, "txspawn", "c")
    verdict = "" if value is None else (" MISS" if missed(run) else " ok")
    return _bound(run) + verdict


def _missedGoals(bench: BenchRun) -> list[str]:
    """
    For every row that misses its goal: what it measures, why the goal, and
    whether this run can tell.
    """
    out = []
    for run in bench.scenarios:
        if not missed(run):
            continue
        s = run.scenario
        out.append(
            f"  {s.name}: txspawn/C {_ratio(ratio(run, 'txspawn', 'c'))}, goal "
            f"{_bound(run)}."
        )
        out += _prose(
            f"It measures {s.measures}; txspawn/C compares that with the C "
            f"column, the practical limit."
        )
        out += _prose(f"The goal: {s.why}.")
        perRep = repetitionRatios(run, "txspawn", "c")
        interval = ratioInterval(run, "txspawn", "c")
        if interval is None:
            continue
        low, high = interval
        spread = (
            f"This run: per-repetition ratios {_ratio(min(perRep))}.."
            f"{_ratio(max(perRep))}, 90% interval of their median "
            f"{_ratio(low)}..{_ratio(high)}"
        )
        if _meets(run, low) or _meets(run, high):
            verdict = (
                ", which includes the goal: this run cannot tell.  Rerun with "
                "more --reps on an otherwise idle machine."
            )
        else:
            verdict = (
                ", all of it beyond the goal.  A loaded machine can cause "
                "that too: check the load (uptime) and rerun on an otherwise "
                "idle machine before drawing conclusions."
            )
        out += _prose(spread + verdict)
    penalty = idlePenalty(bench, "txspawn")
    if penalty is not None and penalty > IDLE_PENALTY_GOAL:
        out.append(
            f"  idle penalty: txspawn {_ratio(penalty)}, goal "
            f"<={IDLE_PENALTY_GOAL:.2f}."
        )
        out += _prose(
            "It measures how much slower a txspawn spawn gets with the idle "
            "children alive: the spawn-idle row over the spawn row, in the "
            "txspawn column."
        )
        out += _prose(
            "The goal: a spawn should cost about the same however many "
            "children are alive (stock Twisted looks at every open fd and "
            "every child on each spawn)."
        )
        out += _prose(
            "This run: the two rows are timed by different workers at "
            "different moments, so this ratio is not paired and drift of the "
            "machine between the rows moves it (see their spreads below).  "
            "Rerun with more --reps on an otherwise idle machine to confirm."
        )
    out += missedPairs(bench)
    return ["", "missed goals:", *out] if out else []


def _inUse(bench: BenchRun) -> str:
    details = {
        run.impls["txspawn"].detail
        for run in bench.scenarios
        if "txspawn" in run.impls and run.impls["txspawn"].detail
    }
    return f": {', '.join(sorted(details))}" if details else ""


#: txspawn's goal for its own idle penalty (spawn-idle / spawn).
IDLE_PENALTY_GOAL = 1.3


def idlePenalty(bench: BenchRun, impl: str) -> float | None:
    """
    How much slower a spawn gets with idle children alive, in one column:
    C{spawn-idle} over C{spawn}.  txspawn's goal: at most
    L{IDLE_PENALTY_GOAL} ("with thousands of idle children alive, a spawn
    costs at most 1.3x its own cost with none").

    @param bench: The results.
    @param impl: An implementation name.
    @return: The ratio of the two rows' medians, or C{None} if the run lacks
        either row or value.
    """
    runs = {run.scenario.name: run for run in bench.scenarios}
    if "spawn" not in runs or "spawn-idle" not in runs:
        return None
    busy = _median(runs["spawn-idle"].impls.get(impl))
    quiet = _median(runs["spawn"].impls.get(impl))
    return None if busy is None or not quiet else busy / quiet


def _idlePenalty(bench: BenchRun, impls: Sequence[str]) -> list[str]:
    names = {run.scenario.name for run in bench.scenarios}
    if "spawn" not in names or "spawn-idle" not in names:
        return []
    cells = []
    for impl in impls:
        value = idlePenalty(bench, impl)
        cell = f"{_LABELS[impl]} {_ratio(value)}"
        if impl == "txspawn" and value is not None:
            cell += " ok" if value <= IDLE_PENALTY_GOAL else " MISS"
        cells.append(cell)
    return [
        "",
        *_prose(
            "idle penalty: how much slower a spawn gets with the idle children "
            "alive (spawn-idle / spawn, each column on its own; txspawn's "
            f"goal: <={IDLE_PENALTY_GOAL:.2f}, a spawn costing about the same "
            "however many children are alive):",
            "",
        ),
        "  " + "; ".join(cells),
    ]


def formatReport(bench: BenchRun) -> str:
    """
    @param bench: The results.
    @return: The human report: parameters, the table, spreads, notes.
    """
    opts = bench.options
    # The columns some row ran in (a suite of txspawn-only rows alone has
    # no C or Twisted column to show).
    impls = [
        i for i in opts.implementations if any(i in r.impls for r in bench.scenarios)
    ] or list(opts.implementations)
    width = max([14, *(len(r.scenario.name) for r in bench.scenarios)])
    env = bench.environment
    out = [
        f"txspawn bench ({opts.params.mode}): {bench.seconds:.0f} s",
        f"  {opts.params.describe()}",
        f"  {env['kernel']}, {env['cpus']} cpus, Python {env['python']}, "
        f"Twisted {env['twisted']}, txspawn {env['txspawn']}",
        f"  txspawn column: txspawn.reactor.EPollReactor("
        f"engine={opts.engine or 'default'}, monitor={opts.monitor or 'default'})"
        + _inUse(bench),
        "  twisted column: twisted.internet.epollreactor.EPollReactor()",
        f"  C column: posix_spawn + waitpid, built with {bench.reference.reason}",
        "",
    ]
    if not bench.scenarios and bench.supervise is not None:
        # The supervise row alone: only its own table means anything.
        return "\n".join([out[0], out[2], *superviseTable(bench.supervise)]) + "\n"
    header = ["scenario", "unit", *(_LABELS[i] for i in impls)]
    shown = [(a, b) for a, b in RATIOS if a in impls and b in impls]
    header += [f"{_LABELS[a]}/{_LABELS[b]}" for a, b in shown]
    header.append("goal txspawn/C")
    rows = [header]
    for run in bench.scenarios:
        row = [run.scenario.name, run.scenario.unit]
        row += [_value(_median(run.impls[i])) if i in run.impls else "-" for i in impls]
        row += [_ratio(ratio(run, a, b)) for a, b in shown]
        row.append(_target(run))
        rows.append(row)
    out += _table(rows)
    out += [
        "",
        *_prose(
            "us rows: median latency, lower is better; MiB/s rows: median "
            "throughput, higher is better.  Ratios are medians of "
            "per-repetition ratios, each of two batches run back to back "
            "(x/C: 1.00 is the practical limit).  goal: the bound txspawn "
            "aims for against the C column; ok or MISS says whether this run "
            "met it (each MISS is explained under 'missed goals').",
            "",
        ),
        "",
        "scenarios:",
    ]
    for run in bench.scenarios:
        s = run.scenario
        out.append(
            f"  {s.name:<{width}} {s.title}; {run.setup.describe()}; "
            f"{run.task.count} {'MiB' if s.unit == 'MiB/s' else 'samples'}/batch"
        )
    out += _idlePenalty(bench, impls)
    out += pairsTable(bench)
    out += _missedGoals(bench)
    out += [
        "",
        "spread (min..max of the per-repetition medians and txspawn/C ratios) "
        "and fds open:",
    ]
    for run in bench.scenarios:
        cells = []
        for impl in [i for i in impls if i in run.impls]:
            r = run.impls[impl]
            if r.values:
                low, high = _value(min(r.values)), _value(max(r.values))
                cell = f"{_LABELS[impl]} {low}..{high}"
            else:
                cell = f"{_LABELS[impl]} n/a"
            if r.fds is not None:
                cell += f" ({r.fds} fds)"
            cells.append(cell)
        perRep = repetitionRatios(run, "txspawn", "c")
        interval = ratioInterval(run, "txspawn", "c")
        if perRep and interval is not None:
            cells.append(
                f"txspawn/C {_ratio(min(perRep))}..{_ratio(max(perRep))}, "
                f"its median's 90% CI {_ratio(interval[0])}..{_ratio(interval[1])}"
            )
        out.append(f"  {run.scenario.name:<{width}} " + "; ".join(cells))
    notes = []
    for run in bench.scenarios:
        for impl in [i for i in impls if i in run.impls]:
            r = run.impls[impl]
            if r.error is not None:
                notes.append(f"  {run.scenario.name} / {_LABELS[impl]}: {r.error}")
            if r.late:
                notes.append(
                    f"  {run.scenario.name} / {_LABELS[impl]}: {r.late} samples "
                    "where the child exited before spawnProcess returned"
                )
            if r.counts:
                counted = ", ".join(f"{n} x {what}" for what, n in r.counts.items())
                notes.append(f"  {run.scenario.name} / {_LABELS[impl]}: {counted}")
    if notes:
        out += ["", "notes:", *notes]
    if bench.supervise is not None:
        out += superviseTable(bench.supervise)
    return "\n".join(out) + "\n"


def toJSON(bench: BenchRun) -> dict[str, Any]:
    """
    @param bench: The results.
    @return: A JSON-able document with every sample, median and ratio.
    """
    p = bench.options.params
    return {
        "params": {
            "mode": p.mode,
            "reps": p.reps,
            "idle": p.idle,
            "spawnCount": p.spawnCount,
            "idleSpawnCount": p.idleSpawnCount,
            "exitCount": p.exitCount,
            "exitDelayUs": p.exitDelayUs,
            "pipeMiB": p.pipeMiB,
            "ballastMiB": p.ballastMiB,
        },
        "engine": bench.options.engine,
        "monitor": bench.options.monitor,
        "reference": {"binary": bench.reference.binary, "note": bench.reference.reason},
        "environment": bench.environment,
        "seconds": bench.seconds,
        "scenarios": [
            {
                "name": run.scenario.name,
                "title": run.scenario.title,
                "measures": run.scenario.measures,
                "unit": run.scenario.unit,
                "target": run.scenario.target,
                "why": run.scenario.why,
                "missed": missed(run),
                "setup": {"idle": run.setup.idle, "ballastMiB": run.setup.ballastMiB},
                "task": run.task.toJSON(),
                "seconds": run.seconds,
                "implementations": {
                    impl: {
                        "median": _median(r),
                        "values": r.values,
                        "samples": r.samples,
                        "late": r.late,
                        "error": r.error,
                        "fds": r.fds,
                        "setupSeconds": r.setupSeconds,
                        "detail": r.detail,
                        "counts": dict(r.counts),
                    }
                    for impl, r in run.impls.items()
                },
                "ratios": {f"{a}/{b}": ratio(run, a, b) for a, b in RATIOS},
                "repetitionRatios": {
                    f"{a}/{b}": repetitionRatios(run, a, b) for a, b in RATIOS
                },
                "ratioIntervals90": {
                    f"{a}/{b}": ratioInterval(run, a, b) for a, b in RATIOS
                },
                "pairs": [
                    {
                        "over": r.pair.over,
                        "goal": r.pair.goal,
                        "why": r.pair.why,
                        "ratio": r.value,
                        "repetitionRatios": list(r.ratios),
                        "interval90": r.interval,
                        "differenceGoal": r.pair.differenceGoal,
                        "difference": r.difference,
                        "repetitionDifferences": list(r.differences),
                        "differenceInterval90": r.differenceInterval,
                        "missed": r.missed,
                    }
                    for r in pairResults(bench)
                    if r.run is run
                ],
            }
            for run in bench.scenarios
        ],
        "supervise": (
            None if bench.supervise is None else superviseJSON(bench.supervise)
        ),
    }
