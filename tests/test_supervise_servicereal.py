# -*- test-case-name: tests.test_supervise_servicereal -*-
"""
L{txspawn.supervise.SupervisorService} with real children on txspawn's
reactor, on both engines x both monitors: dependency gating on a real
readiness check, a crash loop with backoff, whole-tree stops (a
C{setsid}'d grandchild that ignores C{SIGTERM}: killed through the cgroup;
without a cgroup, the process group), status metrics and log markers.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SkipTest

from tests.builders import MixinBase, makeTestCaseClasses
from tests.test_supervise_service import programFailed
from txspawn.options import Cgroup, SpawnOptions
from txspawn.supervise import (
    ProgramProcess,
    ProgramSpawn,
    ProgramState,
    ReadyAfter,
    SupervisorService,
    parseConfig,
)

S = ProgramState
PY = sys.executable


def toml(programs: dict[str, dict[str, Any]], logDir: str) -> str:
    """
    A config: each program's keys rendered as TOML (JSON strings, arrays,
    numbers and inline tables are TOML too).
    """

    def value(item: Any) -> str:
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{k} = {value(v)}" for k, v in item.items()) + " }"
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, list):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return json.dumps(item)

    text = f"[supervisor]\nlog_dir = {json.dumps(logDir)}\n"
    for name, keys in programs.items():
        text += f"\n[programs.{name}]\n"
        for key, item in keys.items():
            text += f"{key} = {value(item)}\n"
    return text


def exists(path: str) -> list[str]:
    """
    A command that exits 0 once C{path} exists.
    """
    return [PY, "-c", f"import os, sys; sys.exit(0 if os.path.exists({path!r}) else 1)"]


def aliveOrNone(pid: int) -> str | None:
    """
    The state letter of process C{pid} (C{"Z"}: a zombie, dead), or
    C{None} if there is no such process.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2]


def grandchildScript(pidFile: str, setsid: bool) -> list[str]:
    """
    A child that starts a grandchild ignoring C{SIGTERM} and C{SIGINT} (in
    a session of its own when C{setsid}), which writes its pid to
    C{pidFile} once it ignores them; the child then waits (and dies of
    either).
    """
    grandchild = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"open({pidFile!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"os.rename({pidFile!r} + '.tmp', {pidFile!r})\n"
        "time.sleep(120)\n"
    )
    child = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}],"
        f" start_new_session={setsid!r}, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        "time.sleep(120)\n"
    )
    return [PY, "-c", child]


