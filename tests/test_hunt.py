# -*- test-case-name: tests.test_hunt -*-
"""
Tests for C{tools/hunt.py}, the flaky-test hunt: how it reads trial's and
pytest's reports, what it plans to run, and its summary table.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

__all__ = ["HuntTests"]

_PATH = Path(__file__).resolve().parent.parent / "tools" / "hunt.py"


def _loadHunt() -> ModuleType:
    """
    Import C{tools/hunt.py}, which is a script, not part of a package.
    """
    spec = importlib.util.spec_from_file_location("_txspawn_hunt", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hunt = _loadHunt()

TRIAL_OUTPUT = """\
Running tests shuffled with seed 42

tests.test_a
  ATests
    test_one ...                                                   [FAIL]
===============================================================================
[FAIL]
Traceback (most recent call last):
  File "tests/test_a.py", line 3, in test_one
twisted.trial.unittest.FailTest: 1 != 2

tests.test_a.ATests.test_one
===============================================================================
[ERROR]
Traceback (most recent call last):
builtins.StopIteration:

tests.test_b.BTests.test_two
tests.test_b.BTests.test_three
===============================================================================
[SKIPPED]
not here

tests.test_c.CTests.test_four
-------------------------------------------------------------------------------
Ran 4 tests in 0.1s

FAILED (skips=1, failures=1, errors=2)
"""


class HuntTests(SynchronousTestCase):
    """
    The hunt's parsing, planning and reporting.
    """

    def test_trialFailures(self) -> None:
        """
        The ids under trial's C{[FAIL]} and C{[ERROR]} blocks are the
        failures; those under C{[SKIPPED]} are not.
        """
        self.assertEqual(
            hunt.trialFailures(TRIAL_OUTPUT),
            [
                "tests.test_a.ATests.test_one",
                "tests.test_b.BTests.test_two",
                "tests.test_b.BTests.test_three",
            ],
        )

    def test_planSeeds(self) -> None:
        """
        The runs' seeds are drawn from C{--seed}, so one hunt can be
        repeated exactly; each seeded trial run is paired with a pytest run
        of the same seed, and the parallel runs use C{-j2}.
        """
        args = argparse.Namespace(
            seeded=2,
            parallel=1,
            seed=7,
            no_pytest=False,
            python="python",
        )
        first = hunt.plan(args, Path("/tmp/logs"))
        again = hunt.plan(args, Path("/tmp/logs"))
        self.assertEqual([r.command for r in first], [r.command for r in again])
        self.assertEqual(
            [r.kind for r in first],
            [
                "seeded trial",
                "seeded pytest",
                "seeded trial",
                "seeded pytest",
                "trial -j2",
            ],
        )
        self.assertEqual(first[0].seed, first[1].seed)
        self.assertIn(f"--random={first[0].seed}", first[0].command)
        self.assertIn(f"--randomly-seed={first[1].seed}", first[1].command)
        self.assertIn("-j2", first[4].command)

    def test_table(self) -> None:
        """
        The table has a row per run and says how many failed, with the
        command that re-runs each failure.
        """
        passed = hunt.Run("seeded trial", 1, ["trial", "tests"], Path("a"))
        passed.passed = True
        failed = hunt.Run("trial -j2", 2, ["trial", "-j2", "tests"], Path("b"))
        failed.failures = ["tests.test_a.ATests.test_one"]
        text = hunt.table([passed, failed])
        self.assertIn("2 runs, 1 failed", text)
        self.assertIn("re-run: trial -j2 tests", text)
        self.assertIn("FAILED", text)
        self.assertIn("tests.test_a.ATests.test_one", text)
