# -*- test-case-name: tests.test_supervise_events -*-
"""
Tests for L{txspawn.supervise.events}: the supervisor's event stream.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txspawn.supervise import EventLog, SupervisorEvent


class EventLogTests(SynchronousTestCase):
    """
    L{EventLog}.
    """

    def test_publish(self) -> None:
        """
        Events are numbered from 1 and timed on the clock.
        """
        clock = Clock()
        clock.advance(100)
        log = EventLog(clock)
        first = log.publish("transition", program="a", old="STOPPED", new="STARTING")
        clock.advance(1.5)
        second = log.publish("reload", why="added ['b']")
        self.assertEqual(
            first,
            SupervisorEvent(
                seq=1,
                time=100.0,
                kind="transition",
                program="a",
                old="STOPPED",
                new="STARTING",
            ),
        )
        self.assertEqual((second.seq, second.time, second.program), (2, 101.5, None))
        self.assertEqual(log.recent(), [first, second])
        self.assertEqual(log.lastSeq, 2)

    def test_unknownKind(self) -> None:
        """
        An unknown kind is a L{ValueError}, and uses no number.
        """
        log = EventLog(Clock())
        error = self.assertRaises(ValueError, log.publish, "explosion")
        self.assertIn("'explosion'", str(error))
        self.assertEqual(log.publish("restart", program="a").seq, 1)

    def test_recentSince(self) -> None:
        """
        C{recent(since)} gives the kept events numbered after C{since}; only
        the latest C{keep} are kept.
        """
        log = EventLog(Clock(), keep=3)
        events = [log.publish("restart", program=str(n)) for n in range(5)]
        self.assertEqual(log.recent(), events[2:])
        self.assertEqual(log.recent(since=3), events[3:])
        self.assertEqual(log.recent(since=1), events[2:])
        self.assertEqual(log.recent(since=5), [])
        self.assertEqual(log.recent(since=99), [])

    def test_keepAtLeastOne(self) -> None:
        """
        C{keep} below 1 is a L{ValueError}.
        """
        self.assertRaises(ValueError, EventLog, Clock(), 0)

    def test_subscribe(self) -> None:
        """
        A subscriber hears each event published after it subscribed, until
        it unsubscribes (twice does nothing); one that raises is logged and
        the others still hear the event.
        """
        log = EventLog(Clock())
        log.publish("restart", program="before")
        heard: list[SupervisorEvent] = []

        def broken(event: SupervisorEvent) -> None:
            raise RuntimeError("broken subscriber")

        log.subscribe(broken)
        unsubscribe = log.subscribe(heard.append)
        event = log.publish("restart", program="a")
        self.assertEqual(heard, [event])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        unsubscribe()
        unsubscribe()
        log.publish("restart", program="b")
        self.assertEqual(heard, [event])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_toJSON(self) -> None:
        """
        C{toJSON} has every field in plain JSON types.
        """
        event = SupervisorEvent(
            seq=3,
            time=1.25,
            kind="spawn-failed",
            program="web",
            why="spawn failed: no such file",
            errno=2,
        )
        self.assertEqual(
            json.loads(json.dumps(event.toJSON())),
            {
                "seq": 3,
                "time": 1.25,
                "kind": "spawn-failed",
                "program": "web",
                "old": None,
                "new": None,
                "why": "spawn failed: no such file",
                "pid": None,
                "errno": 2,
            },
        )
