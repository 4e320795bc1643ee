# -*- test-case-name: tests.test_supervise_servicereal -*-
"""
The end of a process group whose leader was reaped during a stop, for a
child without a cgroup: the members left were sent C{SIGKILL} by the
transport before it reaped the leader (L{IManagedProcessTransport.terminate
<txspawn.interfaces.IManagedProcessTransport.terminate>}), and a killed
process takes a moment to exit; this waits for that.

Without a cgroup nothing tells when the last member of a group exits, so
this looks (C{kill(-pgid, 0)}), on the clock, from a millisecond apart up
to 50 ms apart: it runs only while a stop waits for a group that outlived
its leader, never while programs run.  It only looks: a group id cannot be
given to a new process while the group has a member, but once it is empty
it can, so signalling here could reach a stranger.
"""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = ["endGroup"]

_log = Logger()

_FIRST = 0.001
_LONGEST = 0.05


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Members under another uid: the group is not empty.
        return True
    return True


def endGroup(clock: IReactorTime, pgid: int, limit: float = 5.0) -> Deferred[None]:
    """
    Fire once the process group C{pgid} is empty, or after C{limit}
    seconds (a member that is a zombie its parent does not reap still
    counts for C{kill(2)}, though it runs no more; a member that ignored
    a stop signal other than C{SIGTERM} was not killed by the transport).

    @param clock: Times the looks.
    @param pgid: The group, whose leader (the child) was reaped.
    @param limit: The longest wait, in seconds.
    @return: Fires with C{None}.
    """
    done: Deferred[None] = Deferred()
    if not _alive(pgid):
        done.callback(None)
        return done
    deadline = clock.seconds() + limit

    def look(interval: float) -> None:
        if not _alive(pgid):
            done.callback(None)
        elif clock.seconds() >= deadline:
            _log.warn(
                "process group {pgid} still has members {limit} s after its"
                " leader ended; no longer waiting for them",
                pgid=pgid,
                limit=limit,
            )
            done.callback(None)
        else:
            clock.callLater(interval, look, min(interval * 2, _LONGEST))

    clock.callLater(_FIRST, look, _FIRST * 2)
    return done
