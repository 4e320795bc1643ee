# -*- test-case-name: tests.test_twisted_conformance -*-
"""
Twisted's own reactor-process tests, run against txspawn's reactors.

C{twisted.internet.test.test_process} defines its tests in
C{ReactorBuilder} subclasses; pointing their C{_reactors} at txspawn's four
reactor classes and calling C{makeTestCaseClasses()} runs every one of
them (pipes and PTYs, env semantics, fd hygiene, signals, exit reasons)
through txspawn.  The reactors are built with no arguments, so the engine
and monitor follow C{TXSPAWN_ENGINE} / C{TXSPAWN_MONITOR} (CI runs this
module once per monitor).

C{twisted.internet.test.test_posixprocess} has no C{ReactorBuilder}: its
tests exercise Twisted's private fd-listing helpers without any reactor, so
there is nothing to point at txspawn; C{.ci/twisted_suites.sh} runs it
under C{--reactor=txspawn} anyway.  The global-reactor suite
C{twisted.test.test_process} is run by L{tests.twisted_global_suite}.

Only the builder classes are imported, by name: C{import *} would drag
Twisted's own generated classes (stock reactors) into this module.
Excluded tests are in L{tests.twisted_exclusions}, each with its reason.

C{test_changeUID} runs its child, C{sys.executable}, as uid 1.  An
interpreter under a directory other users cannot enter (a pyenv build in
root's home) cannot be executed by that child, with stock Twisted as with
txspawn, so where L{_uidChangeBlocker} finds that, the test is skipped with
that reason.  C{.ci/twisted_suites.sh} runs this module with an interpreter
every user can execute (C{tools/test.sh} makes a venv from the
distribution's C{/usr/bin/python3}) and checks that first, so there the
test always runs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from typing import Any

from twisted.internet.test.test_process import (
    ProcessTestsBuilder as _TwistedProcessTestsBuilder,
)
from twisted.internet.test.test_process import (
    PTYProcessTestsBuilder as _TwistedPTYProcessTestsBuilder,
)
from twisted.trial.unittest import SynchronousTestCase

from tests.twisted_exclusions import applyExclusions, skipped, unusedExclusions
from txspawn._monitor.orphans import orphanCount, reapPendingOrphans
from txspawn._reactor.asyncioreactor import AsyncioSelectorReactor

__all__ = [
    "TXSPAWN_REACTORS",
    "ExclusionListTests",
    "PTYProcessTestsBuilder",
    "ProcessTestsBuilder",
]

TXSPAWN_REACTORS = [
    "txspawn.reactor.EPollReactor",
    "txspawn.reactor.PollReactor",
    "txspawn.reactor.SelectReactor",
    "txspawn.reactor.AsyncioSelectorReactor",
]

_TWISTED_MODULE = "twisted.internet.test.test_process"


class _TxspawnBuilderMixin:
    """
    What every txspawn-pointed builder adds to Twisted's: closing the
    reactor's epoll fd, and the asyncio event loop an
    L{AsyncioSelectorReactor} created for itself.

    Twisted's own builder uses a test-only factory that closes the loop; the
    real reactor class (which is what we test) leaves its loop open, as
    Twisted's does.  Neither closes an epoll reactor's poller: left to the
    garbage collector, it would be closed in the middle of some later test,
    whose fd-hygiene check would then see an fd vanish that it never
    touched.
    """

    def _unbuildReactor(self, reactor: Any) -> None:
        super()._unbuildReactor(reactor)  # type: ignore[misc]
        close = getattr(getattr(reactor, "_poller", None), "close", None)
        if close is not None:
            close()
        if isinstance(reactor, AsyncioSelectorReactor):
            loop = reactor._asyncioEventloop
            if not loop.is_running() and not loop.is_closed():
                loop.close()
            asyncio.set_event_loop(None)
        _awaitOrphans()


#: How long a Twisted test's orphaned children get to exit once its reactor
#: is gone (they are told to: their pipes are closed).
ORPHAN_GRACE = 30.0


def _awaitOrphans() -> None:
    """
    Wait until txspawn's orphan reaper has reaped every child that a test's
    reactor left running.

    Some of Twisted's tests stop their reactor with a child still alive
    (C{test_pauseAndResumeProducing}, for one); txspawn hands it to the
    background orphan reaper, which closes its pidfd when it exits.  Left
    alone, that close lands in a later test and changes the fd set that
    test's hygiene check compares exactly.  Waiting here keeps each test's
    background work inside the test.

    @raise AssertionError: if a child is still alive after
        L{ORPHAN_GRACE} seconds.
    """
    reapPendingOrphans()
    deadline = time.monotonic() + ORPHAN_GRACE
    for thread in threading.enumerate():
        if thread.name == "txspawn-orphan-reaper":
            thread.join(max(0.0, deadline - time.monotonic()))
    if orphanCount():
        raise AssertionError(
            f"{orphanCount()} children of this test's reactor still running "
            f"{ORPHAN_GRACE:.0f} s after it stopped"
        )


class ProcessTestsBuilder(_TxspawnBuilderMixin, _TwistedProcessTestsBuilder):
    """
    Twisted's non-PTY C{IReactorProcess} tests on txspawn's reactors.
    """

    _reactors = TXSPAWN_REACTORS


class PTYProcessTestsBuilder(_TxspawnBuilderMixin, _TwistedPTYProcessTestsBuilder):
    """
    Twisted's PTY C{IReactorProcess} tests on txspawn's reactors.
    """

    _reactors = TXSPAWN_REACTORS


def _uidChangeBlocker() -> str | None:
    """
    Why a child running as uid 1 cannot execute this interpreter, found by
    trying it, or L{None} if it can (or if we are not root, where Twisted
    skips its uid tests itself).
    """
    if os.getuid() != 0:
        return None
    try:
        subprocess.run(
            [sys.executable, "-c", ""],
            user=1,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        return (
            f"uid 1 cannot run this interpreter, {sys.executable} ({e}): a "
            "directory on its path is closed to other users. "
            ".ci/twisted_suites.sh runs this test with an interpreter every "
            "user can execute"
        )
    return None


def _generate() -> dict[str, type]:
    """
    The generated test classes, with the exclusions applied.
    """
    generated: dict[str, type] = {}
    uidBlocker = _uidChangeBlocker()
    for builder, twistedName in [
        (ProcessTestsBuilder, f"{_TWISTED_MODULE}.ProcessTestsBuilder"),
        (PTYProcessTestsBuilder, f"{_TWISTED_MODULE}.PTYProcessTestsBuilder"),
    ]:
        for name, cls in builder.makeTestCaseClasses().items():
            generated[name] = applyExclusions(cls, twistedName)
            if uidBlocker is not None:
                original = getattr(cls, "test_changeUID")  # noqa: B009
                setattr(  # noqa: B010
                    cls,
                    "test_changeUID",
                    skipped("test_changeUID", uidBlocker, original),
                )
    return generated


globals().update(_generate())


class ExclusionListTests(SynchronousTestCase):
    """
    The generated classes really test txspawn, and the exclusion list stays
    honest.
    """

    def test_reactorsAreTxspawns(self) -> None:
        """
        One class per builder and txspawn reactor is generated, and each
        builds that txspawn reactor class, not one of Twisted's.
        """
        from twisted.python.reflect import namedAny

        for builder in ("ProcessTestsBuilder", "PTYProcessTestsBuilder"):
            for fqpn in TXSPAWN_REACTORS:
                short = fqpn.rsplit(".", 1)[1]
                cls = globals()[f"{builder}_{short}Tests"]
                self.assertIs(cls.reactorFactory, namedAny(fqpn))
                self.assertFalse(hasattr(cls, "skip"), cls)

    def test_everyEntryUsed(self) -> None:
        """
        Every exclusion for C{twisted.internet.test.test_process} names a
        test that exists and was skipped here.
        """
        self.assertEqual(unusedExclusions([_TWISTED_MODULE]), [])

    def test_reasonGiven(self) -> None:
        """
        A skipped Twisted test carries its exclusion's reason.
        """
        from tests.twisted_exclusions import EXCLUSIONS

        cls = globals()["ProcessTestsBuilder_EPollReactorTests"]
        self.assertEqual(
            cls.test_errorDuringExec.skip,
            EXCLUSIONS[f"{_TWISTED_MODULE}.ProcessTestsBuilder.test_errorDuringExec"],
        )
