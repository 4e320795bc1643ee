# -*- test-case-name: tests.test_supervise_config -*-
"""
The supervisor config's schema, as data: every key, its type, its default
and its meaning, in one table (L{CONFIG_SCHEMA}).

The loader takes the known keys of each table and each key's type from this
table, so the table cannot drift from what is accepted; the config
reference is generated from it (or checked against it).  A key's value
checks beyond its type (ranges, choices, combinations) live with the
loader, in L{txspawn.supervise.config}.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from txspawn.supervise._types import (
    BOOLEAN,
    COMMAND,
    ID,
    IDS,
    INTEGER,
    INTEGER_OR_STRING,
    NUMBER,
    NUMBER_OR_STRING,
    STRING,
    STRING_TABLE,
    STRINGS,
    TABLE,
    ValueType,
)

__all__ = ["CONFIG_SCHEMA", "SchemaEntry", "tableKeys"]


@frozen
class SchemaEntry:
    """
    One key of the config.

    @ivar key: Its path, dotted, with C{NAME} for a program's name:
        C{"programs.NAME.restart"}.
    @ivar type: The types its value may have.
    @ivar default: Its default, as TOML would write it, or C{None} if it
        has none (it is required, or absent means "not set").
    @ivar meaning: What it does, in a sentence or two.
    """

    key: str
    type: ValueType
    default: str | None
    meaning: str


_P = "programs.NAME."

#: Every key of the supervisor config, in the order the reference lists
#: them.  Tables are entries too (type L{TABLE}); a table whose keys are
#: free (C{env}, C{rlimits}) has no entries under it.
CONFIG_SCHEMA: tuple[SchemaEntry, ...] = (
    SchemaEntry("supervisor", TABLE, None, "Settings of the supervisor itself."),
    SchemaEntry(
        "supervisor.control",
        STRING,
        '"unix:path=txspawn.sock:mode=600"',
        "The control API's Twisted server endpoint string; a relative unix "
        "socket path is relative to the config file's directory.",
    ),
    SchemaEntry(
        "supervisor.log_dir",
        STRING,
        '"logs"',
        "Where log files go, relative to the config file's directory.",
    ),
    SchemaEntry("programs", TABLE, None, "The programs, by name."),
    SchemaEntry(
        "programs.NAME",
        TABLE,
        None,
        "One program; NAME is made of letters, digits and _ . -",
    ),
    SchemaEntry(
        _P + "command",
        COMMAND,
        None,
        "Required.  The argv, or a string split like a shell splits it "
        "(shlex.split; it is never run by a shell).",
    ),
    SchemaEntry(
        _P + "cwd",
        STRING,
        None,
        "The working directory, relative to the config file's directory "
        "(default: the config file's directory).",
    ),
    SchemaEntry(_P + "env", STRING_TABLE, "{}", "Environment variables to set."),
    SchemaEntry(
        _P + "inherit_env",
        BOOLEAN,
        "true",
        "Whether the program gets the supervisor's environment (under env).",
    ),
    SchemaEntry(_P + "user", ID, None, "The user to run as: a name or a uid."),
    SchemaEntry(_P + "group", ID, None, "The group to run as: a name or a gid."),
    SchemaEntry(
        _P + "instances",
        INTEGER,
        "1",
        "How many copies to run (>= 1); copies are named NAME:0 .. NAME:N-1.",
    ),
    SchemaEntry(
        _P + "restart",
        STRING,
        '"on-failure"',
        'When to restart the program after it exits: "always", '
        '"on-failure" (a non-zero exit or a signal) or "never".',
    ),
    SchemaEntry(
        _P + "depends_on",
        STRINGS,
        "[]",
        "Programs that must be ready before this one starts (and stop after it).",
    ),
    SchemaEntry(
        _P + "autostart",
        BOOLEAN,
        "true",
        "Whether the program starts with the supervisor.",
    ),
    SchemaEntry(_P + "backoff", TABLE, None, "Delays between failed starts."),
    SchemaEntry(_P + "backoff.initial", NUMBER, "1.0", "The first delay, in seconds."),
    SchemaEntry(
        _P + "backoff.factor",
        NUMBER,
        "2.0",
        "What each delay is multiplied by for the next (>= 1).",
    ),
    SchemaEntry(_P + "backoff.max", NUMBER, "60.0", "The longest delay, in seconds."),
    SchemaEntry(
        _P + "backoff.reset_after",
        NUMBER,
        "30.0",
        "A run that stays up this many seconds resets the failure count.",
    ),
    SchemaEntry(
        _P + "backoff.give_up_after",
        INTEGER_OR_STRING,
        "10",
        'Consecutive failed starts before the program is FATAL, or "never".',
    ),
    SchemaEntry(
        _P + "ready",
        TABLE,
        None,
        "When a started program counts as ready (at most one of after, tcp, "
        "notify, command; default: after = 1.0).",
    ),
    SchemaEntry(
        _P + "ready.after", NUMBER, "1.0", "Ready once up for this many seconds."
    ),
    SchemaEntry(
        _P + "ready.tcp",
        STRING,
        None,
        'Ready once "host:port" accepts a TCP connection.',
    ),
    SchemaEntry(
        _P + "ready.notify",
        BOOLEAN,
        "false",
        "Ready when the program sends READY=1 to $NOTIFY_SOCKET.",
    ),
    SchemaEntry(
        _P + "ready.command",
        COMMAND,
        None,
        "Ready once this command exits 0 (run repeatedly).",
    ),
    SchemaEntry(
        _P + "ready.timeout",
        NUMBER,
        "60.0",
        "Seconds to wait for readiness before the start counts as failed.",
    ),
    SchemaEntry(_P + "stop", TABLE, None, "How the program is stopped."),
    SchemaEntry(
        _P + "stop.signal",
        INTEGER_OR_STRING,
        '"TERM"',
        'The signal sent first: a name ("TERM", "SIGINT") or a number.',
    ),
    SchemaEntry(
        _P + "stop.timeout",
        NUMBER,
        "10.0",
        "Seconds to wait after the signal before SIGKILL.",
    ),
    SchemaEntry(
        _P + "stop.kill",
        STRING,
        '"tree"',
        'What is signalled: "tree" (every descendant: the cgroup when '
        'there is one, else the process group) or "group" (the process '
        "group).",
    ),
    SchemaEntry(_P + "logs", TABLE, None, "Where the program's output goes."),
    SchemaEntry(
        _P + "logs.stdout",
        STRING,
        '"NAME.out"',
        "The stdout log file, relative to log_dir.",
    ),
    SchemaEntry(
        _P + "logs.stderr",
        STRING,
        '"NAME.err"',
        "The stderr log file, relative to log_dir (not with merge).",
    ),
    SchemaEntry(
        _P + "logs.merge",
        BOOLEAN,
        "false",
        "Write stderr into the stdout log file.",
    ),
    SchemaEntry(
        _P + "logs.max_bytes",
        INTEGER_OR_STRING,
        '"10M"',
        'Rotate a log file at this size: bytes, or "10K", "10M", "1G" '
        "(0: never rotate).",
    ),
    SchemaEntry(_P + "logs.backups", INTEGER, "3", "How many rotated files to keep."),
    SchemaEntry(
        _P + "logs.timestamps",
        BOOLEAN,
        "false",
        "Prefix every line with the time it was read.",
    ),
    SchemaEntry(
        _P + "logs.prefix",
        BOOLEAN,
        "false",
        "Prefix every line with its stream (stdout, stderr).",
    ),
    SchemaEntry(
        _P + "logs.markers",
        BOOLEAN,
        "true",
        "Write a line when the program is spawned and when it exits.",
    ),
    SchemaEntry(
        _P + "spawn",
        TABLE,
        None,
        "txspawn spawn options (txspawn.options.SpawnOptions).",
    ),
    SchemaEntry(
        _P + "spawn.umask",
        INTEGER_OR_STRING,
        None,
        'The umask: an integer (0o022) or octal text ("022").',
    ),
    SchemaEntry(_P + "spawn.groups", IDS, None, "Supplementary groups: names or gids."),
    SchemaEntry(
        _P + "spawn.rlimits",
        TABLE,
        "{}",
        'Resource limits: NOFILE = [soft, hard]; "infinity" for no limit.',
    ),
    SchemaEntry(
        _P + "spawn.new_session",
        BOOLEAN,
        "false",
        "Start a new session (setsid).",
    ),
    SchemaEntry(
        _P + "spawn.process_group",
        INTEGER,
        None,
        "0 to lead a new process group, or the pgid of a group to join.",
    ),
    SchemaEntry(
        _P + "spawn.death_signal",
        INTEGER_OR_STRING,
        None,
        "The signal the program gets when the supervisor dies "
        "(PR_SET_PDEATHSIG): a name or a number.",
    ),
    SchemaEntry(
        _P + "spawn.namespaces",
        TABLE,
        None,
        "New namespaces (txspawn.options.Namespaces).",
    ),
    *(
        SchemaEntry(
            _P + "spawn.namespaces." + name,
            BOOLEAN,
            "false",
            f"A new {name} namespace.",
        )
        for name in ("user", "pid", "mount", "net", "uts", "ipc", "cgroup", "time")
    ),
    SchemaEntry(
        _P + "spawn.namespaces.uid_map",
        STRING,
        None,
        'The uid map, as text: "0 1000 1".',
    ),
    SchemaEntry(
        _P + "spawn.namespaces.gid_map",
        STRING,
        None,
        'The gid map, as text: "0 1000 1".',
    ),
    SchemaEntry(
        _P + "spawn.namespaces.setgroups",
        STRING,
        '"deny"',
        '"deny" or "allow": whether setgroups works in the user namespace.',
    ),
    SchemaEntry(
        _P + "spawn.namespaces.hostname",
        STRING,
        None,
        "The hostname in the new UTS namespace.",
    ),
    SchemaEntry(
        _P + "spawn.namespaces.loopback",
        BOOLEAN,
        "false",
        "Bring lo up in the new network namespace.",
    ),
    SchemaEntry(
        _P + "spawn.namespaces.mount_proc",
        BOOLEAN,
        "false",
        "Mount a fresh /proc in the new mount namespace.",
    ),
    SchemaEntry(
        _P + "spawn.namespaces.propagation",
        STRING,
        '"slave"',
        'Mount propagation: "slave", "private", "shared" or "unchanged".',
    ),
    SchemaEntry(
        _P + "spawn.namespaces.time_offsets",
        TABLE,
        "{}",
        "Clock offsets in the new time namespace, in seconds: "
        "{ monotonic = 10, boottime = 10 }.",
    ),
    SchemaEntry(
        _P + "spawn.namespaces.pid_init",
        BOOLEAN,
        "true",
        "With pid: run txspawn's small init as pid 1.",
    ),
    SchemaEntry(
        _P + "spawn.cgroup",
        TABLE,
        None,
        "A cgroup v2 of its own for each process (txspawn.options.Cgroup).",
    ),
    SchemaEntry(
        _P + "spawn.cgroup.parent",
        STRING,
        None,
        "The cgroup directory to create the leaf in (default: this process's own).",
    ),
    SchemaEntry(
        _P + "spawn.cgroup.required",
        BOOLEAN,
        "true",
        "Fail the spawn when no cgroup can be had.",
    ),
    SchemaEntry(
        _P + "spawn.cgroup.memory_max",
        INTEGER_OR_STRING,
        None,
        'memory.max: bytes, or "512M".',
    ),
    SchemaEntry(
        _P + "spawn.cgroup.memory_high",
        INTEGER_OR_STRING,
        None,
        'memory.high: bytes, or "256M".',
    ),
    SchemaEntry(
        _P + "spawn.cgroup.pids_max",
        INTEGER_OR_STRING,
        None,
        "pids.max: the most tasks.",
    ),
    SchemaEntry(
        _P + "spawn.cgroup.cpu_max",
        NUMBER_OR_STRING,
        None,
        'cpu.max as a number of CPUs (0.5), or "max".',
    ),
    SchemaEntry(
        _P + "spawn.cgroup.io_weight",
        INTEGER,
        None,
        "io.weight, 1 to 10000.",
    ),
    SchemaEntry(
        _P + "spawn.cgroup.kill_on_exit",
        BOOLEAN,
        "true",
        "Kill what is left in the cgroup when the program is reaped.",
    ),
)

# Tables whose keys are free-form, not listed in the schema.
_FREE_TABLES = frozenset(
    {_P + "env", _P + "spawn.rlimits", _P + "spawn.namespaces.time_offsets"}
)


def _tableKeys() -> dict[str, dict[str, SchemaEntry]]:
    """
    The entries of each table, by the table's schema path.
    """
    tables: dict[str, dict[str, SchemaEntry]] = {"": {}}
    for entry in CONFIG_SCHEMA:
        parent, _, name = entry.key.rpartition(".")
        tables.setdefault(parent, {})[name] = entry
        if entry.type is TABLE or entry.key in _FREE_TABLES:
            tables.setdefault(entry.key, {})
    return tables


_TABLES = _tableKeys()


def tableKeys(table: str) -> Mapping[str, SchemaEntry] | None:
    """
    The keys a table may have.

    @param table: The table's schema path (C{"programs.NAME.stop"}; C{""}
        for the document).
    @return: Its entries by key, or C{None} if its keys are free-form.
    """
    if table in _FREE_TABLES:
        return None
    return _TABLES[table]
