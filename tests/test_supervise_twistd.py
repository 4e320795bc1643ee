# -*- test-case-name: tests.test_supervise_twistd -*-
"""
Tests for the supervisor as a twistd/twist plugin (L{txspawn.supervise.tap},
C{twisted/plugins/txspawn_supervise.py}): real C{twistd} and C{twist}
processes, supervising real programs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python import usage
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.cgrouptransportutil import cgroupSkipReason
from tests.svrunutil import (
    PROGRAM,
    Fifo,
    SupervisorRun,
    programCommand,
    scratchDirectory,
    twistCommand,
    twistdCommand,
    writeConfig,
)
from tests.treeutil import Descendant
from txspawn.supervise.tap import Options, ReloadOnHangup

__all__ = ["OptionsTests", "ReloadOnHangupTests", "TwistdTests"]


def _treeConfig(directory: str, fifo: Fifo) -> str:
    """
    A config of two programs: C{tree}, whose setsid'd grandchild ignores
    C{SIGTERM} (and which ignores it itself), and C{plain}.
    """
    return writeConfig(
        directory,
        f"""
[programs.tree]
command = {programCommand(fifo.path, "tree", "--tree", "--ignore-term")}
stop = {{ timeout = 1.0 }}
ready = {{ after = 0.1 }}

