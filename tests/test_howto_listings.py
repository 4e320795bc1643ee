"""
The how-to listings under C{docs/howto/listings/} run, and do what their
pages say: each is imported from its file and its C{main(reactor)} run on a
txspawn reactor (every engine x monitor), so the examples cannot rot.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import unittest
from types import ModuleType
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses

LISTINGS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "docs",
    "howto",
    "listings",
)


def loadListing(name: str) -> ModuleType:
    """
    Import C{docs/howto/listings/<name>.py} under a private module name.
    """
    path = os.path.join(LISTINGS, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_txspawn_listing_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ListingsMixin(MixinBase):
    """
    Each listing's C{main(reactor)} succeeds on a real reactor.
    """

    def runListing(self, name: str) -> tuple[Any, str]:
        """
        Run the listing C{name}'s C{main} in a fresh reactor.

        @return: What C{main}'s Deferred fired with, and what it printed.
        """
        module = loadListing(name)
        reactor = self.buildReactor()
        outcome: list[Any] = []
        printed = io.StringIO()

        def begin() -> None:
            with contextlib.redirect_stdout(printed):
                d: Deferred[Any] = module.main(reactor)
            d.addBoth(outcome.append)
            d.addBoth(lambda ignored: reactor.stop())

        with contextlib.redirect_stdout(printed):
            reactor.callWhenRunning(begin)
            self.runReactor(reactor)
        self.assertEqual(len(outcome), 1)
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return outcome[0], printed.getvalue()

    def test_runBasic(self) -> None:
        """
        C{run_basic.py} feeds stdin and prints the upper-cased output.
        """
        result, printed = self.runListing("run_basic")
        self.assertEqual(result.stdout, b"HELLO, WORLD\n")
        self.assertIn("stdout: HELLO, WORLD", printed)
        self.assertIn("max RSS", printed)

    def test_runTimeout(self) -> None:
        """
        C{run_timeout.py} times one child out and cancels another.
        """
        outcomes, printed = self.runListing("run_timeout")
        self.assertEqual(outcomes, ["timed out", "cancelled"])
        self.assertIn("was killed by SIGKILL", printed)

    def test_streamLines(self) -> None:
        """
        C{stream_lines.py} prints each line as it arrives, tagged.
        """
        seen, printed = self.runListing("stream_lines")
        self.assertEqual(
            seen,
            [("stdout", f"step {i}\n".encode()) for i in range(5)]
            + [("stderr", b"done\n")],
        )
        self.assertIn("[stdout] step 4", printed)

    def test_streamCallback(self) -> None:
        """
        C{stream_callback.py} streams 16 MiB to a slow callback with a
        bounded queue.
        """
        stats, _ = self.runListing("stream_callback")
        self.assertEqual(stats["total"], 16 * 1024 * 1024)
        self.assertGreater(stats["pauses"], 0)
        self.assertLessEqual(stats["maxQueued"], 128 * 1024 + stats["largestRead"])

    def test_teeLog(self) -> None:
        """
        C{tee_log.py} writes prefixed lines of both runs to its log.
        """
        log, _ = self.runListing("tee_log")
        names = [line.split(b" ", 2)[1] for line in log.splitlines()]
        self.assertEqual(names.count(b"stdout:"), 4)
        self.assertEqual(names.count(b"stderr:"), 2)


globals().update(makeTestCaseClasses(ListingsMixin))


class TestingListingTests(SynchronousTestCase):
    """
    C{testing_fakes.py}: the example tests pass.
    """

    def test_exampleTestsPass(self) -> None:
        """
        The three example tests built on the fakes pass.
        """
        module = loadListing("testing_fakes")
        suite = unittest.TestLoader().loadTestsFromTestCase(module.CountWordsTests)
        result = unittest.TestResult()
        suite.run(result)
        self.assertEqual((result.errors, result.failures), ([], []))
        self.assertEqual(result.testsRun, 3)
