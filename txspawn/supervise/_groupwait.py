# -*- test-case-name: tests.test_supervise_servicereal -*-
"""
The end of a process group whose leader (a program's child without a
cgroup) ended during a stop: what is left of the group is killed and
waited for, by L{txspawn.supervise._groupwatch.killGroup} (pidfds, no
polling).

That needs the leader's start time, read when it is spawned, so that a
process that later took the group's number is never taken for a member;
it is read only for a child whose parent is this process (a real child
just spawned), so a fake child of a test's fake reactor, whose pid may be
a stranger's, is never acted on.
"""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFDSet
from zope.interface import implementer

from txspawn.supervise._groupwatch import killGroup, parentAndStartTime
from txspawn.supervise.states import IChildObserver, ProgramState

__all__ = ["GroupEnd"]


@implementer(IChildObserver)
class GroupEnd:
    """
    Observes one program (for its children's start times) and ends the
    process group its child leaves behind: the program's C{groupEnd}.
    """

    def __init__(self, reactor: IReactorFDSet) -> None:
        self._reactor = reactor
        self._leaders: dict[int, int] = {}

    def childSpawned(self, program: object, pid: int | None) -> None:
        """
        Note the start time of a child of this process (the leader of its
        group, when it leads one).
        """
        self._leaders.clear()
        transport = getattr(program, "transport", None)
        if pid is None or getattr(transport, "cgroupPath", None) is not None:
            # A child in a cgroup is waited for through it.
            return
        found = parentAndStartTime(pid)
        if found is not None and found[0] == os.getpid():
            self._leaders[pid] = found[1]

    def transition(
        self, program: object, old: ProgramState, new: ProgramState, why: str
    ) -> None:
        """
        Nothing: only spawns matter here.
        """

    def __call__(self, pgid: int) -> Deferred[None]:
        """
        Kill what is left of the group C{pgid} (led by the last child) and
        fire once it is empty; at once when the leader is not known.
        """
        start = self._leaders.pop(pgid, None)
        if start is None:
            return succeed(None)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            # Empty: no need to look through /proc.
            return succeed(None)
        except OSError:
            pass
        return killGroup(self._reactor, pgid, start)
