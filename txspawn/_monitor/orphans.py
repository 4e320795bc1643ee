# -*- test-case-name: tests.test_orphans -*-
"""
Reaping children that outlive their reactor.

A monitor belongs to one reactor.  When that reactor shuts down while some
of its children are still running (a test that stops the reactor right
after spawning, an application that exits its main loop without waiting),
nobody would ever C{wait} for those children: each would stay a zombie for
the rest of the parent's life.  Stock Twisted avoids this by accident: its
module-global registry is reaped by whichever reactor next handles
C{SIGCHLD}.  txspawn has no global registry, so the monitors hand such
children here instead (L{adoptOrphans}, from their shutdown trigger).

Shutdown is exactly when resources may be short -- the process limit
exhausted by the very children being orphaned, every fd in use -- so
adopting needs nothing new that can fail there, and a failure delays the
reaping but never loses a child:

  - I{No new fd.}  Every batch of orphans gets a daemon thread of its own
    that waits for exactly those children with C{poll()} on their pidfds
    (which the monitors already hold).  Knowing its children from the
    start, the thread needs no wake-up pipe, and C{poll()} needs no fd of
    its own (epoll would).  A child without a pidfd (no kernel support, or
    C{pidfd_open} failed with C{EMFILE}) costs nothing either: the thread
    asks for its pidfd itself and, while it cannot get one, looks again
    every L{_RETRY_INTERVAL} seconds with C{wait4(pid, WNOHANG)}.
  - I{A thread that cannot start} (C{RuntimeError: can't start new thread}
    when C{RLIMIT_NPROC} is reached) leaves its batch I{pending}: a warning
    is logged, and the pending orphans are reaped with C{wait4(pid,
    WNOHANG)} -- each by its own pid, which the unreaped child still pins --
    at the next L{adoptOrphans} and before the next spawn
    (L{reapPendingOrphans}, called by
    L{txspawn._reactor.spawner.ProcessSpawner.spawnProcess} before the engine
    runs), which then tries again to start a thread for those still
    running; and before every wait of a running txspawn reactor (its
    C{doIteration} calls L{reapExitedOrphans} while L{reaper}C{.pending} is
    not empty: one attribute test otherwise), which only reaps those that
    exited, so that a reactor that spawns nothing still clears their
    zombies.  Reaping before the spawn matters: exited orphans are zombies
    that still count against C{RLIMIT_NPROC}, and the spawn would fail
    with C{EAGAIN} because of them.
  - I{Nothing is shared} between batches, so a failure leaves no state
    behind for the next reactor's orphans.  (Should a thread fail after it
    started, what it had not reaped becomes pending the same way.)
  - I{An interrupt loses no child} (a C{KeyboardInterrupt} from a signal
    handler, at any point, even inside C{thread.start()}): L{adoptOrphans}
    runs the adoption to its end before raising it, and a batch whose
    thread start was interrupted goes back to pending, unless the thread
    did start and claimed it first (L{_Batch.owner}: the two never both
    own it), through L{txspawn._kernel.childhandle.completeCleanup}.

Each thread exits once its last child is reaped, so threads exist only
while orphans do (a permanent thread would make every later C{os.fork()}
warn under Python 3.12+).  Every child is reaped by its own pid, never
with C{waitpid(-1)}, and its pidfd is closed right after it is reaped.
Their exit statuses are dropped: the protocols were disconnected with their
reactor, exactly as with stock Twisted.

A process whose reactor stopped while no thread could start, and that
never spawns or stops a reactor again, keeps those orphans' zombies until
it exits: nothing of txspawn's runs in it any more.

Others avoid the problem by setting up the waiter when the child is
spawned, so a failure surfaces there: asyncio's C{ThreadedChildWatcher}
starts a thread blocked in C{waitpid(pid)} per child, trio waits for each
child in a worker thread (C{waitid(WNOWAIT)}) or through its pidfd, and
Go's C{os/exec} leaves C{Wait} to the caller.  txspawn's monitors need no
thread while their reactor runs, so only the rare case of a reactor
stopping with children alive pays for one, and only for as long as those
children live.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterable
from functools import partial
from itertools import filterfalse
from operator import attrgetter

from twisted.logger import Logger

from txspawn._kernel.childhandle import ChildProcess, completeCleanup

__all__ = [
    "adoptOrphans",
    "orphanCount",
    "reapExitedOrphans",
    "reapPendingOrphans",
    "reaper",
]

_log = Logger()

#: Seconds between two looks at an orphan the reaper thread holds no pidfd
#: for (it then cannot sleep until the child exits).
_RETRY_INTERVAL = 0.1


def _reap(child: ChildProcess) -> bool:
    """
    Reap C{child} if it has exited (C{wait4(pid, WNOHANG)}: the child is
    ours and unreaped, so its pid is still its own).

    @return: Whether C{child} is reaped now.
    """
    try:
        return child.tryReap()
    except Exception:
        # Anything but ECHILD/EINTR from wait4 would be a kernel or
        # interpreter bug: give up on the status rather than looping.
        _log.failure("txspawn: wait4({pid}) failed for an orphan", pid=child.pid)
        child.reapUnknown()
        return True


#: L{_Batch.owner} values.
_THREAD = "thread"
_PENDING = "pending"


class _Batch:
    """
    Children taken out of L{_OrphanReaper.pending} by one reaping pass.

    @ivar children: The children.
    @ivar owner: L{None} while the batch is being handed to a new thread;
        then C{_THREAD} once that thread claimed it, or C{_PENDING} once its
        unreaped children were made pending again.  Set once, under the
        reaper's lock, by whichever comes first: a thread whose start was
        interrupted may still run, and must then find its batch gone.
    """

    __slots__ = ("children", "owner")

    def __init__(self) -> None:
        self.children: list[ChildProcess] = []
        self.owner: str | None = None


#: Whether a child has been reaped, as a C-implemented callable.
_isReaped: Callable[[ChildProcess], bool] = attrgetter("reaped")


class _OrphanReaper:
    """
    The process-wide owner of orphaned children (see the module docstring).

    @ivar _unreaped: Every adopted child not reaped yet (L{count}).
    @ivar pending: The adopted children no thread waits for, because
        their thread could not be started (yet).  Read without the lock by
        the reactors' iteration hook, whose cost while it is empty is that
        one test.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Held while pending orphans are being reaped: one thread at a time
        # (a spawn in one, a reactor iteration in another) may reap and
        # close the pidfds of the same children.  Reentrant: the warning
        # logged meanwhile may reach an observer that spawns.
        self._reaping = threading.RLock()
        self._unreaped: set[ChildProcess] = set()
        self.pending: list[ChildProcess] = []

    def adopt(self, children: Iterable[ChildProcess]) -> None:
        """
        L{adoptOrphans}'s work; resumable (see
        L{txspawn._kernel.childhandle.completeCleanup}): a child already pending is not
        added again.
        """
        with self._lock:
            pending = set(self.pending)
            # Pending first: from then on no child can be lost.  (Reaped ones
            # are let through: the next pass just finishes them.)
            # filterfalse, not a comprehension with an if: CPython 3.13 can
            # compile that loop's backward jump outside this with block, and
            # an interrupt there would leave the lock held (see
            # tests/test_exceptiontable.py).
            self.pending.extend(filterfalse(pending.__contains__, children))
            self._unreaped.update(filterfalse(_isReaped, self.pending))
        self.reapPending()

    def reapExited(self) -> None:
        """
        Reap the pending orphans that have exited; the others stay pending
        (no thread is started: L{adoptOrphans} and the next spawn try that
        again).  Does nothing if another thread is reaping them right now.
        """
        if self._reaping.acquire(blocking=False):
            try:
                self._reapBatch(startThread=False)
            finally:
                self._reaping.release()

    def reapPending(self) -> None:
        """
        Reap the pending orphans that have exited, and start a thread for
        the others.
        """
        with self._reaping:
            self._reapBatch(startThread=True)

    def _reapBatch(self, startThread: bool) -> None:
        batch = _Batch()
        try:
            with self._lock:
                batch.children, self.pending = self.pending, []
            # Spelled so that every backward jump stays inside this try
            # (see tests/test_exceptiontable.py).
            for child in batch.children:
                if not _reap(child):
                    continue
                self._done(child)
            running = list(filterfalse(_isReaped, batch.children))
            if startThread and running:
                try:
                    thread = threading.Thread(
                        target=self._wait,
                        args=(batch,),
                        name="txspawn-orphan-reaper",
                        daemon=True,
                    )
                    thread.start()
                    return
                except Exception as e:
                    # RuntimeError("can't start new thread") at RLIMIT_NPROC.
                    _log.warn(
                        "txspawn: cannot start a thread to reap {count} orphaned "
                        "children ({error}); they will be reaped before the next "
                        "spawn",
                        count=len(running),
                        error=e,
                    )
        except BaseException:
            # Interrupted (a signal handler's KeyboardInterrupt), even inside
            # thread.start(): nothing of the batch may be lost.  The thread
            # may run or not, now or later; whichever of it and this
            # clean-up claims the batch first owns it (_Batch.owner).  Run
            # to its end even if interrupted again (completeCleanup, called
            # first thing: a C function).
            completeCleanup(self._putBack, batch)
            raise
        # No thread (not asked for, none could start, or none needed).
        completeCleanup(self._putBack, batch)

    def _putBack(self, batch: _Batch) -> None:
        """
        Make the unreaped children of C{batch} pending again unless a thread
        claimed them first, and finish the reaped ones.  Resumable (see
        L{completeCleanup}): claiming is one assignment under the lock, no
        child is made pending twice, and L{_done} is idempotent.
        """
        with self._lock:
            if batch.owner is None:
                batch.owner = _PENDING
            mine = batch.owner is _PENDING
            if mine:
                pending = set(self.pending)
                # A loop with continue, not a comprehension with an if (see
                # tests/test_exceptiontable.py).
                for child in batch.children:
                    if child.reaped or child in pending:
                        continue
                    self.pending.append(child)
        if mine:
            # (A thread that claimed the batch got no child reaped and not
            # done: it was started only after this pass reaped what it could.)
            for child in batch.children:
                if child.reaped:
                    self._done(child)

    def count(self) -> int:
        with self._lock:
            return len(self._unreaped)

    def _done(self, child: ChildProcess) -> None:
        child.closePidfd()
        with self._lock:
            self._unreaped.discard(child)

    def _wait(self, batch: _Batch) -> None:
        """
        The body of one batch's thread: claim C{batch} (unless the thread
        that started this one took it back first, see L{_putBack}), wait
        for its children to exit and reap each, then return.
        """
        with self._lock:
            if batch.owner is None:
                batch.owner = _THREAD
            if batch.owner is not _THREAD:
                return
        children = [child for child in batch.children if not child.reaped]
        try:
            self._waitAndReap(children)
        except BaseException:
            # poll() itself can fail (ENOMEM): what is not reaped is pending
            # again, not lost.
            _log.failure("txspawn: an orphan reaper thread failed")
            with self._lock:
                self.pending.extend(child for child in children if not child.reaped)

    def _waitAndReap(self, children: list[ChildProcess]) -> None:
        poller = select.poll()
        watched: dict[int, ChildProcess] = {}
        unwatched = children
        while True:
            stillUnwatched = []
            for child in unwatched:
                if child.pidfd is None:
                    try:
                        # Race-free: the child is ours and not yet reaped.
                        child.pidfd = os.pidfd_open(child.pid)
                    except OSError:
                        # No kernel support, or out of fds: look again later.
                        if _reap(child):
                            self._done(child)
                        else:
                            stillUnwatched.append(child)
                        continue
                poller.register(child.pidfd, select.POLLIN)
                watched[child.pidfd] = child
            unwatched = stillUnwatched
            if not (watched or unwatched):
                return
            timeout = _RETRY_INTERVAL * 1000 if unwatched else None
            for fd, _ in poller.poll(timeout):
                child = watched[fd]
                if _reap(child):
                    # Unregistered before its pidfd is closed, so the number
                    # can be reused meanwhile.
                    poller.unregister(fd)
                    del watched[fd]
                    self._done(child)


