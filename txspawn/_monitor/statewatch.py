# -*- test-case-name: tests.test_exitdetails -*-
"""
Stop and continue notifications for the children whose protocols ask for
them (L{txspawn.interfaces.IProcessStateObserver}).

A pidfd becomes readable when its process I{exits}, not when it stops or
continues, so these events need C{SIGCHLD}: the kernel sends it to the
parent on every stop and continue (Python's handlers do not set
C{SA_NOCLDSTOP}).  A L{StateChangeWatcher} subscribes to the process-wide
C{SIGCHLD} wakeup (L{txspawn._monitor.sigchldwakeup}) only while at least one
opted-in child is alive, and on each wake-up asks each of I{those} children
-- by pid, never C{P_ALL} -- with C{waitid(P_PID, pid, WSTOPPED |
WCONTINUED | WNOHANG)}.  Without C{WEXITED} that call never reaps: exits
stay the monitor's business.  Children whose protocols do not opt in cost
nothing: no subscription, no handler, no syscall.

The subscription is taken I{before} the child is started
(L{StateChangeWatcher.prepare}, called by the spawner): it may need the
wakeup pipe, and running out of fds for it must fail the spawn with the
same L{txspawn.errors.SpawnError} as every other fd exhaustion, before any
child exists, rather than after the protocol was connected.

Polling an opted-in child is safe for the same reason group signals are
(L{txspawn._transport.groupkill}): the transport unwatches its child as soon as it is
reaped, in the reactor thread, so a polled pid is always still ours.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from txspawn._kernel.childhandle import ChildProcess
from txspawn._monitor.shared import ShutdownHook
from txspawn._monitor.sigchldwakeup import _SIGCHLDWakeup, _Subscription, _wakeup
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature

__all__ = ["StateChangeWatcher"]

_log = Logger()

#: The C{si_code}s of a stop (C{CLD_TRAPPED}: stopped under ptrace).
_STOPPED_CODES = frozenset({os.CLD_STOPPED, os.CLD_TRAPPED})


class _Watched:
    def __init__(
        self,
        child: ChildProcess,
        stopped: Callable[[int], object],
        continued: Callable[[], object],
    ) -> None:
        self.child = child
        self.stopped = stopped
        self.continued = continued


class StateChangeWatcher:
    """
    Report stops and continues of the children of one reactor that asked.
    """

    def __init__(self, reactor: Any, wakeup: _SIGCHLDWakeup = _wakeup) -> None:
        """
        @param reactor: The reactor whose thread gets the notifications.
        @param wakeup: The C{SIGCHLD} wakeup owner (the process-wide one).
        """
        self._reactor = reactor
        self._wakeup = wakeup
        self._watched: dict[int, _Watched] = {}
        self._subscription: _Subscription | None = None
        self._shutdown = ShutdownHook(reactor, self.forgetAll)

    def __repr__(self) -> str:
        return f"<StateChangeWatcher watching {len(self._watched)} children>"

    @property
    def subscribed(self) -> bool:
        """
        Whether this watcher currently holds a C{SIGCHLD} subscription.
        """
        return self._subscription is not None

    def check(self) -> None:
        """
        Make sure L{watch} can work here; L{prepare} calls it.

        @raise UnsupportedFeature: outside the main thread, where the
            C{SIGCHLD} handler stop/continue notifications need cannot be
            installed.
        """
        if self._subscription is None and (
            threading.current_thread() is not threading.main_thread()
        ):
            raise UnsupportedFeature(
                "IProcessStateObserver",
                "stop/continue notifications need a SIGCHLD handler, which "
                "only the main thread can install",
            )

    def prepare(self) -> None:
        """
        Get ready to L{watch} a child about to be spawned: call it I{before}
        spawning.  The C{SIGCHLD} subscription is taken now, so that
        watching the child once it exists needs nothing that can run out;
        if the spawn fails, L{releaseIdle} drops it again.

        @raise UnsupportedFeature: outside the main thread (see L{check}).
        @raise SpawnError: (stage C{SPAWN}) the C{SIGCHLD} wakeup pipe could
            not be opened (C{EMFILE}): the spawn fails as for any other fd
            that cannot be opened, before anything is started.
        """
        self.check()
        if self._subscription is None:
            self._subscribe()
        self._shutdown.arm()

    def releaseIdle(self) -> None:
        """
        Drop the C{SIGCHLD} subscription if no child is watched: undo
        L{prepare} for a spawn that failed (idempotent).
        """
        if not self._watched:
            self._unsubscribe()

    def watch(
        self,
        child: ChildProcess,
        stopped: Callable[[int], object],
        continued: Callable[[], object],
    ) -> None:
        """
        Report C{child}'s stops as C{stopped(signal)} and its continues as
        C{continued()}, from the reactor thread, until L{unwatch}.

        @raise ValueError: if C{child} is reaped or already watched, or
            outside the main thread (see L{check}).
        @raise SpawnError: (stage C{SPAWN}) not subscribed yet (no
            L{prepare}) and the wakeup pipe could not be opened.
        """
        if child.reaped:
            raise ValueError(f"child {child.pid} is already reaped")
        if child.pid in self._watched:
            raise ValueError(f"child {child.pid} is already watched")
        if self._subscription is None:
            self._subscribe()
        self._watched[child.pid] = _Watched(child, stopped, continued)
        self._shutdown.arm()
        # A stop before the subscription sent a SIGCHLD nobody heard.  Look
        # from the reactor, never from inside spawnProcess.
        self._reactor.callLater(0, self.poll)

    def unwatch(self, child: ChildProcess) -> None:
        """
        Stop reporting C{child} (idempotent); the last one drops the
        C{SIGCHLD} subscription.
        """
        watched = self._watched.get(child.pid)
        if watched is not None and watched.child is child:
            del self._watched[child.pid]
        if not self._watched:
            self._unsubscribe()

    def forgetAll(self) -> None:
        """
        Stop reporting every child (reactor shutdown).
        """
        self._watched.clear()
        self._unsubscribe()

    def _subscribe(self) -> None:
        try:
            subscription = self._wakeup.subscribe(self._reactor, self.poll)
        except OSError as e:
            # The wakeup pipe: EMFILE, like every other fd a spawn needs.
            raise SpawnError.fromErrno(
                e.errno or errno.EINVAL, ChildSetupStage.SPAWN
            ) from None
        self._subscription = subscription

    def _unsubscribe(self) -> None:
        # Forgotten only once unsubscribed, so that a clean-up run again
        # after an interrupt (completeCleanup) still finds it.
        self._shutdown.disarm()
        subscription = self._subscription
        if subscription is not None:
            # Resumable: a run interrupted inside it is finished by this one.
            self._wakeup.unsubscribe(subscription)
            self._subscription = None

    def poll(self) -> None:
        """
        Collect and report the pending stop/continue events of every
        watched child.
        """
        for watched in list(self._watched.values()):
            self._pollOne(watched)

    def _pollOne(self, watched: _Watched) -> None:
        child = watched.child
        while self._watched.get(child.pid) is watched and not child.reaped:
            try:
                info = os.waitid(
                    os.P_PID, child.pid, os.WSTOPPED | os.WCONTINUED | os.WNOHANG
                )
            except ChildProcessError:
                # Reaped by someone else: the monitor will find out.
                return
            if info is None:
                return
            if info.si_code in _STOPPED_CODES:
                with _log.failuresHandled("while calling processStopped:"):
                    watched.stopped(info.si_status)
            elif info.si_code == os.CLD_CONTINUED:
                with _log.failuresHandled("while calling processContinued:"):
                    watched.continued()
            else:  # pragma: no cover - WEXITED was not asked for
                return
