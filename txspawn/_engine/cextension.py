# -*- test-case-name: tests.test_cspawn -*-
"""
The C extension, C{txspawn._cspawn}, as the C engine's modules import it.

Importing this module imports the extension, or raises an C{ImportError}
that also says why it was not built (L{buildFailureReason}): the C engine's
modules (L{txspawn._engine.cengine}, L{txspawn._engine.fdslots}) take
C{_cspawn} from here, so whichever is imported first fails with the reason.
"""

from __future__ import annotations

from txspawn._engine.cbuild import buildFailureReason

__all__ = ["_cspawn"]

try:
    from txspawn import _cspawn
except ImportError as e:  # pragma: no cover - exercised when not built
    _why = buildFailureReason()
    raise ImportError(f"{e}; {_why}" if _why else str(e)) from e
