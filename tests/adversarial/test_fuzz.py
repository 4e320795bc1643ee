# -*- test-case-name: tests.adversarial.test_fuzz -*-
"""
Hostile input through every public spawning entry point, with a leak check
after every example (issue 11, item 6).

The entry points: C{spawnProcess} of a txspawn reactor and of a stock
Twisted reactor that L{txspawn.install} was called on (every engine x
monitor), L{txspawn.run}, L{txspawn.stream}, L{txspawn.options.SpawnOptions}
and the fake reactor of L{txspawn.testing}.  Their arguments are drawn
wide: wrong types everywhere, NUL bytes, lone surrogates, integers far
outside every C type, C{childFDs} with negative, huge and unopened fds,
environments with bad keys and values, missing programs and directories,
ids out of range, every spawn option with good and bad values, and mixes of
good and bad.

The property, for every call:

  - it raises at the call a L{TypeError} or L{ValueError} whose message
    starts with the function called and names an argument that is wrong
    (and the error is the kind that argument calls for), or a
    L{txspawn.errors.SpawnError} when something on this machine makes the
    spawn fail (a missing program, an fd that is not open, ...); or
  - it returns, only when nothing is wrong with its input (a machine
    problem may make L{txspawn.run}'s Deferred fail instead), and then the
    child runs and ends (the exit code the command asks for, when its
    input is entirely good), C{processEnded} is called once;
  - and after it: no new fd in this process, no child or zombie, the
    C{SIGCHLD} handler and the signal wakeup fd unchanged, no delayed call
    left on the reactor, and no cgroup leaf left in the test's scratch
    parent cgroup once the reactors stopped.

C{cgroup=} (issue 14) is drawn as every option is, and by tests of their
own whose every call has it: C{None}; a L{txspawn.options.Cgroup} in a
scratch parent made under the cgroup2 mount for the test (the child must
run in a leaf of it: its statistics on the transport, the exit reason and
the result); a parent that is no cgroup (a temporary directory, a missing
cgroup, a file of the parent): required, an
L{txspawn.errors.UnsupportedFeature} naming C{cgroup}, best-effort, a child
that runs without one and says why (C{cgroupUnavailable}); limits whose
controllers this hierarchy lacks (all of them on a hybrid host): an
L{UnsupportedFeature} naming C{cgroup}, the controller and the limits that
need it, whatever C{required} says; no L{Cgroup} at all.  L{Cgroup}'s own
fields, good and bad, are drawn by L{CgroupOptionsTests}.

And the fakes are verified against the real thing: for the same input
with its machine problems fixed (the missing program replaced by
C{/bin/true}, the closed fd by an open one, ...), the fake reactor gives the
same answer as the real one (the same exception and message, or a
transport), and for the input as drawn the fake answers as it does for the
fixed one (it does not look at the machine).

The calls are drawn by L{tests.adversarial.fuzzcalls}, which says how.

The default suite runs a few dozen examples per test; with
C{TXSPAWN_ADVERSARIAL=1} several hundred (L{tests.adversarial.scaled}).
"""

from __future__ import annotations

import errno
import functools
import os
import pathlib
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from attrs import evolve
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

import txspawn
from tests.adversarial import scaled
from tests.adversarial.fuzzcalls import (
    CGROUPS,
    CHILD_FD_MAX,
    CHILD_TIMEOUT,
    SPAWN_KEYWORDS,
    Arg,
    Boom,
    Call,
    Context,
    FuzzProtocol,
    OnMachine,
    Outcome,
    Verdict,
    attempt,
    cgroupExpectation,
    cgroupFieldKinds,
    composeArguments,
    describe,
    isInt,
    named,
    optionCombinations,
    runCalls,
    spawnOptionKinds,
    spawnProcessCalls,
)
from tests.builders import (
    MixinBase,
    ReactorTestMixin,
    _engineUnavailable,
    makeTestCaseClasses,
)
from tests.cgrouptransportutil import makeTestParent
from tests.hygiene import childrenOf, openFDs, peekWakeupFD
from txspawn import ProcessFailed, ProcessResult, SpawnError, run, stream
from txspawn._reactor.spawner import uninstallSpawner
from txspawn.errors import ChildSetupStage, UnsupportedFeature
from txspawn.options import Cgroup, CgroupStats, SpawnOptions
from txspawn.testing import MemoryProcessReactor

FUZZ_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def scaledSettings(short: int, long: int) -> Callable[[Any], Any]:
    """
    The fuzz's Hypothesis settings with C{scaled(short, long)} examples.
    """
    return settings(FUZZ_SETTINGS, max_examples=scaled(short, long))


# -- judging outcomes ----------------------------------------------------------------


