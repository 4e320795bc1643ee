# -*- test-case-name: tests.test_supervise_events -*-
"""
The supervisor's event stream: every transition of every program, every
spawn failure, every restart and every reload, numbered, timed and kept
(the most recent ones) for the control API's C{/v1/events}.

@since: txspawn 0.1
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from attrs import frozen
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = ["EVENT_KINDS", "EventLog", "SupervisorEvent"]

_log = Logger()

#: The kinds of event: a program's state transition, a spawn that failed
#: (with its C{errno}), a start the program made again on its own, a config
#: reload.
EVENT_KINDS = frozenset({"transition", "spawn-failed", "restart", "reload"})


@frozen
class SupervisorEvent:
    """
    One thing that happened in the supervisor.

    @ivar seq: Its number: 1 for the first event of an L{EventLog}, then
        one more for each (a client asks for the events after the last
        number it saw).
    @ivar time: When, on the supervisor's clock (seconds since the epoch
        on a real reactor).
    @ivar kind: One of L{EVENT_KINDS}.
    @ivar program: The instance it is about (C{"web"}, C{"worker:1"}), or
        C{None} (a reload).
    @ivar old: For a transition: the state left (its name), else C{None}.
    @ivar new: For a transition: the state entered (its name), else
        C{None}.
    @ivar why: Why, for a person.
    @ivar pid: The child's pid, when there is one.
    @ivar errno: For a spawn failure: the error number, if it has one.

    @since: txspawn 0.1
    """

    seq: int
    time: float
    kind: str
    program: str | None = None
    old: str | None = None
    new: str | None = None
    why: str = ""
    pid: int | None = None
    errno: int | None = None

    def toJSON(self) -> dict[str, object]:
        """
        The event as plain JSON types (what C{/v1/events} sends, one per
        line).
        """
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "program": self.program,
            "old": self.old,
            "new": self.new,
            "why": self.why,
            "pid": self.pid,
            "errno": self.errno,
        }


class EventLog:
    """
    Numbers, keeps and hands out the supervisor's events.

    @ivar keep: How many of the latest events L{recent} can return.

    @since: txspawn 0.1
    """

    def __init__(self, clock: IReactorTime, keep: int = 1000) -> None:
        """
        @param clock: Timestamps the events.
        @param keep: How many of the latest events are kept (C{>= 1}).
        @raise ValueError: C{keep} is less than 1.
        """
        if keep < 1:
            raise ValueError(f"EventLog keep must be >= 1, not {keep!r}")
        self.keep = keep
        self._clock = clock
        self._events: deque[SupervisorEvent] = deque(maxlen=keep)
        self._subscribers: list[Callable[[SupervisorEvent], object]] = []
        self._seq = 0

    def publish(
        self,
        kind: str,
        *,
        program: str | None = None,
        old: str | None = None,
        new: str | None = None,
        why: str = "",
        pid: int | None = None,
        errno: int | None = None,
    ) -> SupervisorEvent:
        """
        Record an event, numbered and timed now, and tell every subscriber
        (a subscriber that raises is logged; the others still hear it).

        @param kind: One of L{EVENT_KINDS}.
        @return: The event.
        @raise ValueError: C{kind} is unknown.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(
                f"event kind must be one of {', '.join(sorted(EVENT_KINDS))},"
                f" not {kind!r}"
            )
        self._seq += 1
        event = SupervisorEvent(
            seq=self._seq,
            time=self._clock.seconds(),
            kind=kind,
            program=program,
            old=old,
            new=new,
            why=why,
            pid=pid,
            errno=errno,
        )
        self._events.append(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except BaseException:
                _log.failure(
                    "event subscriber {subscriber!r} failed", subscriber=subscriber
                )
        return event

    @property
    def lastSeq(self) -> int:
        """
        The number of the latest event, C{0} before the first.
        """
        return self._seq

    def recent(self, since: int = 0) -> list[SupervisorEvent]:
        """
        The kept events numbered after C{since}, oldest first.

        @param since: The last number the caller saw (C{0}: every kept
            event).
        """
        if since >= self._seq:
            return []
        # The kept events are numbered consecutively up to _seq.
        skip = len(self._events) - (self._seq - max(since, 0))
        return list(self._events)[max(skip, 0) :]

    def subscribe(
        self, callback: Callable[[SupervisorEvent], object]
    ) -> Callable[[], None]:
        """
        Have C{callback} called with every event published from now on.

        @return: A function that unsubscribes (calling it again does
            nothing).
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe
