# -*- test-case-name: tests.test_engines -*-
"""
Differential tests of the two engines (PEP 399 style).

One mixin, L{EngineWorldMixin}, states every behaviour; L{PythonEngineTests}
and L{CEngineTests} bind it to the Python engine and the C engine.  Each
test spawns C{tests/helpers/report.py} (a child that describes its own
world as JSON) with the engine under test, checks the world against what
the plan asked for, and then spawns the same plan with the Python engine,
the oracle, and asserts that the two worlds are identical once the
per-process values (pids, the pty's number) are normalised.  Failures are
compared the same way: both engines must raise the same L{SpawnError}
flavour with the same C{stage}, C{errno}, C{filename} and C{detail}.

Scenarios that need another process state (a non-root parent, a full fd
table) run in a helper Python process.

PEP 399's rule, adapted: no behaviour exists only in the C engine.  C-only
mechanics (vfork vs fork-like mode, clone flags, fd slots) are tested in
C{tests/test_cspawn.py}.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.engineutil import (
    BASE_ENV,
    NOBODY,
    REPORT,
    makePlan,
    pythonForAnyUser,
    sigbits,
    waitExit,
)
from tests.hygiene import HygieneMixin, openFDs
from txspawn._engine.pyengine import PythonSpawner
from txspawn._plan.argumentchecks import CHILD_FD_MAX
from txspawn._plan.plan import PTYSpec, SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import ISpawner

try:
    from txspawn._engine.cengine import CSpawner
except ImportError as e:
    CSpawner = None  # type: ignore[assignment,misc]
    C_UNAVAILABLE: str | None = f"the C engine is not built: {e}"
else:
    C_UNAVAILABLE = None

#: When set to C{1} (CI sets it), a missing C engine fails the C tests
#: instead of skipping them.
REQUIRE_C = os.environ.get("TXSPAWN_REQUIRE_C") == "1"

HERE = os.path.dirname(os.path.abspath(__file__))
# The Python children run report.py with: one that nobody can run too.
PY = (pythonForAnyUser() or sys.executable).encode()
NOGROUP = 65534
TRUE_EXE = b"/bin/true"

__all__ = [
    "C_UNAVAILABLE",
    "PY",
    "REQUIRE_C",
    "makeSpawner",
]


def makeSpawner(engine: str, **kwargs: Any) -> ISpawner:
    """
    A fresh spawner of the named engine.

    @raise SkipTest: (through L{SynchronousTestCase.skipTest} at the call
        site) is not raised here; callers check L{C_UNAVAILABLE}.
    """
    if engine == "python":
        return PythonSpawner(**kwargs)
    assert CSpawner is not None, C_UNAVAILABLE
    spawner: ISpawner = CSpawner(**kwargs)
    return spawner


def _normalise(report: dict[str, Any], ttyName: str | None) -> dict[str, Any]:
    """
    Replace what differs between two otherwise identical children: the
    child's own pid (as pid, sid, pgid, tpgid) and, for a pty, the slave's
    identity (each run opens its own pty).
    """
    pid = report["pid"]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and value == pid:
            return "<pid>"
        return value

    result: dict[str, Any] = dict(walk(report))
    if ttyName is not None:
        for info in result["fds"].values():
            if info["target"] == ttyName:
                info.update(target="<tty>", ino="<tty>", rdev="<tty>")
        result["stat"]["tty_nr"] = "<tty>"
    return result


class EngineWorldMixin(HygieneMixin):
    """
    Every engine behaviour, checked on the engine under test and compared
    with the Python engine.
    """

    engine: ClassVar[str]

    def setUp(self: Any) -> None:
        self.setUpHygiene()
        self.spawner = makeSpawner(self.engine)
        self.oracle = makeSpawner("python")

    # -- running children --------------------------------------------------

    def _spawnReport(
        self: Any,
        spawner: ISpawner,
        planArgs: Mapping[str, Any],
        fdMap: Mapping[int, int] | None,
        ttyName: bytes | None,
    ) -> dict[str, Any]:
        out = os.path.join(self.tmp, "report.json")
        plan = makePlan(PY, argv=(PY, REPORT, b"--out", out.encode()), **planArgs)
        if fdMap is None:
            null = self.devnull()
            fdMap = {0: null, 1: null, 2: null}
        child = spawner.spawn(plan, fdMap, ttyName)
        try:
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()
        with open(out) as f:
            result: dict[str, Any] = json.load(f)
        os.unlink(out)
        return result

    def world(
        self: Any,
        fdMap: Mapping[int, int] | None = None,
        ttyName: bytes | None = None,
        freshFdMap: Callable[[], tuple[Mapping[int, int], bytes | None]] | None = None,
        **planArgs: Any,
    ) -> dict[str, Any]:
        """
        The world of a C{report.py} child spawned by the engine under test,
        after checking that the Python engine gives the identical world.

        @param freshFdMap: For ptys: makes a new C{(fdMap, ttyName)} per
            child.
        """
        if freshFdMap is not None:
            fdMap, ttyName = freshFdMap()
        report: dict[str, Any] = self._spawnReport(
            self.spawner, planArgs, fdMap, ttyName
        )
        if freshFdMap is not None:
            fdMap, oracleTty = freshFdMap()
        else:
            oracleTty = ttyName
        oracle = self._spawnReport(self.oracle, planArgs, fdMap, oracleTty)
        self.assertEqual(
            _normalise(report, None if ttyName is None else os.fsdecode(ttyName)),
            _normalise(oracle, None if oracleTty is None else os.fsdecode(oracleTty)),
            f"the {self.engine} engine's world differs from the Python engine's",
        )
        return report

    def failure(
        self: Any,
        plan: SpawnPlan,
        fdMap: Mapping[int, int] | None = None,
        oracle: ISpawner | None = None,
        tested: ISpawner | None = None,
    ) -> SpawnError:
        """
        The L{SpawnError} the engine under test raises for C{plan}, after
        checking that nothing leaked and that the Python engine (or
        C{oracle}) raises the identical error.
        """
        if fdMap is None:
            null = self.devnull()
            fdMap = {0: null, 1: null, 2: null}
        errors: list[SpawnError] = []
        for spawner in (tested or self.spawner, oracle or self.oracle):
            before = openFDs()
            e = self.assertRaises(SpawnError, spawner.spawn, plan, fdMap, None)
            self.assertEqual(openFDs(), before, "fd leaked on failure")
            self.assertNoNewChildren("failed child left")
            errors.append(e)
        got, expected = errors

        def key(e: SpawnError) -> tuple[object, ...]:
            return (type(e), e.stage, e.errno, e.filename, e.detail)

        self.assertEqual(key(got), key(expected))
        return got

    # -- the contract ------------------------------------------------------

    def test_interface(self: Any) -> None:
        """
        The engine provides L{ISpawner} under its name.
        """
        self.assertTrue(verifyObject(ISpawner, self.spawner))
        self.assertEqual(self.spawner.name, self.engine)

    def test_fdsAndFlags(self: Any) -> None:
        """
        The child has exactly the fds of C{fdMap}, none close-on-exec, each
        the same open file (and access mode) as the parent fd it maps;
        inheritable parent fds that are not mapped are not there.
        """
        r, w = self.pipe()
        null = self.devnull()
        regular = self.tmpFile("f")
        strayR, strayW = self.pipe()
        os.set_inheritable(strayR, True)
        os.set_inheritable(strayW, True)
        fdMap = {0: r, 1: w, 2: null, 5: regular, 9: r}
        report = self.world(fdMap)
        self.assertEqual(sorted(map(int, report["fds"])), [0, 1, 2, 5, 9])
        for childFd, parentFd in fdMap.items():
            info = report["fds"][str(childFd)]
            st = os.fstat(parentFd)
            self.assertFalse(info["cloexec"], childFd)
            self.assertEqual((info["dev"], info["ino"]), (st.st_dev, st.st_ino))
        self.assertEqual(report["fds"]["1"]["accmode"], os.O_WRONLY)
        self.assertEqual(report["fds"]["5"]["accmode"], os.O_RDWR)

    def test_cycleAndIdentity(self: Any) -> None:
        """
        A cycle (child C{a} gets the parent's C{b} and vice versa) and an
        identity mapping of a close-on-exec fd are both honoured.
        """
        a, b, c = self.tmpFile("a"), self.tmpFile("b"), self.tmpFile("c")
        null = self.devnull()
        report = self.world({0: null, 1: null, 2: null, a: b, b: a, c: c})
        self.assertEqual(report["fds"][str(a)]["ino"], os.fstat(b).st_ino)
        self.assertEqual(report["fds"][str(b)]["ino"], os.fstat(a).st_ino)
        self.assertEqual(report["fds"][str(c)]["ino"], os.fstat(c).st_ino)
        self.assertFalse(report["fds"][str(c)]["cloexec"])

    def test_swappedStdio(self: Any) -> None:
        """
        Swapping the parent's own 0/1/2 around (child 0 = parent 2, and so
        on) works; the parent's fds are untouched.
        """
        report = self.world({0: 2, 1: 0, 2: 1})
        for child, parent in ((0, 2), (1, 0), (2, 1)):
            self.assertEqual(report["fds"][str(child)]["ino"], os.fstat(parent).st_ino)

    def test_noFds(self: Any) -> None:
        """
        An empty C{fdMap} gives a child without any fd.
        """
        self.assertEqual(self.world({})["fds"], {})

    def test_env(self: Any) -> None:
        """
        The child's environment is exactly the plan's C{envp}.
        """
        env = (*BASE_ENV, b"A=1", b"EMPTY=", b"WITH=EQUALS=SIGN", b"\xff=\xfe")
        report = self.world(envp=env)
        self.assertEqual(
            report["env"],
            {
                "PYTHONCOERCECLOCALE": "0",
                "TXSPAWN_TEST": "1",
                "A": "1",
                "EMPTY": "",
                "WITH": "EQUALS=SIGN",
                os.fsdecode(b"\xff"): os.fsdecode(b"\xfe"),
            },
        )

    def test_cwd(self: Any) -> None:
        """
        C{cwd} is the child's working directory.
        """
        self.assertEqual(self.world(cwd=self.tmp.encode())["cwd"], self.tmp)

    def test_credentials(self: Any) -> None:
        """
        C{uid}, C{gid} and C{groups} set the real, effective and saved ids
        and the supplementary groups.
        """
        if os.getuid() != 0:
            raise self.skipTest("needs root to change credentials")
        report = self.world(uid=NOBODY, gid=NOGROUP, groups=(NOGROUP, 100))
        self.assertEqual(report["uid"], [NOBODY] * 3)
        self.assertEqual(report["gid"], [NOGROUP] * 3)
        self.assertEqual(report["groups"], [100, NOGROUP])

    def test_uidDropsGroups(self: Any) -> None:
        """
        A C{uid} without C{groups} drops the parent's supplementary groups.
        """
        if os.getuid() != 0:
            raise self.skipTest("needs root to change credentials")
        report = self.world(uid=NOBODY)
        self.assertEqual(report["uid"], [NOBODY] * 3)
        self.assertEqual(report["groups"], [])

    def test_gidKeepsGroups(self: Any) -> None:
        """
        A C{gid} alone changes the group ids and keeps the supplementary
        groups.
        """
        if os.getuid() != 0:
            raise self.skipTest("needs root to change credentials")
        report = self.world(gid=NOGROUP)
        self.assertEqual(report["gid"], [NOGROUP] * 3)
        self.assertEqual(report["groups"], sorted(os.getgroups()))

    def test_umask(self: Any) -> None:
        """
        C{umask} is the child's umask.
        """
        self.assertEqual(self.world(umask=0o027)["umask"], 0o027)

    def test_rlimits(self: Any) -> None:
        """
        Every C{(resource, soft, hard)} of C{rlimits} is applied.
        """
        report = self.world(
            rlimits=(
                (resource.RLIMIT_NOFILE, 256, 512),
                (resource.RLIMIT_CORE, 0, 0),
            )
        )
        self.assertEqual(report["rlimits"]["RLIMIT_NOFILE"], [256, 512])
        self.assertEqual(report["rlimits"]["RLIMIT_CORE"], [0, 0])

    def test_signals(self: Any) -> None:
        """
        Signals ignored or handled in the parent are C{SIG_DFL} in the child
        (report.py's interpreter itself ignores SIGPIPE and SIGXFSZ), and
        the child's mask is exactly C{signalMask}, whatever the parent's.
        """
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGRTMIN + 2):
            old = signal.signal(signum, signal.SIG_IGN)
            self.addCleanup(signal.signal, signum, old)
        old = signal.signal(signal.SIGUSR1, lambda *a: None)
        self.addCleanup(signal.signal, signal.SIGUSR1, old)
        oldMask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        self.addCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, oldMask)
        report = self.world(signalMask=(signal.SIGUSR2, signal.SIGHUP))
        self.assertEqual(report["SigIgn"], sigbits(signal.SIGPIPE, signal.SIGXFSZ))
        self.assertEqual(report["SigBlk"], sigbits(signal.SIGUSR2, signal.SIGHUP))

    def test_defaultSession(self: Any) -> None:
        """
        By default the child stays in the parent's session and group.
        """
        report = self.world()
        self.assertEqual(report["sid"], os.getsid(0))
        self.assertEqual(report["pgid"], os.getpgid(0))

    def test_newSession(self: Any) -> None:
        """
        C{newSession} makes the child a session and group leader without a
        controlling terminal.
        """
        report = self.world(newSession=True)
        self.assertEqual((report["sid"], report["pgid"]), (report["pid"],) * 2)
        self.assertEqual(report["stat"]["tty_nr"], 0)

    def test_processGroup(self: Any) -> None:
        """
        C{processGroup=0} makes the child lead a new group in the parent's
        session.
        """
        report = self.world(processGroup=0)
        self.assertEqual(report["pgid"], report["pid"])
        self.assertEqual(report["sid"], os.getsid(0))

    def test_pty(self: Any) -> None:
        """
        A pty plan gets a new session whose controlling terminal is the
        slave, on fds 0, 1 and 2, and leads the terminal's foreground
        group.
        """
        slaves: list[int] = []

        def fresh() -> tuple[Mapping[int, int], bytes | None]:
            master, slave = os.openpty()
            self.addCleanup(os.close, master)
            self.addCleanup(os.close, slave)
            os.set_inheritable(slave, False)
            slaves.append(slave)
            return {0: slave, 1: slave, 2: slave}, os.ttyname(slave).encode()

        report = self.world(freshFdMap=fresh, pty=PTYSpec())
        st = os.fstat(slaves[0])
        self.assertEqual(report["stat"]["tty_nr"], st.st_rdev)
        self.assertEqual(report["stat"]["tpgid"], report["pid"])
        self.assertEqual(report["sid"], report["pid"])
        self.assertEqual(sorted(report["fds"]), ["0", "1", "2"])
        self.assertEqual(report["fds"]["0"]["rdev"], st.st_rdev)

    def test_deathSignal(self: Any) -> None:
        """
        C{deathSignal} is the child's parent-death signal, also when the
        uid changes (which would clear it if set before).
        """
        self.assertEqual(self.world(deathSignal=signal.SIGTERM)["pdeathsig"], 15)
        if os.getuid() == 0:
            report = self.world(deathSignal=signal.SIGHUP, uid=NOBODY)
            self.assertEqual(report["pdeathsig"], signal.SIGHUP)

    # -- failures ------------------------------------------------------------

    def test_missingExecutable(self: Any) -> None:
        """
        A missing executable: L{FileNotFoundError} flavour, stage C{EXEC},
        C{ENOENT}, naming the executable.
        """
        e = self.failure(makePlan(b"/nonexistent/prog"))
        self.assertIsInstance(e, FileNotFoundError)
        self.assertEqual(
            (e.stage, e.errno, e.filename),
            (ChildSetupStage.EXEC, errno.ENOENT, "/nonexistent/prog"),
        )

    def test_notExecutable(self: Any) -> None:
        """
        A file without execute permission: L{PermissionError}, C{EXEC},
        C{EACCES}.
        """
        path = os.path.join(self.tmp, "plain")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o644)
        e = self.failure(makePlan(path.encode()))
        self.assertIsInstance(e, PermissionError)
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.EXEC, errno.EACCES))

    def test_directoryAsExecutable(self: Any) -> None:
        """
        A directory as executable: C{EXEC}, C{EACCES}.
        """
        e = self.failure(makePlan(self.tmp.encode()))
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.EXEC, errno.EACCES))

    def test_candidates(self: Any) -> None:
        """
        Missing candidates are skipped; a non-executable one is reported as
        C{EACCES} when nothing later runs; a later good one runs.
        """
        path = os.path.join(self.tmp, "plain")
        with open(path, "w") as f:
            f.write("")
        e = self.failure(
            makePlan(b"prog", candidates=(b"/nonexistent/a", path.encode(), b"/no/b"))
        )
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.EXEC, errno.EACCES))
        report = self.world()
        self.assertEqual(report["argv"][0], os.fsdecode(REPORT))

    def test_closedSourceFd(self: Any) -> None:
        """
        A source fd that is not open: stage C{FDS}, C{EBADF}.
        """
        self.assertRaises(OSError, os.fstat, 900)
        null = self.devnull()
        e = self.failure(makePlan(TRUE_EXE), {0: 900, 1: null, 2: null})
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.FDS, errno.EBADF))

    def test_childFDAboveLimit(self: Any) -> None:
        """
        A child fd at or above the child's C{RLIMIT_NOFILE}, up to the
        highest fd the plan takes (L{CHILD_FD_MAX}, the highest any process
        can have): stage C{FDS}, C{EBADF}, on both engines.  (With this
        many fds to close below it, the Python engine forks; the plan it
        gives C{posix_spawn} is L{test_childFDAboveSmallLimit}'s.)
        """
        null = self.devnull()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        for childFD in (soft, CHILD_FD_MAX):
            fdMap = {0: null, 1: null, 2: null, childFD: null}
            e = self.failure(makePlan(TRUE_EXE), fdMap)
            self.assertEqual((e.stage, e.errno), (ChildSetupStage.FDS, errno.EBADF))

    def test_childFDAboveSmallLimit(self: Any) -> None:
        """
        Under a small C{RLIMIT_NOFILE}, a child fd just above it (a plan
        the Python engine gives C{posix_spawn}): stage C{FDS}, C{EBADF}, on
        both engines; nothing leaks.
        """
        self.assertScenario("fdlimit", "FDS", errno.EBADF)

    def test_missingCwd(self: Any) -> None:
        """
        A missing C{cwd}: stage C{CHDIR}, C{ENOENT}, naming the directory.
        """
        e = self.failure(makePlan(PY, cwd=b"/nonexistent/dir"))
        self.assertEqual(
            (e.stage, e.errno, e.filename),
            (ChildSetupStage.CHDIR, errno.ENOENT, "/nonexistent/dir"),
        )

    def test_badRlimit(self: Any) -> None:
        """
        A soft limit above the hard one: stage C{RLIMIT}, C{EINVAL}, with
        the resource as C{detail}.
        """
        e = self.failure(makePlan(PY, rlimits=((resource.RLIMIT_NOFILE, 100, 50),)))
        self.assertEqual(
            (e.stage, e.errno, e.detail),
            (ChildSetupStage.RLIMIT, errno.EINVAL, resource.RLIMIT_NOFILE),
        )

    def test_rlimitAboveNrOpen(self: Any) -> None:
        """
        A C{NOFILE} hard limit above C{fs.nr_open}: stage C{RLIMIT},
        C{EPERM} (what the kernel returns, for root as for anyone), with
        the resource as C{detail}.
        """
        with open("/proc/sys/fs/nr_open") as f:
            above = int(f.read()) + 1
        e = self.failure(
            makePlan(PY, rlimits=((resource.RLIMIT_NOFILE, above, above),))
        )
        self.assertEqual(
            (e.stage, e.errno, e.detail),
            (ChildSetupStage.RLIMIT, errno.EPERM, resource.RLIMIT_NOFILE),
        )

    def test_badProcessGroup(self: Any) -> None:
        """
        Joining a process group that does not exist: stage C{SETPGID},
        C{EPERM}.
        """
        e = self.failure(makePlan(PY, processGroup=0x3FFFFFF0))
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.SETPGID, errno.EPERM))

    def test_setuidEPERM(self: Any) -> None:
        """
        From a non-root parent (C{setpriv} to nobody), asking for uid 0
        raises stage C{SETUID}, C{EPERM}, on both engines; nothing leaks.
        """
        self.assertScenario("setuid", "SETUID", errno.EPERM, setpriv=True)

    def test_emfile(self: Any) -> None:
        """
        With the fd table full, stage C{SPAWN}, C{EMFILE}; nothing leaks.
        """
        self.assertScenario("emfile", "SPAWN", errno.EMFILE)

    def test_eagain(self: Any) -> None:
        """
        With no process left under C{RLIMIT_NPROC} (as nobody: the limit
        does not bind root), creating the child fails: stage C{SPAWN},
        C{EAGAIN}, no filename, on both engines (C{posix_spawn} reports it
        like an exec error, but C{execve} cannot fail with C{EAGAIN}
        there); nothing leaks.
        """
        self.assertScenario("eagain", "SPAWN", errno.EAGAIN)

    def test_enomem(self: Any) -> None:
        """
        In a pid namespace whose init has exited, C{clone} fails with
        C{ENOMEM}: stage C{SPAWN}, no filename, on both engines (the Python
        engine replays a C{posix_spawn} C{ENOMEM}, which may come from
        C{execve} too, through C{fork}); nothing leaks.
        """
        self.assertScenario("enomem", "SPAWN", errno.ENOMEM)

    def assertScenario(
        self: Any, scenario: str, stage: str, code: int, setpriv: bool = False
    ) -> None:
        prefix: tuple[str, ...] = ()
        if setpriv:
            tool = shutil.which("setpriv")
            if tool is None or os.getuid() != 0:
                raise self.skipTest("needs root and setpriv(1) to drop privileges")
            prefix = (tool, f"--reuid={NOBODY}", f"--regid={NOGROUP}", "--clear-groups")
        results = [
            _runHelper(scenario, engine, prefix, anyUser=setpriv)
            for engine in (self.engine, "python")
        ]
        if "skip" in results[0]:
            raise self.skipTest(results[0]["skip"])
        for result in results:
            self.assertEqual((result["stage"], result["errno"]), (stage, code))
            self.assertTrue(result["fdsUnchanged"])
            self.assertEqual(result["children"], [])
        self.assertEqual(results[0], results[1])


_SCENARIO = r"""
import errno, json, os, resource, sys
sys.path.insert(0, os.getcwd())
from tests.engineutil import makePlan
from tests.hygiene import childrenOf, openFDs
from tests.test_engines import makeSpawner

scenario, engine = sys.argv[1], sys.argv[2]
spawner = makeSpawner(engine)
null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
fdMap = {0: null, 1: null, 2: null}
plan = makePlan(b"/bin/true", argv=(b"true",), envp=(),
                uid=0 if scenario == "setuid" else None)
held = []
before = openFDs()
if scenario == "eagain":
    # RLIMIT_NPROC does not bind uid 0: drop to nobody first (in this
    # process, after every import, so that nobody needs no access to this
    # interpreter, the checkout or the venv), then allow no process at all.
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
if scenario == "enomem":
    # The first child after unshare(CLONE_NEWPID) is the new pid
    # namespace's init; once it is gone, every clone into the namespace
    # fails with ENOMEM.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWPID, CLONE_NEWUSER = 0x20000000, 0x10000000
    if (libc.unshare(CLONE_NEWPID) != 0
            and libc.unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0):
        print(json.dumps({"skip": "unshare(CLONE_NEWPID): "
                          + os.strerror(ctypes.get_errno())}))
        sys.exit()
    os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)
if scenario == "fdlimit":
    # A child fd just above a small fd limit: few enough fds to close below
    # it that the Python engine uses posix_spawn.
    from txspawn._engine.posixspawnpath import forkReason
    limit = max(before) + 16
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    fdMap[limit] = null
    assert forkReason(plan, None, fdMap) is None
if scenario == "emfile":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(before) + 8, hard))
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as e:
        assert e.errno == errno.EMFILE
