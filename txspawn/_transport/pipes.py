# -*- test-case-name: tests.test_process -*-
"""
Parent-side pipe ends of a child process: opening them and reading them fast.

Twisted's C{ProcessReader} reads 8 KiB per C{doRead}.  A pipe that a busy
child keeps full then costs one trip through the reactor per 8 KiB, which
caps throughput at about a fifth of a plain C read loop.  L{PipeReader} reads
up to the pipe's whole capacity per C{doRead} and, once a pipe proves to be
busy (a read filled the default 64 KiB pipe buffer), grows the pipe to
L{BIG_PIPE} bytes and reads into a reused buffer of that size.

Why adaptive rather than always big:

  - a bigger pipe buffer is charged against the user's
    C{/proc/sys/fs/pipe-user-pages-soft} budget; a thousand idle children
    with 1 MiB pipes would exhaust it and make the kernel hand I{every}
    process of the user tiny pipes;
  - C{os.read(fd, n)} allocates C{n} bytes before the call; above glibc's
    mmap threshold (128 KiB by default) that is a fresh C{mmap} and page
    faults per read.  A busy reader therefore reads with C{os.readv} into a
    private, reused C{bytearray} and copies out exactly what arrived.

The write side is Twisted's C{ProcessWriter} (L{PipeWriter}): its
buffering, producer support and close detection are what Twisted users rely
on.  L{PipeWriter} only skips the work that cannot apply to a pipe this
module opened: probing the fd (C{fstat}, C{F_GETFL}/C{F_SETFL}) when it is
made, and making it blocking again just before it is closed (a macOS
work-around for stdout).

Both descriptors set C{dispatchWithoutLogContext} (see
L{txspawn._reactor.epollreactor.EPollReactor.doPoll}): their C{logPrefix} is Twisted's
default, so the log context Twisted would wrap each event in changes
nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Protocol

from twisted.internet import abstract
from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.process import ProcessWriter
from twisted.logger import Logger
from twisted.python.failure import Failure

from txspawn._kernel.childhandle import recordItems
from txspawn.errors import ChildSetupStage, SpawnError

__all__ = [
    "BIG_PIPE",
    "DONE_FAILURE",
    "SMALL_READ",
    "PipeOwner",
    "PipeReader",
    "PipeWriter",
    "openParentPipe",
    "openPipe",
    "readChunk",
]

_log = Logger()

#: Bytes read per C{doRead} from a pipe that has not (yet) proved busy: the
#: default Linux pipe capacity, and below the size where C{os.read} gets slow.
SMALL_READ = 64 * 1024

#: The pipe capacity (and read size) a busy pipe is grown to.  1 MiB is the
#: default C{/proc/sys/fs/pipe-max-size}, so unprivileged parents get it too.
BIG_PIPE = 1024 * 1024

#: The reason a reader reports at end of file.  One shared instance, as in
#: Twisted's C{_disconnectSelectable}, which hands every descriptor it
#: closes the same C{Failure(ConnectionDone())}.
DONE_FAILURE = Failure(CONNECTION_DONE)  # type: ignore[no-untyped-call]


class PipeOwner(Protocol):
    """
    What a L{PipeReader} reports to (the process transport).
    """

    def childDataReceived(self, name: int, data: bytes) -> None:
        """
        Data arrived on the pipe for child fd C{name}.
        """

    def childConnectionLost(self, name: int, reason: Failure) -> None:
        """
        The pipe for child fd C{name} is finished; the owner closes the fd.
        """


def openPipe() -> tuple[int, int]:
    """
    Open a pipe whose ends are both close-on-exec.

    The parent's end is made non-blocking by the caller; the child's end
    stays blocking (the child expects ordinary blocking stdio), and
    close-on-exec on it is harmless: the engine C{dup2}s it to the child fd
    number, which clears the flag on the copy.

    @return: C{(readEnd, writeEnd)}.
    """
    return os.pipe2(os.O_CLOEXEC)


def openParentPipe(parentReads: bool, into: list[int]) -> tuple[int, int]:
    """
    Open a close-on-exec pipe for a child, the parent's end non-blocking.

    Both ends are appended to C{into} as the pipe is opened, before any
    Python bytecode runs (L{txspawn._kernel.childhandle.recordItems}): if an exception
    escapes (a signal handler's C{KeyboardInterrupt} included), the caller
    closes what C{into} holds; this function closes nothing.

    The child's end stays blocking (the child expects ordinary blocking
    stdio; C{O_NONBLOCK} lives in the open file description, which a
    C{dup2} in the child would share).  The parent's end is made
    non-blocking with a single C{F_SETFL}: a fresh pipe end has no other
    status flag that C{F_SETFL} could clear.

    @param parentReads: C{True} for Twisted's C{"r"} (the child writes, the
        parent reads), C{False} for C{"w"}.
    @param into: Gets the read end, then the write end.
    @return: C{(parentEnd, childEnd)}.
    @raise txspawn.errors.SpawnError: (stage C{SPAWN}) the pipe could not
        be opened (C{EMFILE}, C{ENFILE}): like every other failure to start
        a child, whichever fd ran out.
    """
    try:
        recordItems(into, os.pipe2, os.O_CLOEXEC)
    except OSError as e:
        raise SpawnError.fromErrno(
            e.errno or errno.EINVAL, ChildSetupStage.SPAWN
        ) from None
    readEnd, writeEnd = into[-2:]
    parentEnd, childEnd = (readEnd, writeEnd) if parentReads else (writeEnd, readEnd)
    fcntl.fcntl(parentEnd, fcntl.F_SETFL, os.O_NONBLOCK)
    return parentEnd, childEnd


def readChunk(fd: int, buffer: bytearray | None) -> bytes:
    """
    Read one chunk from the non-blocking C{fd}.

    @param buffer: A reusable buffer to read into with C{readv}, or C{None}
        to read at most L{SMALL_READ} bytes with C{os.read}.
    @return: The bytes read; C{b""} at end of file.
    @raise BlockingIOError: Nothing to read right now.
    @raise OSError: The read failed.
    """
    if buffer is None:
        return os.read(fd, SMALL_READ)
    n = os.readv(fd, [buffer])
    with memoryview(buffer) as view:
        return bytes(view[:n])


def _growPipe(fd: int) -> bool:
    """
    Try to raise the capacity of the pipe C{fd} to L{BIG_PIPE}.

    @return: whether the pipe is now that big.  Failure (C{EPERM} over the
        user's pipe budget, C{EBUSY}) just keeps the pipe as it was.
    """
    try:
        return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, BIG_PIPE) >= BIG_PIPE
    except OSError:
        return False


class PipeReader(abstract.FileDescriptor):
    """
    The parent's read end of a C{"r"} pipe of a child process.

    @ivar proc: The L{PipeOwner} told about data and the end of the pipe.
    @ivar name: The child fd number this pipe is connected to.
    @ivar fd: The parent's (non-blocking, close-on-exec) read end.
    """

    connected = True
    dispatchWithoutLogContext = True

    def __init__(
        self, reactor: IReactorFDSet, proc: PipeOwner, name: int, fileno: int
    ) -> None:
        """
        @param reactor: The reactor to register with.
        @param proc: The owner, which calls C{startReading} once it holds
            this object (so that no registration can be lost to an
            exception in between).
        @param name: The child fd number this pipe is connected to.
        @param fileno: The parent's end, from L{openParentPipe}.
        """
        abstract.FileDescriptor.__init__(self, reactor)
        self.proc = proc
        self.name = name
        self.fd = fileno
        self._buffer: bytearray | None = None

    def fileno(self) -> int:
        """
        @return: The parent's end of the pipe.
        """
        return self.fd

    def writeSomeData(self, data: bytes) -> Exception:
        """
        Never called with data: reached only through C{loseConnection} on a
        read-only descriptor, as in Twisted's C{ProcessReader}.
        """
        return CONNECTION_LOST

    def doRead(self) -> Exception | None:
        """
        Read one big chunk and hand it to the owner.

        An exception from the protocol's C{childDataReceived} is logged and
        then closes this pipe, which is what Twisted's reactor does to a
        descriptor whose C{doRead} raises; it never reaches the reactor.

        @return: C{None} to keep reading, or the reason the pipe is done.
        """
        try:
            data = readChunk(self.fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            # EIO cannot happen on a pipe; anything else is a real loss.
            return CONNECTION_DONE if e.errno == errno.EIO else CONNECTION_LOST
        if not data:
            self._endOfFile()
            return None
        if self._buffer is None and len(data) == SMALL_READ and _growPipe(self.fd):
            # The child filled the default pipe: it is a bulk producer.
            self._buffer = bytearray(BIG_PIPE)
        with _log.failuresHandled(
            "while calling childDataReceived({fd}):", fd=self.name
        ) as op:
            self.proc.childDataReceived(self.name, data)
        if op.failed:
            return CONNECTION_LOST
        return None

    def hangUp(self) -> None:
        """
        The reactor saw the child's end closed with nothing left to read,
        and has already stopped watching this descriptor (see
        L{txspawn._reactor.epollreactor.EPollReactor.doPoll}): end of file.
        """
        self.readConnectionLost(DONE_FAILURE)

    def _endOfFile(self) -> None:
        """
        The child's end is closed: stop reading and tell the owner.

        What the reactor does for a C{doRead} that returns
        C{CONNECTION_DONE} (C{removeReader}, then C{connectionLost} with
        the shared C{ConnectionDone} failure), done here directly: this
        descriptor is known to be reading and never writing, and the event
        comes right after the reactor slept, when every call is expensive.
        """
        self.reactor.removeReader(self)
        self.readConnectionLost(DONE_FAILURE)

    def readConnectionLost(self, reason: Failure) -> None:
        """
        End of file, reported by the reactor (a hang-up without data: the
        reactor has removed this reader already) or by L{doRead}: tell the
        owner.

        C{FileDescriptor} would go through C{connectionLost}, which removes
        the reader and writer again; this descriptor is already removed as
        a reader and is never a writer (it is read-only and does not
        buffer), and the event comes right after the reactor slept, when
        every call is expensive.  (Should anyone have written to it or
        registered a producer, the full C{connectionLost} runs instead.)
        """
        if self.producer is not None or self._tempDataLen or self.dataBuffer:
            self.connectionLost(reason)
            return
        self.disconnected = True
        self.connected = False
        self._buffer = None
        self.proc.childConnectionLost(self.name, reason)

    def loseConnection(self) -> None:
        """
        Stop reading and report the pipe lost on the next reactor turn (the
        same asynchronous contract as Twisted's C{ProcessReader}).
        """
        if self.connected and not self.disconnecting:
            self.disconnecting = True
            self.stopReading()  # type: ignore[no-untyped-call]
            self.reactor.callLater(  # type: ignore[attr-defined]
                0,
                self.connectionLost,
                Failure(CONNECTION_DONE),  # type: ignore[no-untyped-call]
            )

    def connectionLost(self, reason: Failure) -> None:
        """
        Tell the owner; it closes the fd and tells the protocol.
        """
        self._buffer = None
        abstract.FileDescriptor.connectionLost(self, reason)  # type: ignore[no-untyped-call]
        self.proc.childConnectionLost(self.name, reason)


class PipeWriter(ProcessWriter):
    """
    The parent's write end of a C{"w"} pipe of a child process: Twisted's
    C{ProcessWriter} with the read hack on, for a pipe end that
    L{openParentPipe} opened (so non-blocking, and a FIFO).

    The owner is the process transport, whose C{childConnectionLost}
    closes the fd.
    """

    dispatchWithoutLogContext = True
    enableReadHack = True

    def __init__(
        self, reactor: IReactorFDSet, proc: PipeOwner, name: int, fileno: int
    ) -> None:
        """
        @param reactor: The reactor to register with.
        @param proc: The owner, which calls C{startReading} once it holds
            this object (readable only when the child's end is closed: the
            read hack).
        @param name: The child fd number this pipe is connected to.
        @param fileno: The parent's end, from L{openParentPipe}: already
            non-blocking, and a pipe, so C{ProcessWriter}'s probes
            (C{F_GETFL}/C{F_SETFL}, C{fstat}) are skipped.
        """
        abstract.FileDescriptor.__init__(self, reactor)
        self.proc = proc
        self.name = name
        self.fd = fileno

    def hangUp(self) -> None:
        """
        The reactor saw the child's end closed (the read hack's event) while
        this descriptor was not writing, and has already stopped watching it
        (see L{txspawn._reactor.epollreactor.EPollReactor.doPoll}): lost, with the
        C{ConnectionDone} reason Twisted gives it.

        What L{connectionLost} does, minus removing the reader and writer
        again; with a producer registered, the full L{connectionLost} runs
        (it stops the producer).
        """
        if self.producer is not None:
            self.connectionLost(DONE_FAILURE)
            return
        self.disconnected = True
        self.connected = False
        self.proc.childConnectionLost(self.name, DONE_FAILURE)

    def connectionLost(self, reason: Failure) -> None:
        """
        Stop watching the fd and tell the owner (which closes it).

        C{ProcessWriter} first makes the fd blocking again, for stdout on
        macOS; this fd is private to the transport and closed right after.
        """
        abstract.FileDescriptor.connectionLost(self, reason)  # type: ignore[no-untyped-call]
        self.proc.childConnectionLost(self.name, reason)
