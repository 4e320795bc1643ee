# -*- test-case-name: tests.test_namespaceoptions -*-
"""
Fault injection, for tests only: make the next spawns fail at one step of
the child's setup, with a chosen errno, on either engine.

Some failures cannot be provoked on demand (a C{sethostname} or a C{/proc}
mount that fails, a map write refused by a security module), yet their
clean-up paths must be tested.  Inside C{with injectChildFault(stage,
err):}, L{txspawn._plan.planner.planSpawn} copies C{(stage, err)} into
L{txspawn._plan.plan.SpawnPlan.injectedFault}, and the engine, at the step
of that stage (the namespace stages and the C{SETGID}/C{SETUID} of the
early ids, and C{CGROUP}: the child's placement in its cgroup leaf, on
both engines and however it was placed), fails as if the step had failed
with C{err}, after every earlier step ran.  A stage the spawn does not
have (C{CGROUP} without a leaf) changes nothing.

A L{ContextVar} holds it, so a fault set in one test (or one task) is not
seen by another.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from txspawn.errors import ChildSetupStage

__all__ = ["currentFault", "injectChildFault"]

_fault: ContextVar[tuple[int, int] | None] = ContextVar(
    "txspawn._plan.faultinjection._fault", default=None
)


@contextmanager
def injectChildFault(stage: ChildSetupStage, err: int) -> Iterator[None]:
    """
    Make every spawn planned inside the block fail at C{stage} with errno
    C{err}.

    @param stage: The step to fail.
    @param err: The errno the step fails with (positive).
    @raise ValueError: If C{err} is not a positive errno.
    """
    if err <= 0:
        raise ValueError(f"injectChildFault: errno must be positive, not {err!r}")
    token = _fault.set((int(ChildSetupStage(stage)), err))
    try:
        yield
    finally:
        _fault.reset(token)


def currentFault() -> tuple[int, int] | None:
    """
    The fault to inject into the spawn being planned now, as
    C{(stage, errno)}, or C{None}.
    """
    return _fault.get()
