# -*- test-case-name: tests.test_supervise_program -*-
"""
Tests for L{txspawn.supervise.program}: one program's state machine, driven
by L{txspawn.testing.MemoryProcessReactor} and its clock (the test plays
the child), and a few runs with real children on txspawn's reactor (both
engines x both monitors).
"""

from __future__ import annotations

import errno
import signal
import sys

from attrs import define, field
from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.builders import MixinBase, makeTestCaseClasses
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.options import Cgroup, SpawnOptions
from txspawn.supervise.backoff import Backoff
from txspawn.supervise.program import ProgramProcess, ProgramSpawn, Restart
from txspawn.supervise.states import (
    IProgramObserver,
    IReadinessCheck,
    ProgramState,
    ReadyAfter,
)
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor

S = ProgramState


@implementer(IProgramObserver)
@define
class Transitions:
    """
    Records every transition: C{(old, new, why)}.
    """

    seen: list[tuple[ProgramState, ProgramState, str]] = field(factory=list)

    def transition(
        self, program: object, old: ProgramState, new: ProgramState, why: str
    ) -> None:
        self.seen.append((old, new, why))

    def states(self) -> list[ProgramState]:
        """
        The states entered, in order.
        """
        return [new for _, new, _ in self.seen]


def makeProgram(
    reactor: MemoryProcessReactor, **kwargs: object
) -> tuple[ProgramProcess, Transitions]:
    """
    A program of C{reactor} running C{worker --flag}, with an observer.
    """
    program = ProgramProcess(
        "worker",
        reactor,
        ProgramSpawn(["worker", "--flag"]),
        **kwargs,  # type: ignore[arg-type]
    )
    observer = Transitions()
    program.addObserver(observer)
    return program, observer


def lastTransport(reactor: MemoryProcessReactor) -> FakeProcessTransport:
    return reactor.transports[-1]


def pendingDelays(reactor: MemoryProcessReactor) -> list[float]:
    """
    How far in the future each pending delayed call is.
    """
    now = reactor.seconds()
    return sorted(call.getTime() - now for call in reactor.getDelayedCalls())