class ServiceRealMixin(MixinBase):
    """
    The service with real children.
    """

    def runService(
        self,
        programs: dict[str, dict[str, Any]],
        scenario: Callable[[SupervisorService], Deferred[Any]],
    ) -> tuple[SupervisorService, list[object]]:
        """
        Run a service of C{programs} on a fresh reactor: start it, run
        C{scenario}, stop the service, stop the reactor.

        @return: The service and what C{scenario}'s L{Deferred} gave (a
            L{Failure} for a failure).
        """
        reactor = self.buildReactor()
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.base = base
        config = parseConfig(toml(programs, os.path.join(base, "logs")), baseDir=base)
        service = SupervisorService(config, reactor)
        outcome: list[object] = []

        def run() -> None:
            service.startService()
            done = scenario(service)
            done.addBoth(outcome.append)
            done.addBoth(lambda _: service.stopService())
            done.addBoth(lambda result: (reactor.stop(), result)[1])

        reactor.callWhenRunning(run)
        self.runReactor(reactor)
        return service, outcome

    def test_dependentAfterReadiness(self) -> None:
        """
        A dependent is started only once its dependency's readiness check
        passed: the dependency makes a file a while after it starts, its
        check waits for that file, and the dependent exits 7 (never
        restarted: FATAL) if the file is not there when it starts.
        """
        marker = os.path.abspath(self.mktemp())
        programs = {
            "web": {
                "command": [
                    PY,
                    "-c",
                    "import time; time.sleep(0.3);"
                    f" open({marker!r}, 'w').close(); time.sleep(60)",
                ],
                "ready": {"command": exists(marker)},
            },
            "poller": {
                "command": [
                    PY,
                    "-c",
                    "import os, sys, time\n"
                    f"if not os.path.exists({marker!r}): sys.exit(7)\n"
                    "time.sleep(60)\n",
                ],
                "depends_on": ["web"],
                "restart": "never",
                "ready": {"after": 0.2},
            },
        }
        service, outcome = self.runService(programs, lambda s: s.start("all"))
        self.assertEqual(outcome, [None])
        events = service.events.recent()
        webReady = [e.seq for e in events if e.program == "web" and e.new == "RUNNING"]
        pollerStarts = [
            e.seq for e in events if e.program == "poller" and e.new == "STARTING"
        ]
        self.assertEqual(len(pollerStarts), 1)
        self.assertLess(webReady[0], pollerStarts[0])

    def test_crashLoop(self) -> None:
        """
        A program that exits 1 at once is restarted with backoff until the
        give-up limit, then FATAL: its start fails with L{ProgramFailed}.
        """
        programs = {
            "crash": {
                "command": [PY, "-c", "import sys; sys.exit(1)"],
                "restart": "always",
                "backoff": {"initial": 0.05, "factor": 2, "give_up_after": 3},
            }
        }
        service, outcome = self.runService(programs, lambda s: s.start("crash"))
        self.assertEqual(programFailed(outcome).state, S.FATAL)
        self.assertEqual(
            [e.new for e in service.events.recent() if e.kind == "transition"],
            ["STARTING", "BACKOFF", "STARTING", "BACKOFF", "STARTING", "FATAL"],
        )
        [row] = service.status()
        self.assertEqual((row.restarts, row.lastExit), (2, "exited with code 1"))

    def stopTree(
        self, setsid: bool, spawn: dict[str, Any], stopSignal: str = "TERM"
    ) -> tuple[int, Any]:
        """
        Run a program whose child starts a C{SIGTERM}-ignoring grandchild,
        stop the service once the grandchild is set up.

        @return: The grandchild's pid and the child's transport.
        """
        pidFile = os.path.abspath(self.mktemp())
        programs = {
            "tree": {
                "command": grandchildScript(pidFile, setsid),
                "ready": {"command": exists(pidFile)},
                "stop": {"timeout": 30, "signal": stopSignal},
                "spawn": spawn,
            }
        }
        transports: list[Any] = []

        def scenario(service: SupervisorService) -> Deferred[None]:
            return service.start("tree").addCallback(
                lambda _: transports.append(service.instances("tree")[0].transport)
            )

        self.addCleanup(self.killLeftover, pidFile)
        _, outcome = self.runService(programs, scenario)
        self.assertEqual(outcome, [None])
        with open(pidFile) as f:
            return int(f.read()), transports[0]

    def killLeftover(self, pidFile: str) -> None:
        """
        Kill a grandchild a failed test left alive (found by its pid file,
        checked against its command line).
        """
        try:
            with open(pidFile) as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if pidFile.encode() in f.read():
                    os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def test_stopServiceKillsTree(self) -> None:
        """
        After C{stopService}'s L{Deferred}, a grandchild that left the
        child's session and ignores C{SIGTERM} is gone too: the child's
        cgroup (added for C{kill = "tree"}) is killed and waited for.
        """
        pid, transport = self.stopTree(setsid=True, spawn={})
        if transport.cgroupPath is None and transport.cgroupUnavailable:
            raise SkipTest(f"no cgroup here: {transport.cgroupUnavailable}")
        self.assertIn(aliveOrNone(pid), (None, "Z"))

    def test_stopServiceGroupFallback(self) -> None:
        """
        Where no cgroup can be had (here: a best-effort cgroup whose
        parent is not a cgroup), the stop falls back to the process group
        the child leads: a grandchild in it that ignores C{SIGTERM} is
        killed when the child exits, before C{stopService}'s L{Deferred}
        fires.
        """
        pid, transport = self.stopTree(
            setsid=False,
            spawn={"cgroup": {"parent": "/tmp", "required": False}},
        )
        self.assertIsNone(transport.cgroupPath)
        self.assertIsNotNone(transport.cgroupUnavailable)
        self.assertIn(aliveOrNone(pid), (None, "Z"))

    def test_stopGroupFallbackOtherSignal(self) -> None:
        """
        Without a cgroup, with a stop signal the child dies of but its
        group's other member ignores (C{SIGINT}): once the child is gone,
        what is left of its group is killed and waited for.
        """
        pid, transport = self.stopTree(
            setsid=False,
            spawn={"cgroup": {"parent": "/tmp", "required": False}},
            stopSignal="INT",
        )
        self.assertIsNone(transport.cgroupPath)
        self.assertIn(aliveOrNone(pid), (None, "Z"))

    def test_user(self) -> None:
        """
        A program with C{user = "nobody"} runs as nobody (its uid and its
        primary group's gid).
        """
        if os.geteuid() != 0:
            raise SkipTest("running as another user needs root")
        programs = {
            "sleeper": {
                "command": ["/bin/sleep", "60"],
                "user": "nobody",
                "ready": {"after": 0},
            }
        }
        ids: list[str] = []

        def scenario(service: SupervisorService) -> Deferred[None]:
            def look(_: object) -> None:
                [process] = service.instances("sleeper")
                with open(f"/proc/{process.pid}/status") as f:
                    ids.extend(
                        line.split()[1]
                        for line in f
                        if line.startswith(("Uid:", "Gid:"))
                    )

            return service.start("sleeper").addCallback(look)

        _, outcome = self.runService(programs, scenario)
        self.assertEqual(outcome, [None])
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(ids, [str(nobody.pw_uid), str(nobody.pw_gid)])

    def test_statusMetricsAndMarkers(self) -> None:
        """
        A running program's status has its CPU time and peak memory; its
        log has the spawn marker with its pid, and after the stop, the
        exit marker.
        """
        programs = {
            "busy": {
                "command": [
                    PY,
                    "-c",
                    "import sys, time\n"
                    "end = time.process_time() + 0.05\n"
                    "while time.process_time() < end: pass\n"
                    "print('working'); sys.stdout.flush()\n"
                    "time.sleep(60)\n",
                ],
                "ready": {"after": 0.5},
            }
        }
        rows: list[Any] = []

        def scenario(service: SupervisorService) -> Deferred[None]:
            return service.start("busy").addCallback(
                lambda _: rows.extend(service.status())
            )

        service, outcome = self.runService(programs, scenario)
        self.assertEqual(outcome, [None])
        [row] = rows
        self.assertEqual(row.state, S.RUNNING)
        self.assertGreaterEqual(row.cpu or 0, 0.05)
        self.assertGreater(row.memory or 0, 0)
        [after] = service.status()
        self.assertEqual(after.state, S.STOPPED)
        self.assertGreaterEqual(after.cpu or 0, 0.05)
        with open(os.path.join(self.base, "logs", "busy.out")) as f:
            lines = f.read().splitlines()
        self.assertEqual(
            lines,
            [
                f"--- txspawn: spawned pid {row.pid} ---",
                "working",
                lines[2],
            ],
        )
        self.assertRegex(lines[2], r"^--- txspawn: killed by SIGTERM after .* ---$")


