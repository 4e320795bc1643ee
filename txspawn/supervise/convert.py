# -*- test-case-name: tests.test_supervise_convert -*-
"""
Convert a supervisord config (C{supervisord.conf}) to the supervisor's TOML
config.

L{convertSupervisord} converts the keys most configs use and lists every
one it could not, with its section, so nothing is dropped silently.  The
TOML it writes loads with L{txspawn.supervise.parseConfig}.

Differences a converted config keeps on purpose:
  - supervisord signals only a program's own process unless
    C{stopasgroup}/C{killasgroup}; txspawn's default, C{stop.kill =
    "tree"}, signals the whole tree;
  - supervisord starts programs by C{priority}; txspawn starts them in the
    order of the file (programs are written in C{priority} order) after
    their C{depends_on};
  - C{%(here)s} becomes C{.}: relative paths are relative to the TOML
    file's directory, so the TOML file belongs beside the original.

@since: txspawn 0.1
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
from collections.abc import Callable, Mapping

__all__ = ["convertSupervisord"]

_BOOLEANS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
_RESTARTS = {"true": "always", "false": "never", "unexpected": "on-failure"}
_SIZE = re.compile(r"\s*(\d+)\s*(KB|MB|GB)?\s*", re.IGNORECASE)
_EXPANSION = re.compile(r"%\((\w+)\)([-#0 +]*\d*)([sd])|%%")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# supervisord's values for "no log file" and "the default log file".
_NO_LOG = "none"
_AUTO_LOG = "auto"


class _NotConverted(Exception):
    """
    A value that has no equivalent; its message says why.
    """


def _quote(value: object) -> str:
    """
    A TOML value: strings as basic strings, lists and tables inline.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_quote(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{_key(k)} = {_quote(v)}" for k, v in value.items())
            + " }"
        )
    # JSON's escapes are TOML's; ensure_ascii keeps control characters out.
    return json.dumps(str(value))


def _key(key: str) -> str:
    """
    A TOML key: bare when it can be.
    """
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _boolean(value: str) -> bool:
    """
    A supervisord boolean.
    """
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise _NotConverted(f"not a boolean: {value!r}") from None


def _integer(value: str) -> int:
    """
    A supervisord integer.
    """
    try:
        return int(value.strip())
    except ValueError:
        raise _NotConverted(f"not an integer: {value!r}") from None


