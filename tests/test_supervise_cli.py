# -*- test-case-name: tests.test_supervise_cli -*-
"""
Tests for C{python -m txspawn supervise} (L{txspawn._cli.supervise}): the
supervisor in the foreground, the supervisord converter, the commands'
place in C{python -m txspawn}, and the README's demo
(C{examples/demo.py} on C{examples/procs.toml}).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.svrunutil import (
    Fifo,
    SupervisorRun,
    programCommand,
    scratchDirectory,
    writeConfig,
)
from tests.treeutil import Descendant
from txspawn._cli.supervise import main
from txspawn.supervise import parseConfig

__all__ = ["ConvertTests", "DemoTests", "ForegroundTests"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: A supervisord config with one key the converter cannot convert.
SUPERVISORD_CONF = """\
[supervisord]
logfile = /tmp/supervisord.log

[program:web]
command = python3 -m http.server 8000
autorestart = true
startsecs = 2
stopwaitsecs = 5
serverurl = AUTO
"""


def _module(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "txspawn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


class ForegroundTests(SynchronousTestCase):
    """
    C{python -m txspawn supervise procs.toml}, as a real process under a
    subreaper that reports what it leaves alive.
    """

    def setUp(self) -> None:
        self.directory = scratchDirectory(self)
        self.fifo = Fifo(self, self.directory)
        writeConfig(
            self.directory,
            f"""
[programs.first]
command = {programCommand(self.fifo.path, "first", "--ignore-term")}
stop = {{ timeout = 1.0 }}
ready = {{ after = 0.1 }}

