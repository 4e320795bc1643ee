# -*- test-case-name: tests.test_status -*-
"""
Tests for L{txspawn._transport.exitstatus}: one table of exit events,
checked three ways.

Each row of L{CASES} is one way a child can change state, described the way
C{waitid()} reports it (C{si_code}, C{si_status}), with the classic wait
status C{wait4()} reports for the same event and the reason Twisted's
C{Process._getReason} gives for that status.  The table is checked against
L{statusFromSiginfo}, against L{reasonFromStatus}, and -- for every row a
real child can produce without ptrace -- against the kernel itself.
"""

from __future__ import annotations

import os
import resource
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.trial.unittest import SynchronousTestCase

from txspawn._kernel.childhandle import ChildProcess
from txspawn._transport.exitstatus import (
    reasonForChild,
    reasonFromStatus,
    statusFromSiginfo,
)


@contextmanager
def _row(name: str) -> Iterator[None]:
    """
    Name the table row in any assertion failure raised inside the block
    (trial has no C{subTest}).
    """
    try:
        yield
    except AssertionError as e:
        raise type(e)(f"[row {name}] {e}") from e


class Case(NamedTuple):
    """
    One exit event.

    @ivar name: What happened.
    @ivar code: C{si_code}, or C{None} for "status unknown" (no siginfo).
    @ivar siStatus: C{si_status}.
    @ivar status: The classic wait status for the event.
    @ivar reasonType: The reason class Twisted gives for C{status}.
    @ivar exitCode: The reason's C{exitCode}.
    @ivar signal: The reason's C{signal}.
    @ivar real: The shell script a real child runs to produce the event (see
        L{_realEvent}), or C{None} when a real child cannot (ptrace).
    """

    name: str
    code: int | None
    siStatus: int
    status: int | None
    reasonType: type[BaseException]
    exitCode: int | None
    signal: int | None
    real: str | None


_TERM = int(signal.SIGTERM)
_KILL = int(signal.SIGKILL)
_ABRT = int(signal.SIGABRT)
_SEGV = int(signal.SIGSEGV)
_STOP = int(signal.SIGSTOP)
_TSTP = int(signal.SIGTSTP)
_TRAP = int(signal.SIGTRAP)

CASES: list[Case] = [
    Case("exit 0", os.CLD_EXITED, 0, 0x0000, ProcessDone, 0, None, "exit 0"),
    Case("exit 1", os.CLD_EXITED, 1, 0x0100, ProcessTerminated, 1, None, "exit 1"),
    Case("exit 42", os.CLD_EXITED, 42, 0x2A00, ProcessTerminated, 42, None, "exit 42"),
    Case(
        "exit 255", os.CLD_EXITED, 255, 0xFF00, ProcessTerminated, 255, None, "exit 255"
    ),
    # Only the low 8 bits of an exit code survive (exit(256) is exit(0)).
    Case("exit 256", os.CLD_EXITED, 256, 0x0000, ProcessDone, 0, None, None),
    Case(
        "killed by SIGTERM",
        os.CLD_KILLED,
        _TERM,
        _TERM,
        ProcessTerminated,
        None,
        _TERM,
        "kill -TERM $$",
    ),
    Case(
        "killed by SIGKILL",
        os.CLD_KILLED,
        _KILL,
        _KILL,
        ProcessTerminated,
        None,
        _KILL,
        "kill -KILL $$",
    ),
    Case(
        "SIGABRT, core dumps disabled",
        os.CLD_KILLED,
        _ABRT,
        _ABRT,
        ProcessTerminated,
        None,
        _ABRT,
        "ulimit -c 0; kill -ABRT $$",
    ),
    Case(
        "SIGSEGV, core dumped",
        os.CLD_DUMPED,
        _SEGV,
        _SEGV | 0x80,
        ProcessTerminated,
        None,
        _SEGV,
        "ulimit -c unlimited; kill -SEGV $$",
    ),
    Case(
        "SIGABRT, core dumped",
        os.CLD_DUMPED,
        _ABRT,
        _ABRT | 0x80,
        ProcessTerminated,
        None,
        _ABRT,
        "ulimit -c unlimited; kill -ABRT $$",
    ),
    # Stopped and continued are not exits, but a monitor asked for them
    # (WSTOPPED/WCONTINUED) must still produce classic statuses.  Twisted's
    # _getReason, fed such a status, reports WTERMSIG == 0x7f; we keep that.
    Case(
        "stopped by SIGSTOP",
        os.CLD_STOPPED,
        _STOP,
        (_STOP << 8) | 0x7F,
        ProcessTerminated,
        None,
        0x7F,
        "kill -STOP $$",
    ),
    Case(
        "stopped by SIGTSTP",
        os.CLD_STOPPED,
        _TSTP,
        (_TSTP << 8) | 0x7F,
        ProcessTerminated,
        None,
        0x7F,
        None,
    ),
    Case(
        "trapped (ptrace)",
        os.CLD_TRAPPED,
        _TRAP,
        (_TRAP << 8) | 0x7F,
        ProcessTerminated,
        None,
        0x7F,
        None,
    ),
    Case(
        "continued",
        os.CLD_CONTINUED,
        int(signal.SIGCONT),
        0xFFFF,
        ProcessTerminated,
        None,
        0x7F,
        "kill -STOP $$",
    ),
    Case("status unknown (ECHILD)", None, 0, None, ProcessTerminated, None, None, None),
]