class StartTests(SynchronousTestCase):
    """
    Starting: STOPPED -> STARTING -> RUNNING.
    """

    def test_startThenReady(self) -> None:
        """
        C{start()} spawns the command (stdin closed at once) and the
        program is STARTING; one second later (the default readiness) it
        is RUNNING, with the child's pid, its spawn time and its uptime.
        """
        reactor = MemoryProcessReactor()
        reactor.advance(100)
        program, observer = makeProgram(reactor)
        self.assertIs(program.state, S.STOPPED)
        program.start()
        self.assertEqual(program.state, S.STARTING)
        [spawned] = reactor.spawned
        self.assertEqual(
            (spawned.executable, spawned.args), ("worker", ("worker", "--flag"))
        )
        self.assertEqual(spawned.transport.state.closedFDs, [0])
        self.assertEqual(program.pid, 1000)
        self.assertEqual(program.startedAt, 100)
        reactor.advance(1)
        self.assertEqual(program.state, S.RUNNING)
        self.assertEqual(program.uptime(), 1.0)
        self.assertEqual(
            observer.seen,
            [
                (S.STOPPED, S.STARTING, "start requested"),
                (S.STARTING, S.RUNNING, "ready"),
            ],
        )

    def test_spawnArguments(self) -> None:
        """
        The spawn description reaches C{spawnProcess}: env, path, uid, gid,
        childFDs, the non-default spawn options as keywords, and
        C{closePipesAfterExit}.
        """
        reactor = MemoryProcessReactor()
        spawn = ProgramSpawn(
            ["/bin/prog"],
            env={"A": "1"},
            path="/tmp",
            uid=123,
            gid=456,
            options=SpawnOptions(umask=0o27, processGroup=0),
            childFDs={0: "w", 1: "r"},
        )
        program = ProgramProcess("p", reactor, spawn, closePipesAfterExit=2.5)
        program.start()
        [spawned] = reactor.spawned
        self.assertEqual(
            (spawned.env, spawned.path, spawned.uid, spawned.gid, spawned.childFDs),
            ({"A": "1"}, "/tmp", 123, 456, {0: "w", 1: "r"}),
        )
        self.assertEqual(
            spawned.options,
            {"umask": 0o27, "processGroup": 0, "closePipesAfterExit": 2.5},
        )
        # childFDs given: the program leaves stdin to its owner.
        self.assertEqual(spawned.transport.state.closedFDs, [])

    def test_output(self) -> None:
        """
        The child's output goes to the C{output} callable.
        """
        reactor = MemoryProcessReactor()
        received: list[tuple[int, bytes]] = []
        program, _ = makeProgram(
            reactor, output=lambda fd, data: received.append((fd, data))
        )
        program.start()
        lastTransport(reactor).dataFromChild(1, b"hello")
        lastTransport(reactor).dataFromChild(2, b"oops")
        self.assertEqual(received, [(1, b"hello"), (2, b"oops")])

    def test_startWhileAlive(self) -> None:
        """
        C{start()} while STARTING or RUNNING does nothing.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor)
        program.start()
        program.start()
        reactor.advance(1)
        program.start()
        self.assertEqual(len(reactor.spawned), 1)
        self.assertEqual(observer.states(), [S.STARTING, S.RUNNING])

    def test_readyAtOnce(self) -> None:
        """
        C{ReadyAfter(clock, 0)}: RUNNING as soon as the child is spawned.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor, readiness=ReadyAfter(reactor, 0))
        program.start()
        self.assertEqual(observer.states(), [S.STARTING, S.RUNNING])

    def test_readyAfterProvides(self) -> None:
        """
        L{ReadyAfter} provides L{IReadinessCheck}; negative seconds are
        refused.
        """
        verifyObject(IReadinessCheck, ReadyAfter(MemoryProcessReactor()))
        self.assertRaises(ValueError, ReadyAfter, MemoryProcessReactor(), -1)

    def test_observerErrors(self) -> None:
        """
        An observer that raises is logged; the program and the other
        observers go on.
        """

        @implementer(IProgramObserver)
        class Broken:
            def transition(
                self, program: object, old: ProgramState, new: ProgramState, why: str
            ) -> None:
                raise ZeroDivisionError()

        reactor = MemoryProcessReactor()
        program = ProgramProcess("p", reactor, ProgramSpawn(["p"]))
        program.addObserver(Broken())
        observer = Transitions()
        program.addObserver(observer)
        program.start()
        reactor.advance(1)
        self.assertEqual(observer.states(), [S.STARTING, S.RUNNING])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        program.removeObserver(observer)
        self.assertRaises(ValueError, program.removeObserver, observer)


