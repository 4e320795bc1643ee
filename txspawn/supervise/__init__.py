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
L{IProgramObserver}s.  L{SupervisorService} runs every program of a
config as a Twisted service: dependency order, whole-tree stops, control
by name, L{ProgramStatus} rows, an L{EventLog}, and reload; each program's
output goes to its L{ProgramLogs}, and its readiness is checked as its
config says (L{readinessFor}).  L{ProcessMonitor} is Twisted's procmon on
txspawn, for code that switches with one import.

The control API (L{txspawn.supervise.control}) and its client
(L{txspawn.supervise.client}) are imported from their modules: not
re-exported here, so that importing this package does not load
C{twisted.web}.  The names re-exported here are resolved on first use
(PEP 562): C{python -m txspawn ctl} imports only the client, and answers
without loading the service.

@since: txspawn 0.1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from txspawn.supervise.convert import convertSupervisord
    from txspawn.supervise.events import EventLog, SupervisorEvent
    from txspawn.supervise.logs import ProgramLogs
    from txspawn.supervise.procmon import ProcessMonitor
    from txspawn.supervise.program import ProgramProcess, ProgramSpawn, Restart
    from txspawn.supervise.readiness import (
        NotReady,
        Readiness,
        ReadyCommand,
        ReadyNotify,
        ReadyTCP,
        readinessFor,
    )
    from txspawn.supervise.reload import ReloadResult
    from txspawn.supervise.service import (
        ProgramFailed,
        SupervisorService,
        UnknownProgram,
    )
    from txspawn.supervise.states import (
        IChildObserver,
        IProgramObserver,
        IReadinessCheck,
        ProgramState,
        ReadyAfter,
        describeExit,
    )
    from txspawn.supervise.status import ProgramStatus, formatTable

__all__ = [
    "CONFIG_SCHEMA",
    "Backoff",
    "BackoffConfig",
    "ConfigError",
    "ConfigErrors",
    "EventLog",
    "IChildObserver",
    "IProgramObserver",
    "IReadinessCheck",
    "LogConfig",
    "NotReady",
    "ProcessMonitor",
    "ProgramConfig",
    "ProgramFailed",
    "ProgramLogs",
    "ProgramProcess",
    "ProgramSpawn",
    "ProgramState",
    "ProgramStatus",
    "Readiness",
    "ReadyAfter",
    "ReadyCommand",
    "ReadyConfig",
    "ReadyNotify",
    "ReadyTCP",
    "ReloadResult",
    "Restart",
    "SchemaEntry",
    "StopConfig",
    "SupervisorConfig",
    "SupervisorEvent",
    "SupervisorService",
    "UnknownProgram",
    "convertSupervisord",
    "describeExit",
    "formatTable",
    "loadConfig",
    "parseConfig",
    "readinessFor",
]

#: Public name -> the module defining it.
_HOMES = {
    "Backoff": "txspawn.supervise.backoff",
    "BackoffConfig": "txspawn.supervise.config",
    "CONFIG_SCHEMA": "txspawn.supervise.config",
    "ConfigError": "txspawn.supervise.config",
    "ConfigErrors": "txspawn.supervise.config",
    "convertSupervisord": "txspawn.supervise.convert",
    "describeExit": "txspawn.supervise.states",
    "EventLog": "txspawn.supervise.events",
    "formatTable": "txspawn.supervise.status",
    "IChildObserver": "txspawn.supervise.states",
    "IProgramObserver": "txspawn.supervise.states",
    "IReadinessCheck": "txspawn.supervise.states",
    "loadConfig": "txspawn.supervise.config",
    "LogConfig": "txspawn.supervise.config",
    "NotReady": "txspawn.supervise.readiness",
    "parseConfig": "txspawn.supervise.config",
    "ProcessMonitor": "txspawn.supervise.procmon",
    "ProgramConfig": "txspawn.supervise.config",
    "ProgramFailed": "txspawn.supervise.service",
    "ProgramLogs": "txspawn.supervise.logs",
    "ProgramProcess": "txspawn.supervise.program",
    "ProgramSpawn": "txspawn.supervise.program",
    "ProgramState": "txspawn.supervise.states",
    "ProgramStatus": "txspawn.supervise.status",
    "Readiness": "txspawn.supervise.readiness",
    "readinessFor": "txspawn.supervise.readiness",
    "ReadyAfter": "txspawn.supervise.states",
    "ReadyCommand": "txspawn.supervise.readiness",
    "ReadyConfig": "txspawn.supervise.config",
    "ReadyNotify": "txspawn.supervise.readiness",
    "ReadyTCP": "txspawn.supervise.readiness",
    "ReloadResult": "txspawn.supervise.reload",
    "Restart": "txspawn.supervise.program",
    "SchemaEntry": "txspawn.supervise.config",
    "StopConfig": "txspawn.supervise.config",
    "SupervisorConfig": "txspawn.supervise.config",
    "SupervisorEvent": "txspawn.supervise.events",
    "SupervisorService": "txspawn.supervise.service",
    "UnknownProgram": "txspawn.supervise.service",
}


def __getattr__(name: str) -> object:
    """
    Import a public name's module on first use and keep the name here.
    """
    try:
        module = _HOMES[name]
    except KeyError:
        raise AttributeError(
            f"module 'txspawn.supervise' has no attribute {name!r}"
        ) from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