def _coreDumpsLandHere() -> str | None:
    """
    Whether a child whose cwd is a fresh directory dumps core there.

    @return: C{None} if so, else the reason a core-dumping row cannot be
        checked against a real child.
    """
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("|") or "/" in pattern:
        return f"core_pattern {pattern!r} does not write cores into the cwd"
    return None


class _RealEvent(NamedTuple):
    """
    What the kernel said about one real child's state change.
    """

    code: int
    siStatus: int
    status: int
    rusage: resource.struct_rusage


def _realEvent(
    case: Case, addCleanup: Callable[[Callable[[], object]], object]
) -> _RealEvent:
    """
    Make a real child produce C{case}'s event and ask the kernel about it
    twice: C{waitid(..., WNOWAIT)} for the siginfo, then C{wait4()} for the
    classic status.  The child is reaped before returning.
    """
    assert case.real is not None and case.code is not None
    # setpgroup=0: a process group of its own in our session is never an
    # orphaned one, where the kernel would discard SIGTSTP (the test runner's
    # own group may be orphaned when it runs from a detached job).
    pid = os.posix_spawn(
        "/bin/sh",
        [b"sh", b"-c", case.real.encode()],
        {},
        setsigdef=range(1, 32),
        setpgroup=0,
    )
    reaped = False

    def cleanup() -> None:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

    addCleanup(cleanup)
    if case.code in (os.CLD_STOPPED, os.CLD_CONTINUED):
        info = os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOWAIT)
        _, status, rusage = os.wait4(pid, os.WUNTRACED)
        if case.code == os.CLD_CONTINUED:
            os.kill(pid, signal.SIGCONT)
            info = os.waitid(os.P_PID, pid, os.WCONTINUED | os.WNOWAIT)
            _, status, rusage = os.wait4(pid, os.WCONTINUED)
        else:
            os.kill(pid, signal.SIGCONT)
        # The script resumes and exits 0.
        os.waitpid(pid, 0)
    else:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        _, status, rusage = os.wait4(pid, 0)
    reaped = True
    assert info is not None
    return _RealEvent(info.si_code, info.si_status, status, rusage)


