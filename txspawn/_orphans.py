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
children here instead.

L{adoptOrphans} gives the children to one daemon thread that waits on their
pidfds with C{poll()} and reaps each, by its own pid, when it exits (O(1)
per exit, never C{waitpid(-1)}).  The thread exists only while there are
orphans.  Their exit statuses are dropped: the protocols were disconnected
with their reactor, exactly as with stock Twisted.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterable

from twisted.logger import Logger

from txspawn._child import ChildProcess

__all__ = ["adoptOrphans", "orphanCount"]

_log = Logger()


class _OrphanReaper:
    """
    The process-wide owner of orphaned children (see the module docstring).

    @ivar _orphans: pidfd -> child, for every child not yet reaped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orphans: dict[int, ChildProcess] = {}
        self._thread: threading.Thread | None = None
        # Written to (under the lock) whenever _orphans grows, so that a
        # poll() started before the new pidfd existed is restarted.
        self._wakeRead: int | None = None
        self._wakeWrite: int | None = None

    def adopt(self, children: Iterable[ChildProcess]) -> None:
        adopted: list[ChildProcess] = []
        for child in children:
            if child.reaped:
                continue
            if child.tryReap():
                # Exited between the reactor's last iteration and now.
                child.closePidfd()
                continue
            if child.pidfd is None:
                try:
                    # Race-free: the child is ours and not yet reaped.
                    child.pidfd = os.pidfd_open(child.pid)
                except OSError:
                    _log.warn(
                        "txspawn: cannot watch orphaned child {pid} (no pidfd);"
                        " it will stay a zombie once it exits",
                        pid=child.pid,
                    )
                    continue
            adopted.append(child)
        if not adopted:
            return
        with self._lock:
            for child in adopted:
                assert child.pidfd is not None
                self._orphans[child.pidfd] = child
            if self._thread is None:
                self._wakeRead, self._wakeWrite = os.pipe2(os.O_CLOEXEC)
                self._thread = threading.Thread(
                    target=self._run, name="txspawn-orphan-reaper", daemon=True
                )
                self._thread.start()
            else:
                assert self._wakeWrite is not None
                os.write(self._wakeWrite, b"x")

    def count(self) -> int:
        with self._lock:
            return len(self._orphans)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._orphans:
                    # Retire; the next adopt() starts a new thread.  Both
                    # ends are closed under the lock, so adopt() never
                    # writes to a closed wake pipe.
                    assert self._wakeRead is not None
                    assert self._wakeWrite is not None
                    os.close(self._wakeRead)
                    os.close(self._wakeWrite)
                    self._wakeRead = self._wakeWrite = None
                    self._thread = None
                    return
                wakeRead = self._wakeRead
                pidfds = list(self._orphans)
            assert wakeRead is not None
            poller = select.poll()
            poller.register(wakeRead, select.POLLIN)
            for fd in pidfds:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll():
                if fd == wakeRead:
                    os.read(wakeRead, 512)
                    continue
                with self._lock:
                    child = self._orphans[fd]
                child.tryReap()
                with self._lock:
                    # Forgotten only once reaped, so count() == 0 means
                    # "every orphan reaped"; closed under the lock, so the
                    # number cannot be reused while it is still a key.
                    del self._orphans[fd]
                    child.closePidfd()


_reaper = _OrphanReaper()


def adoptOrphans(children: Iterable[ChildProcess]) -> None:
    """
    Reap C{children} in the background once each exits.

    The caller must have stopped watching them (their pidfds are no longer
    registered with any reactor): from now on the reaper owns them and
    closes their pidfds.

    @param children: Unreaped children whose reactor is going away.
    """
    _reaper.adopt(children)


def orphanCount() -> int:
    """
    @return: How many adopted children have not exited yet (for tests and
        C{python -m txspawn info}).
    """
    return _reaper.count()
