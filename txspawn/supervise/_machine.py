# -*- test-case-name: tests.test_supervise_program -*-
"""
The state machine of a supervised program (automat's
C{automat.TypeMachineBuilder}): which input is legal in which state, where it
leads, and which of the program's actions it runs.

The program (L{txspawn.supervise.program.ProgramProcess}) decides what an
event means (a failure, a give-up, a stable run: its module docstring has
the rules) and gives the machine that outcome as an input; the machine
keeps the states and the legal transitions.  An input given while another
transition runs (a spawn that fails at once, a readiness check that passes
at once) is run after it, by automat.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from automat import TypeMachineBuilder

from txspawn.supervise.states import ProgramState

__all__ = ["ProgramCore", "ProgramInputs", "buildMachine"]


class ProgramInputs(Protocol):
    """
    The inputs of a program's state machine.
    """

    def start(self) -> None:
        "A start was requested."

    def stop(self) -> None:
        "A stop was requested."

    def ready(self) -> None:
        "The readiness check passed."

    def notReady(self, why: str) -> None:
        "The readiness check failed."

    def retry(self) -> None:
        "The backoff delay is over."

    def restart(self, why: str) -> None:
        "A stable run exited and is restarted at once."

    def backOff(self, why: str) -> None:
        "A failed start or run: wait, then start again."

    def fail(self, why: str) -> None:
        "The program cannot be started: FATAL."

    def exit(self, why: str) -> None:
        "The child exited, and nothing else is to happen now."


class ProgramCore(Protocol):
    """
    What the machine's transitions do to the program.
    """

    failures: int
    restarts: int
    _notReadyWhy: str | None

    def _moved(self, new: ProgramState, why: str) -> None:
        "Record the new state and tell the observers."

    def _spawnChild(self) -> None:
        "Spawn a child (a failure becomes the next input)."

    def _terminate(self) -> None:
        "Send the stop signal; SIGKILL after the stop timeout."

    def _scheduleRetry(self) -> None:
        "Start the backoff delay."

    def _cancelRetry(self) -> None:
        "Cancel the backoff delay."


# automat takes the core's type for typing only: a Protocol is what it is.
_builder = TypeMachineBuilder(ProgramInputs, ProgramCore)  # type: ignore[type-abstract]
_stopped = _builder.state("STOPPED")
_starting = _builder.state("STARTING")
_running = _builder.state("RUNNING")
_backoff = _builder.state("BACKOFF")
_stopping = _builder.state("STOPPING")
_exited = _builder.state("EXITED")
_fatal = _builder.state("FATAL")


@_stopped.upon(ProgramInputs.start).to(_starting)
@_exited.upon(ProgramInputs.start).to(_starting)
@_fatal.upon(ProgramInputs.start).to(_starting)
def _startRequested(inputs: ProgramInputs, program: ProgramCore) -> None:
    program.failures = 0
    program._moved(ProgramState.STARTING, "start requested")
    program._spawnChild()


@_backoff.upon(ProgramInputs.retry).to(_starting)
def _retried(inputs: ProgramInputs, program: ProgramCore) -> None:
    program.restarts += 1
    program._moved(ProgramState.STARTING, "backoff delay over")
    program._spawnChild()


@_exited.upon(ProgramInputs.restart).to(_starting)
def _restarted(inputs: ProgramInputs, program: ProgramCore, why: str) -> None:
    program.restarts += 1
    program._moved(ProgramState.STARTING, why)
    program._spawnChild()


@_starting.upon(ProgramInputs.ready).to(_running)
def _becameReady(inputs: ProgramInputs, program: ProgramCore) -> None:
    program._moved(ProgramState.RUNNING, "ready")


@_starting.upon(ProgramInputs.notReady).loop()
def _neverReady(inputs: ProgramInputs, program: ProgramCore, why: str) -> None:
    program._notReadyWhy = why
    program._terminate()


@_starting.upon(ProgramInputs.backOff).to(_backoff)
@_exited.upon(ProgramInputs.backOff).to(_backoff)
def _backingOff(inputs: ProgramInputs, program: ProgramCore, why: str) -> None:
    program._moved(ProgramState.BACKOFF, why)
    program._scheduleRetry()


@_starting.upon(ProgramInputs.fail).to(_fatal)
@_exited.upon(ProgramInputs.fail).to(_fatal)
def _gaveUp(inputs: ProgramInputs, program: ProgramCore, why: str) -> None:
    program._moved(ProgramState.FATAL, why)


@_starting.upon(ProgramInputs.exit).to(_exited)
@_running.upon(ProgramInputs.exit).to(_exited)
def _exitedOnItsOwn(inputs: ProgramInputs, program: ProgramCore, why: str) -> None:
    program._moved(ProgramState.EXITED, why)


@_stopping.upon(ProgramInputs.exit).to(_stopped)
def _stoppedNow(inputs: ProgramInputs, program: ProgramCore, why: str) -> None:
    program._moved(ProgramState.STOPPED, why)


@_starting.upon(ProgramInputs.stop).to(_stopping)
@_running.upon(ProgramInputs.stop).to(_stopping)
def _stopRequested(inputs: ProgramInputs, program: ProgramCore) -> None:
    program._moved(ProgramState.STOPPING, "stop requested")
    program._terminate()


@_backoff.upon(ProgramInputs.stop).to(_stopped)
def _stopBackingOff(inputs: ProgramInputs, program: ProgramCore) -> None:
    program._cancelRetry()
    program._moved(ProgramState.STOPPED, "stop requested")


def _nothing(inputs: ProgramInputs, program: ProgramCore) -> None:
    """
    A request that means nothing in this state.
    """


for _state in (_starting, _running, _backoff, _stopping):
    _state.upon(ProgramInputs.start).loop()(_nothing)
for _state in (_stopped, _stopping, _exited, _fatal):
    _state.upon(ProgramInputs.stop).loop()(_nothing)

#: Makes the machine of one program: C{buildMachine(core)} gives its inputs.
buildMachine: Callable[[ProgramCore], ProgramInputs] = _builder.build()
del _state
