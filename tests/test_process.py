"""
Tests for L{txspawn._transport.pipetransport.Process}: Twisted's pipe process transport
contract, with real children, on every engine x monitor combination.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IProcessTransport
from twisted.internet.protocol import ProcessProtocol
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
from tests.hygiene import openFDs
from txspawn._plan.planner import isOpenFD, planSpawn
from txspawn._transport.pipes import readChunk
from txspawn._transport.pipetransport import Process
from txspawn.errors import ChildSetupStage, SpawnError
from txspawn.interfaces import ISpawner

# A child that reports its open fds (the listing's own excluded) on fd 1.
LIST_FDS = """
import os
listed = [int(n) for n in os.listdir("/proc/self/fd")]
fds = []
for fd in sorted(listed):
    try:
        os.fstat(fd)
    except OSError:
        continue  # the listing's own fd, closed again by now
    fds.append(fd)
os.write(1, repr(fds).encode())
"""


class StopRecorder:
    """
    A streaming producer that does nothing but count C{stopProducing}
    calls.
    """

    def __init__(self) -> None:
        self.stopped = 0

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        self.stopped += 1


class ProcessBehaviourMixin(MixinBase):
    """
    The pipe transport's callbacks, state and methods.
    """

    def test_interface(self) -> None:
        """
        The transport provides L{IProcessTransport}.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python("pass"))
        self.assertTrue(verifyObject(IProcessTransport, transport))
        self.assertIsInstance(transport, Process)

    def test_callbackOrder(self) -> None:
        """
        C{makeConnection} runs inside C{spawnProcess}; then data, one
        C{childConnectionLost} per pipe, C{processExited} and finally
        C{processEnded}, each once.
        """
        proto = RecordingProtocol()
        connectedInside: list[bool] = []
        source = "import os; os.write(1, b'out'); os.write(2, b'err')"
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(source),
            onSpawned=lambda t: connectedInside.append(proto.transport is t),
        )
        self.assertEqual(connectedInside, [True])
        names = proto.names()
        self.assertEqual(names[0], "connectionMade")
        self.assertEqual(names[-1], "ended")
        self.assertEqual(names.count("exited"), 1)
        self.assertEqual(names.count("ended"), 1)
        self.assertEqual(sorted(d for n, d in proto.events if n == "lost"), [0, 1, 2])
        self.assertEqual(proto.output, {1: b"out", 2: b"err"})
        # Data on a pipe comes before that pipe is lost.
        for fd in (1, 2):
            self.assertLess(
                proto.events.index(("data", fd)), proto.events.index(("lost", fd))
            )

    def test_pidAndStatus(self) -> None:
        """
        C{transport.pid} is the child's pid while it runs and C{None} in
        C{processExited} and C{processEnded}; C{transport.status} is C{-1}
        while it runs and the wait status afterwards.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import os; os.write(1, str(os.getpid()).encode())"),
        )
        self.assertEqual(proto.pidAt["connectionMade"], int(proto.output[1]))
        self.assertEqual(proto.statusAt["connectionMade"], -1)
        self.assertIsNone(proto.pidAt["exited"])
        self.assertIsNone(proto.pidAt["ended"])
        self.assertIsNone(transport.pid)
        self.assertEqual(transport.status, 0)

    def test_exitCodes(self) -> None:
        """
        Exit code 0 gives L{ProcessDone}; another exit code gives
        L{ProcessTerminated} with that C{exitCode}, both in C{processExited}
        and C{processEnded}.
        """
        for code in (0, 3, 255):
            proto = RecordingProtocol()
            spawnAndRun(self, proto, PYTHON, python(f"raise SystemExit({code})"))
            for reason in (proto.exitedReason, proto.endedReason):
                assert reason is not None
                if code == 0:
                    self.assertIsInstance(reason.value, ProcessDone)
                else:
                    self.assertIsInstance(reason.value, ProcessTerminated)
                    self.assertEqual(reason.value.exitCode, code)
                    self.assertIsNone(reason.value.signal)
                self.assertTrue(os.WIFEXITED(reason.value.status))
                self.assertEqual(os.WEXITSTATUS(reason.value.status), code)

    def test_killedBySignal(self) -> None:
        """
        A child killed by a signal ends with L{ProcessTerminated} whose
        C{signal} is that signal and whose status is C{WIFSIGNALED}.
        """
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python("import os; os.kill(os.getpid(), 9)"))
        assert proto.endedReason is not None
        value = proto.endedReason.value
        self.assertIsInstance(value, ProcessTerminated)
        self.assertEqual(value.signal, signal.SIGKILL)
        self.assertIsNone(value.exitCode)
        self.assertTrue(os.WIFSIGNALED(value.status))

    def test_rusage(self) -> None:
        """
        The reasons and the transport carry the child's resource usage.
        """
        proto = RecordingProtocol()
        transport = spawnAndRun(self, proto, PYTHON, python("sum(range(10**6))"))
        assert proto.endedReason is not None
        rusage = proto.endedReason.value.rusage
        self.assertIsNotNone(rusage)
        self.assertGreater(rusage.ru_utime + rusage.ru_stime, 0)
        self.assertGreater(rusage.ru_maxrss, 0)
        self.assertIs(transport.rusage, rusage)

    def test_emptyEnvironmentByDefault(self) -> None:
        """
        Without C{env} the child's environment is empty.
        """
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import os; os.write(1, repr(dict(os.environb)).encode())"),
        )
        # Python may add LC_CTYPE when coercing the C locale.
        env = eval(proto.output[1])
        env.pop(b"LC_CTYPE", None)
        self.assertEqual(env, {})

    def test_inheritedEnvironment(self) -> None:
        """
        C{env=None} passes this process's environment to the child.
        """
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import os; os.write(1, repr(dict(os.environb)).encode())"),
            env=None,
        )
        env = eval(proto.output[1])
        env.pop(b"LC_CTYPE", None)
        expected = dict(os.environb)
        expected.pop(b"LC_CTYPE", None)
        self.assertEqual(env, expected)

    def test_strAndBytesArguments(self) -> None:
        """
        C{str} and C{bytes} are accepted for the executable, the arguments
        and the environment; C{args[0]} is only the child's name for itself,
        the executable is looked up on C{PATH}.
        """
        script = 'printf "%s|" "$1" "$X$Y"; cat /proc/$$/cmdline'
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            "sh",
            ["my-name", b"-c", script, "zero", "caf\xe9"],
            env={"X": "1", b"Y": b"2", "PATH": os.environ.get("PATH", "/bin")},
        )
        expected = "caf\xe9|12|my-name\0-c\0" + script + "\0zero\0caf\xe9\0"
        self.assertEqual(proto.output[1], expected.encode())

    def test_childHasExactlyItsFDs(self) -> None:
        """
        The child has exactly the fds in C{childFDs}, nothing else, whatever
        the parent has open.
        """
        noise = os.open(os.devnull, os.O_RDONLY)  # not CLOEXEC-free, but open
        os.set_inheritable(noise, True)
        self.addCleanup(os.close, noise)
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(LIST_FDS),
            childFDs={0: "w", 1: "r", 2: "r", 5: "r", 7: "w"},
        )
        self.assertEqual(eval(proto.output[1]), [0, 1, 2, 5, 7])

    def test_extraPipes(self) -> None:
        """
        Extra C{"r"} and C{"w"} pipes at fds 3 and above work like stdio:
        C{writeToChild} feeds a C{"w"} fd, C{childDataReceived} reports an
        C{"r"} fd, C{closeChildFD} gives the child end of file.
        """
        source = (
            "import os\n"
            "data = b''\n"
            "while True:\n"
            "    chunk = os.read(4, 100)\n"
            "    if not chunk: break\n"
            "    data += chunk\n"
            "os.write(3, data.upper())\n"
        )

        def feed(transport: Any) -> None:
            transport.writeToChild(4, b"hello ")
            transport.writeToChild(4, b"fd four")
            transport.closeChildFD(4)

        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(source),
            childFDs={0: "w", 1: "r", 2: "r", 3: "r", 4: "w"},
            onSpawned=feed,
        )
        self.assertEqual(proto.output.get(3), b"HELLO FD FOUR")
        self.assertEqual(
            sorted(d for n, d in proto.events if n == "lost"), [0, 1, 2, 3, 4]
        )

    def test_swappedStdio(self) -> None:
        """
        C{{0: "r", 1: "w"}}: the child writes to its fd 0 and reads its
        fd 1.
        """
        source = "import os\ndata = os.read(1, 100)\nos.write(0, b'got ' + data)\n"
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(source),
            childFDs={0: "r", 1: "w"},
            onSpawned=lambda t: t.writeToChild(1, b"swapped"),
        )
        self.assertEqual(proto.output.get(0), b"got swapped")

    def test_inheritedParentFD(self) -> None:
        """
        An integer C{childFDs} value gives the child that parent fd (here
        the write end of a pipe the test reads), and the parent's fd stays
        open and untouched.
        """
        readEnd, writeEnd = os.pipe()
        self.addCleanup(os.close, readEnd)
        self.addCleanup(os.close, writeEnd)
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import os; os.write(1, b'via parent fd')"),
            childFDs={0: "w", 1: writeEnd, 2: "r"},
        )
        self.assertEqual(os.read(readEnd, 100), b"via parent fd")
        self.assertEqual(sorted(d for n, d in proto.events if n == "lost"), [0, 2])
        self.assertEqual(os.fstat(writeEnd).st_nlink, os.fstat(readEnd).st_nlink)

    def test_stdinWriteAndSequence(self) -> None:
        """
        C{write} and C{writeSequence} reach the child's stdin, and
        C{closeStdin} gives it end of file.
        """

        def feed(transport: Any) -> None:
            transport.write(b"one ")
            transport.writeSequence([b"two ", b"three"])
            transport.closeStdin()

        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"),
            onSpawned=feed,
        )
        self.assertEqual(proto.output[1], b"one two three")

    def test_registerProducer(self) -> None:
        """
        A producer registered on the transport feeds the child's stdin.
        """
        from twisted.internet.interfaces import IPullProducer
        from zope.interface import implementer

        @implementer(IPullProducer)
        class Chunks:
            transport: Any

            def __init__(self) -> None:
                self.left = [b"a" * 1000] * 50

            def resumeProducing(self) -> None:
                if self.left:
                    self.transport.write(self.left.pop())
                else:
                    self.transport.unregisterProducer()
                    self.transport.closeStdin()

            def stopProducing(self) -> None:
                pass

        def feed(transport: Any) -> None:
            producer = Chunks()
            producer.transport = transport
            transport.registerProducer(producer, False)

        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdout.write(str(len(sys.stdin.buffer.read())))"),
            onSpawned=feed,
        )
        self.assertEqual(proto.output[1], b"50000")

    def runWithProducer(self, **spawnArgs: Any) -> tuple[StopRecorder, Any]:
        """
        Spawn a child that exits at once, with a streaming L{StopRecorder}
        registered on the transport as soon as it is connected.

        @return: The producer and the protocol, once the process ended.
        """
        producer = StopRecorder()
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("pass"),
            onSpawned=lambda t: t.registerProducer(producer, True),
            **spawnArgs,
        )
        return producer, proto

    def test_registerProducerWithoutStdin(self) -> None:
        """
        Without a stdin pipe, a registered producer is stopped at once.
        """
        producer, _ = self.runWithProducer(childFDs={1: "r"})
        self.assertEqual(producer.stopped, 1)

    def test_producerStoppedWhenChildClosesStdin(self) -> None:
        """
        A streaming producer registered on stdin, idle (nothing buffered, so
        the pipe is not being written), is stopped when the child exits
        without reading: the hang-up of the stdin pipe ends it, and fd 0 is
        reported lost.
        """
        producer, proto = self.runWithProducer()
        self.assertEqual(producer.stopped, 1)
        self.assertIn(("lost", 0), proto.events)

    def test_writeToUnknownFD(self) -> None:
        """
        C{writeToChild} to a child fd without a pipe raises L{KeyError}, as
        Twisted's transport does; C{closeChildFD} of one is ignored.
        """
        raised: list[type] = []

        def poke(transport: Any) -> None:
            try:
                transport.writeToChild(9, b"x")
            except KeyError:
                raised.append(KeyError)
            transport.closeChildFD(9)
            transport.closeStdin()

        proto = RecordingProtocol()
        spawnAndRun(
            self, proto, PYTHON, python("import sys; sys.stdin.read()"), onSpawned=poke
        )
        self.assertEqual(raised, [KeyError])

    def test_loseConnectionClosesStdioOnly(self) -> None:
        """
        C{loseConnection} closes the pipes of fds 0, 1 and 2 and leaves the
        others open; C{processEnded} waits for them.
        """
        source = (
            "import os, sys\n"
            "sys.stdin.read()\n"  # EOF from loseConnection
            "os.write(3, b'still here')\n"
        )
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python(source),
            childFDs={0: "w", 1: "r", 2: "r", 3: "r"},
            onSpawned=lambda t: t.loseConnection(),
        )
        self.assertEqual(proto.output.get(3), b"still here")
        lost = [d for n, d in proto.events if n == "lost"]
        self.assertEqual(sorted(lost[:3]), [0, 1, 2])
        self.assertEqual(lost[3], 3)

    def test_processExitedBeforePipesClose(self) -> None:
        """
        C{processExited} comes as soon as the child is reaped even while a
        grandchild keeps a pipe open; C{processEnded} waits for the pipe.
        """
        # The grandchild holds fd 1 until the parent closes its stdin.
        source = (
            "import os, sys\n"
            "if os.fork() == 0:\n"
            "    sys.stdin.read(); os.write(1, b'late'); os._exit(0)\n"
        )

        class Closer(RecordingProtocol):
            def processExited(self, reason: Any) -> None:
                super().processExited(reason)
                self.transport.closeStdin()  # type: ignore[union-attr]

        proto = Closer()
        spawnAndRun(self, proto, PYTHON, python(source))
        names = proto.names()
        self.assertLess(names.index("exited"), names.index("ended"))
        self.assertLess(
            proto.events.index(("exited", None)), proto.events.index(("lost", 1))
        )
        self.assertEqual(proto.output.get(1), b"late")

    def test_signalByName(self) -> None:
        """
        C{signalProcess} accepts C{"HUP" "INT" "KILL" "TERM"} by name.
        """
        for name in ("HUP", "INT", "KILL", "TERM"):

            def send(transport: Any, name: str = name) -> None:
                transport.signalProcess(name)

            proto = RecordingProtocol()
            spawnAndRun(
                self,
                proto,
                PYTHON,
                python("import sys; sys.stdin.read()"),
                onSpawned=send,
            )
            assert proto.endedReason is not None
            self.assertEqual(
                proto.endedReason.value.signal, getattr(signal, "SIG" + name), name
            )

    def test_signalByNumberAndStop(self) -> None:
        """
        C{signalProcess} accepts a number, and C{"STOP"} stops the child
        (it is then killed and reaped as usual).
        """

        def stopThenKill(transport: Any) -> None:
            transport.signalProcess("STOP")
            transport.signalProcess(int(signal.SIGKILL))

        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            onSpawned=stopThenKill,
        )
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.signal, signal.SIGKILL)

    def test_signalAfterEnd(self) -> None:
        """
        After the child is reaped C{signalProcess} raises
        L{ProcessExitedAlready}, in C{processExited}, in C{processEnded}
        and later.
        """
        raised: list[str] = []

        class Signaller(RecordingProtocol):
            def processExited(self, reason: Any) -> None:
                super().processExited(reason)
                try:
                    self.transport.signalProcess("TERM")  # type: ignore[union-attr]
                except ProcessExitedAlready:
                    raised.append("exited")

            def processEnded(self, reason: Any) -> None:
                try:
                    self.transport.signalProcess(15)  # type: ignore[union-attr]
                except ProcessExitedAlready:
                    raised.append("ended")
                super().processEnded(reason)

        proto = Signaller()
        transport = spawnAndRun(self, proto, PYTHON, python("pass"))
        self.assertRaises(ProcessExitedAlready, transport.signalProcess, "KILL")
        self.assertEqual(raised, ["exited", "ended"])

    def test_pauseAndResume(self) -> None:
        """
        C{pauseProducing} stops delivering output; C{resumeProducing}
        delivers the rest.
        """
        from twisted.internet.task import deferLater

        proto = RecordingProtocol()
        reactor = self.buildReactor()
        paused: list[bytes] = []

        class Pauser(RecordingProtocol):
            def connectionMade(self) -> None:
                super().connectionMade()
                self.transport.pauseProducing()  # type: ignore[union-attr]

                def resume(_: object) -> None:
                    paused.append(self.output.get(1, b""))
                    self.transport.resumeProducing()  # type: ignore[union-attr]

                deferLater(reactor, 0.5, lambda: None).addCallback(resume)

        proto = Pauser()
        spawnAndRun(self, proto, PYTHON, python("print('hi')"), reactor=reactor)
        self.assertEqual(paused, [b""])
        self.assertEqual(proto.output[1], b"hi\n")

    def test_bulkOutput(self) -> None:
        """
        Several MiB of output arrive complete and in order (the big-read
        path, including growing the pipe).
        """
        size = 8 * 1024 * 1024
        source = (
            "import sys\n"
            f"data = bytes(range(256)) * ({size} // 256)\n"
            "sys.stdout.buffer.write(data)\n"
        )
        proto = RecordingProtocol()
        spawnAndRun(self, proto, PYTHON, python(source))
        self.assertEqual(len(proto.output[1]), size)
        self.assertEqual(proto.output[1], bytes(range(256)) * (size // 256))

    def test_ignoredSignalsReset(self) -> None:
        """
        A signal ignored in the parent (Python ignores C{SIGPIPE}) is at its
        default in the child.
        """
        self.assertEqual(signal.getsignal(signal.SIGPIPE), signal.SIG_IGN)
        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            "/bin/sh",
            ["sh", "-c", "grep SigIgn /proc/self/status"],
        )
        self.assertEqual(proto.output[1].split(), [b"SigIgn:", b"0" * 16])

    def test_spawnBeforeRun(self) -> None:
        """
        C{spawnProcess} may be called before the reactor runs; the child is
        reaped once it does.
        """
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        reactor.spawnProcess(proto, PYTHON, python("raise SystemExit(4)"))
        self.assertEqual(proto.names(), ["connectionMade"])
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor)
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 4)


class ProcessFailureMixin(MixinBase):
    """
    Failures: exec errors, bad input, and exceptions from protocols.
    """

    def test_execFailure(self) -> None:
        """
        A missing executable raises L{SpawnError}, also a
        L{FileNotFoundError} naming it, synchronously; C{makeConnection} is
        not called and nothing is left behind.
        """
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        fds = openFDs()
        exc = self.assertRaises(
            FileNotFoundError,
            reactor.spawnProcess,
            proto,
            "/nonexistent/txspawn-test",
            ["x"],
        )
        self.assertIsInstance(exc, SpawnError)
        self.assertEqual(exc.errno, errno.ENOENT)
        self.assertIn("txspawn-test", str(exc.filename))
        self.assertEqual(proto.events, [])
        self.assertEqual(openFDs(), fds)
        self.assertNoNewChildren()

    def test_execNotExecutable(self) -> None:
        """
        A file that is not executable raises a L{PermissionError}
        L{SpawnError}, with nothing left behind.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        fds = openFDs()
        exc = self.assertRaises(
            PermissionError, reactor.spawnProcess, proto, path, [path]
        )
        self.assertIsInstance(exc, SpawnError)
        self.assertEqual(proto.events, [])
        self.assertEqual(openFDs(), fds)
        self.assertNoNewChildren()

    def test_badInputOpensNothing(self) -> None:
        """
        Bad arguments raise L{TypeError}/L{ValueError} naming the argument
        before any fd is opened or child started.
        """
        reactor = self.buildReactor()
        closedFD = os.open(os.devnull, os.O_RDONLY)
        os.close(closedFD)
        cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
            (ValueError, "args", {"args": ["a", "b\0c"]}),
            (ValueError, "env", {"env": {"A=B": "c"}}),
            (ValueError, "env", {"env": {"A": "b\0"}}),
            (TypeError, "args", {"args": [1]}),
            (ValueError, "childFDs", {"childFDs": {0: "x"}}),
            (OSError, "childFDs", {"childFDs": {1: closedFD}}),
            (ValueError, "childFDs", {"usePTY": True, "childFDs": {0: "w"}}),
        ]
        fds = openFDs()
        for excType, argument, kwargs in cases:
            proto = RecordingProtocol()
            kwargs = dict(kwargs)
            args = kwargs.pop("args", ["true"])
            exc = self.assertRaises(
                excType, reactor.spawnProcess, proto, "/bin/true", args, **kwargs
            )
            self.assertIn(argument, str(exc), kwargs)
            self.assertEqual(proto.events, [])
            self.assertEqual(openFDs(), fds, kwargs)
            self.assertNoNewChildren(kwargs)

    def test_protocolExceptionsLogged(self) -> None:
        """
        Exceptions raised by every protocol callback are logged, never
        reach the reactor, and the child is still reaped and every pipe
        closed.
        """

        class Boom(Exception):
            pass

        class Raiser(RecordingProtocol):
            def connectionMade(self) -> None:
                super().connectionMade()
                raise Boom("connectionMade")

            def childDataReceived(self, childFD: int, data: bytes) -> None:
                super().childDataReceived(childFD, data)
                raise Boom("childDataReceived")

            def childConnectionLost(self, childFD: int) -> None:
                super().childConnectionLost(childFD)
                raise Boom("childConnectionLost")

            def processExited(self, reason: Any) -> None:
                super().processExited(reason)
                raise Boom("processExited")

            def processEnded(self, reason: Any) -> None:
                super().processEnded(reason)
                raise Boom("processEnded")

        proto = Raiser()
        spawnAndRun(self, proto, PYTHON, python("print('x')"))
        self.assertEqual(proto.names().count("ended"), 1)
        logged = self.flushLoggedErrors(Boom)
        where = {str(f.value) for f in logged}
        self.assertEqual(
            where,
            {
                "connectionMade",
                "childDataReceived",
                "childConnectionLost",
                "processExited",
                "processEnded",
            },
        )

    def test_protocolNone(self) -> None:
        """
        A plain L{ProcessProtocol} that does nothing still gets the child
        reaped and every pipe closed.
        """
        reactor = self.buildReactor()
        done = RecordingProtocol()

        def go() -> None:
            reactor.spawnProcess(ProcessProtocol(), PYTHON, python("print(1)"))
            reactor.spawnProcess(done, PYTHON, python("pass"))

        done.ended.addBoth(lambda _: reactor.callLater(0.5, reactor.stop))
        reactor.callWhenRunning(go)
        self.runReactor(reactor)


