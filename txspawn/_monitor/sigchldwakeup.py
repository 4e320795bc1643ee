# -*- test-case-name: tests.test_monitor -*-
"""
The SIGCHLD wakeup: the one owner of the process-wide C{SIGCHLD} handler
and signal wakeup fd, shared by everything in txspawn that waits for
C{SIGCHLD}.

A child's exit (or stop, or continue) is heard the way Twisted always has:
C{SIGCHLD} gets a Python handler that does nothing, made non-interrupting
with C{signal.siginterrupt(SIGCHLD, False)} (C{SA_RESTART}), and
C{signal.set_wakeup_fd} makes CPython's C-level handler write a byte to a
non-blocking pipe whose read end the reactor watches.

C{SIGCHLD}'s disposition and the wakeup fd are process-wide, so one
module-level owner, L{_SIGCHLDWakeup}, holds them.  Users subscribe; the
first subscription saves the previous C{SIGCHLD} handler and the previous
wakeup fd and installs ours, the last unsubscription puts both back (after
checking that nobody replaced ours meanwhile).  While installed, the bytes
CPython writes (one per caught signal, any signal: the wakeup fd is not
per-signal) are forwarded to the previous wakeup fd, so an asyncio loop or
a stock Twisted reactor that owned it still hears its signals.  Several
users -- the monitors
(L{txspawn._monitor.sigchld.SIGCHLDMonitor}), the stop and continue
watcher (L{txspawn._monitor.statewatch}) and
L{txspawn._monitor.twistedregistry.TwistedRegistryReaping} of one or
several reactors -- share the one pipe: whichever reactor drains it
notifies the subscribers of every reactor (those of other reactors through
C{callFromThread}).

Signal dispositions can only be changed from the main thread; subscribing
or unsubscribing from any other thread raises L{ValueError} saying so (the
pidfd monitor is the one to use in a reactor thread).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn._kernel.childhandle import completeCleanup, recordCall, recordItems
from txspawn._monitor.shared import addInternalReader, removeInternalReader

# Nothing here is for use outside the monitor layer: its modules subscribe
# through the process-wide owner, _wakeup.
__all__: list[str] = []

_log = Logger()


def _noopHandler(signum: int, frame: FrameType | None) -> None:
    """
    The Python-level C{SIGCHLD} handler: the work is done by the wakeup fd
    that CPython's C-level handler writes to; this only has to exist.
    """


def _requireMainThread(what: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise ValueError(
            f"{what} must run in the main thread: signal.signal() and "
            f"signal.set_wakeup_fd() only work there (use the pidfd monitor "
            f"for a reactor running in another thread)"
        )


def _identity(fd: int) -> tuple[int, int] | None:
    """
    @return: The C{(st_dev, st_ino)} of C{fd}, or C{None} if it is not open.
    """
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _Subscription:
    """
    One user of the SIGCHLD wakeup: a callback run in C{reactor}'s thread
    after each wake-up.

    @ivar ended: Whether it was unsubscribed (or its subscribe failed),
        set once everything it took is given back.
    """

    def __init__(self, reactor: Any, callback: Callable[[], object]) -> None:
        self.reactor = reactor
        self.callback = callback
        self.ended = False


@implementer(IReadDescriptor)
class _WakeReader:
    """
    The wakeup pipe's read end as one reactor sees it (one per reactor, as
    a reactor cannot watch one fd through two readers).
    """

    # Stock Twisted's SIGCHLD waker logs under the default "-" too; see
    # txspawn._reactor.epollreactor.EPollReactor.doPoll.
    dispatchWithoutLogContext = True

    def __init__(self, owner: _SIGCHLDWakeup, reactor: Any) -> None:
        self._owner = owner
        self.reactor = reactor
        self.subscriptions: list[_Subscription] = []
        self.internal = False

    def fileno(self) -> int:
        """
        @return: The pipe's read end, or -1 once closed.
        """
        return self._owner.readFD

    def doRead(self) -> None:
        """
        Drain the pipe and notify every subscriber.
        """
        self._owner._wake(self)

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped this reader (it could not be internal and
        C{disconnectAll} ran, or test teardown).
        """
        self._owner._readerLost(self)

    def logPrefix(self) -> str:
        """
        @return: The log prefix.
        """
        return "txspawn SIGCHLD waker"

    def notify(self) -> None:
        """
        Run this reactor's subscribers' callbacks, logging their failures.
        """
        for subscription in list(self.subscriptions):
            # Logger.failuresHandled, without its per-call context manager
            # (this runs on every SIGCHLD).
            try:
                subscription.callback()
            except BaseException:
                _log.failure(
                    "txspawn: SIGCHLD callback {callback!r} failed",
                    level=LogLevel.critical,
                    callback=subscription.callback,
                )


