"""
A pid namespace's exit status, on every engine x monitor: through txspawn's
init the parent gets the command's own wait status (exit 0, exit 3,
SIGTERM forwarded, SIGSEGV: the same reason, status included, as without a
pid namespace); C{signalProcess("KILL")} leaves no process of the
namespace alive, a double-forked daemon included; a command that is pid 1
itself ignores C{SIGTERM} it has no handler for, so terminating it
(C{terminate()}, the C{timeout} of L{txspawn.run}) goes to C{SIGKILL} at
once.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from twisted.python.failure import Failure

from tests.builders import makeTestCaseClasses, spawnAndRun
from tests.nsutil import (
    ANY_PYTHON,
    LineProtocol,
    WorldMixin,
    namespaceProcesses,
    reasonOf,
    userNamespacesUnavailable,
)
from tests.test_run import runInReactor
from txspawn import ProcessTimedOut, run
from txspawn.options import Namespaces

_NOT_ROOT = None if os.geteuid() == 0 else "needs root (CAP_SYS_ADMIN)"
_NO_USERNS = userNamespacesUnavailable()

#: Says it runs, then waits for stdin to end (or a signal).
WAITING = "import sys; print('ready', flush=True); sys.stdin.read()"

#: Blocks for ever, whatever its stdin does.
BLOCKED = "import os; r, w = os.pipe(); os.read(r, 1)"

#: Handles SIGTERM: exit 5.
HANDLING = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGTERM, lambda *a: os._exit(5))\n"
    "print('ready', flush=True); sys.stdin.read()\n"
)

#: A real segmentation fault (not a signal sent: that one a pid 1 would
#: ignore).
SEGFAULT = "import ctypes; ctypes.string_at(0)"

#: Leaves a daemon behind (double fork, setsid, stdio on /dev/null, blocked
#: forever), then prints its pid namespace's inode and waits.
DAEMON = r"""
import json, os, sys
ready, ok = os.pipe()
block, hold = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(ok, b"x")
        os.read(block, 1)
    os._exit(0)