class ProcessThreadingMixin(MixinBase):
    """
    Reactors without signal handlers and off the main thread (pidfd only).
    """

    def _requirePidfd(self) -> None:
        if self.monitorName != "pidfd":
            self.skipTest("only the pidfd monitor works without signals")

    def test_withoutSignalHandlers(self) -> None:
        """
        With the pidfd monitor children are reaped even when the reactor
        runs with C{installSignalHandlers=False}.
        """
        self._requirePidfd()
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        reactor.callWhenRunning(
            reactor.spawnProcess, proto, PYTHON, python("raise SystemExit(7)")
        )
        proto.ended.addBoth(lambda _: reactor.stop())
        self.runReactor(reactor, installSignalHandlers=False)
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 7)

    def test_nonMainThread(self) -> None:
        """
        With the pidfd monitor a reactor running in a non-main thread
        spawns and reaps children.
        """
        import threading

        self._requirePidfd()
        reactor = self.buildReactor()
        proto = RecordingProtocol()
        failures: list[BaseException] = []
        reactor.callWhenRunning(
            reactor.spawnProcess, proto, PYTHON, python("raise SystemExit(8)")
        )
        proto.ended.addBoth(lambda _: reactor.stop())
        timeout = reactor.callLater(60, reactor.stop)

        def run() -> None:
            try:
                reactor.run(installSignalHandlers=False)
            except BaseException as e:  # pragma: no cover
                failures.append(e)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(90)
        self.assertFalse(thread.is_alive())
        self.assertEqual(failures, [])
        if timeout.active():
            timeout.cancel()
        assert proto.endedReason is not None
        self.assertEqual(proto.endedReason.value.exitCode, 8)


