"""
The listings of the process-groups and exit-details how-tos
(C{docs/howto/process-groups.rst}, C{docs/howto/exit-details.rst}) run on
every engine x monitor and do what their pages say.
"""

from __future__ import annotations

import re
from typing import Any, cast

from tests.builders import MixinBase, makeTestCaseClasses
from tests.test_howto_listings import ListingsMixin


class GroupListingsMixin(MixinBase):
    """
    Each listing's C{main(reactor)} succeeds on a real reactor.
    """

    def runListing(self, name: str) -> tuple[Any, str]:
        """
        L{ListingsMixin.runListing}, borrowed (subclassing would collect
        that mixin's tests a second time).
        """
        return ListingsMixin.runListing(cast(Any, self), name)

    def test_groupTerminate(self) -> None:
        """
        C{group_terminate.py} takes down a shell and its SIGTERM-ignoring
        children: the shell dies of the escalation's SIGKILL.
        """
        result, printed = self.runListing("group_terminate")
        self.assertEqual(result, "killed by 9")
        self.assertIn("leader and group:", printed)

    def test_timeoutTree(self) -> None:
        """
        C{timeout_tree.py} times the command out.
        """
        result, printed = self.runListing("timeout_tree")
        self.assertTrue(result)
        self.assertIn("timed out: True - signal: 15", printed)

    def test_closePipes(self) -> None:
        """
        C{close_pipes.py} ends although the daemon holds stdout, with the
        output written before the exit.
        """
        result, printed = self.runListing("close_pipes")
        self.assertEqual(result, b"daemon started\n")
        self.assertIn("ended: ProcessDone", printed)

    def test_exitDetails(self) -> None:
        """
        C{exit_details.py} sees the stop, the continue, the listener and
        the rusage; the listener names the child that ended by the pid it
        was started with.
        """
        result, printed = self.runListing("exit_details")
        self.assertGreater(result, 0)
        started = re.search(r"^worker started: pid (\d+)$", printed, re.MULTILINE)
        assert started is not None, printed
        self.assertIn("worker stopped by signal 20", printed)
        self.assertIn("worker continued", printed)
        self.assertIn(f"listener: pid {started.group(1)} ended", printed)
        self.assertIn("max RSS", printed)


globals().update(makeTestCaseClasses(GroupListingsMixin))
