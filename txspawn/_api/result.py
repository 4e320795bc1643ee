# -*- test-case-name: tests.test_run -*-
"""
How a child ran, as L{txspawn.run} and L{txspawn.stream} report it: the
frozen L{ProcessResult}, and the errors that carry one (L{ProcessFailed},
L{ProcessTimedOut}).
"""

from __future__ import annotations

import os
import resource
import shlex
import signal as _signal
from collections.abc import Sequence

from attrs import field, frozen

from txspawn.options import CgroupStats

__all__ = [
    "ProcessFailed",
    "ProcessResult",
    "ProcessTimedOut",
    "describeArgv",
]

# How long a command line in a message may be.
_ARGV_MAX = 200
# How much of stderr a ProcessFailed message quotes.
_STDERR_TAIL = 2000


def describeArgv(argv: Sequence[str | bytes]) -> str:
    """
    The command line as a shell would quote it, cut short when long (an
    inline script, say) so that messages stay readable.

    @param argv: The command line.
    @return: The quoted text, at most 200 characters long.
    """
    text = shlex.join(os.fsdecode(arg) for arg in argv)
    if len(text) > _ARGV_MAX:
        text = text[: _ARGV_MAX - 3] + "..."
    return text


@frozen
class ProcessResult:
    """
    How a child ran: what it printed, how it ended, what it cost.

    @ivar argv: The command line, as given.
    @ivar pid: The child's pid, as it was started (the transport's
        C{spawnedPid}); it may belong to another process by now.
    @ivar exitCode: The exit code, or C{None} if the child died of a signal
        or its status is unknown.
    @ivar signal: The signal that killed the child, or C{None}.
    @ivar status: The raw classic wait status (C{os.WIFSIGNALED(status)}
        works), or C{None} if unknown (someone else reaped the child).
    @ivar stdout: Everything the child wrote to stdout (empty when the output
        was streamed instead, see L{txspawn.stream}).
    @ivar stderr: Everything the child wrote to stderr (idem).
    @ivar rusage: The child's C{resource.struct_rusage} from C{wait4}, when
        the reactor reports it (txspawn's reactors do; stock Twisted's do
        not: then C{None}).  It covers the child and the descendants it
        waited for.  Its C{ru_maxrss} is I{not} the child's own peak
        memory: a child started with C{CLONE_VM} (the C engine,
        C{posix_spawn}) reports at least the parent's peak RSS up to the
        spawn, a forked one about the private memory the parent had
        resident; only when the child's own peak after C{execve} is larger
        is that what it reports.  See
        L{IManagedProcessTransport.rusage
        <txspawn.interfaces.IManagedProcessTransport.rusage>}.
    @ivar duration: Seconds from the spawn to the child's exit, measured
        with the reactor's clock (C{reactor.seconds()}).
    @ivar logError: When the output was teed to a log file and writing it
        failed: the first error (the log is incomplete; the output here is
        not).  Else C{None}.
    @ivar cgroup: What the child's own cgroup said when the child ended
        (L{txspawn.options.CgroupStats}: CPU time, peak memory, whether the
        kernel killed it for memory, ...), when it was spawned with
        C{cgroup=}; else C{None}.
    @ivar cgroupUnavailable: When the child was spawned with
        C{cgroup=Cgroup(required=False)} and ran without a cgroup: why
        (the same text the transport's C{cgroupUnavailable} has).  Else
        C{None}.

    @since: txspawn 0.1
    """

    argv: tuple[str | bytes, ...]
    pid: int | None
    exitCode: int | None
    signal: int | None
    status: int | None
    stdout: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    stderr: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    rusage: resource.struct_rusage | None = field(repr=False)
    duration: float
    logError: BaseException | None = None
    cgroup: CgroupStats | None = None
    cgroupUnavailable: str | None = None

    @property
    def succeeded(self) -> bool:
        """
        Whether the child exited with code 0.
        """
        return self.exitCode == 0

    def check(self) -> ProcessResult:
        """
        Raise if the child did not succeed (rsyscall's C{check()}).

        @return: C{self}, when L{succeeded}.
        @raise ProcessFailed: otherwise.
        """
        if not self.succeeded:
            raise ProcessFailed(self)
        return self

    def describeEnd(self) -> str:
        """
        How the child ended, in words: C{"exited with code 3"}, C{"was killed
        by SIGKILL"}, C{"ended with an unknown status"}.
        """
        if self.exitCode is not None:
            return f"exited with code {self.exitCode}"
        if self.signal is not None:
            try:
                name = _signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            core = ""
            if self.status is not None and os.WCOREDUMP(self.status):
                core = " (core dumped)"
            return f"was killed by {name}{core}"
        return "ended with an unknown status (someone else reaped it)"


class ProcessFailed(Exception):
    """
    The child did not exit with code 0 (raised for C{run(..., check=True)}
    and by L{ProcessResult.check}).

    @ivar result: The L{ProcessResult}, output included.

    @since: txspawn 0.1
    """

    def __init__(self, result: ProcessResult) -> None:
        super().__init__(result)
        self.result = result

    def __str__(self) -> str:
        message = f"{describeArgv(self.result.argv)} {self.result.describeEnd()}"
        tail = self.result.stderr[-_STDERR_TAIL:].decode("utf-8", "replace")
        if tail.strip():
            message += f"; stderr ends with:\n{tail}"
        return message


class ProcessTimedOut(ProcessFailed):
    """
    The child did not end within the timeout; it was sent C{SIGTERM}, then
    C{SIGKILL} after the grace period.  Raised whatever C{check} says.

    @ivar result: The partial L{ProcessResult}: the output received before
        the child ended, and how it ended (usually killed by a signal).
    @ivar timeout: The timeout, in seconds.

    @since: txspawn 0.1
    """

    def __init__(self, result: ProcessResult, timeout: float) -> None:
        super().__init__(result)
        self.timeout = timeout

    def __str__(self) -> str:
        return (
            f"{describeArgv(self.result.argv)} timed out after "
            f"{self.timeout:g} s and {self.result.describeEnd()}"
        )
