# -*- test-case-name: tests.test_bench -*-
"""
The text helpers of the benchmark's report: numbers, ratios, wrapped prose
and aligned tables, shared by L{txspawn._bench._report} and
L{txspawn._bench._pairs}.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

__all__ = ["prose", "ratioText", "table", "valueText"]


def valueText(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def ratioText(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def prose(text: str, indent: str = "    ") -> list[str]:
    """
    C{text} wrapped to 79 columns, each line starting with C{indent}.
    """
    return textwrap.wrap(
        text,
        79,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