#: Bytes read from the wakeup pipe at a time (one byte per signal caught).
_DRAIN_SIZE = 4096


class _SIGCHLDWakeup:
    """
    The single owner of the process-wide C{SIGCHLD} handler and signal
    wakeup fd (see the module docstring).

    @ivar readFD: The wakeup pipe's read end, -1 while not installed.
    """

    def __init__(self) -> None:
        # The wakeup pipe's read and write ends, recorded as pipe2 returns
        # them (recordItems); each set to -1 just before it is closed.
        self._pipe: list[int] = []
        # Keyed by the reactor object itself, not id(reactor): a reactor
        # dropped without unsubscribing must not hand its registration to a
        # new reactor that happens to get the same id (the new one would
        # then never hear a SIGCHLD).
        self._readers: dict[Any, _WakeReader] = {}
        #: Whether installing has begun and restoring has not ended: the
        #: state below is then to be given back (L{_restore}).
        self._begun = False
        self._previousHandler: Any = None
        #: Whether our handler was installed completely (not only tried).
        self._handlerInstalled = False
        #: What set_wakeup_fd(ours) returned: the previous wakeup fd.
        self._previousWakeup: list[int] = []
        self._previousIdentity: tuple[int, int] | None = None
        #: What set_wakeup_fd(previous) returned, in _restore.
        self._replacedBy: list[int] = []
        self._wakeupRestored = False
        self._handlerIsOurs: bool | None = None
        self._handlerRestored = False

    @property
    def readFD(self) -> int:
        """
        The wakeup pipe's read end, -1 while not installed.
        """
        return self._pipe[0] if self._pipe else -1

    @property
    def _writeFD(self) -> int:
        return self._pipe[1] if len(self._pipe) == 2 else -1

    @property
    def _previousWakeupFD(self) -> int:
        return self._previousWakeup[0] if self._previousWakeup else -1

    @property
    def installed(self) -> bool:
        """
        Whether our handler and wakeup fd are installed (or being installed
        or restored).
        """
        return self._begun

    def subscribe(self, reactor: Any, callback: Callable[[], object]) -> _Subscription:
        """
        Have C{callback} called in C{reactor}'s thread after every
        C{SIGCHLD}, installing the handler and wakeup fd on first use.

        Nothing is left behind if this raises, whatever it raises and
        wherever (a signal handler's C{KeyboardInterrupt} included): the
        clean-up (L{_unsubscribe}) runs to its end even if interrupted.

        @raise ValueError: if not called from the main thread.
        """
        _requireMainThread("installing the SIGCHLD wakeup")
        subscription = _Subscription(reactor, callback)
        try:
            if not self._begun:
                self._install()
            reader = self._readers.get(reactor)
            if reader is None:
                reader = _WakeReader(self, reactor)
                # Recorded before it is registered: the clean-up finds it.
                self._readers[reactor] = reader
                reader.internal = addInternalReader(reactor, reader)
            # Last: once appended, the subscription is complete (the
            # clean-up of an exception raised right after removes it).
            reader.subscriptions.append(subscription)
        except BaseException:
            # Run to its end even if interrupted again (a C function, called
            # first thing: nothing before it where a handler could raise).
            completeCleanup(self._unsubscribe, subscription)
            raise
        return subscription

    def unsubscribe(self, subscription: _Subscription) -> None:
        """
        Undo one L{subscribe}; the last one restores the previous handler
        and wakeup fd and closes the pipe.

        Resumable: run again after an exception interrupted it, it does
        what is left (see L{_unsubscribe}).

        @raise ValueError: if not called from the main thread.
        @raise KeyError: if C{subscription} was unsubscribed already.
        """
        _requireMainThread("uninstalling the SIGCHLD wakeup")
        if subscription.ended:
            raise KeyError(f"{subscription!r} is not subscribed")
        self._unsubscribe(subscription)

    def _unsubscribe(self, subscription: _Subscription) -> None:
        """
        Give back what C{subscription} took, each step done once whichever
        run gets to it: the subscription leaves its reader; a reader left
        with none is unregistered from its reactor (idempotent) and only
        then forgotten; with no reader left, the handler and wakeup fd are
        restored (L{_restore}); last, the subscription is marked ended.
        """
        reactor = subscription.reactor
        reader = self._readers.get(reactor)
        if reader is not None:
            if subscription in reader.subscriptions:
                reader.subscriptions.remove(subscription)
            if not reader.subscriptions:
                # internal=True whatever addInternalReader returned (it may
                # have been interrupted before that was stored): the
                # internal removal if it is among the internal readers,
                # else the idempotent removeReader.
                removeInternalReader(reactor, reader, True)
                del self._readers[reactor]
        if not self._readers and self._begun:
            self._restore()
        subscription.ended = True

    def _install(self) -> None:
        """
        Open the wakeup pipe, install our handler and wakeup fd.  Each step
        is recorded before a signal handler can raise, so that L{_restore}
        gives back whatever part of it was done.
        """
        self._begun = True
        self._previousHandler = None
        self._handlerInstalled = False
        self._previousWakeup = []
        self._previousIdentity = None
        self._replacedBy = []
        self._wakeupRestored = False
        self._handlerIsOurs = None
        self._handlerRestored = False
        recordItems(self._pipe, os.pipe2, os.O_NONBLOCK | os.O_CLOEXEC)
        self._previousHandler = signal.getsignal(signal.SIGCHLD)
        signal.signal(signal.SIGCHLD, _noopHandler)
        # SA_RESTART: a SIGCHLD must not make other code's syscalls fail
        # with EINTR.
        signal.siginterrupt(signal.SIGCHLD, False)
        self._handlerInstalled = True
        # A full pipe already means "wake up"; dropping more bytes is fine
        # and must not print warnings.
        recordCall(self._previousWakeup, _setWakeupFD, self._writeFD)
        previousWakeupFD = self._previousWakeupFD
        if previousWakeupFD != -1:
            self._previousIdentity = _identity(previousWakeupFD)

    def _restore(self) -> None:
        """
        Undo L{_install}, or the part of it that was done.

        Resumable: each step is marked done once it is, or recorded before
        a signal handler can raise, so a run after an interrupted one does
        only what is left, and warns only as the first did.
        """
        if self._previousWakeup and not self._wakeupRestored:
            if not self._replacedBy:
                previousFD = self._previousWakeupFD
                if previousFD != -1 and _identity(previousFD) != self._previousIdentity:
                    # The previous owner closed its fd and the number may
                    # now be an unrelated file: it must not receive signal
                    # bytes.
                    _log.warn(
                        "txspawn: the signal wakeup fd {fd} in place before "
                        "txspawn's was closed meanwhile; leaving no wakeup fd",
                        fd=previousFD,
                    )
                    previousFD = -1
                try:
                    recordCall(self._replacedBy, signal.set_wakeup_fd, previousFD)
                except (OSError, ValueError) as e:
                    # The previous fd was made blocking or closed since:
                    # never hand signal bytes to an fd that might block the
                    # signal path.
                    _log.warn(
                        "txspawn: cannot restore the previous signal wakeup fd "
                        "{fd} ({error}); leaving no wakeup fd",
                        fd=previousFD,
                        error=e,
                    )
                    recordCall(self._replacedBy, signal.set_wakeup_fd, -1)
            current = self._replacedBy[0]
            if current != self._writeFD:
                # Someone replaced our wakeup fd after us: theirs stays.
                signal.set_wakeup_fd(current)
                self._wakeupRestored = True
                _log.warn(
                    "txspawn: the signal wakeup fd was replaced (by fd {fd}) "
                    "while txspawn's was installed; leaving it in place",
                    fd=current,
                )
            self._wakeupRestored = True
        if not self._handlerRestored:
            if self._handlerIsOurs is None:
                # Decided once: restoring changes the answer.
                self._handlerIsOurs = signal.getsignal(signal.SIGCHLD) is _noopHandler
            if self._handlerIsOurs:
                _restoreHandler(self._previousHandler)
                self._handlerRestored = True
            else:
                self._handlerRestored = True
                if self._handlerInstalled:
                    _log.warn(
                        "txspawn: the SIGCHLD handler was replaced while "
                        "txspawn's was installed; leaving the replacement in "
                        "place"
                    )
        pipe = self._pipe
        for index, fd in enumerate(pipe):
            if fd != -1:
                pipe[index] = -1
                os.close(fd)
        self._pipe = []
        self._previousHandler = None
        self._previousWakeup = []
        self._previousIdentity = None
        self._begun = False

    def _drain(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(self.readFD, _DRAIN_SIZE)
            except BlockingIOError:
                break
            chunks.append(chunk)
            # A short read (or end of file, which cannot happen: we hold the
            # write end) emptied the pipe: no second read, and no
            # BlockingIOError raised and caught, on every child's exit.
            if len(chunk) < _DRAIN_SIZE:
                break
        return b"".join(chunks)

    def _forward(self, data: bytes) -> None:
        # CPython wrote one byte (the signal number) per caught signal; the
        # previous owner of the wakeup fd (asyncio reads signal numbers from
        # it) must still see them.
        fd = self._previousWakeupFD
        if fd == -1 or not data or _identity(fd) != self._previousIdentity:
            return
        try:
            os.write(fd, data)
        except OSError:
            # Full (a wake-up is pending anyway) or gone: nothing to do.
            pass

    def _wake(self, reader: _WakeReader) -> None:
        if self.readFD == -1:
            return
        self._forward(self._drain())
        for other in list(self._readers.values()):
            if other is reader:
                other.notify()
            else:
                # Another reactor shares the pipe; it may not even be
                # running now.  Queue the notification in its own thread.
                other.reactor.callFromThread(other.notify)

    def _readerLost(self, reader: _WakeReader) -> None:
        # The reactor dropped the reader (a reactor without internal
        # readers, in removeAll() at shutdown).  It is not re-added: a
        # reactor that is shutting down needs no more wake-ups, and the
        # subscription is still undone by uninstall.  Forget that it was
        # internal so unsubscribe only calls the idempotent removeReader.
        reader.internal = False


#: C{signal.set_wakeup_fd(fd, warn_on_full_buffer=False)}, as a C callable
#: (for L{recordCall}: no Python frame in which a handler could raise).
_setWakeupFD = partial(signal.set_wakeup_fd, warn_on_full_buffer=False)


def _restoreHandler(handler: Any) -> None:
    if handler is None:
        # Installed from C, not through Python: Python cannot put it back;
        # the default disposition is the closest.
        handler = signal.SIG_DFL
    signal.signal(signal.SIGCHLD, handler)
    if callable(handler):
        # Python cannot read SA_RESTART back.  A Python-level SIGCHLD
        # handler installed by Twisted had it, and every other one is
        # better off with it (PEP 475 retries anyway).
        signal.siginterrupt(signal.SIGCHLD, False)


#: The process-wide owner of the SIGCHLD wakeup.
_wakeup = _SIGCHLDWakeup()
