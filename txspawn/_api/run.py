# -*- test-case-name: tests.test_run -*-
"""
A result-object API: run a command, get one L{ProcessResult}.

C{run(argv)} spawns a child on any
L{twisted.internet.interfaces.IReactorProcess} (txspawn's reactors or a
stock Twisted reactor), feeds it C{stdin}, collects its stdout and stderr,
and fires a L{Deferred} (awaitable) with a frozen L{ProcessResult}.
It is Twisted's C{getProcessOutputAndValue} grown up: exit code I{and}
signal I{and} raw status, rusage, duration, pid; C{check=True} like
C{subprocess.run}; a timeout that sends C{SIGTERM} and then C{SIGKILL};
cancellation that kills the child and waits until it is reaped.

The lifecycle machinery (L{txspawn._api.runprotocol.ChildRun}) is shared with the
streaming variant in L{txspawn._api.stream}: the two differ only in what happens
to the output (an L{txspawn._api.runprotocol.OutputSink}); here it is a
L{_Collector} that keeps everything.  The result and its errors live in
L{txspawn._api.result}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProcessTransport, IReactorTime

from txspawn._api.arguments import KILL_AFTER_DEFAULT, checkRunCall, resolveReactor
from txspawn._api.result import ProcessResult
from txspawn._api.runprotocol import ChildRun
from txspawn._api.tee import LogFile

__all__ = ["run"]


class _Collector:
    """
    The L{txspawn._api.runprotocol.OutputSink} of L{run}: keep everything.
    """

    def __init__(self) -> None:
        self._chunks: dict[int, list[bytes]] = {}

    def connect(self, transport: IProcessTransport) -> None:
        pass

    def dataReceived(self, childFD: int, data: bytes) -> None:
        self._chunks.setdefault(childFD, []).append(data)

    def fdClosed(self, childFD: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        pass

    def output(self, childFD: int) -> bytes:
        return b"".join(self._chunks.get(childFD, []))


def run(
    argv: Sequence[str | bytes],
    *,
    reactor: object | None = None,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    path: str | bytes | None = None,
    uid: int | None = None,
    gid: int | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    killAfter: float | None = KILL_AFTER_DEFAULT,
    check: bool = False,
    closePipesAfterExit: float | None = None,
    logFile: LogFile | None = None,
    logPrefix: bool = False,
    **options: object,
) -> Deferred[ProcessResult]:
    """
    Run C{argv}, wait for it to end, and return what happened.

    Usage::

        result = await txspawn.run(["git", "status"], check=True)
        print(result.stdout.decode())

    @param argv: The program and its arguments; C{argv[0]} is looked up on
        C{PATH} as C{spawnProcess} does.
    @param reactor: An L{twisted.internet.interfaces.IReactorProcess} that is
        also an L{IReactorTime} (every real reactor;
        L{txspawn.testing.MemoryProcessReactor}).
        C{None}: the global reactor, imported when C{run} is called.
    @param env: The child's environment.  B{C{None} (the default) inherits
        C{os.environ}}, as C{subprocess.run} does: this deliberately differs
        from C{spawnProcess}, whose default is an I{empty} environment, a
        Twisted quirk that surprises almost everyone.  Pass C{{}} for an
        empty one.
    @param path: The child's working directory (C{None}: the parent's).
    @param uid: The uid to run as (C{spawnProcess}'s C{uid}).
    @param gid: The gid to run as (C{spawnProcess}'s C{gid}).
    @param stdin: Bytes written to the child's stdin, which is then closed.
        C{None} (the default): stdin is closed at once, so the child reads
        end-of-file (it never inherits the parent's stdin).
    @param timeout: Seconds the child may run (a finite number above 0).
        Then it is sent C{SIGTERM} (its process group, when it leads one and
        the reactor can signal groups safely), and C{SIGKILL} C{killAfter}
        seconds later (with C{cgroup=}: C{cgroup.kill}, to everything in
        its cgroup, at once if the child exits before with anything left
        there); the Deferred fails with L{txspawn.ProcessTimedOut}
        carrying the partial result.  C{None}: no limit.
    @param killAfter: The grace period between C{SIGTERM} and C{SIGKILL},
        in seconds (default 5); C{None} never escalates to C{SIGKILL}.  Only
        with C{timeout}: cancelling sends C{SIGKILL} at once.
    @param check: A L{bool}: fail with L{txspawn.ProcessFailed} (carrying
        the result) when the child does not exit with code 0.
    @param closePipesAfterExit: Seconds to keep reading the child's pipes after
        it exited.  A daemonised grandchild that keeps stdout open would
        otherwise keep C{run} waiting for ever (Twisted waits for every
        pipe to close); output written after that is lost.  C{None} (the
        default): wait for the pipes to close.
    @param logFile: Also write the child's output to this file: a path,
        opened for appending when the child is spawned, or a I{binary} file
        object (it is written bytes: a text file such as C{io.StringIO} or
        C{sys.stdout} is refused at the call, as is a closed one), written
        and left open; see L{txspawn.TeeProtocol}.  Write errors are logged
        and reported as L{ProcessResult.logError}; the result's output is
        complete anyway.
    @param logPrefix: A L{bool}: prefix each line in C{logFile} with a
        timestamp from the reactor's clock and the stream name.
    @param options: txspawn's extra spawn options (C{processGroup=0},
        C{newSession=True}, C{umask}, ...; see L{txspawn.options}), checked
        at the call and passed on to C{spawnProcess}.  They need a reactor
        whose C{spawnProcess} takes them (a txspawn reactor, see
        L{txspawn.interfaces.IReactorSpawn}, or one L{txspawn.install} was
        called on); with any other, C{run} raises
        L{txspawn.errors.UnsupportedFeature}.
    @return: A L{Deferred} firing with a L{ProcessResult}.  It fails with
        L{txspawn.ProcessFailed} (C{check=True}),
        L{txspawn.ProcessTimedOut}, or the spawn error (e.g.
        L{txspawn.errors.SpawnError}, a L{FileNotFoundError} when the
        program does not exist).  Cancelling it kills the child with
        C{SIGKILL} (its group when it leads one, and with C{cgroup=}
        everything in its cgroup, even once the child itself has exited)
        and fails it with
        L{twisted.internet.defer.CancelledError} once the child has been
        reaped: no zombie, and nothing left writing to pipes nobody reads.
        (Cancelling again while it waits for the reaping stops the
        waiting.)
    @raise TypeError: for an argument of the wrong type, or an unknown
        keyword argument; the message names C{run()} and the argument.
        Nothing has been opened or started.  (Spawn errors fail the
        Deferred instead.)
    @raise ValueError: for an argument with a bad value (idem), such as
        C{killAfter} without C{timeout}.
    @raise txspawn.errors.UnsupportedFeature: for spawn options given with
        a reactor that does not take them (see C{options}).

    @since: txspawn 0.1
    """
    argvTuple, timeout, killAfter, closePipesAfterExit = checkRunCall(
        "run()",
        argv,
        env,
        path,
        uid,
        gid,
        stdin,
        timeout,
        killAfter,
        check,
        closePipesAfterExit,
        logFile,
        logPrefix,
        options,
    )
    resolved = resolveReactor("run()", reactor, options)
    child = ChildRun(
        cast(IReactorTime, resolved),
        argvTuple,
        _Collector(),
        stdin=stdin,
        timeout=timeout,
        killAfter=killAfter,
        check=check,
        closePipesAfterExit=closePipesAfterExit,
    )
    child.start(resolved, env, path, uid, gid, options, logFile, logPrefix)
    return cast("Deferred[ProcessResult]", child.deferred)
