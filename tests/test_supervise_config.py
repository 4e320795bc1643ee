# -*- test-case-name: tests.test_supervise_config -*-
"""
Tests for L{txspawn.supervise.config}: a valid config loads into its value
types with the documented defaults; every problem of an invalid one is
reported, all together, each with its key path and line.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import signal
import tomllib
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from txspawn.options import Cgroup, Namespaces, SpawnOptions
from txspawn.supervise import (
    CONFIG_SCHEMA,
    BackoffConfig,
    ConfigError,
    ConfigErrors,
    LogConfig,
    ReadyConfig,
    StopConfig,
    SupervisorConfig,
    loadConfig,
    parseConfig,
)
from txspawn.supervise._locate import KeyPath, formatPath, keyLines, lineOf

__all__ = [
    "ConfigErrorTests",
    "ExpansionTests",
    "GeneratedConfigTests",
    "LoadTests",
    "LocateTests",
    "SchemaTests",
]

FULL = """\
[supervisor]
control = "tcp:9001:interface=127.0.0.1"
log_dir = "var/log"

[programs.db]
command = ["postgres", "-D", "data dir"]
cwd = "db"
env = { PGPORT = "5433" }
inherit_env = false
user = "postgres"
group = 70
restart = "always"
autostart = false
backoff.initial = 0.5
backoff.factor = 3
backoff.max = 10
backoff.reset_after = 5
backoff.give_up_after = "never"
ready.tcp = "localhost:5433"
ready.timeout = 20
stop = { signal = "INT", timeout = 30, kill = "group" }

[programs.db.logs]
stdout = "db.log"
merge = true
max_bytes = "1M"
backups = 5
timestamps = true
prefix = true
markers = false

[programs.web]
command = "gunicorn -b ':8000' app:wsgi"
instances = 3
depends_on = ["db"]

[programs.web.spawn]
umask = "027"
rlimits = { NOFILE = [1024, "infinity"] }
new_session = true
death_signal = "TERM"
namespaces = { user = true, uts = true, hostname = "web" }
cgroup = { memory_max = "64M", pids_max = 100, kill_on_exit = false }

