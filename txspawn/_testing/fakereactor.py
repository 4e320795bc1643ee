# -*- test-case-name: tests.test_testing -*-
"""
The fake reactor of L{txspawn.testing}: a L{MemoryReactorClock} that
provides L{IReactorProcess}, records each C{spawnProcess} call as a
L{SpawnedProcess} and answers it with a L{FakeProcessTransport}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen
from twisted.internet.interfaces import (
    IProcessProtocol,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer

from txspawn._api.arguments import checkProtocol, namingCaller, splitSpawnOptions
from txspawn._testing.fakeprocess import FakeProcessTransport
from txspawn._transport.timelimits import NO_LIFETIME
from txspawn.interfaces import IReactorSpawn

__all__ = ["MemoryProcessReactor", "SpawnedProcess"]


@frozen
class SpawnedProcess:
    """
    One call to L{MemoryProcessReactor.spawnProcess}, as recorded.

    @ivar protocol: The process protocol passed.
    @ivar executable: The executable passed.
    @ivar args: The argument list passed, as a tuple.
    @ivar env: The environment passed.
    @ivar path: The working directory passed.
    @ivar uid: The uid passed.
    @ivar gid: The gid passed.
    @ivar usePTY: The C{usePTY} passed.
    @ivar childFDs: The C{childFDs} passed (C{None} for the default).
    @ivar options: The txspawn keyword options passed (C{processGroup},
        C{umask}, ...).
    @ivar transport: The L{FakeProcessTransport} returned.
    """

    protocol: IProcessProtocol
    executable: bytes | str
    args: tuple[bytes | str, ...]
    env: Mapping[Any, Any] | None
    path: bytes | str | None
    uid: int | None
    gid: int | None
    usePTY: object
    childFDs: Mapping[int, int | str] | None
    options: Mapping[str, object]
    transport: FakeProcessTransport = field(repr=False)


@implementer(IReactorProcess, IReactorSpawn, IReactorTime)
class MemoryProcessReactor(MemoryReactorClock):
    """
    A fake reactor (a L{MemoryReactorClock}) that fakes spawning processes.

    @ivar spawned: Every L{SpawnedProcess}, in order.
    @ivar spawnError: When set, the next C{spawnProcess} calls raise it
        (e.g. a L{txspawn.errors.SpawnError}) without connecting the
        protocol, as a real failed spawn does.
    @ivar nextPid: The pid the next fake child gets.
    """

    def __init__(self) -> None:
        # MemoryReactorClock.__init__ is unannotated.
        super().__init__()  # type: ignore[no-untyped-call]
        self.spawned: list[SpawnedProcess] = []
        self.spawnError: BaseException | None = None
        self.nextPid = 1000

    @property
    def transports(self) -> list[FakeProcessTransport]:
        """
        The transport of every spawned process, in order.
        """
        return [spawned.transport for spawned in self.spawned]

    def spawnProcess(
        self,
        processProtocol: IProcessProtocol,
        executable: bytes | str,
        args: Sequence[bytes | str] = (),
        env: Mapping[Any, Any] | None = {},
        path: bytes | str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        usePTY: Any = False,
        childFDs: Mapping[int, int | str] | None = None,
        **options: Any,
    ) -> FakeProcessTransport:
        """
        Record the call, connect C{processProtocol} to a new
        L{FakeProcessTransport} and return it.

        The protocol and txspawn's options are checked as txspawn's
        reactors check them (an error names C{spawnProcess()} and the
        argument); the lifetime options (C{timeout}, C{killAfter},
        C{closePipesAfterExit}) are then armed on the transport with this
        reactor's clock, and the other options only recorded.

        @raise ValueError: for C{usePTY} together with C{childFDs}, as a real
            reactor does, or an option with a bad value.
        @raise TypeError: for a protocol that does not provide
            L{IProcessProtocol}, an unknown option, or an option of the
            wrong type.
        @raise BaseException: L{spawnError}, when set.
        """
        checkProtocol("spawnProcess()", processProtocol)
        with namingCaller("spawnProcess()"):
            if usePTY and childFDs is not None:
                raise ValueError("Using childFDs is not supported with usePTY=True.")
            lifetime = splitSpawnOptions(options)[0] if options else NO_LIFETIME
        if self.spawnError is not None:
            raise self.spawnError
        fds: Mapping[int, int | str] = (
            {0: "w", 1: "r", 2: "r"} if childFDs is None else childFDs
        )
        transport = FakeProcessTransport(
            processProtocol,
            self.nextPid,
            fds,
            usePTY=bool(usePTY),
            # processGroup=0 makes a new group; a pgid joins another one.
            leadsGroup=(
                bool(usePTY)
                or bool(options.get("newSession"))
                or (
                    options.get("processGroup") == 0
                    and options.get("processGroup") is not False
                )
            ),
            clock=self,
        )
        self.nextPid += 1
        self.spawned.append(
            SpawnedProcess(
                protocol=processProtocol,
                executable=executable,
                args=tuple(args),
                env=env,
                path=path,
                uid=uid,
                gid=gid,
                usePTY=usePTY,
                childFDs=childFDs,
                options=dict(options),
                transport=transport,
            )
        )
        processProtocol.makeConnection(transport)
        transport._armLifetime(lifetime)
        return transport
