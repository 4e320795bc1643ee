# -*- test-case-name: tests.test_supervise_procmon -*-
"""
The protocol of one run of a L{txspawn.supervise.procmon.ProcessMonitor}
process: its output logged line by line, its end, and its tree's end told
to the monitor.  Re-exported by L{txspawn.supervise.procmon}, whose
documentation it belongs to.

@since: txspawn 0.1
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txspawn.interfaces import IProcessTreeObserver
from txspawn.options import CgroupStats

__all__ = ["LineLogger", "LoggingProtocol"]


class ProcessMonitor(Protocol):
    """
    What a run needs of L{txspawn.supervise.procmon.ProcessMonitor} (named
    like it for the docstrings; a protocol, so that this module does not
    import the monitor's).
    """

    log: Logger

    def _monitoredProcessExited(
        self, name: str, reason: Failure | None = None
    ) -> None: ...

    def _childEnded(self, run: LoggingProtocol) -> None: ...

    def _runEnded(self, run: LoggingProtocol) -> None: ...


class LineLogger:
    """
    Splits one output stream of a child into lines and logs each with its
    tag and stream, as procmon's C{LineLogger} does.  A partial line that
    grows past L{maxLength} is logged in pieces of that size, so that a
    line that never ends cannot grow the buffer (procmon's would call
    C{loseConnection} on a transport that has none).

    @ivar tag: The process name.
    @ivar stream: C{"stdout"} or C{"stderr"}.
    @ivar service: The L{ProcessMonitor} whose C{log} is used.
    @ivar delimiter: The line end.
    @ivar maxLength: The longest line logged in one event.

    @since: txspawn 0.1
    """

    delimiter = b"\n"
    maxLength = 16384

    def __init__(self, tag: str, stream: str, service: ProcessMonitor) -> None:
        self.tag = tag
        self.stream = stream
        self.service = service
        self._buffer = b""

    @property
    def empty(self) -> bool:
        """
        Whether no partial line is waiting for its end.
        """
        return not self._buffer

    def dataReceived(self, data: bytes) -> None:
        """
        Log every line C{data} completes; keep the rest.
        """
        *lines, self._buffer = (self._buffer + data).split(self.delimiter)
        for line in lines:
            self.lineReceived(line)
        while len(self._buffer) > self.maxLength:
            piece, self._buffer = (
                self._buffer[: self.maxLength],
                self._buffer[self.maxLength :],
            )
            self.lineReceived(piece)

    def flush(self) -> None:
        """
        Log a partial line that never got its end (the child exited).
        """
        if self._buffer:
            line, self._buffer = self._buffer, b""
            self.lineReceived(line)

    def lineReceived(self, line: bytes) -> None:
        """
        Log one line: decoded as UTF-8, else its C{repr}.
        """
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = repr(line)
        self.service.log.info(
            "[{tag}] {line}", tag=self.tag, line=text, stream=self.stream
        )


@implementer(IProcessTreeObserver)
class LoggingProtocol(ProcessProtocol):
    """
    The protocol of one run of a monitored process: logs its output line by
    line, tells the monitor when it ended, and when its whole tree did.

    Built with no arguments and given C{service} and C{name} afterwards, as
    procmon's is.

    @ivar service: The L{ProcessMonitor}.
    @ivar name: The process name.

    @since: txspawn 0.1
    """

    service: ProcessMonitor = None  # type: ignore[assignment]
    name: str = None  # type: ignore[assignment]
    #: Whether the child has a cgroup, whose end L{processTreeEnded} tells.
    waitsForTree = False
    #: The process group the child leads and its start time, when it has no
    #: cgroup: what the monitor kills and waits for at its end.
    group: tuple[int, int] | None = None

    def connectionMade(self) -> None:
        self._output = LineLogger(self.name, "stdout", self.service)
        self._error = LineLogger(self.name, "stderr", self.service)

    def outReceived(self, data: bytes) -> None:
        self._output.dataReceived(data)

    def errReceived(self, data: bytes) -> None:
        self._error.dataReceived(data)

    def processEnded(self, reason: Failure) -> None:
        self._output.flush()
        self._error.flush()
        self.service._monitoredProcessExited(self.name, reason)
        self.service._childEnded(self)

    def processTreeEnded(self, stats: CgroupStats) -> None:
        """
        Every process of the child's cgroup has exited.
        """
        self.service._runEnded(self)

    @property
    def output(self) -> LineLogger:
        """
        The stdout L{LineLogger}.
        """
        return self._output

    @property
    def empty(self) -> bool:
        """
        Whether no partial stdout line is waiting for its end.
        """
        return self._output.empty
