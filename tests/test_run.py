"""
Tests for L{txspawn.run}: the result-object API.

Most behaviour is tested against L{txspawn.testing.MemoryProcessReactor}
(the clock drives timeouts; the test plays the child); the end-to-end tests
run real children on every engine x monitor combination and on stock
Twisted.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import PYTHON, MixinBase, ReactorTestMixin, makeTestCaseClasses
from tests.treeutil import Descendant, killDescendants, waitGone
from txspawn import ProcessFailed, ProcessResult, ProcessTimedOut, run
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.testing import FakeProcessTransport, MemoryProcessReactor


def start(
    **kwargs: Any,
) -> tuple[MemoryProcessReactor, Deferred[ProcessResult], FakeProcessTransport]:
    """
    C{run(["prog", "arg"], **kwargs)} on a fresh fake reactor.
    """
    reactor = MemoryProcessReactor()
    d = run(["prog", "arg"], reactor=reactor, **kwargs)
    return reactor, d, reactor.transports[0] if reactor.spawned else None  # type: ignore[return-value]


class RunFakeTests(SynchronousTestCase):
    """
    L{run} against the fake reactor.
    """

    def test_success(self) -> None:
        """
        C{run} spawns C{argv[0]} with C{argv}, collects stdout and stderr,
        and fires with a L{ProcessResult} describing the exit; the duration
        comes from the reactor's clock.
        """
        reactor, d, transport = start()
        spawned = reactor.spawned[0]
        self.assertEqual((spawned.executable, spawned.args), ("prog", ("prog", "arg")))
        reactor.advance(2.5)
        transport.dataFromChild(1, b"out1 ")
        transport.dataFromChild(2, b"err")
        transport.dataFromChild(1, b"out2")
        self.assertNoResult(d)
        transport.exit(0)
        result = self.successResultOf(d)
        self.assertEqual(
            result,
            ProcessResult(
                argv=("prog", "arg"),
                pid=1000,
                exitCode=0,
                signal=None,
                status=0,
                stdout=b"out1 out2",
                stderr=b"err",
                rusage=None,
                duration=2.5,
            ),
        )
        self.assertTrue(result.succeeded)
        self.assertIs(result.check(), result)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_envInherits(self) -> None:
        """
        The default C{env} is C{None} (inherit, as C{subprocess.run}), not
        Twisted's empty environment; an explicit one is passed on.
        """
        reactor, _, _ = start()
        self.assertIsNone(reactor.spawned[0].env)
        reactor2, _, _ = start(env={"A": "1"}, path="/tmp", uid=1, gid=2)
        spawned = reactor2.spawned[0]
        self.assertEqual(
            (spawned.env, spawned.path, spawned.uid, spawned.gid),
            ({"A": "1"}, "/tmp", 1, 2),
        )

    def test_options(self) -> None:
        """
        Extra keyword arguments are txspawn spawn options, passed on.
        """
        reactor, _, _ = start(processGroup=0, umask=0o22)
        self.assertEqual(reactor.spawned[0].options, {"processGroup": 0, "umask": 0o22})

    def test_stdinClosed(self) -> None:
        """
        Without C{stdin}, the child's stdin is closed at once (it reads
        end-of-file) and nothing is written.
        """
        _, _, transport = start()
        self.assertEqual(transport.state.closedFDs, [0])
        self.assertEqual(transport.state.written, {})

    def test_stdin(self) -> None:
        """
        C{stdin} is written to the child, then stdin is closed.
        """
        _, _, transport = start(stdin=b"input")
        self.assertEqual(transport.state.writtenTo(0), b"input")
        self.assertEqual(transport.state.closedFDs, [0])

    def test_exitCode(self) -> None:
        """
        A non-zero exit is reported on the result, not as a failure, without
        C{check}.
        """
        _, d, transport = start()
        transport.exit(3)
        result = self.successResultOf(d)
        self.assertEqual((result.exitCode, result.signal), (3, None))
        self.assertEqual(os.WEXITSTATUS(result.status or 0), 3)
        self.assertFalse(result.succeeded)
        self.assertEqual(result.describeEnd(), "exited with code 3")

    def test_check(self) -> None:
        """
        With C{check=True} a non-zero exit fails with L{ProcessFailed}
        carrying the result; its message names the command, the exit and
        the end of stderr.
        """
        _, d, transport = start(check=True)
        transport.dataFromChild(2, b"it broke\n")
        transport.exit(2)
        failure = self.failureResultOf(d, ProcessFailed)
        self.assertNotIsInstance(failure.value, ProcessTimedOut)
        self.assertEqual(failure.value.result.exitCode, 2)
        self.assertEqual(failure.value.result.stderr, b"it broke\n")
        self.assertEqual(
            str(failure.value),
            "prog arg exited with code 2; stderr ends with:\nit broke\n",
        )

    def test_checkSuccess(self) -> None:
        """
        With C{check=True} exit code 0 succeeds.
        """
        _, d, transport = start(check=True)
        transport.exit(0)
        self.assertEqual(self.successResultOf(d).exitCode, 0)

    def test_resultCheck(self) -> None:
        """
        L{ProcessResult.check} raises L{ProcessFailed} for a failed child.
        """
        _, d, transport = start()
        transport.kill(signal.SIGKILL)
        result = self.successResultOf(d)
        exc = self.assertRaises(ProcessFailed, result.check)
        self.assertIs(exc.result, result)

    def test_signal(self) -> None:
        """
        A child killed by a signal: C{signal} set, C{exitCode} C{None}, the
        raw status C{WIFSIGNALED}; the description names the signal.
        """
        _, d, transport = start()
        transport.kill(signal.SIGSEGV, coreDumped=True)
        result = self.successResultOf(d)
        self.assertEqual((result.exitCode, result.signal), (None, signal.SIGSEGV))
        self.assertTrue(os.WIFSIGNALED(result.status or 0))
        self.assertEqual(result.describeEnd(), "was killed by SIGSEGV (core dumped)")

    def test_describeUnknown(self) -> None:
        """
        A result whose status is unknown (someone else reaped the child)
        says so; an unnamed signal is described by number.
        """
        base = dict(
            argv=("x",), pid=1, stdout=b"", stderr=b"", rusage=None, duration=0.0
        )
        unknown = ProcessResult(exitCode=None, signal=None, status=None, **base)  # type: ignore[arg-type]
        self.assertIn("unknown status", unknown.describeEnd())
        odd = ProcessResult(exitCode=None, signal=99, status=99, **base)  # type: ignore[arg-type]
        self.assertEqual(odd.describeEnd(), "was killed by signal 99")

    def test_rusage(self) -> None:
        """
        The rusage the transport reports on the exit reason is on the
        result.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, d, transport = start()
        transport.exit(0, rusage=usage)
        self.assertIs(self.successResultOf(d).rusage, usage)

    def test_timeout(self) -> None:
        """
        When the timeout expires the child gets C{SIGTERM}, then C{SIGKILL}
        C{killAfter} seconds later; once it is reaped the Deferred fails
        with L{ProcessTimedOut} carrying the partial result.
        """
        reactor, d, transport = start(timeout=10, killAfter=3)
        transport.dataFromChild(1, b"partial")
        reactor.advance(9.9)
        self.assertEqual(transport.state.signals, [])
        reactor.advance(0.1)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        reactor.advance(2.9)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        reactor.advance(0.1)
        self.assertEqual(transport.state.signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertNoResult(d)
        transport.kill(signal.SIGKILL)
        failure = self.failureResultOf(d, ProcessTimedOut)
        self.assertEqual(failure.value.timeout, 10)
        self.assertEqual(failure.value.result.stdout, b"partial")
        self.assertEqual(failure.value.result.signal, signal.SIGKILL)
        self.assertEqual(failure.value.result.duration, 13)
        self.assertEqual(
            str(failure.value),
            "prog arg timed out after 10 s and was killed by SIGKILL",
        )
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_timeoutObeyed(self) -> None:
        """
        A child that exits on C{SIGTERM} gets no C{SIGKILL}; the Deferred
        still fails with L{ProcessTimedOut}, whatever C{check} says.
        """
        reactor, d, transport = start(timeout=1, check=False)
        reactor.advance(1)
        transport.kill(signal.SIGTERM)
        self.failureResultOf(d, ProcessTimedOut)
        reactor.advance(100)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_noEscalation(self) -> None:
        """
        C{killAfter=None} never sends C{SIGKILL}.
        """
        reactor, d, transport = start(timeout=1, killAfter=None)
        reactor.advance(1000)
        self.assertEqual(transport.state.signals, [signal.SIGTERM])
        self.assertNoResult(d)
        transport.exit(0)
        self.failureResultOf(d, ProcessTimedOut)

    def test_timeoutGroup(self) -> None:
        """
        A child that leads a process group gets the timeout's signals sent
        to its group.
        """
        reactor, d, transport = start(timeout=1, killAfter=1, processGroup=0)
        reactor.advance(1)
        reactor.advance(1)
        self.assertEqual(transport.state.groupSignals, [signal.SIGTERM, signal.SIGKILL])
        self.assertEqual(transport.state.signals, [])
        transport.kill(signal.SIGKILL)
        self.failureResultOf(d, ProcessTimedOut)

    def test_timeoutAfterExit(self) -> None:
        """
        When the child exited but something (a grandchild) holds its pipes
        when the timeout expires, no signal is sent and the pipes are
        closed: the Deferred fails with L{ProcessTimedOut} at once.
        """
        reactor, d, transport = start(timeout=5)
        transport.dataFromChild(1, b"x")
        transport.exit(0, closePipes=False)
        self.assertNoResult(d)
        reactor.advance(5)
        self.assertEqual(transport.state.signals, [])
        self.assertTrue(transport.state.lost)
        failure = self.failureResultOf(d, ProcessTimedOut)
        self.assertEqual(
            (failure.value.result.exitCode, failure.value.result.stdout), (0, b"x")
        )

    def test_timedOutPipesClosed(self) -> None:
        """
        After a timed-out child is reaped, its pipes are closed at once: a
        grandchild holding them does not keep the Deferred waiting.
        """
        reactor, d, transport = start(timeout=1)
        reactor.advance(1)
        transport.kill(signal.SIGTERM, closePipes=False)
        self.assertTrue(transport.state.lost)
        self.failureResultOf(d, ProcessTimedOut)

    def test_cancel(self) -> None:
        """
        Cancelling kills the child with C{SIGKILL}; the Deferred fails with
        L{CancelledError} only once the child has been reaped (no zombie
        left behind the caller's back).
        """
        reactor, d, transport = start(timeout=10)
        d.cancel()
        self.assertEqual(transport.state.signals, [signal.SIGKILL])
        self.assertNoResult(d)
        transport.kill(signal.SIGKILL, closePipes=False)
        # The pipes are closed for us: a grandchild cannot keep us waiting.
        self.assertTrue(transport.state.lost)
        self.failureResultOf(d, CancelledError)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_cancelDropsOutput(self) -> None:
        """
        Output arriving after cancellation is ignored.
        """
        _, d, transport = start()
        d.cancel()
        transport.dataFromChild(1, b"late")
        transport.kill(signal.SIGKILL)
        self.failureResultOf(d, CancelledError)

    def test_cancelGroup(self) -> None:
        """
        Cancelling kills the child's process group when it leads one.
        """
        _, d, transport = start(newSession=True)
        d.cancel()
        self.assertEqual(transport.state.groupSignals, [signal.SIGKILL])
        transport.kill(signal.SIGKILL)
        self.failureResultOf(d, CancelledError)

    def test_cancelAfterExit(self) -> None:
        """
        Cancelling after the child exited (its pipes held by a grandchild)
        sends no signal, closes the pipes, and fails with L{CancelledError}.
        """
        _, d, transport = start()
        transport.exit(0, closePipes=False)
        d.cancel()
        self.assertEqual(transport.state.signals, [])
        self.failureResultOf(d, CancelledError)

    def test_cancelAfterResult(self) -> None:
        """
        Cancelling a Deferred that already fired changes nothing.
        """
        _, d, transport = start()
        transport.exit(0)
        d.cancel()
        self.assertEqual(self.successResultOf(d).exitCode, 0)
        self.assertEqual(transport.state.signals, [])

    def test_cancelCoroutine(self) -> None:
        """
        Cancelling a coroutine that awaits C{run} kills the child, and the
        coroutine sees L{CancelledError} once the child is reaped.
        """
        reactor = MemoryProcessReactor()
        seen: list[str] = []

        async def main() -> None:
            try:
                await run(["prog"], reactor=reactor)
            except CancelledError:
                seen.append("cancelled")
                raise

        d = Deferred.fromCoroutine(main())
        transport = reactor.transports[0]
        d.cancel()
        self.assertEqual(transport.state.signals, [signal.SIGKILL])
        self.assertEqual(seen, [])
        transport.kill(signal.SIGKILL)
        self.assertEqual(seen, ["cancelled"])
        self.failureResultOf(d, CancelledError)

    def test_await(self) -> None:
        """
        The Deferred is awaitable from a coroutine.
        """
        reactor = MemoryProcessReactor()

        async def main() -> bytes:
            result = await run(["prog"], reactor=reactor)
            return result.stdout

        d = Deferred.fromCoroutine(main())
        reactor.transports[0].dataFromChild(1, b"hi")
        reactor.transports[0].exit(0)
        self.assertEqual(self.successResultOf(d), b"hi")

    def test_closePipesAfterExit(self) -> None:
        """
        With C{closePipesAfterExit}, the pipes are closed that many seconds
        after the child exits, so a grandchild holding them cannot keep the
        result waiting; output received until then is kept.
        """
        reactor, d, transport = start(closePipesAfterExit=2)
        transport.exit(0, closePipes=False)
        reactor.advance(1)
        transport.dataFromChild(1, b"late")
        self.assertNoResult(d)
        reactor.advance(1)
        self.assertTrue(transport.state.lost)
        self.assertEqual(self.successResultOf(d).stdout, b"late")

    def test_closePipesAfterExitNotNeeded(self) -> None:
        """
        When the pipes close by themselves, the close timer is cancelled.
        """
        reactor, d, transport = start(closePipesAfterExit=2)
        transport.exit(0)
        self.successResultOf(d)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertFalse(transport.state.lost)

    def test_waitsForPipes(self) -> None:
        """
        By default (as Twisted), the result waits until every pipe closed.
        """
        reactor, d, transport = start()
        transport.exit(0, closePipes=False)
        reactor.advance(1000)
        self.assertNoResult(d)
        transport.closeFromChild(1)
        transport.closeFromChild(2)
        self.successResultOf(d)

    def test_spawnError(self) -> None:
        """
        A spawn error fails the Deferred (no timer left behind).
        """
        reactor = MemoryProcessReactor()
        reactor.spawnError = SpawnError.fromErrno(
            errno.ENOENT, ChildSetupStage.EXEC, "prog"
        )
        d = run(["prog"], reactor=reactor, timeout=5)
        failure = self.failureResultOf(d, FileNotFoundError)
        self.assertIs(failure.value, reactor.spawnError)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_badArguments(self) -> None:
        """
        Bad arguments raise L{TypeError}/L{ValueError} naming the argument,
        before anything is spawned.
        """
        reactor = MemoryProcessReactor()
        cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
            (TypeError, "argv", dict(argv="ls -l")),
            (TypeError, "argv", dict(argv=b"ls")),
            (TypeError, "argv", dict(argv=42)),
            (ValueError, "argv", dict(argv=[])),
            (TypeError, "argv[1]", dict(argv=["ls", 3])),
            (TypeError, "stdin", dict(argv=["ls"], stdin="text")),
            (ValueError, "timeout", dict(argv=["ls"], timeout=0)),
            (ValueError, "timeout", dict(argv=["ls"], timeout=-1)),
            (ValueError, "timeout", dict(argv=["ls"], timeout=float("nan"))),
            (TypeError, "timeout", dict(argv=["ls"], timeout="5")),
            (TypeError, "timeout", dict(argv=["ls"], timeout=True)),
            (ValueError, "killAfter", dict(argv=["ls"], killAfter=-1)),
            (
                ValueError,
                "closePipesAfterExit",
                dict(argv=["ls"], closePipesAfterExit=-0.5),
            ),
        ]
        for exception, name, kwargs in cases:
            argv = kwargs.pop("argv")
            exc = self.assertRaises(exception, run, argv, reactor=reactor, **kwargs)
            self.assertIn(name, str(exc))
        self.assertEqual(reactor.spawned, [])

    def test_badReactor(self) -> None:
        """
        A reactor that cannot spawn processes, or has no clock, is a
        L{TypeError} naming the argument.
        """
        exc = self.assertRaises(TypeError, run, ["ls"], reactor=object())
        self.assertIn("reactor", str(exc))

    def test_noReactorImport(self) -> None:
        """
        Importing txspawn does not import the global reactor: C{run}
        resolves it only when called with C{reactor=None}.
        """
        code = (
            "import sys, txspawn\n"
            "assert 'twisted.internet.reactor' not in sys.modules\n"
            "print('ok')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, check=True
        )
        self.assertEqual(out.stdout, b"ok\n")


