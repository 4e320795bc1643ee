# -*- test-case-name: tests.test_interfaces -*-
"""
Interfaces for txspawn's plug points.

  - L{ISpawner}: an engine: turns a L{txspawn._plan.SpawnPlan} plus concrete
    parent fds into a running child.  txspawn ships a Python engine and a C
    engine; both honour the same contract and pass the same test suite.
  - L{IChildMonitor}: notices that children exited and reaps them.  txspawn
    ships a pidfd monitor and a SIGCHLD fallback.

@since: txspawn 0.1
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["ISpawner", "IChildMonitor"]


class ISpawner(Interface):
    """
    An engine that starts child processes.

    Contract:

      - C{spawn} either returns a running child that has successfully called
        C{execve}, or raises L{txspawn.errors.SpawnError} with the child
        already reaped and nothing leaked.
      - The child ends up with exactly the fds in C{fdMap} (child fd to
        parent fd), without C{FD_CLOEXEC}, and nothing else open.
      - Every signal disposition is C{SIG_DFL} in the child and its mask is
        C{plan.signalMask}.
      - The parent's fds are left as they were: closing the child ends of
        pipes is the caller's job.
    """

    name = Attribute("A short name for the engine: C{'python'} or C{'c'}.")

    def spawn(plan, fdMap, ttyName):  # type: ignore[no-untyped-def]
        """
        Start one child.

        @param plan: A L{txspawn._plan.SpawnPlan}.
        @param fdMap: C{Mapping[int, int]}: child fd to parent fd.  For a pty
            plan this is C{{0: slave, 1: slave, 2: slave}}.
        @param ttyName: For a pty plan, the slave's path (C{bytes}), which
            the child opens (or C{TIOCSCTTY}s) after C{setsid} to make it
            the controlling terminal; else C{None}.
        @return: a L{txspawn._child.ChildProcess}.
        @raise txspawn.errors.SpawnError: on any failure.
        """


class IChildMonitor(Interface):
    """
    Watches children of one reactor and reaps each exactly once.

    A monitor never reaps a pid it was not asked to watch (no
    C{waitpid(-1)}).
    """

    name = Attribute("A short name: C{'pidfd'} or C{'sigchld'}.")

    def watch(child, exited):  # type: ignore[no-untyped-def]
        """
        Start watching C{child}; call C{exited(child)} once, from the reactor
        thread, after the child has been reaped (C{child.status} and
        C{child.rusage} are then set, and its pidfd closed).  A child that
        already exited is noticed promptly (reap-on-register).

        @param child: a L{txspawn._child.ChildProcess}.
        @param exited: C{Callable[[ChildProcess], None]}.
        """

    def install():  # type: ignore[misc]
        """
        Set up whatever process-global state the monitor needs (the SIGCHLD
        monitor's handler and wakeup fd).  Reaps children that exited before
        the call.  Idempotent.
        """

    def uninstall():  # type: ignore[misc]
        """
        Undo L{install} exactly, restoring the previous handler and wakeup
        fd.  Idempotent.
        """
