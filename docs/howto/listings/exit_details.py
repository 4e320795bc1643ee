"""
What txspawn tells you about a child's end: its resource usage, its stops
and continues, exit listeners and a Deferred on the transport.
"""

from __future__ import annotations

import sys
from signal import SIGCONT, SIGTSTP

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from zope.interface import implementer

from txspawn.interfaces import IProcessStateObserver

# Works for a while, reading stdin until it is closed.
WORKER = """
import sys
total = sum(i * i for i in range(2_000_000))
sys.stdin.read()
"""


@implementer(IProcessStateObserver)
class Worker(ProcessProtocol):
    """
    Opting in to stop/continue notifications: only protocols that provide
    IProcessStateObserver get them (and only they cost anything).
    """

    def connectionMade(self) -> None:
        print("worker started: pid", self.transport.pid)  # type: ignore[union-attr]
        # Pretend someone pressed ^Z on the worker.
        self.transport.signalProcess(int(SIGTSTP))  # type: ignore[union-attr]

    def processStopped(self, signal: int) -> None:
        print("worker stopped by signal", signal)
        self.transport.signalProcess(int(SIGCONT))  # type: ignore[union-attr]

    def processContinued(self) -> None:
        print("worker continued")
        self.transport.closeStdin()  # type: ignore[union-attr]


async def example(reactor: object) -> float:
    transport = reactor.spawnProcess(  # type: ignore[attr-defined]
        Worker(),
        sys.executable,
        [sys.executable, "-c", WORKER],
        # Its own process group: the kernel discards SIGTSTP sent to a
        # process in an orphaned group (ours may be one, when this runs as
        # a detached job); a group of its own in our session never is.
        processGroup=0,
    )
    # t.pid is None by now (as with Twisted's transports); t.spawnedPid
    # still names the child that ended.
    transport.addExitListener(lambda t: print("listener: pid", t.spawnedPid, "ended"))
    reason = await transport.whenEnded()
    usage = reason.rusage
    print(f"user CPU {usage.ru_utime:.2f} s, system CPU {usage.ru_stime:.2f} s")
    # Not the worker's own peak: it includes this process's peak RSS up to
    # the spawn (see "What ru_maxrss measures").
    print(f"max RSS {usage.ru_maxrss} KiB")
    return float(usage.ru_utime)


def main(reactor: object) -> Deferred[float]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