class RunLogTests(SynchronousTestCase):
    """
    L{run} with C{logFile}.
    """

    def test_logFile(self) -> None:
        """
        The output is written to the log file as well as collected.
        """
        fd, path = tempfile.mkstemp()
        os.close(fd)
        self.addCleanup(os.unlink, path)
        _, d, transport = start(logFile=path)
        transport.dataFromChild(1, b"out\n")
        transport.dataFromChild(2, b"err\n")
        transport.exit(0)
        result = self.successResultOf(d)
        self.assertEqual((result.stdout, result.logError), (b"out\n", None))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"out\nerr\n")

    def test_logPrefix(self) -> None:
        """
        With C{logPrefix}, each log line carries the reactor clock's time
        and the stream name.
        """
        fd, path = tempfile.mkstemp()
        os.close(fd)
        self.addCleanup(os.unlink, path)
        reactor, d, transport = start(logFile=path, logPrefix=True)
        reactor.advance(1.5)
        transport.dataFromChild(1, b"hello\n")
        transport.exit(0)
        self.successResultOf(d)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"1970-01-01T00:00:01.500000Z stdout: hello\n")

    def test_logError(self) -> None:
        """
        A log that cannot be written (disk full) is reported on the result
        and logged; the collected output is complete.
        """
        _, d, transport = start(logFile="/dev/full")
        transport.dataFromChild(1, b"out")
        transport.dataFromChild(1, b"more")
        transport.exit(0)
        result = self.successResultOf(d)
        self.assertEqual(result.stdout, b"outmore")
        self.assertIsInstance(result.logError, OSError)
        assert isinstance(result.logError, OSError)
        self.assertEqual(result.logError.errno, errno.ENOSPC)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_logOpenError(self) -> None:
        """
        A log path that cannot be opened fails the Deferred before anything
        is spawned.
        """
        reactor = MemoryProcessReactor()
        d = run(["prog"], reactor=reactor, logFile="/nonexistent/dir/log")
        self.failureResultOf(d, FileNotFoundError)
        self.assertEqual(reactor.spawned, [])


