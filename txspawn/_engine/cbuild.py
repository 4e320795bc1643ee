# -*- test-case-name: tests.test_engines_select -*-
"""
Whether the C extension was built in this copy of txspawn, and if not, why.

C{setup.py} records why a build failed in C{txspawn/_cbuild_failure.txt};
L{buildFailureReason} reads it back for the engine loader
(L{txspawn._engine.selection}) and the C engine's import of the extension
(L{txspawn._engine.cextension}), so that C{python -m txspawn info} can say why
the C engine is missing instead of only that it is.
"""

from __future__ import annotations

import os

__all__ = ["buildFailureReason", "sourceTreeHint"]

#: The directory of the C{txspawn} package, where C{setup.py} builds.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def buildFailureReason() -> str | None:
    """
    Why the C extension was not built, as recorded by C{setup.py}.

    @return: The recorded reason, or L{None} when none was recorded.
    """
    path = os.path.join(_PACKAGE, "_cbuild_failure.txt")
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        return None


def sourceTreeHint() -> str:
    """
    Explain the commonest reason for a missing extension: txspawn was
    imported from a source checkout (the current directory comes first on
    C{sys.path}), whose C{txspawn/} holds no build, while the installed copy
    elsewhere may well have one.

    @return: C{"; <hint>"}, or C{""} when txspawn is not a source checkout.
    """
    package = _PACKAGE
    if not os.path.exists(os.path.join(os.path.dirname(package), "setup.py")):
        return ""
    return (
        f"; txspawn was imported from the source tree {package}, which has no "
        "build: build it in place with 'pip install -e .', or run from "
        "another directory to use the installed copy"
    )
