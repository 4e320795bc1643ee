# -*- test-case-name: tests.test_listeners -*-
"""
Exit listeners: code other than the protocol that wants to know when a
process ended (portage's C{addExitListener}, Twisted-style Deferreds).

An L{ExitNotifier} belongs to one transport.  When the transport delivers
C{processEnded}, it calls L{ExitNotifier.fire}: each listener is called
with the transport (its exceptions are logged, and never stop the next
listener), then every L{Deferred} handed out by L{ExitNotifier.whenEnded}
fires with the exit reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.logger import Logger

__all__ = ["ExitListener", "ExitNotifier"]

_log = Logger()

#: A listener: called with the transport once the process ended.
ExitListener = Callable[[Any], object]


class ExitNotifier:
    """
    The exit listeners and end Deferreds of one transport.

    @ivar reason: The exit reason once fired, else C{None}.
    """

    def __init__(self) -> None:
        self._listeners: list[ExitListener] = []
        self._waiters: list[Deferred[ProcessDone | ProcessTerminated]] = []
        self.reason: ProcessDone | ProcessTerminated | None = None
        self._transport: object = None

    @property
    def fired(self) -> bool:
        """
        Whether L{fire} was called.
        """
        return self.reason is not None

    def add(self, listener: ExitListener) -> None:
        """
        Call C{listener(transport)} once the process ended; at once if it
        already has.  Adding the same callable twice calls it twice.

        @raise TypeError: if C{listener} is not callable.
        """
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {listener!r}")
        if self.fired:
            self._call(listener)
        else:
            self._listeners.append(listener)

    def remove(self, listener: ExitListener) -> None:
        """
        Undo one L{add} of C{listener}.

        @raise ValueError: if C{listener} is not registered (never added,
            already removed, or already called).
        """
        try:
            self._listeners.remove(listener)
        except ValueError:
            raise ValueError(
                f"listener {listener!r} is not registered (never added, already "
                f"removed, or already called)"
            ) from None

    def whenEnded(self) -> Deferred[ProcessDone | ProcessTerminated]:
        """
        @return: A new L{Deferred} that fires with the exit reason
            (L{ProcessDone} or L{ProcessTerminated}, as an exception
            I{instance}, never as a failure) once the process ended; already
            fired if it has.
        """
        if self.reason is not None:
            done: Deferred[ProcessDone | ProcessTerminated] = Deferred()
            done.callback(self.reason)
            return done
        waiter: Deferred[ProcessDone | ProcessTerminated] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def fire(self, transport: object, reason: ProcessDone | ProcessTerminated) -> None:
        """
        The process ended: call the listeners, then fire the Deferreds
        (once; later calls do nothing).
        """
        if self.fired:
            return
        self.reason = reason
        self._transport = transport
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            self._call(listener)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(reason)

    def _call(self, listener: ExitListener) -> None:
        with _log.failuresHandled(
            "txspawn: exit listener {listener!r} failed", listener=listener
        ):
            listener(self._transport)
