# -*- test-case-name: tests.test_supervise_config -*-
"""
txspawn's process supervisor: programs described in a TOML config, started
in dependency order, restarted with backoff, stopped as whole trees.

Built only on txspawn's public API (DESIGN.md, layer 7, "Services").  The
config is loaded and validated by L{loadConfig}; a supervisord config is
converted to one by L{txspawn.supervise.convert.convertSupervisord}.

@since: txspawn 0.1
"""

from __future__ import annotations

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

__all__ = [
    "CONFIG_SCHEMA",
    "BackoffConfig",
    "ConfigError",
    "ConfigErrors",
    "LogConfig",
    "ProgramConfig",
    "ReadyConfig",
    "SchemaEntry",
    "StopConfig",
    "SupervisorConfig",
    "loadConfig",
    "parseConfig",
]
