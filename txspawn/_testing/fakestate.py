# -*- test-case-name: tests.test_testing -*-
"""
The record a L{txspawn.testing.FakeProcessTransport} keeps: everything the
code under test did to it, and where the fake child is in its life.

Kept apart from the transport so that a test inspects one plain attrs
object (C{transport.state}) rather than the transport's internals.
"""

from __future__ import annotations

from attrs import Factory, define
from twisted.internet.interfaces import IProducer

__all__ = ["FakeProcessState"]


@define
class FakeProcessState:
    """
    Everything the code under test did to a
    L{txspawn.testing.FakeProcessTransport}, and where
    the fake child is in its life.

    @ivar written: Bytes written to each of the child's fds, in order
        (C{write}/C{writeSequence} go to fd 0).
    @ivar closedFDs: The child fds the parent closed (C{closeChildFD},
        C{closeStdin}..., C{loseConnection}), in call order.
    @ivar signals: Every signal sent to the child (C{signalProcess}, or
        C{terminate} for a child that leads no group), as a number.
    @ivar groupSignals: Every signal sent to the child's process group
        (C{signalProcessGroup}, C{terminate}).
    @ivar lost: Whether C{loseConnection} was called.
    @ivar paused: Whether the transport is currently paused
        (C{pauseProducing} without a later C{resumeProducing}).
    @ivar pauseCount: How many times C{pauseProducing} was called.
    @ivar producer: The producer registered with C{registerProducer}, if any.
    @ivar streaming: Whether that producer is a push producer.
    @ivar status: The child's classic wait status once it exited, else
        C{None}.
    @ivar reaped: Whether the child exited (C{processExited} was called).
    @ivar ended: Whether C{processEnded} was called.
    @ivar openPipes: The child fds that are pipes (or, for a pty, fd 1) and
        still open.
    @ivar terminating: Whether a C{terminate} (or the C{timeout} option) is
        in progress: C{SIGTERM} sent, C{SIGKILL} scheduled.
    @ivar stopped: Whether the fake child is stopped
        (L{txspawn.testing.FakeProcessTransport.stopChild}).
    @ivar treeKills: For a child spawned with C{cgroup=}, each
        C{cgroup.kill} the transport made, in order, by why:
        C{"killTree"} (L{txspawn.testing.FakeProcessTransport.killTree}),
        C{"terminate"} (the C{SIGKILL} step of C{terminate()} or of the
        C{timeout} option, or the child exiting while a termination was in
        progress) or C{"exit"} (the child was reaped and its C{Cgroup}
        says C{killOnExit}).
    @ivar treeEnded: Whether every process of the child's cgroup has
        exited (L{txspawn.testing.FakeProcessTransport.treeEnded}).
    """

    written: dict[int, list[bytes]] = Factory(dict)
    closedFDs: list[int] = Factory(list)
    signals: list[int] = Factory(list)
    groupSignals: list[int] = Factory(list)
    lost: bool = False
    paused: bool = False
    pauseCount: int = 0
    producer: IProducer | None = None
    streaming: bool | None = None
    status: int | None = None
    reaped: bool = False
    ended: bool = False
    openPipes: set[int] = Factory(set)
    terminating: bool = False
    stopped: bool = False
    treeKills: list[str] = Factory(list)
    treeEnded: bool = False

    def writtenTo(self, childFD: int = 0) -> bytes:
        """
        All the bytes written to one of the child's fds.

        @param childFD: The child fd (0, stdin, by default).
        @return: The concatenation of every write to it.
        """
        return b"".join(self.written.get(childFD, []))
