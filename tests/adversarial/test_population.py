"""
Population: thousands of children alive at once on one reactor, then all
ending in the same reactor turn (issue 11, item 6).

Each child is a shell blocked in C{read} on its stdin: half of them on a
pipe of their own (C{childFDs} C{"w"}), half on one pipe they all share.
Once every one of them is alive (counted in C{/proc}, not only in
txspawn's own table), one reactor turn ends them all: a quarter are sent
C{SIGKILL} and a quarter C{SIGTERM} through C{transport.signalProcess},
then the others get end-of-file on their stdin (C{closeStdin}, and one
close of the shared pipe's write end) and exit with their own code.  The
monitor then sees a storm of exits.  Every child must end exactly once
with its own status, none may stay a zombie, and the parent's fds must
come back to what they were.

L{tests.test_stress} is the other half: children come and go there with
about a thousand alive, so it measures the steady state; this module puts
the whole population up first and takes it down at once, at ten times the
size in the long form.

Sizes (L{tests.adversarial.scaled}): a few hundred children in the default
suite, 10,000 (the adversarial run's figure) with C{TXSPAWN_ADVERSARIAL=1}.
The long form needs about 15,000 fds (see L{SHARED_EVERY}); the test
raises C{RLIMIT_NOFILE} for itself and puts it back afterwards, and skips,
saying why, where the limit cannot be raised that far or where the
kernel's pid space is too small.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from typing import Any

from twisted.internet.error import (
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest

from tests.adversarial import scaled
from tests.builders import MixinBase, makeTestCaseClasses
from tests.hygiene import childrenOf, openFDs

#: Children alive at once.  Short form: a few hundred, enough for every
#: kind of ending to occur dozens of times and for the exits to overlap,
#: cheap enough (well under a second per engine x monitor) for the default
#: suite.  Long form: the adversarial run's 10,000, below the default
#: pid_max of 32,768 with room for the rest of the machine; 10,000 idle
#: shells take about 2.6 GB of the machine's memory (kernel structures,
#: page tables, the shell's private pages), the parent under 100 MB.
POPULATION = scaled(300, 10_000)

#: The most fds the parent may hold per live child with its own stdin
#: pipe: the pipe's write end and the child's pidfd (the pidfd monitor
#: watches it; both engines open one whatever the monitor, and signals go
#: through it).  Stdout and stderr go to one /dev/null fd that every child
#: shares, so they cost nothing per child.
FDS_PER_PIPED_CHILD = 2

#: The most fds the parent may hold per live child reading the shared
#: stdin pipe: its pidfd.
FDS_PER_SHARED_CHILD = 1

#: Every other child reads a pipe shared by all such children instead of
#: its own.  The long form needs this: 10,000 children with a pipe each
#: would need 20,000 fds, and the hard RLIMIT_NOFILE is commonly 20,000
#: (here and in CI), which even root cannot raise without
#: CAP_SYS_RESOURCE (a container drops it).  Half and half needs about
#: 15,000 and keeps both ways of ending a child's stdin at full scale.
SHARED_EVERY = 2

#: Fds beyond the population's that the run may need at its peak: the
#: reactor's own (epoll, waker, the SIGCHLD wakeup pipe), a spawn's
#: transient error pipe and pipe pair, C{/proc} listings, and the test
#: runner's.  Generous: it only sizes the limit, nothing is asserted on it.
FD_SLACK = 256

#: Pids the kernel never hands out (RESERVED_PIDS in kernel/pid.c), and a
#: margin for processes other users start while the test runs.
RESERVED_PIDS = 300
PID_MARGIN = 1000

_log = Logger()


def _expected(index: int) -> tuple[int | None, int | None]:
    """
    How child C{index} is to end.

    @return: C{(exitCode, None)} for a child released by end-of-file on its
        stdin, C{(None, signal)} for one killed by that signal.  Exit codes
        cycle through 0-255, so some children end with L{ProcessDone}.
        Children on their own pipe and on the shared one (L{SHARED_EVERY})
        get the same mix.
    """
    cycle, kind = divmod(index // SHARED_EVERY, 4)
    if kind == 2:
        return None, signal.SIGKILL
    if kind == 3:
        return None, signal.SIGTERM
    return (2 * cycle + kind) % 256, None


class _Child(ProcessProtocol):
    """
    One blocked child and what happened to it.

    @ivar shared: Whether it reads the shared stdin pipe (else its own).
    @ivar reasons: Every C{processEnded} reason, in order (one, if all is
        well).
    """

    def __init__(self, population: _Population, index: int) -> None:
        self.population = population
        self.index = index
        self.shared = index % SHARED_EVERY == SHARED_EVERY - 1
        self.exitCode, self.signal = _expected(index)
        self.reasons: list[Failure] = []
        self.pid: int | None = None

    def spawn(self, reactor: Any, devnull: int, sharedStdin: int) -> None:
        """
        Start the child: a shell that waits for a line or end-of-file on
        its stdin, then exits with its code.
        """
        # A child to be killed gets "exit 0", which it never reaches.
        transport = reactor.spawnProcess(
            self,
            "/bin/sh",
            ["sh", "-c", f"read x; exit {self.exitCode or 0}"],
            childFDs={
                0: sharedStdin if self.shared else "w",
                1: devnull,
                2: devnull,
            },
        )
        self.pid = transport.pid

    def signalIt(self) -> None:
        """
        Send the child its signal, if it is to be killed.

        Its stdin is left open: the transport must notice on its own that
        the child's end of its pipe went away with it.
        """
        if self.signal is not None:
            self.transport.signalProcess(self.signal)  # type: ignore[union-attr]

    def closeStdin(self) -> None:
        """
        Close the child's own stdin pipe, if it is to exit with its code.
        """
        if self.signal is None and not self.shared:
            self.transport.closeStdin()  # type: ignore[union-attr]

    def processEnded(self, reason: Failure) -> None:
        self.reasons.append(reason)
        self.population.ended(self)

    def problem(self) -> str | None:
        """
        @return: What is wrong with how this child ended, or C{None}.
        """
        if len(self.reasons) != 1:
            return f"processEnded called {len(self.reasons)} times"
        pid = self.transport.pid  # type: ignore[union-attr]
        if pid is not None:
            return f"transport.pid is {pid} after processEnded"
        value: Any = self.reasons[0].value
        status = value.status
        if self.signal is not None:
            if not (
                isinstance(value, ProcessTerminated)
                and value.signal == self.signal
                and value.exitCode is None
                and os.WIFSIGNALED(status)
                and os.WTERMSIG(status) == self.signal
            ):
                return f"expected signal {self.signal}, got {value!r}"
        elif self.exitCode == 0:
            if not (isinstance(value, ProcessDone) and status == 0):
                return f"expected ProcessDone, got {value!r}"
        elif not (
            isinstance(value, ProcessTerminated)
            and value.exitCode == self.exitCode
            and value.signal is None
            and os.WIFEXITED(status)
            and os.WEXITSTATUS(status) == self.exitCode
        ):
            return f"expected exit {self.exitCode}, got {value!r}"
        return None


class _Population:
    """
    Spawns L{POPULATION} children, counts them while all are alive, ends
    them all in one turn and stops the reactor when every one has ended.

    @ivar children: The children spawned, in order.
    @ivar endedIndices: The children that got C{processEnded}, by index.
    @ivar fdsBeforeSpawn: The parent's open fds just before the first spawn.
    @ivar aliveInProc: How many of our children C{/proc} showed alive (not
        zombies) once all were spawned.
    @ivar watched: How many children the monitor watched then.
    @ivar peakFDs: The parent's open fds then.
    @ivar times: Seconds taken by each phase, for the log.
    """

    def __init__(self, reactor: Any, devnull: int) -> None:
        self.reactor = reactor
        self.devnull = devnull
        self.children: list[_Child] = []
        self.endedIndices: set[int] = set()
        self.target = POPULATION
        self.stopped = False
        self.sharedRelease = -1
        self.fdsBeforeSpawn = 0
        self.aliveInProc = 0
        self.watched = 0
        self.peakFDs = 0
        self.times: dict[str, float] = {}
        self.released = 0.0

    def start(self) -> None:
        """
        Spawn everyone, count them, end them all.
        """
        started = time.monotonic()
        # The parent's ends are close-on-exec: only the children's fd 0
        # (dup2'd by the engine) survives their exec.
        sharedStdin, self.sharedRelease = os.pipe()
        # Counted here, in the running reactor (the SIGCHLD monitor's wakeup
        # pipe only exists while it runs) and with the shared pipe open.
        self.fdsBeforeSpawn = len(openFDs())
        try:
            for index in range(POPULATION):
                child = _Child(self, index)
                child.spawn(self.reactor, self.devnull, sharedStdin)
                self.children.append(child)
        finally:
            os.close(sharedStdin)
        spawned = time.monotonic()
        self.times["spawn"] = spawned - started
        self.census()
        # Everyone in one turn, so nothing is reaped before the last child
        # has been told to go and the monitor faces the whole storm.
        # Signals first: a fatal signal is acted on as it is sent, so a
        # child killed before its stdin ends cannot exit with its code.
        self.released = time.monotonic()
        self.times["census"] = self.released - spawned
        for child in self.children:
            child.signalIt()
        for child in self.children:
            child.closeStdin()
        self._closeSharedRelease()

    def abort(self) -> None:
        """
        L{start} failed: kill every child it spawned and stop once each has
        ended, so that the failure is reported alone, without a trail of
        children and fds behind it.
        """
        self._closeSharedRelease()
        self.target = len(self.children)
        for child in self.children:
            try:
                child.transport.signalProcess("KILL")  # type: ignore[union-attr]
            except ProcessExitedAlready:
                pass
        self._maybeStop()

    def _closeSharedRelease(self) -> None:
        if self.sharedRelease != -1:
            fd, self.sharedRelease = self.sharedRelease, -1
            os.close(fd)

    def census(self) -> None:
        """
        Count the population while all of it is up.
        """
        ours = {child.pid for child in self.children}
        self.aliveInProc = sum(
            1
            for pid, state in childrenOf(os.getpid()).items()
            if pid in ours and state != "Z"
        )
        self.watched = len(self.reactor.childMonitor.watching())
        self.peakFDs = len(openFDs())

    def ended(self, child: _Child) -> None:
        # A child ended twice is counted once: the reactor must still run
        # until every child has ended, and the child reports the repeat.
        self.endedIndices.add(child.index)
        self._maybeStop()

    def _maybeStop(self) -> None:
        if len(self.endedIndices) == self.target and not self.stopped:
            self.stopped = True
            self.times["storm"] = time.monotonic() - self.released
            self.reactor.stop()

    def fdBudget(self) -> int:
        """
        @return: The most fds the population may hold while all are alive.
        """
        shared = sum(1 for child in self.children if child.shared)
        return (
            shared * FDS_PER_SHARED_CHILD
            + (len(self.children) - shared) * FDS_PER_PIPED_CHILD
        )


def _raiseFDLimit(test: Any, needed: int) -> None:
    """
    Make sure C{RLIMIT_NOFILE} allows C{needed} fds for the rest of the
    test, raising it (the hard limit too, where this process may) and
    putting it back after.

    @raise SkipTest: The limit cannot be raised that far.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError) as e:
        # Raising the hard limit needs CAP_SYS_RESOURCE, which root in a
        # container usually lacks; fs.nr_open caps it for everyone.
        with open("/proc/sys/fs/nr_open") as f:
            nrOpen = f.read().strip()
        raise SkipTest(
            f"{POPULATION} children need {needed} fds, RLIMIT_NOFILE is "
            f"{soft}/{hard} (soft/hard) and cannot be raised ({e}): raising "
            f"the hard limit needs CAP_SYS_RESOURCE, up to fs.nr_open = "
            f"{nrOpen}"
        ) from None
    test.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))


