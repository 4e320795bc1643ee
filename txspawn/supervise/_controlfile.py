# -*- test-case-name: tests.test_supervise_ctl -*-
"""
What a config file says about reaching its supervisor, read without
loading the config: C{${VAR}} expansion (which the loader uses for every
string) and the control endpoint (a unix socket's path made absolute from
the config's directory).

Only the stdlib here: C{python -m txspawn ctl -c procs.toml} reads the
endpoint with L{controlOfFile}, and must not pay for the whole config's
validation (which imports txspawn's spawn options, and Twisted).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping

__all__ = [
    "DEFAULT_CONTROL",
    "absoluteControl",
    "controlOfFile",
    "expandVariables",
]

#: The control endpoint when the config gives none.
DEFAULT_CONTROL = "unix:path=txspawn.sock:mode=600"

_VARIABLE = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{)|)")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def expandVariables(
    value: str, environ: Mapping[str, str], error: Callable[[str], object]
) -> str:
    """
    C{value} with C{${VAR}} replaced from C{environ} and C{$$} by C{$}; a
    C{$} followed by anything else is kept.

    @param error: Called with why, for each variable that is unset, badly
        named or not closed (it is replaced by nothing).
    """
    if "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        if match.group(3):
            error("${ is not closed by }")
            return ""
        name = match.group(2)
        if name is None:
            # A "$" followed by neither "$" nor "{": kept as written.
            return "$"
        if not _VARIABLE_NAME.fullmatch(name):
            error(f"${{{name}}} is not a valid variable name")
            return ""
        if name not in environ:
            error(f"${{{name}}} is not set in the environment")
            return ""
        return environ[name]

    return _VARIABLE.sub(substitute, value)


def absoluteControl(control: str, baseDir: str) -> str:
    """
    The control endpoint string with a relative unix socket path made
    relative to C{baseDir} (the config file's directory), so that the
    supervisor's socket does not depend on the directory it is started in.
    """
    parts = _UNESCAPED_COLON.split(control)
    if parts[0] != "unix":
        return control
    for index, part in enumerate(parts[1:], 1):
        positional = "=" not in part and index == 1
        if positional or part.startswith("path="):
            prefix = "" if positional else "path="
            path = part[len(prefix) :].replace("\\:", ":")
            if path and not os.path.isabs(path):
                path = os.path.join(baseDir, path)
            parts[index] = prefix + path.replace(":", "\\:")
    return ":".join(parts)


def controlOfFile(path: str, environ: Mapping[str, str]) -> str | None:
    """
    The control endpoint of the config file C{path}, as the loader would
    give it, from its C{[supervisor]} table alone (the rest of the file may
    have errors: C{ctl reload} then shows the supervisor's report of them).

    @return: The endpoint, or C{None} if C{[supervisor] control} is not a
        string whose variables are all set.
    @raise OSError: The file cannot be read.
    @raise tomllib.TOMLDecodeError: It is not TOML.
    """
    with open(path, "rb") as configFile:
        document = tomllib.load(configFile)
    supervisor = document.get("supervisor", {})
    if not isinstance(supervisor, dict):
        return None
    control = supervisor.get("control", DEFAULT_CONTROL)
    if not isinstance(control, str):
        return None
    problems: list[str] = []
    expanded = expandVariables(control, environ, problems.append)
    if problems:
        return None
    return absoluteControl(expanded, os.path.dirname(os.path.abspath(path)))
