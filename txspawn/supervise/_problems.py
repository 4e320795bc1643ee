# -*- test-case-name: tests.test_supervise_config -*-
"""
Config errors, and the collector that gathers every problem of a config
before any is reported.

Each problem is one L{ConfigError} naming its key path and line; the loader
records them all and raises them together, as one L{ConfigErrors}, so a
user fixes a config in one pass rather than one error per run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from attrs import frozen

from txspawn.supervise._locate import KeyPath, formatPath, lineOf
from txspawn.supervise._schema import tableKeys
from txspawn.supervise._types import TABLE, describe

__all__ = ["ConfigError", "ConfigErrors", "Problems"]


@frozen
class ConfigError:
    """
    One problem of a config.

    @ivar path: The key path it is about, as TOML writes it
        (C{"programs.web.restart"}); C{""} for the document (a TOML syntax
        error).
    @ivar line: The line (1-based) the key is written on.
    @ivar message: What is wrong, and what would be right.

    @since: txspawn 0.1
    """

    path: str
    line: int
    message: str


class ConfigErrors(ValueError):
    """
    A config is not valid: every problem found in it, each with its key path
    and line.  Its text lists them one a line, as compilers do:
    C{procs.toml:12: programs.web.restart: must be one of ...}.

    @ivar name: The config's name (its file name) in the messages.
    @ivar errors: The problems, in the order of their lines.

    @since: txspawn 0.1
    """

    def __init__(self, name: str, errors: Sequence[ConfigError]) -> None:
        self.name = name
        self.errors = tuple(sorted(errors, key=lambda error: error.line))
        super().__init__(name, self.errors)

    def __str__(self) -> str:
        return "\n".join(
            f"{self.name}:{error.line}: {error.path}: {error.message}"
            if error.path
            else f"{self.name}:{error.line}: {error.message}"
            for error in self.errors
        )


class Problems:
    """
    Collects the problems of one config, knowing the line of every key.

    @ivar errors: The problems found so far.
    """

    def __init__(self, lines: Mapping[KeyPath, int]) -> None:
        self._lines = lines
        self.errors: list[ConfigError] = []

    def error(self, path: KeyPath, message: str) -> None:
        """
        Record a problem with the key at C{path}.
        """
        self.errors.append(
            ConfigError(formatPath(path), lineOf(self._lines, path), message)
        )

    def table(self, value: object, path: KeyPath, schemaPath: str) -> dict[str, object]:
        """
        Check a table against the schema: it is a table, it has no unknown
        key, and each key's value has the key's type.

        @param value: The table, as L{tomllib} gives it.
        @param path: Where it is.
        @param schemaPath: Its path in L{CONFIG_SCHEMA}
            (C{"programs.NAME.stop"}).
        @return: Its keys whose values have the right type (the others are
            reported and left out, so that later checks see only
            well-typed values); an empty table if C{value} is not one.
        """
        if not isinstance(value, dict):
            self.error(path, f"must be a table, not {describe(value)}")
            return {}
        known = tableKeys(schemaPath)
        if known is None:
            return dict(value)
        checked: dict[str, object] = {}
        for key, item in value.items():
            entry = known.get(key)
            if entry is None:
                self.error((*path, key), _unknownKey(key, sorted(known)))
            elif not entry.type.check(item):
                if entry.type is TABLE:
                    message = f"must be a table, not {describe(item)}"
                else:
                    message = f"must be {entry.type.name}, not {describe(item)}"
                self.error((*path, key), message)
            else:
                checked[key] = item
        return checked


def _unknownKey(key: str, known: list[str]) -> str:
    """
    The message for an unknown key: the likely meant one, or every one.
    """
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (known keys: {', '.join(known)})"
