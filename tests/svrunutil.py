# -*- test-case-name: tests.test_supervise_twistd -*-
"""
Helpers for the tests of the supervisor's entry points (C{twistd}, C{twist},
C{python -m txspawn supervise}): each runs as a real process, under
L{tests.helpers.subreaper} so that whatever it leaves alive is seen (and
killed), with programs (L{tests.helpers.svprogram}) that tell their pids
through a named pipe.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

__all__ = [
    "PROGRAM",
    "Fifo",
    "SupervisorRun",
    "programCommand",
    "scratchDirectory",
    "twistCommand",
    "twistdCommand",
    "writeConfig",
]

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
SUBREAPER = os.path.join(HELPERS, "subreaper.py")
PROGRAM = os.path.join(HELPERS, "svprogram.py")
#: The longest a test waits for something a supervisor does at once (a
#: guard against a hang, not a timing: each wait ends as soon as it can).
PATIENCE = 60.0


def twistdCommand(*args: str) -> list[str]:
    """
    C{twistd ARGS...}, run by this interpreter (so by this venv's Twisted).
    """
    return [
        sys.executable,
        "-c",
        "import sys; from twisted.scripts.twistd import run; "
        "sys.argv[0] = 'twistd'; run()",
        *args,
    ]


def twistCommand(*args: str) -> list[str]:
    """
    C{twist ARGS...}, run by this interpreter.
    """
    return [sys.executable, "-m", "twisted", *args]


def scratchDirectory(test: SynchronousTestCase) -> str:
    """
    A new directory under the system's temporary directory (short enough a
    path for a unix socket in it), removed after the test.
    """
    path = tempfile.mkdtemp(prefix="txsv-")
    test.addCleanup(shutil.rmtree, path, True)
    return path


def programCommand(fifo: str, name: str, *flags: str) -> str:
    """
    The TOML value of a C{command} running L{PROGRAM}.
    """
    return json.dumps([sys.executable, PROGRAM, fifo, name, *flags])


def writeConfig(directory: str, programs: str, name: str = "procs.toml") -> str:
    """
    Write a config: a control socket and logs in C{directory}, then
    C{programs} (TOML text).

    @return: The config's path.
    """
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(
            '[supervisor]\ncontrol = "unix:path=ctl.sock"\nlog_dir = "logs"\n\n'
            + programs
        )
    return path


class Fifo:
    """
    A named pipe the programs write their lines to, open for reading and
    writing (so that it never reads end-of-file) until the test ends.
    """

    def __init__(self, test: SynchronousTestCase, directory: str) -> None:
        self.path = os.path.join(directory, "pids.fifo")
        os.mkfifo(self.path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        test.addCleanup(os.close, self._fd)
        self._buffer = b""
        self._test = test

    def lines(self, count: int, run: SupervisorRun | None = None) -> list[list[str]]:
        """
        Wait for the next C{count} lines, each split into its fields.

        @param run: The supervisor, whose log a failure shows.
        """
        deadline = time.monotonic() + PATIENCE
        while self._buffer.count(b"\n") < count:
            left = deadline - time.monotonic()
            if left <= 0 or (run is not None and run.process.poll() is not None):
                self._test.fail(
                    f"{count} lines not written to the pipe (got "
                    f"{self._buffer!r}); the supervisor's output:\n"
                    + ("" if run is None else run.output())
                )
            ready, _, _ = select.select([self._fd], [], [], min(left, 0.5))
            if ready:
                self._buffer += os.read(self._fd, 65536)
        lines = self._buffer.split(b"\n")
        self._buffer = b"\n".join(lines[count:])
        return [line.decode().split() for line in lines[:count]]


class SupervisorRun:
    """
    A supervisor command running under L{SUBREAPER}, its output in a file.
    """

    def __init__(
        self,
        test: SynchronousTestCase,
        argv: Sequence[str],
        cwd: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self._logPath = os.path.join(cwd, "supervisor.log")
        self._log = open(self._logPath, "wb")
        test.addCleanup(self._log.close)
        self.process = subprocess.Popen(
            [sys.executable, SUBREAPER, *argv],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )
        test.addCleanup(self._kill)
        self.returncode: int | None = None
        self.left: list[dict[str, Any]] = []

    def _kill(self) -> None:
        if self.process.poll() is None:
            # A test that failed half-way: stop the supervisor (the helper
            # forwards SIGTERM, then kills whatever is left), or at worst
            # the helper itself.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        """
        What the supervisor printed so far (the subreaper's line included).
        """
        with open(self._logPath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait(self) -> str:
        """
        Wait for the supervisor to exit; set L{returncode} and L{left} (the
        processes it left alive, which the helper then killed).

        @return: Its output.
        """
        self.process.wait(timeout=PATIENCE * 2)
        output = self.output()
        for line in reversed(output.splitlines()):
            if line.startswith("subreaper: "):
                verdict = json.loads(line[len("subreaper: ") :])
                self.returncode = verdict["returncode"]
                self.left = verdict["left"]
                return output
        raise AssertionError(f"the subreaper did not report:\n{output}")

    def stop(self, signum: int = signal.SIGTERM) -> str:
        """
        Send C{signum} to the supervisor and L{wait}.
        """
        self.process.send_signal(signum)
        return self.wait()
