# -*- test-case-name: tests.test_timeouts -*-
"""
The spawn options that govern a child's lifetime from the parent's side:
how long it may run, how long it gets to die, and how long its pipes are
kept open after it exited.

They are not L{txspawn.options.SpawnOptions}: those describe the child's
world and go to the engine; these only arm timers on the transport.
L{splitLifetimeOptions} takes them out of C{spawnProcess}'s keyword
options and validates them before anything is opened or started.

A command that is pid 1 of its own pid namespace
(C{Namespaces(pid=True, pidInit=False)}) ignores every signal it has no
handler for: the kernel drops them, C{SIGTERM} included, whoever sends them
(only C{SIGKILL} and C{SIGSTOP} from outside the namespace get through).
Waiting C{killAfter} seconds after a C{SIGTERM} that was dropped would only
delay the end, so L{terminationGrace} makes the termination go to
C{SIGKILL} at once for such a child: the transport's C{terminate}, hence
the C{timeout} option and the timeouts of L{txspawn.run} and
L{txspawn.stream}, asks it for the grace period to give.  A command that
does handle C{SIGTERM} (or blocks it, to take it with C{sigwaitinfo}, as
an init does) keeps its grace period; so does the default, txspawn's own
init, which forwards C{SIGTERM} to the command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from txspawn._kernel.childhandle import ChildProcess
from txspawn._transport.groupkill import checkSeconds

__all__ = [
    "DEFAULT_KILL_AFTER",
    "LIFETIME_OPTIONS",
    "NO_LIFETIME",
    "LifetimeOptions",
    "sigtermDropped",
    "splitLifetimeOptions",
    "terminationGrace",
]

#: The grace period between C{SIGTERM} and C{SIGKILL} when none is given.
DEFAULT_KILL_AFTER = 5.0

#: The keyword options L{splitLifetimeOptions} takes.
LIFETIME_OPTIONS = ("timeout", "killAfter", "closePipesAfterExit")


@frozen
class LifetimeOptions:
    """
    Timers for one child.

    @ivar timeout: Seconds the child may run before it is terminated
        (C{SIGTERM}, then C{SIGKILL} C{killAfter} seconds later, to the
        process group it leads, if any); C{None}: no limit.
    @ivar killAfter: The grace period of a timeout's termination (none for
        a child that is pid 1 of its pid namespace and would drop the
        C{SIGTERM}: see L{terminationGrace}).
    @ivar closePipesAfterExit: Seconds after the child exited at which the
        parent closes its pipe ends even if the child's descendants still
        hold theirs, so that C{processEnded} comes; C{None} (the default):
        wait for every pipe to close, as Twisted does.
    """

    timeout: float | None = None
    killAfter: float = DEFAULT_KILL_AFTER
    closePipesAfterExit: float | None = None

    @property
    def armsTimers(self) -> bool:
        """
        Whether any timer has to be armed.
        """
        return self.timeout is not None or self.closePipesAfterExit is not None


#: The timers of a spawn that asks for none.
NO_LIFETIME = LifetimeOptions()


def splitLifetimeOptions(
    options: Mapping[str, Any],
) -> tuple[LifetimeOptions, dict[str, Any]]:
    """
    Take the lifetime options out of C{spawnProcess}'s keyword options.

    @param options: Every txspawn keyword option given to C{spawnProcess}.
    @return: The validated L{LifetimeOptions}, and the other options.
    @raise TypeError: if a value is not a number of seconds.
    @raise ValueError: for a negative, infinite or NaN value, a zero
        C{timeout}, or C{killAfter} without C{timeout}.
    """
    if not options:
        # The common case: no option at all (the result is immutable).
        return NO_LIFETIME, {}
    rest = {k: v for k, v in options.items() if k not in LIFETIME_OPTIONS}
    timeout = options.get("timeout")
    killAfter = options.get("killAfter")
    closeAfter = options.get("closePipesAfterExit")
    if timeout is not None:
        timeout = checkSeconds(timeout, "timeout", positive=True)
    if killAfter is not None:
        if timeout is None:
            raise ValueError(
                "killAfter is the grace period of a timeout: give timeout too "
                "(or call transport.terminate(killAfter))"
            )
        killAfter = checkSeconds(killAfter, "killAfter")
    if closeAfter is not None:
        closeAfter = checkSeconds(closeAfter, "closePipesAfterExit")
    return (
        LifetimeOptions(
            timeout=timeout,
            killAfter=DEFAULT_KILL_AFTER if killAfter is None else killAfter,
            closePipesAfterExit=closeAfter,
        ),
        rest,
    )


#: The bit of C{SIGTERM} (15) in C{/proc/PID/status}'s signal masks.
_SIGTERM_BIT = 1 << (15 - 1)


def _unhandledPid1(pid: int) -> bool:
    """
    Whether C{/proc/PID/status} says C{pid} is pid 1 of its pid namespace
    (the last field of C{NSpid}) and neither catches (C{SigCgt}) nor blocks
    (C{SigBlk}) C{SIGTERM}; C{False} when it cannot be told.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except OSError:
        return False
    fields: dict[bytes, bytes] = {}
    for line in status.splitlines():
        name, _, value = line.partition(b":")
        fields[name] = value.strip()
    nspid = fields.get(b"NSpid", b"").split()
    if not nspid or nspid[-1] != b"1":
        return False
    try:
        handled = int(fields[b"SigCgt"], 16) | int(fields[b"SigBlk"], 16)
    except (KeyError, ValueError):
        return False
    return not handled & _SIGTERM_BIT


def _inSigwait(pid: int) -> bool:
    """
    Whether C{pid} waits in C{sigwaitinfo}/C{sigtimedwait} (its wait
    channel), as far as C{/proc} tells.
    """
    try:
        with open(f"/proc/{pid}/wchan", "rb") as f:
            return b"sigtimedwait" in f.read()
    except OSError:
        return False


def sigtermDropped(pid: int) -> bool:
    """
    Whether the kernel would drop a C{SIGTERM} sent to C{pid} now: the
    process is pid 1 of its pid namespace and neither catches C{SIGTERM},
    nor blocks it (a blocked signal is kept), nor waits for signals in
    C{sigwaitinfo}/C{sigtimedwait} as an init does (while it waits, the
    kernel shows the signals it waits for as unblocked, though it keeps
    them).

    C{/proc} is read three times (status, wait channel, status): an init
    between two waits shows C{SIGTERM} blocked, one in a wait shows its
    wait channel, and only one that left and entered its wait again
    between the reads could look like neither.

    @param pid: A process, in this process's pid namespace, that cannot
        have been reaped (an unreaped child of ours).
    @return: C{False} when that cannot be told (no such file, a kernel
        before 4.1 without C{NSpid}).
    """
    return _unhandledPid1(pid) and not _inSigwait(pid) and _unhandledPid1(pid)


def terminationGrace(child: ChildProcess, killAfter: float) -> float:
    """
    The grace period to give between C{SIGTERM} and C{SIGKILL} when
    terminating C{child}: C{killAfter}, or C{0} when the C{SIGTERM} would
    be dropped (L{sigtermDropped}: the child is pid 1 of its pid namespace,
    the command itself, and has no handler for it), so that the C{SIGKILL}
    comes at once instead of after a wait that cannot end any sooner.

    @param child: The child, unreaped.
    @param killAfter: The grace period asked for (validated).
    """
    if killAfter and not child.reaped and sigtermDropped(child.pid):
        return 0.0
    return killAfter