[programs.plain]
command = {programCommand(fifo.path, "plain")}
ready = {{ after = 0.1 }}
""",
    )


def _pids(lines: list[list[str]]) -> dict[str, list[int]]:
    """
    The pids each program reported: C{{name: [pid, grandchild pid...]}}.
    """
    return {name: [int(p) for p in pids if p != "-"] for name, *pids in lines}


def _statusPids(output: str) -> dict[str, str]:
    """
    The PID column of a status table, by instance name.
    """
    rows = [line.split() for line in output.splitlines()]
    header = next(row for row in rows if row[:1] == ["NAME"])
    column = header.index("PID")
    return {row[0]: row[column] for row in rows if row and row[0] != "NAME"}


class TwistdTests(SynchronousTestCase):
    """
    C{twistd -n txspawn-supervise} and C{twist txspawn-supervise}, as real
    processes, each under a subreaper that reports what it leaves alive.
    """

    def setUp(self) -> None:
        self.directory = scratchDirectory(self)
        self.fifo = Fifo(self, self.directory)

    def _stopsEveryTree(self, argv: list[str], expectedCode: int) -> None:
        """
        Run a supervisor command on L{_treeConfig}, wait for both programs,
        then C{SIGTERM} it: it exits with C{expectedCode} and leaves no
        process alive, the setsid'd C{SIGTERM}-ignoring grandchild
        included.
        """
        reason = cgroupSkipReason()
        if reason is not None:
            raise SkipTest(f"a setsid'd grandchild is reached by a cgroup: {reason}")
        _treeConfig(self.directory, self.fifo)
        run = SupervisorRun(self, argv, self.directory)
        pids = _pids(self.fifo.lines(2, run))
        self.assertEqual(sorted(pids), ["plain", "tree"])
        tree = [Descendant(pid) for pid in [*pids["tree"], *pids["plain"]]]
        self.assertEqual(len(tree), 3)
        self.assertTrue(all(each.alive() for each in tree))
        output = run.stop(signal.SIGTERM)
        self.assertEqual(run.left, [], output)
        self.assertEqual(run.returncode, expectedCode, output)
        self.assertEqual([each for each in tree if each.alive()], [])

    def test_twistdStopsEveryTree(self) -> None:
        """
        After C{SIGTERM}, C{twistd -n txspawn-supervise} (no C{--reactor}:
        the plugin installs txspawn's) exits leaving no child alive, not
        even a setsid'd grandchild that ignores C{SIGTERM}: the inverse of
        procmon (L{test_procmonLeavesTheGrandchild}).  twistd ends by the
        signal it got, as it does for any application.
        """
        self._stopsEveryTree(
            twistdCommand(
                "-n",
                "--pidfile=",
                "--logfile=-",
                "txspawn-supervise",
                "-c",
                "procs.toml",
            ),
            -signal.SIGTERM,
        )

    def test_twistStopsEveryTree(self) -> None:
        """
        The same with C{twist txspawn-supervise}.
        """
        self._stopsEveryTree(
            twistCommand("--log-format=text", "txspawn-supervise", "-c", "procs.toml"),
            -signal.SIGTERM,
        )

    def test_procmonLeavesTheGrandchild(self) -> None:
        """
        The contrast: Twisted's own C{twistd procmon} leaves the setsid'd
        grandchild alive after C{SIGTERM} (and the child that ignores
        C{SIGTERM}: procmon's C{SIGKILL} comes after the reactor stopped).
        """
        run = SupervisorRun(
            self,
            twistdCommand(
                "-n",
                "--pidfile=",
                "--logfile=-",
                "procmon",
                sys.executable,
                PROGRAM,
                self.fifo.path,
                "tree",
                "--tree",
                "--ignore-term",
            ),
            self.directory,
        )
        pids = _pids(self.fifo.lines(1, run))["tree"]
        output = run.stop(signal.SIGTERM)
        self.assertEqual(sorted(each["pid"] for each in run.left), sorted(pids), output)

    def test_sighupReloadKeepsUnchangedPids(self) -> None:
        """
        C{SIGHUP} reloads the config: the program whose command changed is
        stopped and started again, a new program is started, and the
        unchanged program keeps its pid (C{ctl status} shows it).  With
        C{--reactor=txspawn} given explicitly.
        """
        programs = f"""
[programs.a]
command = {programCommand(self.fifo.path, "a")}
ready = {{ after = 0.1 }}

[programs.b]
command = {programCommand(self.fifo.path, "b")}
ready = {{ after = 0.1 }}
"""
        config = writeConfig(self.directory, programs)
        run = SupervisorRun(
            self,
            twistdCommand(
                "--reactor=txspawn",
                "-n",
                "--pidfile=",
                "--logfile=-",
                "txspawn-supervise",
                "-c",
                "procs.toml",
            ),
            self.directory,
        )
        before = _pids(self.fifo.lines(2, run))
        oldA, oldB = Descendant(before["a"][0]), Descendant(before["b"][0])
        writeConfig(
            self.directory,
            programs.replace('"b"]', '"b", "--changed"]')
            + f"""
[programs.c]
command = {programCommand(self.fifo.path, "c")}
ready = {{ after = 0.1 }}
""",
        )
        run.process.send_signal(signal.SIGHUP)
        after = _pids(self.fifo.lines(2, run))
        self.assertEqual(sorted(after), ["b", "c"])
        self.assertNotEqual(after["b"], before["b"])
        self.assertFalse(oldB.alive())
        self.assertTrue(oldA.alive())
        status = subprocess.run(
            [sys.executable, "-m", "txspawn", "ctl", "-c", config, "status"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(status.returncode, 0, status.stderr)
        pids = _statusPids(status.stdout)
        self.assertEqual(pids["a"], str(before["a"][0]), status.stdout)
        self.assertEqual(pids["b"], str(after["b"][0]), status.stdout)
        self.assertEqual(pids["c"], str(after["c"][0]), status.stdout)
        output = run.stop(signal.SIGTERM)
        self.assertEqual(run.left, [], output)

    def _twistdFails(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            twistdCommand(*args),
            capture_output=True,
            text=True,
            cwd=self.directory,
            timeout=120,
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        return result

    def test_badConfig(self) -> None:
        """
        A config that is not valid stops twistd before it starts anything,
        exit status 1, with every problem's file, line and key path.
        """
        writeConfig(
            self.directory,
            '[programs.web]\ncommand = "true"\nrestart = "sometimes"\n\n'
            "[programs.db]\ncommand = 3\n",
            name="bad.toml",
        )
        result = self._twistdFails(
            "-n", "--pidfile=", "--logfile=-", "txspawn-supervise", "-c", "bad.toml"
        )
        output = result.stdout + result.stderr
        self.assertIn("bad.toml:7: programs.web.restart: ", output)
        self.assertIn("bad.toml:10: programs.db.command: ", output)

    def test_missingConfig(self) -> None:
        """
        A config that cannot be read: exit status 1, saying which and why.
        """
        result = self._twistdFails(
            "-n", "--pidfile=", "--logfile=-", "txspawn-supervise", "-c", "none.toml"
        )
        self.assertIn(
            "cannot read the config 'none.toml': No such file or directory",
            result.stdout + result.stderr,
        )

    def test_otherReactorRefused(self) -> None:
        """
        With another reactor (C{--reactor=poll}), twistd refuses to run the
        supervisor and says which reactor to pass.
        """
        writeConfig(self.directory, "")
        result = self._twistdFails(
            "--reactor=poll",
            "-n",
            "--pidfile=",
            "--logfile=-",
            "txspawn-supervise",
            "-c",
            "procs.toml",
        )
        output = result.stdout + result.stderr
        self.assertIn("twisted.internet.pollreactor.PollReactor is installed", output)
        self.assertIn("pass --reactor=txspawn", output)


class OptionsTests(SynchronousTestCase):
    """
    L{Options} loads the config when it is parsed.
    """

    def test_configDefault(self) -> None:
        """
        C{-c/--config} defaults to C{procs.toml}.
        """
        self.assertEqual(Options()["config"], "procs.toml")

    def test_badConfigIsUsageError(self) -> None:
        """
        A config that is not valid is a L{usage.UsageError} listing every
        problem with its line and key path (raised before any reactor is
        looked at).
        """
        directory = scratchDirectory(self)
        path = writeConfig(
            directory, '[programs.web]\ncommand = "true"\nrestart = "x"\nbogus = 1\n'
        )
        error = self.assertRaises(
            usage.UsageError, Options().parseOptions, ["-c", path]
        )
        self.assertIn(f"{path}:7: programs.web.restart: ", str(error))
        self.assertIn(f"{path}:8: programs.web.bogus: ", str(error))


class _FakeSupervisor:
    def __init__(self) -> None:
        self.reloads = 0

    def reload(self) -> Deferred[None]:
        self.reloads += 1
        return succeed(None)


class _FakeReactor:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.calls.append((f, args))


class ReloadOnHangupTests(SynchronousTestCase):
    """
    L{ReloadOnHangup} turns C{SIGHUP} into a reload on the reactor.
    """

    def test_hangupSchedulesReload(self) -> None:
        """
        While the service runs, C{SIGHUP} schedules the supervisor's reload
        with C{callFromThread} (the handler does nothing else) instead of
        running the handler that was there before; after it stops, that
        handler is back.
        """
        hangups: list[int] = []

        def before(signum: int, frame: object) -> None:
            hangups.append(signum)

        self.addCleanup(signal.signal, signal.SIGHUP, signal.getsignal(signal.SIGHUP))
        signal.signal(signal.SIGHUP, before)
        supervisor = _FakeSupervisor()
        reactor = _FakeReactor()
        service = ReloadOnHangup(supervisor, reactor)  # type: ignore[arg-type]
        service.startService()
        os.kill(os.getpid(), signal.SIGHUP)
        self.assertEqual((reactor.calls, hangups), ([(service.reload, ())], []))
        self.assertEqual(supervisor.reloads, 0)
        service.reload()
        self.assertEqual(supervisor.reloads, 1)
        service.stopService()
        self.assertIs(signal.getsignal(signal.SIGHUP), before)
        os.kill(os.getpid(), signal.SIGHUP)
        self.assertEqual((len(reactor.calls), hangups), (1, [signal.SIGHUP]))