def _checkPidSpace() -> None:
    """
    @raise SkipTest: The kernel or the limits cannot hold L{POPULATION}
        more processes now.
    """
    with open("/proc/sys/kernel/pid_max") as f:
        pidMax = int(f.read())
    with open("/proc/sys/kernel/threads-max") as f:
        threadsMax = int(f.read())
    # The fourth field of loadavg is "runnable/total" scheduling entities:
    # every thread of every process, each holding a pid.
    with open("/proc/loadavg") as f:
        tasks = int(f.read().split()[3].split("/")[1])
    wanted = tasks + POPULATION + PID_MARGIN
    if wanted > pidMax - RESERVED_PIDS:
        raise SkipTest(
            f"{POPULATION} more processes do not fit in kernel.pid_max = "
            f"{pidMax} ({tasks} tasks exist, {RESERVED_PIDS} pids are "
            f"reserved, {PID_MARGIN} kept for others)"
        )
    if wanted > threadsMax:
        raise SkipTest(
            f"{POPULATION} more processes do not fit in kernel.threads-max = "
            f"{threadsMax} ({tasks} tasks exist, {PID_MARGIN} kept for others)"
        )
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    # Root is exempt from RLIMIT_NPROC (kernel/fork.c); others count every
    # task of their uid, which "tasks" bounds from above.
    if os.getuid() != 0 and soft != resource.RLIM_INFINITY and soft < wanted:
        raise SkipTest(
            f"{POPULATION} more processes may exceed RLIMIT_NPROC = {soft} "
            f"({tasks} tasks exist, {PID_MARGIN} kept for others)"
        )


