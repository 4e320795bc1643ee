# -*- test-case-name: tests.test_supervise_program -*-
"""
The process protocol of one run of a supervised program: it passes the
child's output on, and tells the program when the child ended and when
its tree (its cgroup, or its process group during a stop) is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.interfaces import IManagedProcessTransport, IProcessTreeObserver
from txspawn.options import CgroupStats
from txspawn.supervise.states import ProgramState

__all__ = ["ChildProtocol", "RunOwner"]


class RunOwner(Protocol):
    """
    What the protocol tells of its run: the program
    (L{txspawn.supervise.program.ProgramProcess}).
    """

    state: ProgramState
    lastTreeStats: CgroupStats | None
    _lingering: list[ChildProtocol]
    _groupEnd: Callable[[int], Deferred[None]] | None

    def _childEnded(self, reason: BaseException | None) -> None:
        "The child ended (reaped, pipes closed)."

    def _treeEnded(self, run: ChildProtocol) -> None:
        "Every process of C{run}'s tree exited."


@implementer(IProcessTreeObserver)
class ChildProtocol(ProcessProtocol):
    """
    The protocol of one run: passes output on, and the end of the child and
    of its tree to the program.

    @ivar treeAlive: Whether the run's cgroup (or process group) may still
        have processes: set when the child ended while they were not known
        to be gone, cleared when the tree ended.
    @ivar hasCgroup: Whether the child was spawned into a cgroup of its
        own.
    """

    treeAlive = False
    hasCgroup = False

    def __init__(
        self,
        program: RunOwner,
        output: Callable[[int, bytes], object] | None,
    ) -> None:
        self._program = program
        self._output = output

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if self._output is not None:
            self._output(childFD, data)

    def processEnded(self, reason: Failure) -> None:
        transport = self.transport
        program = self._program
        if IManagedProcessTransport.providedBy(transport):
            if self.hasCgroup:
                if transport.cgroupPath is not None:
                    # Descendants outlive the child: processTreeEnded
                    # follows once they are gone; until then the run is
                    # not over for a stop.  (Without any, the leaf is
                    # already removed, and processTreeEnded follows now.)
                    self.treeAlive = True
                    program._lingering.append(self)
            elif (
                program._groupEnd is not None
                and transport.processGroup is not None
                and program.state is ProgramState.STOPPING
            ):
                # No cgroup: a stop waits for the group's last member.
                self.treeAlive = True
                program._lingering.append(self)
                program._groupEnd(transport.processGroup).addCallback(
                    lambda _: self.processTreeEnded(None)
                )
        program._childEnded(reason.value)

    def processTreeEnded(self, stats: CgroupStats | None) -> None:
        if stats is not None:
            self._program.lastTreeStats = stats
        if self.treeAlive:
            self.treeAlive = False
            self._program._treeEnded(self)
