# -*- test-case-name: tests.test_supervise_service -*-
"""
From a program's config to what runs it: the spawn arguments (argv,
environment, working directory, resolved user and group, spawn options
completed for the stop's whole-tree kill), the restart policy, the
backoff, the readiness check, the log files, and the
L{ProgramProcess} of each instance.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet.interfaces import IReactorProcess, IReactorTime

from txspawn.options import Cgroup, SpawnOptions
from txspawn.supervise._groupwait import GroupEnd
from txspawn.supervise._problems import ConfigError, ConfigErrors
from txspawn.supervise._programconfig import ProgramConfig
from txspawn.supervise.backoff import Backoff
from txspawn.supervise.logs import ProgramLogs
from txspawn.supervise.program import ProgramProcess, ProgramSpawn, Restart
from txspawn.supervise.readiness import Readiness, readinessFor

__all__ = [
    "BuildError",
    "BuiltInstance",
    "buildInstances",
    "resolveIds",
    "spawnFor",
    "spawnOptionsFor",
]

#: The variable each child gets with its instance name (C{"worker:1"}), so
#: that numbered copies can tell each other apart.
INSTANCE_VARIABLE = "TXSPAWN_INSTANCE"


class BuildError(ConfigErrors):
    """
    A valid config names something this machine does not have (a user, a
    group): found when its programs are built, before anything starts.

    @since: txspawn 0.1
    """

    def __str__(self) -> str:
        return "\n".join(
            f"{self.name}: {error.path}: {error.message}" for error in self.errors
        )


def resolveIds(
    config: ProgramConfig,
) -> tuple[int | None, int | None, list[ConfigError]]:
    """
    The uid and gid a program runs as: a user name is looked up (and gives
    the gid of its primary group unless C{group} is set), a group name
    too; ids are kept as they are.  C{None} for what is not set, and for
    ids that are this process's own (no change is asked for, so no
    privilege is needed).

    @return: C{(uid, gid, problems)}: each name that does not exist is one
        problem.
    """
    problems: list[ConfigError] = []
    where = f"programs.{config.name}"
    uid: int | None = None
    gid: int | None = None
    if isinstance(config.user, str):
        try:
            entry = pwd.getpwnam(config.user)
        except KeyError:
            problems.append(
                ConfigError(f"{where}.user", 0, f"no user named {config.user!r} here")
            )
        else:
            uid, gid = entry.pw_uid, entry.pw_gid
    elif isinstance(config.user, int):
        uid = config.user
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = None
    if isinstance(config.group, str):
        try:
            gid = grp.getgrnam(config.group).gr_gid
        except KeyError:
            problems.append(
                ConfigError(
                    f"{where}.group", 0, f"no group named {config.group!r} here"
                )
            )
    elif isinstance(config.group, int):
        gid = config.group
    if uid == os.geteuid() and gid in (None, os.getegid()):
        uid = gid = None
    return uid, gid, problems


def spawnOptionsFor(config: ProgramConfig) -> SpawnOptions:
    """
    The program's spawn options, completed for its stop: C{kill = "tree"}
    with no cgroup configured adds a best-effort cgroup
    (C{Cgroup(required=False)}: the tree is a cgroup where one can be
    made), and both C{"tree"} and C{"group"} start a new session (so there
    is a process group to signal, and to fall back to without a cgroup)
    unless the config placed the child in a session or group itself.
    """
    options = config.spawnOptions
    changes: dict[str, Any] = {}
    if config.stop.kill == "tree" and options.cgroup is None:
        changes["cgroup"] = Cgroup(required=False)
    if not options.newSession and options.processGroup is None:
        changes["newSession"] = True
    return attrs.evolve(options, **changes) if changes else options


def environmentFor(config: ProgramConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """
    A program's environment: C{environ} when it inherits it, then its
    C{env}.
    """
    env = dict(environ) if config.inheritEnv else {}
    env.update(config.env)
    return env


def spawnFor(
    config: ProgramConfig,
    instance: str,
    environ: Mapping[str, str],
    extraEnv: Mapping[str, str],
    uid: int | None,
    gid: int | None,
) -> ProgramSpawn:
    """
    What one instance spawns: its environment is C{environ} (the
    program's, from L{environmentFor}), then C{extraEnv} (the readiness
    check's, e.g. C{NOTIFY_SOCKET}), then L{INSTANCE_VARIABLE}.
    """
    env: dict[str | bytes, str | bytes] = {}
    env.update(environ)
    env.update(extraEnv)
    env[INSTANCE_VARIABLE] = instance
    return ProgramSpawn(
        argv=config.command,
        env=env,
        path=config.cwd,
        uid=uid,
        gid=gid,
        options=spawnOptionsFor(config),
    )


def backoffFor(config: ProgramConfig) -> Backoff:
    """
    The program's L{Backoff}.
    """
    backoff = config.backoff
    return Backoff(
        initial=backoff.initial,
        factor=backoff.factor,
        max=backoff.max,
        resetAfter=backoff.resetAfter,
        giveUpAfter=backoff.giveUpAfter,
    )


@attrs.define
class BuiltInstance:
    """
    One instance of a program, built: its process, its logs and its
    readiness check's resources.

    @ivar name: The instance's name.
    @ivar program: The program's name.
    @ivar config: The program's config it was built from.
    @ivar process: Its L{ProgramProcess}.
    @ivar logs: Its C{ProgramLogs}.
    @ivar readiness: Its readiness (C{close} releases it).
    """

    name: str
    program: str
    config: ProgramConfig
    process: ProgramProcess
    logs: ProgramLogs
    readiness: Readiness


def buildInstances(
    config: ProgramConfig,
    reactor: IReactorProcess,
    *,
    environ: Mapping[str, str],
    runDir: str,
    configName: str = "<config>",
) -> list[BuiltInstance]:
    """
    Build every instance of a program (nothing is started).

    @raise BuildError: a user or group it names does not exist.
    """
    uid, gid, problems = resolveIds(config)
    if problems:
        raise BuildError(configName, problems)
    clock: IReactorTime = reactor  # type: ignore[assignment]
    env = environmentFor(config, environ)
    built: list[BuiltInstance] = []
    names = config.instanceNames
    try:
        for index, instance in enumerate(names):
            readiness = readinessFor(
                config.ready,
                reactor,
                instance=instance,
                runDir=runDir,
                env={**env, INSTANCE_VARIABLE: instance},
                cwd=config.cwd,
            )
            try:
                logs = ProgramLogs(
                    config.logs, instance, clock, index if len(names) > 1 else None
                )
            except BaseException:
                readiness.close()
                raise
            groupEnd = GroupEnd(reactor)  # type: ignore[arg-type]
            process = ProgramProcess(
                instance,
                reactor,
                spawnFor(config, instance, env, readiness.environment, uid, gid),
                restart=Restart(config.restart),
                backoff=backoffFor(config),
                readiness=readiness.check,
                stopSignal=config.stop.signal,
                stopTimeout=config.stop.timeout,
                output=logs.write,
                groupEnd=groupEnd,
            )
            process.addObserver(groupEnd)
            built.append(
                BuiltInstance(instance, config.name, config, process, logs, readiness)
            )
    except BaseException:
        for each in built:
            each.logs.close()
            each.readiness.close()
        raise
    return built
