# -*- test-case-name: tests.test_pyspawn -*-
"""
Tests for L{txspawn._engine.pyengine}: the pure-Python engine, on real children
(its C{posix_spawn} path in L{txspawn._engine.posixspawnpath}, its fork path
in L{txspawn._engine.forkpath} and L{txspawn._engine.forkchild}).

No reactor is involved: the tests call L{PythonSpawner.spawn} directly, wait
for the child by pid, and read what C{tests/helpers/report.py} (or C{cat
/proc/self/status}) says about the child's world.  Every test class checks in
its cleanup that the test process' fd set is unchanged and that it has no
child left (alive or zombie).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import warnings
from collections.abc import Mapping
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
from tests.libcspawn import spawnIgnoresInternalSignals
from txspawn._engine.libcposixspawn import LibcPosixSpawn
from txspawn._engine.osposixspawn import OsPosixSpawn
from txspawn._engine.parentsyscalls import ParentSyscalls
from txspawn._engine.posixspawnpath import MAX_CLOSE_ACTIONS, forkReason
from txspawn._engine.pyengine import PythonSpawner
from txspawn._engine.spawnactions import (
    Close,
    CloseFrom,
    Dup2,
    PosixSpawnBackend,
    PreparedSpawn,
    SpawnAction,
    SpawnAttributes,
)
from txspawn._kernel import features as _features
from txspawn._kernel.probes import probeFeatures
from txspawn._plan.failurerecord import ChildFailure
from txspawn._plan.plan import PTYSpec, SpawnPlan
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature
from txspawn.interfaces import ISpawner

PY = sys.executable.encode()
CAT = (shutil.which("cat") or "/bin/cat").encode()


def _waitAutoReaped(pid: int) -> int | None:
    """
    Wait until the kernel has reaped our child C{pid} itself (C{SIGCHLD}
    ignored): C{waitid} blocks until then and fails with C{ECHILD}.

    @return: The errno C{waitid} failed with (C{ECHILD}), or C{None} if it
        returned the child's status (C{SIGCHLD} was not ignored after all).
    """
    try:
        os.waitid(os.P_PID, pid, os.WEXITED)
    except ChildProcessError as e:
        return e.errno
    return None


def unusedPid() -> int:
    """
    A pid (hence pgid) that no process has right now: that of a child that
    was just reaped.
    """
    pid = os.posix_spawn("/bin/true", ["true"], {})
    os.waitpid(pid, 0)
    return pid


class EngineTestsMixin(HygieneMixin):
    """
    Behaviour every spawn path of the Python engine must have.  Subclasses
    bind C{method} and C{posixSpawn}.
    """

    method: ClassVar[str]
    #: Whether the child starts with glibc's internal signals 32 and 33
    #: ignored; L{None} where the tests cannot tell.
    internalSignalsIgnored: ClassVar[bool | None] = False

    def makeSpawner(self: Any, **kwargs: Any) -> PythonSpawner:
        backend = self.posixSpawnBackend()
        if backend is not None:
            kwargs.setdefault("posixSpawn", backend)
        return PythonSpawner(method=self.method, **kwargs)

    def posixSpawnBackend(self) -> PosixSpawnBackend | None:
        return None

    def setUp(self: Any) -> None:
        self.setUpHygiene()
        self.spawner = self.makeSpawner()

    def spawnChild(
        self: Any,
        plan: SpawnPlan,
        fdMap: Mapping[int, int] | None = None,
        ttyName: bytes | None = None,
        spawner: PythonSpawner | None = None,
    ) -> int:
        """
        Spawn C{plan}, wait for it, and return its exit code.
        """
        if fdMap is None:
            null = self.devnull()
            fdMap = {0: null, 1: null, 2: null}
        child = (spawner or self.spawner).spawn(plan, fdMap, ttyName)
        try:
            return waitExit(child.pid)
        finally:
            child.closePidfd()

    def report(
        self: Any,
        fdMap: Mapping[int, int] | None = None,
        ttyName: bytes | None = None,
        envp: tuple[bytes, ...] = BASE_ENV,
        spawner: PythonSpawner | None = None,
        **planArgs: Any,
    ) -> dict[str, Any]:
        """
        Run C{report.py} with the given plan options and return its report.
        """
        out = os.path.join(self.tmp, "report.json")
        if planArgs.get("uid") not in (None, os.getuid()):
            python = pythonForAnyUser()
            if python is None:
                raise self.skipTest("no Python interpreter that uid 65534 can run")
            py = python.encode()
        else:
            py = PY
        plan = makePlan(
            py, argv=(py, REPORT, b"--out", out.encode()), envp=envp, **planArgs
        )
        self.assertEqual(self.spawnChild(plan, fdMap, ttyName, spawner), 0)
        with open(out) as f:
            result: dict[str, Any] = json.load(f)
        os.unlink(out)
        return result

    def procStatus(
        self: Any, fdMap: Mapping[int, int] | None = None, **planArgs: Any
    ) -> dict[str, str]:
        """
        Run C{cat /proc/self/status} (a program that changes no signal
        disposition, unlike Python) and return the parsed fields.
        """
        out = os.path.join(self.tmp, "status")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.addCleanup(os.close, fd)
        null = self.devnull()
        plan = makePlan(CAT, argv=(b"cat", b"/proc/self/status"), **planArgs)
        self.assertEqual(self.spawnChild(plan, {0: null, 1: fd, 2: null}), 0)
        fields = {}
        with open(out) as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return fields

    def assertSpawnError(
        self: Any,
        plan: SpawnPlan,
        flavour: type[OSError],
        stage: ChildSetupStage,
        code: int,
        filename: str | None,
        fdMap: Mapping[int, int] | None = None,
    ) -> SpawnError:
        """
        Spawning C{plan} raises the given L{SpawnError}, and leaves nothing
        behind (checked by the cleanup).
        """
        if fdMap is None:
            null = self.devnull()
            fdMap = {0: null, 1: null, 2: null}
        before = openFDs()
        e: SpawnError = self.assertRaises(
            SpawnError, self.spawner.spawn, plan, fdMap, None
        )
        self.assertIsInstance(e, flavour)
        self.assertEqual((e.stage, e.errno, e.filename), (stage, code, filename))
        self.assertEqual(openFDs(), before)
        self.assertNoNewChildren()
        return e

    # -- the contract ------------------------------------------------------

    def test_interface(self: Any) -> None:
        """
        L{PythonSpawner} provides L{ISpawner} and is named C{"python"}.
        """
        self.assertTrue(verifyObject(ISpawner, self.spawner))
        self.assertEqual(self.spawner.name, "python")

    def test_exactFds(self: Any) -> None:
        """
        The child has exactly the fds of C{fdMap}, none close-on-exec, each
        the same open file as the parent fd it maps; inheritable and
        close-on-exec fds of the parent that are not mapped are not there.
        """
        r, w = self.pipe()
        null = self.devnull()
        regular = os.open(os.path.join(self.tmp, "f"), os.O_RDWR | os.O_CREAT)
        self.addCleanup(os.close, regular)
        strayR, strayW = self.pipe()
        os.set_inheritable(strayR, True)
        os.set_inheritable(strayW, True)
        fdMap = {0: r, 1: w, 2: null, 5: regular, 9: r}
        report = self.report(fdMap)
        self.assertEqual(sorted(map(int, report["fds"])), [0, 1, 2, 5, 9])
        for childFd, parentFd in fdMap.items():
            info = report["fds"][str(childFd)]
            st = os.fstat(parentFd)
            self.assertFalse(info["cloexec"], childFd)
            self.assertEqual((info["dev"], info["ino"]), (st.st_dev, st.st_ino))
            accmode = fcntl.fcntl(parentFd, fcntl.F_GETFL) & os.O_ACCMODE
            self.assertEqual(info["accmode"], accmode)
        self.assertEqual(report["fds"]["5"]["type"], "reg")
        self.assertEqual(report["fds"]["0"]["type"], "fifo")

    def test_identityMappingClearsCloexec(self: Any) -> None:
        """
        A parent fd mapped to the same number in the child (a
        close-on-exec fd, as Python opens them) arrives without
        C{FD_CLOEXEC}.
        """
        fd = os.open(os.path.join(self.tmp, "g"), os.O_RDWR | os.O_CREAT)
        self.addCleanup(os.close, fd)
        self.assertFalse(os.get_inheritable(fd))
        null = self.devnull()
        report = self.report({0: null, 1: null, 2: null, fd: fd})
        self.assertEqual(sorted(map(int, report["fds"])), sorted({0, 1, 2, fd}))
        self.assertFalse(report["fds"][str(fd)]["cloexec"])
        self.assertEqual(report["fds"][str(fd)]["ino"], os.fstat(fd).st_ino)

    def test_cycle(self: Any) -> None:
        """
        A cycle in C{fdMap} (child 3 gets the parent's 4 and child 4 the
        parent's 3) is resolved: each child fd gets the right file.
        """
        a = os.open(os.path.join(self.tmp, "a"), os.O_RDWR | os.O_CREAT)
        self.addCleanup(os.close, a)
        b = os.open(os.path.join(self.tmp, "b"), os.O_RDWR | os.O_CREAT)
        self.addCleanup(os.close, b)
        null = self.devnull()
        report = self.report({0: null, 1: null, 2: null, a: b, b: a})
        self.assertEqual(report["fds"][str(a)]["ino"], os.fstat(b).st_ino)
        self.assertEqual(report["fds"][str(b)]["ino"], os.fstat(a).st_ino)

    def test_noStdio(self: Any) -> None:
        """
        An empty C{fdMap} gives the child no fd at all.
        """
        report = self.report({})
        self.assertEqual(report["fds"], {})

    def test_environmentExact(self: Any) -> None:
        """
        The child's environment is exactly the plan's C{envp}, nothing
        inherited from the parent.
        """
        os.environ["TXSPAWN_PARENT_ONLY"] = "1"
        self.addCleanup(os.environ.pop, "TXSPAWN_PARENT_ONLY")
        envp = (*BASE_ENV, b"EMPTY=", b"WITH_EQUALS=a=b", b"BYTES=\xff")
        report = self.report(envp=envp)
        self.assertEqual(
            report["env"],
            {
                "PYTHONCOERCECLOCALE": "0",
                "TXSPAWN_TEST": "1",
                "EMPTY": "",
                "WITH_EQUALS": "a=b",
                "BYTES": os.fsdecode(b"\xff"),
            },
        )

    def test_argv(self: Any) -> None:
        """
        C{argv} is passed exactly, C{argv[0]} independent of the executable.
        """
        out = os.path.join(self.tmp, "argv")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.addCleanup(os.close, fd)
        script = b"cat /proc/$$/cmdline"
        argv = (b"custom-zero", b"-c", script, b"x", b"a b", b"")
        plan = makePlan(b"/bin/sh", argv=argv)
        self.assertEqual(self.spawnChild(plan, {1: fd}), 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"\0".join(argv) + b"\0")

    def test_ignoredSignalsReset(self: Any) -> None:
        """
        Every signal ignored in the parent (SIGPIPE and SIGXFSZ by Python
        itself, plus SIGHUP, SIGUSR1, SIGINT and a real-time signal here) has
        its default disposition in the child, nothing is blocked, and no
        handler is installed.
        """
        if self.internalSignalsIgnored is None:
            raise self.skipTest("what this libc does with signals 32 and 33 is unknown")
        for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGINT):
            self.ignoreSignal(signum)
        self.ignoreSignal(signal.SIGRTMIN + 2)
        self.assertEqual(signal.getsignal(signal.SIGPIPE), signal.SIG_IGN)
        status = self.procStatus()
        expected = sigbits(32, 33) if self.internalSignalsIgnored else 0
        self.assertEqual(int(status["SigIgn"], 16), expected)
        self.assertEqual(int(status["SigBlk"], 16), 0)
        self.assertEqual(int(status["SigCgt"], 16), 0)

    def test_signalMask(self: Any) -> None:
        """
        The child's signal mask is the plan's C{signalMask}, whatever the
        parent's mask is.
        """
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        self.addCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, old)
        status = self.procStatus(signalMask=(signal.SIGUSR2, signal.SIGTERM))
        self.assertEqual(
            int(status["SigBlk"], 16), sigbits(signal.SIGUSR2, signal.SIGTERM)
        )

    def test_defaultSessionAndGroup(self: Any) -> None:
        """
        By default the child stays in the parent's session and process group
        and has no controlling terminal of its own.
        """
        report = self.report()
        self.assertEqual(report["sid"], os.getsid(0))
        self.assertEqual(report["pgid"], os.getpgid(0))
        self.assertEqual(report["ppid"], os.getpid())

    def test_newSession(self: Any) -> None:
        """
        C{newSession} makes the child a session and process group leader
        without a controlling terminal.
        """
        report = self.report(newSession=True)
        self.assertEqual(report["sid"], report["pid"])
        self.assertEqual(report["pgid"], report["pid"])
        self.assertEqual(report["stat"]["tty_nr"], 0)

    def test_newProcessGroup(self: Any) -> None:
        """
        C{processGroup=0} makes the child lead a new process group in the
        parent's session.
        """
        report = self.report(processGroup=0)
        self.assertEqual(report["pgid"], report["pid"])
        self.assertEqual(report["sid"], os.getsid(0))

    def test_pty(self: Any) -> None:
        """
        A PTY plan gives the child the slave on fds 0, 1 and 2, nothing
        else, a new session, and the slave as its controlling terminal.
        """
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        ttyName = os.ttyname(slave).encode()
        report = self.report(
            {0: slave, 1: slave, 2: slave}, ttyName=ttyName, pty=PTYSpec()
        )
        rdev = os.fstat(slave).st_rdev
        self.assertEqual(sorted(map(int, report["fds"])), [0, 1, 2])
        for fd in "012":
            self.assertEqual(report["fds"][fd]["rdev"], rdev)
            self.assertFalse(report["fds"][fd]["cloexec"])
        self.assertEqual(report["sid"], report["pid"])
        self.assertEqual(report["stat"]["tty_nr"], rdev)
        self.assertEqual(report["stat"]["tpgid"], report["pid"])

    def test_pidfd(self: Any) -> None:
        """
        The returned child carries a pidfd that refers to it.
        """
        null = self.devnull()
        child = self.spawner.spawn(
            makePlan(b"/bin/true", argv=(b"true",)), {0: null, 1: null, 2: null}, None
        )
        self.addCleanup(child.closePidfd)
        self.assertIsNotNone(child.pidfd)
        assert child.pidfd is not None
        info = os.waitid(os.P_PIDFD, child.pidfd, os.WEXITED)
        assert info is not None
        self.assertEqual((info.si_pid, info.si_status), (child.pid, 0))

    def test_noPidfdWithoutSupport(self: Any) -> None:
        """
        When the features say C{pidfd_open} is unsupported, the child has no
        pidfd.
        """
        features = probeFeatures().override(_features.PIDFD_OPEN, False, "test")
        spawner = self.makeSpawner(features=features)
        null = self.devnull()
        child = spawner.spawn(
            makePlan(b"/bin/true", argv=(b"true",)), {0: null, 1: null, 2: null}, None
        )
        self.assertIsNone(child.pidfd)
        self.assertEqual(waitExit(child.pid), 0)

    def test_pidfdOpenFails(self: Any) -> None:
        """
        If the pidfd cannot be opened (C{EMFILE}), L{SpawnError} with stage
        C{SPAWN} is raised and the child is killed and reaped.
        """
        pids = []

        class Failing(ParentSyscalls):
            def pidfdOpen(self, pid: int, into: list[int]) -> int:
                pids.append(pid)
                raise OSError(errno.EMFILE, "injected")

        spawner = self.makeSpawner(syscalls=Failing())
        null = self.devnull()
        plan = makePlan(b"/bin/sleep", argv=(b"sleep", b"100"))
        e = self.assertRaises(
            SpawnError, spawner.spawn, plan, {0: null, 1: null, 2: null}, None
        )
        self.assertEqual((e.stage, e.errno), (ChildSetupStage.SPAWN, errno.EMFILE))
        self.assertEqual(len(pids), 1)
        self.assertRaises(ChildProcessError, os.waitpid, pids[0], 0)

    def test_pidfdOpenENOSYS(self: Any) -> None:
        """
        C{ENOSYS} from C{pidfd_open} means no pidfd, not a failure.
        """

        class NoPidfd(ParentSyscalls):
            def pidfdOpen(self, pid: int, into: list[int]) -> int:
                raise OSError(errno.ENOSYS, "injected")

        spawner = self.makeSpawner(syscalls=NoPidfd())
        null = self.devnull()
        child = spawner.spawn(
            makePlan(b"/bin/true", argv=(b"true",)), {0: null, 1: null, 2: null}, None
        )
        self.assertIsNone(child.pidfd)
        self.assertEqual(waitExit(child.pid), 0)

    def test_pidfdOpenAfterAutoReap(self: Any) -> None:
        """
        With C{SIGCHLD} ignored, a child the kernel reaped before its pidfd
        could be opened (C{ESRCH}) is returned already reaped, with its
        status unknown and no pidfd, and nothing is left behind.
        """
        self.ignoreSignal(signal.SIGCHLD)
        errors = []

        class Late(ParentSyscalls):
            def pidfdOpen(self, pid: int, into: list[int]) -> int:
                # With SIGCHLD ignored, waitid blocks until the kernel
                # reaped the child, then fails with ECHILD.
                errors.append(_waitAutoReaped(pid))
                return super().pidfdOpen(pid, into)

        spawner = self.makeSpawner(syscalls=Late())
        null = self.devnull()
        child = spawner.spawn(
            makePlan(b"/bin/true", argv=(b"true",)), {0: null, 1: null, 2: null}, None
        )
        self.assertEqual(errors, [errno.ECHILD])
        self.assertEqual(
            (child.reaped, child.status, child.rusage, child.pidfd),
            (True, None, None, None),
        )

    def test_pidfdOfAnotherProcess(self: Any) -> None:
        """
        A pidfd that does not refer to a child of ours (the kernel reaped
        the child and gave its pid to another process before C{pidfd_open}
        ran) is closed, and the child is returned reaped with its status
        unknown.
        """
        self.ignoreSignal(signal.SIGCHLD)

        class Reused(ParentSyscalls):
            def pidfdOpen(self, pid: int, into: list[int]) -> int:
                _waitAutoReaped(pid)
                # A process that is not our child: this one.
                return super().pidfdOpen(os.getpid(), into)

        spawner = self.makeSpawner(syscalls=Reused())
        null = self.devnull()
        before = openFDs()
        child = spawner.spawn(
            makePlan(b"/bin/true", argv=(b"true",)), {0: null, 1: null, 2: null}, None
        )
        self.assertEqual(openFDs(), before)
        self.assertEqual((child.reaped, child.status, child.pidfd), (True, None, None))

    # -- exec failures -----------------------------------------------------

    def test_missingExecutable(self: Any) -> None:
        """
        A missing executable raises a L{FileNotFoundError} flavour of
        L{SpawnError}, stage C{EXEC}, naming the executable.
        """
        missing = os.path.join(self.tmp, "missing")
        self.assertSpawnError(
            makePlan(missing.encode()),
            FileNotFoundError,
            ChildSetupStage.EXEC,
            errno.ENOENT,
            missing,
        )

    def test_notExecutable(self: Any) -> None:
        """
        A file without execute permission raises a L{PermissionError}
        flavour, C{EACCES}, stage C{EXEC}.
        """
        path = os.path.join(self.tmp, "noexec")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o644)
        self.assertSpawnError(
            makePlan(path.encode()),
            PermissionError,
            ChildSetupStage.EXEC,
            errno.EACCES,
            path,
        )

    def test_directoryAsExecutable(self: Any) -> None:
        """
        A directory as executable raises C{EACCES}, stage C{EXEC}.
        """
        self.assertSpawnError(
            makePlan(self.tmp.encode()),
            PermissionError,
            ChildSetupStage.EXEC,
            errno.EACCES,
            self.tmp,
        )

    def test_candidatesSkipMissing(self: Any) -> None:
        """
        Candidates are tried in order: missing ones (C{ENOENT}, C{ENOTDIR})
        are skipped and a non-executable one only remembered, so a later
        good candidate runs.
        """
        noexec = os.path.join(self.tmp, "noexec")
        with open(noexec, "w") as f:
            f.write("")
        plan = makePlan(
            b"true",
            argv=(b"true",),
            candidates=(
                os.path.join(self.tmp, "missing").encode(),
                os.path.join(noexec, "sub").encode(),
                noexec.encode(),
                b"/bin/true",
            ),
        )
        self.assertEqual(self.spawnChild(plan), 0)

    def test_candidatesEaccesWins(self: Any) -> None:
        """
        If no candidate can be run, C{EACCES} seen on any of them wins over
        a later C{ENOENT}, as with C{execvp}.
        """
        noexec = os.path.join(self.tmp, "noexec")
        with open(noexec, "w") as f:
            f.write("")
        plan = makePlan(
            b"prog",
            candidates=(noexec.encode(), os.path.join(self.tmp, "nope").encode()),
        )
        self.assertSpawnError(
            plan, PermissionError, ChildSetupStage.EXEC, errno.EACCES, "prog"
        )

    def test_candidatesStopAtOtherErrors(self: Any) -> None:
        """
        An error other than C{ENOENT}/C{ENOTDIR}/C{EACCES} (here C{ENOEXEC}:
        an executable file in no known format) stops the search.
        """
        garbage = os.path.join(self.tmp, "garbage")
        with open(garbage, "wb") as f:
            f.write(b"\x00\x01\x02\x03 not a program")
        os.chmod(garbage, 0o755)
        plan = makePlan(b"prog", candidates=(garbage.encode(), b"/bin/true"))
        self.assertSpawnError(
            plan, SpawnError, ChildSetupStage.EXEC, errno.ENOEXEC, "prog"
        )

    def test_noCandidates(self: Any) -> None:
        """
        A plan without candidates fails with C{ENOENT}.
        """
        self.assertSpawnError(
            makePlan(b"nowhere", candidates=()),
            FileNotFoundError,
            ChildSetupStage.EXEC,
            errno.ENOENT,
            "nowhere",
        )


class PosixSpawnPathTests(EngineTestsMixin, SynchronousTestCase):
    """
    The C{posix_spawn} path through the glibc C{ctypes} binding.
    """

    method = "posix_spawn"

    def test_backendIsLibc(self) -> None:
        """
        On this glibc, the binding (not the C{os.posix_spawn} slow path) is
        used by default.
        """
        self.assertIsNone(self.spawner.posixSpawnFallbackReason)
        self.assertEqual(self.spawner._posixSpawn.name, "libc")

    def test_unsupportedOptions(self) -> None:
        """
        Forcing the C{posix_spawn} path with an option it cannot express
        raises L{UnsupportedFeature} naming the option, and starts nothing.
        """
        cases: list[tuple[str, Any, str]] = [
            ("cwd", b"/", "path"),
            ("uid", 0, "uid"),
            ("gid", 0, "gid"),
            ("groups", (0,), "groups"),
            ("umask", 0o22, "umask"),
            ("rlimits", ((0, 1, 1),), "rlimits"),
            ("deathSignal", 9, "deathSignal"),
            ("pty", PTYSpec(), "usePTY"),
        ]
        for option, value, name in cases:
            e = self.assertRaises(
                UnsupportedFeature,
                self.spawner.spawn,
                makePlan(**{option: value}),
                {},
                None,
            )
            self.assertEqual(e.feature, name)
            self.assertIn(name, str(e))

    def test_prepareFails(self) -> None:
        """
        A file action the backend rejects (a child fd above the fd limit)
        raises L{SpawnError} with stage C{FDS}.
        """
        import resource

        null = self.devnull()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        self.assertSpawnError(
            makePlan(b"/bin/true"),
            SpawnError,
            ChildSetupStage.FDS,
            errno.EBADF,
            None,
            fdMap={0: null, 100: null},
        )

    def test_badProcessGroupForced(self) -> None:
        """
        With the C{posix_spawn} path forced, joining a process group that
        does not exist fails with C{EPERM}, reported as stage C{EXEC}
        (C{posix_spawn} only returns an errno).
        """
        self.assertSpawnError(
            makePlan(b"/bin/true", processGroup=unusedPid()),
            PermissionError,
            ChildSetupStage.EXEC,
            errno.EPERM,
            "/bin/true",
        )

    def test_badProcessGroupAuto(self) -> None:
        """
        In C{auto} mode, a C{posix_spawn} failure of a plan that joins a
        process group is replayed through the fork path, which reports the
        real stage: C{SETPGID}.
        """
        self.spawner = PythonSpawner()
        self.assertSpawnError(
            makePlan(b"/bin/true", processGroup=unusedPid()),
            PermissionError,
            ChildSetupStage.SETPGID,
            errno.EPERM,
            None,
        )

    def test_sessionLeaderCannotJoinGroup(self) -> None:
        """
        C{newSession} with C{processGroup=0} fails at C{SETPGID} in C{auto}
        mode (a session leader cannot change its group).
        """
        self.spawner = PythonSpawner()
        self.assertSpawnError(
            makePlan(b"/bin/true", processGroup=0, newSession=True),
            PermissionError,
            ChildSetupStage.SETPGID,
            errno.EPERM,
            None,
        )

    def test_closedSourceFd(self) -> None:
        """
        A mapped parent fd that is closed makes C{posix_spawn} fail with
        C{EBADF}, reported as stage C{FDS}.
        """
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        self.assertSpawnError(
            makePlan(b"/bin/true"),
            SpawnError,
            ChildSetupStage.FDS,
            errno.EBADF,
            None,
            fdMap={0: r},
        )

    def test_hugeGap(self) -> None:
        """
        A child fd far above the others would need one close action per fd
        in between: forcing C{posix_spawn} then raises L{UnsupportedFeature}
        naming C{childFDs}, and C{auto} mode uses the fork path, which gives
        the child exactly its fds.
        """
        null = self.devnull()
        fdMap = {0: null, MAX_CLOSE_ACTIONS + 10: null}
        e = self.assertRaises(
            UnsupportedFeature, self.spawner.spawn, makePlan(), fdMap, None
        )
        self.assertEqual(e.feature, "childFDs")
        report = self.report(fdMap, spawner=PythonSpawner())
        self.assertEqual(sorted(map(int, report["fds"])), sorted(fdMap))

    def test_preparedAlwaysClosed(self) -> None:
        """
        The prepared C{posix_spawn} structures are destroyed after the spawn,
        on success and on failure.
        """
        prepared: list[Any] = []
        inner = LibcPosixSpawn()

        class Recording:
            name = "recording"

            def prepare(
                self,
                argv: Any,
                envp: Any,
                actions: Any,
                attributes: SpawnAttributes,
            ) -> PreparedSpawn:
                p = inner.prepare(argv, envp, actions, attributes)
                prepared.append(p)
                return p

        spawner = PythonSpawner(method="posix_spawn", posixSpawn=Recording())
        self.assertEqual(self.spawnChild(makePlan(b"/bin/true"), spawner=spawner), 0)
        null = self.devnull()
        self.assertRaises(
            SpawnError,
            spawner.spawn,
            makePlan(os.path.join(self.tmp, "x").encode()),
            {0: null},
            None,
        )
        self.assertEqual(len(prepared), 2)
        for p in prepared:
            self.assertFalse(p._actionsLive or p._attrLive)

    def test_creatingTheChildFails(self) -> None:
        """
        C{posix_spawn} failing with C{EAGAIN} (C{clone} under
        C{RLIMIT_NPROC}: C{execve} cannot return it here) is stage
        C{SPAWN} with no filename; C{ENOMEM}, which C{execve} may return
        too, is replayed through the fork path (which starts the child if
        the shortage is gone), and stays stage C{EXEC} when C{posix_spawn}
        is forced.
        """

        class Failing:
            name = "failing"

            def __init__(self, code: int) -> None:
                self.code = code
                self.calls = 0

            def prepare(self, *args: Any) -> Any:
                outer = self

                class Prepared:
                    def spawn(self, path: bytes, into: list[int]) -> int:
                        outer.calls += 1
                        raise OSError(outer.code, "injected")

                    def close(self) -> None:
                        pass

                return Prepared()

        plan = makePlan(b"/bin/true")
        for method, code, stage, filename in [
            ("posix_spawn", errno.EAGAIN, ChildSetupStage.SPAWN, None),
            ("auto", errno.EAGAIN, ChildSetupStage.SPAWN, None),
            ("posix_spawn", errno.ENOMEM, ChildSetupStage.EXEC, "/bin/true"),
        ]:
            self.spawner = PythonSpawner(method=method, posixSpawn=Failing(code))  # type: ignore[arg-type]
            self.assertSpawnError(plan, SpawnError, stage, code, filename)
        backend = Failing(errno.ENOMEM)
        spawner = PythonSpawner(posixSpawn=backend)
        self.assertEqual(self.spawnChild(plan, spawner=spawner), 0)
        self.assertEqual(backend.calls, 1)


class OsPosixSpawnPathTests(EngineTestsMixin, SynchronousTestCase):
    """
    The C{posix_spawn} path through the C{os.posix_spawn} slow path (what
    runs where glibc lacks C{posix_spawn_file_actions_addclosefrom_np}).

    Known gap, asserted: C{os.posix_spawn} cannot put glibc's internal
    signals 32 and 33 in the SETSIGDEF set, so the child gets them as
    glibc's spawn child leaves them: ignored from glibc < 2.38 or where
    C{clone3} is refused, default from glibc >= 2.38 on C{clone3} (see
    L{tests.libcspawn}; L{tests.test_osposixspawn} tests both sides).
    """

    method = "posix_spawn"
    internalSignalsIgnored = spawnIgnoresInternalSignals()

    def posixSpawnBackend(self) -> PosixSpawnBackend:
        return OsPosixSpawn()


class ForkPathTests(EngineTestsMixin, SynchronousTestCase):
    """
    The fork path, forced for everything, plus the options only it can
    honour.
    """

    method = "fork"

    def test_cwd(self) -> None:
        """
        C{cwd} is the child's working directory.
        """
        report = self.report(cwd=self.tmp.encode())
        self.assertEqual(report["cwd"], self.tmp)

    def test_missingCwd(self) -> None:
        """
        A missing C{cwd} raises a L{FileNotFoundError} flavour, stage
        C{CHDIR}, naming the directory.
        """
        missing = os.path.join(self.tmp, "missing")
        self.assertSpawnError(
            makePlan(b"/bin/true", cwd=missing.encode()),
            FileNotFoundError,
            ChildSetupStage.CHDIR,
            errno.ENOENT,
            missing,
        )

    def test_cwdIsAFile(self) -> None:
        """
        A C{cwd} that is a file raises C{ENOTDIR}, stage C{CHDIR}.
        """
        path = os.path.join(self.tmp, "file")
        open(path, "w").close()
        self.assertSpawnError(
            makePlan(b"/bin/true", cwd=path.encode()),
            NotADirectoryError,
            ChildSetupStage.CHDIR,
            errno.ENOTDIR,
            path,
        )

    def test_umask(self) -> None:
        """
        C{umask} is the child's umask; without it the parent's is inherited.
        """
        self.assertEqual(self.report(umask=0o027)["umask"], 0o027)
        current = os.umask(0o022)
        os.umask(current)
        self.assertEqual(self.report()["umask"], current)

    def test_rlimits(self) -> None:
        """
        Each C{(resource, soft, hard)} of C{rlimits} is applied.
        """
        import resource

        report = self.report(
            rlimits=(
                (resource.RLIMIT_NOFILE, 200, 300),
                (resource.RLIMIT_CORE, 0, 0),
            )
        )
        self.assertEqual(report["rlimits"]["RLIMIT_NOFILE"], [200, 300])
        self.assertEqual(report["rlimits"]["RLIMIT_CORE"], [0, 0])

    def test_badRlimit(self) -> None:
        """
        An rlimit the kernel refuses (soft above hard) raises stage
        C{RLIMIT}, C{EINVAL}, with the resource as detail.
        """
        import resource

        e = self.assertSpawnError(
            makePlan(b"/bin/true", rlimits=((resource.RLIMIT_NOFILE, 300, 200),)),
            SpawnError,
            ChildSetupStage.RLIMIT,
            errno.EINVAL,
            None,
        )
        self.assertEqual(e.detail, resource.RLIMIT_NOFILE)

    def test_deathSignal(self) -> None:
        """
        C{deathSignal} is the child's parent-death signal; by default it has
        none.
        """
        self.assertEqual(self.report(deathSignal=signal.SIGTERM)["pdeathsig"], 15)
        self.assertEqual(self.report()["pdeathsig"], 0)

    def test_deathSignalDelivered(self) -> None:
        """
        When the parent that spawned the child exits, the child receives its
        C{deathSignal}.  (The test process becomes a child subreaper for the
        duration, so the orphaned child is reparented to it and can be
        waited for.)
        """
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prSetChildSubreaper = 36
        self.assertEqual(libc.prctl(prSetChildSubreaper, 1, 0, 0, 0), 0)
        self.addCleanup(libc.prctl, prSetChildSubreaper, 0, 0, 0, 0)
        result = _runHelper(_ORPHAN, "fork")
        grandchild = result["pid"]
        _, status = os.waitpid(grandchild, 0)
        self.assertTrue(os.WIFSIGNALED(status), hex(status))
        self.assertEqual(os.WTERMSIG(status), signal.SIGUSR1)

    def test_deathSignalSurvivesUid(self) -> None:
        """
        The parent-death signal is set after the uid change (which would
        clear it).
        """
        report = self.report(uid=NOBODY, gid=NOBODY, deathSignal=signal.SIGKILL)
        self.assertEqual(report["pdeathsig"], signal.SIGKILL)

    def test_credentials(self) -> None:
        """
        C{uid}, C{gid} and C{groups} set the real, effective and saved ids
        and the supplementary groups.
        """
        report = self.report(uid=NOBODY, gid=NOBODY, groups=(NOBODY, 100))
        self.assertEqual(report["uid"], [NOBODY] * 3)
        self.assertEqual(report["gid"], [NOBODY] * 3)
        self.assertEqual(report["groups"], [100, NOBODY])

    def test_uidDropsGroups(self) -> None:
        """
        A C{uid} without C{groups} drops the parent's supplementary groups.
        """
        os.setgroups([1, 2])
        self.addCleanup(os.setgroups, os.getgroups())
        report = self.report(uid=NOBODY)
        self.assertEqual(report["uid"], [NOBODY] * 3)
        self.assertEqual(report["gid"], list(os.getresgid()))
        self.assertEqual(report["groups"], [])

    def test_gidKeepsGroups(self) -> None:
        """
        A C{gid} alone changes only the gids.
        """
        report = self.report(gid=NOBODY)
        self.assertEqual(report["gid"], [NOBODY] * 3)
        self.assertEqual(report["uid"], list(os.getresuid()))
        self.assertEqual(report["groups"], sorted(os.getgroups()))

    def test_autoUsesFork(self) -> None:
        """
        In C{auto} mode, a plan with C{cwd} goes through the fork path and
        one without through C{posix_spawn}.
        """
        plan = makePlan(b"/bin/true", cwd=b"/")
        self.assertEqual(forkReason(plan, None), "path")
        self.assertIsNone(forkReason(makePlan(b"/bin/true"), None))
        self.assertEqual(forkReason(makePlan(pty=PTYSpec()), None), "usePTY")
        self.assertIsNone(forkReason(makePlan(pty=PTYSpec()), b"/dev/pts/0"))
        spawner = PythonSpawner()
        self.assertEqual(self.spawnChild(plan, spawner=spawner), 0)

    def test_pipeFails(self) -> None:
        """
        If the error pipe cannot be created, L{SpawnError} with stage
        C{SPAWN} and the errno is raised and nothing is left open.
        """

        class NoPipe(ParentSyscalls):
            def pipe(self, into: list[int]) -> None:
                raise OSError(errno.EMFILE, "injected")

        self.spawner = self.makeSpawner(syscalls=NoPipe())
        self.assertSpawnError(
            makePlan(b"/bin/true"),
            SpawnError,
            ChildSetupStage.SPAWN,
            errno.EMFILE,
            None,
        )

    def test_forkFails(self) -> None:
        """
        If C{fork} fails, L{SpawnError} with stage C{SPAWN} is raised and
        the error pipe is closed.
        """

        class NoFork(ParentSyscalls):
            def fork(self, into: list[int]) -> int:
                raise OSError(errno.EAGAIN, "injected")

        self.spawner = self.makeSpawner(syscalls=NoFork())
        self.assertSpawnError(
            makePlan(b"/bin/true"),
            SpawnError,
            ChildSetupStage.SPAWN,
            errno.EAGAIN,
            None,
        )

    def test_neverSignalsAPidItDoesNotHold(self) -> None:
        """
        When the pidfd cannot be opened, the child is killed only if it is
        still our unreaped child: a pid the kernel already reaped (C{SIGCHLD}
        ignored) and handed to another process is left alone.  Here C{fork}
        reports the pid of a process that is not our child, as such a pid
        would be.
        """
        stranger = subprocess.run(
            ["/bin/sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"],
            capture_output=True,
            check=True,
        )
        strangerPid = int(stranger.stdout)
        # Not our child (its parent, the shell, has exited): held by pidfd
        # only, to watch it and to kill it afterwards.
        strangerFd = os.pidfd_open(strangerPid)
        self.addCleanup(os.close, strangerFd)
        self.addCleanup(signal.pidfd_send_signal, strangerFd, signal.SIGKILL)

        class Reused(ParentSyscalls):
            def fork(self, into: list[int]) -> int:
                # As the real one: the pid is recorded for the clean-up.
                into.append(strangerPid)
                return strangerPid

            def pidfdOpen(self, pid: int, into: list[int]) -> int:
                raise OSError(errno.EMFILE, "injected")

        self.spawner = self.makeSpawner(syscalls=Reused())
        self.assertSpawnError(
            makePlan(b"/bin/true"),
            SpawnError,
            ChildSetupStage.SPAWN,
            errno.EMFILE,
            None,
        )
        # Still running: a pidfd becomes readable when its process exits.
        self.assertEqual(select.select([strangerFd], [], [], 0)[0], [])

    def test_interruptedWhileReading(self) -> None:
        """
        An exception in the parent after the fork (here while reading the
        error pipe) kills and reaps the child, closes the pipe and
        propagates.
        """
        pids = []

        class Interrupted(ParentSyscalls):
            def fork(self, into: list[int]) -> int:
                pid = super().fork(into)
                if pid:
                    pids.append(pid)
                return pid

            def readFailure(self, fd: int) -> ChildFailure | None:
                raise KeyboardInterrupt()

        self.spawner = self.makeSpawner(syscalls=Interrupted())
        null = self.devnull()
        self.assertRaises(
            KeyboardInterrupt,
            self.spawner.spawn,
            makePlan(b"/bin/sleep", argv=(b"sleep", b"100")),
            {0: null},
            None,
        )
        self.assertRaises(ChildProcessError, os.waitpid, pids[0], 0)


def _runHelper(
    code: str,
    *args: str,
    prefix: tuple[str, ...] = (),
    python: str = sys.executable,
) -> dict[str, Any]:
    """
    Run C{code} in a fresh Python (optionally under C{prefix}, such as
    C{setpriv}) and return the JSON it prints.  The helper finds txspawn and
    its dependencies through C{PYTHONPATH}, so that it can also run on
    another interpreter of the same version.
    """
    import attrs
    import zope.interface

    import twisted
    import txspawn

    paths = [
        os.path.dirname(os.path.dirname(os.path.abspath(m.__file__ or "")))
        for m in (txspawn, attrs, twisted)
    ]
    paths.append(
        os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(zope.interface.__file__)))
        )
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))
    proc = subprocess.run(
        [*prefix, python, "-c", code, *args],
        capture_output=True,
        check=False,
        cwd="/",
        env=env,
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"helper failed: {proc.stderr.decode()}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# The failure scenarios that need a different process state (another uid,
# a lowered fd limit) run in a helper Python process, which reports what it
# saw as JSON.
_SCENARIO = r"""
import errno, json, os, resource, sys
from txspawn._plan.plan import SpawnPlan
from txspawn._engine.pyengine import PythonSpawner
from txspawn.errors import SpawnError

scenario, method = sys.argv[1], sys.argv[2]

def fds():
    result = []
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue
        result.append(int(name))
    return sorted(result)

def children():
    out = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            out.extend(f.read().split())
    return out

spawner = PythonSpawner(method=method)
null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
fdMap = {0: null, 1: null, 2: null}
plan = SpawnPlan(
    executable=b"/bin/true", candidates=(b"/bin/true",), argv=(b"true",),
    envp=(), uid=0 if scenario == "setuid" else None,
)
before = fds()
fillers = []
if scenario == "emfile":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(before) + 1, hard))
    while True:
        try:
            fillers.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as e:
            assert e.errno == errno.EMFILE
            break