class BackoffTests(SynchronousTestCase):
    """
    Failed starts back off exactly, give up, and a stable run resets.
    """

    def test_exactSequence(self) -> None:
        """
        A child that exits at once (before it is ready) each time: BACKOFF
        after each exit, with delays 1, 2, 4, 8, 8, 8 on the clock; the
        next spawn comes exactly when the delay is over, not before.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(
            reactor,
            restart=Restart.ALWAYS,
            backoff=Backoff(initial=1, factor=2, max=8, giveUpAfter=None),
        )
        program.start()
        delays = []
        for attempt in range(1, 7):
            lastTransport(reactor).exit(1)
            self.assertEqual(program.state, S.BACKOFF)
            self.assertEqual(program.failures, attempt)
            [delay] = pendingDelays(reactor)
            delays.append(delay)
            reactor.advance(delay / 2)
            self.assertEqual(len(reactor.spawned), attempt)
            reactor.advance(delay / 2)
            self.assertEqual(len(reactor.spawned), attempt + 1)
            self.assertEqual(program.state, S.STARTING)
        self.assertEqual(delays, [1, 2, 4, 8, 8, 8])
        self.assertEqual(program.restarts, 6)
        self.assertEqual(
            observer.seen[:3],
            [
                (S.STOPPED, S.STARTING, "start requested"),
                (S.STARTING, S.BACKOFF, "exited with code 1 after 0.0 s"),
                (S.BACKOFF, S.STARTING, "backoff delay over"),
            ],
        )

    def test_giveUp(self) -> None:
        """
        With C{giveUpAfter=3}, the third failed start in a row is FATAL,
        with why; nothing is pending and nothing more is spawned.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(
            reactor, restart=Restart.ALWAYS, backoff=Backoff(giveUpAfter=3)
        )
        program.start()
        for _ in range(2):
            lastTransport(reactor).kill(signal.SIGSEGV)
            reactor.advance(pendingDelays(reactor)[0])
        lastTransport(reactor).kill(signal.SIGSEGV)
        self.assertEqual(program.state, S.FATAL)
        self.assertEqual(
            observer.seen[-1],
            (
                S.STARTING,
                S.FATAL,
                "killed by SIGSEGV after 0.0 s; gave up after 3 failures",
            ),
        )
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(len(reactor.spawned), 3)
        self.assertEqual(program.lastExit.signal, signal.SIGSEGV)  # type: ignore[union-attr]

    def test_startAfterFatal(self) -> None:
        """
        C{start()} from FATAL starts again with a fresh count of failures.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor, backoff=Backoff(giveUpAfter=1))
        program.start()
        lastTransport(reactor).exit(3)
        self.assertEqual(program.state, S.FATAL)
        program.start()
        self.assertEqual((program.state, program.failures), (S.STARTING, 0))
        self.assertEqual(len(reactor.spawned), 2)

    def test_unstableRunsBackOff(self) -> None:
        """
        A run that got ready but exited before C{resetAfter} is a failure:
        EXITED, then BACKOFF with the growing delay.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(
            reactor, backoff=Backoff(initial=1, factor=2, resetAfter=10)
        )
        program.start()
        reactor.advance(1)
        reactor.advance(1)
        lastTransport(reactor).exit(1)
        self.assertEqual(
            observer.seen[-2:],
            [
                (S.RUNNING, S.EXITED, "exited with code 1 after 2.0 s"),
                (
                    S.EXITED,
                    S.BACKOFF,
                    "exited with code 1 after 2.0 s, before 10 s up",
                ),
            ],
        )
        self.assertEqual(pendingDelays(reactor), [1.0])
        reactor.advance(1)
        reactor.advance(1)
        lastTransport(reactor).exit(1)
        self.assertEqual(pendingDelays(reactor), [2.0])

    def test_resetAfterStableRun(self) -> None:
        """
        A run that stayed up C{resetAfter} seconds sets the count back to 0
        and is followed by a new start at once (EXITED -> STARTING); the
        next failure waits the initial delay again.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(
            reactor, backoff=Backoff(initial=1, factor=2, resetAfter=10)
        )
        program.start()
        for _ in range(3):
            lastTransport(reactor).exit(1)
            reactor.advance(pendingDelays(reactor)[0])
        self.assertEqual(program.failures, 3)
        reactor.advance(10)
        self.assertEqual(program.state, S.RUNNING)
        lastTransport(reactor).exit(1)
        self.assertEqual(program.failures, 0)
        self.assertEqual(program.state, S.STARTING)
        self.assertEqual(len(reactor.spawned), 5)
        self.assertEqual(observer.states()[-3:], [S.RUNNING, S.EXITED, S.STARTING])
        self.assertEqual(observer.seen[-1][2], "restarting after a stable run")
        lastTransport(reactor).exit(1)
        self.assertEqual(pendingDelays(reactor), [1.0])

    def test_resetAfterJustReached(self) -> None:
        """
        The stable bound is inclusive and measured from the spawn: 9.5 s up
        is a failure, 10 s is stable.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor, backoff=Backoff(resetAfter=10))
        program.start()
        reactor.advance(9.5)
        lastTransport(reactor).exit(1)
        self.assertEqual(program.state, S.BACKOFF)
        reactor.advance(1)
        reactor.advance(10)
        lastTransport(reactor).exit(1)
        self.assertEqual(program.state, S.STARTING)


