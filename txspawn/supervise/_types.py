# -*- test-case-name: tests.test_supervise_config -*-
"""
The types a config value may have (L{ValueType}), as the schema names them
and as error messages describe a value that has none of them
(L{describe}).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from attrs import frozen

__all__ = [
    "BOOLEAN",
    "COMMAND",
    "ID",
    "IDS",
    "INTEGER",
    "INTEGER_OR_STRING",
    "NUMBER",
    "NUMBER_OR_STRING",
    "STRING",
    "STRINGS",
    "STRING_TABLE",
    "TABLE",
    "ValueType",
    "describe",
]


def _isInt(value: object) -> bool:
    """
    Whether C{value} is an integer (TOML gives booleans as L{bool}, an
    L{int}).
    """
    return isinstance(value, int) and not isinstance(value, bool)


def _isNumber(value: object) -> bool:
    """
    Whether C{value} is an integer or a float.
    """
    return _isInt(value) or isinstance(value, float)


def _isStrings(value: object) -> bool:
    """
    Whether C{value} is an array of strings.
    """
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


@frozen
class ValueType:
    """
    A type a key's value may have.

    @ivar name: How the reference and the error messages call it
        (C{"a number"}).
    @ivar check: Whether a value (as L{tomllib} gives it) has this type.
    """

    name: str
    check: Callable[[object], bool]


STRING = ValueType("a string", lambda value: isinstance(value, str))
BOOLEAN = ValueType("a boolean", lambda value: isinstance(value, bool))
INTEGER = ValueType("an integer", _isInt)
NUMBER = ValueType("a number", _isNumber)
TABLE = ValueType("a table", lambda value: isinstance(value, dict))
STRINGS = ValueType("an array of strings", _isStrings)
COMMAND = ValueType(
    "a string or an array of strings",
    lambda value: isinstance(value, str) or _isStrings(value),
)
STRING_TABLE = ValueType(
    "a table of strings",
    lambda value: (
        isinstance(value, dict)
        and all(isinstance(item, str) for item in value.values())
    ),
)
ID = ValueType(
    "a name or an integer id", lambda value: isinstance(value, str) or _isInt(value)
)
INTEGER_OR_STRING = ValueType(
    "an integer or a string", lambda value: isinstance(value, str) or _isInt(value)
)
NUMBER_OR_STRING = ValueType(
    "a number or a string", lambda value: isinstance(value, str) or _isNumber(value)
)
IDS = ValueType(
    "an array of names or integer ids",
    lambda value: (
        isinstance(value, list)
        and all(isinstance(item, str) or _isInt(item) for item in value)
    ),
)


def describe(value: object) -> str:
    """
    A value's TOML type and the value, for an error message: C{a string
    ('x')}.
    """
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a float"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        kind = "an array"
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, (datetime.date, datetime.time)):
        kind = "a date-time"
    else:
        kind = type(value).__name__
    shown = repr(value) if not isinstance(value, bool) else str(value).lower()
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} ({shown})"
