# -*- test-case-name: tests.twisted_global_suite -*-
"""
Twisted's global-reactor process suite, C{twisted.test.test_process}, with
txspawn's exclusions applied.

Run it on a txspawn reactor::

    trial --reactor=txspawn tests.twisted_global_suite

(C{.ci/twisted_suites.sh} does, once per monitor.)  Each C{TestCase} of
Twisted's module is re-exported here as a subclass of the same name, with
the tests listed in L{tests.twisted_exclusions} skipped with their reason;
Twisted's classes themselves are not touched.  L{GlobalReactorIsTxspawn}
fails when the suite runs on any other reactor, so a run without
C{--reactor=txspawn} cannot pass for a txspawn run.

The module name deliberately does not start with C{test_}: C{trial tests}
and C{pytest} do not collect it, because on their default reactor it would
only re-run Twisted's suite against stock Twisted.
"""

from __future__ import annotations

import inspect

from twisted.test import test_process as _twistedSuite
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.twisted_exclusions import applyExclusions, unusedExclusions

__all__ = ["GlobalReactorIsTxspawn"]

_TWISTED_MODULE = _twistedSuite.__name__


def _wrapTwistedTestCases() -> dict[str, type]:
    """
    One subclass per C{TestCase} defined in Twisted's module, named like it
    and with the exclusions applied.
    """
    wrapped: dict[str, type] = {}
    for name, cls in vars(_twistedSuite).items():
        if not (
            inspect.isclass(cls)
            and issubclass(cls, (TestCase, SynchronousTestCase))
            and cls.__module__ == _TWISTED_MODULE
        ):
            continue
        subclass = type(name, (cls,), {"__module__": __name__})
        wrapped[name] = applyExclusions(subclass, f"{_TWISTED_MODULE}.{name}")
    return wrapped


globals().update(_wrapTwistedTestCases())


class GlobalReactorIsTxspawn(SynchronousTestCase):
    """
    The suite above really ran on txspawn, with every exclusion in use.
    """

    def test_reactor(self) -> None:
        """
        The global reactor is one of txspawn's reactor classes.
        """
        from twisted.internet import reactor

        from txspawn._reactor.mixin import SpawnReactorMixin

        self.assertIsInstance(reactor, SpawnReactorMixin)

    def test_everyEntryUsed(self) -> None:
        """
        Every exclusion for C{twisted.test.test_process} names a test that
        exists and was skipped here.
        """
        self.assertEqual(unusedExclusions([_TWISTED_MODULE]), [])