def runInReactor(
    test: Any, reactor: Any, main: Callable[[], Coroutine[Any, Any, Any]]
) -> Any:
    """
    Run the coroutine C{main()} in C{reactor} (started for it and stopped
    after it) and return its result, or its L{Failure}.
    """
    outcome: list[Any] = []

    def begin() -> None:
        d = Deferred.fromCoroutine(main())
        d.addBoth(outcome.append)
        d.addBoth(lambda ignored: reactor.stop())

    reactor.callWhenRunning(begin)
    test.runReactor(reactor)
    return outcome[0]


def succeeded(outcome: Any) -> Any:
    if isinstance(outcome, Failure):
        outcome.raiseException()
    return outcome


# A child that ignores SIGTERM, says so, and sleeps.
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "time.sleep(60)\n"
)


class RunRealMixin(MixinBase):
    """
    L{run} with real children.
    """

    #: Whether the reactor reports rusage on exit reasons.
    reportsRusage = True

    def test_outputAndStatus(self) -> None:
        """
        stdin is fed to the child; stdout, stderr, exit code, raw status,
        pid and a positive duration are reported.
        """
        reactor = self.buildReactor()
        source = (
            "import os, sys\n"
            "data = sys.stdin.buffer.read()\n"
            "sys.stdout.buffer.write(data.upper())\n"
            "sys.stderr.write(str(os.getpid()))\n"
            "sys.exit(7)\n"
        )

        async def main() -> ProcessResult:
            return await run([PYTHON, b"-c", source], reactor=reactor, stdin=b"abc")

        result = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(result.stdout, b"ABC")
        self.assertEqual(result.stderr, str(result.pid).encode())
        self.assertEqual((result.exitCode, result.signal), (7, None))
        self.assertEqual(os.WEXITSTATUS(result.status), 7)
        self.assertGreater(result.duration, 0)
        if self.reportsRusage:
            self.assertIsInstance(result.rusage, resource.struct_rusage)
            self.assertGreater(result.rusage.ru_maxrss, 0)
        else:
            self.assertIsNone(result.rusage)

    def test_envInherited(self) -> None:
        """
        By default the child inherits our environment.
        """
        reactor = self.buildReactor()
        source = "import os; print(os.environ.get('PATH'), end='')"

        async def main() -> ProcessResult:
            return await run([PYTHON, b"-c", source], reactor=reactor)

        result = succeeded(runInReactor(self, reactor, main))
        self.assertEqual(result.stdout.decode(), os.environ.get("PATH"))

    def test_check(self) -> None:
        """
        C{check=True} fails with L{ProcessFailed} for a failing child.
        """
        reactor = self.buildReactor()

        async def main() -> ProcessResult:
            return await run(["false"], reactor=reactor, check=True)

        outcome = runInReactor(self, reactor, main)
        self.assertIsInstance(outcome, Failure)
        self.assertIsInstance(outcome.value, ProcessFailed)
        self.assertEqual(outcome.value.result.exitCode, 1)

    def test_missingProgram(self) -> None:
        """
        A program that does not exist fails the Deferred with a
        L{FileNotFoundError} (txspawn: a L{SpawnError}).
        """
        reactor = self.buildReactor()

        async def main() -> ProcessResult:
            return await run(["/nonexistent/program"], reactor=reactor)

        outcome = runInReactor(self, reactor, main)
        self.assertIsInstance(outcome, Failure)
        self.assertIsInstance(outcome.value, FileNotFoundError)

    def test_timeout(self) -> None:
        """
        A child that ignores C{SIGTERM} is killed with C{SIGKILL} after the
        grace period; the partial output is on the L{ProcessTimedOut}, and
        the child is reaped (the hygiene check finds no child left).
        """
        reactor = self.buildReactor()

        async def main() -> ProcessResult:
            return await run(
                [PYTHON, b"-c", STUBBORN], reactor=reactor, timeout=0.5, killAfter=0.2
            )

        outcome = runInReactor(self, reactor, main)
        self.assertIsInstance(outcome, Failure)
        self.assertIsInstance(outcome.value, ProcessTimedOut)
        self.assertEqual(outcome.value.result.signal, signal.SIGKILL)

    def test_cancel(self) -> None:
        """
        Cancelling kills the child; L{CancelledError} arrives after it was
        reaped.
        """
        reactor = self.buildReactor()

        async def main() -> object:
            d = run(["sleep", "60"], reactor=reactor)
            reactor.callLater(0.1, d.cancel)
            try:
                await d
            except CancelledError:
                return "cancelled"
            return "finished"

        self.assertEqual(succeeded(runInReactor(self, reactor, main)), "cancelled")

    def test_closePipesAfterExit(self) -> None:
        """
        A grandchild holding stdout does not keep C{run} waiting past
        C{closePipesAfterExit}.
        """
        reactor = self.buildReactor()
        script = "sleep 2 & echo started"

        async def main() -> ProcessResult:
            return await run(
                ["sh", "-c", script], reactor=reactor, closePipesAfterExit=0.1
            )

        result = succeeded(runInReactor(self, reactor, main))
        self.assertEqual((result.exitCode, result.stdout), (0, b"started\n"))


