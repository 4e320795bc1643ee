# -*- test-case-name: tests.test_init -*-
"""
Tests for txspawn's init program (C{txspawn/_csrc/init.c}, pid 1 of a pid
namespace), the exact-status handoff of
L{txspawn._kernel.childhandle.ChildProcess} (C{statusFd}), where the program
is found (L{txspawn._kernel.initprogram}), and the timeouts of a command
that is pid 1 itself (L{txspawn._transport.timelimits.terminationGrace}).

The program is run directly here, with the protocol's command line, not
through txspawn's engines: real processes, real pipes, and for the pid
namespace a real one (C{unshare}).  Both builds of it are tested: the one
setup.py installed (freestanding on x86_64) and, when a C compiler is
there, the libc build made from the same source for this test.
"""

from __future__ import annotations

import atexit
import errno
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from typing import Any, ClassVar

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.builders import PYTHON, MixinBase, makeTestCaseClasses, python
from tests.hygiene import HygieneMixin, openFDs
from tests.treeutil import LineProtocol, spawnWithOptions
from txspawn._engine.selection import availableSpawners, selectSpawner
from txspawn._kernel import initprogram
from txspawn._kernel.childhandle import ChildProcess, completeCleanup
from txspawn._kernel.initprogram import (
    INIT_STATUS_SIZE,
    checkedProgram,
    initProgram,
    initProgramProblem,
)
from txspawn._kernel.nsprobe import probeNamespaces
from txspawn._plan.failurerecord import ChildFailure, readFailure
from txspawn._transport.timelimits import sigtermDropped, terminationGrace
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature

#: The engines usable here.  Looked up now, at import: the C engine's first
#: use reserves its slot-mode fds for the process (see
#: L{txspawn._engine.fdslots}), which must not happen inside a test.
ENGINES = sorted(name for name, why in availableSpawners().items() if why is None)

#: The checkout's C sources (absent from an installed wheel).
CSRC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "txspawn", "_csrc"
)

#: Seconds after which a run of init that should have ended, or written
#: something, is killed and the test failed: a broken init must fail a
#: test, not hang it.
PATIENCE = 60.0

#: Says it runs, then waits for its stdin to end.
WAITING = "import sys; print('ready', flush=True); sys.stdin.read()"

#: Every signal init forwards that a Python child can take with sigwait:
#: all but SIGKILL and SIGSTOP (not catchable), SIGCHLD (init's own), and
#: glibc's 32 and 33 (Python cannot block them).
FORWARDED = [
    s
    for s in range(1, signal.SIGRTMAX + 1)
    if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, 32, 33)
]

#: Prints each of the signals of FORWARDED it gets, blocked and taken with
#: sigwait, one a line, and exits once it has had as many.
ECHO_SIGNALS = (
    "import os, signal, sys\n"
    f"wanted = {FORWARDED!r}\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, wanted)\n"
    "print('ready', flush=True)\n"
    "for _ in wanted:\n"
    "    print(signal.sigwait(wanted), flush=True)\n"
)

#: Leaves an orphan to its init: a child forks a grandchild, prints its pid
#: and exits; the grandchild exits once a byte comes on stdin.  Then waits
#: for SIGWINCH and says so.
ORPHAN = (
    "import os, signal\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGWINCH})\n"
    "child = os.fork()\n"
    "if child == 0:\n"
    "    grandchild = os.fork()\n"
    "    if grandchild == 0:\n"
    "        os.read(0, 1)\n"
    "        os._exit(0)\n"
    "    print(grandchild, flush=True)\n"
    "    os._exit(0)\n"
    "os.waitpid(child, 0)\n"
    "print('orphaned', flush=True)\n"
    "signal.sigwait({signal.SIGWINCH})\n"
    "print('winch', flush=True)\n"
)


def _maskHex(*signals: int) -> str:
    mask = 0
    for s in signals:
        mask |= 1 << (s - 1)
    return f"{mask:x}"


def _directStatus(argv: Sequence[str]) -> int:
    """
    The raw wait status of C{argv} run directly, without init.
    """
    pid = os.posix_spawn(argv[0], list(argv), dict(os.environ))
    return os.waitpid(pid, 0)[1]


class Outcome:
    """
    How one run of init ended.

    @ivar exitCode: init's exit code (negative: killed by that signal).
    @ivar record: The failure record on the error pipe, or L{None}.
    @ivar status: What init wrote on the status pipe, or L{None}.
    @ivar stderr: Its standard error.
    """

    def __init__(
        self,
        exitCode: int,
        record: ChildFailure | None,
        status: int | None,
        stderr: bytes,
    ) -> None:
        self.exitCode = exitCode
        self.record = record
        self.status = status
        self.stderr = stderr


