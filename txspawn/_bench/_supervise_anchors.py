# -*- test-case-name: tests.test_bench_supervise -*-
"""
The three supervisors of the C{supervise} bench rows, behind one handle
(L{Supervisor}): txspawn's service with its control server, Twisted's
procmon, and supervisord (the C{supervisor} package, from PyPI).

Each runs as a process of its own (so its CPU time is its own) on the same
programs (L{ProgramSpec}), translated into its own config: a TOML file for
txspawn, a JSON worker config for procmon, an INI file for supervisord.  A
program has a I{role} and each supervisor gets the settings that role means
in its own terms:

  - C{restart}: restarted at once after every exit, never given up
    (txspawn: C{restart = "always"}, ready at once, a zero backoff and
    every run counted stable; procmon: C{minRestartDelay = 0}; supervisord:
    C{startsecs = 0}, C{autorestart = true}).
  - C{sleep}: each supervisor's defaults.
  - C{fail}: a program that cannot be executed, restarted for ever where
    the supervisor restarts it (txspawn: C{give_up_after = "never"}, though
    it makes such a program FATAL at once; procmon: its defaults;
    supervisord: a huge C{startretries}).
  - C{spew}: run once, its stdout to a log file rotated at 10 MB with 3
    backups (txspawn: with a timestamp on every line; procmon: none, its
    output only goes to its log).

Nothing here is public API.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Sequence
from typing import IO, Literal

from attrs import frozen

__all__ = [
    "ANCHORS",
    "AnchorError",
    "ProgramSpec",
    "Role",
    "Supervisor",
    "descendants",
]

#: The supervisors, in report order.
ANCHORS: tuple[str, ...] = ("txspawn", "procmon", "supervisord")

Role = Literal["restart", "sleep", "fail", "spew"]

#: The rotation every C{spew} program's log gets.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3

#: Seconds a supervisor may take to start, or to stop after SIGTERM.
_START_SECONDS = 120.0
_STOP_SECONDS = 60.0


class AnchorError(Exception):
    """
    A supervisor could not start, answer or stop.
    """


@frozen
class ProgramSpec:
    """
    One program, as every supervisor gets it.

    @ivar name: Its name.
    @ivar argv: Its command line.
    @ivar role: What it is for (see the module docstring).
    @ivar instances: How many copies.
    """

    name: str
    argv: tuple[str, ...]
    role: Role
    instances: int = 1


def _toml(value: object) -> str:
    # JSON strings, numbers, booleans and arrays are valid TOML values.
    return json.dumps(value)


def txspawnConfig(programs: Sequence[ProgramSpec], control: str, logDir: str) -> str:
    """
    @return: The TOML config for txspawn.
    """
    lines = [
        "[supervisor]",
        f"control = {_toml(control)}",
        f"log_dir = {_toml(logDir)}",
    ]
    for p in programs:
        lines += ["", f"[programs.{p.name}]", f"command = {_toml(list(p.argv))}"]
        if p.instances != 1:
            lines.append(f"instances = {p.instances}")
        if p.role == "restart":
            lines += [
                'restart = "always"',
                "ready = { after = 0 }",
                "backoff = { initial = 0, max = 0, reset_after = 0, "
                'give_up_after = "never" }',
            ]
        elif p.role == "fail":
            lines += ['restart = "always"', 'backoff = { give_up_after = "never" }']
        elif p.role == "spew":
            lines += [
                'restart = "never"',
                "ready = { after = 0 }",
                f"logs = {{ max_bytes = {LOG_MAX_BYTES}, backups = {LOG_BACKUPS}, "
                "timestamps = true }",
            ]
    return "\n".join(lines) + "\n"


def supervisordConfig(
    programs: Sequence[ProgramSpec], directory: str, logDir: str
) -> str:
    """
    @return: The INI config for supervisord.
    """
    lines = [
        "[unix_http_server]",
        f"file={directory}/supervisord.sock",
        "[supervisord]",
        f"logfile={directory}/supervisord.log",
        f"pidfile={directory}/supervisord.pid",
        f"childlogdir={logDir}",
        "nodaemon=true",
        "user=root" if os.getuid() == 0 else "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = "
        "supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        f"serverurl=unix://{directory}/supervisord.sock",
    ]
    for p in programs:
        lines += [f"[program:{p.name}]", "command=" + " ".join(p.argv)]
        if p.instances != 1:
            lines += [
                f"numprocs={p.instances}",
                "process_name=%(program_name)s_%(process_num)d",
            ]
        if p.role == "restart":
            lines += ["startsecs=0", "autorestart=true", "startretries=1000000"]
        elif p.role == "fail":
            lines += ["autorestart=true", "startretries=1000000"]
        elif p.role == "spew":
            lines += [
                "startsecs=0",
                "autorestart=false",
                f"stdout_logfile={logDir}/{p.name}.out",
                f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
                f"stdout_logfile_backups={LOG_BACKUPS}",
            ]
    return "\n".join(line for line in lines if line) + "\n"


def procmonConfig(programs: Sequence[ProgramSpec], log: str) -> dict[str, object]:
    """
    @return: The worker config for procmon (one name per instance: procmon
        has no instances).
    """
    named: list[list[object]] = []
    for p in programs:
        for n in range(p.instances):
            name = p.name if p.instances == 1 else f"{p.name}_{n}"
            named.append([name, list(p.argv)])
    config: dict[str, object] = {"impl": "procmon", "programs": named, "log": log}
    if any(p.role == "restart" for p in programs):
        config.update(minRestartDelay=0, maxRestartDelay=0)
    return config


def _procStat(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read()
    except OSError:
        return None


def _startTime(pid: int) -> int | None:
    stat = _procStat(pid)
    if stat is None:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def descendants(pid: int) -> list[int]:
    """
    @param pid: A process.
    @return: Its living descendants (from C{/proc/PID/task/*/children}),
        children first.
    """
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop(0)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


class Supervisor:
    """
    One supervisor process, started on some programs.

    @ivar impl: Which one (L{ANCHORS}).
    @ivar directory: Its own directory (config, socket, logs).
    @ivar logDir: Where its programs' log files go.
    @ivar process: The supervisor process.
    @ivar endpoint: For txspawn: its control endpoint string.
    """

    def __init__(
        self,
        impl: str,
        directory: str,
        programs: Sequence[ProgramSpec],
        engine: str | None = None,
        monitor: str | None = None,
    ) -> None:
        self.impl = impl
        self.directory = directory
        self.logDir = os.path.join(directory, "logs")
        os.makedirs(self.logDir, exist_ok=True)
        self.endpoint = f"unix:path={directory}/control.sock"
        self._config = os.path.join(directory, "supervisord.conf")
        self._stderrPath = os.path.join(directory, "stderr")
        self._stderr: IO[bytes] = open(self._stderrPath, "wb")
        python = sys.executable
        if impl == "txspawn":
            path = os.path.join(directory, "procs.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(txspawnConfig(programs, self.endpoint, self.logDir))
            log = os.path.join(directory, "txspawn.log")
            worker = {"impl": "txspawn", "config": path, "log": log}
            worker.update(engine=engine, monitor=monitor)  # type: ignore[arg-type]
            argv = [
                python,
                "-m",
                "txspawn._bench._supervise_worker",
                json.dumps(worker),
            ]
        elif impl == "procmon":
            config = procmonConfig(programs, os.path.join(directory, "procmon.log"))
            argv = [
                python,
                "-m",
                "txspawn._bench._supervise_worker",
                json.dumps(config),
            ]
        elif impl == "supervisord":
            if importlib.util.find_spec("supervisor") is None:
                self._stderr.close()
                raise AnchorError(
                    "supervisord: the supervisor package is not installed "
                    "(pip install supervisor, or txspawn's test extra)"
                )
            with open(self._config, "w", encoding="utf-8") as f:
                f.write(supervisordConfig(programs, directory, self.logDir))
            argv = [python, "-m", "supervisor.supervisord", "-n", "-c", self._config]
        else:
            raise ValueError(f"unknown supervisor {impl!r}")
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=directory,
            )
        except OSError as e:
            self._stderr.close()
            raise AnchorError(f"{impl} could not start: {e}") from None
        self._waitReady()

    @property
    def pid(self) -> int:
        """
        The supervisor's pid.
        """
        return self.process.pid

    def stderrTail(self) -> str:
        """
        @return: The last lines the supervisor wrote to stderr.
        """
        with open(self._stderrPath, "rb") as f:
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
        return " / ".join(lines[-4:]) or "no stderr"

    def _waitReady(self) -> None:
        deadline = time.monotonic() + _START_SECONDS
        if self.impl != "supervisord":
            assert self.process.stdout is not None
            line = self.process.stdout.readline().strip()
            if line != b"ready":
                self.stop()
                raise AnchorError(f"{self.impl} did not start: {self.stderrTail()}")
            if self.impl == "procmon":
                return
        while True:
            try:
                self.statusRequest()
                return
            except (OSError, AnchorError, xmlrpc.client.Error):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AnchorError(
                        f"{self.impl} did not start: {self.stderrTail()}"
                    ) from None
                time.sleep(0.02)

    def statusRequest(self) -> list[dict[str, object]]:
        """
        One status request over the supervisor's control interface, with a
        new client (as a command line makes).

        @return: One row per program instance, as the interface gives it.
        @raise AnchorError: procmon has no control interface.
        """
        if self.impl == "txspawn":
            from txspawn.supervise.client import ControlClient, ControlError

            try:
                return ControlClient(self.endpoint).status()
            except ControlError as e:
                raise AnchorError(f"txspawn: {e}") from None
        if self.impl == "supervisord":
            from supervisor.xmlrpc import (  # type: ignore[import-untyped]
                SupervisorTransport,
            )

            transport = SupervisorTransport(
                None, None, f"unix://{self.directory}/supervisord.sock"
            )
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport)
            try:
                info = proxy.supervisor.getAllProcessInfo()
            finally:
                transport.close()
            assert isinstance(info, list)
            return [
                {"name": i["name"], "state": i["statename"], "pid": i["pid"]}
                for i in info
            ]
        raise AnchorError("procmon has no control interface")

    def statusCommand(self) -> list[str] | None:
        """
        @return: The command line that prints the status table, or C{None}
            (procmon has none).
        """
        if self.impl == "txspawn":
            return [
                sys.executable,
                "-m",
                "txspawn",
                "ctl",
                "-s",
                self.endpoint,
                "status",
            ]
        if self.impl == "supervisord":
            return [
                sys.executable,
                "-m",
                "supervisor.supervisorctl",
                "-c",
                self._config,
                "status",
            ]
        return None

    def running(self, argv0: str) -> int:
        """
        @param argv0: A program's executable.
        @return: How many descendants of the supervisor run it.
        """
        count = 0
        for pid in descendants(self.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    first = f.read().split(b"\0", 1)[0]
            except OSError:
                continue
            count += first == argv0.encode()
        return count

    def stop(self) -> None:
        """
        Stop the supervisor with C{SIGTERM} (C{SIGKILL} if it takes too
        long), then kill whatever it left alive (procmon leaves a child that
        outlives its stop), by pid, checking each is still the same
        process.
        """
        left = [(pid, _startTime(pid)) for pid in descendants(self.pid)]
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid, started in left:
            if started is not None and _startTime(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