class RestartPolicyTests(SynchronousTestCase):
    """
    Which exits are restarted.
    """

    def test_onFailureSuccessInRunning(self) -> None:
        """
        C{on-failure}: an exit with code 0 from RUNNING stays EXITED.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor, restart=Restart.ON_FAILURE)
        program.start()
        reactor.advance(5)
        lastTransport(reactor).exit(0)
        self.assertEqual(program.state, S.EXITED)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertIsNone(program.pid)
        self.assertEqual(program.uptime(), 0.0)

    def test_onFailureSuccessInStarting(self) -> None:
        """
        C{on-failure}: an exit with code 0 before ready is EXITED, not a
        failed start.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor, restart=Restart.ON_FAILURE)
        program.start()
        lastTransport(reactor).exit(0)
        self.assertEqual((program.state, program.failures), (S.EXITED, 0))

    def test_neverFailureInStarting(self) -> None:
        """
        C{never}: a failure before ready is FATAL at once.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor, restart=Restart.NEVER)
        program.start()
        lastTransport(reactor).exit(2)
        self.assertEqual(program.state, S.FATAL)
        self.assertEqual(observer.seen[-1][2], "exited with code 2 after 0.0 s")

    def test_neverFailureInRunning(self) -> None:
        """
        C{never}: a failure from RUNNING stays EXITED.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor, restart=Restart.NEVER)
        program.start()
        reactor.advance(1)
        lastTransport(reactor).kill(signal.SIGKILL)
        self.assertEqual(program.state, S.EXITED)
        self.assertEqual(len(reactor.spawned), 1)

    def test_alwaysSuccess(self) -> None:
        """
        C{always}: even an exit with code 0 from a stable run restarts.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(
            reactor, restart=Restart.ALWAYS, backoff=Backoff(resetAfter=0)
        )
        program.start()
        reactor.advance(1)
        lastTransport(reactor).exit(0)
        self.assertEqual((program.state, len(reactor.spawned)), (S.STARTING, 2))


class SpawnFailureTests(SynchronousTestCase):
    """
    A spawn that fails.
    """

    def test_missingExecutableIsFatal(self) -> None:
        """
        A missing executable (C{SpawnError}, C{ENOENT}) is FATAL at once,
        with the error kept: no retry is scheduled.
        """
        reactor = MemoryProcessReactor()
        error = SpawnError.fromErrno(errno.ENOENT, ChildSetupStage.EXEC, "worker")
        reactor.spawnError = error
        program, observer = makeProgram(reactor, restart=Restart.ALWAYS)
        program.start()
        self.assertEqual(program.state, S.FATAL)
        self.assertIs(program.lastSpawnError, error)
        self.assertEqual(program.lastSpawnError.errno, errno.ENOENT)  # type: ignore[union-attr]
        self.assertEqual(
            observer.seen,
            [
                (S.STOPPED, S.STARTING, "start requested"),
                (S.STARTING, S.FATAL, f"spawn failed: {error}"),
            ],
        )
        self.assertIn("No such file or directory", observer.seen[-1][2])
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertIsNone(program.pid)
        self.assertEqual(program.uptime(), 0.0)
        self.successResultOf(program.stop())

    def test_permissionIsFatal(self) -> None:
        """
        C{EACCES}, and an exception that is no C{SpawnError} (a bad
        argument), are FATAL at once too.
        """
        for error in [
            SpawnError.fromErrno(errno.EACCES, ChildSetupStage.EXEC, "worker"),
            ValueError("bad"),
        ]:
            reactor = MemoryProcessReactor()
            reactor.spawnError = error
            program, _ = makeProgram(reactor)
            program.start()
            self.assertEqual(program.state, S.FATAL)
            self.assertIs(program.lastSpawnError, error)

    def test_shortageBacksOff(self) -> None:
        """
        A passing shortage (C{EAGAIN}) is a failed start: BACKOFF, then a
        new attempt, which clears the error when it succeeds.
        """
        reactor = MemoryProcessReactor()
        reactor.spawnError = SpawnError.fromErrno(errno.EAGAIN, ChildSetupStage.EXEC)
        program, _ = makeProgram(reactor, restart=Restart.ALWAYS)
        program.start()
        self.assertEqual((program.state, program.failures), (S.BACKOFF, 1))
        self.assertEqual(pendingDelays(reactor), [1.0])
        reactor.spawnError = None
        reactor.advance(1)
        self.assertEqual(program.state, S.STARTING)
        self.assertIsNone(program.lastSpawnError)


@implementer(IReadinessCheck)
class NeverReady:
    """
    A readiness check that fails at once.
    """

    def __init__(self) -> None:
        self.cancelled = 0

    def start(self, pid: int) -> Deferred[None]:
        return fail(RuntimeError("port 80 never opened"))

    def cancel(self) -> None:
        self.cancelled += 1


class ReadinessTests(SynchronousTestCase):
    """
    A readiness check that fails.
    """

    def test_notReady(self) -> None:
        """
        A failed readiness check stops the child; its exit is a failed
        start, with why.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(
            reactor, readiness=NeverReady(), restart=Restart.ON_FAILURE
        )
        program.start()
        transport = lastTransport(reactor)
        self.assertEqual(program.state, S.STARTING)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        transport.exit(0)
        self.assertEqual(program.state, S.BACKOFF)
        self.assertEqual(
            observer.seen[-1][2],
            "not ready: port 80 never opened; exited with code 0 after 0.0 s",
        )