def judgeAtCall(
    test: SynchronousTestCase,
    call: Call,
    verdicts: list[Verdict],
    outcome: Outcome,
    machineAtCall: bool,
) -> None:
    """
    Check what a call did at the call.

    @param verdicts: The verdicts that are not good.
    @param machineAtCall: Whether this machine's problems are errors of the
        call (C{spawnProcess}), rather than of its Deferred (C{run}).
    """
    kinds = {v.kind for v in verdicts}
    error = outcome.error
    if error is None:
        mustRaise = {"bad", "fails"} if machineAtCall else {"bad"}
        test.assertFalse(
            kinds & mustRaise,
            f"{call.entry} returned; it should have raised: {verdicts}",
        )
        return
    if machineAtCall and isinstance(error, UnsupportedFeature):
        judgeUnsupported(test, call, verdicts, error)
        return
    if machineAtCall and isinstance(error, SpawnError):
        test.assertTrue(
            any(
                v.kind in ("fails", "may")
                and v.error
                and issubclass(type(error), v.error)
                for v in verdicts
            ),
            f"{call.entry} raised {error!r}, but nothing is wrong on this "
            f"machine: {verdicts}",
        )
        test.assertIsNotNone(error.errno, repr(error))
        return
    if type(error) in (TypeError, ValueError):
        message = str(error)
        test.assertTrue(
            message.startswith(f"{call.entry}: "),
            f"{message!r} does not start with {call.entry}",
        )
        # An option is named as the caller gave it: a keyword, not a field
        # of SpawnOptions.
        test.assertNotIn("SpawnOptions.", message)
        raising = {"bad", "fails", "may"} if machineAtCall else {"bad"}
        test.assertTrue(
            any(
                v.kind in raising
                and v.error is type(error)
                and any(named(name, message) for name in v.names)
                for v in verdicts
            ),
            f"{type(error).__name__}({message!r}) names no argument that calls for it: "
            f"{verdicts}",
        )
        return
    test.fail(f"{call.entry} raised {error!r}: not a clear error of the call")


def judgeUnsupported(
    test: SynchronousTestCase,
    call: Call,
    verdicts: list[Verdict],
    error: UnsupportedFeature,
) -> None:
    """
    Check an L{UnsupportedFeature} (of the call, or of L{run}'s Deferred):
    an argument calls for it (C{cgroup=} here: a parent that is no cgroup,
    limits whose controllers this hierarchy lacks), and its message names
    all it must (the option; the controller and the limits that need it).
    """
    message = str(error)
    test.assertTrue(
        any(
            v.kind in ("fails", "may")
            and v.error is UnsupportedFeature
            and all(named(name, message) for name in v.names)
            for v in verdicts
        ),
        f"{call.entry} raised UnsupportedFeature({message!r}), which no argument "
        f"calls for, or without naming what it must: {verdicts}",
    )


def judgeCgroup(
    test: SynchronousTestCase,
    expect: str | None,
    parent: str,
    stats: object,
    unavailable: object,
) -> None:
    """
    Check what a child that ran got for its C{cgroup=}.

    @param expect: See L{tests.adversarial.fuzzcalls.CgroupNode.expect};
        C{None}: no cgroup was asked for.
    @param parent: The scratch parent cgroup.
    @param stats: The statistics it had (the transport's C{cgroupStats},
        the result's C{cgroup}).
    @param unavailable: Why it had no cgroup (C{cgroupUnavailable}).
    """
    if expect == "leaf":
        test.assertIsInstance(stats, CgroupStats)
        assert isinstance(stats, CgroupStats)
        test.assertEqual(os.path.dirname(stats.path), parent, stats)
        test.assertIn(stats.placement, ("clone", "procs"), stats)
        test.assertIsNone(unavailable)
    elif expect == "unavailable":
        test.assertIsNone(stats)
        test.assertIsInstance(unavailable, str)
        test.assertTrue(unavailable, "an empty reason")
    else:
        test.assertEqual((stats, unavailable), (None, None))


def ownCgroupLines() -> str:
    """
    This process's cgroups (C{/proc/self/cgroup}).
    """
    with open("/proc/self/cgroup") as f:
        return f.read()


def leavesIn(parent: str | None) -> list[str]:
    """
    The cgroups in C{parent} (none when there is no scratch parent).
    """
    if parent is None or not os.path.isdir(parent):
        return []
    return sorted(
        name for name in os.listdir(parent) if os.path.isdir(os.path.join(parent, name))
    )


def removeLeaves(parent: str, names: list[str]) -> None:
    """
    Kill what is in the leaves C{names} of C{parent} and remove them (so
    that one failure does not spill into the next example).
    """
    for name in names:
        path = os.path.join(parent, name)
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                os.sched_yield()


def resultDeferred(value: object) -> Deferred[Any]:
    """
    The Deferred of what L{run} (the Deferred itself) or L{stream} (its
    C{result}) returned.
    """
    if isinstance(value, Deferred):
        return value
    _drain(value)
    return value.result  # type: ignore[attr-defined,no-any-return]


def _drain(outputStream: Any) -> None:
    """
    Take every chunk of L{stream}'s output as it comes, as a consumer does:
    the stream pauses the child's pipes once more than C{highWater} bytes
    wait, and it cannot see the pipes' end of file (so cannot end) until its
    output is taken.
    """

    def take(chunk: object) -> None:
        if chunk is not None:
            outputStream.nextChunk().addCallbacks(take, lambda failure: None)

    try:
        first = outputStream.nextChunk()
    except RuntimeError:
        return  # the call gave onOutput: that consumer takes the output
    first.addCallbacks(take, lambda failure: None)


def record(d: Deferred[Any]) -> list[object]:
    """
    What C{d} fires with (a result or a L{Failure}), once it does; the
    failure is handled.
    """
    results: list[object] = []
    d.addBoth(results.append)
    return results


def runFunction(call: Call) -> Callable[..., Any]:
    return run if call.entry == "run()" else stream