def _fdsNeeded() -> int:
    """
    @return: The fds the test needs at its peak (see L{SHARED_EVERY}).
    """
    shared = POPULATION // SHARED_EVERY
    return (
        len(openFDs())
        + shared * FDS_PER_SHARED_CHILD
        + (POPULATION - shared) * FDS_PER_PIPED_CHILD
        + FD_SLACK
    )


class PopulationMixin(MixinBase):
    """
    A whole population of children alive at once, then ending at once.
    """

    def test_allAliveThenAllEnd(self) -> None:
        """
        L{POPULATION} children are all alive at once (in C{/proc} and in the
        monitor's table), the parent holding at most L{FDS_PER_PIPED_CHILD}
        or L{FDS_PER_SHARED_CHILD} fds for each; ended in one reactor turn
        (exit codes 0-255, C{SIGKILL}, C{SIGTERM}), each gets
        C{processEnded} exactly once with its own status, no child is left
        (alive or zombie) and the parent's fds are what they were before.
        """
        _checkPidSpace()
        _raiseFDLimit(self, _fdsNeeded())
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, devnull)
        reactor = self.buildReactor()
        population = _Population(reactor, devnull)

        def start() -> None:
            try:
                population.start()
            except BaseException:
                population.abort()
                raise

        baseline = openFDs()
        reactor.callWhenRunning(start)
        started = time.monotonic()
        # A hang fails, slowness does not.  The long form takes 10-20 s per
        # engine x monitor on an idle two-core machine; on one loaded by
        # other work the Python engine took two minutes, as each of its
        # spawns copies and closes the parent's whole fd table (up to
        # 15,000 fds here; the C engine does not: docs/design/engines.rst,
        # "Slot mode").  Ten minutes leave room for both.
        self.runReactor(reactor, scaled(60, 600))
        population.times["total"] = time.monotonic() - started

        self.assertEqual(
            (population.aliveInProc, population.watched),
            (POPULATION, POPULATION),
            "not all children were alive at once (in /proc, in the monitor)",
        )
        self.assertLessEqual(
            population.peakFDs - population.fdsBeforeSpawn,
            population.fdBudget(),
            "the parent held more fds per live child than its pipe and pidfd",
        )
        self.assertEqual(len(population.endedIndices), POPULATION)
        problems = [
            f"child {child.index}: {problem}"
            for child in population.children
            if (problem := child.problem()) is not None
        ]
        self.assertEqual(
            problems[:10], [], f"{len(problems)} of {POPULATION} children wrong"
        )
        self.assertEqual(reactor.childMonitor.watching(), [])
        self.assertNoNewChildren("children left behind (alive or zombie)")
        self.assertEqual(openFDs() - baseline, set(), "fds left open")
        self.assertEqual(baseline - openFDs(), set(), "fds closed not ours")
        _log.info(
            "population {engine}/{monitor}: {n} children; spawn {spawn:.2f}s, "
            "census {census:.2f}s, storm {storm:.2f}s, total {total:.2f}s; "
            "fds {baseFDs} -> {spawnFDs} -> {peakFDs}; parent VmHWM {hwm}",
            engine=self.engineName,
            monitor=self.monitorName,
            n=POPULATION,
            baseFDs=len(baseline),
            spawnFDs=population.fdsBeforeSpawn,
            peakFDs=population.peakFDs,
            hwm=_vmHWM(),
            **population.times,
        )


def _vmHWM() -> str:
    """
    @return: The parent's peak resident set size, as C{/proc} gives it.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return line.split(":", 1)[1].strip()
    return "?"


globals().update(makeTestCaseClasses(PopulationMixin))