class StopTests(SynchronousTestCase):
    """
    Stopping, in every state.
    """

    def test_stopRunning(self) -> None:
        """
        C{stop()} in RUNNING: STOPPING, SIGTERM; the Deferred fires when
        the child is gone: STOPPED.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor, restart=Restart.ALWAYS)
        program.start()
        reactor.advance(1)
        stopped = program.stop()
        transport = lastTransport(reactor)
        self.assertEqual(program.state, S.STOPPING)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        self.assertNoResult(stopped)
        transport.kill(signal.SIGTERM)
        self.assertIsNone(self.successResultOf(stopped))
        self.assertEqual(
            observer.seen[-2:],
            [
                (S.RUNNING, S.STOPPING, "stop requested"),
                (S.STOPPING, S.STOPPED, "killed by SIGTERM after 1.0 s"),
            ],
        )
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(len(reactor.spawned), 1)

    def test_stopStarting(self) -> None:
        """
        C{stop()} in STARTING: the readiness check is abandoned; the child
        never becomes RUNNING.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor)
        program.start()
        stopped = program.stop()
        self.assertEqual(reactor.getDelayedCalls()[0].getTime(), 10)
        lastTransport(reactor).exit(0)
        self.successResultOf(stopped)
        reactor.advance(20)
        self.assertEqual(observer.states(), [S.STARTING, S.STOPPING, S.STOPPED])
        self.assertEqual(lastTransport(reactor).state.signals, [signal.SIGTERM])

    def test_stopBackoff(self) -> None:
        """
        C{stop()} in BACKOFF: STOPPED at once, the pending start cancelled.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor, restart=Restart.ALWAYS)
        program.start()
        lastTransport(reactor).exit(1)
        self.successResultOf(program.stop())
        self.assertEqual(program.state, S.STOPPED)
        self.assertEqual(observer.seen[-1], (S.BACKOFF, S.STOPPED, "stop requested"))
        self.assertEqual(reactor.getDelayedCalls(), [])
        reactor.advance(100)
        self.assertEqual(len(reactor.spawned), 1)

    def test_stopNothing(self) -> None:
        """
        C{stop()} when STOPPED, EXITED or FATAL, or a second C{stop()},
        changes nothing; each Deferred fires when the child is gone.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor, restart=Restart.NEVER)
        self.successResultOf(program.stop())
        program.start()
        first, second = program.stop(), program.stop()
        program.start()
        self.assertEqual(len(reactor.spawned), 1)
        lastTransport(reactor).exit(0)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(observer.states(), [S.STARTING, S.STOPPING, S.STOPPED])

    def test_stopTimeoutKills(self) -> None:
        """
        A child that outlives the stop timeout gets SIGKILL, exactly then.
        """
        reactor = MemoryProcessReactor()
        program, observer = makeProgram(reactor, stopTimeout=7)
        program.start()
        reactor.advance(1)
        stopped = program.stop()
        transport = lastTransport(reactor)
        reactor.advance(3.5)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        reactor.advance(3.5)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertNoResult(stopped)
        transport.kill(signal.SIGKILL)
        self.successResultOf(stopped)
        self.assertEqual(observer.seen[-1][2], "killed by SIGKILL after 8.0 s")

    def test_otherStopSignal(self) -> None:
        """
        Another stop signal is sent as is, then SIGKILL after the timeout;
        an exit in time cancels the SIGKILL.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor, stopSignal=signal.SIGINT, stopTimeout=5)
        program.start()
        program.stop()
        transport = lastTransport(reactor)
        reactor.advance(5)
        self.assertEqual(transport.state.signals, [signal.SIGINT, signal.SIGKILL])

        program.start()
        self.assertIs(program.state, S.STOPPING)
        transport.exit(0)
        program.start()
        program.stop()
        transport = lastTransport(reactor)
        transport.exit(0)
        reactor.advance(10)
        self.assertEqual(transport.state.signals, [signal.SIGINT])

    def test_groupAndTree(self) -> None:
        """
        A child that leads a process group is stopped as a group; a child
        with a cgroup is killed as a whole tree (C{cgroup.kill}).
        """
        reactor = MemoryProcessReactor()
        group = ProgramProcess(
            "g",
            reactor,
            ProgramSpawn(["g"], options=SpawnOptions(processGroup=0)),
            stopSignal=signal.SIGINT,
            stopTimeout=1,
        )
        group.start()
        group.stop()
        reactor.advance(1)
        self.assertEqual(
            lastTransport(reactor).state.groupSignals, [signal.SIGINT, signal.SIGKILL]
        )
        tree = ProgramProcess(
            "t",
            reactor,
            ProgramSpawn(["t"], options=SpawnOptions(cgroup=Cgroup())),
            stopSignal=signal.SIGINT,
            stopTimeout=1,
        )
        tree.start()
        tree.stop()
        reactor.advance(1)
        transport = lastTransport(reactor)
        self.assertEqual(transport.state.signals, [signal.SIGINT])
        self.assertEqual(transport.state.treeKills, ["killTree"])

    def test_treeWithTerm(self) -> None:
        """
        With SIGTERM, the transport's own termination runs: its SIGKILL
        step kills the cgroup.
        """
        reactor = MemoryProcessReactor()
        program = ProgramProcess(
            "t",
            reactor,
            ProgramSpawn(["t"], options=SpawnOptions(cgroup=Cgroup())),
            stopTimeout=2,
        )
        program.start()
        program.stop()
        reactor.advance(2)
        transport = lastTransport(reactor)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertEqual(transport.state.treeKills, ["terminate"])

    def test_stopThenStart(self) -> None:
        """
        After the stop's Deferred fired, C{start()} starts afresh.
        """
        reactor = MemoryProcessReactor()
        program, _ = makeProgram(reactor)
        program.start()
        stopped = program.stop()
        stopped.addCallback(lambda _: program.start())
        lastTransport(reactor).exit(0)
        self.assertEqual(program.state, S.STARTING)
        self.assertEqual(len(reactor.spawned), 2)


class StateTests(SynchronousTestCase):
    """
    L{ProgramState} and L{Restart}.
    """

    def test_names(self) -> None:
        """
        Supervisor's seven names; three of them have a child.
        """
        self.assertEqual(
            [state.value for state in ProgramState],
            [
                "STOPPED",
                "STARTING",
                "RUNNING",
                "BACKOFF",
                "STOPPING",
                "EXITED",
                "FATAL",
            ],
        )
        self.assertEqual(
            {state for state in ProgramState if state.hasChild},
            {S.STARTING, S.RUNNING, S.STOPPING},
        )
        self.assertEqual(Restart("on-failure"), Restart.ON_FAILURE)

    def test_emptyArgv(self) -> None:
        """
        A spawn description needs a command.
        """
        self.assertRaises(ValueError, ProgramSpawn, [])


#: A child that ignores SIGTERM, says so, and then waits.
IGNORE_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "time.sleep(120)\n"
)


class ProgramRealMixin(MixinBase):
    """
    A program with real children on txspawn's reactor.
    """

    def test_crashRestartStop(self) -> None:
        """
        A real child that exits with 3 at once goes STARTING -> BACKOFF ->
        STARTING again after the delay; once started again it is stopped.
        """
        reactor = self.buildReactor()
        program = ProgramProcess(
            "crash",
            reactor,
            ProgramSpawn([sys.executable, "-c", "import sys; sys.exit(3)"]),
            restart=Restart.ALWAYS,
            backoff=Backoff(initial=0.01, giveUpAfter=None),
            readiness=ReadyAfter(reactor, 60),
        )
        observer = Transitions()
        program.addObserver(observer)

        @implementer(IProgramObserver)
        class StopOnSecondStart:
            def transition(
                self, program: object, old: ProgramState, new: ProgramState, why: str
            ) -> None:
                if old is S.BACKOFF and new is S.STARTING:
                    assert isinstance(program, ProgramProcess)
                    reactor.callLater(0, stopAll)

        def stopAll() -> None:
            program.stop().addBoth(lambda _: reactor.stop())

        program.addObserver(StopOnSecondStart())
        reactor.callWhenRunning(program.start)
        self.runReactor(reactor)
        self.assertEqual(program.state, S.STOPPED)
        states = observer.states()
        self.assertEqual(states[:3], [S.STARTING, S.BACKOFF, S.STARTING])
        self.assertIn("exited with code 3", observer.seen[1][2])

    def test_runningThenCrash(self) -> None:
        """
        A real child that is ready at once and then exits with 5 is
        EXITED, then BACKOFF (a run shorter than C{resetAfter}), then
        STARTING again.
        """
        reactor = self.buildReactor()
        program = ProgramProcess(
            "w",
            reactor,
            ProgramSpawn([sys.executable, "-c", "import sys; sys.exit(5)"]),
            restart=Restart.ON_FAILURE,
            backoff=Backoff(initial=0.01),
            readiness=ReadyAfter(reactor, 0),
        )
        observer = Transitions()
        program.addObserver(observer)

        @implementer(IProgramObserver)
        class StopOnRetry:
            def transition(
                self, program: object, old: ProgramState, new: ProgramState, why: str
            ) -> None:
                if old is S.BACKOFF:
                    reactor.callLater(0, stopAll)

        def stopAll() -> None:
            program.stop().addBoth(lambda _: reactor.stop())

        program.addObserver(StopOnRetry())
        reactor.callWhenRunning(program.start)
        self.runReactor(reactor)
        self.assertEqual(
            observer.states()[:5],
            [S.STARTING, S.RUNNING, S.EXITED, S.BACKOFF, S.STARTING],
        )
        self.assertEqual(program.state, S.STOPPED)
        self.assertEqual((program.restarts, program.failures), (1, 1))

    def test_stopIgnoringTerm(self) -> None:
        """
        A real child that ignores SIGTERM is killed after the stop timeout;
        the stop's Deferred fires once it is gone.
        """
        reactor = self.buildReactor()
        said: list[bytes] = []

        def output(fd: int, data: bytes) -> None:
            said.append(data)
            if b"ready" in b"".join(said) and program.state is S.RUNNING:
                program.stop().addCallback(lambda _: reactor.stop())

        program = ProgramProcess(
            "stubborn",
            reactor,
            ProgramSpawn([sys.executable, "-c", IGNORE_TERM]),
            readiness=ReadyAfter(reactor, 0),
            stopTimeout=0.2,
            output=output,
        )
        observer = Transitions()
        program.addObserver(observer)
        reactor.callWhenRunning(program.start)
        self.runReactor(reactor)
        self.assertEqual(program.state, S.STOPPED)
        self.assertEqual(observer.seen[-1][:2], (S.STOPPING, S.STOPPED))
        self.assertIn("killed by SIGKILL", observer.seen[-1][2])


globals().update(makeTestCaseClasses(ProgramRealMixin))