[programs."notify.me"]
command = ["daemon"]
depends_on = ["web"]
ready = { notify = true }
spawn.groups = ["nogroup", 0]
"""


def errorsOf(text: str, **kwargs: object) -> list[str]:
    """
    The lines of L{ConfigErrors} that parsing C{text} raises.
    """
    try:
        parseConfig(text, name="procs.toml", **kwargs)  # type: ignore[arg-type]
    except ConfigErrors as errors:
        return str(errors).splitlines()
    raise AssertionError("the config was accepted")


class LoadTests(SynchronousTestCase):
    """
    A valid config becomes L{SupervisorConfig} and its parts.
    """

    def test_full(self) -> None:
        """
        Every key is read into its field, paths made absolute from the base
        directory, sizes, signals and octal text converted.
        """
        config = parseConfig(FULL, baseDir="/srv", environ={})
        self.assertEqual(config.control, "tcp:9001:interface=127.0.0.1")
        self.assertEqual(config.logDir, "/srv/var/log")
        self.assertEqual(list(config.programs), ["db", "web", "notify.me"])
        db = config.programs["db"]
        self.assertEqual(db.command, ("postgres", "-D", "data dir"))
        self.assertEqual(db.cwd, "/srv/db")
        self.assertEqual(dict(db.env), {"PGPORT": "5433"})
        self.assertEqual(
            (db.inheritEnv, db.user, db.group, db.restart, db.autostart),
            (False, "postgres", 70, "always", False),
        )
        self.assertEqual(db.backoff, BackoffConfig(0.5, 3.0, 10.0, 5.0, None))
        self.assertEqual(
            db.ready,
            ReadyConfig(
                kind="tcp", after=None, host="localhost", port=5433, timeout=20.0
            ),
        )
        self.assertEqual(db.stop, StopConfig(signal.SIGINT, 30.0, "group"))
        self.assertEqual(
            db.logs,
            LogConfig("/srv/var/log/db.log", None, 1024**2, 5, True, True, False),
        )
        self.assertTrue(db.logs.merge)
        self.assertEqual(db.spawnOptions, SpawnOptions())
        web = config.programs["web"]
        self.assertEqual(web.command, ("gunicorn", "-b", ":8000", "app:wsgi"))
        self.assertEqual(web.instanceNames, ("web:0", "web:1", "web:2"))
        self.assertEqual(
            web.spawnOptions,
            SpawnOptions(
                umask=0o027,
                rlimits={resource.RLIMIT_NOFILE: (1024, resource.RLIM_INFINITY)},
                newSession=True,
                deathSignal=signal.SIGTERM,
                namespaces=Namespaces(user=True, uts=True, hostname="web"),
                cgroup=Cgroup(memoryMax=64 * 1024**2, pidsMax=100, killOnExit=False),
            ),
        )
        notify = config.programs["notify.me"]
        self.assertEqual(notify.ready.kind, "notify")
        self.assertEqual(notify.spawnOptions, SpawnOptions(groups=("nogroup", 0)))

    def test_defaults(self) -> None:
        """
        A program with only a command gets the documented defaults.
        """
        config = parseConfig('[programs.a]\ncommand = "a"\n', baseDir="/b")
        self.assertEqual(
            (config.control, config.logDir),
            ("unix:path=/b/txspawn.sock:mode=600", "/b/logs"),
        )
        a = config.programs["a"]
        self.assertEqual(
            (a.cwd, dict(a.env), a.inheritEnv, a.user, a.group, a.instances),
            ("/b", {}, True, None, None, 1),
        )
        self.assertEqual(
            (a.restart, a.dependsOn, a.autostart, a.instanceNames),
            ("on-failure", (), True, ("a",)),
        )
        self.assertEqual(a.backoff, BackoffConfig(1.0, 2.0, 60.0, 30.0, 10))
        self.assertEqual(a.ready, ReadyConfig("after", 1.0, timeout=60.0))
        self.assertEqual(a.stop, StopConfig(signal.SIGTERM, 10.0, "tree"))
        self.assertEqual(
            a.logs, LogConfig("/b/logs/a.out", "/b/logs/a.err", 10 * 1024**2, 3)
        )
        self.assertEqual(a.spawnOptions, SpawnOptions())

    def test_control(self) -> None:
        """
        A relative unix socket path in C{control} is made relative to the
        config file's directory (given as C{path=} or first, an escaped
        colon kept); other endpoints are kept as written.
        """

        def control(endpoint: str) -> str:
            text = f"supervisor.control = '{endpoint}'\n"
            return parseConfig(text, baseDir="/etc/sv").control

        self.assertEqual(
            control("unix:s.sock:mode=600"), "unix:/etc/sv/s.sock:mode=600"
        )
        self.assertEqual(
            control("unix:mode=660:path=run/a\\:b"),
            "unix:mode=660:path=/etc/sv/run/a\\:b",
        )
        self.assertEqual(control("unix:path=/run/s.sock"), "unix:path=/run/s.sock")
        self.assertEqual(control("tcp:9001:interface=::1"), "tcp:9001:interface=::1")

    def test_empty(self) -> None:
        """
        An empty config is valid: no programs.
        """
        self.assertEqual(parseConfig("").programs, {})

    def test_loadConfig(self) -> None:
        """
        L{loadConfig} reads a file; relative paths are relative to its
        directory, and errors name the file.
        """
        directory = FilePath(self.mktemp())
        directory.makedirs()
        good = directory.child("procs.toml")
        good.setContent(b'[programs.a]\ncommand = "a"\ncwd = "sub"\n')
        config = loadConfig(good.path)
        self.assertEqual(config.programs["a"].cwd, os.path.join(directory.path, "sub"))
        self.assertEqual(config.logDir, os.path.join(directory.path, "logs"))
        bad = directory.child("bad.toml")
        bad.setContent(b"[programs.a]\ncommand = 1\n")
        error = self.assertRaises(ConfigErrors, loadConfig, bad.path)
        self.assertEqual(
            str(error),
            f"{bad.path}:2: programs.a.command: must be a string or an array "
            "of strings, not an integer (1)",
        )

    def test_order(self) -> None:
        """
        C{startOrder} puts each program after its dependencies and keeps the
        file's order otherwise; C{stopOrder} is its reverse.
        """
        config = parseConfig(
            "[programs.web]\ncommand = 'w'\ndepends_on = ['cache', 'db']\n"
            "[programs.solo]\ncommand = 's'\n"
            "[programs.db]\ncommand = 'd'\n"
            "[programs.cache]\ncommand = 'c'\ndepends_on = ['db']\n"
        )
        self.assertEqual(config.startOrder(), ("db", "cache", "web", "solo"))
        self.assertEqual(config.stopOrder(), ("solo", "web", "cache", "db"))

    def test_readyKinds(self) -> None:
        """
        Each readiness kind is read: C{after}, C{tcp} (an IPv6 host in
        brackets), C{notify} and C{command} (split like a shell).
        """

        def ready(table: str) -> ReadyConfig:
            text = f"[programs.a]\ncommand = 'a'\nready = {{ {table} }}\n"
            return parseConfig(text).programs["a"].ready

        self.assertEqual(ready("after = 5"), ReadyConfig("after", 5.0))
        self.assertEqual(ready("tcp = '[::1]:80'"), ReadyConfig("tcp", None, "::1", 80))
        self.assertEqual(ready("notify = true"), ReadyConfig("notify", None))
        self.assertEqual(
            ready("command = 'pg_isready -q', timeout = 5"),
            ReadyConfig("command", None, command=("pg_isready", "-q"), timeout=5.0),
        )

    def test_valueTypes(self) -> None:
        """
        The config's value types are frozen and comparable.
        """
        config = parseConfig(FULL, baseDir="/srv", environ={})
        self.assertEqual(config, parseConfig(FULL, baseDir="/srv", environ={}))
        self.assertIsInstance(config, SupervisorConfig)
        self.assertRaises(AttributeError, setattr, config, "control", "x")

        def assign() -> None:
            config.programs["x"] = config.programs["db"]  # type: ignore[index]

        self.assertRaises(TypeError, assign)


class ExpansionTests(SynchronousTestCase):
    """
    C{${VAR}} is expanded in string values, from the environment given.
    """

    def test_expanded(self) -> None:
        """
        C{${VAR}} is replaced in strings anywhere (arrays and tables
        included), C{$$} is a literal C{$}, and a C{$} before anything
        else is kept.
        """
        config = parseConfig(
            "[supervisor]\nlog_dir = '${HOME}/logs'\n"
            "[programs.a]\ncommand = ['${BIN}/a', 'cost: $$5 $x']\n"
            "env = { PATH = '${HOME}/bin' }\n",
            environ={"HOME": "/h", "BIN": "/b"},
        )
        self.assertEqual(config.logDir, "/h/logs")
        self.assertEqual(config.programs["a"].command, ("/b/a", "cost: $5 $x"))
        self.assertEqual(config.programs["a"].env["PATH"], "/h/bin")

    def test_stringsOnly(self) -> None:
        """
        Keys are never expanded: C{${X}} in a key is its own text.
        """
        config = parseConfig(
            "[programs.a]\ncommand = 'a'\nenv = { '${X}' = 'y' }\n", environ={}
        )
        self.assertEqual(dict(config.programs["a"].env), {"${X}": "y"})

    def test_unknown(self) -> None:
        """
        An unset variable is an error naming the key path, as is a bad name
        and an unclosed C{${}.
        """
        self.assertEqual(
            errorsOf(
                "[programs.a]\ncommand = ['a', '${NOPE}']\n"
                "cwd = '${1x}'\nenv = { A = '${B' }\n",
                environ={},
            ),
            [
                "procs.toml:2: programs.a.command[1]: ${NOPE} is not set in the "
                "environment",
                "procs.toml:3: programs.a.cwd: ${1x} is not a valid variable name",
                "procs.toml:4: programs.a.env.A: ${ is not closed by }",
            ],
        )


class ConfigErrorTests(SynchronousTestCase):
    """
    Every problem is reported with its key path and line, all at once.
    """

    def assertErrors(self, text: str, *expected: str) -> None:
        """
        Parsing C{text} raises exactly the C{expected} lines.
        """
        self.assertEqual(errorsOf(text, environ={}), list(expected))

    def test_syntax(self) -> None:
        """
        A TOML syntax error is reported with its line.
        """
        lines = errorsOf("[programs.a]\ncommand = 'a'\nrestart = \n")
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("procs.toml:3: "), lines)

    def test_unknownKey(self) -> None:
        """
        An unknown key is reported: with the likely meant key when one is
        close, else with the known keys.
        """
        self.assertErrors(
            "[supervisor]\nlog = 1\n[programs.a]\ncommand = 'a'\nrestat = 'never'\n"
            "[programs.a.stop]\ntimeout = 1\nzzz = 2\n[other]\n",
            "procs.toml:2: supervisor.log: unknown key (known keys: control, log_dir)",
            "procs.toml:5: programs.a.restat: unknown key (did you mean 'restart'?)",
            "procs.toml:8: programs.a.stop.zzz: unknown key (known keys: kill, "
            "signal, timeout)",
            "procs.toml:9: other: unknown key (known keys: programs, supervisor)",
        )

    def test_wrongType(self) -> None:
        """
        A value of the wrong type is reported with the type wanted and the
        value given.
        """
        self.assertErrors(
            "[programs.a]\ncommand = ['a', 1]\nautostart = 'yes'\n"
            "instances = 1.5\nbackoff = 3\nenv = { A = 1 }\n"
            "[programs.b]\ncommand = 'b'\nstop.timeout = '10'\n",
            "procs.toml:2: programs.a.command: must be a string or an array of "
            "strings, not an array (['a', 1])",
            "procs.toml:3: programs.a.autostart: must be a boolean, not a string "
            "('yes')",
            "procs.toml:4: programs.a.instances: must be an integer, not a float (1.5)",
            "procs.toml:5: programs.a.backoff: must be a table, not an integer (3)",
            "procs.toml:6: programs.a.env: must be a table of strings, not a table",
            "procs.toml:9: programs.b.stop.timeout: must be a number, not a string "
            "('10')",
        )

    def test_badValue(self) -> None:
        """
        A value of the right type but outside what is allowed is reported
        with what is allowed.
        """
        self.assertErrors(
            "[programs.web]\ncommand = 'w \"'\nrestart = 'sometimes'\n"
            "instances = 0\nuser = -1\n"
            "backoff = { factor = 0.5, give_up_after = 0 }\n"
            "stop = { signal = 'NOPE', kill = 'all' }\n"
            "logs = { max_bytes = 'big', backups = -1 }\n"
            "ready.tcp = 'localhost'\n"
            "[programs.'bad:name']\ncommand = 'x'\n"
            "[programs.e]\ncommand = ''\nenv = { 'A=B' = 'c' }\n",
            "procs.toml:2: programs.web.command: cannot be split like a shell: "
            "No closing quotation",
            "procs.toml:3: programs.web.restart: must be one of always, "
            "on-failure, never, not 'sometimes'",
            "procs.toml:4: programs.web.instances: must be >= 1, not 0",
            "procs.toml:5: programs.web.user: must be between 0 and 4294967294, not -1",
            "procs.toml:6: programs.web.backoff.factor: must be a finite number "
            ">= 1, not 0.5",
            "procs.toml:6: programs.web.backoff.give_up_after: must be an integer "
            ">= 1 or 'never', not 0",
            "procs.toml:7: programs.web.stop.signal: must be a signal name such "
            "as TERM, not 'NOPE'",
            "procs.toml:7: programs.web.stop.kill: must be one of tree, group, "
            "not 'all'",
            "procs.toml:8: programs.web.logs.max_bytes: must be a size such as "
            "10M, 512K or 1G, not 'big'",
            "procs.toml:8: programs.web.logs.backups: must be >= 0, not -1",
            "procs.toml:9: programs.web.ready.tcp: must be 'host:port' with a port "
            "from 1 to 65535, not 'localhost'",
            'procs.toml:10: programs."bad:name": a program name is made of '
            "letters, digits and _ . - only, not 'bad:name'",
            "procs.toml:13: programs.e.command: must name a program to run",
            'procs.toml:14: programs.e.env."A=B": is not a valid environment '
            "variable name",
        )

    def test_missingCommand(self) -> None:
        """
        A program without a command is reported at its table's line.
        """
        self.assertErrors(
            "[programs]\n\n[programs.a]\nrestart = 'never'\n",
            "procs.toml:3: programs.a: missing required key 'command'",
        )

    def test_cycle(self) -> None:
        """
        A dependency cycle is reported once, naming the cycle, at the
        C{depends_on} of the program it starts from; so is a program that
        depends on itself.
        """
        self.assertErrors(
            "[programs.a]\ncommand = 'a'\ndepends_on = ['b']\n"
            "[programs.b]\ncommand = 'b'\ndepends_on = ['c']\n"
            "[programs.c]\ncommand = 'c'\ndepends_on = ['a']\n"
            "[programs.d]\ncommand = 'd'\ndepends_on = ['d', 'a']\n",
            "procs.toml:3: programs.a.depends_on: dependency cycle: a -> b -> c -> a",
            "procs.toml:12: programs.d.depends_on: dependency cycle: d -> d",
        )

    def test_unknownDependency(self) -> None:
        """
        A dependency on a program that does not exist is reported at its
        entry, with the programs that do; one that exists but has problems
        of its own is not.
        """
        self.assertErrors(
            "[programs.a]\ncommand = 'a'\ndepends_on = [\n  'b',\n  'nope',\n]\n"
            "[programs.b]\ncommand = 1\n",
            "procs.toml:5: programs.a.depends_on[1]: unknown program 'nope' "
            "(programs: a, b)",
            "procs.toml:8: programs.b.command: must be a string or an array of "
            "strings, not an integer (1)",
        )

    def test_stderrAndMerge(self) -> None:
        """
        C{logs.stderr} and C{logs.merge = true} together are refused.
        """
        self.assertErrors(
            "[programs.a]\ncommand = 'a'\n[programs.a.logs]\nmerge = true\n"
            "stderr = 'a.err'\n",
            "procs.toml:5: programs.a.logs.stderr: cannot be given with merge = "
            "true (stderr goes to stdout's file)",
        )

    def test_twoReadinessKinds(self) -> None:
        """
        At most one readiness check may be given; C{notify = false} is none.
        """
        self.assertErrors(
            "[programs.a]\ncommand = 'a'\n[programs.a.ready]\nafter = 2\n"
            "command = 'check'\nnotify = false\n",
            "procs.toml:5: programs.a.ready.command: only one readiness check "
            "may be given: after and command are",
        )

    def test_spawnOptions(self) -> None:
        """
        Spawn options are checked by L{txspawn.options}' own validation,
        whose message is reported under the key it is about: an option
        alone, an rlimit entry, a namespace or cgroup key, and two options
        that cannot be combined.
        """
        self.assertErrors(
            "[programs.a]\ncommand = 'a'\n[programs.a.spawn]\numask = 0o1777\n"
            "groups = ['']\nrlimits = { NOFILE = [10, 5], NOPE = [1, 1] }\n"
            "death_signal = 'NOPE'\nunknown = 1\n"
            "namespaces = { hostname = 'x' }\n"
            "cgroup.memory_max = 'lots'\n"
            "[programs.b]\ncommand = 'b'\n"
            "spawn = { new_session = true, process_group = 0 }\n",
            "procs.toml:4: programs.a.spawn.umask: SpawnOptions.umask must be "
            "between 0 and 0o777, not 1023",
            "procs.toml:5: programs.a.spawn.groups: SpawnOptions.groups[0] is "
            "not a valid group name: ''",
            "procs.toml:6: programs.a.spawn.rlimits.NOFILE: "
            "SpawnOptions.rlimits[RLIMIT_NOFILE]: the soft limit 10 exceeds the "
            "hard limit 5",
            "procs.toml:6: programs.a.spawn.rlimits.NOPE: SpawnOptions.rlimits: "
            "unknown resource 'NOPE'",
            "procs.toml:7: programs.a.spawn.death_signal: must be a signal name "
            "such as TERM, not 'NOPE'",
            "procs.toml:8: programs.a.spawn.unknown: unknown key (known keys: "
            "cgroup, death_signal, groups, namespaces, new_session, "
            "process_group, rlimits, umask)",
            "procs.toml:9: programs.a.spawn.namespaces.hostname: "
            "Namespaces.hostname needs a uts namespace: give uts=True",
            "procs.toml:10: programs.a.spawn.cgroup.memory_max: Cgroup.memoryMax "
            "must be a byte count, a size such as '64M', '512K' or '1G' (powers "
            "of 1024), or 'max', not 'lots'",
            "procs.toml:13: programs.b.spawn.new_session: "
            "SpawnOptions.newSession and SpawnOptions.processGroup cannot be "
            "combined: a new session already leads a new process group",
        )

    def test_allTogether(self) -> None:
        """
        Problems of different programs and kinds are all raised together, as
        L{ConfigError} values in the order of their lines.
        """
        text = (
            "[programs.b]\ncommand = 'b'\nrestart = 'x'\n"
            "[programs.a]\ncommand = 'a'\ndepends_on = ['zz']\nnope = 1\n"
        )
        error = self.assertRaises(ConfigErrors, parseConfig, text, "p.toml")
        self.assertEqual(error.name, "p.toml")
        self.assertEqual(
            error.errors,
            (
                ConfigError(
                    "programs.b.restart",
                    3,
                    "must be one of always, on-failure, never, not 'x'",
                ),
                ConfigError(
                    "programs.a.depends_on[0]",
                    6,
                    "unknown program 'zz' (programs: b, a)",
                ),
                ConfigError(
                    "programs.a.nope",
                    7,
                    "unknown key (known keys: autostart, "
                    "backoff, command, cwd, depends_on, env, group, inherit_env, "
                    "instances, logs, ready, restart, spawn, stop, user)",
                ),
            ),
        )
        self.assertIsInstance(error, ValueError)


class SchemaTests(SynchronousTestCase):
    """
    L{CONFIG_SCHEMA} describes every key the loader accepts.
    """

    def test_unique(self) -> None:
        """
        Each key is described once, after the table it is in.
        """
        keys = [entry.key for entry in CONFIG_SCHEMA]
        self.assertEqual(len(keys), len(set(keys)))
        for index, key in enumerate(keys):
            parent = key.rpartition(".")[0]
            if parent:
                self.assertIn(parent, keys[:index], key)

    def test_everyKeyAccepted(self) -> None:
        """
        A config giving every key of the schema, each with its default
        where it has one, is accepted: the schema lists no key the loader
        refuses.  (The loader refusing unknown keys, the converse holds.)
        """
        lines = []
        for entry in CONFIG_SCHEMA:
            key = entry.key.replace("NAME", "a")
            default = entry.default
            if default is None:
                default = {"programs.a.command": '"a"'}.get(key)
            if default is not None:
                default = default.replace("NAME", "a")
                lines.append(f"{key} = {default}")
        text = "\n".join(lines) + "\n"
        tomllib.loads(text)
        program = parseConfig(text, environ={}).programs["a"]
        # Giving the tables of namespaces and a cgroup asks for them.
        self.assertEqual(
            program.spawnOptions,
            SpawnOptions(namespaces=Namespaces(), cgroup=Cgroup()),
        )
        minimal = parseConfig("programs.a.command = 'a'").programs["a"]
        self.assertEqual(attrs.evolve(program, spawnOptions=SpawnOptions()), minimal)

    def test_defaultsAreTOML(self) -> None:
        """
        Each default is a TOML value of the key's type.
        """
        for entry in CONFIG_SCHEMA:
            if entry.default is not None:
                value = tomllib.loads(f"x = {entry.default}")["x"]
                self.assertTrue(entry.type.check(value), entry.key)
                self.assertTrue(entry.meaning, entry.key)


# A document to render: a table maps keys to scalars, arrays of scalars, or
# (style, table) pairs for sub-tables, style one of "header", "dotted",
# "inline" and "implied" (a header table whose own header is left out).
Table = dict[str, Any]

#: Draws a value (C{st.DrawFn} or C{st.DataObject.draw}).
Draw = Callable[[st.SearchStrategy[Any]], Any]

_KEYS = st.sampled_from(
    ["a", "b", "web", "x_1", "k-2", "a.b", "x y", 'q"t', "é", "", "#", "[x]", "="]
)
_SCALARS = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.text(alphabet="ab #=[]{}\"'\\\n$,.", max_size=6),
)


@st.composite
def tables(draw: st.DrawFn, depth: int = 0, styles: tuple[str, ...] = ()) -> Table:
    """
    A table to render, each sub-table in one of C{styles} (every style at
    the top level; only dotted or inline under a dotted table, only inline
    under an inline one).
    """
    styles = styles or ("header", "dotted", "inline", "implied")
    table: Table = {}
    for key in draw(st.lists(_KEYS, max_size=4, unique=True)):
        kind = draw(
            st.sampled_from(["scalar", "array", "table"] if depth < 3 else ["scalar"])
        )
        if kind == "scalar":
            table[key] = draw(_SCALARS)
        elif kind == "array":
            table[key] = draw(st.lists(_SCALARS, max_size=3))
        else:
            style = draw(st.sampled_from(styles))
            inner = {
                "header": styles,
                "implied": styles,
                "dotted": ("dotted", "inline"),
                "inline": ("inline",),
            }[style]
            table[key] = (style, draw(tables(depth + 1, inner)))
    return table


class _Renderer:
    """
    Writes a L{Table} as TOML, recording the line of each key path (the
    test's oracle for L{txspawn.supervise._locate}).
    """

    def __init__(self, draw: Draw) -> None:
        self.draw = draw
        # What is written of the current line before the value being
        # rendered.
        self.pending = ""
        self.lines: list[str] = []
        self.expected: dict[KeyPath, int] = {}

    def key(self, key: str) -> str:
        if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
            return key
        if "'" not in key and "\n" not in key and self.draw(st.booleans()):
            return f"'{key}'"
        return json.dumps(key)

    def scalar(self, value: object, multiline: bool = False) -> str:
        """
        A scalar; a string with a newline maybe as a multi-line string
        (when C{multiline}: nothing follows it on its last line but a
        comment), starting with the newline TOML trims.
        """
        if isinstance(value, bool):
            return "true" if value else "false"
        if (
            multiline
            and isinstance(value, str)
            and "\n" in value
            and self.draw(st.booleans())
        ):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            return '"""\n' + escaped + '"""'
        return json.dumps(value)

    def inline(self, value: object, path: KeyPath, last: bool = False) -> str:
        """
        A value on the current line (the one about to be appended).
        """
        line = len(self.lines) + 1 + self.pending.count("\n")
        self.expected.setdefault(path, line)
        if isinstance(value, tuple):
            parts = []
            for key, item in value[1].items():
                written = self.key(key) + " = "
                self.pending += written
                text = self.inline(item, (*path, key))
                self.pending = self.pending[: -len(written)]
                parts.append(written + text)
            return "{" + ", ".join(parts) + "}"
        if isinstance(value, list):
            return (
                "["
                + ", ".join(
                    self.element(item, (*path, index))
                    for index, item in enumerate(value)
                )
                + "]"
            )
        return self.scalar(value, multiline=last)

    def element(self, value: object, path: KeyPath) -> str:
        self.expected[path] = len(self.lines) + 1 + self.pending.count("\n")
        return self.scalar(value)

    def emit(self, text: str) -> None:
        self.lines.extend(text.split("\n"))

    def body(
        self, table: Table, path: KeyPath, prefix: str = ""
    ) -> list[tuple[str, Table, KeyPath]]:
        """
        Write a table's keys under the current header; return its header
        sub-tables, to be written after.
        """
        later = []
        for key, value in table.items():
            here = (*path, key)
            written = prefix + self.key(key)
            if isinstance(value, tuple) and value[0] in ("header", "implied"):
                later.append((value[0], value[1], here))
            elif isinstance(value, tuple) and value[0] == "dotted":
                self.expected.setdefault(here, len(self.lines) + 1)
                if not value[1]:
                    # An empty dotted table cannot be written: write it inline.
                    self.pending = ""
                    self.emit(written + " = {}")
                later += self.body(value[1], here, written + ".")
            else:
                self.pending = written + " = "
                if isinstance(value, list) and value and self.draw(st.booleans()):
                    # One element a line.
                    self.expected[here] = len(self.lines) + 1
                    self.emit(self.pending + "[")
                    for index, item in enumerate(value):
                        self.pending = ""
                        self.expected[(*here, index)] = len(self.lines) + 1
                        self.emit("  " + self.scalar(item, True) + ",  # ] = #")
                    self.emit("]")
                    continue
                text = self.inline(value, here, last=True)
                self.emit(self.pending + text + "  # a comment [x] = 1")
        return later

    def table(self, table: Table, path: KeyPath) -> None:
        later = self.body(table, path)
        for style, inner, here in later:
            if (
                style == "implied"
                and not any(
                    not (isinstance(v, tuple) and v[0] in ("header", "implied"))
                    for v in inner.values()
                )
                and inner
            ):
                # Its first mention is the next header, a descendant's.
                self.expected[here] = len(self.lines) + 1
                self.table(inner, here)
                continue
            self.expected[here] = len(self.lines) + 1
            self.emit("[" + ".".join(self.key(str(k)) for k in here) + "]")
            self.table(inner, here)


def plain(table: Table) -> dict[str, Any]:
    """
    The value L{tomllib} gives for a rendered L{Table}.
    """
    return {
        key: plain(value[1]) if isinstance(value, tuple) else value
        for key, value in table.items()
    }


@st.composite
def documents(draw: st.DrawFn) -> tuple[Table, str, dict[KeyPath, int]]:
    """
    A table, its rendering, and the line of each key path in it.
    """
    table = draw(tables())
    renderer = _Renderer(draw)
    renderer.table(table, ())
    return table, "\n".join(renderer.lines) + "\n", renderer.expected


class LocateTests(SynchronousTestCase):
    """
    L{keyLines} finds the line of every key path, however it is written.
    """

    @settings(max_examples=300, deadline=None)
    @given(documents())
    def test_generated(self, document: tuple[Table, str, dict[KeyPath, int]]) -> None:
        """
        For a generated document (header, implied, dotted and inline tables;
        quoted keys; comments, strings and multi-line strings holding TOML
        punctuation; arrays on one line or one element a line), every key
        path and array element is found on the line it was written on.
        """
        table, text, expected = document
        self.assertEqual(tomllib.loads(text), plain(table), text)
        lines = keyLines(text)
        self.assertEqual({path: lines.get(path) for path in expected}, expected, text)

    def test_cases(self) -> None:
        """
        A few forms by hand: arrays of tables, a table under one, a
        date-time with a space, a multi-line literal string.
        """
        text = (
            "[[p]]\nx = 1\n[p.sub]\ny = 2\n[[p]]\nx = '''\n[not] = a key\n'''\n"
            "when = 1979-05-27 07:32:00\nz = 3\n"
        )
        lines = keyLines(text)
        self.assertEqual(
            {
                path: lines[path]
                for path in [
                    ("p", 0),
                    ("p", 0, "x"),
                    ("p", 0, "sub", "y"),
                    ("p", 1),
                    ("p", 1, "x"),
                    ("p", 1, "when"),
                    ("p", 1, "z"),
                ]
            },
            {
                ("p", 0): 1,
                ("p", 0, "x"): 2,
                ("p", 0, "sub", "y"): 4,
                ("p", 1): 5,
                ("p", 1, "x"): 6,
                ("p", 1, "when"): 9,
                ("p", 1, "z"): 10,
            },
        )
        self.assertNotIn(("p", 1, "not"), lines)
        self.assertEqual(lineOf(lines, ("p", 1, "z", "deeper", 3)), 10)
        self.assertEqual(lineOf(lines, ("nothing",)), 1)

    def test_formatPath(self) -> None:
        """
        Key paths are written as TOML writes them.
        """
        self.assertEqual(
            formatPath(("programs", "web", "command", 0)), "programs.web.command[0]"
        )
        self.assertEqual(formatPath(("programs", "a.b", 'q"')), 'programs."a.b"."q\\""')


_WORDS = st.text(alphabet="abc -'\"$\\", min_size=1, max_size=5)
_SIGNALS = {"TERM": signal.SIGTERM, "int": signal.SIGINT, "SIGHUP": signal.SIGHUP, 9: 9}


@st.composite
def configs(draw: st.DrawFn) -> Table:
    """
    A valid config, as a L{Table} with its sub-tables in random styles.
    """

    def style(*choices: str) -> str:
        return draw(st.sampled_from(choices or ("header", "dotted", "inline")))

    names = draw(
        st.lists(st.sampled_from(["web", "db", "a.b", "w-1"]), min_size=1, unique=True)
    )
    programs: Table = {}
    for index, name in enumerate(names):
        argv = draw(st.lists(_WORDS, min_size=1, max_size=3))
        program: Table = {
            "command": draw(st.sampled_from([argv, shlex.join(argv)])),
            "restart": draw(st.sampled_from(["always", "on-failure", "never"])),
            "instances": draw(st.integers(1, 4)),
            "env": (style(), draw(st.dictionaries(st.sampled_from("ABC"), _WORDS))),
            "depends_on": draw(st.lists(st.sampled_from(names[:index]), unique=True))
            if index
            else [],
            "backoff": (
                style(),
                {
                    "initial": draw(st.integers(0, 5)),
                    "max": 9,
                    "give_up_after": draw(st.sampled_from([1, "never"])),
                },
            ),
            "stop": (style(), {"signal": draw(st.sampled_from(list(_SIGNALS)))}),
            "logs": (style(), {"max_bytes": draw(st.sampled_from([0, 7, "2K", "3M"]))}),
        }
        keys = draw(st.permutations(list(program)))
        programs[name] = (
            style("header", "dotted", "inline", "implied"),
            {key: program[key] for key in keys},
        )
    return {"programs": (style("header", "implied", "dotted"), programs)}


def unescape(text: str) -> str:
    """
    What C{${VAR}} expansion makes of a string without C{${}: C{$$} is
    C{$}.
    """
    return text.replace("$$", "$")


def render(draw: Draw, table: Table) -> tuple[str, dict[KeyPath, int]]:
    """
    A L{Table}'s TOML text and the line of each key path in it.
    """
    renderer = _Renderer(draw)
    renderer.table(table, ())
    return "\n".join(renderer.lines) + "\n", renderer.expected


class GeneratedConfigTests(SynchronousTestCase):
    """
    Generated configs load the same however they are written, and a problem
    put anywhere in one is reported at its line.
    """

    @settings(max_examples=100, deadline=None)
    @given(configs(), st.data())
    def test_roundTrip(self, table: Table, data: st.DataObject) -> None:
        """
        A generated config loads with the values it was written with, and
        the same config written in other styles loads equal.
        """
        text, _ = render(data.draw, table)
        config = parseConfig(text, baseDir="/", environ={})
        again, _ = render(data.draw, table)
        self.assertEqual(parseConfig(again, baseDir="/", environ={}), config)
        for name, (_, program) in table["programs"][1].items():
            loaded = config.programs[name]
            command = program["command"]
            self.assertEqual(
                loaded.command,
                # "$$" is a literal "$" (and "$" alone is kept), before the
                # string is split.
                tuple(
                    shlex.split(unescape(command))
                    if isinstance(command, str)
                    else map(unescape, command)
                ),
            )
            self.assertEqual(
                (
                    loaded.restart,
                    loaded.instances,
                    dict(loaded.env),
                    list(loaded.dependsOn),
                ),
                (
                    program["restart"],
                    program["instances"],
                    {key: unescape(value) for key, value in program["env"][1].items()},
                    program["depends_on"],
                ),
            )
            backoff = program["backoff"][1]
            self.assertEqual(
                (loaded.backoff.initial, loaded.backoff.giveUpAfter),
                (
                    backoff["initial"],
                    None if backoff["give_up_after"] == "never" else 1,
                ),
            )
            self.assertEqual(loaded.stop.signal, _SIGNALS[program["stop"][1]["signal"]])
        order = config.startOrder()
        self.assertEqual(sorted(order), sorted(config.programs))
        for name, program in config.programs.items():
            for dependency in program.dependsOn:
                self.assertLess(order.index(dependency), order.index(name))
        self.assertEqual(config.stopOrder(), order[::-1])

    @settings(max_examples=100, deadline=None)
    @given(configs(), st.data())
    def test_unknownKeyLine(self, table: Table, data: st.DataObject) -> None:
        """
        An unknown key added to any table of a generated config is reported
        with its path and the line it was written on.
        """
        programs = table["programs"][1]
        name = data.draw(st.sampled_from(list(programs)))
        where = data.draw(st.sampled_from([None, "backoff", "stop", "logs"]))
        target = programs[name][1] if where is None else programs[name][1][where][1]
        target["bogus_key"] = 1
        text, lines = render(data.draw, table)
        path: KeyPath = ("programs", name, *((where,) if where else ()), "bogus_key")
        error = self.assertRaises(ConfigErrors, parseConfig, text, environ={})
        self.assertEqual(
            [(e.path, e.line) for e in error.errors],
            [(formatPath(path), lines[path])],
            text,
        )