os.wait()
os.read(ready, 1)
print(json.dumps({"pidns": os.stat("/proc/self/ns/pid").st_ino}), flush=True)
sys.stdin.read()
"""

#: A grace period longer than the reactor guard of L{runReactor}.
NEVER = 3600.0

#: The configurations with a pid namespace whose command runs under init.
WITH_INIT = {
    "pid": lambda: Namespaces(pid=True),
    "user+pid": lambda: Namespaces(user=True, pid=True),
    "user+pid+mount+proc": lambda: Namespaces(
        user=True, pid=True, mount=True, mountProc=True
    ),
}

#: Core dumps off for both spawns of a comparison, so that neither writes
#: one (the status's core bit is compared too).
NO_CORE: dict[str, Any] = {"rlimits": {"CORE": (0, 0)}}


class InitStatusMixin(WorldMixin):
    """
    The status through init is the command's own.
    """

    if _NOT_ROOT or _NO_USERNS:
        skip = _NOT_ROOT or _NO_USERNS

    def spawnCode(
        self, source: str, namespaces: Namespaces | None, signalOnReady: str | None
    ) -> LineProtocol:
        """
        Run C{source} with C{namespaces}; when it prints C{ready}, send it
        C{signalOnReady} (if any).
        """

        def onLine(transport: Any, line: bytes) -> None:
            if line == b"ready" and signalOnReady is not None:
                transport.signalProcess(signalOnReady)

        proto = LineProtocol(onLine)
        spawnAndRun(
            self,
            proto,
            ANY_PYTHON,
            [ANY_PYTHON, b"-c", source.encode()],
            namespaces=namespaces,
            env={},
            path="/",
            **NO_CORE,
        )
        return proto

    def assertSameStatus(
        self,
        source: str,
        expected: tuple[str, int | None, int | None, int | None],
        signalOnReady: str | None = None,
        configurations: dict[str, Any] = WITH_INIT,
    ) -> None:
        """
        C{source} ends with the reason C{expected} (type, exit code, signal,
        status) without a pid namespace and in each configuration; so does
        C{processExited}.
        """
        plain = self.spawnCode(source, None, signalOnReady)
        self.assertEqual(reasonOf(plain.endedReason), expected)
        for name, make in configurations.items():
            proto = self.spawnCode(source, make(), signalOnReady)
            self.assertEqual(
                (reasonOf(proto.exitedReason), reasonOf(proto.endedReason)),
                (expected, expected),
                f"{name}: stderr {proto.output.get(2, b'')!r}",
            )

    def test_exit0(self) -> None:
        """
        Exit 0: L{ProcessDone}, status 0.
        """
        self.assertSameStatus("pass", ("ProcessDone", 0, None, 0))

    def test_exit3(self) -> None:
        """
        Exit 3: L{ProcessTerminated}, exit code 3, status C{3 << 8}.
        """
        self.assertSameStatus(
            "import sys; sys.exit(3)", ("ProcessTerminated", 3, None, 3 << 8)
        )

    def test_sigterm(self) -> None:
        """
        C{signalProcess("TERM")} reaches the command (init forwards it): it
        dies of C{SIGTERM}.
        """
        self.assertSameStatus(
            WAITING,
            ("ProcessTerminated", None, signal.SIGTERM, signal.SIGTERM),
            signalOnReady="TERM",
        )

    def test_sigtermHandled(self) -> None:
        """
        A command handling C{SIGTERM} gets it from init (rather than init
        dying of it) and its own exit code comes back.
        """
        self.assertSameStatus(
            HANDLING, ("ProcessTerminated", 5, None, 5 << 8), signalOnReady="TERM"
        )

    def test_sigsegv(self) -> None:
        """
        A segmentation fault: L{ProcessTerminated}, C{SIGSEGV}, no core.
        """
        self.assertSameStatus(
            SEGFAULT, ("ProcessTerminated", None, signal.SIGSEGV, signal.SIGSEGV)
        )

    def test_commandIsPid1(self) -> None:
        """
        With C{pidInit=False} the command's exit codes and faults come back
        as they are too.
        """
        noInit = {
            "pid": lambda: Namespaces(pid=True, pidInit=False),
            "user+pid": lambda: Namespaces(user=True, pid=True, pidInit=False),
        }
        for source, expected in [
            ("pass", ("ProcessDone", 0, None, 0)),
            ("import sys; sys.exit(3)", ("ProcessTerminated", 3, None, 3 << 8)),
            (SEGFAULT, ("ProcessTerminated", None, signal.SIGSEGV, signal.SIGSEGV)),
        ]:
            self.assertSameStatus(source, expected, configurations=noInit)

    def test_pid1IgnoresTerm(self) -> None:
        """
        A command that is pid 1 (C{pidInit=False}) without a C{SIGTERM}
        handler does not die of C{SIGTERM}: the kernel drops it when it is
        sent, so the command still reads the line written after it, and
        exits 0.
        """

        def onLine(transport: Any, line: bytes) -> None:
            if line == b"ready":
                transport.signalProcess("TERM")
                transport.write(b"go on\n")
                transport.closeStdin()

        proto = LineProtocol(onLine)
        source = (
            "import sys; print('ready', flush=True); sys.stdin.readline(); "
            "print('alive')"
        )
        spawnAndRun(
            self,
            proto,
            ANY_PYTHON,
            [ANY_PYTHON, b"-c", source.encode()],
            namespaces=Namespaces(user=True, pid=True, pidInit=False),
            env={},
        )
        self.assertEqual(proto.output[1], b"ready\nalive\n")
        self.assertEqual(reasonOf(proto.endedReason), ("ProcessDone", 0, None, 0))

    def terminateOnReady(self, source: str, namespaces: Namespaces) -> LineProtocol:
        """
        Run C{source}; once it prints C{ready}, C{terminate(killAfter)}
        with a grace period far longer than the reactor's guard, so that
        only a C{SIGKILL} sent at once (or the command's own exit) ends it
        in time.
        """

        def onLine(transport: Any, line: bytes) -> None:
            if line == b"ready":
                transport.terminate(NEVER)

        proto = LineProtocol(onLine)
        spawnAndRun(
            self,
            proto,
            ANY_PYTHON,
            [ANY_PYTHON, b"-c", source.encode()],
            namespaces=namespaces,
            env={},
        )
        return proto

    def test_terminatePid1Kills(self) -> None:
        """
        C{terminate()} of a command that is pid 1 and has no C{SIGTERM}
        handler (which would drop C{SIGTERM}) goes to C{SIGKILL} at once.
        """
        proto = self.terminateOnReady(
            WAITING, Namespaces(user=True, pid=True, pidInit=False)
        )
        self.assertEqual(
            reasonOf(proto.endedReason),
            ("ProcessTerminated", None, signal.SIGKILL, signal.SIGKILL),
        )

    def test_terminatePid1Handling(self) -> None:
        """
        A command that is pid 1 and handles C{SIGTERM} gets it, and its own
        exit code comes back.
        """
        proto = self.terminateOnReady(
            HANDLING, Namespaces(user=True, pid=True, pidInit=False)
        )
        self.assertEqual(
            reasonOf(proto.endedReason), ("ProcessTerminated", 5, None, 5 << 8)
        )

    def test_terminateThroughInit(self) -> None:
        """
        Under txspawn's init, C{terminate()} sends C{SIGTERM} (forwarded):
        the command dies of it.
        """
        proto = self.terminateOnReady(WAITING, Namespaces(user=True, pid=True))
        self.assertEqual(
            reasonOf(proto.endedReason),
            ("ProcessTerminated", None, signal.SIGTERM, signal.SIGTERM),
        )

    def test_runTimeoutPid1(self) -> None:
        """
        L{txspawn.run}'s C{timeout} ends a command that is pid 1 and ignores
        C{SIGTERM} with C{SIGKILL} at once: L{ProcessTimedOut}, killed.
        """
        reactor = self.buildReactor()

        async def main() -> object:
            return await run(
                [ANY_PYTHON, b"-c", BLOCKED.encode()],
                reactor=reactor,
                namespaces=Namespaces(user=True, pid=True, pidInit=False),
                timeout=0.1,
                killAfter=NEVER,
                env={},
            )

        outcome = runInReactor(self, reactor, main)
        self.assertIsInstance(outcome, Failure)
        self.assertIsInstance(outcome.value, ProcessTimedOut)
        result = outcome.value.result
        self.assertEqual((result.exitCode, result.signal), (None, signal.SIGKILL))

    def assertKillLeavesNothing(self, namespaces: Namespaces, processes: int) -> None:
        """
        Spawn L{DAEMON}; once it says its daemon runs (C{processes} in its
        pid namespace, counted in C{/proc}), C{signalProcess("KILL")}; once
        C{processEnded} came, no process of that namespace is left.
        """
        seen: list[tuple[int, list[int]]] = []

        def onLine(transport: Any, line: bytes) -> None:
            inode = json.loads(line)["pidns"]
            seen.append((inode, namespaceProcesses("pid", inode)))
            transport.signalProcess("KILL")

        proto = LineProtocol(onLine)
        spawnAndRun(
            self,
            proto,
            ANY_PYTHON,
            [ANY_PYTHON, b"-c", DAEMON.encode()],
            namespaces=namespaces,
            env={},
        )
        self.assertEqual(len(seen), 1, proto.output)
        inode, before = seen[0]
        self.assertEqual(len(before), processes, before)
        self.assertEqual(
            reasonOf(proto.endedReason),
            ("ProcessTerminated", None, signal.SIGKILL, signal.SIGKILL),
        )
        self.assertEqual(namespaceProcesses("pid", inode), [])

    def test_killWithInit(self) -> None:
        """
        C{signalProcess("KILL")} kills init, and the kernel the rest: the
        command and its daemon.
        """
        self.assertKillLeavesNothing(Namespaces(pid=True), 3)

    def test_killWithInitUser(self) -> None:
        """
        The same in a user namespace.
        """
        self.assertKillLeavesNothing(Namespaces(user=True, pid=True), 3)

    def test_killCommandIsPid1(self) -> None:
        """
        The same when the command is pid 1.
        """
        self.assertKillLeavesNothing(Namespaces(user=True, pid=True, pidInit=False), 2)


globals().update(makeTestCaseClasses(InitStatusMixin))
