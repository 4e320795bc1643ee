# -*- test-case-name: tests.test_process -*-
"""
The pipe-connected process transport: Twisted's C{IProcessTransport}
contract on top of a txspawn engine and child monitor.

L{Process} opens the pipes a C{childFDs} mapping asks for, has an engine
start the child with them, closes the child's ends, and then turns pipe
events and the monitor's "reaped" notification into the protocol callbacks
in Twisted's order:

  - C{childDataReceived(fd, data)} for each C{"r"} pipe;
  - C{childConnectionLost(fd)} once per pipe (C{"r"} or C{"w"});
  - C{processExited(reason)} once the child is reaped (pipes may still be
    open);
  - C{processEnded(reason)} last, exactly once, when the child is reaped
    I{and} every pipe is closed; C{transport.pid} is already C{None}.

Every protocol callback runs inside C{Logger.failuresHandled}, as in
L{twisted.internet._baseprocess}: an application exception is logged and
never reaches the reactor, and never stops the child from being reaped or
an fd from being closed.

What L{Process} shares with L{txspawn._transport.ptytransport.PTYProcess} --
the child, its signalling, process groups, timeouts, exit listeners -- is
L{txspawn._transport.lifecycle.ProcessLifecycle}, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IProcessProtocol,
    IProducer,
    IReactorFDSet,
    IReactorTime,
)
from twisted.internet.main import CONNECTION_DONE
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn._kernel.childhandle import ChildProcess, completeCleanup
from txspawn._plan.plan import InheritFD, PipeFromParent, PipeToParent, SpawnPlan
from txspawn._transport.cgroupend import ChildCgroup, openLeaf
from txspawn._transport.lifecycle import (
    ProcessLifecycle,
    failure,
    killAndReap,
    leadsGroup,
)
from txspawn._transport.pipes import PipeReader, PipeWriter, openParentPipe
from txspawn.interfaces import IManagedProcessTransport

if TYPE_CHECKING:
    from txspawn._cgroup.leaf import CgroupLeaf
    from txspawn._cgroup.removal import LeafRemover
    from txspawn.interfaces import ISpawner

__all__ = ["Process", "ProcessLifecycle", "killAndReap", "leadsGroup"]

_log = Logger()


@implementer(IManagedProcessTransport, IConsumer)
class Process(ProcessLifecycle):
    """
    A child process connected to the parent by pipes (Twisted's C{Process}
    contract).

    @ivar pipes: Child fd to the L{PipeReader} (C{"r"}) or L{PipeWriter}
        (Twisted's C{ProcessWriter}, C{"w"}) still open for it.
    """

    def __init__(
        self,
        reactor: IReactorFDSet,
        plan: SpawnPlan,
        proto: IProcessProtocol | None,
        spawner: ISpawner,
        owner: list[ProcessLifecycle] | None = None,
        leafRemover: Callable[[], LeafRemover] | None = None,
    ) -> None:
        """
        Make the child's cgroup leaf (with C{plan.cgroup}), open the pipes,
        start the child, close the child's pipe ends.

        Nothing is left behind if this raises, whatever it raises and
        wherever (a signal handler's C{KeyboardInterrupt} included): every
        fd opened so far is closed, and a child that was started is killed
        and reaped.  Each fd is recorded as it is opened, before any
        bytecode runs (L{txspawn._transport.pipes.openParentPipe}), and set to C{-1}
        in that record just before it is closed, so the clean-up closes
        each exactly once; the clean-up (L{_rollBack}) runs to its end even
        if a second exception interrupts it, which is raised after it.

        @param reactor: The reactor the pipes are registered with.
        @param plan: The validated plan (see
            L{txspawn._plan.planner.planSpawn}).
        @param proto: The protocol; connected later by
            L{ProcessLifecycle._connect}.
        @param spawner: The engine that starts the child.
        @param owner: If given, the new transport appends itself to it
            once it is complete, as its very last step: the caller's clean-up
            then finds it even if an exception is raised right after the
            constructor returned (see L{ProcessLifecycle._abandon}).
        @param leafRemover: Gives the reactor's
            L{txspawn._cgroup.removal.LeafRemover}, which removes the
            child's leaf once it is empty; C{None}: the leaf is removed
            when the child is reaped, waiting a bounded time.
        @raise txspawn.errors.SpawnError: The child could not be started.
        @raise txspawn.errors.UnsupportedFeature: A required cgroup cannot
            be had here (nothing was opened).
        """
        self._reactor = reactor
        self._clock = cast(IReactorTime, reactor)
        self.pipes: dict[int, PipeReader | PipeWriter] = {}
        fdMap: dict[int, int] = {}
        parentEnds: dict[int, int] = {}
        kinds: dict[int, str] = {}
        opened: list[int] = []
        leaves: list[CgroupLeaf] = []
        child: ChildProcess | None = None
        try:
            # The leaf first: a spawn that cannot have its cgroup fails
            # before anything else is opened.
            self.cgroupUnavailable = openLeaf(plan.cgroup, leaves)
            for spec in plan.childFDs:
                if isinstance(spec, InheritFD):
                    fdMap[spec.childFD] = spec.parentFD
                    continue
                toParent = isinstance(spec, PipeToParent)
                assert toParent or isinstance(spec, PipeFromParent)
                # The parent's end comes back non-blocking.
                parentEnd, childEnd = openParentPipe(toParent, opened)
                fdMap[spec.childFD], parentEnds[spec.childFD] = childEnd, parentEnd
                kinds[spec.childFD] = "r" if toParent else "w"
            if leaves:
                child = spawner.spawn(  # type: ignore[no-untyped-call]
                    plan, fdMap, None, leaves[0]
                )
            else:
                child = spawner.spawn(  # type: ignore[no-untyped-call]
                    plan, fdMap, None
                )
            # The child has its own copies now; ours would keep the pipes
            # from ever reporting end-of-file.
            # Spelled with continue: CPython 3.13 compiles "if ...: body" at
            # the end of a loop with its backward jump outside this try, and
            # a KeyboardInterrupt there skipped the clean-up and leaked the
            # child (see tests/test_exceptiontable.py).
            for index, fd in enumerate(opened):
                if fd in parentEnds.values():
                    continue
                opened[index] = -1
                os.close(fd)
            self._child = child
            if leaves:
                assert plan.cgroup is not None
                self._cgroup = ChildCgroup(leaves[0], plan.cgroup, leafRemover)
            self.pid = child.pid
            self.processGroup = child.pid if leadsGroup(plan) else None
            self.proto = proto
            for childFD, parentFD in parentEnds.items():
                if kinds[childFD] == "r":
                    self.pipes[childFD] = PipeReader(reactor, self, childFD, parentFD)
                else:
                    self.pipes[childFD] = PipeWriter(reactor, self, childFD, parentFD)
            # Registered only once held, so that the clean-up finds them.
            for pipe in self.pipes.values():
                pipe.startReading()  # type: ignore[no-untyped-call]
        except BaseException:
            # Run to its end even if interrupted again (a C function, called
            # first thing: nothing before it where a handler could raise).
            completeCleanup(self._rollBack, child, opened, leaves)
            raise
        if owner is not None:
            owner.append(self)

    def _rollBack(
        self,
        child: ChildProcess | None,
        opened: list[int],
        leaves: list[CgroupLeaf],
    ) -> None:
        """
        Undo a constructor that raised: kill and reap the child, unregister
        the pipes, close every fd opened, discard the cgroup leaf (killing
        anything the child started in it).

        Resumable (see L{txspawn._kernel.childhandle.completeCleanup}), each
        step done once whichever run gets to it: the child's reap is
        recorded before a signal handler can raise
        (L{ChildProcess.killAndReap}), unregistering is idempotent, and each
        fd is set to C{-1} in C{opened} just before it is closed.

        @param child: The child, if the engine started it.
        @param opened: The fds opened, C{-1} for those closed.
        @param leaves: The leaf made for the child, if any (discarding is
            idempotent; the list is emptied once it is done).
        """
        if child is not None:
            killAndReap(child)
        for pipe in self.pipes.values():
            pipe.stopReading()  # type: ignore[no-untyped-call]
            pipe.stopWriting()  # type: ignore[no-untyped-call]
        self.pipes.clear()
        for index, fd in enumerate(opened):
            if fd != -1:
                opened[index] = -1
                os.close(fd)
        for leaf in leaves:
            leaf.discard()
        leaves.clear()

    # -- pipe events ------------------------------------------------------

    def childDataReceived(self, name: int, data: bytes) -> None:
        """
        A reader got data: hand it to the protocol.  (The reader logs an
        exception and closes its pipe.)
        """
        if self.proto is not None:
            self.proto.childDataReceived(name, data)

    def childConnectionLost(self, childFD: int, reason: Failure) -> None:
        """
        A pipe is finished: close our end, tell the protocol, maybe end.
        """
        pipe = self.pipes.get(childFD)
        if pipe is None:
            return
        # Resumable, for the clean-up of an interrupted spawn that closes
        # the pipes (_forceClosePipes, run again until it completes): the fd
        # is set to -1 just before it is closed and the pipe is dropped
        # after, each with no point between where a signal handler could
        # raise, so a run after an interrupt closes it exactly once, and
        # the protocol is told once.
        fd = pipe.fd
        if fd != -1:
            pipe.fd = -1
            os.close(fd)
        del self.pipes[childFD]
        if self.proto is not None:
            # Logger.failuresHandled, without its per-call context manager.
            try:
                self.proto.childConnectionLost(childFD)
            except BaseException:
                _log.failure(
                    "while calling childConnectionLost({fd}):",
                    level=LogLevel.critical,
                    fd=childFD,
                )
        self.maybeCallProcessEnded()

    def _pipesDone(self) -> bool:
        return not self.pipes

    def _forceClosePipes(self) -> None:
        # Synchronously, and without flushing what is buffered for a "w"
        # pipe: whoever holds the other ends (a daemonised grandchild) may
        # never read or close them.
        for pipe in list(self.pipes.values()):
            pipe.stopReading()  # type: ignore[no-untyped-call]
            pipe.stopWriting()  # type: ignore[no-untyped-call]
            pipe.connectionLost(failure(CONNECTION_DONE))

    # -- IProcessTransport ------------------------------------------------

    def writeToChild(self, childFD: int, data: bytes) -> None:
        """
        Write to the C{"w"} pipe of child fd C{childFD}.

        @raise KeyError: There is no open pipe for C{childFD} (as Twisted).
        """
        self.pipes[childFD].write(data)

    def closeChildFD(self, childFD: int) -> None:
        """
        Close the pipe of child fd C{childFD}; a writer first flushes what
        is buffered.  An unknown or already closed fd is ignored.
        """
        if childFD in self.pipes:
            self.pipes[childFD].loseConnection()

    def closeStdin(self) -> None:
        """
        Close the child's standard input pipe.
        """
        self.closeChildFD(0)

    def closeStdout(self) -> None:
        """
        Close the child's standard output pipe.
        """
        self.closeChildFD(1)

    def closeStderr(self) -> None:
        """
        Close the child's standard error pipe.
        """
        self.closeChildFD(2)

    def loseConnection(self) -> None:
        """
        Close the pipes of fds 0, 1 and 2 (and no others, as Twisted).
        """
        self.closeStdin()
        self.closeStderr()
        self.closeStdout()

    def write(self, data: bytes) -> None:
        """
        Write to the child's standard input; dropped if there is none.
        """
        if 0 in self.pipes:
            self.pipes[0].write(data)

    def writeSequence(self, seq: Iterable[bytes]) -> None:
        """
        Write each of C{seq} to the child's standard input.
        """
        if 0 in self.pipes:
            self.pipes[0].writeSequence(seq)

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register a producer for standard input; without one the producer is
        stopped at once (as Twisted).
        """
        if 0 in self.pipes:
            self.pipes[0].registerProducer(producer, streaming)
        else:
            producer.stopProducing()

    def unregisterProducer(self) -> None:
        """
        Unregister the standard input producer.
        """
        if 0 in self.pipes:
            self.pipes[0].unregisterProducer()

    def pauseProducing(self) -> None:
        """
        Stop reading every C{"r"} pipe.
        """
        for pipe in self.pipes.values():
            if isinstance(pipe, PipeReader):
                pipe.stopReading()  # type: ignore[no-untyped-call]

    def resumeProducing(self) -> None:
        """
        Resume reading every C{"r"} pipe.
        """
        for pipe in self.pipes.values():
            if isinstance(pipe, PipeReader):
                pipe.startReading()  # type: ignore[no-untyped-call]

    def getHost(self) -> IAddress:
        """
        Processes have no address (as Twisted).

        @raise NotImplementedError: always.
        """
        raise NotImplementedError()

    def getPeer(self) -> IAddress:
        """
        Processes have no address (as Twisted).

        @raise NotImplementedError: always.
        """
        raise NotImplementedError()