class Started:
    """
    One running init: its process, and the read ends of its error and
    status pipes.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], errRead: int, statusRead: int
    ) -> None:
        self.process = process
        self.errRead = errRead
        self.statusRead = statusRead
        self._record: list[ChildFailure | None] = []

    def waitReadable(self, fd: int) -> None:
        """
        Wait for C{fd} to be readable; after L{PATIENCE} seconds, kill the
        process and fail.
        """
        _guard(fd, self.process.pid)

    def record(self) -> ChildFailure | None:
        """
        The error pipe's record, read to end of file (which comes once the
        command exec'd, or init failed).
        """
        if not self._record:
            self.waitReadable(self.errRead)
            self._record.append(readFailure(self.errRead))
        return self._record[0]

    def line(self) -> bytes:
        """
        The next line of its standard output, stripped (a byte at a time:
        its stdout is unbuffered, and nothing is read beyond the line).
        """
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.readStdout(1)
            if not chunk:
                break
            data += chunk
        return data.strip()

    def readStdout(self, size: int) -> bytes:
        """
        Up to C{size} bytes of its standard output, guarded by
        L{waitReadable}.
        """
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        self.waitReadable(fd)
        return os.read(fd, size)

    def finish(self) -> Outcome:
        """
        Close its stdin, wait for it, and say how it ended.
        """
        record = self.record()
        try:
            _, stderr = self.process.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            _killTree(self.process)
            raise AssertionError(
                f"init still running after {PATIENCE} seconds"
            ) from None
        data = os.read(self.statusRead, 64)
        status = None
        if data:
            (status,) = struct.unpack("i", data)
        return Outcome(self.process.returncode, record, status, stderr)


class InitProgramMixin(MixinBase):
    """
    The init program's protocol, for one build of it (L{program}).
    """

    program: ClassVar[str]

    def setUp(self) -> None:
        self.setUpHygiene()  # type: ignore[attr-defined]

    def start(
        self,
        candidates: Sequence[str],
        argv: Sequence[str],
        *,
        mask: str = "0",
        wrapper: Sequence[str] = (),
        fds: tuple[str, str] | None = None,
        stdin: int | None = subprocess.PIPE,
    ) -> Started:
        """
        Start init (under C{wrapper}, a command prefix) running C{argv}.

        @param fds: What to give as ERRFD and STATUSFD instead of the pipes.
        """
        errRead, errWrite = os.pipe2(os.O_CLOEXEC)
        statusRead, statusWrite = os.pipe2(os.O_CLOEXEC)
        for fd in (errRead, statusRead):
            self.addCleanup(os.close, fd)
        if fds is None:
            fds = (str(errWrite), str(statusWrite))
        try:
            process = subprocess.Popen(
                [
                    *wrapper,
                    self.program,
                    *fds,
                    mask,
                    str(len(candidates)),
                    *candidates,
                    *argv,
                ],
                pass_fds=(errWrite, statusWrite),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        finally:
            os.close(errWrite)
            os.close(statusWrite)
        self.addCleanup(_reap, process)
        return Started(process, errRead, statusRead)

    def runInit(
        self, candidates: Sequence[str], argv: Sequence[str], **kw: Any
    ) -> Outcome:
        return self.start(candidates, argv, **kw).finish()

    def assertExact(self, argv: Sequence[str]) -> None:
        """
        C{argv} run under init: no failure record, and the status init
        hands over is exactly the one the command gets without init; init
        exits with its exit code or 128 + its signal.
        """
        outcome = self.runInit([argv[0]], argv)
        self.assertIsNone(outcome.record)
        direct = _directStatus(argv)
        self.assertEqual(outcome.status, direct)
        if os.WIFSIGNALED(direct):
            self.assertEqual(outcome.exitCode, 128 + os.WTERMSIG(direct))
        else:
            self.assertEqual(outcome.exitCode, os.WEXITSTATUS(direct))

    # -- exact status --------------------------------------------------------

    def test_exit0(self) -> None:
        """
        A command that exits 0: status 0, init exits 0.
        """
        self.assertExact(["/bin/true"])

    def test_exit3(self) -> None:
        """
        A command that exits 3: the same status as without init.
        """
        self.assertExact(["/bin/sh", "-c", "exit 3"])

    def test_sigsegv(self) -> None:
        """
        A command killed by C{SIGSEGV}: the same status (core bit included)
        as without init; init exits 128 + 11.
        """
        self.assertExact(["/bin/sh", "-c", "ulimit -c 0; kill -SEGV $$"])

    def test_sigtermForwarded(self) -> None:
        """
        C{SIGTERM} sent to init reaches the command, which dies of it: the
        status says C{SIGTERM}, exactly.
        """
        started = self.start([sys.executable], [sys.executable, "-c", WAITING])
        self.assertEqual(started.line(), b"ready")
        started.process.send_signal(signal.SIGTERM)
        # finish() closes the command's stdin, which would end it too: not
        # before init has reported how it ended (the status pipe readable).
        started.waitReadable(started.statusRead)
        outcome = started.finish()
        self.assertIsNone(outcome.record)
        self.assertEqual(outcome.status, signal.SIGTERM)
        self.assertEqual(outcome.exitCode, 128 + signal.SIGTERM)

    def test_everySignalForwarded(self) -> None:
        """
        Every catchable signal but C{SIGCHLD} is forwarded to the command,
        the real-time ones included.
        """
        started = self.start([sys.executable], [sys.executable, "-c", ECHO_SIGNALS])
        self.assertEqual(started.line(), b"ready")
        got = []
        for signum in FORWARDED:
            started.process.send_signal(signum)
            got.append(int(started.line()))
        self.assertEqual(got, FORWARDED)
        outcome = started.finish()
        self.assertEqual((outcome.record, outcome.status), (None, 0))

    def test_orphanReaped(self) -> None:
        """
        A grandchild orphaned by the command's double fork comes to init
        (pid 1 of a namespace; a subreaper otherwise), which reaps it when
        it exits.

        Deterministic: the grandchild's pidfd is readable once it is a
        zombie, and its C{SIGCHLD} is queued to init by then; the
        C{SIGWINCH} sent after it is taken by init after that C{SIGCHLD}
        (pending standard signals come lowest number first), so once the
        command reports the C{SIGWINCH}, init has reaped the grandchild:
        signalling it through its pidfd finds no process.
        """
        started = self.start([sys.executable], [sys.executable, "-c", ORPHAN])
        grandchild = int(started.line())
        pidfd = os.pidfd_open(grandchild)
        self.addCleanup(os.close, pidfd)
        self.assertEqual(started.line(), b"orphaned")
        self.assertEqual(_parentOf(grandchild), started.process.pid)
        assert started.process.stdin is not None
        started.process.stdin.write(b"x")
        started.process.stdin.flush()
        select.select([pidfd], [], [])
        started.process.send_signal(signal.SIGWINCH)
        self.assertEqual(started.line(), b"winch")
        with self.assertRaises(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, 0)
        outcome = started.finish()
        self.assertEqual((outcome.exitCode, outcome.status), (0, 0))

    # -- what the command gets -----------------------------------------------

    def test_commandSignals(self) -> None:
        """
        The command gets the planned signal mask, and every disposition at
        C{SIG_DFL}, even one init inherited as C{SIG_IGN}.
        """
        grep = shutil.which("grep")
        assert grep is not None
        mask = _maskHex(signal.SIGUSR1, signal.SIGWINCH, 40)
        # A shell that ignores SIGINT and SIGQUIT execs init: SIG_IGN
        # survives an exec, init must reset it.
        wrapper = ["/bin/sh", "-c", "trap '' INT QUIT; exec \"$@\"", "sh"]
        started = self.start(
            [grep],
            ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"],
            mask=mask,
            wrapper=wrapper,
        )
        blocked = started.line().split()
        ignored = started.line().split()
        self.assertEqual(blocked[0], b"SigBlk:")
        self.assertEqual(int(blocked[1], 16), int(mask, 16))
        self.assertEqual(ignored, [b"SigIgn:", b"0" * 16])
        outcome = started.finish()
        self.assertEqual((outcome.record, outcome.status), (None, 0))

    def test_commandFds(self) -> None:
        """
        The command inherits neither of init's own fds.
        """
        check = (
            "import os, sys\n"
            "def isopen(fd):\n"
            "    try:\n"
            "        os.fstat(fd)\n"
            "    except OSError:\n"
            "        return False\n"
            "    return True\n"
            "print(sorted(fd for fd in range(3, 256) if isopen(fd)))\n"
        )
        started = self.start([sys.executable], [sys.executable, "-c", check])
        self.assertEqual(started.line(), b"[]")
        outcome = started.finish()
        self.assertEqual((outcome.record, outcome.status), (None, 0))

    def test_pipesNotHeld(self) -> None:
        """
        Once the command runs, init holds none of its standard fds: the
        parent reads end of file on the command's stdout as soon as the
        command closes it, while the command still runs.
        """
        started = self.start(["/bin/sh"], ["sh", "-c", "exec >&-; read line; exit 4"])
        self.assertEqual(started.readStdout(100), b"")
        outcome = started.finish()
        self.assertEqual(outcome.status, 4 << 8)

    def test_emptyArgv(self) -> None:
        """
        An empty argv (C{spawnProcess(args=())}) is passed on as such.
        """
        outcome = self.runInit(["/bin/true"], [])
        self.assertEqual((outcome.record, outcome.status), (None, 0))

    # -- exec failures: the engines' execvp semantics ------------------------

    def candidateCases(self) -> list[tuple[list[str], int | None]]:
        """
        Candidate lists and the errno each ends with (L{None}: the command
        runs).
        """
        tmp = self.tmp  # type: ignore[attr-defined]
        noExec = os.path.join(tmp, "noexec")
        with open(noExec, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(noExec, 0o644)
        badFormat = os.path.join(tmp, "badformat")
        with open(badFormat, "wb") as f:
            f.write(b"\x7fELF garbage")
        os.chmod(badFormat, 0o755)
        missing = os.path.join(tmp, "missing")
        notDir = "/etc/passwd/x"
        return [
            ([missing], errno.ENOENT),
            ([missing, "/bin/true"], None),
            ([notDir, "/bin/true"], None),
            ([missing, notDir], errno.ENOTDIR),
            ([notDir, missing], errno.ENOENT),
            ([tmp, missing], errno.EACCES),
            ([missing, noExec, missing], errno.EACCES),
            ([noExec, "/bin/true"], None),
            ([badFormat, "/bin/true"], errno.ENOEXEC),
            ([missing, badFormat, noExec], errno.ENOEXEC),
        ]

    def test_candidates(self) -> None:
        """
        ENOENT and ENOTDIR try the next candidate, EACCES is remembered and
        reported if no candidate runs, any other error stops the search: a
        failure is one C{EXEC} record with that errno, the command's status
        is exit 127 and so is init's.
        """
        for candidates, expected in self.candidateCases():
            outcome = self.runInit(candidates, ["cmd"])
            if expected is None:
                self.assertEqual(
                    (outcome.record, outcome.status, outcome.exitCode),
                    (None, 0, 0),
                    candidates,
                )
            else:
                self.assertEqual(
                    (outcome.record, outcome.status, outcome.exitCode),
                    (ChildFailure(ChildSetupStage.EXEC, expected, 0), 127 << 8, 127),
                    candidates,
                )

    def test_candidatesAsTheEngines(self) -> None:
        """
        Each candidate list ends the same way under init as through each
        engine spawning it directly: the same errno, or a command that runs.
        """
        from tests.engineutil import makePlan

        null = self.devnull()  # type: ignore[attr-defined]
        engines = ENGINES
        self.assertIn("python", engines)
        for candidates, _ in self.candidateCases():
            outcome = self.runInit(candidates, ["cmd"])
            initErrno = None if outcome.record is None else outcome.record.errno
            for name in engines:
                plan = makePlan(
                    b"cmd",
                    argv=(b"cmd",),
                    candidates=tuple(os.fsencode(c) for c in candidates),
                )
                try:
                    child = selectSpawner(name).spawn(
                        plan, {0: null, 1: null, 2: null}, None
                    )
                except SpawnError as e:
                    engineErrno: int | None = e.errno
                else:
                    child.killAndReap()
                    child.closePidfd()
                    engineErrno = None
                self.assertEqual(initErrno, engineErrno, (name, candidates))

    # -- bad command lines ---------------------------------------------------

    def test_badArguments(self) -> None:
        """
        A command line that is not the protocol: an C{INIT} record with
        C{EINVAL} (C{EBADF} for a status fd that is not open) once ERRFD is
        known, a usage message on stderr, exit 2, and no command run.
        """
        cases: list[tuple[str, str, list[str], int]] = [
            ("zz", "1", ["/bin/true"], errno.EINVAL),
            ("", "1", ["/bin/true"], errno.EINVAL),
            ("1" * 17, "1", ["/bin/true"], errno.EINVAL),
            ("0", "0", ["/bin/true"], errno.EINVAL),
            ("0", "2", ["/bin/true"], errno.EINVAL),
            ("0", "x", ["/bin/true"], errno.EINVAL),
        ]
        for mask, n, rest, expected in cases:
            started = self._startRaw(["{err}", "{status}", mask, n, *rest])
            outcome = started.finish()
            self.assertEqual(
                (outcome.record, outcome.status, outcome.exitCode),
                (ChildFailure(ChildSetupStage.INIT, expected, 0), None, 2),
                (mask, n, rest),
            )
            self.assertIn(b"usage: txspawn-init", outcome.stderr)
        for status, expected in [("x", errno.EINVAL), ("1000", errno.EBADF)]:
            outcome = self._startRaw(["{err}", status, "0", "1", "/bin/true"]).finish()
            self.assertEqual(
                (outcome.record, outcome.exitCode),
                (ChildFailure(ChildSetupStage.INIT, expected, 0), 2),
                status,
            )

    def test_badErrorFd(self) -> None:
        """
        An ERRFD that is not a number, or not open: no record can be
        written; usage and exit 2.  Too few arguments: the same.
        """
        for args in (
            ["x", "-1", "0", "1", "/bin/true"],
            ["1000", "-1", "0", "1", "/bin/true"],
            ["-1", "-1", "0"],
            [],
        ):
            outcome = self._startRaw(args).finish()
            self.assertEqual((outcome.record, outcome.exitCode), (None, 2), args)
            self.assertIn(b"usage: txspawn-init", outcome.stderr)

    def test_help(self) -> None:
        """
        C{--help} prints the usage on stdout and exits 0.
        """
        result = subprocess.run(
            [self.program, "--help"], capture_output=True, timeout=PATIENCE
        )
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith(b"usage: txspawn-init ERRFD STATUSFD"))

    def test_byHand(self) -> None:
        """
        With -1 for both fds it runs a command and exits as the command did;
        a command that cannot run is said on stderr, exit 127.
        """
        ran = subprocess.run(
            [
                self.program,
                "-1",
                "-1",
                "0",
                "1",
                "/bin/sh",
                "sh",
                "-c",
                "echo $0; exit 5",
            ],
            capture_output=True,
            timeout=PATIENCE,
        )
        self.assertEqual((ran.returncode, ran.stdout), (5, b"sh\n"))
        missing = os.path.join(self.tmp, "missing")  # type: ignore[attr-defined]
        failed = subprocess.run(
            [self.program, "-1", "-1", "0", "1", missing, "x"],
            capture_output=True,
            timeout=PATIENCE,
        )
        self.assertEqual(failed.returncode, 127)
        self.assertEqual(
            failed.stderr,
            f"txspawn-init: cannot execute {missing} (errno {errno.ENOENT})\n".encode(),
        )

    def _startRaw(self, args: list[str]) -> Started:
        """
        Start init with the command line C{args} verbatim, but C{"{err}"}
        and C{"{status}"} replaced with the pipes' fds.
        """
        errRead, errWrite = os.pipe2(os.O_CLOEXEC)
        statusRead, statusWrite = os.pipe2(os.O_CLOEXEC)
        for fd in (errRead, statusRead):
            self.addCleanup(os.close, fd)
        names = {"{err}": str(errWrite), "{status}": str(statusWrite)}
        try:
            process = subprocess.Popen(
                [self.program, *(names.get(a, a) for a in args)],
                pass_fds=(errWrite, statusWrite),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        finally:
            os.close(errWrite)
            os.close(statusWrite)
        self.addCleanup(_reap, process)
        return Started(process, errRead, statusRead)

    def test_cloneFails(self) -> None:
        """
        When init cannot start pid 2 (here C{EAGAIN}: no process allowed
        for its user by C{RLIMIT_NPROC}), an C{INIT} record with that
        errno, exit 127, no status.
        """
        from tests.engineutil import othersCanExecute

        setpriv, prlimit = shutil.which("setpriv"), shutil.which("prlimit")
        if os.geteuid() != 0 or setpriv is None or prlimit is None:
            raise SkipTest("needs root, setpriv and prlimit (util-linux)")
        if not othersCanExecute(self.program):
            raise SkipTest(f"nobody cannot execute {self.program}")
        # As nobody, limited to 0 processes only after the uid change (a
        # limit already exceeded at setuid time would fail the exec too).
        wrapper = [
            setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
            prlimit, "--nproc=0",
        ]  # fmt: skip
        outcome = self.runInit(["/bin/true"], ["true"], wrapper=wrapper)
        self.assertEqual(
            (outcome.record, outcome.status, outcome.exitCode),
            (ChildFailure(ChildSetupStage.INIT, errno.EAGAIN, 0), None, 127),
        )

    # -- as pid 1 of a real pid namespace -----------------------------------

    def unshare(self) -> list[str]:
        """
        The command prefix that runs init as pid 1 of a new pid namespace
        (with a user namespace too when this process is not privileged).
        """
        reason = probeNamespaces().unavailable("pid")
        tool = shutil.which("unshare")
        if reason is not None or tool is None:
            raise SkipTest(reason or "needs unshare (util-linux)")
        wrapper = [tool, "--pid", "--fork", "--kill-child"]
        if not probeNamespaces().privileged:
            wrapper[1:1] = ["--user", "--map-root-user"]
        return wrapper

    def test_pidNamespace(self) -> None:
        """
        As pid 1 of a pid namespace, init runs the command as pid 2 and
        hands over its exact status.
        """
        wrapper = self.unshare()
        started = self.start(
            ["/bin/sh"], ["sh", "-c", "echo $$ $PPID; exit 3"], wrapper=wrapper
        )
        self.assertEqual(started.line(), b"2 1")
        outcome = started.finish()
        self.assertEqual((outcome.record, outcome.status), (None, 3 << 8))

    def test_pidNamespaceSigterm(self) -> None:
        """
        A pid 1 without a C{SIGTERM} handler would never see a C{SIGTERM}
        from outside; init takes it and forwards it to the command.
        """
        wrapper = self.unshare()
        started = self.start(
            [sys.executable], [sys.executable, "-c", WAITING], wrapper=wrapper
        )
        self.assertEqual(started.line(), b"ready")
        (init,) = _childrenOf(started.process.pid)
        self.assertFalse(sigtermDropped(init))
        os.kill(init, signal.SIGTERM)
        outcome = started.finish()
        self.assertEqual((outcome.record, outcome.status), (None, signal.SIGTERM))

    def test_pidNamespaceDaemon(self) -> None:
        """
        A daemon the command leaves behind does not keep init waiting: init
        exits when the command is reaped, and the kernel kills the rest of
        the namespace (nothing of it is alive once init is reaped).
        """
        wrapper = self.unshare()
        daemon = (
            "import os, sys\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        print(os.stat('/proc/self/ns/pid').st_ino, flush=True)\n"
            "        null = os.open(os.devnull, os.O_RDWR)\n"
            "        for fd in (0, 1, 2):\n"
            "            os.dup2(null, fd)\n"
            "        forever, keep = os.pipe()\n"
            "        os.read(forever, 1)\n"
            "    os._exit(0)\n"
            "os.wait()\n"
        )
        started = self.start(
            [sys.executable], [sys.executable, "-c", daemon], wrapper=wrapper
        )
        namespace = int(started.line())
        outcome = started.finish()
        self.assertEqual((outcome.record, outcome.status), (None, 0))
        self.assertEqual(_inPidNamespace(namespace), [])


def _reap(process: subprocess.Popen[bytes]) -> None:
    """
    Kill and reap a started init that a failed test left running, with
    everything it started.
    """
    if process.poll() is None:
        _killTree(process)
    process.communicate()


def _guard(fd: int, pid: int) -> None:
    """
    Wait for C{fd} to be readable; after L{PATIENCE} seconds, kill C{pid}
    and its descendants, and fail: a broken init must fail a test, not hang
    it.
    """
    if not select.select([fd], [], [], PATIENCE)[0]:
        _killTree(pid)
        raise AssertionError(f"fd {fd}: nothing after {PATIENCE} seconds")


def _killTree(process: subprocess.Popen[bytes] | int) -> None:
    """
    C{SIGKILL} C{process} (or that pid) and its descendants (a broken init
    leaves its command running when it is killed, holding the pipes).
    """
    from tests.hygiene import childrenOf

    tree = [process if isinstance(process, int) else process.pid]
    for pid in tree:
        tree.extend(childrenOf(pid))
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _parentOf(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rfind(b")") + 2 :].split()[1])


def _childrenOf(pid: int) -> list[int]:
    from tests.hygiene import childrenOf

    return sorted(childrenOf(pid))


def _inPidNamespace(inode: int) -> list[int]:
    """
    The processes whose pid namespace has the inode C{inode}.
    """
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/pid").st_ino == inode:
                    found.append(int(name))
            except OSError:
                pass
    return found


class InstalledInitTests(InitProgramMixin, HygieneMixin, SynchronousTestCase):
    """
    The init program setup.py built (freestanding on x86_64).
    """

    if initProgramProblem() is None:
        program = os.fsdecode(initProgram())
    else:
        skip = initProgramProblem()


#: The libc build made for L{LibcInitTests}: [path] once built, or [None,
#: reason] if it cannot be.
_libcBuild: list[str | None] = []


def _libcProgram() -> str:
    """
    Build the libc variant of init (once per run), with the extension's
    strict flags, in a temporary directory others can enter (a test runs
    it as nobody).

    @raise SkipTest: without the source or a compiler.
    """
    if not _libcBuild:
        source = os.path.join(CSRC, "init.c")
        cc = (sysconfig.get_config_var("CC") or "cc").split()
        if not os.path.exists(source) or shutil.which(cc[0]) is None:
            _libcBuild.extend([None, f"needs {source} and a C compiler ({cc[0]})"])
        else:
            directory = tempfile.mkdtemp(prefix="txspawn-init-")
            atexit.register(shutil.rmtree, directory, True)
            os.chmod(directory, 0o755)
            program = os.path.join(directory, "txspawn-init")
            subprocess.run(
                [*cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2",
                 f"-I{CSRC}", "-o", program, source],
                check=True,
            )  # fmt: skip
            _libcBuild.append(program)
    if _libcBuild[0] is None:
        raise SkipTest(str(_libcBuild[1]))
    return _libcBuild[0]


class LibcInitTests(InitProgramMixin, HygieneMixin, SynchronousTestCase):
    """
    The libc build of the same source (what other architectures get),
    made for this test with the extension's flags.
    """

    @property
    def program(self) -> str:  # type: ignore[override]
        return _libcProgram()


class InitProgramTests(SynchronousTestCase):
    """
    L{initProgram}: where the program is, checked.
    """

    def test_found(self) -> None:
        """
        Once built, it is an absolute path to an executable file, as bytes,
        inside the package.
        """
        problem = initProgramProblem()
        if problem is not None:
            raise SkipTest(problem)
        path = initProgram()
        self.assertIsInstance(path, bytes)
        self.assertTrue(os.path.isabs(path))
        self.assertTrue(os.access(path, os.X_OK))
        self.assertEqual(
            os.path.dirname(os.path.dirname(path)),
            os.path.dirname(os.path.dirname(os.fsencode(initprogram.__file__))),
        )

    def test_statusSize(self) -> None:
        """
        The status is one native C{int}.
        """
        self.assertEqual(INIT_STATUS_SIZE, struct.calcsize("i"))

    def test_missing(self) -> None:
        """
        A missing program raises L{UnsupportedFeature} naming C{pidInit},
        with the build failure C{setup.py} recorded when there is one, else
        a reason naming the path; a file that is not executable is said to
        be so.
        """
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        program = os.path.join(tmp, "txspawn-init")
        failureFile = os.path.join(tmp, "build-failure.txt")
        with self.assertRaises(UnsupportedFeature) as caught:
            checkedProgram(program, failureFile)
        self.assertEqual(caught.exception.feature, "pidInit")
        self.assertIn(program, caught.exception.reason)
        self.assertIn("pidInit=False", caught.exception.reason)
        with open(failureFile, "w") as f:
            f.write("building txspawn-init failed: no compiler\n")
        with self.assertRaises(UnsupportedFeature) as caught:
            checkedProgram(program, failureFile)
        self.assertIn(
            "building txspawn-init failed: no compiler", caught.exception.reason
        )
        with open(program, "w") as f:
            f.write("")
        os.chmod(program, 0o644)
        self.assertIn(
            "not an executable file", str(initProgramProblem(program, failureFile))
        )
        os.chmod(program, 0o755)
        self.assertIsNone(initProgramProblem(program, failureFile))
        self.assertEqual(checkedProgram(program, failureFile), os.fsencode(program))


# -- ChildProcess(statusFd=): the parent's half of the handoff --------------


def _spawnWithStatusPipe(
    test: SynchronousTestCase, argv: Sequence[str], *, fd: int = 3
) -> tuple[ChildProcess, int]:
    """
    Spawn C{argv} directly with the write end of a status pipe as its fd
    C{fd}, and wrap it as an engine would: a L{ChildProcess} owning the
    pidfd and the read end (close-on-exec, non-blocking).

    @return: The child, and the write end (still open here; closed after
        the test).
    """
    statusRead, statusWrite = os.pipe2(os.O_CLOEXEC)
    test.addCleanup(os.close, statusWrite)
    try:
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            dict(os.environ),
            file_actions=[(os.POSIX_SPAWN_DUP2, statusWrite, fd)],
        )
    except BaseException:
        os.close(statusRead)
        raise
    os.set_blocking(statusRead, False)
    child = ChildProcess(pid, os.pidfd_open(pid), statusFd=statusRead)

    def forget() -> None:
        child.killAndReap()
        child.closePidfd()

    test.addCleanup(forget)
    return child, statusWrite


def _writesStatus(status: int, exitCode: int = 0) -> list[str]:
    """
    A child that writes C{status} on its fd 3 as init does, then exits
    C{exitCode}.
    """
    source = (
        f"import os, struct; os.write(3, struct.pack('i', {status})); "
        f"os._exit({exitCode})"
    )
    return [os.fsdecode(arg) for arg in python(source)]


def _waitExited(child: ChildProcess) -> None:
    """
    Wait for C{child} to exit; after L{PATIENCE} seconds, kill it and its
    descendants, and fail.
    """
    assert child.pidfd is not None
    _guard(child.pidfd, child.pid)


class StatusPipeTests(HygieneMixin, SynchronousTestCase):
    """
    L{ChildProcess} with a status pipe, on real processes: the child below
    writes 4 bytes as init does, or not.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def assertCollected(
        self, child: ChildProcess, status: int | None, initStatus: int | None
    ) -> None:
        """
        The child is reaped with these statuses, and its status pipe was
        read and closed (the fd set is checked after the test).
        """
        self.assertTrue(child.reaped)
        self.assertEqual((child.status, child.initStatus), (status, initStatus))
        self.assertIsNone(child.statusFd)

    def test_statusFromThePipe(self) -> None:
        """
        The 4 bytes on the status pipe become C{status} when the child is
        reaped; the child's own status is C{initStatus}.
        """
        child, _ = _spawnWithStatusPipe(self, _writesStatus(0x8B, 4))
        _waitExited(child)
        self.assertTrue(child.tryReap())
        self.assertCollected(child, 0x8B, 4 << 8)

    def test_nothingWritten(self) -> None:
        """
        Nothing on the pipe (end of file): C{status} is the child's own.
        """
        child, _ = _spawnWithStatusPipe(self, ["/bin/sh", "-c", "exit 3"])
        _waitExited(child)
        self.assertTrue(child.tryReap())
        self.assertCollected(child, 3 << 8, 3 << 8)

    def test_killedBeforeWriting(self) -> None:
        """
        C{killAndReap} of a child that wrote nothing (init killed by
        C{signalProcess("KILL")}): C{SIGKILL}, its own status.
        """
        child, _ = _spawnWithStatusPipe(self, ["/bin/sleep", "1000"])
        child.killAndReap()
        self.assertCollected(child, signal.SIGKILL, signal.SIGKILL)

    def test_killedAfterWriting(self) -> None:
        """
        C{killAndReap} of a child whose status was written already (init
        killed between its write and its exit): the written status wins.
        """
        child, statusWrite = _spawnWithStatusPipe(self, ["/bin/sleep", "1000"])
        os.write(statusWrite, struct.pack("i", 3 << 8))
        child.killAndReap()
        self.assertCollected(child, 3 << 8, signal.SIGKILL)

    def test_reapedBySomeoneElse(self) -> None:
        """
        A child someone else reaped (L{ChildProcess.reapUnknown}): its own
        status is unknown, but the one on the pipe is there.
        """
        child, _ = _spawnWithStatusPipe(self, _writesStatus(15))
        os.waitpid(child.pid, 0)
        self.assertTrue(child.tryReap())
        self.assertCollected(child, 15, None)

    def test_reapedBySomeoneElseNothingWritten(self) -> None:
        """
        Reaped by someone else and nothing on the pipe: nothing is known.
        """
        child, _ = _spawnWithStatusPipe(self, ["/bin/true"])
        os.waitpid(child.pid, 0)
        self.assertTrue(child.tryReap())
        self.assertCollected(child, None, None)

    def test_idempotent(self) -> None:
        """
        Reaping, killing and closing again after the collection changes
        nothing and closes nothing twice (a second close would raise
        C{EBADF}).
        """
        child, _ = _spawnWithStatusPipe(self, _writesStatus(0x8B))
        _waitExited(child)
        self.assertTrue(child.tryReap())
        self.assertTrue(child.tryReap())
        child.killAndReap()
        child.reapUnknown()
        child.closePidfd()
        child.closePidfd()
        self.assertCollected(child, 0x8B, 0)

    def test_withInit(self) -> None:
        """
        The real init program as the child: C{SIGTERM} sent to it (through
        its pidfd) is forwarded, and the status is the command's, C{SIGTERM};
        init's own is exit 128 + 15.
        """
        problem = initProgramProblem()
        if problem is not None:
            raise SkipTest(problem)
        stdinRead, stdinWrite = os.pipe2(os.O_CLOEXEC)
        stdoutRead, stdoutWrite = os.pipe2(os.O_CLOEXEC)
        for fd in (stdinRead, stdinWrite, stdoutRead, stdoutWrite):
            self.addCleanup(os.close, fd)
        statusRead, statusWrite = os.pipe2(os.O_CLOEXEC)
        self.addCleanup(os.close, statusWrite)
        pid = os.posix_spawn(
            os.fsdecode(initProgram()),
            [
                "txspawn-init",
                "-1",
                "3",
                "0",
                "1",
                sys.executable,
                sys.executable,
                "-c",
                WAITING,
            ],
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdinRead, 0),
                (os.POSIX_SPAWN_DUP2, stdoutWrite, 1),
                (os.POSIX_SPAWN_DUP2, statusWrite, 3),
            ],
        )
        os.set_blocking(statusRead, False)
        child = ChildProcess(pid, os.pidfd_open(pid), statusFd=statusRead)
        self.addCleanup(child.closePidfd)
        self.addCleanup(child.killAndReap)
        # A line, whatever the writes (with PYTHONUNBUFFERED print writes
        # "ready" and "\n" separately).
        line = b""
        while not line.endswith(b"\n"):
            _guard(stdoutRead, pid)
            chunk = os.read(stdoutRead, 100)
            if not chunk:
                break
            line += chunk
        self.assertEqual(line, b"ready\n")
        child.sendSignal(signal.SIGTERM)
        _waitExited(child)
        self.assertTrue(child.tryReap())
        self.assertCollected(child, signal.SIGTERM, (128 + signal.SIGTERM) << 8)

    def test_interruptedAnywhere(self) -> None:
        """
        C{killAndReap} run through C{completeCleanup} (as every clean-up
        runs it) and interrupted at each point of the child handle: the
        status is still taken from the pipe, and the pipe closed once (a
        second close would raise C{EBADF} and stop the clean-up).
        """
        from tests.test_rollback_interrupts import Interrupter, requireCCleanup, sweep
        from txspawn._kernel import childhandle

        requireCCleanup(self)
        here = childhandle.__file__

        def inHandle(frame: Any, event: str, arg: object) -> bool:
            if frame.f_code.co_filename == here:
                return True
            return (
                event == "call"
                and frame.f_back is not None
                and frame.f_back.f_code.co_filename == here
            )

        def attempt(point: int) -> bool:
            before = openFDs()
            child, statusWrite = _spawnWithStatusPipe(self, ["/bin/sleep", "1000"])
            os.write(statusWrite, struct.pack("i", 3 << 8))
            with Interrupter(None, point, inHandle) as interrupter:
                try:
                    completeCleanup(child.killAndReap)
                except KeyboardInterrupt:
                    pass
            where = f"interrupted at {interrupter.secondAt or 'no point'}"
            self.assertCollected(child, 3 << 8, signal.SIGKILL)
            child.closePidfd()
            self.assertEqual(openFDs() - {statusWrite}, before, where)
            return interrupter.secondFired

        self.assertGreater(sweep(attempt), 3)

    def test_reapInterrupted(self) -> None:
        """
        C{tryReap} interrupted at each point of the child handle, then what
        a monitor does next -- C{tryReap} again if the child is not reaped
        yet, then C{closePidfd}: the status is the pipe's and the pipe is
        closed, even when the interrupt came after the reap and before the
        pipe was read (then C{closePidfd} finishes the collection).
        """
        from tests.test_rollback_interrupts import Interrupter, sweep
        from txspawn._kernel import childhandle

        here = childhandle.__file__

        def inHandle(frame: Any, event: str, arg: object) -> bool:
            if frame.f_code.co_filename == here:
                return True
            return (
                event == "call"
                and frame.f_back is not None
                and frame.f_back.f_code.co_filename == here
            )

        reapedFirst: list[bool] = []

        def attempt(point: int) -> bool:
            before = openFDs()
            child, statusWrite = _spawnWithStatusPipe(self, _writesStatus(0x8B))
            _waitExited(child)
            with Interrupter(None, point, inHandle) as interrupter:
                try:
                    child.tryReap()
                except KeyboardInterrupt:
                    pass
            reapedFirst.append(child.reaped and child.statusFd is not None)
            if not child.reaped:
                self.assertTrue(child.tryReap())
            child.closePidfd()
            # An interrupt right as the wait returned loses the child's own
            # status (the kernel has reaped it; tryReap, run by a monitor
            # from the reactor, does not record that wait): not the pipe's.
            lost = interrupter.secondAt.startswith("c_return wait4 ")
            self.assertCollected(child, 0x8B, None if lost else 0)
            self.assertEqual(openFDs() - {statusWrite}, before)
            return interrupter.secondFired

        self.assertGreater(sweep(attempt), 3)
        # Some point fell between the reap and the collection.
        self.assertIn(True, reapedFirst)