[programs.second]
command = {programCommand(self.fifo.path, "second")}
depends_on = ["first"]
ready = {{ after = 0.1 }}
""",
        )

    def _stops(self, signum: int) -> None:
        run = SupervisorRun(
            self,
            [sys.executable, "-m", "txspawn", "supervise", "procs.toml"],
            self.directory,
        )
        lines = self.fifo.lines(2, run)
        # The dependency first.
        self.assertEqual([line[0] for line in lines], ["first", "second"])
        children = [Descendant(int(line[1])) for line in lines]
        output = run.stop(signum)
        self.assertEqual(run.returncode, 0, output)
        self.assertEqual(run.left, [], output)
        self.assertEqual([each for each in children if each.alive()], [])
        # It logged to stderr, in text.
        self.assertIn("control API listening on unix:", output)

    def test_sigterm(self) -> None:
        """
        The supervisor runs the programs (a dependency before what depends
        on it) and, on C{SIGTERM}, stops them all (the one that ignores
        C{SIGTERM} with C{SIGKILL}) and exits 0, leaving no child.
        """
        self._stops(signal.SIGTERM)

    def test_sigint(self) -> None:
        """
        The same on C{SIGINT} (Control-C).
        """
        self._stops(signal.SIGINT)

    def test_cannotListen(self) -> None:
        """
        When the control API cannot listen, the supervisor says why, stops
        (with every program) and exits 1.
        """
        with open(os.path.join(self.directory, "procs.toml"), "r+") as f:
            text = f.read().replace("unix:path=ctl.sock", "unix:path=nowhere/ctl.sock")
            f.seek(0)
            f.write(text)
        run = SupervisorRun(
            self,
            [sys.executable, "-m", "txspawn", "supervise", "procs.toml"],
            self.directory,
        )
        output = run.wait()
        self.assertEqual(run.returncode, 1, output)
        self.assertEqual(run.left, [], output)
        self.assertRegex(
            output, r"control API: cannot listen on unix:path=\S+/nowhere/"
        )

    def test_badConfig(self) -> None:
        """
        A config that is not valid: exit status 1, every problem's file,
        line and key path on stderr, nothing started.
        """
        writeConfig(
            self.directory,
            '[programs.web]\ncommand = "true"\nrestart = "sometimes"\n'
            'depends_on = ["nothing"]\n',
            name="bad.toml",
        )
        result = _module("supervise", "bad.toml", cwd=self.directory)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn("bad.toml:7: programs.web.restart: ", result.stderr)
        self.assertIn("bad.toml:8: programs.web.depends_on[0]: ", result.stderr)

    def test_missingConfig(self) -> None:
        """
        Without an argument the config is C{procs.toml}; when there is none,
        exit status 1 saying so.
        """
        os.remove(os.path.join(self.directory, "procs.toml"))
        result = _module("supervise", cwd=self.directory)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(
            "cannot read the config 'procs.toml': No such file or directory",
            result.stderr,
        )


class ConvertTests(SynchronousTestCase):
    """
    C{python -m txspawn supervise --convert supervisord.conf [-o FILE]}.
    """

    def setUp(self) -> None:
        self.directory = scratchDirectory(self)
        self.source = os.path.join(self.directory, "supervisord.conf")
        with open(self.source, "w") as f:
            f.write(SUPERVISORD_CONF)

    def test_toStdout(self) -> None:
        """
        The TOML goes to stdout and loads; what could not be converted is
        listed on stderr, with its section.
        """
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(main(["--convert", self.source], out, err), 0)
        config = parseConfig(out.getvalue(), baseDir=self.directory)
        self.assertEqual(list(config.programs), ["web"])
        self.assertEqual(config.programs["web"].restart, "always")
        self.assertIn("not converted: [program:web] serverurl", err.getvalue())

    def test_toFile(self) -> None:
        """
        C{-o} writes a new file, and never overwrites one.
        """
        target = os.path.join(self.directory, "procs.toml")
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(main(["--convert", self.source, "-o", target], out, err), 0)
        self.assertEqual(out.getvalue(), "")
        with open(target) as f:
            converted = f.read()
        self.assertIn("[programs.web]", converted)
        err = io.StringIO()
        self.assertEqual(main(["--convert", self.source, "-o", target], out, err), 1)
        self.assertIn("cannot create", err.getvalue())
        with open(target) as f:
            self.assertEqual(f.read(), converted)

    def test_notSupervisord(self) -> None:
        """
        A file that is not an INI file, or that cannot be read: exit status
        1 with why.
        """
        with open(self.source, "w") as f:
            f.write("no section header\n")
        err = io.StringIO()
        self.assertEqual(main(["--convert", self.source], io.StringIO(), err), 1)
        self.assertIn("is not a supervisord config", err.getvalue())
        err = io.StringIO()
        missing = os.path.join(self.directory, "missing.conf")
        self.assertEqual(main(["--convert", missing], io.StringIO(), err), 1)
        self.assertIn("No such file or directory", err.getvalue())

    def test_outputNeedsConvert(self) -> None:
        """
        C{-o} without C{--convert} is a usage error (exit status 2).
        """
        result = _module("supervise", "-o", "x.toml", cwd=self.directory)
        self.assertEqual(result.returncode, 2)
        self.assertIn("-o/--output goes with --convert", result.stderr)


class CommandTests(SynchronousTestCase):
    """
    C{supervise} and C{ctl} are commands of C{python -m txspawn}.
    """

    def test_listed(self) -> None:
        """
        C{python -m txspawn --help} lists both, with what they do.
        """
        result = _module("--help")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"\n    supervise\s+run the process supervisor")
        self.assertRegex(result.stdout, r"\n    ctl +control a running supervisor")

    def test_ownHelp(self) -> None:
        """
        Each parses its own arguments: C{--help} is theirs.
        """
        supervise = _module("supervise", "--help")
        self.assertEqual(supervise.returncode, 0)
        self.assertIn("usage: python -m txspawn supervise", supervise.stdout)
        self.assertIn("--convert", supervise.stdout)
        ctl = _module("ctl", "--help")
        self.assertEqual(ctl.returncode, 0, ctl.stderr)
        self.assertIn("status", ctl.stdout)


class DemoTests(SynchronousTestCase):
    """
    The README's first command runs C{examples/demo.py}.
    """

    def test_demo(self) -> None:
        """
        The demo runs the example's programs until the web server is
        ready, the poller (which depends on it) started after it and
        fetched its page, and the crashing worker was restarted twice;
        prints the status table through C{ctl}; and stops everything: exit
        status 0 and no child left.
        """
        directory = scratchDirectory(self)
        # A copy: the socket and logs go beside the config, and the
        # checkout is left alone (and another run of the demo cannot meet
        # this one's socket).
        shutil.copytree(
            os.path.join(REPO, "examples"),
            os.path.join(directory, "examples"),
            ignore=shutil.ignore_patterns("logs", "*.sock", "__pycache__"),
        )
        run = SupervisorRun(
            self, [sys.executable, os.path.join("examples", "demo.py")], directory
        )
        output = run.wait()
        self.assertEqual(run.returncode, 0, output)
        self.assertEqual(run.left, [], output)
        # "  0.33s  web      STARTING -> RUNNING  ready pid 123"
        transitions = [
            (fields[1], fields[2], fields[4])
            for fields in (
                line.split()
                for line in output.splitlines()
                if line.startswith("  ") and " -> " in line
            )
        ]
        running = [name for name, _, new in transitions if new == "RUNNING"]
        self.assertLess(running.index("web"), running.index("poller"), output)
        backoffs = [name for name, _, new in transitions if new == "BACKOFF"]
        self.assertGreaterEqual(backoffs.count("worker"), 2, output)
        self.assertIn("$ python -m txspawn ctl -c ", output)
        self.assertRegex(output, r"\nNAME +STATE +PID")
        self.assertRegex(output, r"poller: GET http://127\.0\.0\.1:\d+/: 200")
        self.assertIn("every program stopped", output)

    def test_readme(self) -> None:
        """
        The README's first command sets up and runs this demo.
        """
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        commands = [
            line for line in readme.splitlines() if line.startswith("python3 -m venv")
        ]
        self.assertEqual(
            commands[0],
            "python3 -m venv .venv && .venv/bin/pip install -q -e . && "
            ".venv/bin/python examples/demo.py",
        )
