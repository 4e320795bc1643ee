# -*- test-case-name: tests.test_engines,tests.test_pyspawn,tests.test_spawner -*-
"""
Process hygiene for the tests: what this process holds (open fds, children,
the signal wakeup fd), so that a test can check it left nothing behind.

Every test module uses these helpers instead of its own copy, so that all
of them check the same thing the same way:

  - L{openFDs}: the fds open in this process;
  - L{childrenOf}: the children of a process, live or zombie, with their
    state;
  - L{isLive}: whether a pid is a live process (not a zombie);
  - L{describeDescendants}: every descendant of a process with what it
    is doing, for a failure message when a test hangs;
  - L{peekWakeupFD}: the signal wakeup fd, read without changing it;
  - L{HygieneMixin}: for tests that spawn with an engine directly (no
    reactor): after every test the fd set is unchanged and no child is
    left.  (The reactor tests get more checks from L{tests.builders}.)
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from typing import Any, ClassVar

__all__ = [
    "HygieneMixin",
    "childrenOf",
    "describeDescendants",
    "isLive",
    "openFDs",
    "peekWakeupFD",
]


def openFDs() -> set[int]:
    """
    The fds open in this process.

    C{listdir} opens the directory itself; that fd is closed again when it
    returns, so keeping only the numbers that are still valid drops it.
    """
    listed = {int(name) for name in os.listdir("/proc/self/fd")}
    return {fd for fd in listed if _isOpen(fd)}


def _isOpen(fd: int) -> bool:
    """
    Whether C{fd} is open in this process.
    """
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def childrenOf(pid: int) -> dict[int, str]:
    """
    The children of C{pid}, live or zombie, from C{/proc}.

    Every process whose parent is C{pid} is found (children of any of its
    threads included: their parent is the thread group), by scanning
    C{/proc} rather than trusting C{/proc/PID/task/*/children}, which the
    kernel documents as unreliable while children come and go.

    @return: child pid to its one-letter state (C{"Z"} for a zombie): use
        C{set(childrenOf(pid))} for the pids alone.
    """
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after
        # the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[1]) == pid:
            found[int(name)] = fields[0].decode("ascii")
    return found


def isLive(pid: int) -> bool:
    """
    Whether C{pid} is a live process: it exists and is not a zombie (a
    zombie waiting for a parent to reap it has exited).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


#: The lines of C{/proc/PID/status} that say why a process has not ended:
#: its state and what it blocks, has pending, ignores and catches.
_STATUS_FIELDS = (
    b"State",
    b"NSpid",
    b"SigBlk",
    b"SigPnd",
    b"ShdPnd",
    b"SigIgn",
    b"SigCgt",
)


def describeDescendants(pid: int) -> list[str]:
    """
    Every descendant of C{pid} (depth first), one line each: pid, command
    line, and the status fields that say why it is still there, plus the
    kernel function it sleeps in.

    For the message of a test whose reactor did not stop: a hang that
    happens once in many runs can only be explained by what it leaves
    behind at the moment it is seen.
    """
    lines: list[str] = []
    pending = [(child, 1) for child in sorted(childrenOf(pid))]
    while pending:
        child, depth = pending.pop(0)
        lines.append("  " * depth + _describeProcess(child))
        pending[:0] = [(grand, depth + 1) for grand in sorted(childrenOf(child))]
    return lines


def _describeProcess(pid: int) -> str:
    """
    One line on C{pid}: see L{describeDescendants}.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read().splitlines()
        with open(f"/proc/{pid}/wchan", "rb") as f:
            wchan = f.read()
    except OSError as e:
        return f"{pid}: gone ({e.strerror})"
    fields = [
        line.replace(b"\t", b" ").decode("ascii", "replace")
        for line in status
        if line.split(b":", 1)[0] in _STATUS_FIELDS
    ]
    command = b" ".join(argv).strip()[:80].decode("utf-8", "replace")
    return f"{pid} [{command}] {'; '.join(fields)}; wchan {wchan.decode()}"


def peekWakeupFD() -> int:
    """
    The current signal wakeup fd, without changing it (reading it is only
    possible by setting it and putting it back).
    """
    old = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(old)
    return old


class HygieneMixin:
    """
    Checks, after every test, that no fd leaked and no child is left; and
    cleaned-up fds, pipes and a temporary directory for the test.

    Mixed into a L{twisted.trial.unittest.SynchronousTestCase}; the test
    case calls L{setUpHygiene} from C{setUp}.

    @ivar tmp: A world-writable temporary directory, removed after the test
        (children running as nobody write reports there).
    @ivar childrenBefore: The children that existed when the test started.
    """

    #: The prefix of L{tmp}'s name.
    tmpPrefix: ClassVar[str] = "txspawn-test-"

    def setUpHygiene(self: Any) -> None:
        """
        Record the fds and children now, and check them after the test.
        """
        before = openFDs()
        # Children that exist already (say, orphans of an earlier test's
        # reactor, about to be reaped in the background) are not this
        # test's business; any child it creates and leaves behind is.
        self.childrenBefore = set(childrenOf(os.getpid()))
        tmp = tempfile.mkdtemp(prefix=self.tmpPrefix)
        # World-writable: children running as nobody write reports here.
        os.chmod(tmp, 0o777)
        self.tmp = tmp

        def check() -> None:
            shutil.rmtree(tmp, ignore_errors=True)
            self.assertEqual(openFDs(), before, "fd set changed")
            self.assertNoNewChildren("child left behind")

        self.addCleanup(check)

    def assertNoNewChildren(self: Any, message: str = "child left behind") -> None:
        """
        Assert that every child (alive or zombie) of this process existed
        already when the test started.
        """
        left = sorted(set(childrenOf(os.getpid())) - self.childrenBefore)
        self.assertEqual(left, [], message)

    def devnull(self: Any) -> int:
        """
        A close-on-exec fd of C{/dev/null}, closed after the test.
        """
        fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, fd)
        return fd

    def pipe(self: Any) -> tuple[int, int]:
        """
        A pipe (read end, write end), both closed after the test.
        """
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        return r, w

    def tmpFile(self: Any, name: str, mode: int = 0o644) -> int:
        """
        A close-on-exec fd of the file C{name} in L{tmp} (created when
        missing), closed after the test.
        """
        fd = os.open(
            os.path.join(self.tmp, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode
        )
        self.addCleanup(os.close, fd)
        return fd

    def ignoreSignal(self: Any, signum: int) -> None:
        """
        Ignore C{signum} in this process for the rest of the test.
        """
        old = signal.signal(signum, signal.SIG_IGN)
        self.addCleanup(signal.signal, signum, old)
