# -*- test-case-name: tests.test_supervise_config -*-
"""
One program's config: its value types (L{ProgramConfig} and its parts) and
how a C{[programs.NAME]} table is checked and built into them.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Mapping
from types import MappingProxyType

from attrs import field, frozen

from txspawn.options import ID_MAX, SpawnOptions
from txspawn.supervise._locate import KeyPath
from txspawn.supervise._problems import Problems
from txspawn.supervise._spawnconfig import buildSpawnOptions, signalNumber

__all__ = [
    "BackoffConfig",
    "LogConfig",
    "ProgramConfig",
    "ReadyConfig",
    "StopConfig",
    "buildProgram",
]

_P = "programs.NAME"
_RESTARTS = ("always", "on-failure", "never")
_READY_KINDS = ("after", "tcp", "notify", "command")
_KILLS = ("tree", "group")
_SIZE = re.compile(r"\s*(\d+)\s*([KMG]?)B?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _frozenEnv(value: Mapping[str, str]) -> Mapping[str, str]:
    """
    A read-only copy of an environment.
    """
    return MappingProxyType(dict(value))


@frozen
class BackoffConfig:
    """
    The delays between failed starts: C{initial * factor ** (n - 1)} after
    the n-th consecutive failure, at most C{max}.

    @ivar initial: The first delay, in seconds.
    @ivar factor: What each delay is multiplied by for the next.
    @ivar max: The longest delay, in seconds.
    @ivar resetAfter: A run that stays up this many seconds resets the
        count of failures.
    @ivar giveUpAfter: How many consecutive failed starts make the program
        FATAL, or C{None} never to give up.

    @since: txspawn 0.1
    """

    initial: float = 1.0
    factor: float = 2.0
    max: float = 60.0
    resetAfter: float = 30.0
    giveUpAfter: int | None = 10


@frozen
class ReadyConfig:
    """
    When a started program counts as ready (and its dependents may start).

    @ivar kind: C{"after"} (up for L{after} seconds), C{"tcp"} (L{host}:
        L{port} accepts a connection), C{"notify"} (C{READY=1} on
        C{$NOTIFY_SOCKET}) or C{"command"} (L{command} exits 0).
    @ivar after: With C{"after"}: the seconds.
    @ivar host: With C{"tcp"}: the host to connect to.
    @ivar port: With C{"tcp"}: the port.
    @ivar command: With C{"command"}: the check's argv.
    @ivar timeout: Seconds to wait for readiness before the start counts
        as failed.

    @since: txspawn 0.1
    """

    kind: str = "after"
    after: float | None = 1.0
    host: str | None = None
    port: int | None = None
    command: tuple[str, ...] | None = None
    timeout: float = 60.0


@frozen
class StopConfig:
    """
    How a program is stopped.

    @ivar signal: The signal sent first (a number).
    @ivar timeout: Seconds after it before C{SIGKILL}.
    @ivar kill: C{"tree"} (every descendant: the cgroup when there is one,
        else the process group) or C{"group"} (the process group).

    @since: txspawn 0.1
    """

    signal: int = 15
    timeout: float = 10.0
    kill: str = "tree"


@frozen
class LogConfig:
    """
    Where a program's output goes.

    @ivar stdout: The absolute path of the stdout log file.
    @ivar stderr: The absolute path of the stderr log file, or C{None}
        when it is merged into L{stdout}.
    @ivar maxBytes: Rotate a file at this size (C{0}: never).
    @ivar backups: How many rotated files to keep.
    @ivar timestamps: Prefix every line with the time it was read.
    @ivar prefix: Prefix every line with its stream.
    @ivar markers: Write a line when the program is spawned and exits.

    @since: txspawn 0.1
    """

    stdout: str
    stderr: str | None
    maxBytes: int = 10 * 1024**2
    backups: int = 3
    timestamps: bool = False
    prefix: bool = False
    markers: bool = True

    @property
    def merge(self) -> bool:
        """
        Whether stderr goes into the stdout file.
        """
        return self.stderr is None


@frozen
class ProgramConfig:
    """
    One program of the config.

    @ivar name: Its name (the key under C{[programs]}).
    @ivar command: Its argv (C{command[0]} is looked up on C{PATH}).
    @ivar cwd: Its absolute working directory.
    @ivar env: Variables set in its environment.
    @ivar inheritEnv: Whether it also gets the supervisor's environment.
    @ivar user: The user to run as (a name or a uid), or C{None}.
    @ivar group: The group to run as (a name or a gid), or C{None}.
    @ivar instances: How many copies run.
    @ivar restart: C{"always"}, C{"on-failure"} or C{"never"}.
    @ivar dependsOn: The programs that must be ready before it starts.
    @ivar autostart: Whether it starts with the supervisor.
    @ivar backoff: Its delays between failed starts.
    @ivar ready: When it counts as ready.
    @ivar stop: How it is stopped.
    @ivar logs: Where its output goes.
    @ivar spawnOptions: Its txspawn spawn options.

    @since: txspawn 0.1
    """

    name: str
    command: tuple[str, ...]
    cwd: str
    env: Mapping[str, str] = field(converter=_frozenEnv, hash=False)
    inheritEnv: bool
    user: str | int | None
    group: str | int | None
    instances: int
    restart: str
    dependsOn: tuple[str, ...]
    autostart: bool
    backoff: BackoffConfig
    ready: ReadyConfig
    stop: StopConfig
    logs: LogConfig
    spawnOptions: SpawnOptions

    @property
    def instanceNames(self) -> tuple[str, ...]:
        """
        The names of its copies: C{NAME} alone, or C{NAME:0} to
        C{NAME:N-1} when there are several.
        """
        if self.instances == 1:
            return (self.name,)
        return tuple(f"{self.name}:{index}" for index in range(self.instances))


class _Builder:
    """
    Checks the values of one program's table, reporting each problem.
    """

    def __init__(self, problems: Problems, path: KeyPath) -> None:
        self.problems = problems
        self.path = path

    def error(self, keys: KeyPath, message: str) -> None:
        """
        Report a problem with the key at C{keys} in the program's table.
        """
        self.problems.error((*self.path, *keys), message)

    def number(
        self,
        table: Mapping[str, object],
        keys: tuple[str, ...],
        default: float,
        minimum: float = 0.0,
    ) -> float:
        """
        A finite number, at least C{minimum}.
        """
        value = table.get(keys[-1], default)
        assert isinstance(value, (int, float))
        if not math.isfinite(value) or value < minimum:
            self.error(keys, f"must be a finite number >= {minimum:g}, not {value!r}")
            return default
        return float(value)

    def choice(
        self,
        table: Mapping[str, object],
        keys: tuple[str, ...],
        default: str,
        choices: tuple[str, ...],
    ) -> str:
        """
        One of C{choices}.
        """
        value = table.get(keys[-1], default)
        if value not in choices:
            self.error(keys, f"must be one of {', '.join(choices)}, not {value!r}")
            return default
        return str(value)

    def command(self, value: object, keys: tuple[str, ...]) -> tuple[str, ...]:
        """
        An argv from a list, or from a string split like a shell.
        """
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError as error:
                self.error(keys, f"cannot be split like a shell: {error}")
                return ("",)
        else:
            assert isinstance(value, list)
            argv = [str(item) for item in value]
        if not argv or not argv[0]:
            self.error(keys, "must name a program to run")
        for index, item in enumerate(argv):
            if "\0" in item:
                self.error((*keys, index), "must not contain NUL")
        return tuple(argv)

    def ident(self, table: Mapping[str, object], key: str) -> str | int | None:
        """
        A user or group: a name, or an id in range.
        """
        value = table.get(key)
        if isinstance(value, int) and not 0 <= value <= ID_MAX:
            self.error((key,), f"must be between 0 and {ID_MAX}, not {value!r}")
        elif isinstance(value, str) and (not value or "\0" in value):
            self.error((key,), f"is not a valid name: {value!r}")
        assert value is None or isinstance(value, (str, int))
        return value

    def table(self, program: Mapping[str, object], key: str) -> dict[str, object]:
        """
        The program's sub-table C{key}, checked against the schema.
        """
        return self.problems.table(
            program.get(key, {}), (*self.path, key), f"{_P}.{key}"
        )

    def backoff(self, program: Mapping[str, object]) -> BackoffConfig:
        """
        The C{backoff} table.
        """
        table = self.table(program, "backoff")
        initial = self.number(table, ("backoff", "initial"), 1.0)
        factor = self.number(table, ("backoff", "factor"), 2.0, minimum=1.0)
        maximum = self.number(table, ("backoff", "max"), 60.0)
        if maximum < initial:
            self.error(("backoff", "max"), f"must be >= initial ({initial:g})")
        giveUp = table.get("give_up_after", 10)
        if giveUp == "never":
            giveUp = None
        elif not isinstance(giveUp, int) or giveUp < 1:
            self.error(
                ("backoff", "give_up_after"),
                f"must be an integer >= 1 or 'never', not {giveUp!r}",
            )
            giveUp = 10
        return BackoffConfig(
            initial=initial,
            factor=factor,
            max=maximum,
            resetAfter=self.number(table, ("backoff", "reset_after"), 30.0),
            giveUpAfter=giveUp,
        )

    def ready(self, program: Mapping[str, object]) -> ReadyConfig:
        """
        The C{ready} table: at most one readiness check.
        """
        table = self.table(program, "ready")
        timeout = self.number(table, ("ready", "timeout"), 60.0)
        kinds = [
            kind for kind in _READY_KINDS if kind in table and table[kind] is not False
        ]
        if len(kinds) > 1:
            for kind in kinds[1:]:
                self.error(
                    ("ready", kind),
                    f"only one readiness check may be given: {' and '.join(kinds)} are",
                )
        kind = kinds[0] if kinds else "after"
        if kind == "after":
            after = self.number(table, ("ready", "after"), 1.0)
            return ReadyConfig(kind="after", after=after, timeout=timeout)
        if kind == "tcp":
            return self.tcp(str(table["tcp"]), timeout)
        if kind == "command":
            argv = self.command(table["command"], ("ready", "command"))
            return ReadyConfig(
                kind="command", after=None, command=argv, timeout=timeout
            )
        return ReadyConfig(kind="notify", after=None, timeout=timeout)

    def tcp(self, address: str, timeout: float) -> ReadyConfig:
        """
        A C{ready.tcp} check of C{"host:port"} (C{"[::1]:80"} for IPv6).
        """
        host, _, port = address.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            self.error(
                ("ready", "tcp"),
                f"must be 'host:port' with a port from 1 to 65535, not {address!r}",
            )
            return ReadyConfig(kind="tcp", after=None, timeout=timeout)
        return ReadyConfig(
            kind="tcp", after=None, host=host, port=int(port), timeout=timeout
        )

    def stop(self, program: Mapping[str, object]) -> StopConfig:
        """
        The C{stop} table.
        """
        table = self.table(program, "stop")
        number = 15
        try:
            number = signalNumber(table.get("signal", "TERM"))
        except ValueError as error:
            self.error(("stop", "signal"), str(error))
        return StopConfig(
            signal=number,
            timeout=self.number(table, ("stop", "timeout"), 10.0),
            kill=self.choice(table, ("stop", "kill"), "tree", _KILLS),
        )

    def logs(self, program: Mapping[str, object], name: str, logDir: str) -> LogConfig:
        """
        The C{logs} table, its files made absolute under C{logDir}.
        """
        table = self.table(program, "logs")
        merge = table.get("merge", False)
        if merge and "stderr" in table:
            self.error(
                ("logs", "stderr"),
                "cannot be given with merge = true (stderr goes to stdout's file)",
            )
        stdout = os.path.join(logDir, str(table.get("stdout", f"{name}.out")))
        stderr = (
            None
            if merge
            else os.path.join(logDir, str(table.get("stderr", f"{name}.err")))
        )
        maxBytes = table.get("max_bytes", 10 * 1024**2)
        if isinstance(maxBytes, str):
            size = _SIZE.fullmatch(maxBytes)
            if size is None:
                self.error(
                    ("logs", "max_bytes"),
                    f"must be a size such as 10M, 512K or 1G, not {maxBytes!r}",
                )
                maxBytes = 0
            else:
                maxBytes = int(size.group(1)) * _UNITS[size.group(2).upper()]
        assert isinstance(maxBytes, int)
        if maxBytes < 0:
            self.error(("logs", "max_bytes"), f"must be >= 0, not {maxBytes!r}")
        backups = table.get("backups", 3)
        assert isinstance(backups, int)
        if backups < 0:
            self.error(("logs", "backups"), f"must be >= 0, not {backups!r}")
        return LogConfig(
            stdout=stdout,
            stderr=stderr,
            maxBytes=maxBytes,
            backups=backups,
            timestamps=bool(table.get("timestamps", False)),
            prefix=bool(table.get("prefix", False)),
            markers=bool(table.get("markers", True)),
        )


def buildProgram(
    problems: Problems,
    name: str,
    value: object,
    path: KeyPath,
    baseDir: str,
    logDir: str,
) -> ProgramConfig | None:
    """
    Check and build one program from its table.

    @param problems: Where each problem is reported.
    @param name: The program's name.
    @param value: Its table (or whatever the config has there).
    @param path: Its key path.
    @param baseDir: The directory C{cwd} is relative to.
    @param logDir: The directory log files are relative to.
    @return: The program, or C{None} if a problem was reported.
    """
    before = len(problems.errors)
    program = problems.table(value, path, _P)
    build = _Builder(problems, path)
    command: tuple[str, ...] = ("",)
    if "command" in program:
        command = build.command(program["command"], ("command",))
    elif isinstance(value, dict) and "command" not in value:
        problems.error(path, "missing required key 'command'")
    env = program.get("env", {})
    assert isinstance(env, dict)
    for key in env:
        if not key or "=" in key or "\0" in key:
            build.error(("env", key), "is not a valid environment variable name")
    instances = program.get("instances", 1)
    assert isinstance(instances, int)
    if instances < 1:
        build.error(("instances",), f"must be >= 1, not {instances!r}")
    dependsOn = program.get("depends_on", [])
    assert isinstance(dependsOn, list)
    spawnOptions = buildSpawnOptions(
        problems, program.get("spawn", {}), (*path, "spawn")
    )
    result = ProgramConfig(
        name=name,
        command=command,
        cwd=os.path.normpath(os.path.join(baseDir, str(program.get("cwd", ".")))),
        env=env,
        inheritEnv=bool(program.get("inherit_env", True)),
        user=build.ident(program, "user"),
        group=build.ident(program, "group"),
        instances=instances,
        restart=build.choice(program, ("restart",), "on-failure", _RESTARTS),
        dependsOn=tuple(dependsOn),
        autostart=bool(program.get("autostart", True)),
        backoff=build.backoff(program),
        ready=build.ready(program),
        stop=build.stop(program),
        logs=build.logs(program, name, logDir),
        spawnOptions=spawnOptions or SpawnOptions(),
    )
    return result if len(problems.errors) == before else None
