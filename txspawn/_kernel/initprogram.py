# -*- test-case-name: tests.test_init -*-
"""
Where txspawn's init program is: the small C program that is pid 1 of a
child's pid namespace (C{Namespaces(pid=True)} with the default
C{pidInit=True}).

C{setup.py} builds it from C{txspawn/_csrc/init.c} next to the C extension
and ships it in the package as C{txspawn/_libexec/txspawn-init}; that source
file documents the program and its protocol.  The engines exec it instead
of the command, and hand the read end of its status pipe to
L{txspawn._kernel.childhandle.ChildProcess} (C{statusFd}), which takes the
command's exact wait status from it: L{INIT_STATUS_SIZE} bytes, a native
C{int}.
"""

from __future__ import annotations

import os
import stat

from txspawn.errors import UnsupportedFeature

__all__ = [
    "FAILURE_FILE",
    "INIT_STATUS_SIZE",
    "PROGRAM",
    "checkedProgram",
    "initProgram",
    "initProgramProblem",
]

#: The size of what the init program writes on its status pipe: pid 2's raw
#: wait status, a native C{int}.
INIT_STATUS_SIZE = 4

#: The program, in the installed package (or in the checkout, after
#: C{pip install -e .}).
PROGRAM = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "_libexec",
    "txspawn-init",
)

#: Why C{setup.py} could not build it, when it could not.
FAILURE_FILE = os.path.join(os.path.dirname(PROGRAM), "build-failure.txt")

#: The path, once found usable: it is looked up for every spawn into a pid
#: namespace, and an installed package does not change under a running
#: process.  A problem is not remembered: a rebuild can fix it.
_found: list[bytes] = []


def initProgramProblem(
    program: str = PROGRAM, failureFile: str = FAILURE_FILE
) -> str | None:
    """
    Why the init program cannot be used here, or L{None} when it can.

    @param program: Where it should be.
    @param failureFile: Where C{setup.py} says why it could not build it.
    @return: The reason: the build failure C{setup.py} recorded, or what is
        wrong with the file.
    """
    try:
        info = os.stat(program)
    except OSError as e:
        try:
            with open(failureFile, encoding="utf-8", errors="replace") as f:
                recorded = f.read().strip()
        except OSError:
            recorded = ""
        if recorded:
            return recorded
        return (
            f"txspawn's init program ({program}) is missing ({e.strerror}): "
            "this txspawn was installed without building it; reinstall it "
            "with a C compiler available"
        )
    if not stat.S_ISREG(info.st_mode) or not os.access(program, os.X_OK):
        return f"txspawn's init program ({program}) is not an executable file"
    return None


def checkedProgram(program: str = PROGRAM, failureFile: str = FAILURE_FILE) -> bytes:
    """
    C{program}, checked to be an executable file (L{initProgramProblem}).

    @raise UnsupportedFeature: (naming C{"pidInit"}) if it is not; the
        reason says why, and how to do without it
        (C{Namespaces(pidInit=False)}: the command is then pid 1 itself).
    """
    problem = initProgramProblem(program, failureFile)
    if problem is not None:
        raise UnsupportedFeature(
            "pidInit",
            f"{problem} (Namespaces(pidInit=False) runs the command itself as "
            "pid 1 of its pid namespace)",
        )
    return os.fsencode(program)


def initProgram() -> bytes:
    """
    The absolute path of txspawn's init program, checked to be an
    executable file (once: then remembered).

    @raise UnsupportedFeature: (naming C{"pidInit"}) if it was not built or
        is not executable (see L{checkedProgram}).
    """
    if not _found:
        _found.append(checkedProgram())
    return _found[0]