class StatusTableTests(SynchronousTestCase):
    """
    L{statusFromSiginfo} and L{reasonFromStatus} agree with L{CASES}, and
    L{CASES} agrees with the kernel.
    """

    def test_statusFromSiginfo(self) -> None:
        """
        L{statusFromSiginfo} rebuilds, for every row, the classic status
        C{wait4()} reports, so the C{os.W*} predicates give the same answers.
        """
        for case in CASES:
            if case.code is None:
                continue
            with _row(case.name):
                status = statusFromSiginfo(case.code, case.siStatus)
                self.assertEqual(status, case.status)
                self.assertEqual(
                    os.WIFEXITED(status), case.code == os.CLD_EXITED, case.name
                )
                self.assertEqual(
                    os.WIFSIGNALED(status),
                    case.code in (os.CLD_KILLED, os.CLD_DUMPED),
                    case.name,
                )
                # WCOREDUMP is only meaningful for a signal death (glibc says
                # True for the continued status 0xffff).
                self.assertEqual(
                    os.WIFSIGNALED(status) and os.WCOREDUMP(status),
                    case.code == os.CLD_DUMPED,
                    case.name,
                )
                self.assertEqual(
                    os.WIFSTOPPED(status),
                    case.code in (os.CLD_STOPPED, os.CLD_TRAPPED),
                    case.name,
                )
                self.assertEqual(
                    os.WIFCONTINUED(status), case.code == os.CLD_CONTINUED, case.name
                )
                if os.WIFEXITED(status):
                    self.assertEqual(os.WEXITSTATUS(status), case.siStatus & 0xFF)
                if os.WIFSIGNALED(status):
                    self.assertEqual(os.WTERMSIG(status), case.siStatus)
                if os.WIFSTOPPED(status):
                    self.assertEqual(os.WSTOPSIG(status), case.siStatus)

    def test_statusFromSiginfoBadCode(self) -> None:
        """
        An C{si_code} that is not a C{CLD_*} child code raises L{ValueError}
        naming the argument.
        """
        for code in (0, -1, 99):
            with _row(f"code={code}"):
                e = self.assertRaises(ValueError, statusFromSiginfo, code, 0)
                self.assertIn("code must be a CLD_* si_code", str(e))
                self.assertIn(repr(code), str(e))

    def test_reasonFromStatus(self) -> None:
        """
        L{reasonFromStatus} gives, for every row, the reason Twisted's
        C{_getReason} gives: L{ProcessDone} for exit 0, else
        L{ProcessTerminated} with C{exitCode}, C{signal} and C{status}; an
        unknown status gives C{ProcessTerminated(None, None, None)}.  The
        C{rusage} passed in is attached to the reason.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        for case in CASES:
            with _row(case.name):
                for rusage in (usage, None):
                    reason = reasonFromStatus(case.status, rusage)
                    self.assertIs(type(reason), case.reasonType)
                    self.assertEqual(reason.exitCode, case.exitCode)
                    self.assertEqual(reason.signal, case.signal)
                    self.assertEqual(reason.status, case.status)
                    self.assertIs(getattr(reason, "rusage", "missing"), rusage)

    def test_reasonMatchesTwisted(self) -> None:
        """
        For every classic status in the table, L{reasonFromStatus} builds the
        same exception (type, message, attributes) as Twisted's own
        C{Process._getReason}.
        """
        from twisted.internet.process import Process

        # _getReason uses no instance state; call it unbound on a bare
        # instance rather than spawning through Twisted.
        twistedProcess = Process.__new__(Process)
        for case in CASES:
            if case.status is None:
                continue
            with _row(case.name):
                ours = reasonFromStatus(case.status)
                theirs = twistedProcess._getReason(case.status)
                self.assertIs(type(ours), type(theirs))
                self.assertEqual(str(ours), str(theirs))
                self.assertEqual(
                    (ours.exitCode, ours.signal, ours.status),
                    (theirs.exitCode, theirs.signal, theirs.status),  # type: ignore[attr-defined]
                )

    def test_reasonMatchesTwistedEveryStatus(self) -> None:
        """
        The same holds for every 16-bit classic status, including ones no
        kernel reports (stopped, continued, core flag with exit bits), so
        the arithmetic in L{reasonFromStatus} is exactly Twisted's
        C{os.WIFEXITED}/C{os.WTERMSIG} logic.
        """
        from twisted.internet.process import Process

        twistedProcess = Process.__new__(Process)
        mismatches = []
        for status in range(1 << 16):
            ours = reasonFromStatus(status)
            theirs = twistedProcess._getReason(status)
            if (type(ours), str(ours), ours.exitCode, ours.signal, ours.status) != (
                type(theirs),
                str(theirs),
                theirs.exitCode,  # type: ignore[attr-defined]
                theirs.signal,  # type: ignore[attr-defined]
                theirs.status,  # type: ignore[attr-defined]
            ):
                mismatches.append(status)
        self.assertEqual(mismatches, [])

    def test_unknownStatusMessage(self) -> None:
        """
        The "status unknown" reason is a L{ProcessTerminated} whose three
        fields are C{None}.
        """
        reason = reasonFromStatus(None)
        self.assertIsInstance(reason, ProcessTerminated)
        self.assertEqual(
            (reason.exitCode, reason.signal, reason.status), (None, None, None)
        )
        self.assertIsNone(getattr(reason, "rusage", "missing"))

    def test_reasonForChild(self) -> None:
        """
        L{reasonForChild} converts a reaped child's status and rusage, and
        refuses a child that has not been reaped.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        child = ChildProcess(pid=1, pidfd=None, status=0x0300, rusage=usage)
        e = self.assertRaises(ValueError, reasonForChild, child)
        self.assertIn("not been reaped", str(e))
        child.reaped = True
        reason = reasonForChild(child)
        self.assertIsInstance(reason, ProcessTerminated)
        self.assertEqual(reason.exitCode, 3)
        self.assertIs(getattr(reason, "rusage", None), usage)

    def test_realChildren(self) -> None:
        """
        Every row a real child can produce is what the kernel reports: the
        C{si_code}/C{si_status} from C{waitid()} are the row's, and the
        status C{wait4()} returns is both the row's status and
        L{statusFromSiginfo} of the siginfo.
        """
        coreSkip = _coreDumpsLandHere()
        checked = 0
        with tempfile.TemporaryDirectory() as cwd:
            oldCwd = os.getcwd()
            # Children inherit the cwd; core files (if any) land in cwd.
            os.chdir(cwd)
            try:
                for case in CASES:
                    if case.real is None or case.code is None:
                        continue
                    if case.code == os.CLD_DUMPED and coreSkip is not None:
                        continue
                    with _row(case.name):
                        event = _realEvent(case, self.addCleanup)
                        self.assertEqual(
                            (event.code, event.siStatus),
                            (case.code, case.siStatus),
                        )
                        self.assertEqual(event.status, case.status)
                        self.assertEqual(
                            statusFromSiginfo(event.code, event.siStatus),
                            event.status,
                        )
                        self.assertIsInstance(event.rusage, resource.struct_rusage)
                        checked += 1
            finally:
                os.chdir(oldCwd)
        self.assertGreaterEqual(checked, 8 if coreSkip is None else 6)
