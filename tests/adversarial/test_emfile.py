"""
C{EMFILE} at every step of a spawn, with recovery (issue 11, item 6).

A spawn opens several fds in the parent, one after the other: the pipes of
its C{childFDs} (or a pty's master and slave), the engine's own (the C
engine's error pipe on its ordinary path, the Python engine's on its fork
path), the child's pidfd (C{clone3(CLONE_PIDFD)} or C{pidfd_open}), and
the SIGCHLD wakeup pipe: the first time a spawner installed onto a stock
reactor spawns with the sigchld monitor, or, under the pidfd monitor, for a
protocol that asks for stop and continue notifications (before its child
is started).  Each test here makes each of
those steps fail in turn, on the real kernel: L{FDBudget} lowers the soft
C{RLIMIT_NOFILE} so that exactly I{k} more fds can be opened (the kernel
hands out the lowest free number and fails with C{EMFILE} when that is not
below the soft limit, so the free numbers below the limit are counted,
holes in the fd table included), for I{k} = 0, 1, 2, ... until the spawn
succeeds.  For every I{k} below that:

  - the spawn fails at the call (C{spawnProcess} raises; C{run()} and
    C{stream()} fail their Deferred at once) with the error the docs
    promise for fd exhaustion (C{docs/design/compatibility.rst}): a
    L{SpawnError} with C{errno} C{EMFILE} and stage C{SPAWN} (C{CGROUP}
    for the fds of a child's cgroup leaf, C{cgroup=});
  - it leaves nothing behind, checked right when the call returns: no new
    fd, no child (alive or zombie), no reactor reader or writer, no child
    watched by the monitor, no timer, no shutdown trigger (a spawner
    installed onto a stock reactor may add its one trigger, once), no
    protocol connected, no cgroup leaf (the spare leaf the reactor makes
    ahead in the turn after a spawn may be used up, never made by the
    call: L{CgroupView});
  - with the limit back, the next spawn on the same reactor works and its
    child exits with the right status and output, and that leaves nothing
    behind either.

The spawn at the smallest I{k} that succeeds must run normally too.  The
measured need must be at least what the spawn's fds need at once (both ends
of each pipe and the pidfd), so that a broken budget, which would let the
first spawn succeed, fails the test instead of skipping every step.

L{ExhaustedWhileAliveMixin} covers the other side: children spawned
normally, then every fd used up while they run: a further spawn fails
cleanly, and their exits are still noticed and reaped (the pidfd monitor's
pidfds and the SIGCHLD wakeup pipe already exist; reaping needs no new fd).

Every test runs on both engines and both monitors.  Sizes
(L{tests.adversarial.scaled}): the default suite sweeps once per test; the
long form repeats each sweep on the same reactor with different holes in
the fd table (so the spawn's fds land between fds the process holds) and
keeps more children alive during the exhaustion.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from attrs import frozen
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.error import ProcessTerminated
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer

import txspawn
from tests.adversarial import scaled
from tests.adversarial.fuzzcalls import CGROUP_OFFERED
from tests.builders import MixinBase, RecordingProtocol, makeTestCaseClasses
from tests.cgrouptransportutil import cgroupSkipReason, makeTestParent
from tests.hygiene import childrenOf, openFDs, peekWakeupFD
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import IProcessStateObserver
from txspawn.options import Cgroup

__all__ = [
    "CgroupFirstUseTests",
    "EMFILESweepMixin",
    "ExhaustedWhileAliveMixin",
    "FDBudgetTests",
    "ObservingProtocol",
]

#: Sweeps per test, each on the same reactor: the long form repeats them
#: with different holes in the fd table.
ROUNDS = scaled(1, 6)

#: Children of each kind alive while the fd table is exhausted.
ALIVE = scaled(2, 20)

#: No spawn here needs this many fds; a sweep that gets this far fails.
MAX_NEED = 64

SH = b"/bin/sh"

#: The child of every sweep: output on stdout and stderr, exit code 3.  A
#: shell builtin each, so it runs under the parent's low limit, which it
#: inherits.
SCRIPT = b"echo out; echo err >&2; exit 3"

#: Its output, per child fd.
OUTPUT = {1: b"out\n", 2: b"err\n"}

#: A start function: start one child under the budget on the reactor and
#: return a Deferred that fires once it ended and its outcome was checked;
#: raise if the spawn failed.
Start = Callable[[Any], "Deferred[object]"]


class FDBudget:
    """
    C{RLIMIT_NOFILE}'s soft limit lowered, and holes in the fd table
    filled, so that exactly C{k} more fds can be opened.

    The kernel gives each new fd the lowest free number and fails with
    C{EMFILE} when that number is not below the soft limit.  So the free
    numbers below the limit are what can be opened: the holes below the
    highest open fd, then the numbers above it.  L{allow} fills the lowest
    holes with fds of C{/dev/null} (opened the same way, so they take
    exactly those), leaves the highest ones free, and sets the limit just
    above the highest open fd plus whatever the holes do not cover.

    @ivar limits: The limits to restore.
    @ivar fillers: The fds filling holes while the budget is active.
    """

    def __init__(self) -> None:
        self.limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.fillers: list[int] = []
        self.lowered = False

    def allow(self, k: int) -> None:
        """
        Let exactly C{k} more fds be opened, until L{restore}.

        @raise AssertionError: another thread opened an fd meanwhile (the
            count would be wrong).
        """
        held = openFDs()
        top = max(held)
        holes = [fd for fd in range(top) if fd not in held]
        kept = min(k, len(holes))
        toFill = holes[: len(holes) - kept]
        try:
            for _ in toFill:
                self.fillers.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            if self.fillers != toFill:
                raise AssertionError(
                    f"the fillers took {self.fillers}, not the holes {toFill}: "
                    f"another thread opened or closed an fd"
                )
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (top + 1 + k - kept, self.limits[1])
            )
            self.lowered = True
        except BaseException:
            self.restore()
            raise

    def refill(self) -> None:
        """
        Fill whatever numbers were freed below the lowered limit since
        L{allow}, so that no fd can be opened again.
        """
        assert self.lowered
        while True:
            try:
                self.fillers.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError as e:
                if e.errno != errno.EMFILE:
                    raise
                return

    def restore(self) -> None:
        """
        Put the limit back and close the fillers (idempotent).
        """
        if self.lowered:
            self.lowered = False
            resource.setrlimit(resource.RLIMIT_NOFILE, self.limits)
        while self.fillers:
            os.close(self.fillers.pop())


@contextmanager
def holesAtTop(count: int) -> Iterator[None]:
    """
    Make C{count} holes just below the highest open fd, for the duration:
    L{FDBudget} leaves the highest holes free, so a spawn's fds then land
    between fds the process holds.
    """
    opened = [os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) for _ in range(2 * count)]
    # Close every other one, lowest first: the ones kept hold the holes in.
    for fd in sorted(opened)[::2]:
        os.close(fd)
        opened.remove(fd)
    try:
        yield
    finally:
        for fd in opened:
            os.close(fd)


def wakeupPipe(fds: frozenset[int]) -> frozenset[int]:
    """
    The fds among C{fds} of the pipe whose write end is the signal wakeup
    fd (both ends of a pipe share one inode).
    """
    wakeup = peekWakeupFD()
    if wakeup == -1:
        return frozenset()
    identity = _identity(wakeup)
    return frozenset(fd for fd in fds if _identity(fd) == identity)


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def shutdownTriggers(reactor: Any) -> int:
    """
    How many system event triggers the reactor holds for C{"shutdown"}.

    Twisted offers no public way to list triggers; C{_eventTriggers} has
    been its bookkeeping for as long as C{addSystemEventTrigger} exists.
    """
    event = reactor._eventTriggers.get("shutdown")
    if event is None:
        return 0
    return len(event.before) + len(event.during) + len(event.after)


@frozen
class CgroupView:
    """
    The leaves in a scratch parent cgroup, at one moment, and which of
    them is the parent's spare: the next leaf, made ahead by the reactor in
    the turn after a spawn and kept open (its directory and C{cpu.stat}),
    removed after a second without a spawn or at shutdown
    (L{txspawn._cgroup.leaf.prepareSpare}).  The spare is told by its fds:
    the one leaf whose directory this process holds open between spawns.

    @ivar leaves: The names of the leaves in the parent, the spare's too.
    @ivar spare: The spare's name, or C{None}.
    @ivar spareFDs: The fds held on the spare.
    """

    leaves: frozenset[str]
    spare: str | None
    spareFDs: frozenset[int]

    @classmethod
    def take(cls, parent: str, fds: frozenset[int]) -> CgroupView:
        leaves = frozenset(
            name
            for name in os.listdir(parent)
            if os.path.isdir(os.path.join(parent, name))
        )
        held: dict[str, set[int]] = {}
        prefix = parent + "/"
        for fd in fds:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                held.setdefault(target[len(prefix) :].split("/")[0], set()).add(fd)
        if len(held) > 1:
            raise AssertionError(f"fds held on several leaves between spawns: {held}")
        spare = next(iter(held), None)
        return cls(
            leaves, spare, frozenset(held.get(spare, ())) if spare else frozenset()
        )


def spareParentOf(leafRemover: object) -> bool:
    """
    Whether an object is the reactor's cgroup leaf remover, whose timers
    (the spare's making and its idle expiry) belong to the reactor, not to
    one spawn.
    """
    from txspawn._cgroup.removal import LeafRemover

    return isinstance(leafRemover, LeafRemover)


@frozen
class Snapshot:
    """
    What a spawn could leave behind, at one moment.

    With a scratch parent cgroup given, also the leaves in it
    (L{CgroupView}); the spare leaf's fds are then left out of C{fds}, and
    the leaf remover's own timers out of C{delayedCalls}: both belong to
    the reactor's spare, made in a turn after a spawn (never by the call
    itself: see L{SweepMixin.assertNothingLeft}).
    """

    fds: frozenset[int]
    children: frozenset[int]
    readers: frozenset[Any]
    writers: frozenset[Any]
    watched: frozenset[int]
    delayedCalls: int
    triggers: int
    cgroup: CgroupView | None = None

    @classmethod
    def take(
        cls, reactor: Any, monitor: Any, cgroupParent: str | None = None
    ) -> Snapshot:
        """
        @param monitor: The monitor watching the reactor's children.
        @param cgroupParent: A scratch parent cgroup the spawns make their
            leaves in, if any.
        """
        fds = frozenset(openFDs())
        calls = reactor.getDelayedCalls()
        view = None
        if cgroupParent is not None:
            view = CgroupView.take(cgroupParent, fds)
            fds -= view.spareFDs
            calls = [
                c for c in calls if not spareParentOf(getattr(c.func, "__self__", None))
            ]
        return cls(
            fds,
            frozenset(childrenOf(os.getpid())),
            frozenset(reactor.getReaders()),
            frozenset(reactor.getWriters()),
            frozenset(child.pid for child in monitor.watching()),
            len(calls),
            shutdownTriggers(reactor),
            view,
        )


def turn(reactor: Any) -> Deferred[None]:
    """
    A Deferred firing from the reactor's next iteration: what a callback
    does after C{processEnded} (closing the pidfd) is done by then.
    """
    return deferLater(reactor, 0, lambda: None)


def failedAtOnce(deferred: Deferred[Any]) -> Deferred[Any]:
    """
    Raise the error C{deferred} already failed with (a spawn error of
    C{run()} or C{stream()}), consuming it; else return C{deferred}.
    """
    if deferred.called and isinstance(deferred.result, Failure):
        failure = deferred.result
        deferred.addErrback(lambda ignored: None)
        failure.raiseException()
    return deferred


class SweepMixin(MixinBase):
    """
    The sweep and its checks, shared by the test mixins.
    """

    def runInReactor(self, reactor: Any, body: Callable[[], Deferred[Any]]) -> None:
        """
        Run C{reactor} until the Deferred C{body()} returns (called once the
        reactor runs) has fired; raise what it failed with.
        """
        failures: list[Failure] = []

        def go() -> None:
            body().addErrback(failures.append).addBoth(lambda ignored: reactor.stop())

        reactor.callWhenRunning(go)
        self.runReactor(reactor)
        if failures:
            failures[0].raiseException()

    def assertEMFILE(
        self,
        error: BaseException,
        what: str,
        stages: frozenset[ChildSetupStage] = frozenset([ChildSetupStage.SPAWN]),
    ) -> None:
        """
        Assert that C{error} is the documented error for fd exhaustion.

        @param stages: The stages it may name.
        """
        if not isinstance(error, SpawnError):
            self.fail(f"{what}: {error!r} is not a SpawnError")
        self.assertEqual(error.errno, errno.EMFILE, f"{what}: {error!r}")
        self.assertIn(error.stage, stages, f"{what}: {error!r}")

    def assertNothingLeft(
        self,
        before: Snapshot,
        after: Snapshot,
        what: str,
        triggers: list[int],
        turned: bool = True,
    ) -> None:
        """
        Assert that C{after} holds nothing C{before} did not, and lost
        nothing it held.

        The SIGCHLD wakeup pipe a spawner installs onto a stock reactor (and
        its reader) may appear: it belongs to the monitor, installed now,
        not to the spawn.  Shutdown triggers are only counted here (into
        C{triggers}): a spawner installed onto a stock reactor adds its own
        once, and the pidfd monitor keeps its own once it watched a child
        (see L{runSweeps}).

        With a scratch parent cgroup (L{Snapshot.cgroup}), no leaf may
        appear in it but a new spare, and that only if the reactor
        C{turned} in between (a spare is made in the turn after a spawn,
        never by the call): a failed call may only use up the spare that
        was there.

        @param turned: Whether the reactor ran between the two snapshots.
        """
        if before.cgroup is not None and after.cgroup is not None:
            was, now = before.cgroup, after.cgroup
            if not turned:
                self.assertIn(
                    now.spare,
                    (None, was.spare),
                    f"{what}: a leaf left held open (the spare was {was.spare})",
                )
            self.assertEqual(
                sorted(now.leaves - was.leaves - {now.spare}),
                [],
                f"{what}: cgroup leaves left",
            )
            self.assertEqual(
                sorted(was.leaves - now.leaves - {was.spare}),
                [],
                f"{what}: cgroup leaves removed",
            )
        allowed = wakeupPipe(after.fds)
        self.assertEqual(sorted(before.fds - after.fds), [], f"{what}: fds closed")
        self.assertEqual(
            sorted(after.fds - before.fds - allowed), [], f"{what}: fds left open"
        )
        self.assertEqual(
            sorted(after.children - before.children), [], f"{what}: children left"
        )
        for name, old, new in (
            ("readers", before.readers, after.readers),
            ("writers", before.writers, after.writers),
        ):
            left = [d for d in new - old if d.fileno() not in allowed]
            self.assertEqual(left, [], f"{what}: {name} left registered")
            self.assertEqual(list(old - new), [], f"{what}: {name} removed")
        self.assertEqual(
            sorted(after.watched - before.watched), [], f"{what}: children watched"
        )
        self.assertEqual(after.delayedCalls, before.delayedCalls, f"{what}: timers")
        added = after.triggers - before.triggers
        # With cgroups, the reactor's leaf remover adds one too, with the
        # first child reaped (the pidfd monitor's then as well).
        most = 1 if before.cgroup is None else 2
        self.assertIn(added, range(most + 1), f"{what}: shutdown triggers")
        triggers.append(added)

    def sweep(
        self,
        reactor: Any,
        monitor: Any,
        start: Start,
        minimumNeed: int,
        triggers: list[int],
        cgroup: CgroupSweep | None = None,
    ) -> Deferred[int]:
        """
        Spawn with C{start} under a budget of 0, 1, 2, ... fds until it
        succeeds, checking each failure, the recovery after it, and the
        spawn that succeeded.

        @param minimumNeed: The fds the spawn must hold at once: the sweep
            fails if it succeeds with fewer.
        @param triggers: Gets the shutdown triggers each spawn added.
        @param cgroup: For spawns with C{cgroup=}: their parent and how.
        @return: A Deferred firing with the smallest budget that worked.
        """
        return self._sweep(reactor, monitor, start, minimumNeed, triggers, cgroup)

    @inlineCallbacks
    def _sweep(
        self,
        reactor: Any,
        monitor: Any,
        start: Start,
        minimumNeed: int,
        triggers: list[int],
        cgroup: CgroupSweep | None,
    ) -> Generator[Deferred[Any], Any, int]:
        budget = FDBudget()
        parent = None if cgroup is None else cgroup.parent
        stages = frozenset([ChildSetupStage.SPAWN])
        for k in range(MAX_NEED + 1):
            if cgroup is not None:
                stages = cgroup.settle(k)
            before = Snapshot.take(reactor, monitor, parent)
            error: BaseException | None = None
            budget.allow(k)
            try:
                ended = start(reactor)
            except Exception as e:
                error = e
            finally:
                budget.restore()
            if error is None:
                yield ended
                yield turn(reactor)
                self.assertNothingLeft(
                    before,
                    Snapshot.take(reactor, monitor, parent),
                    f"spawn with {k} free fds, which worked",
                    triggers,
                )
                self.assertGreaterEqual(
                    k, minimumNeed, f"the spawn succeeded with only {k} free fds"
                )
                return k
            what = f"spawn with {k} free fds"
            self.assertEMFILE(error, what, stages)
            after = Snapshot.take(reactor, monitor, parent)
            self.assertNothingLeft(before, after, what, triggers, turned=False)
            # Recovery: the limit is back, the same reactor spawns again.
            yield start(reactor)
            yield turn(reactor)
            self.assertNothingLeft(
                after,
                Snapshot.take(reactor, monitor, parent),
                f"recovery after {what}",
                triggers,
            )
        self.fail(f"no spawn succeeded with up to {MAX_NEED} free fds")

    def runSweeps(
        self,
        reactor: Any,
        start: Start,
        minimumNeed: int,
        monitor: Any = None,
        installed: bool = False,
        cgroup: CgroupSweep | None = None,
    ) -> list[int]:
        """
        Run L{ROUNDS} sweeps with C{start} on C{reactor}, the later ones
        with holes in the fd table, then stop it.

        In all, the spawns may add one shutdown trigger for a spawner
        installed onto a stock reactor (it uninstalls its monitor at
        shutdown) and one for the pidfd monitor (armed while it is installed
        once it watched a child); no more, however many spawns failed.

        @param monitor: The monitor watching the reactor's children;
            C{None} for a txspawn reactor's own.
        @param installed: Whether C{reactor} is a stock reactor that
            L{txspawn.install} was called on.
        @param cgroup: For spawns with C{cgroup=}: their parent, and
            whether a spare leaf is there before each; the reactor's leaf
            remover adds one shutdown trigger in all.
        @return: The need measured by each sweep.
        """
        if monitor is None:
            monitor = reactor.childMonitor
        needs: list[int] = []
        triggers: list[int] = []

        @inlineCallbacks
        def body() -> Generator[Deferred[Any], Any, None]:
            for round in range(ROUNDS):
                with holesAtTop(round):
                    needs.append(
                        (
                            yield self.sweep(
                                reactor, monitor, start, minimumNeed, triggers, cgroup
                            )
                        )
                    )

        self.runInReactor(reactor, body)
        self.assertLessEqual(
            sum(triggers),
            int(installed) + int(self.monitorName == "pidfd") + int(cgroup is not None),
            f"shutdown triggers added, spawn by spawn: {triggers}",
        )
        # Where the spawn's fds land (holes or not) changes nothing.
        self.assertEqual(len(set(needs)), 1, f"needs measured: {needs}")
        return needs


#: The fds a cgroup leaf holds from its making to its child's reaping: its
#: directory (for C{CLONE_INTO_CGROUP}), its C{cpu.stat} and its
#: C{cgroup.events}.
LEAF_FDS = 3

#: The parent's ends of the default C{childFDs}' pipes, and the child's.
PIPE_ENDS = 2 * 3


class CgroupSweep:
    """
    How a sweep of spawns with C{cgroup=Cgroup(parent=...)} is run: before
    each try, the parent's spare leaf (made by the reactor in the turn
    after a spawn) is removed, so that the spawn makes its own leaf, or
    made, so that the spawn takes it.

    @ivar parent: The scratch parent cgroup.
    @ivar spare: Whether a spare leaf is there before each try.
    @ivar engine: The engine's name.
    """

    def __init__(self, parent: str, spare: bool, engine: str) -> None:
        self.parent = parent
        self.spare = spare
        self.engine = engine

    def settle(self, k: int) -> frozenset[ChildSetupStage]:
        """
        Remove or make the spare leaf for the try with C{k} free fds.

        @return: The stage its C{EMFILE} must name: C{CGROUP} while the
            leaf's own fds cannot be opened (they are opened first), and on
            the Python engine when its fork path, after the pipes, cannot
            open the leaf's C{cgroup.procs} for its child; else C{SPAWN}
            (the pipes, the pidfd, ...).
        """
        # The private names here: no public way makes or drops a spare.
        from txspawn._cgroup.leaf import discardSpare, prepareSpare
        from txspawn._cgroup.parent import findParent

        held = CgroupView.take(self.parent, frozenset(openFDs())).spare
        if self.spare:
            prepareSpare(findParent(self.parent))
            leafFDs = 0
        else:
            if held is not None:
                discardSpare(findParent(self.parent))
            leafFDs = LEAF_FDS
        if k < leafFDs or (self.engine == "python" and k == leafFDs + PIPE_ENDS):
            return frozenset([ChildSetupStage.CGROUP])
        return frozenset([ChildSetupStage.SPAWN])


def _checkEnded(test: SynchronousTestCase, reason: Failure) -> None:
    """
    Check the end of a sweep's child: exit code 3.
    """
    test.assertIsInstance(reason, Failure)
    value: Any = reason.value
    test.assertIsInstance(value, ProcessTerminated)
    test.assertEqual(value.exitCode, 3)


@implementer(IProcessStateObserver)
class ObservingProtocol(RecordingProtocol):
    """
    A L{RecordingProtocol} that asks for stop and continue notifications,
    which need a C{SIGCHLD} subscription (and so, under the pidfd monitor,
    the SIGCHLD wakeup pipe).
    """

    def processStopped(self, signal: int) -> None:
        self._note("stopped", signal)

    def processContinued(self) -> None:
        self._note("continued")


def spawnStart(
    test: SynchronousTestCase,
    output: dict[int, bytes] = OUTPUT,
    script: bytes = SCRIPT,
    protocol: Callable[[], RecordingProtocol] = RecordingProtocol,
    **kwargs: Any,
) -> Start:
    """
    Start C{script} with C{reactor.spawnProcess(..., **kwargs)}; check that
    a failed spawn did not connect its protocol, and that a child that ran
    wrote C{output} and exited 3.

    @param protocol: Makes the protocol.
    """

    def start(reactor: Any) -> Deferred[object]:
        proto = protocol()
        try:
            reactor.spawnProcess(proto, SH, [SH, b"-c", script], **kwargs)
        except BaseException:
            test.assertEqual(proto.events, [], "a failed spawn connected its protocol")
            raise

        def check(reason: Failure) -> None:
            test.assertEqual(proto.output, output)
            _checkEnded(test, reason)
            test.assertIsNot(proto.exitedReason, None)
            if kwargs.get("cgroup") is not None:
                # It ran in a leaf of the parent given.
                value: Any = reason.value
                stats = value.cgroup
                test.assertEqual(
                    os.path.dirname(stats.path), kwargs["cgroup"].parent, stats
                )

        return proto.ended.addBoth(check)

    return start


def runStart(test: SynchronousTestCase, **options: Any) -> Start:
    """
    Start L{SCRIPT} with L{txspawn.run}.

    @param options: txspawn's spawn options; with C{cgroup=}, the child
        must have run in a leaf of its parent.
    """

    def start(reactor: Any) -> Deferred[object]:
        result = failedAtOnce(
            txspawn.run([SH, b"-c", SCRIPT], reactor=reactor, **options)
        )

        def check(result: txspawn.ProcessResult) -> None:
            test.assertEqual(
                (result.exitCode, result.stdout, result.stderr),
                (3, OUTPUT[1], OUTPUT[2]),
            )
            if options.get("cgroup") is not None:
                assert result.cgroup is not None
                test.assertEqual(
                    os.path.dirname(result.cgroup.path), options["cgroup"].parent
                )

        return result.addCallback(check)

    return start


def streamStart(test: SynchronousTestCase) -> Start:
    """
    Start L{SCRIPT} with L{txspawn.stream}, its output to a callback.
    """

    def start(reactor: Any) -> Deferred[object]:
        chunks: list[txspawn.OutputChunk] = []
        outputStream = txspawn.stream(
            [SH, b"-c", SCRIPT], reactor=reactor, onOutput=chunks.append
        )
        result = failedAtOnce(outputStream.result)

        def check(result: txspawn.ProcessResult) -> None:
            test.assertEqual(result.exitCode, 3)
            output: dict[int, bytes] = {}
            for chunk in chunks:
                output[chunk.childFD] = output.get(chunk.childFD, b"") + chunk.data
            test.assertEqual(output, OUTPUT)

        return result.addCallback(check)

    return start


#: The pipe ends of the default C{childFDs} and the pidfd are all open at
#: once during a spawn.
DEFAULT_NEED = PIPE_ENDS + 1


class EMFILESweepMixin(SweepMixin):
    """
    Every step of a spawn fails with C{EMFILE} in turn, through every entry
    point; each failure is clean and the reactor recovers.
    """

    def checkEngine(self, reactor: Any, sweep: Callable[[], object]) -> None:
        """
        Run C{sweep}, then check that the engine gave nothing up for good:
        no feature turned off, slot mode (the C engine) as usable as before.
        """
        spawner = reactor.processSpawner.spawner
        features: dict[str, tuple[bool | None, str | None]]
        features = getattr(spawner, "features", dict)()
        slots = getattr(spawner, "slotStatus", lambda: None)()
        sweep()
        after: dict[str, tuple[bool | None, str | None]]
        after = getattr(spawner, "features", dict)()
        for name, (on, why) in after.items():
            if on is False:
                self.assertIs(features[name][0], False, f"{name} turned off: {why}")
        self.assertEqual(getattr(spawner, "slotStatus", lambda: None)(), slots)

    def test_spawnProcess(self) -> None:
        """
        C{spawnProcess} with the default C{childFDs}.
        """
        reactor = self.buildReactor()
        self.checkEngine(
            reactor,
            lambda: self.runSweeps(reactor, spawnStart(self), DEFAULT_NEED),
        )

    def test_extraChildFDs(self) -> None:
        """
        C{spawnProcess} with a fourth pipe, child fd 3.
        """
        reactor = self.buildReactor()
        start = spawnStart(
            self,
            {**OUTPUT, 3: b"three\n"},
            b"echo out; echo err >&2; echo three >&3; exit 3",
            childFDs={0: "w", 1: "r", 2: "r", 3: "r"},
        )
        self.checkEngine(reactor, lambda: self.runSweeps(reactor, start, 2 * 4 + 1))

    def test_pty(self) -> None:
        """
        C{spawnProcess} with C{usePTY=True}: the master, the slave and the
        pidfd.
        """
        reactor = self.buildReactor()
        start = spawnStart(self, {1: b"out\r\nerr\r\n"}, usePTY=True)
        self.checkEngine(reactor, lambda: self.runSweeps(reactor, start, 3))

    def test_stateObserver(self) -> None:
        """
        C{spawnProcess} of a protocol that asks for stop and continue
        notifications (L{IProcessStateObserver}).  Under the pidfd monitor
        its C{SIGCHLD} subscription opens the SIGCHLD wakeup pipe, before
        the child is started: without the two fds for it the spawn fails
        with the same L{SpawnError} as for any other fd, at the call,
        before any child exists (the protocol is never connected), and
        whatever fails after it drops the subscription again.  (Under the
        sigchld monitor the pipe is open already.)
        """
        reactor = self.buildReactor()
        start = spawnStart(self, protocol=ObservingProtocol)
        need = DEFAULT_NEED + (2 if self.monitorName == "pidfd" else 0)
        self.checkEngine(reactor, lambda: self.runSweeps(reactor, start, need))

    def test_stateObserverWithoutPipes(self) -> None:
        """
        As L{test_stateObserver}, for a child whose fds are all
        C{/dev/null}: the spawn needs only the pidfd, so with the subscription
        taken after it (as it was), the fds for the wakeup pipe would run
        out only once the child is started and the protocol connected.
        """
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, null)
        reactor = self.buildReactor()
        start = spawnStart(
            self,
            {},
            protocol=ObservingProtocol,
            childFDs={0: null, 1: null, 2: null},
        )
        need = 1 + (2 if self.monitorName == "pidfd" else 0)
        self.checkEngine(reactor, lambda: self.runSweeps(reactor, start, need))

    def test_path(self) -> None:
        """
        C{spawnProcess} with C{path=}: the Python engine takes its fork path
        and opens an error pipe.
        """
        reactor = self.buildReactor()
        start = spawnStart(self, path="/")
        self.checkEngine(reactor, lambda: self.runSweeps(reactor, start, DEFAULT_NEED))

    def test_run(self) -> None:
        """
        L{txspawn.run}: the spawn error fails its Deferred at once.
        """
        reactor = self.buildReactor()
        self.checkEngine(
            reactor, lambda: self.runSweeps(reactor, runStart(self), DEFAULT_NEED)
        )

    def test_stream(self) -> None:
        """
        L{txspawn.stream}: the spawn error fails its result at once.
        """
        reactor = self.buildReactor()
        self.checkEngine(
            reactor,
            lambda: self.runSweeps(reactor, streamStart(self), DEFAULT_NEED),
        )

    def test_cEngineOrdinaryPath(self) -> None:
        """
        The C engine's ordinary path, without its reserved fd (slot mode
        off, as with C{TXSPAWN_FD_SLOTS=0} or a process that could not
        reserve it): its error pipe is opened too.
        """
        if self.engineName != "c":
            raise self.skipTest("the C engine's own path")
        # The one private name here: no public way builds a C engine
        # without its reserved fd in a process that has one.
        from txspawn._engine.cengine import CSpawner
        from txspawn.reactor import EPollReactor

        reactor = EPollReactor(engine=CSpawner(slots=False), monitor=self.monitorName)
        self._reactors.append(reactor)
        self.checkEngine(
            reactor,
            lambda: self.runSweeps(reactor, spawnStart(self), DEFAULT_NEED + 2),
        )

    def cgroupSweep(self, spare: bool, entry: str = "spawnProcess") -> None:
        """
        Sweep C{spawnProcess} (or L{txspawn.run}) with
        C{cgroup=Cgroup(parent=...)} in a scratch parent cgroup: every
        failure leaves no leaf in it, and every child that ran was in a
        leaf of it.
        """
        reason = cgroupSkipReason()
        if reason is not None:
            raise self.skipTest(reason)
        parent = makeTestParent(self)
        reactor = self.buildReactor()
        starter = spawnStart if entry == "spawnProcess" else runStart
        start = starter(self, cgroup=Cgroup(parent=parent))
        need = DEFAULT_NEED + (0 if spare else LEAF_FDS)
        self.checkEngine(
            reactor,
            lambda: self.runSweeps(
                reactor, start, need, cgroup=CgroupSweep(parent, spare, self.engineName)
            ),
        )

    def test_cgroup(self) -> None:
        """
        C{spawnProcess} with C{cgroup=}, each try making its own leaf (the
        parent's spare removed first): with fewer than the leaf's two fds
        free the spawn fails at stage C{CGROUP}, having made nothing; later
        at stage C{SPAWN} (or C{CGROUP} where the Python engine opens the
        leaf's C{cgroup.procs}), its leaf removed.
        """
        self.cgroupSweep(spare=False)

    def test_cgroupSpare(self) -> None:
        """
        C{spawnProcess} with C{cgroup=}, each try taking the parent's spare
        leaf (made first): a spawn failing later uses it up and removes it,
        with its fds.
        """
        self.cgroupSweep(spare=True)

    def test_cgroupRun(self) -> None:
        """
        L{txspawn.run} with C{cgroup=}, each try making its own leaf: its
        Deferred fails at once as C{spawnProcess} raises.
        """
        self.cgroupSweep(spare=False, entry="run")

    def test_installedOnTwistedReactor(self) -> None:
        """
        A spawner installed onto a stock Twisted reactor
        (L{txspawn.install}) installs its monitor on its first spawn: with
        the sigchld monitor that opens the SIGCHLD wakeup pipe, which fails
        first.  A failed installation leaves nothing behind (no second
        shutdown trigger either) and the next spawn installs it.
        """
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self._reactors.append(reactor)
        spawner = txspawn.install(
            reactor, engine=self.engineName, monitor=self.monitorName
        )
        self.runSweeps(
            reactor,
            spawnStart(self),
            DEFAULT_NEED,
            monitor=spawner.monitor,
            installed=True,
        )

    def test_sigchldWakeupExhausted(self) -> None:
        """
        The sigchld monitor of a spawner installed onto a stock reactor
        opens the SIGCHLD wakeup pipe on the spawner's first spawn.  With
        fewer than the two fds it needs free, that spawn fails with
        C{EMFILE} before anything else is opened, the stock reactor's own
        wakeup fd and C{SIGCHLD} handler stay in place, and failing again
        and again adds one shutdown trigger in all; once the limit is back
        the next spawn installs the wakeup and its child runs.
        """
        if self.monitorName != "sigchld":
            raise self.skipTest("the sigchld monitor's wakeup pipe")
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self._reactors.append(reactor)
        spawner = txspawn.install(reactor, engine=self.engineName, monitor="sigchld")

        @inlineCallbacks
        def body() -> Generator[Deferred[Any], Any, None]:
            stock = (peekWakeupFD(), signal.getsignal(signal.SIGCHLD))
            budget = FDBudget()
            triggers: list[int] = []
            for k in (0, 1, 0, 1):
                what = f"first spawn with {k} free fds"
                before = Snapshot.take(reactor, spawner.monitor)
                proto = RecordingProtocol()
                budget.allow(k)
                try:
                    error = self.assertRaises(
                        SpawnError, reactor.spawnProcess, proto, SH, [SH, b"-c", SCRIPT]
                    )
                finally:
                    budget.restore()
                self.assertEMFILE(error, what)
                self.assertEqual(proto.events, [], what)
                self.assertEqual(
                    (peekWakeupFD(), signal.getsignal(signal.SIGCHLD)), stock, what
                )
                self.assertNothingLeft(
                    before, Snapshot.take(reactor, spawner.monitor), what, triggers
                )
            self.assertLessEqual(sum(triggers), 1, f"shutdown triggers: {triggers}")
            yield spawnStart(self)(reactor)
            self.assertNotEqual(peekWakeupFD(), stock[0], "no wakeup installed")

        self.runInReactor(reactor, body)


globals().update(makeTestCaseClasses(EMFILESweepMixin))


class ExhaustedWhileAliveMixin(SweepMixin):
    """
    Children spawned normally, then every fd used up while they run.
    """

    def test_childrenEndWhileExhausted(self) -> None:
        """
        With no fd free, a further spawn (C{spawnProcess}, C{run()}) fails
        with C{EMFILE}, and the children already running are still heard
        and reaped, with the right status and output, before the limit is
        put back; then nothing is left and the reactor spawns again.

        The children without pipes (their stdin a pipe they share, stdout
        and stderr C{/dev/null}) hold no parent fd but their pidfd, so
        their exit frees nothing before it is reaped: they end one at a
        time, the fd table filled up again before each, so that every one
        of them is reaped with no fd free.  Half exit with code 7 once they
        read a line from the shared pipe (each line is one byte, C{"\\n"},
        which only one of the children blocked reading it can get), half
        are killed with C{SIGKILL}.  Then the children with pipes (one
        exiting with the code it reads from its own stdin, one on a pty)
        end together, their pipes closing as they go.
        """
        reactor = self.buildReactor()
        monitor = reactor.childMonitor
        budget = FDBudget()
        self.addCleanup(budget.restore)
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.addCleanup(os.close, devnull)
        lines = os.pipe2(os.O_CLOEXEC)
        never = os.pipe2(os.O_CLOEXEC)
        for fd in (*lines, *never):
            self.addCleanup(os.close, fd)

        def spawn(script: bytes, **kwargs: Any) -> tuple[RecordingProtocol, Any]:
            proto = RecordingProtocol()
            transport = reactor.spawnProcess(proto, SH, [SH, b"-c", script], **kwargs)
            return proto, transport

        def quiet(stdin: int) -> dict[int, int | str]:
            return {0: stdin, 1: devnull, 2: devnull}

        @inlineCallbacks
        def body() -> Generator[Deferred[Any], Any, None]:
            baseline = Snapshot.take(reactor, monitor)
            exiting = [
                spawn(b"read x; exit 7", childFDs=quiet(lines[0])) for _ in range(ALIVE)
            ]
            killed = [
                spawn(b"read x; exit 0", childFDs=quiet(never[0])) for _ in range(ALIVE)
            ]
            piped = [spawn(b"read x; echo got $x; exit $x") for _ in range(ALIVE)]
            ptys = [spawn(b"read x; exit $x", usePTY=True) for _ in range(ALIVE)]
            everyone = exiting + killed + piped + ptys
            waiting: list[Deferred[None]] = []

            def oneEnded(reason: Failure) -> None:
                if waiting:
                    waiting.pop().callback(None)

            # processEnded's reason comes down the errback chain.
            for proto, _ in everyone:
                proto.ended.addErrback(oneEnded)
            budget.allow(0)
            try:
                error = self.assertRaises(SpawnError, spawn, SCRIPT)
                self.assertEMFILE(error, "spawnProcess while exhausted")
                error = self.assertRaises(
                    SpawnError,
                    failedAtOnce,
                    txspawn.run([SH, b"-c", SCRIPT], reactor=reactor),
                )
                self.assertEMFILE(error, "run() while exhausted")
                ends: list[Callable[[], object]] = [
                    partial(os.write, lines[1], b"\n") for _ in exiting
                ]
                ends += [
                    partial(transport.signalProcess, "KILL") for _, transport in killed
                ]
                for end in ends:
                    # The number the last one's pidfd freed is taken again.
                    budget.refill()
                    ended: Deferred[None] = Deferred()
                    waiting.append(ended)
                    end()
                    yield ended
                    yield turn(reactor)
                for _, transport in piped:
                    transport.write(b"5\n")
                    transport.closeStdin()
                for _, transport in ptys:
                    transport.write(b"6\n")
                yield gatherResults([proto.ended for proto, _ in piped + ptys])
            finally:
                budget.restore()
            for proto, transport in everyone:
                self.assertIsInstance(proto.endedReason.value, ProcessTerminated)
                self.assertIsNone(transport.pid)
            for proto, _ in exiting:
                self.assertEqual(proto.endedReason.value.exitCode, 7)
            for proto, _ in killed:
                self.assertEqual(proto.endedReason.value.signal, 9)
            for proto, _ in piped:
                self.assertEqual(proto.endedReason.value.exitCode, 5)
                self.assertEqual(proto.output, {1: b"got 5\n"})
            for proto, _ in ptys:
                self.assertEqual(proto.endedReason.value.exitCode, 6)
            yield turn(reactor)
            self.assertNothingLeft(
                baseline, Snapshot.take(reactor, monitor), "children ended", []
            )
            yield spawnStart(self)(reactor)

        self.runInReactor(reactor, body)


globals().update(makeTestCaseClasses(ExhaustedWhileAliveMixin))


class FDBudgetTests(SynchronousTestCase):
    """
    L{FDBudget} lets exactly the number of fds it is given be opened.
    """

    def check(self, holes: int) -> None:
        before = openFDs()
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        with holesAtTop(holes):
            for k in (0, 1, 2, holes, holes + 3):
                budget = FDBudget()
                opened: list[int] = []
                budget.allow(k)
                try:
                    for _ in range(k):
                        opened.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
                    error = self.assertRaises(OSError, os.pipe)
                    self.assertEqual(error.errno, errno.EMFILE, f"k={k}")
                finally:
                    budget.restore()
                    for fd in opened:
                        os.close(fd)
                self.assertEqual(
                    resource.getrlimit(resource.RLIMIT_NOFILE), limits, f"k={k}"
                )
        self.assertEqual(openFDs(), before)

    def test_dense(self) -> None:
        """
        No hole below the highest open fd but the process's own.
        """
        self.check(0)

    def test_holes(self) -> None:
        """
        Holes below the highest open fd are counted (and left free first).
        """
        self.check(4)


#: Run by L{CgroupFirstUseTests} in a fresh Python: a spawn with
#: C{cgroup=Cgroup(parent=argv[1], memoryMax=argv[3] if given)} with no
#: fd free, after a spawn with a cgroup in C{argv[2]} unless it is C{"-"}
#: (so that what a process reads once is read); prints the error's class,
#: errno and stage.
FIRST_USE = """
import os, resource, sys
from twisted.internet.protocol import ProcessProtocol
from txspawn.options import Cgroup
from txspawn.reactor import EPollReactor

reactor = EPollReactor(engine="c")
if sys.argv[2] != "-":
    class Ended(ProcessProtocol):
        def processEnded(self, reason):
            reactor.callLater(0, reactor.stop)
    warm = Cgroup(parent=sys.argv[2])
    reactor.spawnProcess(Ended(), "/bin/true", ["true"], cgroup=warm)
    reactor.run()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
top = max(int(n) for n in os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (top + 1, hard))
fillers = []
while True:
    try:
        fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        break
try:
    limit = sys.argv[3] if len(sys.argv) > 3 else None
    cgroup = Cgroup(parent=sys.argv[1], memoryMax=limit)
    reactor.spawnProcess(ProcessProtocol(), "/bin/true", ["true"], cgroup=cgroup)
    outcome = "spawned"
except Exception as e:
    stage = getattr(e, "stage", None)
    outcome = f"{type(e).__name__} {e.errno} {getattr(stage, 'name', None)}: {e}"
finally:
    for fd in fillers:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print(outcome)
"""


class CgroupFirstUseTests(SynchronousTestCase):
    """
    What a process reads once for cgroups (C{/proc/self/mountinfo}, its
    start time, a parent's C{cgroup.controllers}), read for the first time
    with no fd free: the spawn must fail as any spawn does under fd
    exhaustion, a L{SpawnError} C{EMFILE} (stage C{CGROUP}), leaving
    nothing; and what is read again for a limit the parent lacks.  Each
    runs in a fresh Python, where nothing was read yet.
    """

    def firstUse(self, warm: str | None, *limit: str) -> str:
        """
        Run L{FIRST_USE} in a fresh Python: its outcome.

        @param warm: Spawn with a cgroup in this parent first: C{"other"}
            (another parent), C{"same"} (the parent), or C{None} (no).
        @param limit: The spawn's C{memoryMax}, if given.
        """
        reason = cgroupSkipReason()
        if reason is not None:
            raise SkipTest(reason)
        import subprocess
        import sys

        parent = makeTestParent(self)
        first = {None: "-", "same": parent}.get(warm) or makeTestParent(self)
        argv = [sys.executable, "-c", FIRST_USE, parent, first, *limit]
        done = subprocess.run(argv, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the child failed: {done.stderr.decode()}")
        return done.stdout.decode().strip()

    def test_firstSpawnOfProcess(self) -> None:
        """
        The first spawn with C{cgroup=} of a process.
        """
        outcome = self.firstUse(None)
        self.assertTrue(outcome.startswith("SpawnError 24 CGROUP"), outcome)

    def test_firstSpawnInParent(self) -> None:
        """
        The first spawn with C{cgroup=} in a parent, in a process that has
        spawned with C{cgroup=} before.
        """
        outcome = self.firstUse("other")
        self.assertTrue(outcome.startswith("SpawnError 24 CGROUP"), outcome)

    def test_limitWithoutController(self) -> None:
        """
        A spawn with a limit whose controller the parent lacks (C{memory}
        on a hybrid host), in a parent found before, raises a L{SpawnError}
        with no fd free: the L{UnsupportedFeature} it raises otherwise, or
        C{EMFILE}.
        """
        if "memory" in CGROUP_OFFERED:
            raise SkipTest("this hierarchy offers the memory controller")
        outcome = self.firstUse("same", "64M")
        self.assertTrue(
            outcome.startswith(("SpawnError 24 CGROUP", "UnsupportedFeature 95")),
            outcome,
        )
