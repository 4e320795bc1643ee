"""
Build the optional C engine, C{txspawn._cspawn}.

All metadata lives in C{pyproject.toml}; this file only declares the
extension.  The build is optional: if compiling fails (no compiler, no
Python headers, not Linux), the install still succeeds without the
extension, the reason is printed, and it is written to
C{txspawn/_cbuild_failure.txt} so that C{python -m txspawn info} can say why
the C engine is off.

C{TXSPAWN_STRICT_BUILD=1} (CI sets it) compiles with C{-Werror} and makes a
failed build fail the install instead of being skipped.
"""

from __future__ import annotations

import os
import sys
import traceback

from setuptools import Extension, setup  # type: ignore[import-untyped]
from setuptools.command.build_ext import (  # type: ignore[import-untyped]
    build_ext,
)

STRICT = os.environ.get("TXSPAWN_STRICT_BUILD") == "1"
FAILURE_FILE = "_cbuild_failure.txt"

_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden"]
if STRICT:
    _FLAGS.append("-Werror")

CSPAWN = Extension(
    "txspawn._cspawn",
    sources=[
        "txspawn/_csrc/module.c",
        "txspawn/_csrc/spawn.c",
        "txspawn/_csrc/child.c",
        "txspawn/_csrc/clone3_x86_64.c",
    ],
    depends=[
        "txspawn/_csrc/clone3.h",
        "txspawn/_csrc/plan.h",
        "txspawn/_csrc/spawn.h",
        "txspawn/_csrc/sys.h",
    ],
    extra_compile_args=_FLAGS,
)


class OptionalBuildExt(build_ext):  # type: ignore[misc]
    """
    C{build_ext} that records, instead of raising, a failed build of the
    optional extension (unless C{TXSPAWN_STRICT_BUILD=1}).
    """

    def _failureFile(self) -> str:
        if self.inplace:
            base = os.path.dirname(os.path.abspath(__file__))
        else:
            base = self.build_lib
        return os.path.join(base, "txspawn", FAILURE_FILE)

    def run(self) -> None:
        try:
            if not sys.platform.startswith("linux"):
                raise RuntimeError(f"the C engine is Linux-only ({sys.platform})")
            super().run()
        except Exception as e:
            if STRICT:
                raise
            reason = f"building txspawn._cspawn failed: {e}"
            print(
                "*" * 72,
                "WARNING: " + reason,
                "txspawn is installed without its C engine; the Python",
                "engine is used instead (see `python -m txspawn info`).",
                "*" * 72,
                sep="\n",
                file=sys.stderr,
            )
            traceback.print_exc(file=sys.stderr)
            path = self._failureFile()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(reason + "\n")
        else:
            path = self._failureFile()
            if os.path.exists(path):
                os.remove(path)


setup(ext_modules=[CSPAWN], cmdclass={"build_ext": OptionalBuildExt})
