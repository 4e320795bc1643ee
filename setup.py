"""
Build the optional C engine, C{txspawn._cspawn}, and txspawn's init
program, C{txspawn/_libexec/txspawn-init}.

All metadata lives in C{pyproject.toml}; this file only declares the
extension and builds the program in the same C{build_ext} run: in place for
C{pip install -e .}, into the build tree (hence the wheel) otherwise.  Both
builds are optional: if compiling fails (no compiler, no Python headers, not
Linux), the install still succeeds without that part, the reason is
printed, and it is written down -- to C{txspawn/_cbuild_failure.txt} for the
extension, to C{txspawn/_libexec/build-failure.txt} for the init program --
so that C{python -m txspawn info} (and, for the init,
C{txspawn._kernel.initprogram}) can say why it is missing.

C{TXSPAWN_STRICT_BUILD=1} (CI sets it) compiles with C{-Werror} and makes a
failed build fail the install instead of being skipped.

The init program (C{txspawn/_csrc/init.c}, which says why it is built the
way it is) is a standalone executable, not an extension: no Python, no
C{Python.h}.  On x86_64 it is built freestanding -- no libc, static, its own
entry point -- because every spawn into a pid namespace execs it, and a
program that maps a few pages starts in a fraction of the time of a
dynamically linked one.  Elsewhere, or if that build fails without
C{TXSPAWN_STRICT_BUILD}, it is an ordinary libc program.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import sys
import sysconfig
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

#: The init program: its source, what it includes, and where it goes in the
#: package (mode 0755).
INIT_SOURCE = "txspawn/_csrc/init.c"
INIT_PROGRAM = os.path.join("txspawn", "_libexec", "txspawn-init")
INIT_FAILURE_FILE = os.path.join("txspawn", "_libexec", "build-failure.txt")

#: The freestanding build (see init.c): no libc or start files, static and
#: not position-independent (nothing would relocate it), no stack protector
#: (its canary lives in libc's thread block), and no loop turned into a
#: call to memset/strlen that only libc would provide.
_INIT_FREESTANDING = [
    "-DTXS_INIT_FREESTANDING",
    "-ffreestanding",
    "-fno-stack-protector",
    "-fno-tree-loop-distribute-patterns",
    "-static",
    "-nostdlib",
    "-no-pie",
]

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

    def _inPackage(self, relative: str) -> str:
        """
        Where C{relative} (a path under the checkout) goes: in the checkout
        itself for an in-place (editable) build, else in the build tree
        that becomes the wheel.
        """
        if self.inplace:
            base = os.path.dirname(os.path.abspath(__file__))
        else:
            base = self.build_lib
        return os.path.join(base, relative)

    def _failureFile(self) -> str:
        return self._inPackage(os.path.join("txspawn", FAILURE_FILE))

    def run(self) -> None:
        self._buildExtension()
        self._buildInit()

    def _buildExtension(self) -> None:
        try:
            if not sys.platform.startswith("linux"):
                raise RuntimeError(f"the C engine is Linux-only ({sys.platform})")
            super().run()
        except Exception as e:
            if STRICT:
                raise
            reason = f"building txspawn._cspawn failed: {e}"
            _warn(
                reason,
                "txspawn is installed without its C engine; the Python",
                "engine is used instead (see `python -m txspawn info`).",
            )
            _record(self._failureFile(), reason)
        else:
            _forget(self._failureFile())

    def _buildInit(self) -> None:
        """
        Compile and link C{init.c} into C{txspawn/_libexec/txspawn-init}
        (see the module docstring): freestanding on x86_64, else (or if that
        fails, unless strict) with libc.
        """
        program = self._inPackage(INIT_PROGRAM)
        failureFile = self._inPackage(INIT_FAILURE_FILE)
        # No stale program survives a failed build.
        if os.path.exists(program):
            os.remove(program)
        variants: list[list[str]] = []
        if platform.machine().lower() in ("x86_64", "amd64"):
            variants.append(_INIT_FREESTANDING)
        if not (STRICT and variants):
            variants.append([])
        errors: list[str] = []
        try:
            if not sys.platform.startswith("linux"):
                raise RuntimeError(f"txspawn-init is Linux-only ({sys.platform})")
            for variant in variants:
                try:
                    self._compileInit(program, variant)
                except Exception as e:
                    errors.append(f"{' '.join(variant) or 'with libc'}: {e}")
                    if STRICT:
                        raise
                else:
                    break
            else:
                raise RuntimeError("; ".join(errors))
        except Exception as e:
            if STRICT:
                raise
            reason = f"building txspawn-init failed: {e}"
            _warn(
                reason,
                "txspawn is installed without its init program: a pid",
                "namespace needs Namespaces(pidInit=False) (see",
                "`python -m txspawn info`).",
            )
            _record(failureFile, reason)
        else:
            _forget(failureFile)

    def _compileInit(self, program: str, variant: list[str]) -> None:
        """
        One compile-and-link of the init program into C{program}, with the
        compiler C{build_ext} uses (C{CC}, else Python's), the extension's
        warning flags, C{CFLAGS} from the environment, then C{variant}'s.
        """
        cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
        cflags = shlex.split(os.environ.get("CFLAGS", ""))
        os.makedirs(self.build_temp, exist_ok=True)
        built = os.path.join(self.build_temp, "txspawn-init")
        self.spawn(
            [
                *cc,
                *cflags,
                *_FLAGS,
                *variant,
                "-Itxspawn/_csrc",
                "-o",
                built,
                INIT_SOURCE,
            ]
        )
        os.makedirs(os.path.dirname(program), exist_ok=True)
        shutil.copyfile(built, program)
        os.chmod(program, 0o755)

    def get_outputs(self) -> list[str]:
        outputs: list[str] = super().get_outputs()
        if not self.inplace:
            outputs.append(os.path.join(self.build_lib, INIT_PROGRAM))
        return outputs


def _warn(reason: str, *lines: str) -> None:
    """
    Print a build failure that the install survives, with its traceback.
    """
    print("*" * 72, "WARNING: " + reason, *lines, "*" * 72, sep="\n", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)


def _record(path: str, reason: str) -> None:
    """
    Write down why a part was not built, for C{python -m txspawn info}.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(reason + "\n")


def _forget(path: str) -> None:
    """
    Remove the record of an earlier failed build.
    """
    if os.path.exists(path):
        os.remove(path)


setup(ext_modules=[CSPAWN], cmdclass={"build_ext": OptionalBuildExt})
