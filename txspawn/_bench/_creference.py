# -*- test-case-name: tests.test_bench -*-
"""
Compile the C reference loop (C{reference.c}, shipped as package data).

The reference is compiled at bench time, with the machine's own C compiler
(C{$CC}, else C{cc}) and C{-O2}, into a directory the caller owns.  Without
a compiler the benchmark still runs: the C column is skipped and the report
says why.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from importlib import resources

from attrs import frozen

__all__ = ["CReference", "buildReference", "referenceSource"]


@frozen
class CReference:
    """
    The outcome of building the reference.

    @ivar binary: The compiled program's path, or C{None} if it could not
        be built.
    @ivar reason: Why it could not be built, or the compiler command used.
    """

    binary: str | None
    reason: str


def referenceSource() -> str:
    """
    @return: The C source text of the reference loop.
    """
    return resources.files("txspawn._bench").joinpath("reference.c").read_text("utf-8")


def buildReference(directory: str, compiler: str | None = None) -> CReference:
    """
    Compile the reference into C{directory}.

    @param directory: An existing directory to write the source and the
        binary to.
    @param compiler: The compiler command (split like a shell word list);
        C{None} for C{$CC}, else C{cc}.
    @return: A L{CReference}; never raises for a missing or failing
        compiler (the reason is in the result).
    """
    command = shlex.split(compiler or os.environ.get("CC") or "cc")
    if not command or shutil.which(command[0]) is None:
        name = command[0] if command else "(empty)"
        return CReference(None, f"no C compiler: {name!r} not found on PATH")
    source = os.path.join(directory, "reference.c")
    binary = os.path.join(directory, "reference")
    with open(source, "w", encoding="utf-8") as f:
        f.write(referenceSource())
    argv = [*command, "-O2", "-std=gnu11", "-o", binary, source]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return CReference(None, f"{shlex.join(argv)} failed: {e}")
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        return CReference(
            None,
            f"{shlex.join(argv)} exited {result.returncode}: " + " / ".join(tail),
        )
    return CReference(binary, f"{shlex.join(command)} -O2")
