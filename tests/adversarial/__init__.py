"""
The adversarial suite: txspawn under hostile input and exhausted resources.

Each module here keeps one strength of the adversarial run that issue 11
came from as a test: the fuzz of every entry point with a leak check,
EMFILE at every step of a spawn, a population of 10,000 children, and
threads forking and opening inheritable fds while the reactor spawns.

The default suite runs a short form of each (a few dozen examples, a few
hundred children) so that it stays fast; the long forms run when the
environment variable C{TXSPAWN_ADVERSARIAL=1} is set, as CI's
C{adversarial} stage does (C{tools/test.sh}).  Use L{scaled} for sizes and
L{LONG_ONLY} to skip a test that has no useful short form.
"""

from __future__ import annotations

import os

__all__ = ["ENABLED", "LONG_ONLY", "scaled"]

#: Whether the long forms run (C{TXSPAWN_ADVERSARIAL=1}).
ENABLED: bool = os.environ.get("TXSPAWN_ADVERSARIAL") == "1"

#: The skip reason of a test that only has a long form, or C{None} when
#: the long forms run.
LONG_ONLY: str | None = (
    None if ENABLED else "long adversarial test: set TXSPAWN_ADVERSARIAL=1 (CI sets it)"
)


def scaled(short: int, long: int) -> int:
    """
    Pick a size by mode.

    @param short: the size for the default suite.
    @param long: the size when the long forms run.
    @return: C{long} when L{ENABLED}, else C{short}.
    """
    return long if ENABLED else short