globals().update(makeTestCaseClasses(RunRealMixin))


class RunStockTwistedTests(RunRealMixin, ReactorTestMixin, SynchronousTestCase):
    """
    L{run} works on a stock Twisted reactor (no rusage there).
    """

    engineName = "stock"
    monitorName = "stock"
    reportsRusage = False

    def buildReactor(self) -> Any:
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self._reactors.append(reactor)
        return reactor


# Two grandchildren that ignore SIGTERM, each printing its pid, and a shell
# that waits for them.
IGNORING_TREE = (
    "(trap '' TERM; exec sh -c 'echo $$; exec sleep 1000') &\n"
    "(trap '' TERM; exec sh -c 'echo $$; exec sleep 1000') &\n"
    "wait\n"
)


class RunTreeMixin(MixinBase):
    """
    L{run} kills whole process trees on txspawn's reactors.
    """

    def _runTree(self, **kwargs: Any) -> tuple[Any, list[Descendant]]:
        reactor = self.buildReactor()
        descendants: list[Descendant] = []
        self.addCleanup(killDescendants, descendants)

        async def main() -> ProcessResult:
            d = run(["sh", "-c", IGNORING_TREE], reactor=reactor, **kwargs)
            if "timeout" not in kwargs:
                # Cancel once both grandchildren have started.
                reactor.callLater(0.5, d.cancel)
            return await d

        outcome = runInReactor(self, reactor, main)
        self.assertIsInstance(outcome, Failure)
        if isinstance(outcome.value, ProcessTimedOut):
            pids = outcome.value.result.stdout.split()
            self.assertEqual(len(pids), 2, outcome.value.result)
            descendants.extend(Descendant(int(pid)) for pid in pids)
        return outcome, descendants

    def test_timeoutKillsTree(self) -> None:
        """
        A timed-out child leading a process group is terminated with its
        whole group: grandchildren that ignore C{SIGTERM} do not survive
        (they get C{SIGKILL} before the leader is reaped).
        """
        outcome, descendants = self._runTree(timeout=0.5, killAfter=0.3, processGroup=0)
        self.assertIsInstance(outcome.value, ProcessTimedOut)
        self.assertEqual(waitGone(descendants), [])

    def test_cancelKillsTree(self) -> None:
        """
        Cancelling kills the group the child leads, grandchildren included,
        and fails with L{CancelledError} once the child is reaped.
        """
        reactor = self.buildReactor()
        fd, pidFile = tempfile.mkstemp()
        os.close(fd)
        self.addCleanup(os.unlink, pidFile)
        script = (
            f"sleep 1000 & echo $! >> {pidFile}\n"
            f"sleep 1000 & echo $! >> {pidFile}\n"
            "wait\n"
        )
        descendants: list[Descendant] = []
        self.addCleanup(killDescendants, descendants)

        async def main() -> object:
            d = run(["sh", "-c", script], reactor=reactor, newSession=True)
            reactor.callLater(0.5, d.cancel)
            try:
                await d
            except CancelledError:
                return "cancelled"
            return "finished"

        self.assertEqual(succeeded(runInReactor(self, reactor, main)), "cancelled")
        with open(pidFile) as f:
            descendants.extend(Descendant(int(pid)) for pid in f.read().split())
        self.assertEqual(len(descendants), 2)
        self.assertEqual(waitGone(descendants), [])


globals().update(makeTestCaseClasses(RunTreeMixin))
