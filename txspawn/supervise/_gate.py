# -*- test-case-name: tests.test_supervise_service -*-
"""
Dependency gating of the supervisor's starts and stops.

An instance asked to start is I{pending} until every instance of every
program its program depends on is C{RUNNING}; then it is started.  A
dependency that cannot get there (it is C{FATAL}, stopped, exited for
good) makes the pending instance give up, with why.  A start's
L{Deferred} fires once its instances are all C{RUNNING}, or fails with
L{ProgramFailed} once one of them will not be.

Stops go the other way: an instance is stopped once every instance being
stopped with it that depends on it (directly or not) is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from txspawn.supervise.config import SupervisorConfig
from txspawn.supervise.program import ProgramProcess
from txspawn.supervise.states import ProgramState

__all__ = ["ProgramFailed", "Roster", "StartGate", "gather", "stopInOrder"]

S = ProgramState
_ENDED = frozenset({S.STOPPED, S.EXITED, S.FATAL})
_ON_THE_WAY = frozenset({S.STARTING, S.BACKOFF})


class ProgramFailed(Exception):
    """
    A program that was to be started did not get to C{RUNNING}: it went
    C{FATAL}, exited, was stopped, or a dependency of it did not become
    ready.

    @ivar name: The instance's name.
    @ivar state: Its state then.
    @ivar why: Why.

    @since: txspawn 0.1
    """

    def __init__(self, name: str, state: ProgramState, why: str) -> None:
        self.name = name
        self.state = state
        self.why = why
        super().__init__(name, state, why)

    def __str__(self) -> str:
        return f"{self.name} is {self.state.name}: {self.why}"


class Roster(Protocol):
    """
    The instances the gate works on (the service).
    """

    config: SupervisorConfig

    def orderedNames(self) -> list[str]:
        "Every instance name, in start order."

    def namesOf(self, program: str) -> tuple[str, ...]:
        "The instance names of a program."

    def programOf(self, name: str) -> str:
        "The program of an instance."

    def processOf(self, name: str) -> ProgramProcess | None:
        "The process of an instance, or C{None} if there is none any more."

    def whyOf(self, name: str) -> str:
        "Why the instance is in its state (its last transition's reason)."


def dependsOn(config: SupervisorConfig, program: str, other: str) -> bool:
    """
    Whether C{program} depends on C{other}, directly or not.
    """
    seen: set[str] = set()
    stack = list(config.programs[program].dependsOn)
    while stack:
        current = stack.pop()
        if current == other:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(config.programs[current].dependsOn)
    return False


class _Waiter:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.deferred: Deferred[None] = Deferred()


class StartGate:
    """
    The pending starts of a roster, and the L{Deferred}s waiting on them.
    """

    def __init__(self, roster: Roster, clock: IReactorTime) -> None:
        self._roster = roster
        self._clock = clock
        self._pending: set[str] = set()
        self._blocked: dict[str, str] = {}
        self._waiters: list[_Waiter] = []
        self._settleCall: IDelayedCall | None = None
        self._awaitingStop: set[str] = set()
        # Started, with the move to STARTING not seen yet: a start asked
        # while the program is in a transition (from a stop's Deferred,
        # fired as it moves to STOPPED) is run by the machine after it.
        self._starting: set[str] = set()

    def isPending(self, name: str) -> bool:
        """
        Whether the instance waits to be started.
        """
        return name in self._pending

    def blockedWhy(self, name: str) -> str | None:
        """
        What an instance that is not started waits for, or why it was not
        started; C{None} when nothing holds it.
        """
        return self._blocked.get(name)

    def start(self, names: Iterable[str]) -> Deferred[None]:
        """
        Start C{names} and what they depend on, each once its dependencies
        are running.

        @return: Fires once every one of C{names} is C{RUNNING}; fails
            with L{ProgramFailed} once one will not be.
        """
        roster = self._roster
        names = tuple(names)
        for name in self._closure(names):
            process = roster.processOf(name)
            if process is not None and (
                process.state in _ENDED or process.state is S.STOPPING
            ):
                self._pending.add(name)
                self._blocked.pop(name, None)
        waiter = _Waiter(names)
        self._waiters.append(waiter)
        self.settle()
        return waiter.deferred

    def forget(self, names: Iterable[str]) -> None:
        """
        Start none of C{names} (they are being stopped, or dropped).
        """
        for name in names:
            self._pending.discard(name)
            self._blocked.pop(name, None)

    def moved(self, name: str) -> None:
        """
        The instance C{name} moved: look at what waits (L{changed}).
        """
        self._starting.discard(name)
        self.changed()

    def changed(self) -> None:
        """
        An instance moved: look at what waits once the move is over (a run
        that exits and is restarted at once passes through C{EXITED}).
        """
        if self._settleCall is None:
            self._settleCall = self._clock.callLater(0, self.settle)

    def settle(self) -> None:
        """
        Start what can start, give up on what cannot, answer the waiters.
        """
        if self._settleCall is not None:
            if self._settleCall.active():
                self._settleCall.cancel()
            self._settleCall = None
        self._gate()
        self._answer()

    def _stopped(self, _: object, name: str) -> None:
        self._awaitingStop.discard(name)
        self.changed()

    def _onTheWay(self, name: str, state: ProgramState) -> bool:
        """
        Whether the instance will be C{RUNNING} unless something fails.
        """
        return name in self._pending or name in self._starting or state in _ON_THE_WAY

    def _closure(self, names: tuple[str, ...]) -> list[str]:
        """
        C{names} and every instance of every program they depend on,
        directly or not, in start order.
        """
        roster = self._roster
        programs: set[str] = set()

        def visit(program: str) -> None:
            if program not in programs:
                programs.add(program)
                for dependency in roster.config.programs[program].dependsOn:
                    visit(dependency)

        for name in names:
            visit(roster.programOf(name))
        return [
            name
            for name in roster.orderedNames()
            if name in names or roster.programOf(name) in programs
        ]

    def _gate(self) -> None:
        if not self._pending:
            return
        roster = self._roster
        for name in roster.orderedNames():
            if name not in self._pending:
                continue
            process = roster.processOf(name)
            assert process is not None
            if process.state in _ON_THE_WAY or process.state is S.RUNNING:
                # Started meanwhile (by its own restart, or directly).
                self._pending.discard(name)
                self._blocked.pop(name, None)
                continue
            if process.state is S.STOPPING or process.treeAlive:
                self._blocked[name] = "waiting for its stop to finish"
                if name not in self._awaitingStop:
                    # Its tree may end after its last transition: look
                    # again then.
                    self._awaitingStop.add(name)
                    process.stop().addCallback(self._stopped, name)
                continue
            waiting, failed = self._dependencies(roster.programOf(name))
            if failed is not None:
                self._pending.discard(name)
                self._blocked[name] = failed
            elif waiting is not None:
                self._blocked[name] = waiting
            else:
                self._pending.discard(name)
                self._blocked.pop(name, None)
                self._starting.add(name)
                process.start()

    def _dependencies(self, program: str) -> tuple[str | None, str | None]:
        """
        What the instances of C{program} wait for: C{(waiting, failed)},
        each a reason or C{None}.
        """
        roster = self._roster
        waiting: list[str] = []
        for dependency in roster.config.programs[program].dependsOn:
            for name in roster.namesOf(dependency):
                process = roster.processOf(name)
                assert process is not None
                state = process.state
                if state is S.RUNNING:
                    continue
                if self._onTheWay(name, state):
                    waiting.append(f"{name} ({state.name})")
                else:
                    why = self._blocked.get(name) or roster.whyOf(name)
                    return None, f"dependency {name} is {state.name}: {why}"
        if waiting:
            return f"waiting for {', '.join(waiting)} to be ready", None
        return None, None

    def _answer(self) -> None:
        for waiter in list(self._waiters):
            failed = None
            done = True
            for name in waiter.names:
                process = self._roster.processOf(name)
                if process is None:
                    failed = ProgramFailed(name, S.STOPPED, "removed by a reload")
                    break
                if process.state is S.RUNNING:
                    continue
                done = False
                if self._onTheWay(name, process.state):
                    continue
                why = self._blocked.get(name) or self._roster.whyOf(name)
                failed = ProgramFailed(name, process.state, why)
                break
            if failed is not None:
                self._waiters.remove(waiter)
                waiter.deferred.errback(failed)
            elif done:
                self._waiters.remove(waiter)
                waiter.deferred.callback(None)


def stopInOrder(roster: Roster, names: Iterable[str]) -> Deferred[None]:
    """
    Stop the instances C{names}, each once those of them that depend on it
    (directly or not) are gone.

    @return: Fires once every one of them is gone (trees included).
    """
    wanted = set(names)
    order = [name for name in reversed(roster.orderedNames()) if name in wanted]
    done: dict[str, Deferred[None]] = {}
    for name in order:
        program = roster.programOf(name)
        before = [
            done[other]
            for other in done
            if dependsOn(roster.config, roster.programOf(other), program)
        ]
        process = roster.processOf(name)
        assert process is not None
        done[name] = gather(before).addCallback(_stopProcess, process)
    return gather(list(done.values()))


def _stopProcess(_: object, process: ProgramProcess) -> Deferred[None]:
    return process.stop()


def gather(deferreds: list[Deferred[Any]]) -> Deferred[None]:
    """
    Fire once every one of C{deferreds} has; fail with the first failure.
    """
    if not deferreds:
        return succeed(None)
    gathered: Deferred[Any] = gatherResults(deferreds, consumeErrors=True)
    gathered.addErrback(_firstFailure)
    return gathered.addCallback(lambda _: None)


def _firstFailure(failure: Failure) -> Failure:
    if isinstance(failure.value, FirstError):
        sub: Failure = failure.value.subFailure
        return sub
    return failure
