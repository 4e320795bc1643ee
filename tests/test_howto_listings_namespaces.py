"""
The listings of the namespaces how-to (C{docs/howto/namespaces.rst}) run on
every engine x monitor and do what the page says.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, cast

from tests.builders import MixinBase, makeTestCaseClasses
from tests.test_howto_listings import ListingsMixin
from txspawn._kernel.nsprobe import PROC, probeNamespaces


def _unavailable(*names: str) -> str | None:
    """
    Why this machine cannot give a listing the namespaces it needs, from
    the real probe (as C{python -m txspawn info} reports it), or C{None}.
    """
    return probeNamespaces().unavailable(*names)


class NamespaceListingsMixin(MixinBase):
    """
    Each listing's C{main(reactor)} succeeds on a real reactor.
    """

    def runListing(self, name: str, *needs: str) -> tuple[Any, str]:
        """
        L{ListingsMixin.runListing}, borrowed; skipped with the probe's
        reason where the namespaces it C{needs} do not work here.
        """
        reason = _unavailable(*needs)
        if reason is not None:
            raise self.skipTest(reason)
        return ListingsMixin.runListing(cast(Any, self), name)

    def test_buildStep(self) -> None:
        """
        C{ns_build_step.py} builds in a tmpfs as root of its namespaces, as
        pid 2 under txspawn's init; the artifact (bytecode) comes back on
        stdout, and the work dir never had anything in it outside.
        """
        result, printed = self.runListing("ns_build_step", "user", "mount", "pid", PROC)
        self.assertEqual(result["leftovers"], [])
        self.assertIn("build: pid 2, uid 0, pid 1: txspawn-init", result["log"])
        self.assertTrue(result["artifact"].startswith(importlib.util.MAGIC_NUMBER))
        self.assertIn("work dir seen from outside: []", printed)

    def test_offlineTests(self) -> None:
        """
        C{ns_offline_tests.py}'s tests pass: 127.0.0.1 works, and another
        address is unreachable at once (C{ENETUNREACH}).
        """
        result, printed = self.runListing("ns_offline_tests", "user", "net")
        stderr = result.stderr.decode()
        self.assertEqual(result.exitCode, 0, stderr)
        self.assertIn("test_loopback (test_offline.OfflineTests", stderr)
        self.assertIn("test_noOutside (test_offline.OfflineTests", stderr)
        self.assertIn("Ran 2 tests", stderr)
        self.assertIn("exited with code 0", printed)

    def test_container(self) -> None:
        """
        C{ns_container.py}'s child has its own hostname and sees exactly
        its own processes: txspawn's init as pid 1, the command as pid 2
        and the command's child as pid 3.
        """
        table, printed = self.runListing(
            "ns_container", "user", "pid", "mount", "uts", "ipc", PROC
        )
        command = os.path.basename(sys.executable)[:15]
        self.assertEqual(
            table, [(1, 0, "txspawn-init"), (2, 1, command), (3, 2, "sleep")]
        )
        self.assertIn("hostname: sandbox\n", printed)


globals().update(makeTestCaseClasses(NamespaceListingsMixin))