class ReadChunkTests(SynchronousTestCase):
    """
    Tests for L{txspawn._transport.pipes.readChunk}.
    """

    def test_smallAndBuffered(self) -> None:
        """
        Without a buffer at most 64 KiB are read; with one, up to its size,
        and the result is an independent C{bytes}.
        """
        readEnd, writeEnd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.addCleanup(os.close, readEnd)
        self.addCleanup(os.close, writeEnd)
        os.write(writeEnd, b"abc")
        self.assertEqual(readChunk(readEnd, None), b"abc")
        buffer = bytearray(16)
        os.write(writeEnd, b"defg")
        chunk = readChunk(readEnd, buffer)
        buffer[:] = b"z" * 16
        self.assertEqual(chunk, b"defg")
        self.assertIsInstance(chunk, bytes)
        self.assertRaises(BlockingIOError, readChunk, readEnd, buffer)


globals().update(makeTestCaseClasses(ProcessBehaviourMixin))
globals().update(makeTestCaseClasses(ProcessFailureMixin))
globals().update(makeTestCaseClasses(ProcessThreadingMixin))


@implementer(ISpawner)
class _FailingSpawner:
    """
    An engine that records what it was given and fails with C{error}.
    """

    name = "failing"

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls: list[tuple[dict[int, int], bytes | None]] = []

    def spawn(self, plan: Any, fdMap: Any, ttyName: Any, cgroupLeaf: Any = None) -> Any:
        self.calls.append((dict(fdMap), ttyName))
        raise self.error