# -- timeouts of a command that is pid 1 itself -----------------------------


def _pidNamespace(pidInit: bool) -> Any:
    """
    C{Namespaces} with a pid namespace (and a user namespace when this
    process is not privileged).
    """
    from txspawn.options import Namespaces

    return Namespaces(user=not probeNamespaces().privileged, pid=True, pidInit=pidInit)


#: Says it runs, then sleeps; no SIGTERM handler.
SLEEPING = "import time; print('ready', flush=True); time.sleep(1000)"

#: Exits 5 on SIGTERM.
HANDLING = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: os._exit(5))\n"
    "print('ready', flush=True)\n"
    "time.sleep(1000)\n"
)


class SigtermDroppedTests(HygieneMixin, SynchronousTestCase):
    """
    L{sigtermDropped} on real processes.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def pid1(
        self, source: str, init: bool = False
    ) -> tuple[subprocess.Popen[bytes], int]:
        """
        Run C{source} as pid 1 of a new pid namespace (under txspawn's init
        with C{init}), once it said C{ready}.

        @return: The C{unshare} process, and that pid 1.
        """
        reason = probeNamespaces().unavailable("pid")
        tool = shutil.which("unshare")
        if reason is not None or tool is None:
            raise SkipTest(reason or "needs unshare (util-linux)")
        command = [sys.executable, "-c", source]
        if init:
            problem = initProgramProblem()
            if problem is not None:
                raise SkipTest(problem)
            command = [
                os.fsdecode(initProgram()),
                "-1",
                "-1",
                "0",
                "1",
                sys.executable,
                *command,
            ]
        wrapper = [tool, "--pid", "--fork", "--kill-child"]
        if not probeNamespaces().privileged:
            wrapper[1:1] = ["--user", "--map-root-user"]
        process = subprocess.Popen(
            [*wrapper, *command], stdout=subprocess.PIPE, bufsize=0
        )
        self.addCleanup(_reap, process)
        self.assertEqual(Started(process, -1, -1).line(), b"ready")
        (pid1,) = _childrenOf(process.pid)
        return process, pid1

    def test_notPid1(self) -> None:
        """
        A process that is not pid 1 of its namespace does not drop it.
        """
        process = subprocess.Popen(
            [sys.executable, "-c", SLEEPING], stdout=subprocess.PIPE, bufsize=0
        )
        self.addCleanup(_reap, process)
        self.assertEqual(Started(process, -1, -1).line(), b"ready")
        self.assertFalse(sigtermDropped(process.pid))

    def test_pid1WithoutHandler(self) -> None:
        """
        pid 1 without a handler drops it.
        """
        _, pid1 = self.pid1(SLEEPING)
        self.assertTrue(sigtermDropped(pid1))

    def test_pid1WithHandler(self) -> None:
        """
        pid 1 with a handler does not.
        """
        _, pid1 = self.pid1(HANDLING)
        self.assertFalse(sigtermDropped(pid1))

    def test_pid1Blocking(self) -> None:
        """
        pid 1 that blocks C{SIGTERM} keeps it.
        """
        _, pid1 = self.pid1(
            "import signal, time\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
            "print('ready', flush=True)\n"
            "time.sleep(1000)\n"
        )
        self.assertTrue(_unblocked(pid1) is False)
        self.assertFalse(sigtermDropped(pid1))

    def test_init(self) -> None:
        """
        txspawn's init, waiting in C{sigtimedwait} (which shows the signals
        it waits for as unblocked), keeps it.
        """
        _, pid1 = self.pid1(SLEEPING, init=True)
        self.assertTrue(_unblocked(pid1))
        self.assertFalse(sigtermDropped(pid1))

    def test_grace(self) -> None:
        """
        L{terminationGrace}: C{0} for a pid 1 that would drop C{SIGTERM},
        else what was asked.
        """
        process, pid1 = self.pid1(SLEEPING)
        dropping = ChildProcess(pid1, None)
        self.assertEqual(terminationGrace(dropping, 5.0), 0.0)
        self.assertEqual(terminationGrace(ChildProcess(process.pid, None), 5.0), 5.0)


def _unblocked(pid: int) -> bool:
    """
    Whether C{/proc/PID/status} shows C{SIGTERM} unblocked.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return not int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1))
    raise AssertionError("no SigBlk")


