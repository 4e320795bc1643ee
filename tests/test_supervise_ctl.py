# -*- test-case-name: tests.test_supervise_ctl -*-
"""
Tests for C{python -m txspawn ctl} (L{txspawn._cli.ctl}): the command run
as a real process against a real supervisor, its output and its exit
status.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer

from twisted.trial.unittest import SynchronousTestCase

import txspawn
from tests.builders import makeTestCaseClasses
from tests.controlutil import (
    SLEEPER,
    Supervised,
    SupervisorMixin,
    program,
    shortTempDir,
)
from txspawn import ProcessResult
from txspawn._cli.ctl import formatEvent

#: The table's header, as status.formatTable writes it.
HEADER = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT", "CPU", "MEMORY"]


def ctlArgv(*args: str) -> list[str]:
    return [sys.executable, "-m", "txspawn", "ctl", *args]


async def ctl(s: Supervised, *args: str, cwd: str | None = None) -> ProcessResult:
    """
    Run C{python -m txspawn ctl ARGS} in C{cwd} (the supervisor's directory
    by default) and wait for it.
    """
    return await txspawn.run(ctlArgv(*args), reactor=s.reactor, path=cwd or s.base)


def table(output: bytes) -> list[list[str]]:
    """
    The rows of a printed status table, header first, cut at blanks.
    """
    return [line.split() for line in output.decode().splitlines() if line.strip()]


class CtlMixin(SupervisorMixin):
    """
    C{ctl} against a real supervisor.
    """

    def test_statusStartStop(self) -> None:
        """
        C{status}, C{start} and C{stop} print the status table of what they
        name and exit 0; the endpoint comes from C{-c}, from C{-s}, or from
        C{./procs.toml}.
        """

        async def scenario(s: Supervised) -> None:
            result = await ctl(s, "start", "web")
            self.assertEqual(result.exitCode, 0, result.stderr)
            [header, web] = table(result.stdout)
            self.assertEqual(header, HEADER)
            pid = s.service.instances("web")[0].pid
            self.assertEqual(web[:3], ["web", "RUNNING", str(pid)])
            for where in (
                [],
                ["-c", s.configPath],
                ["-s", s.service.config.control],
            ):
                result = await ctl(
                    s, *where, "status", cwd=s.base if not where else "/"
                )
                self.assertEqual(result.exitCode, 0, (where, result.stderr))
                self.assertEqual(
                    [row[:2] for row in table(result.stdout)],
                    [HEADER[:2], ["web", "RUNNING"], ["idle", "STOPPED"]],
                )
            result = await ctl(s, "stop", "all")
            self.assertEqual(result.exitCode, 0, result.stderr)
            self.assertEqual(
                [row[:3] for row in table(result.stdout)[1:]],
                [["web", "STOPPED", "-"], ["idle", "STOPPED", "-"]],
            )

        self.supervise(
            program(
                "web", SLEEPER, "autostart = false", "[programs.web.ready]", "after = 0"
            )
            + program("idle", SLEEPER, "autostart = false"),
            scenario,
        )

    def test_failures(self) -> None:
        """
        An unknown program and a start that ends FATAL exit 1 with the
        server's reason on stderr (and, for the start, the rows on stdout);
        a bad signal too.
        """

        async def scenario(s: Supervised) -> None:
            result = await ctl(s, "start", "nope")
            self.assertEqual(result.exitCode, 1)
            self.assertIn(b"start failed: unknown program 'nope'", result.stderr)
            result = await ctl(s, "start", "broken")
            self.assertEqual(result.exitCode, 1)
            self.assertIn(b"broken is FATAL", result.stderr)
            self.assertEqual(table(result.stdout)[1][:2], ["broken", "FATAL"])
            result = await ctl(s, "signal", "NOSUCH", "broken")
            self.assertEqual(result.exitCode, 1)
            self.assertIn(b"signal failed", result.stderr)

        self.supervise(
            '[programs.broken]\ncommand = ["/nonexistent/x"]\nautostart = false\n',
            scenario,
        )

    def test_signalTailEvents(self) -> None:
        """
        C{signal} reaches the child, C{tail} prints the log's last lines,
        C{tail -f} streams until interrupted (exit 0), C{events} prints one
        line per event (C{--json}: the API's objects).
        """

        async def scenario(s: Supervised) -> None:
            follow = txspawn.stream(
                ctlArgv("tail", "-f", "-n", "1", "web"), reactor=s.reactor, path=s.base
            )
            seen = b""
            async for chunk in follow:
                seen += chunk.data
                if seen.endswith(b"started\n"):
                    break
            self.assertNotIn(b"got HUP", seen)
            result = await ctl(s, "signal", "HUP", "web")
            self.assertEqual(result.exitCode, 0, result.stderr)
            self.assertEqual(table(result.stdout)[1][:2], ["web", "RUNNING"])
            async for chunk in follow:
                seen += chunk.data
                if seen.endswith(b"got HUP\n"):
                    break
            self.assertTrue(seen.endswith(b"started\ngot HUP\n"), seen)
            assert follow.pid is not None
            os.kill(follow.pid, signal.SIGINT)
            ended = await follow.result
            self.assertEqual(ended.exitCode, 0)
            result = await ctl(s, "tail", "-n", "2", "web")
            self.assertEqual(
                (result.exitCode, result.stdout), (0, b"started\ngot HUP\n")
            )
            result = await ctl(s, "events", "--json")
            self.assertEqual(result.exitCode, 0, result.stderr)
            events = [json.loads(line) for line in result.stdout.splitlines()]
            self.assertEqual(events, [e.toJSON() for e in s.service.events.recent()])
            result = await ctl(s, "events", "--since", str(events[0]["seq"]))
            self.assertEqual(
                result.stdout.decode().splitlines(),
                [formatEvent(e) for e in events[1:]],
            )

        self.supervise(
            program("web", SLEEPER, "[programs.web.ready]", "after = 0"),
            scenario,
        )

    def test_reload(self) -> None:
        """
        C{reload} prints what changed; with a config that has errors, it
        still finds the supervisor (from the part of the config it can
        read) and prints each error with its key path and line, exit 1.
        """

        async def scenario(s: Supervised) -> None:
            with open(s.configPath, "a") as configFile:
                configFile.write(program("more", SLEEPER, "autostart = false"))
            result = await ctl(s, "reload")
            self.assertEqual(result.exitCode, 0, result.stderr)
            self.assertEqual(
                result.stdout.decode().splitlines(),
                ["added: more", "removed: -", "changed: -", "unchanged: web"],
            )
            with open(s.configPath, "a") as configFile:
                configFile.write("restart = 3\n")
            with open(s.configPath) as configFile:
                line = len(configFile.read().splitlines())
            result = await ctl(s, "reload")
            self.assertEqual(result.exitCode, 1, result.stdout)
            self.assertIn(
                f"procs.toml:{line}: programs.more.restart: ".encode(), result.stderr
            )

        self.supervise(program("web", SLEEPER), scenario)


# ctl is a client: what it does is the same whatever engine and monitor the
# supervisor spawns with (test_supervise_control runs the API on all four),
# so each engine and each monitor is used once, not every pair: each ctl run
# is a Python process of its own, and the machine is shared.
globals().update(
    {
        name: case
        for name, case in makeTestCaseClasses(CtlMixin).items()
        if name.endswith(("_c_pidfd", "_python_sigchld"))
    }
)


def runCtl(args: Sequence[str], cwd: str) -> tuple[int, str, str]:
    import subprocess

    done = subprocess.run(ctlArgv(*args), cwd=cwd, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


class NoSupervisorTests(SynchronousTestCase):
    """
    C{ctl} with no supervisor to talk to.
    """

    def test_nothingListening(self) -> None:
        """
        No socket, or a socket no one accepts on: exit 2, saying so.
        """
        base = shortTempDir(self)
        path = os.path.join(base, "ctl.sock")
        code, _, err = runCtl(["-s", f"unix:path={path}", "status"], base)
        self.assertEqual(
            (code, err), (2, f"ctl: no supervisor is listening at {path}\n")
        )
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)
        dead.close()
        code, _, err = runCtl(["-s", f"unix:{path}", "status"], base)
        self.assertEqual(
            (code, err), (2, f"ctl: no supervisor is listening at {path}\n")
        )

    def test_noConfig(self) -> None:
        """
        Neither C{-s} nor C{-c}, and no C{./procs.toml}: exit 2, saying
        what to give.
        """
        base = shortTempDir(self)
        code, _, err = runCtl(["status"], base)
        self.assertEqual(code, 2)
        self.assertIn("cannot read procs.toml", err)
        self.assertIn("give -c CONFIG or -s ENDPOINT", err)

    def test_usage(self) -> None:
        """
        A missing or unknown command is a usage error: exit 2.
        """
        base = shortTempDir(self)
        for args in ([], ["bogus"], ["start"]):
            code, _, err = runCtl(args, base)
            self.assertEqual(code, 2, args)
            self.assertIn("usage:", err)

    def test_refused(self) -> None:
        """
        A supervisor that refuses this user (403) makes ctl exit 3 with its
        reason.  (The supervisor's own refusal of another uid is tested in
        test_supervise_control, with a client that runs as nobody: this
        test's ctl runs as the user that would be allowed.)
        """
        base = shortTempDir(self)
        path = os.path.join(base, "ctl.sock")

        class Refuse(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"error": "uid 1000 may not control this"}).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class UnixServer(HTTPServer):
            address_family = socket.AF_UNIX

            def server_bind(self) -> None:
                self.socket.bind(self.server_address)
                self.server_name, self.server_port = "localhost", 0

        server = UnixServer(path, Refuse)  # type: ignore[arg-type]
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        try:
            code, _, err = runCtl(["-s", f"unix:path={path}", "status"], base)
        finally:
            thread.join()
            server.server_close()
        self.assertEqual(
            (code, err), (3, "ctl: refused: uid 1000 may not control this\n")
        )


class FormatEventTests(SynchronousTestCase):
    """
    L{formatEvent}.
    """

    def test_transition(self) -> None:
        event = {
            "seq": 7,
            "time": 0.25,
            "kind": "transition",
            "program": "web",
            "old": "STARTING",
            "new": "RUNNING",
            "why": "ready",
            "pid": 42,
            "errno": None,
        }
        self.assertEqual(
            formatEvent(event),
            "1970-01-01T00:00:00.250Z #7 web STARTING -> RUNNING: ready; pid 42",
        )

    def test_other(self) -> None:
        event = {
            "seq": 8,
            "time": 1.0,
            "kind": "reload",
            "program": None,
            "old": None,
            "new": None,
            "why": "added ['x']",
            "pid": None,
            "errno": None,
        }
        self.assertEqual(
            formatEvent(event), "1970-01-01T00:00:01.000Z #8 - reload: added ['x']"
        )


class ControlOfFileTests(SynchronousTestCase):
    """
    C{ctl -c FILE} reads the control endpoint from the file's
    C{[supervisor]} table alone, exactly as the loader gives it.
    """

    def write(self, text: str) -> str:
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "procs.toml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_sameAsLoader(self) -> None:
        """
        The default, a relative socket path, an absolute one, a variable and
        a tcp endpoint: the same endpoint as L{loadConfig}'s.
        """
        from txspawn.supervise._controlfile import controlOfFile
        from txspawn.supervise.config import loadConfig

        environ = {"SOCK": "run/x.sock"}
        for supervisor in (
            "",
            '[supervisor]\ncontrol = "unix:path=ctl.sock:mode=600"\n',
            '[supervisor]\ncontrol = "unix:/tmp/abs.sock"\n',
            '[supervisor]\ncontrol = "unix:path=${SOCK}"\n',
            '[supervisor]\ncontrol = "tcp:8080:interface=127.0.0.1"\n',
        ):
            path = self.write(supervisor + '[programs.a]\ncommand = "true"\n')
            self.assertEqual(
                controlOfFile(path, environ),
                loadConfig(path, environ).control,
                supervisor,
            )

    def test_brokenPrograms(self) -> None:
        """
        Errors outside C{[supervisor]} do not matter; an unset variable or
        a control that is not a string give C{None}.
        """
        from txspawn.supervise._controlfile import controlOfFile

        path = self.write('[programs.a]\nrestart = "sometimes"\n')
        self.assertEqual(
            controlOfFile(path, {}),
            f"unix:path={os.path.dirname(os.path.abspath(path))}/txspawn.sock:mode=600",
        )
        path = self.write('[supervisor]\ncontrol = "unix:${NOPE}"\n')
        self.assertIsNone(controlOfFile(path, {}))
        path = self.write("[supervisor]\ncontrol = 5\n")
        self.assertIsNone(controlOfFile(path, {}))
