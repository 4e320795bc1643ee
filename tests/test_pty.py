"""
Tests for L{txspawn._transport.ptytransport.PTYProcess}: Twisted's pty process transport
contract, with real children, on every engine x monitor combination.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
import struct
import termios
from collections.abc import Callable
from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IProcessTransport, IReadDescriptor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
    spawnAndRun,
)
from tests.hygiene import HygieneMixin, openFDs
from tests.test_orphans import waitForOrphans
from tests.test_process import LIST_FDS
from txspawn._transport import ptytransport as _pty
from txspawn._transport.ptytransport import PTYProcess
from txspawn.errors import SpawnError

#: A child that closes its terminal before it exits, as GNU C{cat} does at
#: the end of C{main} (stdin, then stdout and stderr), then says so through
#: the FIFO named by its first argument and waits for C{SIGUSR1} to exit 0:
#: between the two, it runs with every slave fd closed.
CLOSES_TERMINAL_FIRST = """
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
fifo = os.open(sys.argv[1], os.O_WRONLY)
for fd in (0, 1, 2):
    os.close(fd)
os.write(fifo, b"closed")
signal.sigwait({signal.SIGUSR1})
os._exit(0)
"""


@implementer(IReadDescriptor)
class FIFOReader:
    """
    The read end of a FIFO, calling C{onData} once with the first data
    read, then no longer watched.
    """

    def __init__(self, reactor: Any, path: str, onData: Callable[[], object]) -> None:
        # Non-blocking: opening the read end does not wait for a writer.
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.reactor = reactor
        self.onData = onData

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        if os.read(self.fd, 100):
            self.reactor.removeReader(self)
            self.onData()

    def connectionLost(self, reason: Failure) -> None:
        pass

    def logPrefix(self) -> str:
        return "FIFOReader"

    def close(self) -> None:
        os.close(self.fd)


class PTYBehaviourMixin(MixinBase):
    """
    The pty transport's callbacks, state and methods.
    """

    def test_interface(self) -> None:
        """
        The transport provides L{IProcessTransport} and is a L{PTYProcess}.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python("pass"), usePTY=True)
        self.assertTrue(verifyObject(IProcessTransport, transport))
        self.assertIsInstance(transport, PTYProcess)

    def test_outputAsFDOneAndNoConnectionLost(self) -> None:
        """
        Everything the child writes to the terminal (stdout and stderr)
        arrives as fd 1; C{childConnectionLost} is never called;
        C{processExited} then C{processEnded} end it, with C{pid} C{None}.
        """
        proto = RecordingProtocol()
        source = "import os; os.write(1, b'out;'); os.write(2, b'err')"
        transport = spawnAndRun(self, proto, PYTHON, python(source), usePTY=True)
        self.assertEqual(list(proto.output), [1])
        self.assertEqual(proto.output[1], b"out;err")
        names = proto.names()
        self.assertNotIn("lost", names)
        self.assertEqual(names[0], "connectionMade")
        self.assertEqual(names[-1], "ended")
        self.assertEqual(names.count("exited"), 1)
        self.assertIsNone(proto.pidAt["ended"])
        self.assertIsNone(proto.pidAt["exited"])
        self.assertEqual(proto.statusAt["connectionMade"], -1)
        self.assertIsNone(transport.pid)
        assert proto.endedReason is not None
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertIsNotNone(proto.endedReason.value.rusage)

    def test_controllingTerminal(self) -> None:
        """
        The child leads a new session, its stdio is the terminal, and the
        terminal is its controlling terminal (C{/dev/tty} opens).
        """
        source = (
            "import os\n"
            "ok = [os.getsid(0) == os.getpid(),\n"
            "      all(os.isatty(fd) for fd in (0, 1, 2)),\n"
            "      os.tcgetpgrp(0) == os.getpgrp()]\n"
            "os.close(os.open('/dev/tty', os.O_RDWR))\n"
            "os.write(1, repr(ok).encode())\n"
        )
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python(source), usePTY=True)
        self.assertEqual(proto.output[1], b"[True, True, True]")

    def test_onlyTheTerminal(self) -> None:
        """
        The child has fds 0, 1 and 2 (all the terminal) and nothing else.
        """
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python(LIST_FDS), usePTY=True)
        self.assertEqual(proto.output[1], b"[0, 1, 2]")

    def test_writeReachesChild(self) -> None:
        """
        C{write} types into the terminal: the child reads it on stdin.
        """
        source = "import sys; line = sys.stdin.readline(); print('got', line.strip())"
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(source),
            usePTY=True,
            onSpawned=lambda t: t.write(b"typed\n"),
        )
        # The terminal echoes the input, then the child's answer follows.
        self.assertIn(b"got typed", proto.output[1])

    def test_filenoIsMaster(self) -> None:
        """
        C{fileno()} is the pty master: setting the window size on it is what
        the child sees (as C{twisted.conch} does).
        """

        def resize(transport: Any) -> None:
            fcntl.ioctl(
                transport.fileno(),
                termios.TIOCSWINSZ,
                struct.pack("4H", 33, 77, 0, 0),
            )
            transport.write(b"go\n")

        source = (
            "import os, sys\n"
            "sys.stdin.readline()\n"
            "size = os.get_terminal_size(0)\n"
            "print('size', size.lines, size.columns)\n"
        )
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python(source), usePTY=True, onSpawned=resize)
        self.assertIn(b"size 33 77", proto.output[1])

    def test_closeMethods(self) -> None:
        """
        C{closeStdin}, C{closeStdout} and C{closeStderr} do nothing (a
        terminal cannot be half-closed); C{closeChildFD} and
        C{writeToChild} raise L{NotImplementedError}, as Twisted's.
        """
        raised: list[str] = []

        def poke(transport: Any) -> None:
            transport.closeStdin()
            transport.closeStdout()
            transport.closeStderr()
            for method, args in (
                (transport.closeChildFD, (0,)),
                (transport.writeToChild, (0, b"x")),
            ):
                try:
                    method(*args)
                except NotImplementedError:
                    raised.append(method.__name__)
            transport.write(b"still open\n")

        source = "import sys; print('echo', sys.stdin.readline().strip())"
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python(source), usePTY=True, onSpawned=poke)
        self.assertEqual(raised, ["closeChildFD", "writeToChild"])
        self.assertIn(b"echo still open", proto.output[1])

    def test_exitCodeAndSignal(self) -> None:
        """
        Exit codes and signals are reported as for pipes;
        C{signalProcess} works by name, and raises L{ProcessExitedAlready}
        after the end.
        """
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python("raise SystemExit(5)"), usePTY=True)
        assert proto.endedReason is not None
        self.assertIsInstance(proto.endedReason.value, ProcessTerminated)
        self.assertEqual(proto.endedReason.value.exitCode, 5)

        proto = RecordingProtocol()
        transport = spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            usePTY=True,
            onSpawned=lambda t: t.signalProcess("KILL"),
        )
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)
        self.assertRaises(ProcessExitedAlready, transport.signalProcess, "TERM")

    def test_loseConnection(self) -> None:
        """
        C{loseConnection} closes the master; the child (which gets
        C{SIGHUP} as its terminal hangs up) is still reaped and
        C{processEnded} comes once.
        """
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            usePTY=True,
            onSpawned=lambda t: t.loseConnection(),
        )
        self.assertEqual(proto.names().count("ended"), 1)

    def test_callerPTY(self) -> None:
        """
        C{usePTY=(master, slave, ttyname)} runs the child on the caller's
        pty; the transport takes the master over and closes the slave.
        """
        master, slave = os.openpty()
        name = os.ttyname(slave)
        proto = RecordingProtocol()
        transport = spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import os; print(os.ttyname(0))"),
            usePTY=(master, slave, name),
        )
        self.assertEqual(proto.output[1].strip(), name.encode())
        self.assertEqual(transport.fileno(), master)
        for fd in (master, slave):
            self.assertRaises(OSError, os.fstat, fd)

    def test_callerPTYNameNotUsed(self) -> None:
        """
        With C{usePTY=(master, slave, ttyname)} the child runs on C{slave},
        as with Twisted (which never uses the name), even if C{ttyname}
        names another terminal: no engine opens the slave by name.
        """
        master, slave = os.openpty()
        name = os.ttyname(slave)
        otherMaster, otherSlave = os.openpty()
        self.addCleanup(os.close, otherMaster)
        self.addCleanup(os.close, otherSlave)
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import os; print(os.ttyname(0), os.getsid(0) == os.getpid())"),
            usePTY=(master, slave, os.ttyname(otherSlave)),
        )
        self.assertEqual(proto.output.get(1, b"").split(), [name.encode(), b"True"])

    def test_execFailure(self) -> None:
        """
        A missing executable raises L{SpawnError} synchronously; the pty
        txspawn opened is closed, no child is left, and C{makeConnection}
        is not called.
        """
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        fds = openFDs()
        exc = self.assertRaises(
            SpawnError,
            reactor.spawnProcess,
            proto,
            "/nonexistent/x",
            ["x"],
            usePTY=True,
        )
        self.assertIsInstance(exc, FileNotFoundError)
        self.assertEqual(proto.events, [])
        self.assertEqual(openFDs(), fds)
        self.assertNoNewChildren()

    def test_execFailureCallerPTY(self) -> None:
        """
        On exec failure a caller's pty is left open for the caller (as
        Twisted does).
        """
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        reactor = self.buildReactor()
        self.assertRaises(
            SpawnError,
            reactor.spawnProcess,
            RecordingProtocol(),
            "/nonexistent/x",
            ["x"],
            usePTY=(master, slave, os.ttyname(slave)),
        )
        os.fstat(master)
        os.fstat(slave)

    def test_protocolExceptionLogged(self) -> None:
        """
        An exception from C{childDataReceived} is logged; the pty is closed
        and the child still reaped.
        """

        class Boom(Exception):
            pass

        class Raiser(RecordingProtocol):
            def childDataReceived(self, childFD: int, data: bytes) -> None:
                super().childDataReceived(childFD, data)
                raise Boom()

        proto = Raiser()
        spawnAndRun(self, proto, PYTHON, python("print('x')"), usePTY=True)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(proto.names().count("ended"), 1)

    def spawnClosingTerminalFirst(
        self, afterClose: Callable[[Any, Any], object]
    ) -> tuple[RecordingProtocol, Any]:
        """
        Run L{CLOSES_TERMINAL_FIRST} on a pty until its C{processEnded}
        (or the reactor stops).

        @param afterClose: Called with the reactor and the transport on the
            reactor iteration after the one that read the child's word that
            its terminal is closed.  The child closed the slave before it
            wrote that word, so the kernel had queued the master's hang-up
            on the reactor's epoll before the FIFO's data, and the reactor
            asks for as many events as it watches fds: the poll that
            returned the data returned the hang-up too, or an earlier poll
            did, and either way it has been handled.
        @return: The protocol and the transport.
        """
        reactor = self.buildReactor()
        path = self.mktemp()
        os.mkfifo(path)
        readers: list[FIFOReader] = []

        def onSpawned(transport: Any) -> None:
            def closed() -> None:
                reactor.callLater(0, afterClose, reactor, transport)

            reader = FIFOReader(reactor, path, closed)
            self.addCleanup(reader.close)
            readers.append(reader)
            reactor.addReader(reader)

        proto = RecordingProtocol()
        transport = spawnAndRun(
            self,
            proto,
            PYTHON,
            [*python(CLOSES_TERMINAL_FIRST), path.encode()],
            reactor=reactor,
            usePTY=True,
            onSpawned=onSpawned,
        )
        return proto, transport

    def test_childClosingTerminalFirstNotHungUp(self) -> None:
        """
        A child that closes its terminal before it exits ends with its own
        exit code, not C{SIGHUP}: at end of file on the master, while the
        child still runs, the transport keeps the master open (closing it
        would hang the terminal up, and the kernel would send C{SIGHUP} to
        the session leader, the child) and closes it once the child is
        reaped, before C{processEnded}.
        """

        def release(reactor: Any, transport: Any) -> None:
            # The master's end of file has been handled (see
            # spawnClosingTerminalFirst); the child is still waiting.
            try:
                transport.signalProcess(signal.SIGUSR1)
            except ProcessExitedAlready:
                pass

        proto, transport = self.spawnClosingTerminalFirst(release)
        assert proto.endedReason is not None
        self.assertEqual(
            (proto.endedReason.value.exitCode, proto.endedReason.value.signal),
            (0, None),
        )
        self.assertIsInstance(proto.endedReason.value, ProcessDone)
        self.assertEqual(proto.names().count("ended"), 1)
        self.assertRaises(OSError, os.fstat, transport.fileno())

    def test_heldMasterClosedAtShutdown(self) -> None:
        """
        A master kept open for a child that closed its terminal is closed
        when the reactor shuts down before the child exits: nothing is left
        open, and the child, whose terminal that hangs up, gets C{SIGHUP}
        then, as any pty child still running when its reactor stops (the
        orphan reaper reaps it).
        """
        proto, transport = self.spawnClosingTerminalFirst(
            lambda reactor, transport: reactor.stop()
        )
        self.assertNotIn("ended", proto.names())
        self.assertRaises(OSError, os.fstat, transport.fileno())
        waitForOrphans()
        self.assertNoNewChildren()