globals().update(makeTestCaseClasses(ServiceRealMixin))


class GroupEndMixin(MixinBase):
    """
    When a program's stop waits for a process group.
    """

    def stopOnce(self, cgroup: Cgroup) -> tuple[list[int], Any]:
        """
        Start and stop a program whose child sleeps, in a new session,
        with C{cgroup}.

        @return: The process groups the stop asked to end, and the
            child's transport.
        """
        reactor = self.buildReactor()
        asked: list[int] = []

        def groupEnd(pgid: int) -> Deferred[None]:
            asked.append(pgid)
            return succeed(None)

        program = ProgramProcess(
            "sleeper",
            reactor,
            ProgramSpawn(
                ["/bin/sleep", "60"],
                options=SpawnOptions(newSession=True, cgroup=cgroup),
            ),
            readiness=ReadyAfter(reactor, 0),
            groupEnd=groupEnd,
        )
        transports: list[Any] = []

        def run() -> None:
            program.start()
            transports.append(program.transport)
            program.stop().addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        self.runReactor(reactor)
        return asked, transports[0]

    def test_cgroupNoGroupEnd(self) -> None:
        """
        A child with a cgroup is waited for through its cgroup: its
        process group is not looked at (even when the leaf was removed
        before the child's end was told).
        """
        asked, transport = self.stopOnce(Cgroup(required=False))
        if transport.cgroupUnavailable is not None:
            raise SkipTest(f"no cgroup here: {transport.cgroupUnavailable}")
        self.assertEqual(asked, [])

    def test_noCgroupGroupEnd(self) -> None:
        """
        Without a cgroup, the stop waits for the child's process group.
        """
        asked, transport = self.stopOnce(Cgroup(parent="/tmp", required=False))
        self.assertEqual(asked, [transport.processGroup])


globals().update(makeTestCaseClasses(GroupEndMixin))
