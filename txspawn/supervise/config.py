# -*- test-case-name: tests.test_supervise_config -*-
"""
The supervisor's config: a TOML file of programs, validated when it is
loaded.

L{loadConfig} (or L{parseConfig}, for text) returns a L{SupervisorConfig}
or raises L{ConfigErrors} listing every problem at once, each with its key
path and line.  C{${VAR}} is expanded in string values (never in keys) from
the environment given; C{$$} is a literal C{$}.  Every key, with its type,
default and meaning, is listed in L{CONFIG_SCHEMA}.

@since: txspawn 0.1
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from types import MappingProxyType

from attrs import field, frozen

from txspawn.supervise._controlfile import (
    DEFAULT_CONTROL,
    absoluteControl,
    expandVariables,
)
from txspawn.supervise._locate import KeyPath, keyLines
from txspawn.supervise._problems import ConfigError, ConfigErrors, Problems
from txspawn.supervise._programconfig import (
    BackoffConfig,
    LogConfig,
    ProgramConfig,
    ReadyConfig,
    StopConfig,
    buildProgram,
)
from txspawn.supervise._schema import CONFIG_SCHEMA, SchemaEntry

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

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _frozenMapping(value: Mapping[str, ProgramConfig]) -> Mapping[str, ProgramConfig]:
    """
    A read-only copy of the programs.
    """
    return MappingProxyType(dict(value))


@frozen
class SupervisorConfig:
    """
    A loaded, valid supervisor config.

    @ivar control: The control API's endpoint string (a relative unix
        socket path made absolute from the config file's directory).
    @ivar logDir: The absolute directory log files go in.
    @ivar programs: The programs by name, in the order of the file.

    @since: txspawn 0.1
    """

    control: str
    logDir: str
    programs: Mapping[str, ProgramConfig] = field(converter=_frozenMapping, hash=False)

    def startOrder(self) -> tuple[str, ...]:
        """
        The program names in the order to start them: each after every
        program it depends on, and otherwise in the order of the file.
        """
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dependency in self.programs[name].dependsOn:
                visit(dependency)
            order.append(name)

        for name in self.programs:
            visit(name)
        return tuple(order)

    def stopOrder(self) -> tuple[str, ...]:
        """
        The program names in the order to stop them: L{startOrder}
        reversed, so each stops before what it depends on.
        """
        return tuple(reversed(self.startOrder()))


def _expand(
    value: object, path: KeyPath, environ: Mapping[str, str], problems: Problems
) -> object:
    """
    C{value} with C{${VAR}} expanded in every string in it.
    """
    if isinstance(value, dict):
        return {
            key: _expand(item, (*path, key), environ, problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _expand(item, (*path, index), environ, problems)
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value
    return expandVariables(value, environ, lambda why: problems.error(path, why))


def _dependencies(programs: Mapping[str, tuple[str, ...]], problems: Problems) -> None:
    """
    Report unknown dependencies and every dependency cycle (named
    C{a -> b -> a}).

    @param programs: Every program's dependencies, by its name (a program
        that has problems of its own included, so that its name is known).
    """
    for name, dependsOn in programs.items():
        for index, dependency in enumerate(dependsOn):
            if dependency not in programs:
                problems.error(
                    ("programs", name, "depends_on", index),
                    f"unknown program {dependency!r} (programs: {', '.join(programs)})",
                )
    done: set[str] = set()
    stack: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in stack:
            cycle = [*stack[stack.index(name) :], name]
            problems.error(
                ("programs", cycle[0], "depends_on"),
                f"dependency cycle: {' -> '.join(cycle)}",
            )
            return
        stack.append(name)
        for dependency in programs[name]:
            if dependency in programs:
                visit(dependency)
        stack.pop()
        done.add(name)

    for name in programs:
        visit(name)


def parseConfig(
    text: str,
    name: str = "<string>",
    baseDir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SupervisorConfig:
    """
    Parse and validate a config.

    @param text: The TOML text.
    @param name: What to call it in error messages (its file name).
    @param baseDir: The directory relative paths (C{cwd}, C{log_dir}) are
        relative to; the current directory if C{None}.
    @param environ: Where C{${VAR}} is looked up; L{os.environ} if
        C{None}.
    @raise ConfigErrors: listing every problem found.
    """
    baseDir = os.path.abspath(os.getcwd() if baseDir is None else baseDir)
    environ = os.environ if environ is None else environ
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"line (\d+)", str(error))
        line = int(found.group(1)) if found else 1
        raise ConfigErrors(name, [ConfigError("", line, str(error))]) from None
    problems = Problems(keyLines(text))
    expanded = _expand(document, (), environ, problems)
    root = problems.table(expanded, (), "")
    supervisor = problems.table(
        root.get("supervisor", {}), ("supervisor",), "supervisor"
    )
    control = supervisor.get("control", DEFAULT_CONTROL)
    logDir = os.path.normpath(
        os.path.join(baseDir, str(supervisor.get("log_dir", "logs")))
    )
    programs: dict[str, ProgramConfig] = {}
    dependencies: dict[str, tuple[str, ...]] = {}
    rawPrograms = root.get("programs", {})
    if not isinstance(rawPrograms, dict):
        problems.error(("programs",), "must be a table")
        rawPrograms = {}
    for programName, value in rawPrograms.items():
        path: KeyPath = ("programs", programName)
        if not _NAME.fullmatch(programName):
            problems.error(
                path,
                "a program name is made of letters, digits and _ . - only, "
                f"not {programName!r}",
            )
            continue
        dependsOn = value.get("depends_on") if isinstance(value, dict) else None
        dependencies[programName] = (
            tuple(item for item in dependsOn if isinstance(item, str))
            if isinstance(dependsOn, list)
            else ()
        )
        program = buildProgram(problems, programName, value, path, baseDir, logDir)
        if program is not None:
            programs[programName] = program
    _dependencies(dependencies, problems)
    if problems.errors:
        raise ConfigErrors(name, problems.errors)
    assert isinstance(control, str)
    return SupervisorConfig(
        control=absoluteControl(control, baseDir), logDir=logDir, programs=programs
    )


def loadConfig(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> SupervisorConfig:
    """
    Load and validate a config file.

    Relative paths in it are relative to its directory.

    @param path: The file.
    @param environ: Where C{${VAR}} is looked up; L{os.environ} if
        C{None}.
    @raise ConfigErrors: listing every problem found.
    @raise OSError: if the file cannot be read.
    """
    with open(path, encoding="utf-8") as configFile:
        text = configFile.read()
    return parseConfig(
        text,
        name=os.fspath(path),
        baseDir=os.path.dirname(os.path.abspath(path)),
        environ=environ,
    )
