"""
txspawn: fast, race-free process spawning and child management for Twisted
on Linux.

This module re-exports the public names; it imports neither a reactor nor
the C extension.  The re-exports are resolved on first use (PEP 562), so
that a program importing a submodule it needs (C{python -m txspawn ctl},
which must answer in well under 100 ms, imports only the control client)
does not pay for Twisted's process and reactor machinery.

@since: txspawn 0.1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from txspawn._api.result import ProcessFailed, ProcessResult, ProcessTimedOut
    from txspawn._api.run import run
    from txspawn._api.stream import OutputStream, stream
    from txspawn._api.streambuffer import OutputChunk
    from txspawn._api.tee import TeeProtocol
    from txspawn._reactor.spawner import ProcessSpawner
    from txspawn._reactor.spawner import installSpawner as install
    from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature

__version__ = "0.1.0.dev0"

__all__ = [
    "ChildSetupStage",
    "OutputChunk",
    "OutputStream",
    "ProcessFailed",
    "ProcessResult",
    "ProcessSpawner",
    "ProcessTimedOut",
    "SpawnError",
    "TeeProtocol",
    "UnsupportedFeature",
    "__version__",
    "install",
    "run",
    "stream",
]

#: Public name -> (the module defining it, its name there).
_HOMES = {
    "ChildSetupStage": ("txspawn.errors", "ChildSetupStage"),
    "OutputChunk": ("txspawn._api.streambuffer", "OutputChunk"),
    "OutputStream": ("txspawn._api.stream", "OutputStream"),
    "ProcessFailed": ("txspawn._api.result", "ProcessFailed"),
    "ProcessResult": ("txspawn._api.result", "ProcessResult"),
    "ProcessSpawner": ("txspawn._reactor.spawner", "ProcessSpawner"),
    "ProcessTimedOut": ("txspawn._api.result", "ProcessTimedOut"),
    "SpawnError": ("txspawn.errors", "SpawnError"),
    "TeeProtocol": ("txspawn._api.tee", "TeeProtocol"),
    "UnsupportedFeature": ("txspawn.errors", "UnsupportedFeature"),
    "install": ("txspawn._reactor.spawner", "installSpawner"),
    "run": ("txspawn._api.run", "run"),
    "stream": ("txspawn._api.stream", "stream"),
}


def __getattr__(name: str) -> object:
    """
    Import a public name's module on first use and keep the name here.
    """
    try:
        module, attribute = _HOMES[name]
    except KeyError:
        raise AttributeError(f"module 'txspawn' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
