# -*- test-case-name: tests.test_supervise_service -*-
"""
Helpers for the tests of L{txspawn.supervise.SupervisorService} on
L{txspawn.testing.MemoryProcessReactor}: such a service opens its programs'
log files when it is built (an unwritable one is an error before anything
starts), and its fake children end only when the test plays their end, so
a test that does not stop it closes its logs with L{closeLogsAfter}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from txspawn.supervise import SupervisorService

__all__ = ["closeLogs", "closeLogsAfter", "openLogFiles"]


def closeLogs(service: SupervisorService) -> None:
    """
    Close the log files of every instance C{service} has now (closing
    closed logs does nothing).
    """
    for instance in service.instances("all"):
        service.logsOf(instance.name).close()


def closeLogsAfter(case: SynchronousTestCase, service: SupervisorService) -> None:
    """
    Close the log files of every instance C{service} has once the test is
    over (those it has then: a reload or a start again replaces some).
    """
    case.addCleanup(closeLogs, service)


def openLogFiles(service: SupervisorService) -> set[str]:
    """
    The log files of C{service}'s instances that this process has a file
    descriptor open on.
    """
    logFiles = {
        os.path.realpath(path)
        for instance in service.instances("all")
        for path in service.logsOf(instance.name).paths.values()
    }
    opened = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            opened.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            # The fd listdir itself used, closed since.
            pass
    return logFiles & opened
