"""
The listings of the supervisor's pages (C{docs/howto/supervise.rst},
C{docs/howto/migrating.rst}) run and do what the pages say: the embedding
example and the procmon switch on every engine x monitor, the converted
supervisord config is what the converter writes, and the tutorial's shell
session and C{.tac} run for real, as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
from typing import Any, cast

from twisted.trial.unittest import SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses
from tests.hygiene import isLive
from tests.test_howto_listings import LISTINGS, ListingsMixin
from tests.test_supervise_config_reference import (
    NO_DEFAULT,
    _literal,
    _simpleTables,
)
from txspawn.supervise import parseConfig
from txspawn.supervise.convert import convertSupervisord

MIGRATING = os.path.join(os.path.dirname(LISTINGS), "migrating.rst")
#: The longest a command of a listing may take (a guard against a hang:
#: each ends as soon as what it waits for has happened).
PATIENCE = 180


class SuperviseListingsMixin(MixinBase):
    """
    Each listing's C{main(reactor)} succeeds on a real reactor.
    """

    def runListing(self, name: str) -> tuple[Any, str]:
        """
        L{ListingsMixin.runListing}, borrowed (subclassing would collect
        that mixin's tests a second time).
        """
        return ListingsMixin.runListing(cast(Any, self), name)

    def test_embed(self) -> None:
        """
        C{sv_embed.py}: web becomes RUNNING before poller starts (its
        dependency), worker is stopped then started again, the table lists
        the three programs RUNNING, and poller stops before web.
        """
        events, printed = self.runListing("sv_embed")
        moves = [
            (event.program, event.old, event.new)
            for event in events
            if event.kind == "transition"
        ]
        webRunning = moves.index(("web", "STARTING", "RUNNING"))
        pollerStarting = moves.index(("poller", "STOPPED", "STARTING"))
        self.assertLess(webRunning, pollerStarting)
        pollerStopped = max(
            i
            for i, move in enumerate(moves)
            if move[0] == "poller" and move[2] == "STOPPED"
        )
        webStopped = max(
            i
            for i, move in enumerate(moves)
            if move[0] == "web" and move[2] == "STOPPED"
        )
        self.assertLess(pollerStopped, webStopped)
        table = printed[printed.index("NAME") :].splitlines()
        self.assertEqual(
            table[0].split()[:5], ["NAME", "STATE", "PID", "UPTIME", "RESTARTS"]
        )
        rows = {line.split()[0]: line.split()[1] for line in table[1:4]}
        self.assertEqual(
            rows, {"web": "RUNNING", "worker": "RUNNING", "poller": "RUNNING"}
        )
        self.assertIn("web: STARTING -> RUNNING", printed)
        # The restart: worker stopped (from RUNNING, or from BACKOFF if it
        # had just crashed), then started again and ready.
        worker = [move[1:] for move in moves if move[0] == "worker"]
        stopped = next(i for i, (_, new) in enumerate(worker) if new == "STOPPED")
        self.assertEqual(
            worker[stopped + 1 : stopped + 3],
            [("STOPPED", "STARTING"), ("STARTING", "RUNNING")],
        )

    def test_procmon(self) -> None:
        """
        C{sv_procmon.py}: the job's daemon, which left the job's session
        and ignores C{SIGTERM}, is gone once C{stopService()}'s Deferred
        has fired.
        """
        daemon, printed = self.runListing("sv_procmon")
        self.assertIn(f"the job's daemon is up: {daemon}", printed)
        self.assertFalse(isLive(daemon))
        self.assertIn("stopped: the job and its daemon are gone", printed)


globals().update(makeTestCaseClasses(SuperviseListingsMixin))

__all__ = ["LISTINGS"]


def _read(name: str) -> str:
    """
    The text of the listing C{name}.
    """
    with open(os.path.join(LISTINGS, name), encoding="utf-8") as listing:
        return listing.read()


#: A value of each supervisord program key, to convert.
SAMPLES = {
    "command": "python3 app.py --port 8000",
    "directory": "/srv/app",
    "environment": 'A="1",B=2',
    "user": "nobody",
    "umask": "022",
    "numprocs": "2",
    "numprocs_start": "1",
    "process_name": "%(program_name)s_%(process_num)s",
    "priority": "5",
    "autostart": "false",
    "autorestart": "true",
    "exitcodes": "0,2",
    "startsecs": "3",
    "startretries": "4",
    "stopsignal": "INT",
    "stopwaitsecs": "20",
    "stopasgroup": "true",
    "killasgroup": "true",
    "redirect_stderr": "true",
    "stdout_logfile": "/var/log/app.out",
    "stderr_logfile": "/var/log/app.err",
    "stdout_logfile_maxbytes": "1MB",
    "stdout_logfile_backups": "2",
    "stderr_logfile_maxbytes": "1MB",
    "stderr_logfile_backups": "2",
    "stdout_capture_maxbytes": "1MB",
    "stderr_capture_maxbytes": "1MB",
    "stdout_events_enabled": "true",
    "stderr_events_enabled": "true",
    "stdout_syslog": "true",
    "stderr_syslog": "true",
    "serverurl": "AUTO",
}


def _supervisordProgramKeys() -> set[str]:
    """
    The keys supervisord reads from a C{[program:x]} section, from its own
    source (the C{supervisor} package of the test extra).
    """
    import inspect

    from supervisor.options import ServerOptions  # type: ignore[import-untyped]

    source = inspect.getsource(ServerOptions._processes_from_section)
    keys = set(re.findall(r"get\(section, *'(\w+)'", source))
    for suffix in re.findall(r"'%s_(\w+)' % k", source):
        keys |= {f"stdout_{suffix}", f"stderr_{suffix}"}
    return keys


def _migrationTable() -> list[tuple[str, str | None]]:
    """
    The page's key-by-key table: each supervisord key with the TOML key it
    becomes (C{"stop.kill = \\"group\\""} with its value), or C{None}.
    """
    with open(MIGRATING, encoding="utf-8") as page:
        lines = page.read().splitlines()
    for _, (header, *rows) in _simpleTables(lines):
        if header[:2] == ["``[program:x]``", "``[programs.x]``"]:
            return [
                (_literal(key), None if toml == NO_DEFAULT else _literal(toml))
                for key, toml, _ in rows
            ]
    raise AssertionError("no key-by-key table")


def _convert(key: str | None) -> tuple[dict[str, Any], list[str]]:
    """
    A supervisord program with C{command} and C{key}, converted: its TOML
    table (loaded) and the notes.
    """
    lines = ["[program:x]", "command = true"]
    if key is not None:
        lines.append(f"{key} = {SAMPLES[key]}")
    text, notes = convertSupervisord("\n".join(lines) + "\n")
    return tomllib.loads(text)["programs"]["x"], notes


class MigrationListingsTests(SynchronousTestCase):
    """
    The supervisord side of C{migrating.rst}: the conversion shown is the
    converter's, it loads, and the key-by-key table says what the converter
    does with each key supervisord knows.
    """

    def test_converted(self) -> None:
        """
        C{sv_converted.toml} is what the converter writes for
        C{sv_supervisord.conf}, and it loads.
        """
        text, notes = convertSupervisord(_read("sv_supervisord.conf"))
        self.assertEqual(text, _read("sv_converted.toml"))
        self.assertEqual(len(notes), 6)
        config = parseConfig(
            text, baseDir=LISTINGS, environ={"WEB_PORT": "8000", "HOME": "/"}
        )
        self.assertEqual(list(config.programs), ["web", "worker"])
        self.assertEqual(
            config.programs["web"].command,
            ("python3", "-m", "http.server", "8000"),
        )

    def test_convertCommand(self) -> None:
        """
        C{python -m txspawn supervise --convert}, the page's command, writes
        the same TOML and lists what it could not convert on stderr.
        """
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "txspawn",
                "supervise",
                "--convert",
                os.path.join(LISTINGS, "sv_supervisord.conf"),
            ],
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        self.assertEqual(
            (done.returncode, done.stdout), (0, _read("sv_converted.toml"))
        )
        _, notes = convertSupervisord(_read("sv_supervisord.conf"))
        for note in notes:
            self.assertIn(note, done.stderr)

    def test_everyKeyListed(self) -> None:
        """
        Every key supervisord reads from a C{[program:x]} section is in the
        table, once.
        """
        listed = [key for key, _ in _migrationTable()]
        self.assertEqual(len(listed), len(set(listed)))
        known = _supervisordProgramKeys()
        self.assertGreater(len(known), 25)
        self.assertEqual(sorted(known - set(listed)), [])
        self.assertEqual(sorted(set(listed) - known), [])

    def test_tableIsTheConverters(self) -> None:
        """
        A key the table maps to a TOML key is converted to it (with the
        value the table gives, if any); a key it maps to nothing leaves the
        converted program as it is without the key.
        """
        plain, _ = _convert(None)
        wrong = {}
        for key, toml in _migrationTable():
            program, notes = _convert(key)
            if toml is None:
                if program != plain:
                    wrong[key] = f"converted: {program}"
                continue
            path, _, value = toml.partition(" = ")
            found: Any = program
            for part in path.split("."):
                found = found.get(part, {}) if isinstance(found, dict) else {}
            if found == {} or (value and found != tomllib.loads(f"v = {value}")["v"]):
                wrong[key] = f"not {toml}: {program} {notes}"
        self.assertEqual(wrong, {})


SUBREAPER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "helpers", "subreaper.py"
)


def _freePort() -> int:
    """
    A TCP port nothing listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tables(output: str) -> list[list[list[str]]]:
    """
    The status tables C{ctl} printed, in order: each a list of rows, the
    header first, each row its words (C{LAST EXIT} may be several).
    """
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in output.splitlines():
        if line.startswith("NAME "):
            current = [line.split()]
            tables.append(current)
        elif current is not None and line.strip():
            current.append(line.split())
        else:
            current = None
    return tables


def _rows(table: list[list[str]]) -> dict[str, list[str]]:
    """
    A status table's rows by instance name.
    """
    return {row[0]: row for row in table[1:]}


class ShellListingsTests(SynchronousTestCase):
    """
    The tutorial's shell session and its C{.tac} run for real: twistd as a
    daemon, C{python -m txspawn ctl}, all as subprocesses, under a child
    subreaper (C{tests/helpers/subreaper.py}) that reports any process
    left once the session is over.
    """

    def session(self, commands: list[str]) -> str:
        """
        Run C{commands} in a fresh directory holding the tutorial's
        C{procs.toml}, with this interpreter's scripts first on C{PATH};
        check that they succeed and leave no process behind.

        @return: What they printed.
        """
        # Short: the control socket's path must fit in sun_path.
        directory = tempfile.mkdtemp(prefix="sv-listing-")
        self.addCleanup(shutil.rmtree, directory, True)
        shutil.copy(
            os.path.join(LISTINGS, "sv_procs.toml"),
            os.path.join(directory, "procs.toml"),
        )
        scripts = os.path.dirname(sys.executable)
        env = {
            **os.environ,
            "PATH": scripts + os.pathsep + os.environ.get("PATH", ""),
            "WEB_PORT": str(_freePort()),
        }
        done = subprocess.run(
            [sys.executable, SUBREAPER, *commands],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        report = json.loads(done.stderr.rsplit("subreaper: ", 1)[1])
        # twistd's log, to show what went wrong if anything did.
        logs = ""
        for name in sorted(os.listdir(directory)):
            if name.endswith(".log"):
                with open(os.path.join(directory, name)) as log:
                    logs += f"--- {name}\n{log.read()}"
        self.assertEqual(
            report,
            {"returncode": 0, "left": []},
            f"{done.stdout}\n{done.stderr}\n{logs}",
        )
        return done.stdout

    def test_session(self) -> None:
        """
        C{sv_session.sh}: the supervisor starts under twistd; C{ctl start
        poller} answers with web and poller RUNNING; C{tail} shows the
        poller's fetches; C{restart} and C{stop} do what they say; the
        events show web ready before poller started; C{reload} adds
        C{clock} and keeps every other pid; C{SIGTERM} stops it all and
        nothing is left.
        """
        output = self.session(["sh", os.path.join(LISTINGS, "sv_session.sh")])
        tables = _tables(output)
        started, status, restarted, stopped, paused, resumed, reloaded = tables
        header = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT"]
        self.assertEqual(status[0][:7], header)
        self.assertEqual(_rows(started)["poller"][1], "RUNNING")
        before = _rows(status)
        self.assertEqual([before[n][1] for n in ("web", "poller")], ["RUNNING"] * 2)
        # poller was ready once it had fetched a page: ctl tail shows that
        # fetch (or two), perhaps after the spawn marker.
        afterStatus = output.split("\n\n")[2]
        tail = afterStatus[: afterStatus.index("NAME ")].splitlines()
        self.assertTrue(tail[-1].startswith("200 "), tail)
        for line in tail:
            self.assertRegex(
                line, r"^(200 \d+ bytes|--- txspawn: spawned pid \d+ ---)$"
            )
        self.assertEqual(_rows(restarted)["worker"][1], "RUNNING")
        self.assertEqual(_rows(stopped)["worker"][1], "STOPPED")
        self.assertEqual(_rows(paused)["poller"][1], "RUNNING")
        self.assertEqual(_rows(resumed)["poller"][1], "RUNNING")
        events = re.findall(r"^\S+ #\d+ (\w+) (\w+) -> (\w+):", output, re.MULTILINE)
        self.assertLess(
            events.index(("web", "STARTING", "RUNNING")),
            events.index(("poller", "STOPPED", "STARTING")),
        )
        self.assertIn("added: clock\n", output)
        self.assertIn("unchanged: web, worker, poller\n", output)
        after = _rows(reloaded)
        self.assertEqual(after["web"][2], before["web"][2])
        self.assertEqual(after["poller"][2], before["poller"][2])
        self.assertIn(after["clock"][1], ("STARTING", "RUNNING"))

    def test_tac(self) -> None:
        """
        C{sv_app.tac} runs under C{twistd --reactor=txspawn}: the supervisor
        in it starts poller and web, answers C{ctl}, and stops them all on
        C{SIGTERM}.
        """
        tac = os.path.join(LISTINGS, "sv_app.tac")
        output = self.session(
            [
                "sh",
                "-c",
                'twistd --reactor=txspawn --pidfile=app.pid --logfile=app.log -y "$0"'
                " && python -m txspawn ctl start poller"
                " && python -m txspawn ctl status"
                ' && pid=$(cat app.pid) && kill "$pid"'
                ' && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done',
                tac,
            ]
        )
        status = _rows(_tables(output)[1])
        self.assertEqual(
            [status[name][1] for name in ("web", "poller")], ["RUNNING"] * 2
        )
