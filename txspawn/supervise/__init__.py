# -*- test-case-name: tests.test_supervise_config -*-
"""
txspawn's process supervisor: programs described in a TOML config, started
in dependency order, restarted with backoff, stopped as whole trees.

Built only on txspawn's public API (DESIGN.md, layer 7, "Services").  The
config is loaded and validated by L{loadConfig}; a supervisord config is
converted to one by L{txspawn.supervise.convert.convertSupervisord}.  One
running copy of a program is a L{ProgramProcess}: supervisor's states
(L{ProgramState}), restarts with L{Backoff}, readiness
(L{IReadinessCheck}), stop as a whole tree, every transition told to its
L{IProgramObserver}s.

@since: txspawn 0.1
"""

from __future__ import annotations

from txspawn.supervise.backoff import Backoff
from txspawn.supervise.config import (
    CONFIG_SCHEMA,
    BackoffConfig,
    ConfigError,
    ConfigErrors,
    LogConfig,
    ProgramConfig,
    ReadyConfig,
    SchemaEntry,
    StopConfig,
    SupervisorConfig,
    loadConfig,
    parseConfig,
)
from txspawn.supervise.program import ProgramProcess, ProgramSpawn, Restart
from txspawn.supervise.states import (
    IProgramObserver,
    IReadinessCheck,
    ProgramState,
    ReadyAfter,
    describeExit,
)

__all__ = [
    "CONFIG_SCHEMA",
    "Backoff",
    "BackoffConfig",
    "ConfigError",
    "ConfigErrors",
    "IProgramObserver",
    "IReadinessCheck",
    "LogConfig",
    "ProgramConfig",
    "ProgramProcess",
    "ProgramSpawn",
    "ProgramState",
    "ReadyAfter",
    "ReadyConfig",
    "Restart",
    "SchemaEntry",
    "StopConfig",
    "SupervisorConfig",
    "describeExit",
    "loadConfig",
    "parseConfig",
]
