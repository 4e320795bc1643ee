# -*- test-case-name: tests.test_dispatch -*-
"""
Tests for L{txspawn._reactor.epollreactor.EPollReactor.doPoll}: descriptors that set
C{dispatchWithoutLogContext} are dispatched without Twisted's log context,
a plain readable event calls their C{doRead} directly, a pure hang-up
calls their C{hangUp} when they have one, and errors are handled exactly as
Twisted's C{_doReadOrWrite} handles them.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import main
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReadDescriptor
from twisted.python import context, log
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.hygiene import HygieneMixin
from tests.test_reactor import _dispose
from txspawn.reactor import EPollReactor


@implementer(IReadDescriptor)
class PipeReader:
    """
    The read end of a real pipe; records what the reactor does with it.
    """

    dispatchWithoutLogContext = True

    def __init__(self, fd: int, behaviour: str = "read") -> None:
        self.fd = fd
        self.behaviour = behaviour
        self.reads: list[bytes] = []
        self.systems: list[str] = []
        self.lost: list[Failure] = []

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> Any:
        self.systems.append(context.get(log.ILogContext)["system"])
        if self.behaviour == "raise":
            raise ZeroDivisionError("doRead failed")
        data = os.read(self.fd, 1024)
        self.reads.append(data)
        if self.behaviour == "done" or not data:
            return main.CONNECTION_DONE
        return None

    def connectionLost(self, reason: Failure) -> None:
        self.lost.append(reason)

    def logPrefix(self) -> str:
        return "pipe-reader"


class HangingUp(PipeReader):
    """
    The same reader, with a C{hangUp} method that records its calls.
    """

    def __init__(self, fd: int, behaviour: str = "read") -> None:
        super().__init__(fd, behaviour)
        self.hangUps = 0

    def hangUp(self) -> None:
        # The contract: the reactor has already stopped watching us.
        self.hangUps += 1
        self.watchedWhenHungUp = self in self.reactor.getReaders()

    watchedWhenHungUp: bool | None = None

    reactor: Any = None


class WithContext(PipeReader):
    """
    The same reader, not opted in: dispatched through C{callWithLogger}.
    """

    dispatchWithoutLogContext = False


class DoPollTests(HygieneMixin, SynchronousTestCase):
    """
    Dispatch of real pipe events by the txspawn epoll reactor.
    """

    def setUp(self) -> None:
        self.setUpHygiene()
        self.reactor: Any = EPollReactor()
        self.addCleanup(_dispose, self.reactor)

    def watchedPipe(
        self, readerClass: type[PipeReader], behaviour: str = "read"
    ) -> tuple[PipeReader, int]:
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        reader = readerClass(r, behaviour)
        self.reactor.addReader(reader)
        self.addCleanup(self.reactor.removeReader, reader)
        return reader, w

    def pollOnce(self, *writes: tuple[int, bytes]) -> None:
        """
        Write each C{(fd, data)}, run one C{doPoll(0)}, then close the
        written fds (so the readers see end of file only on a later poll).
        """
        for fd, data in writes:
            os.write(fd, data)
        self.reactor.doPoll(0)
        for fd, _ in writes:
            os.close(fd)

    def test_readableWithoutContext(self) -> None:
        """
        A readable opted-in descriptor's C{doRead} runs under the log
        context already current, not one named after its C{logPrefix}; one
        that did not opt in gets Twisted's context.
        """
        direct, w1 = self.watchedPipe(PipeReader)
        wrapped, w2 = self.watchedPipe(WithContext)
        self.pollOnce((w1, b"a"), (w2, b"b"))
        self.assertEqual((direct.reads, wrapped.reads), ([b"a"], [b"b"]))
        self.assertEqual(direct.systems, ["-"])
        self.assertEqual(wrapped.systems, ["pipe-reader"])
        self.assertEqual((direct.lost, wrapped.lost), ([], []))

    def test_doReadReturnsReason(self) -> None:
        """
        A true return value from C{doRead} disconnects the descriptor with
        that reason (as a read-side loss), as in C{_doReadOrWrite}.
        """
        reader, w = self.watchedPipe(PipeReader, "done")
        self.pollOnce((w, b"x"))
        self.assertEqual(reader.reads, [b"x"])
        self.assertEqual(len(reader.lost), 1)
        self.assertTrue(reader.lost[0].check(ConnectionDone))
        self.assertNotIn(reader, self.reactor.getReaders())

    def test_doReadRaises(self) -> None:
        """
        An exception from C{doRead} is logged and disconnects the
        descriptor with that exception, as in C{_doReadOrWrite}; the next
        descriptor is still dispatched.
        """
        broken, w1 = self.watchedPipe(PipeReader, "raise")
        fine, w2 = self.watchedPipe(PipeReader)
        self.pollOnce((w1, b"x"), (w2, b"y"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(len(broken.lost), 1)
        self.assertTrue(broken.lost[0].check(ZeroDivisionError))
        self.assertNotIn(broken, self.reactor.getReaders())
        self.assertEqual(fine.reads, [b"y"])
        self.assertIn(fine, self.reactor.getReaders())

    def test_hangUpGoesThroughTwisted(self) -> None:
        """
        An event other than plain "readable" (here: the writer closed with
        no data left, C{EPOLLHUP}) takes Twisted's C{_doReadOrWrite}, which
        reports a clean read-side close without calling C{doRead}.
        """
        reader, w = self.watchedPipe(PipeReader)
        os.close(w)
        self.reactor.doPoll(0)
        self.assertEqual(reader.reads, [])
        self.assertEqual(len(reader.lost), 1)
        self.assertTrue(reader.lost[0].check(ConnectionDone))

    def test_hangUpCallsHangUp(self) -> None:
        """
        A pure hang-up of an opted-in descriptor that has a C{hangUp} method
        and is only reading removes it as C{removeReader} would, then calls
        that method, instead of Twisted's C{_doReadOrWrite} and
        C{connectionLost}.  The fd is out of epoll: closing it and opening
        another at the same number raises no stale event.
        """
        reader, w = self.watchedPipe(HangingUp)
        assert isinstance(reader, HangingUp)
        reader.reactor = self.reactor
        os.close(w)
        self.reactor.doPoll(0)
        self.assertEqual((reader.hangUps, reader.reads, reader.lost), (1, [], []))
        self.assertIs(reader.watchedWhenHungUp, False)
        self.assertNotIn(reader, self.reactor.getReaders())
        self.assertNotIn(reader.fileno(), self.reactor._selectables)
        self.assertRaises(
            FileNotFoundError, self.reactor._poller.unregister, reader.fileno()
        )

    def test_hangUpWithDataReadsFirst(self) -> None:
        """
        A hang-up with data still to read (C{EPOLLIN|EPOLLHUP}) is a read:
        C{doRead} runs, not C{hangUp}.
        """
        reader, w = self.watchedPipe(HangingUp)
        assert isinstance(reader, HangingUp)
        reader.reactor = self.reactor
        os.write(w, b"last")
        os.close(w)
        self.reactor.doPoll(0)
        self.assertEqual((reader.hangUps, reader.reads), (0, [b"last"]))

    def test_hangUpWhileWritingGoesThroughTwisted(self) -> None:
        """
        A descriptor that is also registered for writing is hung up the
        Twisted way (its buffered output is Twisted's business):
        C{connectionLost}, not C{hangUp}.
        """
        reader, w = self.watchedPipe(HangingUp)
        assert isinstance(reader, HangingUp)
        reader.reactor = self.reactor
        reader.doWrite = lambda: None  # type: ignore[attr-defined]
        self.reactor.addWriter(reader)
        os.close(w)
        self.reactor.doPoll(0)
        self.assertEqual(reader.hangUps, 0)
        self.assertEqual(len(reader.lost), 1)
        self.assertTrue(reader.lost[0].check(ConnectionDone))
        self.assertNotIn(reader, self.reactor.getWriters())