# -- the tests -------------------------------------------------------------------------


class FuzzMixin(MixinBase):
    """
    The fuzz of C{spawnProcess}, L{run} and L{stream} on real reactors of
    one engine x monitor, each example checked against the fake reactor.
    """

    def setUp(self) -> None:
        super().setUp()
        self.openFD = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, self.openFD)
        self.tmp = tempfile.mkdtemp(prefix="txspawn-fuzz-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # The parent of every Cgroup drawn (a new one per test: txspawn
        # keeps what it found of a parent for the process's life).
        self.cgroupParent = (
            makeTestParent(self) if CGROUPS else "/sys/fs/cgroup/txspawn-fuzz-none"
        )

    @contextmanager
    def noLeaks(self) -> Iterator[None]:
        """
        Check that the block leaves no fd, child or zombie, no cgroup leaf
        in the scratch parent (the block ends with the reactors stopped:
        the spare leaf a reactor keeps ready is removed at its shutdown),
        and changes neither this process's cgroup, the C{SIGCHLD} handler
        nor the signal wakeup fd.  Children and leaves left are killed and
        reaped, so that a failure does not cascade.
        """
        fds = openFDs()
        children = set(childrenOf(os.getpid()))
        sigchld = signal.getsignal(signal.SIGCHLD)
        wakeup = peekWakeupFD()
        ownCgroups = ownCgroupLines()
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            left = {
                pid: state
                for pid, state in childrenOf(os.getpid()).items()
                if pid not in children
            }
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
            self.flushLoggedErrors(Boom)
            leaves = leavesIn(self.cgroupParent if CGROUPS else None)
            removeLeaves(self.cgroupParent, leaves)
        if succeeded:
            self.assertEqual(leaves, [], "cgroup leaves left in the scratch parent")
            # No spawn may move this process (the "no internal processes"
            # move is for a parent that must enable a controller).
            self.assertEqual(ownCgroupLines(), ownCgroups, "this process moved")
            now = openFDs()
            self.assertEqual(
                (sorted(now - fds), sorted(fds - now)), ([], []), "fds opened, closed"
            )
            self.assertEqual(left, {}, "children left (pid: state)")
            self.assertEqual(signal.getsignal(signal.SIGCHLD), sigchld)
            self.assertEqual(peekWakeupFD(), wakeup)

    def fuzzReactor(self, kind: str) -> Any:
        """
        A reactor spawning with this class's engine and monitor: a txspawn
        reactor, or a stock Twisted one that txspawn was installed on.
        """
        if kind == "txspawn":
            return self.buildReactor()
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self._reactors.append(reactor)
        txspawn.install(reactor, self.engineName, self.monitorName)
        return reactor

    def dropReactor(self, reactor: Any) -> None:
        """
        Tear down a reactor of L{fuzzReactor} now.
        """
        uninstallSpawner(reactor)
        self._unbuildReactor(reactor)
        self._reactors.remove(reactor)

    def callOn(
        self,
        reactor: Any,
        make: Callable[[], object],
        whileRunning: bool,
        ended: Callable[[Any], Deferred[Any]],
    ) -> Outcome:
        """
        Call C{make} before the reactor runs or once it runs, and, if it
        returned, run the reactor until C{ended(what it returned)} fires.
        """
        outcomes: list[Outcome] = []

        def go() -> bool:
            outcome = attempt(make)
            outcomes.append(outcome)
            if outcome.error is not None:
                return False
            ended(outcome.value).addBoth(lambda _: reactor.callLater(0, reactor.stop))
            return True

        if whileRunning:

            def inside() -> None:
                if not go():
                    reactor.stop()

            reactor.callWhenRunning(inside)
            self.runReactor(reactor, CHILD_TIMEOUT)
        elif go():
            self.runReactor(reactor, CHILD_TIMEOUT)
        return outcomes[0]

    # spawnProcess

    def spawnReal(
        self, call: Call, fixed: bool, kind: str, whileRunning: bool
    ) -> Outcome:
        """
        Make C{call} on a real reactor, check what it did, and run its child
        to its end.
        """
        reactor = self.fuzzReactor(kind)
        ctx = Context(reactor, self.openFD, self.tmp, self.cgroupParent)
        try:
            kwargs: dict[str, Any] = {}

            def spawn() -> object:
                # Made at the call: an fd closed then may have been opened
                # since the call was drawn (by the reactor's start, say).
                kwargs.update(call.kwargs(ctx, fixed))
                return reactor.spawnProcess(**kwargs)

            outcome = self.callOn(
                reactor, spawn, whileRunning, lambda transport: transport.whenEnded()
            )
            verdicts = call.verdicts(fixed)
            judgeAtCall(self, call, verdicts, outcome, machineAtCall=True)
            if outcome.error is None:
                self.judgeEnded(
                    call, verdicts, kwargs["processProtocol"], outcome.value
                )
                transport = outcome.value
                judgeCgroup(
                    self,
                    cgroupExpectation(call, fixed),
                    self.cgroupParent,
                    transport.cgroupStats,
                    transport.cgroupUnavailable,
                )
                protocol = kwargs["processProtocol"]
                if isinstance(protocol, FuzzProtocol) and protocol.ended:
                    # The exit reason carries the statistics of the reaping.
                    reason: Any = protocol.ended[0].value
                    self.assertEqual(
                        reason.cgroup is None, transport.cgroupStats is None
                    )
            self.assertEqual(reactor.getDelayedCalls(), [])
            return outcome
        finally:
            self.dropReactor(reactor)
            ctx.close()

    def judgeEnded(
        self, call: Call, verdicts: list[Verdict], protocol: object, transport: Any
    ) -> None:
        """
        Check a child that was spawned: it ended once, as its command says
        when nothing is wrong with the call.
        """
        self.assertIsNone(transport.pid)
        if not isinstance(protocol, FuzzProtocol):
            return
        self.assertEqual(protocol.made, 1)
        self.assertEqual(len(protocol.ended), 1, protocol.ended)
        self.assertIsNone(protocol.pidAtEnd)
        reason: Any = protocol.ended[0].value
        self.assertIsInstance(reason, (ProcessDone, ProcessTerminated))
        if not verdicts:
            self.assertEqual((reason.exitCode, reason.signal), (call.exitCode, None))

    def spawnFake(self, call: Call, fixed: bool) -> Outcome:
        """
        Make C{call} on the fake reactor, and play its child's exit.
        """
        reactor = MemoryProcessReactor()
        ctx = Context(reactor, self.openFD, self.tmp, self.cgroupParent)
        try:
            kwargs = call.kwargs(ctx, fixed)
            outcome = attempt(lambda: reactor.spawnProcess(**kwargs))
            if outcome.error is None:
                self.assertEqual(len(reactor.spawned), 1)
                transport = outcome.value
                transport.exit(call.exitCode)
                self.judgeEnded(call, [], kwargs["processProtocol"], transport)
            else:
                self.assertEqual(reactor.spawned, [])
            return outcome
        finally:
            ctx.close()

    @scaledSettings(30, 400)
    @given(
        call=spawnProcessCalls(),
        kind=st.sampled_from(["txspawn", "installed"]),
        whileRunning=st.booleans(),
    )
    def test_spawnProcess(self, call: Call, kind: str, whileRunning: bool) -> None:
        """
        C{spawnProcess} raises a clear error at the call, or its child runs
        and ends, with nothing left behind; the fake gives the real
        reactor's answer for the call with this machine's problems fixed,
        and the same kind of answer for the call as drawn.
        """
        self.checkSpawnProcess(call, kind, whileRunning)

    @scaledSettings(25, 300)
    @given(
        call=spawnProcessCalls(always=("cgroup",)),
        kind=st.sampled_from(["txspawn", "installed"]),
        whileRunning=st.booleans(),
    )
    def test_spawnProcessCgroup(
        self, call: Call, kind: str, whileRunning: bool
    ) -> None:
        """
        L{test_spawnProcess} for calls that all have C{cgroup=}
        (L{tests.adversarial.fuzzcalls.cgroupKinds}): also, a child with a
        cgroup ran in a leaf of the scratch parent (its statistics on the
        transport and the exit reason), one whose best-effort cgroup could
        not be had says why, a parent that is no cgroup or limits this
        hierarchy lacks are an L{UnsupportedFeature} at the call naming
        C{cgroup} (and the controller and limits), and no leaf is left.
        """
        self.checkSpawnProcess(call, kind, whileRunning)

    def checkSpawnProcess(self, call: Call, kind: str, whileRunning: bool) -> None:
        with self.noLeaks():
            real = self.spawnReal(call, False, kind, whileRunning)
            fake = self.spawnFake(call, False)
            if call.onMachine():
                realFixed = self.spawnReal(call, True, kind, whileRunning)
                fakeFixed = self.spawnFake(call, True)
            else:
                realFixed, fakeFixed = real, fake
        event(f"spawnProcess: {describe(real)}, fixed: {describe(realFixed)}")
        event(f"spawnProcess: cgroup {cgroupExpectation(call, False)}")
        self.assertEqual(fakeFixed.kind(), realFixed.kind())
        self.assertEqual(fake.kind()[0], fakeFixed.kind()[0])

    # run() and stream()

    def runReal(self, call: Call, kind: str, whileRunning: bool) -> Outcome:
        """
        Make C{call} (of L{run} or L{stream}) on a real reactor, check what
        it did, and run it to its end.
        """
        reactor = self.fuzzReactor(kind)
        ctx = Context(reactor, self.openFD, self.tmp, self.cgroupParent)
        results: list[object] = []

        def ended(value: object) -> Deferred[Any]:
            d = resultDeferred(value)
            # The failure, if any, is handled: append returns None.
            d.addBoth(results.append)
            return d

        try:

            def start() -> object:
                # Made at the call (see spawnReal).
                kwargs = call.kwargs(ctx, False)
                argv = kwargs.pop("argv")
                return runFunction(call)(argv, **kwargs)

            outcome = self.callOn(reactor, start, whileRunning, ended)
            verdicts = call.verdicts(False)
            judgeAtCall(self, call, verdicts, outcome, machineAtCall=False)
            if outcome.error is None:
                self.judgeResult(call, verdicts, results)
            self.assertEqual(reactor.getDelayedCalls(), [])
            return outcome
        finally:
            self.dropReactor(reactor)
            ctx.close()

    def judgeResult(
        self, call: Call, verdicts: list[Verdict], results: list[object]
    ) -> None:
        """
        Check what the Deferred of L{run} or L{stream} fired with.
        """
        self.assertEqual(len(results), 1, results)
        result = results[0]
        kinds = {v.kind for v in verdicts}
        if "fails" in kinds:
            self.assertIsInstance(result, Failure)
            assert isinstance(result, Failure)
            self.assertNotIsInstance(result.value, ProcessFailed)
            if isinstance(result.value, UnsupportedFeature):
                judgeUnsupported(self, call, verdicts, result.value)
            return
        ran = result
        if isinstance(ran, Failure) and isinstance(ran.value, ProcessFailed):
            ran = ran.value.result
        if isinstance(ran, ProcessResult):
            judgeCgroup(
                self,
                cgroupExpectation(call, False),
                self.cgroupParent,
                ran.cgroup,
                ran.cgroupUnavailable,
            )
        if not kinds:
            if call.given("check") is True and call.exitCode:
                self.assertIsInstance(result, Failure)
                assert isinstance(result, Failure)
                result.trap(ProcessFailed)
                result = cast(ProcessFailed, result.value).result
            self.assertIsInstance(result, ProcessResult)
            assert isinstance(result, ProcessResult)
            self.assertEqual((result.exitCode, result.signal), (call.exitCode, None))

    def runFake(self, call: Call, fixed: bool) -> Outcome:
        """
        Make C{call} (of L{run} or L{stream}) on the fake reactor; play its
        child's exit.
        """
        reactor = MemoryProcessReactor()
        ctx = Context(reactor, self.openFD, self.tmp, self.cgroupParent)
        try:
            kwargs = call.kwargs(ctx, fixed)
            argv = kwargs.pop("argv")
            outcome = attempt(lambda: runFunction(call)(argv, **kwargs))
            if outcome.error is None:
                results = record(resultDeferred(outcome.value))
                if fixed:
                    self.assertEqual((len(reactor.spawned), results), (1, []))
                for transport in reactor.transports:
                    transport.exit(call.exitCode)
                self.assertEqual(len(results), 1)
            return outcome
        finally:
            ctx.close()

    @scaledSettings(25, 300)
    @given(
        call=st.sampled_from(["run()", "stream()"]).flatmap(runCalls),
        kind=st.sampled_from(["txspawn", "installed"]),
        whileRunning=st.booleans(),
    )
    def test_runAndStream(self, call: Call, kind: str, whileRunning: bool) -> None:
        """
        L{run} and L{stream} raise a clear error at the call, or their
        Deferred fires once the child ended (with the child's result, or
        the spawn's error when this machine makes it fail), with nothing
        left behind; on the fake reactor the call gives the same answer.
        """
        self.checkRunAndStream(call, kind, whileRunning)

    @scaledSettings(20, 300)
    @given(
        call=st.sampled_from(["run()", "stream()"]).flatmap(
            lambda entry: runCalls(entry, always=("cgroup",))
        ),
        kind=st.sampled_from(["txspawn", "installed"]),
        whileRunning=st.booleans(),
    )
    def test_runAndStreamCgroup(
        self, call: Call, kind: str, whileRunning: bool
    ) -> None:
        """
        L{test_runAndStream} for calls that all have C{cgroup=}: also, the
        result's C{cgroup} and C{cgroupUnavailable} are those of the
        child's cgroup, an L{UnsupportedFeature} fails the Deferred naming
        what it must, and no leaf is left.
        """
        self.checkRunAndStream(call, kind, whileRunning)

    def checkRunAndStream(self, call: Call, kind: str, whileRunning: bool) -> None:
        with self.noLeaks():
            real = self.runReal(call, kind, whileRunning)
            fake = self.runFake(call, False)
            fakeFixed = self.runFake(call, True) if call.onMachine() else fake
        event(f"{call.entry}: {describe(real)}")
        event(f"{call.entry}: cgroup {cgroupExpectation(call, False)}")
        self.assertEqual(fake.kind(), real.kind())
        self.assertEqual(fake.kind()[0], fakeFixed.kind()[0])


globals().update(makeTestCaseClasses(FuzzMixin))


class FakeAndOptionsTests(SynchronousTestCase):
    """
    The fuzz of the fake reactor alone (no process: many examples), and of
    L{SpawnOptions}.
    """

    def setUp(self) -> None:
        self.openFD = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, self.openFD)
        self.tmp = tempfile.mkdtemp(prefix="txspawn-fuzz-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # The fakes do not look at it.
        self.cgroupParent = "/sys/fs/cgroup/txspawn-fuzz-fake"

    @scaledSettings(150, 2000)
    @given(
        call=st.one_of(
            spawnProcessCalls(),
            st.sampled_from(["run()", "stream()"]).flatmap(runCalls),
        )
    )
    def test_fakeReactor(self, call: Call) -> None:
        """
        The fake reactor raises what a real one raises for the input with
        this machine's problems fixed (it does not look at the machine), or
        returns a transport that plays its part; nothing is opened.
        """
        fds = openFDs()
        reactor = MemoryProcessReactor()
        ctx = Context(reactor, self.openFD, self.tmp, self.cgroupParent)
        try:
            kwargs = call.kwargs(ctx, False)
            if call.entry == "spawnProcess()":
                outcome = attempt(lambda: reactor.spawnProcess(**kwargs))
            else:
                argv = kwargs.pop("argv")
                outcome = attempt(lambda: runFunction(call)(argv, **kwargs))
            judgeAtCall(self, call, call.verdicts(True), outcome, machineAtCall=False)
            results: list[object] = []
            if outcome.error is None and call.entry == "spawnProcess()":
                self.assertEqual(len(reactor.spawned), 1)
            elif outcome.error is None:
                results = record(resultDeferred(outcome.value))
            for transport in reactor.transports:
                transport.exit(call.exitCode)
            if outcome.error is None and call.entry != "spawnProcess()":
                self.assertEqual(len(results), 1)
        finally:
            ctx.close()
            self.flushLoggedErrors(Boom)
        self.assertEqual(openFDs(), fds)

    @scaledSettings(150, 1500)
    @given(options=composeArguments({}, spawnOptionKinds(), SPAWN_KEYWORDS))
    def test_spawnOptions(self, options: dict[str, Arg]) -> None:
        """
        L{SpawnOptions} raises a L{TypeError} or L{ValueError} naming the
        field that calls for it, or holds values that pass its own checks
        again (C{evolve}); the same options given as keywords to
        C{spawnProcess} give the same kind of answer.
        """
        call = Call(
            "SpawnOptions()",
            tuple(options.items()),
            tuple(optionCombinations(options, pty=False)),
        )
        ctx = Context(None, self.openFD, self.tmp, self.cgroupParent)
        kwargs = call.kwargs(ctx, False)
        outcome = attempt(lambda: SpawnOptions(**kwargs))
        verdicts = [v for v in call.verdicts(False) if v.kind == "bad"]
        if outcome.error is None:
            self.assertEqual(verdicts, [])
            built = outcome.value
            self.assertEqual(evolve(built), built)
            self.assertEqual(hash(evolve(built)), hash(built))
            groups = call.given("groups")
            if "groups" in options and isinstance(options["groups"].node, OnMachine):
                self.assertRaises(ValueError, built.groupIDs)
            elif built.groups is not None:
                self.assertTrue(all(isInt(gid) for gid in built.groupIDs()), groups)
        else:
            error = outcome.error
            self.assertIn(type(error), (TypeError, ValueError), repr(error))
            message = str(error)
            self.assertTrue(
                any(
                    v.error is type(error)
                    and any(
                        named(f"SpawnOptions.{name}", message) or named(name, message)
                        for name in v.names
                    )
                    for v in verdicts
                ),
                f"{message!r} names no argument that calls for it: {verdicts}",
            )
        # The keyword form, on the fake reactor: it checks the options in
        # the order given, SpawnOptions in the order of its fields, so with
        # several wrong they may name different ones.
        keywords = Call("spawnProcess()", call.arguments, call.combinations)
        fake = attempt(
            lambda: MemoryProcessReactor().spawnProcess(
                FuzzProtocol(), "/bin/true", ["true"], **keywords.kwargs(ctx, False)
            )
        )
        judgeAtCall(self, keywords, verdicts, fake, machineAtCall=False)
        if len(verdicts) <= 1:
            self.assertEqual(fake.kind()[0], outcome.kind()[0])


class CgroupOptionsTests(SynchronousTestCase):
    """
    The fuzz of L{Cgroup} alone: its fields good and bad.
    """

    @scaledSettings(200, 3000)
    @given(fields=composeArguments({}, cgroupFieldKinds(), frozenset()))
    def test_cgroup(self, fields: dict[str, Arg]) -> None:
        """
        L{Cgroup} raises a L{TypeError} or L{ValueError} naming
        C{Cgroup.<field>} for a field that calls for it, or holds values that
        pass its own checks again (C{evolve}), whose limits need the
        controllers they name; given as C{cgroup=} to the fake reactor's
        C{spawnProcess} (which checks it as a real one), it is taken.
        """
        call = Call("Cgroup()", tuple(fields.items()))
        ctx = Context(None, -1, "/tmp", "/sys/fs/cgroup/txspawn-fuzz-fake")
        kwargs = call.kwargs(ctx, False)
        verdicts = call.verdicts(False)
        outcome = attempt(lambda: Cgroup(**kwargs))
        event(f"Cgroup(): {describe(outcome)}")
        if outcome.error is not None:
            error = outcome.error
            self.assertIn(type(error), (TypeError, ValueError), repr(error))
            message = str(error)
            self.assertTrue(
                any(
                    v.error is type(error) and any(named(n, message) for n in v.names)
                    for v in verdicts
                ),
                f"{type(error).__name__}({message!r}) names no field that calls for "
                f"it: {verdicts}",
            )
            return
        self.assertEqual(verdicts, [])
        built: Cgroup = outcome.value
        self.assertEqual(evolve(built), built)
        self.assertEqual(hash(evolve(built)), hash(built))
        if built.parent is not None:
            self.assertEqual(os.path.normpath(built.parent), built.parent)
            self.assertTrue(built.parent.startswith("/"), built.parent)
        limits = {
            "memory": built.memoryMax is not None or built.memoryHigh is not None,
            "pids": built.pidsMax is not None,
            "cpu": built.cpuMax is not None,
            "io": built.ioWeight is not None,
        }
        self.assertEqual(
            built.controllersNeeded(), {name for name, on in limits.items() if on}
        )
        reactor = MemoryProcessReactor()
        transport = reactor.spawnProcess(
            FuzzProtocol(), "/bin/true", ["true"], cgroup=built
        )
        self.assertEqual(len(reactor.spawned), 1)
        transport.exit(0)


def knownBug(reason: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """
    Mark a test of a bug that is known and not fixed yet (outside the files
    of this module's task): the test passes while its assertions fail, and
    fails once they pass, so that the mark and the fuzz's exclusion of the
    input are removed then.  (Trial's C{todo} and L{unittest.expectedFailure}
    do not work under both trial and pytest.)
    """

    def decorate(test: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(test)
        def wrapper(self: Any) -> None:
            try:
                test(self)
            except self.failureException:
                return
            self.fail(
                f"known bug fixed ({reason}): remove @knownBug and let the fuzz "
                "draw the input again"
            )

        return wrapper

    return decorate


class KnownBugTests(ReactorTestMixin, SynchronousTestCase):
    """
    Bugs the fuzz found whose cause is outside its files; their inputs are
    left out of the fuzz until they are fixed.
    """

    engineName = "python"
    monitorName = "pidfd"

    @knownBug(
        "the Python engine's fork path (taken for uid, gid, path...) execs "
        "with os.execve, which refuses an empty argv and an empty argv[0] "
        "(ValueError in the child, reported as SpawnError EINVAL at the exec "
        "stage); the C engine and the Python engine's posix_spawn path run "
        "the program"
    )
    def test_emptyArgs(self) -> None:
        """
        C{args=[]} (Twisted's default is C{()}) and C{args=[""]} give one
        answer from both engines, whatever the path a spawn takes: the
        child runs.
        """
        reason = _engineUnavailable("c")
        if reason is not None:
            raise SkipTest(reason)
        for args in ([], [""]):
            for engine in ("c", "python"):
                for extra in ({}, {"gid": os.getgid()}):
                    outcome = self.spawnAndEnd(engine, args, extra)
                    self.assertEqual(
                        outcome, "exit 0", f"{engine} engine, {args!r}, {extra!r}"
                    )

    def spawnAndEnd(self, engine: str, args: list[str], extra: dict[str, Any]) -> str:
        """
        Spawn C{/bin/true} with C{args} on a reactor of C{engine}: what
        happened?
        """
        from txspawn.reactor import EPollReactor

        reactor = EPollReactor(engine=engine, monitor=self.monitorName)
        self._reactors.append(reactor)
        protocol = FuzzProtocol()
        outcome = attempt(
            lambda: reactor.spawnProcess(protocol, "/bin/true", args, **extra)
        )
        if outcome.error is not None:
            return describe(outcome)
        outcome.value.whenEnded().addBoth(lambda _: reactor.callLater(0, reactor.stop))
        self.runReactor(reactor, CHILD_TIMEOUT)
        reason: Any = protocol.ended[0].value
        return f"exit {reason.exitCode}"


class FoundBugTests(ReactorTestMixin, SynchronousTestCase):
    """
    Bugs the fuzz found, fixed: each input stated alone, on every entry
    point it reaches (the fuzz draws these inputs too).
    """

    engineName = "python"
    monitorName = "pidfd"

    def realReactors(self) -> Iterator[Any]:
        """
        A txspawn reactor of each engine x monitor.
        """
        reason = _engineUnavailable("c")
        if reason is not None:
            raise SkipTest(reason)
        from txspawn.reactor import EPollReactor

        for engine in ("c", "python"):
            for monitor in ("pidfd", "sigchld"):
                reactor = EPollReactor(engine=engine, monitor=monitor)
                self._reactors.append(reactor)
                yield reactor

    def test_childFDsBeyondKernel(self) -> None:
        """
        A C{childFDs} key no process can have (above Linux's ceiling on
        C{fs.nr_open}, minus one) is a L{ValueError} of the call naming
        C{childFDs} and the valid range, from both engines and monitors
        and the fake reactor; the highest key a process could have, above
        this one's fd limit, is a L{SpawnError} C{EBADF} at the C{FDS}
        stage from both engines.  (The C engine used to refuse C{2**31 - 1}
        with an error about its fd program, the Python engine's fork path
        with one about the fd planner.)
        """
        spawnArgs = ("/bin/sh", ["sh", "-c", "exit 0"])
        reactors = [*self.realReactors(), MemoryProcessReactor()]
        for key in (2**31 - 1, CHILD_FD_MAX + 1):
            childFDs = {key: "r", 0: "r", 1: "r", 30: "r"}
            messages = set()
            for reactor in reactors:
                fds = openFDs()
                outcome = attempt(
                    functools.partial(
                        reactor.spawnProcess,
                        FuzzProtocol(),
                        *spawnArgs,
                        childFDs=childFDs,
                    )
                )
                self.assertIsInstance(outcome.error, ValueError, f"{key}, {reactor!r}")
                messages.add(str(outcome.error))
                self.assertEqual(openFDs(), fds)
            self.assertEqual(
                messages,
                {
                    f"spawnProcess(): childFDs[{key}]: a child fd must be an int "
                    f"from 0 to {CHILD_FD_MAX} (the highest fd a process can "
                    f"have), not {key}"
                },
            )
        for reactor in reactors[:-1]:
            fds = openFDs()
            outcome = attempt(
                functools.partial(
                    reactor.spawnProcess,
                    FuzzProtocol(),
                    *spawnArgs,
                    childFDs={CHILD_FD_MAX: "r", 0: "r", 1: "r", 30: "r"},
                )
            )
            error = outcome.error
            self.assertIsInstance(error, SpawnError, repr(reactor))
            assert isinstance(error, SpawnError)
            self.assertEqual(
                (error.stage, error.errno), (ChildSetupStage.FDS, errno.EBADF)
            )
            self.assertEqual(openFDs(), fds)

    def test_unencodableLogFile(self) -> None:
        """
        A C{logFile} path that cannot be encoded is a L{ValueError} naming
        it, raised by L{run} and L{stream} (their Deferred used to fail with
        a L{UnicodeEncodeError} when the log was opened).
        """
        reactor = MemoryProcessReactor()
        for logFile in ("/tmp/log\ud800", pathlib.PurePosixPath("/tmp/log\udfff")):
            for entry in ("run()", "stream()"):
                self.assertCallRaises(
                    reactor, entry, ValueError, "logFile", {"logFile": logFile}
                )
        self.assertEqual(reactor.spawned, [])

    def test_hugeDurations(self) -> None:
        """
        C{timeout}, C{killAfter} and C{closePipesAfterExit} of C{10**400}
        (beyond the largest float) make C{spawnProcess} (the fake reactor's,
        which makes the real one's checks), L{run} and L{stream} raise a
        L{ValueError} naming the option (they used to raise an
        L{OverflowError} naming nothing).
        """
        for name in ("timeout", "killAfter", "closePipesAfterExit"):
            for huge in (10**400, -(10**400)):
                options: dict[str, Any] = {name: huge}
                if name == "killAfter":
                    options["timeout"] = 1
                reactor = MemoryProcessReactor()
                for entry in ("spawnProcess()", "run()", "stream()"):
                    self.assertCallRaises(reactor, entry, ValueError, name, options)
                self.assertEqual(reactor.spawned, [])

    def test_processGroupBeyondPidT(self) -> None:
        """
        A C{processGroup} that does not fit C{pid_t} is a L{ValueError}
        naming it, from L{SpawnOptions} and every entry point, on real
        reactors too (the Python engine used to start a child told
        C{2**32} or C{2**64}, truncated to C{0}, as the leader of a new
        group).
        """
        reactors = list(self.realReactors())
        for pgid in (2**31, 2**32, 2**40, 2**64):
            with self.assertRaises(ValueError) as caught:
                SpawnOptions(processGroup=pgid)
            self.assertIn("SpawnOptions.processGroup", str(caught.exception))
            fake = MemoryProcessReactor()
            for entry in ("spawnProcess()", "run()", "stream()"):
                for reactor in (fake, *reactors):
                    self.assertCallRaises(
                        reactor,
                        entry,
                        ValueError,
                        "processGroup",
                        {"processGroup": pgid},
                    )
            self.assertEqual(fake.spawned, [])

    def test_optionErrorsNameTheKeyword(self) -> None:
        """
        An error about a spawn option given as a keyword names the keyword,
        not the L{SpawnOptions} field (the planner's errors about
        C{processGroup} with C{usePTY}, and about an unknown group, used to
        name C{SpawnOptions.processGroup} and C{SpawnOptions.groups[0]}).
        """
        cases: list[tuple[dict[str, Any], str, bool]] = [
            (
                {"usePTY": True, "processGroup": 0},
                "spawnProcess(): processGroup cannot be used with usePTY",
                True,
            ),
            (
                {"groups": ["no-such-group-txspawn-fuzz"]},
                "spawnProcess(): groups[0]: unknown group 'no-such-group-txspawn-fuzz'",
                # The fake does not look group names up.
                False,
            ),
        ]
        reactors = list(self.realReactors())
        for options, expected, fakeToo in cases:
            for reactor in [*reactors, *([MemoryProcessReactor()] if fakeToo else [])]:
                outcome = attempt(
                    functools.partial(
                        reactor.spawnProcess,
                        FuzzProtocol(),
                        "/bin/true",
                        ["true"],
                        **options,
                    )
                )
                self.assertIsInstance(outcome.error, ValueError, repr(reactor))
                message = str(outcome.error)
                self.assertTrue(message.startswith(expected), message)
                self.assertNotIn("SpawnOptions", message)

    def assertCallRaises(
        self,
        reactor: Any,
        entry: str,
        error: type[Exception],
        name: str,
        options: dict[str, Any],
    ) -> None:
        """
        Call C{entry} with C{options} on C{reactor}: it raises C{error},
        whose message starts with C{entry} and names C{name}.
        """
        if entry == "spawnProcess()":
            outcome = attempt(
                lambda: reactor.spawnProcess(
                    FuzzProtocol(), "/bin/true", ["true"], **options
                )
            )
        else:
            function = run if entry == "run()" else stream
            outcome = attempt(
                lambda: function(["/bin/true"], reactor=reactor, **options)
            )
            if outcome.error is None:
                # Its failure is handled.
                record(resultDeferred(outcome.value))
        self.assertIsInstance(outcome.error, error, entry)
        message = str(outcome.error)
        self.assertTrue(message.startswith(f"{entry}: "), message)
        self.assertTrue(named(name, message), message)
