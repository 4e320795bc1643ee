# -*- test-case-name: tests.test_cli -*-
"""
C{python -m txspawn bench}: run the side-by-side benchmark
(L{txspawn._bench}) with the command line's options and print the report.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TextIO

__all__ = ["benchCommand"]


def benchCommand(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """
    Run C{python -m txspawn bench}.

    @param args: The parsed arguments (L{txspawn._cli.main.buildParser}).
    @param out: Where the report goes.
    @param err: Where progress and errors go.
    @return: The exit code: 0, or 2 for a bad argument.
    """
    import attrs

    from txspawn._bench._driver import IMPLEMENTATIONS, BenchOptions, runBench
    from txspawn._bench._report import formatReport, toJSON
    from txspawn._bench._scenarios import (
        FULL,
        QUICK,
        defaultScenarios,
        selectScenarios,
    )

    params = QUICK if args.quick else FULL
    if args.reps is not None and args.reps < 1:
        err.write("--reps must be at least 1\n")
        return 2
    if args.spawns is not None and args.spawns < 1:
        err.write("--spawns must be at least 1\n")
        return 2
    if args.idle is not None and args.idle < 0:
        err.write("--idle must be at least 0\n")
        return 2
    if args.reps is not None or args.idle is not None or args.spawns is not None:
        params = attrs.evolve(
            params,
            mode=f"{params.mode}, custom",
            reps=params.reps if args.reps is None else args.reps,
            idle=params.idle if args.idle is None else args.idle,
            spawnCount=params.spawnCount if args.spawns is None else args.spawns,
            idleSpawnCount=(
                params.idleSpawnCount if args.spawns is None else args.spawns
            ),
        )
    try:
        if not args.scenario:
            scenarios = defaultScenarios()
        else:
            scenarios = selectScenarios(args.scenario)
    except ValueError as e:
        err.write(f"--scenario: {e}\n")
        return 2
    only: Sequence[str] = args.only or IMPLEMENTATIONS
    options = BenchOptions(
        params,
        scenarios,
        engine=args.engine,
        monitor=args.monitor,
        compiler=args.cc,
        implementations=[i for i in IMPLEMENTATIONS if i in only],
    )

    def log(line: str) -> None:
        err.write(line + "\n")
        err.flush()

    result = runBench(options, log)
    out.write(formatReport(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(toJSON(result), f, indent=1)
            f.write("\n")
    return 0