#: The process-wide orphan reaper.
reaper = _OrphanReaper()


adoptOrphans: Callable[[Iterable[ChildProcess]], None] = partial(
    completeCleanup, reaper.adopt
)
"""
C{adoptOrphans(children)}: reap C{children}, unreaped children whose reactor
is going away, in the background once each exits.

The caller must have stopped watching them (their pidfds are no longer
registered with any reactor): from now on the reaper owns them and closes
their pidfds.  Nothing raises for lack of resources: if no thread can be
started the children are reaped later (see the module docstring).  The
children left pending by an earlier call are looked at again.

An exception raised meanwhile by a signal handler (a C{KeyboardInterrupt})
is raised only once the children are adopted: this is a C callable
(L{txspawn._kernel.childhandle.completeCleanup} running the adoption again until it
completes), so even one raised as the call starts cannot lose them.  Pass a
list: the items of an iterator consumed when the interrupt came would be
gone for the next attempt.
"""


def reapPendingOrphans() -> None:
    """
    Reap the orphans left pending because no thread could be started for
    them: those that have exited now, the others by a new thread if one can
    be started.  Cheap when there are none: called before every spawn.
    """
    if reaper.pending:
        reaper.reapPending()


def reapExitedOrphans() -> None:
    """
    Reap the orphans left pending that have exited, without starting a
    thread for the others: what a txspawn reactor does before each wait
    while L{reaper}C{.pending} is not empty.
    """
    reaper.reapExited()


def orphanCount() -> int:
    """
    @return: How many adopted children have not been reaped yet (for tests
        and C{python -m txspawn info}).
    """
    return reaper.count()