globals().update(makeTestCaseClasses(PTYBehaviourMixin))


class OpenPTYTests(HygieneMixin, SynchronousTestCase):
    """
    L{txspawn._transport.ptytransport.openPTY}, with the C extension and with the C{os}
    module, gives the same working pty.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def check(self, opener: Callable[[], tuple[int, int, bytes]]) -> None:
        master, slave, name = opener()
        try:
            self.assertEqual(name, os.fsencode(os.ttyname(slave)))
            self.assertTrue(fcntl.fcntl(master, fcntl.F_GETFL) & os.O_NONBLOCK)
            self.assertFalse(fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK)
            self.assertEqual(
                (os.get_inheritable(master), os.get_inheritable(slave)),
                (False, False),
            )
            self.assertTrue(os.isatty(slave))
            os.write(slave, b"ping\n")
            self.assertEqual(os.read(master, 100), b"ping\r\n")
            self.assertRaises(BlockingIOError, os.read, master, 100)
        finally:
            os.close(master)
            os.close(slave)

    def checkEMFILE(self, opener: Callable[[], tuple[int, int, bytes]]) -> None:
        """
        With room for the master but not the slave, C{opener} raises
        C{EMFILE} and leaves no fd open (the hygiene check).
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        free = os.open("/dev/null", os.O_RDONLY)
        os.close(free)
        # The lowest free fd is free; make it the last one allowed.
        resource.setrlimit(resource.RLIMIT_NOFILE, (free + 1, hard))
        try:
            e = self.assertRaises(OSError, opener)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        self.assertEqual(e.errno, errno.EMFILE)

    def test_extension(self) -> None:
        """
        The C extension's pty (the one txspawn uses when it is built).
        """
        if _pty.extensionOpenPTY is None:
            raise self.skipTest("the C extension is not built")
        self.assertIs(_pty.openPTY, _pty.extensionOpenPTY)
        self.check(_pty.extensionOpenPTY)

    def test_os(self) -> None:
        """
        The fallback made of C{os} calls.
        """
        self.check(_pty.openPTYWithOS)

    def test_extensionEMFILE(self) -> None:
        """
        The C extension's pty closes the master if the slave cannot be
        opened.
        """
        if _pty.extensionOpenPTY is None:
            raise self.skipTest("the C extension is not built")
        self.checkEMFILE(_pty.extensionOpenPTY)

    def test_osEMFILE(self) -> None:
        """
        So does the fallback.
        """
        self.checkEMFILE(_pty.openPTYWithOS)
