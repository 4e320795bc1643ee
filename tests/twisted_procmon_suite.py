# -*- test-case-name: tests.twisted_procmon_suite -*-
"""
Twisted's procmon suite, C{twisted.runner.test.test_procmon}, run against
L{txspawn.supervise.procmon}.

Run it with::

    trial --reactor=txspawn tests.twisted_procmon_suite

(C{.ci/twisted_suites.sh} does.)  Twisted's test module does C{from
twisted.runner.procmon import LoggingProtocol, ProcessMonitor}.  A private
copy of it is loaded here (from Twisted's own file) while the name
C{twisted.runner.procmon} resolves to L{txspawn.supervise.procmon}, so that
import gets txspawn's classes, exactly what a user's one-import switch
does; Twisted's modules in C{sys.modules} are left as they were.  Each
C{TestCase} of that copy is re-exported here as a subclass of the same
name, with the tests listed in L{tests.twisted_exclusions} skipped with
their reason.

The suite drives the monitor through Twisted's fake process reactor, so
txspawn's engine and monitor play no part: it is run once, not per engine.
L{SuiteTestsTxspawn} fails if the copy was not built against txspawn's
classes.

The module name does not start with C{test_}, so C{trial tests} and
C{pytest} do not collect it.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.twisted_exclusions import applyExclusions, unusedExclusions
from txspawn.supervise import procmon as _txspawnProcmon

__all__ = ["SuiteTestsTxspawn"]

_TWISTED_MODULE = "twisted.runner.test.test_procmon"
_PROCMON = "twisted.runner.procmon"


def _loadAgainstTxspawn() -> ModuleType:
    """
    A fresh copy of Twisted's procmon test module, whose import of
    C{twisted.runner.procmon} got L{txspawn.supervise.procmon}.
    """
    found = importlib.util.find_spec(_TWISTED_MODULE)
    assert found is not None and found.origin is not None
    spec = importlib.util.spec_from_file_location(f"{__name__}._twisted", found.origin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    missing = object()
    previous = sys.modules.get(_PROCMON, missing)
    sys.modules[_PROCMON] = _txspawnProcmon
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is missing:
            del sys.modules[_PROCMON]
        else:
            sys.modules[_PROCMON] = previous  # type: ignore[assignment]
    return module


_suite = _loadAgainstTxspawn()


def _wrapTwistedTestCases() -> dict[str, type]:
    """
    One subclass per C{TestCase} defined in the copy, named like it and
    with the exclusions applied.
    """
    wrapped: dict[str, type] = {}
    for name, cls in vars(_suite).items():
        if not (
            inspect.isclass(cls)
            and issubclass(cls, TestCase | SynchronousTestCase)
            and cls.__module__ == _suite.__name__
        ):
            continue
        subclass = type(name, (cls,), {"__module__": __name__})
        wrapped[name] = applyExclusions(subclass, f"{_TWISTED_MODULE}.{name}")
    return wrapped


globals().update(_wrapTwistedTestCases())


class SuiteTestsTxspawn(SynchronousTestCase):
    """
    The suite above really tested txspawn's classes, with every exclusion
    in use.
    """

    def test_classes(self) -> None:
        """
        The copy's C{ProcessMonitor} and C{LoggingProtocol} are txspawn's.
        """
        self.assertIs(_suite.ProcessMonitor, _txspawnProcmon.ProcessMonitor)
        self.assertIs(_suite.LoggingProtocol, _txspawnProcmon.LoggingProtocol)

    def test_twistedUntouched(self) -> None:
        """
        Twisted's own C{twisted.runner.procmon} still has Twisted's class.
        """
        from twisted.runner import procmon

        self.assertEqual(procmon.ProcessMonitor.__module__, _PROCMON)

    def test_everyEntryUsed(self) -> None:
        """
        Every exclusion for C{twisted.runner.test.test_procmon} names a test
        that exists and was skipped here.
        """
        self.assertEqual(unusedExclusions([_TWISTED_MODULE]), [])
