"""
txspawn: fast, race-free process spawning and child management for Twisted
on Linux.

This module re-exports the public names; it imports neither a reactor nor
the C extension.

@since: txspawn 0.1
"""

from __future__ import annotations

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