class PidOneTimeoutMixin(MixinBase):
    """
    C{timeout} and C{terminate()} on a child in a pid namespace, on every
    engine x monitor.
    """

    def setUp(self) -> None:
        reason = probeNamespaces().unavailable("pid")
        if reason is not None:
            raise SkipTest(reason)
        super().setUp()

    def test_timeoutKillsPid1(self) -> None:
        """
        A command that is pid 1 itself with no C{SIGTERM} handler ignores
        C{SIGTERM}: the timeout kills it with C{SIGKILL} at once, not after
        C{killAfter}.
        """
        proto = LineProtocol()
        transport = spawnWithOptions(
            self,
            proto,
            PYTHON,
            python(SLEEPING),
            {"namespaces": _pidNamespace(False), "timeout": 0.2, "killAfter": 1000},
        )
        self.assertTrue(transport.timedOut)
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)

    def test_terminateHandlingPid1(self) -> None:
        """
        A command that is pid 1 itself and handles C{SIGTERM} gets it, and
        its grace period.
        """

        def terminate(transport: Any, lines: list[bytes]) -> None:
            transport.terminate(1000)

        proto = LineProtocol(1, terminate)
        spawnWithOptions(
            self, proto, PYTHON, python(HANDLING), {"namespaces": _pidNamespace(False)}
        )
        self.assertIsNone(proto.callbackError)
        self.assertEqual(proto.endedReason.value.exitCode, 5)

    def test_terminateUnderInit(self) -> None:
        """
        Under txspawn's init (the default), C{terminate()} sends C{SIGTERM}
        to init, which forwards it: the command dies of it, and the reason
        says so exactly.
        """

        def terminate(transport: Any, lines: list[bytes]) -> None:
            transport.terminate(1000)

        proto = LineProtocol(1, terminate)
        spawnWithOptions(
            self, proto, PYTHON, python(SLEEPING), {"namespaces": _pidNamespace(True)}
        )
        self.assertIsNone(proto.callbackError)
        reason = proto.endedReason.value
        self.assertEqual(
            (reason.signal, reason.status), (signal.SIGTERM, signal.SIGTERM)
        )


globals().update(makeTestCaseClasses(PidOneTimeoutMixin))