result = {"ids": list(os.getresuid())}
try:
    child = spawner.spawn(plan, fdMap, None)
except SpawnError as e:
    result.update(
        type=type(e).__name__, stage=e.stage.name, errno=e.errno,
        filename=e.filename,
        permission=isinstance(e, PermissionError),
    )
else:
    os.waitpid(child.pid, 0)
    child.closePidfd()
    result["type"] = None
for fd in fillers:
    os.close(fd)
if scenario == "emfile":
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
result["fdsUnchanged"] = fds() == before
result["children"] = children()
print(json.dumps(result))
"""


# Spawns "sleep" with a parent-death signal, prints its pid and exits
# without waiting for it.
_ORPHAN = r"""
import json, os, signal, sys
from txspawn._plan.plan import SpawnPlan
from txspawn._engine.pyengine import PythonSpawner

null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
plan = SpawnPlan(
    executable=b"/bin/sleep", candidates=(b"/bin/sleep",),
    argv=(b"sleep", b"1000"), envp=(), deathSignal=signal.SIGUSR1,
)
child = PythonSpawner(method=sys.argv[1]).spawn(plan, {0: null, 1: null, 2: null}, None)
print(json.dumps({"pid": child.pid}))
"""


class FailureScenarioTests(HygieneMixin, SynchronousTestCase):
    """
    Failures that need a different process state, run in a helper process.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def test_setuidEPERM(self) -> None:
        """
        From a non-root parent (C{setpriv} to nobody), asking for uid 0
        raises the L{PermissionError} flavour with stage C{SETUID} and
        C{EPERM}; the child is reaped and no fd leaked.
        """
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise self.skipTest("setpriv(1) is not installed")
        if os.getuid() != 0:
            raise self.skipTest("needs root to drop to another uid with setpriv")
        python = pythonForAnyUser()
        if python is None:
            raise self.skipTest("no Python interpreter that uid 65534 can run")
        result = _runHelper(
            _SCENARIO,
            "setuid",
            "fork",
            prefix=(
                setpriv,
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
            ),
            python=python,
        )
        self.assertEqual(result["ids"], [NOBODY] * 3)
        self.assertEqual(
            (result["stage"], result["errno"], result["permission"]),
            ("SETUID", errno.EPERM, True),
        )
        self.assertTrue(result["fdsUnchanged"])
        self.assertEqual(result["children"], [])

    def test_emfile(self) -> None:
        """
        With the fd table full (C{RLIMIT_NOFILE} reached), both paths raise
        L{SpawnError} with stage C{SPAWN} and C{EMFILE} (the fork path
        cannot create its error pipe, the C{posix_spawn} path cannot open
        the pidfd), the child (if any) is reaped, and no fd leaked.
        """
        for method in ("fork", "posix_spawn"):
            result = _runHelper(_SCENARIO, "emfile", method)
            self.assertEqual(
                (result["type"], result["stage"], result["errno"]),
                ("SpawnError", "SPAWN", errno.EMFILE),
                method,
            )
            self.assertTrue(result["fdsUnchanged"], method)
            self.assertEqual(result["children"], [], method)


