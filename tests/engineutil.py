# -*- test-case-name: tests.test_engines,tests.test_pyspawn,tests.test_cspawn -*-
"""
Helpers for the tests that drive a spawn engine directly (no reactor):
plans built without the planner, the C{report.py} child, waiting for a
child, and a Python that a child running as nobody can execute.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from typing import Any

from txspawn._plan.plan import SpawnPlan

__all__ = [
    "BASE_ENV",
    "NOBODY",
    "PYTHON",
    "REPORT",
    "makePlan",
    "othersCanExecute",
    "pythonForAnyUser",
    "sigbits",
    "waitExit",
]

HERE = os.path.dirname(os.path.abspath(__file__))
#: The child that describes its own world as JSON.
REPORT = os.path.join(HERE, "helpers", "report.py").encode()
# PYTHONCOERCECLOCALE=0 stops the child interpreter from adding LC_CTYPE to
# its own environment, so the reported environment is exactly the plan's.
BASE_ENV = (b"PYTHONCOERCECLOCALE=0", b"TXSPAWN_TEST=1")
#: The uid (and gid) of nobody.
NOBODY = 65534
#: This interpreter: the default program of L{makePlan}.
PYTHON = sys.executable.encode()


def othersCanExecute(path: str) -> bool:
    """
    Whether a user other than the owner (such as nobody) can execute
    C{path}: every directory on the way searchable and the file executable
    by "others".
    """
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    for end in range(2, len(parts) + 1):
        try:
            mode = os.stat(os.sep.join(parts[:end]) or os.sep).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def pythonForAnyUser() -> str | None:
    """
    A Python interpreter of this version that any uid, nobody included, can
    run (this venv's may live under a private home directory), or L{None}.
    Children that drop to nobody run C{report.py}, which needs only the
    stdlib, with it.
    """
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (
        sys.executable,
        shutil.which(version),
        f"/usr/bin/{version}",
        f"/usr/local/bin/{version}",
    ):
        if candidate and os.path.exists(candidate) and othersCanExecute(candidate):
            return candidate
    return None


def makePlan(
    executable: bytes = PYTHON,
    argv: tuple[bytes, ...] | None = None,
    candidates: tuple[bytes, ...] | None = None,
    envp: tuple[bytes, ...] = BASE_ENV,
    **kwargs: Any,
) -> SpawnPlan:
    """
    A L{SpawnPlan} built directly: these tests are about engines, not the
    planner.

    @param executable: The program; also the only exec candidate and the
        whole C{argv} unless they are given.
    @param kwargs: The other L{SpawnPlan} fields.
    """
    return SpawnPlan(
        executable=executable,
        candidates=candidates if candidates is not None else (executable,),
        argv=argv if argv is not None else (executable,),
        envp=envp,
        **kwargs,
    )


def waitExit(pid: int) -> int:
    """
    Wait for C{pid} and return its exit code (a signal death is an error).
    """
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"child died with status {status:#x}"
    return os.WEXITSTATUS(status)


def sigbits(*signals: int) -> int:
    """
    The C{/proc/self/status} bit mask of C{signals}.
    """
    mask = 0
    for s in signals:
        mask |= 1 << (s - 1)
    return mask
