# -*- test-case-name: tests.test_supervise_config -*-
"""
A program's C{[spawn]} table, built into L{txspawn.options.SpawnOptions}.

The keys are the options' own names in snake_case; their values are checked
by the options' own validation (L{SpawnOptions}, L{Namespaces}, L{Cgroup}),
whose messages are reported under the key path they are about.
"""

from __future__ import annotations

import re
import resource
import signal
from typing import Any

from txspawn.options import Cgroup, Namespaces, SpawnOptions
from txspawn.supervise._locate import KeyPath
from txspawn.supervise._problems import Problems

__all__ = ["buildSpawnOptions", "camelCase", "signalNumber"]

_P = "programs.NAME.spawn"

# The words TOML may use for RLIM_INFINITY.
_INFINITY = frozenset({"infinity", "unlimited"})


def camelCase(key: str) -> str:
    """
    The Python name of a snake_case key: C{memory_max} -> C{memoryMax}.
    """
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


def signalNumber(value: object) -> int:
    """
    A signal given by name (C{"TERM"}, C{"SIGTERM"}, any case) or number.

    @raise ValueError: if it is no signal.
    """
    if isinstance(value, str):
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        number = getattr(signal.Signals, name, None)
        if number is None:
            raise ValueError(f"must be a signal name such as TERM, not {value!r}")
        return int(number)
    if isinstance(value, int) and value in signal.valid_signals() and value > 0:
        return int(value)
    raise ValueError(f"must be a signal name or number, not {value!r}")


def _fieldPath(message: str, prefix: str, keys: KeyPath, path: KeyPath) -> KeyPath:
    """
    The key an option's error message is about: the first of C{keys} whose
    Python name the message gives after C{prefix} (C{"Cgroup.memoryMax"}),
    else the table's own path.
    """
    found = re.search(re.escape(prefix) + r"(\w+)", message)
    if found:
        for key in keys:
            if isinstance(key, str) and camelCase(key) == found.group(1):
                return (*path, key)
    return path


def _build(
    problems: Problems,
    kind: type[Namespaces] | type[Cgroup],
    table: dict[str, object],
    path: KeyPath,
) -> Namespaces | Cgroup | None:
    """
    Build a L{Namespaces} or L{Cgroup} from its table, reporting its error.
    """
    try:
        # The values are checked by the options' own validation: Any, as
        # they come from TOML unchecked.
        values: dict[str, Any] = {camelCase(key): value for key, value in table.items()}
        return kind(**values)
    except (TypeError, ValueError) as error:
        problems.error(
            _fieldPath(str(error), kind.__name__ + ".", tuple(table), path),
            str(error),
        )
        return None


def _checked(
    problems: Problems, where: KeyPath, options: dict[str, Any]
) -> dict[str, Any] | None:
    """
    C{options} if L{SpawnOptions} accepts them, else C{None} with its
    message reported at C{where}: each option is checked alone, so that
    each message is given under the key it is about.
    """
    try:
        SpawnOptions(**options)
    except (TypeError, ValueError) as error:
        problems.error(where, str(error))
        return None
    return options


def _rlimits(
    problems: Problems, table: dict[str, object], path: KeyPath
) -> dict[str, tuple[object, object]]:
    """
    The C{rlimits} table: C{NOFILE = [soft, hard]}, either one possibly
    C{"infinity"}; an entry with a problem is reported and left out.
    """
    limits: dict[str, tuple[object, object]] = {}
    for name, pair in table.items():
        if not isinstance(pair, list) or len(pair) != 2:
            problems.error((*path, name), "must be a [soft, hard] pair")
            continue
        values = [
            resource.RLIM_INFINITY
            if isinstance(item, str) and item.lower() in _INFINITY
            else item
            for item in pair
        ]
        limit = {name.upper(): (values[0], values[1])}
        if _checked(problems, (*path, name), {"rlimits": limit}) is not None:
            limits.update(limit)
    return limits


def buildSpawnOptions(
    problems: Problems, value: object, path: KeyPath
) -> SpawnOptions | None:
    """
    Build a program's L{SpawnOptions} from its C{[spawn]} table.

    @param value: The table (or whatever the config has there).
    @param path: Its key path.
    @return: The options, or C{None} if a problem was reported.
    """
    table = problems.table(value, path, _P)
    before = len(problems.errors)
    options: dict[str, Any] = {}
    for key, item in table.items():
        where = (*path, key)
        if key == "umask" and isinstance(item, str):
            try:
                item = int(item, 8)
            except ValueError:
                problems.error(where, f"must be octal text such as '022', not {item!r}")
                continue
        elif key == "death_signal":
            try:
                item = signalNumber(item)
            except ValueError as error:
                problems.error(where, str(error))
                continue
        elif key == "rlimits":
            assert isinstance(item, dict)
            item = _rlimits(problems, item, where)
        elif key in ("namespaces", "cgroup"):
            schemaPath = f"{_P}.{key}"
            kind = Namespaces if key == "namespaces" else Cgroup
            item = _build(
                problems, kind, problems.table(item, where, schemaPath), where
            )
            if item is None:
                continue
        if _checked(problems, where, {camelCase(key): item}) is not None:
            options[camelCase(key)] = item
    try:
        # What the options' combination allows (each is valid alone).
        spawnOptions = SpawnOptions(**options)
    except (TypeError, ValueError) as error:
        message = str(error)
        problems.error(
            _fieldPath(message, "SpawnOptions.", tuple(table), path), message
        )
        return None
    return None if len(problems.errors) > before else spawnOptions
