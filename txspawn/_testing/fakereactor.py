# -*- test-case-name: tests.test_testing -*-
"""
The fake reactor of L{txspawn.testing}: a L{MemoryReactorClock} that
provides L{IReactorProcess}, records each C{spawnProcess} call as a
L{SpawnedProcess} and answers it with a L{FakeProcessTransport}.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import evolve, field, frozen
from twisted.internet.interfaces import (
    IProcessProtocol,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from txspawn._api.arguments import checkProtocol, namingCaller, splitSpawnOptions
from txspawn._plan.planner import planSpawn
from txspawn._testing.faketransport import FakeProcessTransport
from txspawn._transport.timelimits import NO_LIFETIME
from txspawn.errors import SpawnError, UnsupportedFeature
from txspawn.interfaces import IReactorSpawn
from txspawn.options import SpawnOptions

__all__ = ["MemoryProcessReactor", "SpawnedProcess"]

_log = Logger()


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
    @ivar cgroupUnavailable: C{None} (the default): a spawn with C{cgroup=}
        gets a fake cgroup (see L{FakeProcessTransport}).  A reason: this
        reactor plays a machine where no cgroup can be had, as a real one
        does: a required C{Cgroup} raises
        L{txspawn.errors.UnsupportedFeature} (C{feature="cgroup"}, with
        this reason) without connecting the protocol, and a best-effort one
        (C{required=False}) gives a transport without a cgroup whose
        C{cgroupUnavailable} is this reason.
    """

    def __init__(self) -> None:
        # MemoryReactorClock.__init__ is unannotated.
        super().__init__()  # type: ignore[no-untyped-call]
        self.spawned: list[SpawnedProcess] = []
        self.spawnError: BaseException | None = None
        self.nextPid = 1000
        self.cgroupUnavailable: str | None = None

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

        Every argument is checked as txspawn's reactors check it, by the
        same code: a L{TypeError} or L{ValueError} names C{spawnProcess()}
        and the argument, with the message a real reactor gives.  What
        depends on the machine is not looked at, since no child is
        started: whether the executable is found, whether C{path} is a
        directory, whether the parent fds of C{childFDs} or C{usePTY} are
        open, whether the group names of C{groups} exist, whether
        txspawn's init is built for C{namespaces} (set L{spawnError} to
        have a spawn fail), whether a cgroup can be had for C{cgroup}
        (see L{cgroupUnavailable}).  The lifetime options
        (C{timeout}, C{killAfter}, C{closePipesAfterExit}) are then armed
        on the transport with this reactor's clock, and the other options
        only recorded.  As on a real reactor, an exception raised by the
        protocol's C{makeConnection} is logged, not raised.

        @raise TypeError: for an argument of the wrong type, a protocol
            that does not provide L{IProcessProtocol}, or an unknown
            option.
        @raise ValueError: for an argument with a bad value (C{usePTY}
            together with C{childFDs} included).
        @raise BaseException: L{spawnError}, when set.
        """
        checkProtocol("spawnProcess()", processProtocol)
        with namingCaller("spawnProcess()"):
            if options:
                lifetime, spawnOptions = splitSpawnOptions(options)
            else:
                lifetime, spawnOptions = NO_LIFETIME, None
            _checkArguments(
                executable, args, env, path, uid, gid, usePTY, childFDs, spawnOptions
            )
        if self.spawnError is not None:
            raise self.spawnError
        cgroup = None if spawnOptions is None else spawnOptions.cgroup
        unavailable = None
        if cgroup is not None and self.cgroupUnavailable is not None:
            if cgroup.required:
                raise UnsupportedFeature("cgroup", self.cgroupUnavailable)
            cgroup, unavailable = None, self.cgroupUnavailable
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
            cgroup=cgroup,
        )
        transport.cgroupUnavailable = unavailable
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
        try:
            processProtocol.makeConnection(transport)
        except BaseException:
            _log.failure("while calling makeConnection:", level=LogLevel.critical)
        transport._armLifetime(lifetime)
        return transport


def _anyFD(fd: int) -> bool:
    """
    The fake's answer to "is this parent fd open?": yes (it opens none).
    """
    return True


def _checkArguments(
    executable: object,
    args: object,
    env: object,
    path: object,
    uid: object,
    gid: object,
    usePTY: object,
    childFDs: object,
    options: SpawnOptions | None,
) -> None:
    """
    Make the checks of a real reactor's C{spawnProcess} (its plan,
    L{planSpawn}) that do not depend on the machine.

    L{planSpawn} itself runs, so the checks, their order and their messages
    are the real ones (those of C{namespaces} included: whether C{uid},
    C{gid} and C{groups} are mapped in a user namespace); it is told that
    every fd is open and not given group names to look up (gids are
    checked), and the L{SpawnError}s it raises last (the executable not
    found, C{path} no directory, txspawn's init not built for
    C{namespaces} with C{pidInit}) are not the fake's business.

    @raise TypeError: for an argument of the wrong type.
    @raise ValueError: for an argument with a bad value.
    """
    if options is not None and any(
        isinstance(group, str) for group in options.groups or ()
    ):
        options = evolve(options, groups=None)
    try:
        planSpawn(
            executable,  # type: ignore[arg-type]
            args,  # type: ignore[arg-type]
            env,  # type: ignore[arg-type]
            path,  # type: ignore[arg-type]
            uid,  # type: ignore[arg-type]
            gid,  # type: ignore[arg-type]
            usePTY,
            childFDs,  # type: ignore[arg-type]
            parentEnviron=os.environb,
            isOpenFD=_anyFD,
            options=options,
        )
    except SpawnError:
        pass