def _plan(**kwargs: Any) -> Any:
    return planSpawn(
        "/bin/true",
        ["true"],
        parentEnviron={},
        isOpenFD=isOpenFD,
        **kwargs,
    )


class ConstructorCleanupTests(SynchronousTestCase):
    """
    The transports' constructors leave nothing behind when the engine
    fails, whatever it raises.
    """

    def _check(self, factory: Any, plan: Any, error: BaseException) -> Any:
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self.addCleanup(reactor._poller.close)
        self.addCleanup(reactor.waker.connectionLost, None)
        fds = openFDs()
        spawner = _FailingSpawner(error)
        self.assertRaises(type(error), factory, reactor, plan, None, spawner)
        self.assertEqual(openFDs(), fds)
        self.assertEqual(reactor.getReaders(), [reactor.waker])
        self.assertEqual(reactor.getWriters(), [])
        return spawner

    def test_processSpawnError(self) -> None:
        """
        L{Process} closes both ends of every pipe it opened when the engine
        raises L{SpawnError}; the engine saw one child fd per pipe.
        """
        error = SpawnError.fromErrno(errno.ENOENT, ChildSetupStage.EXEC, "x")
        plan = _plan(childFDs={0: "w", 1: "r", 2: "r", 3: "r"})
        spawner = self._check(Process, plan, error)
        [(fdMap, ttyName)] = spawner.calls
        self.assertEqual(sorted(fdMap), [0, 1, 2, 3])
        self.assertIsNone(ttyName)

    def test_processBaseException(self) -> None:
        """
        L{Process} also cleans up on a L{BaseException} such as
        L{KeyboardInterrupt}, and lets it through.
        """
        self._check(Process, _plan(), KeyboardInterrupt())

    def test_ptySpawnError(self) -> None:
        """
        L{PTYProcess} closes the pty it opened when the engine fails; the
        engine got the slave as fds 0, 1, 2 and its name.
        """
        from txspawn._transport.ptytransport import PTYProcess

        error = SpawnError.fromErrno(errno.EACCES, ChildSetupStage.EXEC, "x")
        spawner = self._check(PTYProcess, _plan(usePTY=True), error)
        [(fdMap, ttyName)] = spawner.calls
        self.assertEqual(sorted(fdMap), [0, 1, 2])
        self.assertEqual(len(set(fdMap.values())), 1)
        self.assertTrue(ttyName.startswith(b"/dev/pts/"))

    def test_ptyBaseException(self) -> None:
        """
        L{PTYProcess} also cleans up on a L{BaseException}.
        """
        from txspawn._transport.ptytransport import PTYProcess

        self._check(PTYProcess, _plan(usePTY=True), KeyboardInterrupt())