def _size(value: str) -> int:
    """
    A supervisord byte size (C{50MB}, C{1KB}, C{1024}: powers of 1024).
    """
    found = _SIZE.fullmatch(value)
    if found is None:
        raise _NotConverted(f"not a byte size: {value!r}")
    units = {None: 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
    unit = found.group(2).upper() if found.group(2) else None
    return int(found.group(1)) * units[unit]


def _sizeText(size: int) -> str | int:
    """
    A byte size as the TOML config writes it: C{"50M"} when it is whole.
    """
    for suffix, unit in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return size


def _environment(value: str) -> dict[str, str]:
    """
    supervisord's C{environment}: C{KEY="value",KEY2=value2}.
    """
    lexer = shlex.shlex(value, posix=True)
    lexer.wordchars += "/.+-():@%$*?[]{}~!^&|<>\\;"
    lexer.whitespace += ","
    lexer.whitespace_split = False
    tokens = list(lexer)
    env: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        triple = tokens[index : index + 3]
        if len(triple) != 3 or triple[1] != "=":
            raise _NotConverted(f"not KEY=value pairs: {value!r}")
        env[triple[0]] = triple[2]
        index += 3
    return env


def _unixControl(section: Mapping[str, str]) -> str:
    """
    The control endpoint of a C{[unix_http_server]}.
    """
    path = section.get("file", "supervisor.sock").replace(":", "\\:")
    mode = section.get("chmod", "0700").strip()
    mode = mode[1:] if len(mode) == 4 and mode.startswith("0") else mode
    return f"unix:path={path}:mode={mode}"


def _inetControl(section: Mapping[str, str]) -> str:
    """
    The control endpoint of an C{[inet_http_server]}.
    """
    host, _, port = section.get("port", "").rpartition(":")
    if not port.isdigit():
        raise _NotConverted(f"not host:port: {section.get('port')!r}")
    host = "0.0.0.0" if host in ("", "*") else host
    return f"tcp:{port}:interface={host}"


class _Converter:
    """
    Converts one supervisord config, collecting what it cannot convert.
    """

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.supervisor: dict[str, object] = {}
        self.programs: list[tuple[int, str, dict[str, dict[str, object]]]] = []

    def note(self, section: str, key: str | None, why: str) -> None:
        """
        Record something not converted.
        """
        self.notes.append(f"[{section}] {key}: {why}" if key else f"[{section}] {why}")

    def expand(
        self, section: str, key: str, value: str, names: Mapping[str, str]
    ) -> str:
        """
        supervisord's C{%(name)s} expansions of a value, with C{$} escaped
        for the TOML config's C{${VAR}}: C{%(ENV_X)s} becomes C{${X}}.
        """
        value = value.replace("$", "$$")

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "%%":
                return "%"
            name, flags, kind = match.groups()
            if name.startswith("ENV_"):
                return "${" + name[4:] + "}"
            if name not in names:
                self.note(section, key, f"%({name}){kind} has no equivalent")
                return match.group(0)
            text = names[name]
            if kind == "d" and text.isdigit():
                return ("%" + flags + "d") % int(text)
            return text

        return _EXPANSION.sub(substitute, value)

    def server(self, name: str, section: Mapping[str, str]) -> None:
        """
        Convert C{[supervisord]}, C{[unix_http_server]} and
        C{[inet_http_server]}: only what the TOML config has.
        """
        for key, value in section.items():
            if name == "supervisord" and key == "childlogdir":
                names = {"here": "."}
                self.supervisor["log_dir"] = self.expand(name, key, value, names)
            elif name == "unix_http_server" and key in ("file", "chmod"):
                self.supervisor.setdefault("control", _unixControl(section))
            elif name == "inet_http_server" and key == "port":
                try:
                    self.supervisor.setdefault("control", _inetControl(section))
                except _NotConverted as error:
                    self.note(name, key, str(error))
            else:
                self.note(name, key, "not converted")

    def program(self, name: str, raw: Mapping[str, str]) -> None:
        """
        Convert one C{[program:NAME]}.
        """
        section = f"program:{name}"
        tomlName = (
            name if _NAME.fullmatch(name) else re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        )
        if tomlName != name:
            self.note(section, None, f"renamed {tomlName!r} (letters, digits, _ . -)")
        numprocs = raw.get("numprocs", "1")
        start = raw.get("numprocs_start", "0")
        names = {
            "program_name": name,
            "group_name": name,
            "here": ".",
            "numprocs": numprocs,
            "process_num": start,
        }
        raw = dict(raw)
        processName = raw.pop("process_name", "%(program_name)s")
        if "%(program_name)s" not in processName:
            # Copies are always named NAME or NAME:N.
            self.note(section, "process_name", "not converted")
        values = {
            key: self.expand(section, key, value, names) for key, value in raw.items()
        }
        tables: dict[str, dict[str, object]] = {"": {}}
        priority = 999
        for key, value in values.items():
            if "%(process_num)" in raw[key] and numprocs.strip() != "1":
                self.note(
                    section,
                    key,
                    "%(process_num) differs by instance: written as the first "
                    f"instance's ({start})",
                )
            try:
                if key == "priority":
                    priority = _integer(value)
                    self.note(
                        section,
                        key,
                        "start order by priority: programs are written in "
                        "priority order; use depends_on for an order that "
                        "matters",
                    )
                else:
                    self._key(tables, section, key, value, values)
            except _NotConverted as error:
                self.note(section, key, str(error))
        if "command" not in tables[""]:
            self.note(section, None, "no command: not converted")
            return
        self.programs.append((priority, tomlName, tables))

    def _key(
        self,
        tables: dict[str, dict[str, object]],
        section: str,
        key: str,
        value: str,
        values: Mapping[str, str],
    ) -> None:
        """
        Convert one key of a program into its table.
        """
        top = tables[""]

        def put(table: str, name: str, converted: object) -> None:
            tables.setdefault(table, {})[name] = converted

        simple: dict[str, tuple[str, str, Callable[[str], object]]] = {
            "directory": ("", "cwd", str),
            "user": ("", "user", str),
            "autostart": ("", "autostart", _boolean),
            "numprocs": ("", "instances", _integer),
            "startsecs": ("ready", "after", _integer),
            "stopsignal": ("stop", "signal", str.upper),
            "stopwaitsecs": ("stop", "timeout", _integer),
            "stdout_logfile_maxbytes": ("logs", "max_bytes", self._maxBytes),
            "stdout_logfile_backups": ("logs", "backups", _integer),
            "umask": ("spawn", "umask", str.strip),
        }
        if key in simple:
            table, name, convert = simple[key]
            put(table, name, convert(value))
        elif key == "command":
            try:
                top["command"] = shlex.split(value)
            except ValueError as error:
                raise _NotConverted(f"cannot be split: {error}") from None
        elif key == "environment":
            put("", "env", _environment(value))
        elif key == "autorestart":
            restart = _RESTARTS.get(value.strip().lower())
            if restart is None:
                raise _NotConverted(f"not true, false or unexpected: {value!r}")
            put("", "restart", restart)
        elif key == "startretries":
            put("backoff", "give_up_after", _integer(value) + 1)
        elif key in ("stopasgroup", "killasgroup"):
            if _boolean(value):
                put("stop", "kill", "group")
        elif key == "redirect_stderr":
            if _boolean(value):
                put("logs", "merge", True)
                if "stderr_logfile" in values:
                    self.note(section, "stderr_logfile", "unused with redirect_stderr")
        elif key in ("stdout_logfile", "stderr_logfile"):
            self._logFile(tables, section, key, value, values)
        elif key == "exitcodes" and value.replace(" ", "") == "0":
            pass
        elif key == "numprocs_start":
            pass
        else:
            raise _NotConverted("not converted")

    def _maxBytes(self, value: str) -> str | int:
        """
        C{stdout_logfile_maxbytes} as C{logs.max_bytes}.
        """
        return _sizeText(_size(value))

    def _logFile(
        self,
        tables: dict[str, dict[str, object]],
        section: str,
        key: str,
        value: str,
        values: Mapping[str, str],
    ) -> None:
        """
        Convert C{stdout_logfile} or C{stderr_logfile}.
        """
        stream = key.split("_")[0]
        lowered = value.strip().lower()
        if lowered == _AUTO_LOG:
            return
        if stream == "stderr" and _boolean(values.get("redirect_stderr", "false")):
            return
        if lowered == _NO_LOG:
            raise _NotConverted("NONE (no log file) has no equivalent: one is kept")
        if lowered == "syslog":
            raise _NotConverted("syslog has no equivalent")
        tables.setdefault("logs", {})[stream] = value

    def toml(self) -> str:
        """
        The converted config's text.
        """
        lines = ["# Converted from a supervisord config by txspawn."]
        lines += [f"# Not converted: {note}" for note in self.notes]
        if self.supervisor:
            lines += ["", "[supervisor]"]
            lines += [f"{k} = {_quote(v)}" for k, v in self.supervisor.items()]
        logDir = str(self.supervisor.get("log_dir", "logs"))
        for _, name, tables in sorted(self.programs, key=lambda entry: entry[0]):
            logs = tables.get("logs", {})
            for stream in ("stdout", "stderr"):
                path = logs.get(stream)
                if isinstance(path, str) and not os.path.isabs(path):
                    # Relative to the config's directory in supervisord (as
                    # %(here)s gives them), to log_dir in the TOML config.
                    logs[stream] = os.path.relpath(path, logDir)
            lines += ["", f"[programs.{_key(name)}]"]
            lines += [f"{k} = {_quote(v)}" for k, v in tables[""].items()]
            for table in ("backoff", "ready", "stop", "logs", "spawn"):
                if table in tables:
                    lines += ["", f"[programs.{_key(name)}.{table}]"]
                    lines += [f"{k} = {_quote(v)}" for k, v in tables[table].items()]
        return "\n".join(lines) + "\n"


def convertSupervisord(text: str) -> tuple[str, list[str]]:
    """
    Convert a supervisord config to the TOML config.

    Converted: C{[program:x]}'s C{command}, C{directory}, C{environment},
    C{user}, C{autostart}, C{autorestart}, C{startsecs} (C{ready.after}),
    C{startretries} (C{backoff.give_up_after}, one more: supervisord counts
    retries, txspawn failed starts), C{stopsignal}, C{stopwaitsecs},
    C{stopasgroup}/C{killasgroup} (C{stop.kill = "group"}),
    C{stdout_logfile}, C{stderr_logfile}, C{redirect_stderr},
    C{stdout_logfile_maxbytes}, C{stdout_logfile_backups}, C{numprocs},
    C{umask} and C{priority} (the order programs are written in); the
    expansions C{%(program_name)s}, C{%(process_num)s}, C{%(here)s} and
    C{%(ENV_X)s} (which becomes C{${X}}); C{[supervisord]}'s
    C{childlogdir}; the control socket of C{[unix_http_server]} or
    C{[inet_http_server]}.

    @param text: The supervisord config's text.
    @return: The TOML text, and what could not be converted, each as
        C{"[section] key: why"} (also written as comments at the top of
        the TOML).
    @raise configparser.Error: if C{text} is not an INI file.
    """
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";",), strict=False, default_section="\0"
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    converter = _Converter()
    for section in parser.sections():
        raw = dict(parser.items(section))
        kind, _, name = section.partition(":")
        if kind == "program" and name:
            converter.program(name, raw)
        elif section in ("supervisord", "unix_http_server", "inet_http_server"):
            converter.server(section, raw)
        elif section == "supervisorctl" or kind == "rpcinterface":
            # The client's and the XML-RPC interface's settings: the TOML
            # config has no counterpart, and needs none.
            continue
        else:
            converter.note(section, None, "section not converted")
    return converter.toml(), converter.notes