try:
    spawner.spawn(plan, fdMap, None)
except Exception as e:
    result = {"type": type(e).__name__, "stage": e.stage.name, "errno": e.errno,
              "filename": e.filename, "detail": e.detail}
else:
    result = {"type": None, "stage": None, "errno": None}
for fd in held:
    os.close(fd)
result["fdsUnchanged"] = openFDs() == before
result["children"] = sorted(childrenOf(os.getpid()))
print(json.dumps(result))
"""


def _runHelper(
    scenario: str, engine: str, prefix: tuple[str, ...], anyUser: bool = False
) -> dict[str, Any]:
    """
    Run L{_SCENARIO} in a fresh Python and return what it reports.

    @param anyUser: Run it with a Python that any uid can execute, with this
        environment's packages on C{PYTHONPATH}.
    """
    env = dict(os.environ)
    python = sys.executable
    if anyUser:
        python = PY.decode()
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(HERE), *(p for p in sys.path if "site-packages" in p)]
        )
    proc = subprocess.run(
        [*prefix, python, "-c", _SCENARIO, scenario, engine],
        env=env,
        capture_output=True,
        check=False,
        cwd=os.path.dirname(HERE),
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"helper failed: {proc.stderr.decode()}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


class PythonEngineTests(EngineWorldMixin, SynchronousTestCase):
    """
    The behaviour suite on the Python engine (compared with itself: this
    also checks that the worlds are deterministic once normalised).
    """

    engine = "python"


class CEngineTests(EngineWorldMixin, SynchronousTestCase):
    """
    The behaviour suite on the C engine, compared with the Python engine.
    """

    engine = "c"
    if C_UNAVAILABLE is not None and not REQUIRE_C:
        skip = C_UNAVAILABLE

    def setUp(self) -> None:
        if C_UNAVAILABLE is not None:
            self.fail(f"TXSPAWN_REQUIRE_C=1 but {C_UNAVAILABLE}")
        super().setUp()


class CEngineForkLikeTests(CEngineTests):
    """
    The behaviour suite on the C engine's fork-like mode (no C{CLONE_VM},
    as when the kernel or a sandbox refuses vfork) and without slot mode.
    """

    def setUp(self) -> None:
        super().setUp()
        self.spawner = makeSpawner("c", vfork=False, slots=False)