class ChildEndsMixin(MixinBase):
    """
    The parent keeps only its own ends of the pipes.
    """

    def test_childEndsClosed(self) -> None:
        """
        When C{spawnProcess} returns, the fds the engine mapped into the
        child are closed in the parent, and the parent's ends are
        non-blocking and close-on-exec.
        """
        from txspawn._engine.selection import selectSpawner

        engine = selectSpawner(self.engineName)
        seen: list[dict[int, int]] = []

        @implementer(ISpawner)
        class Recording:
            name = engine.name

            def spawn(
                self, plan: Any, fdMap: Any, ttyName: Any, cgroupLeaf: Any = None
            ) -> Any:
                seen.append(dict(fdMap))
                return engine.spawn(plan, fdMap, ttyName, cgroupLeaf)

        reactor = self.buildReactor()
        reactor.processSpawner.spawner = Recording()
        checks: list[tuple[str, object]] = []

        def check(transport: Any) -> None:
            transport.closeStdin()
            for fd in seen[0].values():
                try:
                    os.fstat(fd)
                except OSError as e:
                    checks.append(("closed", e.errno))
            for pipe in transport.pipes.values():
                fd = pipe.fileno()
                checks.append(("blocking", os.get_blocking(fd)))
                checks.append(("inheritable", os.get_inheritable(fd)))

        proto = RecordingProtocol()
        spawnAndRun(
            self,
            proto,
            PYTHON,
            python("import sys; sys.stdin.read()"),
            reactor=reactor,
            onSpawned=check,
        )
        self.assertEqual(
            sorted(set(checks), key=repr),
            sorted(
                {("closed", errno.EBADF), ("blocking", False), ("inheritable", False)},
                key=repr,
            ),
        )
        self.assertEqual(checks.count(("closed", errno.EBADF)), 3)


globals().update(makeTestCaseClasses(ChildEndsMixin))
