"""
txspawn: fast, race-free process spawning and child management for Twisted
on Linux.

This module re-exports the public names; it imports neither a reactor nor
the C extension.

@since: txspawn 0.1
"""

from __future__ import annotations

from txspawn._result import ProcessFailed, ProcessResult, ProcessTimedOut
from txspawn._run import run
from txspawn._spawner import ProcessSpawner
from txspawn._spawner import installSpawner as install
from txspawn._stream import OutputChunk, OutputStream, stream
from txspawn._tee import TeeProtocol
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