class ThreadStressTests(HygieneMixin, SynchronousTestCase):
    """
    Spawning from several threads while another thread opens inheritable
    fds: children see only their planned fds.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def test_threads(self) -> None:
        """
        Four threads spawn C{report.py} (alternating the C{posix_spawn} and
        fork paths) while a fifth opens and closes inheritable pipes in a
        loop; every child reports exactly fds 0, 1 and 2, all
        C{/dev/null}.  On Python 3.12 and later each fork from a thread
        warns (a C{DeprecationWarning} from C{os.fork}), on 3.11 none does.
        """
        null = self.devnull()
        nullStat = os.fstat(null)
        stop = threading.Event()
        errors: list[BaseException] = []
        reports: list[dict[str, Any]] = []
        lock = threading.Lock()

        def opener() -> None:
            held: list[int] = []
            while not stop.is_set():
                r, w = os.pipe()
                os.set_inheritable(r, True)
                os.set_inheritable(w, True)
                held += [r, w]
                if len(held) > 40:
                    for fd in held:
                        os.close(fd)
                    held = []
            for fd in held:
                os.close(fd)

        def spawner(index: int) -> None:
            try:
                for i in range(6):
                    method = "fork" if (index + i) % 2 else "posix_spawn"
                    engine = PythonSpawner(method=method)  # type: ignore[arg-type]
                    out = os.path.join(self.tmp, f"r{index}-{i}")
                    plan = makePlan(argv=(PY, REPORT, b"--out", out.encode()))
                    child = engine.spawn(plan, {0: null, 1: null, 2: null}, None)
                    try:
                        self.assertEqual(waitExit(child.pid), 0)
                    finally:
                        child.closePidfd()
                    with open(out) as f:
                        data = json.load(f)
                    data["method"] = method
                    with lock:
                        reports.append(data)
            except BaseException as e:
                errors.append(e)

        with warnings.catch_warnings(record=True) as caught:
            # Python 3.12+ warns at every os.fork() in a process with
            # threads (gh-100228); half of these spawns take the fork path
            # from a thread on purpose: each must warn there, none before.
            warnings.simplefilter("always", DeprecationWarning)
            openerThread = threading.Thread(target=opener)
            openerThread.start()
            threads = [threading.Thread(target=spawner, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            stop.set()
            openerThread.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(reports), 24)
        forkWarnings = [
            w
            for w in caught
            if w.category is DeprecationWarning and "fork()" in str(w.message)
        ]
        self.assertEqual(len(forkWarnings), 12 if sys.version_info >= (3, 12) else 0)
        for report in reports:
            self.assertEqual(sorted(report["fds"]), ["0", "1", "2"], report["method"])
            for info in report["fds"].values():
                self.assertEqual(
                    (info["dev"], info["ino"]), (nullStat.st_dev, nullStat.st_ino)
                )


class BackendTests(HygieneMixin, SynchronousTestCase):
    """
    The C{posix_spawn} backends on their own.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def runBackend(
        self, backend: PosixSpawnBackend, actions: list[SpawnAction]
    ) -> list[str]:
        out = os.path.join(self.tmp, "ls")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.addCleanup(os.close, fd)
        prepared = backend.prepare(
            [b"sh", b"-c", b"ls /proc/$$/fd"],
            [],
            [Close(0), Dup2(fd, 1), Close(2), *actions],
            SpawnAttributes(),
        )
        try:
            pid = prepared.spawn(b"/bin/sh", [])
        finally:
            prepared.close()
        self.assertEqual(waitExit(pid), 0)
        with open(out) as f:
            return sorted(f.read().split())

    def test_closeFrom(self) -> None:
        """
        L{CloseFrom} closes every fd from its number up, inheritable or
        not, with both backends.
        """
        r, _ = self.pipe()
        os.set_inheritable(r, True)
        for backend in (LibcPosixSpawn(), OsPosixSpawn()):
            fds = self.runBackend(backend, [CloseFrom(3)])
            self.assertEqual(fds, ["1"], backend.name)

    def test_close(self) -> None:
        """
        L{Close} closes one fd; a L{Close} of an fd that is not open is not
        an error.
        """
        r, w = self.pipe()
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        for backend in (LibcPosixSpawn(), OsPosixSpawn()):
            fds = self.runBackend(backend, [Close(r), Close(1000), CloseFrom(3)])
            self.assertEqual(fds, ["1"], backend.name)
            fds = self.runBackend(backend, [Close(r), Dup2(w, 3), CloseFrom(4)])
            self.assertEqual(fds, ["1", "3"], backend.name)

    def test_missingSymbols(self) -> None:
        """
        L{LibcPosixSpawn} refuses a libc without the symbols it needs,
        naming them, with C{ENOSYS}.
        """

        class NoLibc:
            pass

        e = self.assertRaises(OSError, LibcPosixSpawn, NoLibc())
        self.assertEqual(e.errno, errno.ENOSYS)
        self.assertIn("posix_spawn_file_actions_addclosefrom_np", str(e))

    def test_closeIdempotent(self) -> None:
        """
        Closing prepared structures twice is harmless.
        """
        prepared = LibcPosixSpawn().prepare([b"x"], [], [], SpawnAttributes())
        prepared.close()
        prepared.close()

    def test_rejectedAction(self) -> None:
        """
        An action the libc rejects raises L{OSError} with its errno, and the
        structures are destroyed.
        """
        e = self.assertRaises(
            OSError,
            LibcPosixSpawn().prepare,
            [b"x"],
            [],
            [Dup2(-5, 3)],
            SpawnAttributes(),
        )
        self.assertEqual(e.errno, errno.EBADF)


class SpawnerConstructionTests(SynchronousTestCase):
    """
    L{PythonSpawner} construction.
    """

    def test_badMethod(self) -> None:
        """
        An unknown C{method} raises L{ValueError} naming the argument.
        """
        e = self.assertRaises(ValueError, PythonSpawner, method="vfork")
        self.assertIn("method", str(e))

    def test_fileIsRegular(self) -> None:
        """
        The report helper exists (sanity check for the other tests).
        """
        self.assertTrue(stat.S_ISREG(os.stat(REPORT).st_mode))
