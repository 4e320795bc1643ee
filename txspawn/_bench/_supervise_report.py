# -*- test-case-name: tests.test_bench_supervise -*-
"""
The C{supervise} row's table (L{superviseTable}) and JSON
(L{superviseJSON}): one line per measure, a column per supervisor, the
ratios of txspawn over each anchor, and issue 15's goal for each measure
with whether this run met it.

Nothing here is public API.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from attrs import frozen

from txspawn._bench._supervise_measure import spewLines
from txspawn._bench._supervise_model import SuperviseRun
from txspawn._bench._text import prose, ratioText, table, valueText

__all__ = [
    "SuperviseRow",
    "percentile",
    "superviseJSON",
    "superviseRows",
    "superviseTable",
]

_ANCHORS = ("procmon", "supervisord")


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """
    @param samples: Values.
    @param fraction: C{0.5} for the median, C{0.95} for the 95th
        percentile.
    @return: The nearest-rank percentile, or C{None} without samples.
    """
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@frozen
class SuperviseRow:
    """
    One measure of the table.

    @ivar key: A short name (the JSON's).
    @ivar title: What it measures, in a few words.
    @ivar unit: Its unit.
    @ivar values: By supervisor; C{None} where it has none.
    @ivar goal: The goal, in words, or C{None}.
    @ivar met: Whether txspawn met it in this run (C{None}: no goal, or
        it cannot tell).
    @ivar lowerIsBetter: For the ratios' reading.
    """

    key: str
    title: str
    unit: str
    values: dict[str, float | None]
    goal: str | None = None
    met: bool | None = None
    lowerIsBetter: bool = True

    def ratio(self, anchor: str) -> float | None:
        """
        @return: txspawn's value over C{anchor}'s, or C{None}.
        """
        mine, theirs = self.values.get("txspawn"), self.values.get(anchor)
        if mine is None or theirs is None or theirs == 0:
            return None
        return mine / theirs


def _by(
    run: SuperviseRun, measure: Callable[[str], float | None]
) -> dict[str, float | None]:
    return {impl: measure(impl) for impl in run.anchors}


def _percentiles(
    run: SuperviseRun, samples: dict[str, list[float]], fraction: float
) -> dict[str, float | None]:
    return {impl: percentile(samples.get(impl, []), fraction) for impl in run.anchors}


def _atMost(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def _cpuPercent(samples: dict[str, Any], window: float, impl: str) -> float | None:
    sample = samples.get(impl)
    if sample is None or window <= 0:
        return None
    return float(sample.seconds) / window * 100


def _restartRows(run: SuperviseRun) -> list[SuperviseRow]:
    rows = []
    for fraction, name in ((0.5, "p50"), (0.95, "p95")):
        values = _percentiles(run, run.restarts, fraction)
        mine = values.get("txspawn")
        others = [values[a] for a in _ANCHORS if values.get(a) is not None]
        met = (
            None
            if mine is None or not others
            else all(mine <= o for o in others if o is not None)
        )
        rows.append(
            SuperviseRow(
                f"restart-{name}",
                f"restart latency {name}",
                "ms",
                values,
                "<= procmon and supervisord",
                met,
            )
        )
    return rows


def _idleRows(run: SuperviseRun) -> list[SuperviseRow]:
    window = run.idleWindow
    cpu = _by(run, lambda i: _cpuPercent(run.idle, window, i))
    mine, theirs = cpu.get("txspawn"), cpu.get("supervisord")
    if mine is None or theirs is None:
        met = None
    else:
        met = mine == 0 or (theirs > 0 and mine / theirs <= 0.01)
    wakeups = _by(
        run,
        lambda i: run.idle[i].switches / window if i in run.idle and window else None,
    )
    status = {f: _percentiles(run, run.status, f) for f in (0.5, 0.95)}
    command = _percentiles(run, run.statusCommand, 0.5)
    programs = run.sizes.programs
    return [
        SuperviseRow(
            "idle-cpu",
            f"idle CPU, {programs} programs",
            "% CPU",
            cpu,
            "<= 1% of supervisord's",
            met,
        ),
        SuperviseRow("idle-wakeups", "idle wake-ups", "/s", wakeups),
        SuperviseRow(
            "status-p50", f"ctl status p50, {programs} programs", "ms", status[0.5]
        ),
        SuperviseRow(
            "status-p95",
            f"ctl status p95, {programs} programs",
            "ms",
            status[0.95],
            "<= 100 ms",
            _atMost(status[0.95].get("txspawn"), 100.0),
        ),
        SuperviseRow("status-command", "status command line, p50", "ms", command),
    ]


def _failRows(run: SuperviseRun) -> list[SuperviseRow]:
    cpu = _by(run, lambda i: _cpuPercent(run.fail, run.failWindow, i))
    status = _percentiles(run, run.failStatus, 0.95)
    return [
        SuperviseRow(
            "fail-cpu",
            "exec failing: CPU",
            "% CPU",
            cpu,
            "< 1%",
            None if cpu.get("txspawn") is None else cpu["txspawn"] < 1.0,  # type: ignore[operator]
        ),
        SuperviseRow(
            "fail-status-p95",
            "exec failing: ctl status p95",
            "ms",
            status,
            "< 50 ms",
            None if status.get("txspawn") is None else status["txspawn"] < 50.0,  # type: ignore[operator]
        ),
    ]


def _logRows(run: SuperviseRun) -> list[SuperviseRow]:
    mib = run.sizes.logBytes / 2**20
    final = spewLines(run.sizes.logBytes)

    def throughput(impl: str) -> float | None:
        seconds = run.logSeconds.get(impl)
        return None if not seconds else mib / statistics.median(seconds)

    def field(name: str) -> Callable[[str], float | None]:
        def value(impl: str) -> float | None:
            check = run.logs.get(impl)
            return None if check is None else float(getattr(check, name))

        return value

    def lost(impl: str) -> float | None:
        check = run.logs.get(impl)
        if check is None:
            return None
        missing = 0 if check.last is None else final - check.last
        return float(check.lost + missing)

    def stamped(impl: str) -> float | None:
        check = run.logs.get(impl)
        if check is None or check.timestamps is None:
            return None
        return 1.0 if check.timestamps else 0.0

    speed = _by(run, throughput)
    mine, theirs = speed.get("txspawn"), speed.get("supervisord")
    files = _by(run, field("files"))
    missing, broken = _by(run, lost), _by(run, field("broken"))
    split = _by(run, field("split"))
    stamps = _by(run, stamped)
    return [
        SuperviseRow(
            "log-throughput",
            f"log {mib:g} MiB, rotated",
            "MiB/s",
            speed,
            ">= supervisord",
            None if mine is None or theirs is None else mine >= theirs,
            lowerIsBetter=False,
        ),
        SuperviseRow(
            "log-files",
            "log files left",
            "files",
            files,
            "<= 4",
            _atMost(files.get("txspawn"), 4),
        ),
        SuperviseRow(
            "log-lost",
            "log lines lost",
            "lines",
            missing,
            "0",
            _atMost(missing.get("txspawn"), 0),
        ),
        SuperviseRow(
            "log-split",
            "log lines split across files",
            "lines",
            split,
            "0",
            _atMost(split.get("txspawn"), 0),
        ),
        SuperviseRow(
            "log-broken",
            "log lines garbled",
            "lines",
            broken,
            "0",
            _atMost(broken.get("txspawn"), 0),
        ),
        SuperviseRow(
            "log-timestamps",
            "log timestamps monotonic",
            "1=yes",
            stamps,
            "1",
            None if stamps.get("txspawn") is None else stamps["txspawn"] == 1.0,
            lowerIsBetter=False,
        ),
    ]


def superviseRows(run: SuperviseRun) -> list[SuperviseRow]:
    """
    @param run: What the row measured.
    @return: The table's lines, in order.
    """
    return [*_restartRows(run), *_idleRows(run), *_failRows(run), *_logRows(run)]


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("% CPU",) and value < 0.1:
        return f"{value:.4f}"
    if unit in ("files", "lines", "1=yes"):
        return f"{value:.0f}"
    return valueText(value)


def _verdict(row: SuperviseRow) -> str:
    if row.goal is None:
        return "-"
    if row.met is None:
        return row.goal
    return f"{row.goal} {'ok' if row.met else 'MISS'}"


_NAMES = {"txspawn": "txspawn", "procmon": "procmon", "supervisord": "supervisord"}


def superviseTable(run: SuperviseRun) -> list[str]:
    """
    @param run: What the row measured.
    @return: The report's section for it.
    """
    anchors = list(run.anchors)
    ratios = [a for a in _ANCHORS if a in anchors and "txspawn" in anchors]
    header = ["supervise", "unit", *(_NAMES[a] for a in anchors)]
    header += [f"tx/{a[:4]}" for a in ratios]
    header.append("goal (txspawn)")
    rows = [header]
    for row in superviseRows(run):
        line = [
            row.title,
            row.unit,
            *(_cell(row.values.get(a), row.unit) for a in anchors),
        ]
        line += [ratioText(row.ratio(a)) for a in ratios]
        line.append(_verdict(row))
        rows.append(line)
    out = [
        "",
        f"supervise: txspawn supervise against procmon and supervisord, "
        f"{run.seconds:.0f} s",
        *prose(
            f"sizes: {run.sizes.describe()}; the program: a C program built "
            f"with {run.child or 'n/a'}.",
            "  ",
        ),
        "",
        *("  " + line for line in table(rows)),
        "",
        *prose(
            "Restart latency: from a run's exit to the next run's start, both "
            "stamped by the program (CLOCK_MONOTONIC), restarted with no "
            "backoff; txspawn's and procmon's batches interleaved, "
            "supervisord's run alongside the rest of the row (each waits for "
            "its one-second main loop).  CPU: the supervisor process's own "
            "(schedstat), over the window; wake-ups: its context switches.  "
            "ctl status: one request with a new client (txspawn's control "
            "API, supervisord's XML-RPC); the command line: python -m txspawn "
            "ctl status, supervisorctl status, wall time.  Exec failing: a "
            "program whose executable does not exist, status requested every "
            "half second.  Logs: numbered lines through the supervisor into "
            "a log rotated at 10 MiB with 3 backups, from the program's start "
            "to its last line in the file; txspawn stamps every line, "
            "supervisord cannot.  Settings for the restarted program: txspawn "
            'restart = "always", ready after 0 s, backoff 0 (every run '
            "stable); procmon minRestartDelay = maxRestartDelay = 0; "
            "supervisord startsecs = 0, autorestart = true.  Otherwise each "
            "supervisor's defaults (txspawn: each program in a cgroup of its "
            "own where one can be made, for the whole-tree stop).",
            "  ",
        ),
    ]
    spread = []
    for impl, batches in run.restartBatches.items():
        if batches:
            spread.append(
                f"  restart batch medians, {impl}: "
                + ", ".join(valueText(b) for b in batches)
                + " ms"
            )
    mine, procmon = run.restartBatches.get("txspawn"), run.restartBatches.get("procmon")
    if mine and procmon:
        paired = [a / b for a, b in zip(mine, procmon, strict=False) if b]
        spread.append(
            "  paired restart batches, txspawn/procmon: "
            + ", ".join(ratioText(r) for r in paired)
            + f" (median {ratioText(statistics.median(paired))})"
        )
    for impl, samples in run.status.items():
        if samples:
            spread.append(
                f"  ctl status, {impl}: {valueText(min(samples))}.."
                f"{valueText(max(samples))} ms over {len(samples)}"
            )
    for impl, samples in run.statusCommand.items():
        if samples:
            spread.append(
                f"  status command line, {impl}: {valueText(min(samples))}.."
                f"{valueText(max(samples))} ms over {len(samples)}"
            )
    for impl, seconds in run.logSeconds.items():
        mib = run.sizes.logBytes / 2**20
        spread.append(
            f"  log throughput, {impl}: "
            + ", ".join(valueText(mib / s) for s in seconds if s)
            + " MiB/s"
        )
    for impl, state in run.failState.items():
        spread.append(f"  exec failing, {impl} at the end: {state}")
    for impl, check in run.logs.items():
        spread.append(
            f"  log, {impl}: {check.lines} whole lines in {check.files} files "
            f"(lines {check.first}..{check.last})"
        )
    if spread:
        out += ["", *spread]
    if run.errors:
        out += ["", "supervise notes:"]
        out += [f"  {where}: {why}" for where, why in run.errors.items()]
    missed = [r for r in superviseRows(run) if r.met is False]
    if missed:
        out += ["", "supervise goals missed:"]
    for row in missed:
        cells = ", ".join(f"{a} {_cell(row.values.get(a), row.unit)}" for a in anchors)
        out.append(f"  {row.key}: {cells} {row.unit}; goal {row.goal}.")
        out += prose(f"The goal: {_WHY[row.key.partition('-p')[0]]}.")
    return out


#: Why each goal, in a user's words (issue 15, item 7).
_WHY = {
    "restart": "a supervisor on txspawn sees an exit through its pidfd at "
    "once and spawns again right away: a restart should cost no more than "
    "with Twisted's own procmon or with supervisord",
    "idle-cpu": "with nothing to do a supervisor should not wake up at all "
    "(no polling: pidfd wake-ups only), where supervisord wakes every second "
    "and walks every program; see the idle wake-ups row",
    "status": "ctl status should answer at once however many programs run",
    "fail-cpu": "a program that cannot be executed must not make the "
    "supervisor loop (it is FATAL at once, or retried with backoff)",
    "fail-status": "the supervisor must stay responsive while a program fails",
    "log-throughput": "logging through the supervisor should be at least as "
    "fast as supervisord's, while cutting every line whole",
    "log-files": "rotation keeps the file and its backups, no more",
    "log-lost": "every line the program wrote is in the files kept, in order",
    "log-split": "rotation falls between lines: no line is cut across files",
    "log-broken": "every line in the files is a line the program wrote",
    "log-timestamps": "each line's timestamp never goes back",
}


def superviseJSON(run: SuperviseRun) -> dict[str, Any]:
    """
    @param run: What the row measured.
    @return: Every sample and every line of the table, JSON-able.
    """
    document = attrs.asdict(run)
    document["rows"] = [
        {
            **attrs.asdict(row),
            "ratios": {a: row.ratio(a) for a in _ANCHORS},
        }
        for row in superviseRows(run)
    ]
    return document
