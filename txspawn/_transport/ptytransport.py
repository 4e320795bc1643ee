# -*- test-case-name: tests.test_pty -*-
"""
The pseudo-terminal process transport (Twisted's C{PTYProcess} contract).

The parent opens the pty (or takes the caller's C{(master, slave, ttyname)}
tuple), the engine starts the child in a new session with the slave as
fds 0, 1 and 2 and as its controlling terminal, and the parent keeps only
the master.  A pty has no separate streams: the child's output arrives as
C{childDataReceived(1, data)}, C{childConnectionLost} is never called,
C{closeStdin}/C{closeStdout}/C{closeStderr} do nothing (as Twisted: closing
one direction of a terminal would close all of it), and C{fileno()} is the
master, which C{twisted.conch} uses to set the window size.

When the last slave fd closes (normally: the child exits), Linux reports
C{EIO} on the master; that is the pty's end of file.  The master is not
closed then if the child is still running: closing a master hangs its
terminal up, and the kernel sends C{SIGHUP} to the session leader, which
is the child.  A child that closes its terminal before it exits (GNU
C{cat} closes its stdin, stdout and stderr at the end of C{main}) would be
killed by that C{SIGHUP} in the instant between its last C{close} and its
C{exit}, and report signal 1 instead of its exit code: now and then, stock
Twisted included, on every engine.  The master is closed once the child
is reaped instead (or at reactor shutdown, if that comes first).
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import abstract, fdesc
from twisted.internet.interfaces import (
    IProcessProtocol,
    IReactorCore,
    IReactorFDSet,
    IReactorTime,
)
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn._kernel.childhandle import (
    ChildProcess,
    completeCleanup,
    recordCall,
    recordItems,
)
from txspawn._plan.plan import SpawnPlan
from txspawn._transport.cgroupend import ChildCgroup, openLeaf
from txspawn._transport.lifecycle import ProcessLifecycle, killAndReap, leadsGroup
from txspawn._transport.pipes import DONE_FAILURE, SMALL_READ
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import IManagedProcessTransport

if TYPE_CHECKING:
    from txspawn._cgroup.leaf import CgroupLeaf
    from txspawn._cgroup.removal import LeafRemover
    from txspawn.interfaces import ISpawner

__all__ = ["PTYProcess", "extensionOpenPTY", "openPTY", "openPTYWithOS"]

_log = Logger()


def openPTYWithOS() -> tuple[int, int, bytes]:
    """
    L{openPTY} from the C{os} module, for when the C extension is not
    built: C{os.openpty}, C{os.ttyname} and C{F_SETFL} (a dozen syscalls).
    """
    fds: list[int] = []
    try:
        # Recorded before a signal handler can raise (recordItems).
        recordItems(fds, os.openpty)
        master, slave = fds
        name = os.fsencode(os.ttyname(slave))
        fdesc.setNonBlocking(master)  # type: ignore[no-untyped-call]
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return master, slave, name


#: L{openPTY} from the C extension (four syscalls: see C{txs_py_openpty} in
#: C{_csrc/module.c}), or L{None} when it is not built.
extensionOpenPTY: Callable[[], tuple[int, int, bytes]] | None
try:
    from txspawn._cspawn import openpty as extensionOpenPTY
except ImportError:  # pragma: no cover - exercised when not built
    extensionOpenPTY = None

#: Open a new pseudo-terminal for a child: C{() -> (master, slave, name)},
#: the master non-blocking, both ends close-on-exec and neither the caller's
#: controlling terminal, and the slave's path (C{b"/dev/pts/N"}).  Raises
#: L{OSError} with nothing left open.
openPTY: Callable[[], tuple[int, int, bytes]] = extensionOpenPTY or openPTYWithOS


def _slaveClosed(master: int) -> bool:
    """
    Whether every fd of the pty's slave side is closed: the master polls
    C{POLLHUP} then (Linux sets C{TTY_OTHER_CLOSED} on it at the last
    slave close, and clears it when the slave is opened again).

    @param master: The master side of the pty.
    """
    poller = select.poll()
    poller.register(master, select.POLLIN)
    return any(event & select.POLLHUP for _, event in poller.poll(0))


@implementer(IManagedProcessTransport)
class PTYProcess(abstract.FileDescriptor, ProcessLifecycle):
    """
    A child process on a pseudo-terminal.

    @ivar fd: The master side of the pty (non-blocking).
    """

    connected = False
    # Its logPrefix is Twisted's default "-": the per-event log context
    # would change nothing (see txspawn._reactor.epollreactor.EPollReactor.doPoll).
    dispatchWithoutLogContext = True

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
        Make the child's cgroup leaf (with C{plan.cgroup}), open the pty
        (unless given), start the child on it, close the slave.

        Nothing is left behind if this raises, whatever it raises and
        wherever (a signal handler's C{KeyboardInterrupt} included): a pty
        opened here is closed (a caller's pty is left to the caller, as
        Twisted does, unless the child was started on it), and a child that
        was started is killed and reaped.

        @param reactor: The reactor the master is registered with.
        @param plan: A validated plan with C{plan.pty} set.
        @param proto: The protocol; connected later by C{_connect}.
        @param spawner: The engine that starts the child.
        @param owner: If given, the new transport appends itself to it
            once it is complete (see L{txspawn._transport.pipetransport.Process}).
        @param leafRemover: See L{txspawn._transport.pipetransport.Process}.
        @raise txspawn.errors.SpawnError: The child could not be started
            (the pty could not be opened included: stage C{SPAWN}).
        @raise txspawn.errors.UnsupportedFeature: A required cgroup cannot
            be had here (nothing was opened).
        """
        abstract.FileDescriptor.__init__(self, reactor)
        self._clock = cast(IReactorTime, reactor)
        assert plan.pty is not None, "a PTYProcess needs a pty plan"
        given = plan.pty.given
        # The pty opened here, recorded before a signal handler can raise.
        opened: list[tuple[int, int, bytes]] = []
        leaves: list[CgroupLeaf] = []
        child: ChildProcess | None = None
        # Whether the master and the slave are closed, each set just before
        # its close: the clean-up closes each exactly once.
        closed = [False, False]
        try:
            # The leaf first, as for a pipe transport.
            self.cgroupUnavailable = openLeaf(plan.cgroup, leaves)
            if given is not None:
                masterfd, slavefd, ttyName = given
            else:
                try:
                    masterfd, slavefd, ttyName = recordCall(opened, openPTY)
                except OSError as e:
                    # Like every other failure to start a child (EMFILE
                    # here, or no pty left): a SpawnError, whichever fd ran
                    # out.  openPTY closed what it had opened.
                    raise SpawnError.fromErrno(
                        e.errno or errno.EIO, ChildSetupStage.SPAWN
                    ) from None
            fdMap = {0: slavefd, 1: slavefd, 2: slavefd}
            if leaves:
                child = spawner.spawn(  # type: ignore[no-untyped-call]
                    plan, fdMap, ttyName, leaves[0]
                )
            else:
                child = spawner.spawn(  # type: ignore[no-untyped-call]
                    plan, fdMap, ttyName
                )
            # As Twisted: the slave is the child's now, even a caller's one;
            # keeping it open would hide the child's exit (no EIO).
            closed[1] = True
            os.close(slavefd)
            if given is not None:
                fdesc.setNonBlocking(masterfd)  # type: ignore[no-untyped-call]
            self.fd = masterfd
            self._child = child
            if leaves:
                assert plan.cgroup is not None
                self._cgroup = ChildCgroup(leaves[0], plan.cgroup, leafRemover)
            self.pid = child.pid
            # A pty child always starts a new session, so it leads a group.
            self.processGroup = child.pid if leadsGroup(plan) else None
            self.proto = proto
            self.connected = True
            self.startReading()  # type: ignore[no-untyped-call]
        except BaseException:
            # Run to its end even if interrupted again (a C function, called
            # first thing: nothing before it where a handler could raise).
            completeCleanup(self._rollBack, child, opened, given, closed, leaves)
            raise
        if owner is not None:
            owner.append(self)

    def _rollBack(
        self,
        child: ChildProcess | None,
        opened: list[tuple[int, int, bytes]],
        given: tuple[int, int, bytes] | None,
        closed: list[bool],
        leaves: list[CgroupLeaf],
    ) -> None:
        """
        Undo a constructor that raised: kill and reap the child, stop
        reading the master, close the pty if it was opened here or the
        child was started on it, discard the cgroup leaf.

        Resumable (see L{txspawn._kernel.childhandle.completeCleanup}), each
        step done once whichever run gets to it: the child's reap is
        recorded before a signal handler can raise
        (L{ChildProcess.killAndReap}), C{stopReading} is idempotent, and
        each end is marked in C{closed} just before it is closed.

        @param child: The child, if the engine started it.
        @param opened: The pty opened here, if any.
        @param given: The caller's pty, if any.
        @param closed: Whether the master and the slave are closed.
        @param leaves: The leaf made for the child, if any (discarded after
            the child is reaped; emptied once done).
        """
        if child is not None:
            killAndReap(child)
        if self.connected:
            self.stopReading()  # type: ignore[no-untyped-call]
        if opened or child is not None:
            master, slave, _ = opened[0] if opened else given  # type: ignore[misc]
            for index, fd in ((1, slave), (0, master)):
                if not closed[index]:
                    closed[index] = True
                    os.close(fd)
        for leaf in leaves:
            leaf.discard()
        leaves.clear()

    def fileno(self) -> int:
        """
        @return: The master side of the pty.
        """
        return self.fd

    def doRead(self) -> Exception | None:
        """
        Read what the child wrote to the terminal and deliver it as fd 1.

        C{EIO} (Linux: every slave fd is closed) is end of file.
        """
        try:
            data = os.read(self.fd, SMALL_READ)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            return CONNECTION_DONE if e.errno == errno.EIO else CONNECTION_LOST
        if not data:
            return CONNECTION_DONE
        proto = self.proto
        if proto is not None:
            with _log.failuresHandled("while calling childDataReceived(1):") as op:
                proto.childDataReceived(1, data)
            if op.failed:
                return CONNECTION_LOST
        return None

    def writeSomeData(self, data: bytes) -> int | Exception:
        """
        Write to the terminal (the child's input).
        """
        return fdesc.writeToFD(self.fd, data)  # type: ignore[no-untyped-call,no-any-return]

    def hangUp(self) -> None:
        """
        The reactor saw every slave fd closed with nothing left to read,
        and has already stopped watching the master (see
        L{txspawn._reactor.epollreactor.EPollReactor.doPoll}): the pty is done, with the
        C{ConnectionDone} reason Twisted gives it.
        """
        self.connectionLost(DONE_FAILURE)

    def connectionLost(self, reason: Failure) -> None:
        """
        The pty is finished: close the master and maybe end.

        If every slave fd is closed (end of file) while the child is still
        running, the master is kept open, unwatched, until the child is
        reaped (see the module docstring): closing it would send the child
        C{SIGHUP}.  Otherwise (the child is reaped, or the pty is being
        hung up on purpose: C{loseConnection}, an error, reactor shutdown,
        while the child still has its terminal) it is closed now, as
        Twisted does.
        """
        abstract.FileDescriptor.connectionLost(self, reason)  # type: ignore[no-untyped-call]
        if not self._ptyClosed:
            # Decided first: from here to the close (or the hold) there is
            # no point where a signal handler could raise, so an interrupted
            # call has either done nothing, and runs whole again
            # (L{_forceClosePipes}), or has closed (or held) the master.
            hold = not self._exited and _slaveClosed(self.fd)
            self._ptyClosed = True
            self.lostProcess += 1
            if hold:
                self._masterHeld = True
            else:
                os.close(self.fd)
        # If held, this reaps the child if it has already exited (the usual
        # case: the kernel closes a child's fds on its way out), which
        # releases the master at once.
        self.maybeCallProcessEnded()
        if self._masterHeld and self._masterTrigger is None:
            # The child is still running: the master waits for its reaping
            # (_childExited), or for reactor shutdown, whichever comes
            # first, so that a reactor that stops first leaks no fd.
            core = cast(IReactorCore, self.reactor)
            self._masterTrigger = core.addSystemEventTrigger(
                "during", "shutdown", self._closeHeldMaster
            )

    _ptyClosed = False
    #: Whether the master is still open after end of file (connectionLost).
    _masterHeld = False
    #: The shutdown trigger that closes a held master (L{_closeHeldMaster}).
    _masterTrigger: Any = None

    def _childExited(self, child: ChildProcess) -> None:
        """
        The child was reaped: close the master if it was held for it, then
        what every transport does (L{ProcessLifecycle._childExited}).
        """
        if self._masterHeld:
            trigger = self._masterTrigger
            if trigger is not None:
                core = cast(IReactorCore, self.reactor)
                # Removed, then forgotten: a run interrupted in between
                # removes it again, which raises ValueError.
                try:
                    core.removeSystemEventTrigger(trigger)
                except ValueError:
                    pass
                self._masterTrigger = None
            self._closeHeldMaster()
        ProcessLifecycle._childExited(self, child)

    def _closeHeldMaster(self) -> None:
        """
        Close the master held after end of file: the child was reaped, or
        the reactor is shutting down without it (then, as with any pty
        whose reactor stops, the hang-up sends the child C{SIGHUP}).
        """
        if self._masterHeld:
            self._masterHeld = False
            self._masterTrigger = None
            os.close(self.fd)

    def _pipesDone(self) -> bool:
        return self._ptyClosed

    def _forceClosePipes(self) -> None:
        # A descendant holding the slave keeps the master from seeing EIO;
        # stop waiting for it (dropping any unwritten input).
        if not self._ptyClosed:
            self.stopReading()  # type: ignore[no-untyped-call]
            self.stopWriting()  # type: ignore[no-untyped-call]
            self.connectionLost(Failure(CONNECTION_DONE))  # type: ignore[no-untyped-call]

    def closeStdin(self) -> None:
        """
        Does nothing: a terminal cannot be half-closed (as Twisted).
        """

    def closeStdout(self) -> None:
        """
        Does nothing: a terminal cannot be half-closed (as Twisted).
        """

    def closeStderr(self) -> None:
        """
        Does nothing: a terminal cannot be half-closed (as Twisted).
        """

    def closeChildFD(self, descriptor: int) -> None:
        """
        Not supported on a pty (as Twisted).

        @raise NotImplementedError: always.
        """
        raise NotImplementedError()

    def writeToChild(self, childFD: int, data: bytes) -> None:
        """
        Not supported on a pty (as Twisted); use C{write}.

        @raise NotImplementedError: always.
        """
        raise NotImplementedError()

    def __repr__(self) -> str:
        return ProcessLifecycle.__repr__(self)
