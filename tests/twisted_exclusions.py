# -*- test-case-name: tests.test_twisted_conformance -*-
"""
The one list of Twisted process tests that are not run against txspawn.

Twisted's own process suites (C{twisted.test.test_process} on the global
reactor, C{twisted.internet.test.test_process} through its
C{ReactorBuilder}) are the executable form of the contract txspawn keeps.
A test may be excluded for one reason only, which its entry spells out:
L{PRIVATE}, it reaches into Twisted's private spawning machinery (patches
C{os.execvpe}, sets C{reactor._neverUseSpawn}, inspects
C{twisted.internet.process.reapProcessHandlers} or C{_listOpenFDs}), which a
different backend does not have by design.  Twisted's procmon suite
(C{twisted.runner.test.test_procmon}, run against
L{txspawn.supervise.procmon.ProcessMonitor} by
L{tests.twisted_procmon_suite}) admits one more: L{FIRE_AND_FORGET}, the
test asserts procmon's stop that does not wait for the children (a
C{stopService} returning C{None}, a child left running after it), which
txspawn's monitor replaces by design.  A test that fails on a machine
for a reason outside txspawn is fixed where it fails (the environment), never
listed here.

Keys are C{"<Twisted module>.<Twisted class>.<test method>"} (or just
C{"<Twisted module>.<Twisted class>"} to skip a whole class): the class is
the C{ReactorBuilder} subclass (C{ProcessTestsBuilder},
C{PTYProcessTestsBuilder}) or the C{TestCase} (C{PosixProcessTests}, ...)
as Twisted names it, so one entry covers that test on every txspawn
reactor.  L{applyExclusions} turns each entry into a C{skip} carrying its
reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.trial.unittest import SkipTest

__all__ = [
    "EXCLUSIONS",
    "FIRE_AND_FORGET",
    "PRIVATE",
    "applyExclusions",
    "skipped",
    "unusedExclusions",
]

PRIVATE = "reaches into Twisted's private spawning machinery"
FIRE_AND_FORGET = (
    "asserts procmon's fire-and-forget stop, which txspawn's ProcessMonitor "
    "replaces by a stop that waits for every child's tree"
)

_INTERNET = "twisted.internet.test.test_process"
_GLOBAL = "twisted.test.test_process"

_ERROR_DURING_EXEC = (
    f"{PRIVATE}: patches os.execvpe (and sets reactor._neverUseSpawn) to make "
    "Twisted's fork path format a traceback in the child; txspawn never runs "
    "Python between fork and exec, and reports exec failures synchronously as "
    "SpawnError (see docs/design/compatibility.rst)"
)

EXCLUSIONS: Mapping[str, str] = {
    # --- twisted.internet.test.test_process (ReactorBuilder) -------------
    f"{_INTERNET}.ProcessTestsBuilder.test_errorDuringExec": _ERROR_DURING_EXEC,
    f"{_INTERNET}.PTYProcessTestsBuilder.test_errorDuringExec": _ERROR_DURING_EXEC,
    # --- twisted.test.test_process (global reactor) ----------------------
    # A whole class: its setUp replaces twisted.internet.process's os, fcntl,
    # sys, pty, signal and fdesc with MockOS, patches
    # Process._trySpawnInsteadOfFork and resets reapProcessHandlers, then
    # calls reactor.spawnProcess expecting Twisted's own Process to run on
    # the mocks.  On a txspawn reactor, spawnProcess never reaches that
    # module, so the mocks see nothing (22 of 22 tests fail on that, e.g.
    # test_mockFork: SpawnFileNotFoundError for '/mock/ouch', a real exec).
    f"{_GLOBAL}.MockProcessTests": (
        f"{PRIVATE}: MockOS replaces twisted.internet.process's os/fcntl/sys/"
        "pty/signal and Process._trySpawnInsteadOfFork, and the tests assert "
        "on the calls Twisted's own Process makes on those mocks"
    ),
    f"{_GLOBAL}.PosixProcessTests.test_executionError": (
        f"{PRIVATE}: replaces os.execvpe and sets reactor._neverUseSpawn to "
        "check the traceback Twisted's fork path writes from the child"
    ),
    f"{_GLOBAL}.PosixProcessPTYTests.test_executionError": (
        f"{PRIVATE}: replaces os.execvpe and sets reactor._neverUseSpawn to "
        "check the traceback Twisted's fork path writes from the child"
    ),
    f"{_GLOBAL}.PosixProcessTests.test_errorInProcessEnded": (
        f"{PRIVATE}: asserts the transport's pid is in "
        "twisted.internet.process.reapProcessHandlers; txspawn keeps its "
        "children in a per-reactor monitor, never in Twisted's global registry"
    ),
    f"{_GLOBAL}.PosixProcessPTYTests.test_errorInProcessEnded": (
        f"{PRIVATE}: asserts the transport's pid is in "
        "twisted.internet.process.reapProcessHandlers; txspawn keeps its "
        "children in a per-reactor monitor, never in Twisted's global registry"
    ),
    # --- twisted.runner.test.test_procmon (txspawn.supervise.procmon) ----
    # None: all 36 tests pass against txspawn's ProcessMonitor.  They drive
    # it through Twisted's fake process reactor, where it signals as procmon
    # does, and none looks at what stopService returns (a Deferred here,
    # None in procmon).  An entry here needs FIRE_AND_FORGET (or PRIVATE:
    # procmon's private machinery) as its reason.
}


def skipped(name: str, reason: str, original: Callable[..., Any]) -> Any:
    """
    A replacement test method that is skipped with C{reason}.

    Trial reads the C{skip} attribute before running the method; the body
    raises L{SkipTest} too, for runners that call it anyway.
    """

    def test(self: object) -> None:
        raise SkipTest(reason)

    test.__name__ = name
    test.__qualname__ = name
    test.__doc__ = original.__doc__
    test.skip = reason  # type: ignore[attr-defined]
    return test


_applied: set[str] = set()


def applyExclusions(cls: type, twistedName: str) -> type:
    """
    Skip, on C{cls}, every test the exclusion list names for C{twistedName}
    (or the whole class, for an entry naming just the class).

    C{cls} must be a subclass owned by the caller (a generated
    C{ReactorBuilder} class or a subclass of a Twisted C{TestCase}): the
    skipped methods are set on it, never on Twisted's classes.

    @param cls: The class to change.
    @param twistedName: The fully qualified Twisted class name the keys use,
        e.g. C{"twisted.internet.test.test_process.ProcessTestsBuilder"}.
    @return: C{cls}.
    @raise AttributeError: an entry names a method C{cls} does not have (the
        list is stale: fix it rather than let it silently cover nothing).
    """
    for key, reason in EXCLUSIONS.items():
        if key == twistedName:
            cls.skip = reason  # type: ignore[attr-defined]
            _applied.add(key)
            continue
        owner, _, methodName = key.rpartition(".")
        if owner != twistedName:
            continue
        original = getattr(cls, methodName)
        setattr(cls, methodName, skipped(methodName, reason, original))
        _applied.add(key)
    return cls


def unusedExclusions(prefixes: Iterable[str]) -> list[str]:
    """
    The entries under any of C{prefixes} that no L{applyExclusions} call has
    used so far (a stale or misspelt entry).

    @param prefixes: Twisted module names whose entries should all be used.
    """
    return sorted(
        key
        for key in EXCLUSIONS
        if key not in _applied
        and any(key.startswith(prefix + ".") for prefix in prefixes)
    )
