# -*- test-case-name: tests.test_interfaces -*-
"""
Interfaces for txspawn's plug points.

  - L{ISpawner}: an engine: turns a L{txspawn._plan.plan.SpawnPlan} plus concrete
    parent fds into a running child.  txspawn ships a Python engine and a C
    engine; both honour the same contract and pass the same test suite.
  - L{IChildMonitor}: notices that children exited and reaps them.  txspawn
    ships a pidfd monitor and a SIGCHLD fallback.
  - L{IProcessStateObserver}: a process protocol that also wants to hear
    when its child is stopped or continued.
  - L{IProcessTreeObserver}: a process protocol that also wants to hear
    when every process of its child's cgroup has exited.
  - L{IManagedProcessTransport}: what txspawn's process transports add to
    Twisted's C{IProcessTransport} (process groups, termination, exit
    listeners, the child's cgroup).
  - L{IReactorSpawn}: a reactor whose C{spawnProcess} takes txspawn's
    keyword options.

@since: txspawn 0.1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IProcessTransport
from zope.interface import Attribute, Interface

from txspawn.options import CgroupStats

__all__ = [
    "IChildMonitor",
    "IManagedProcessTransport",
    "IProcessStateObserver",
    "IProcessTreeObserver",
    "IReactorSpawn",
    "ISpawner",
]


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

    def spawn(plan, fdMap, ttyName, cgroupLeaf=None):  # type: ignore[no-untyped-def]
        """
        Start one child.

        @param plan: A L{txspawn._plan.plan.SpawnPlan}.
        @param fdMap: C{Mapping[int, int]}: child fd to parent fd.  For a pty
            plan this is C{{0: slave, 1: slave, 2: slave}}.
        @param ttyName: For a pty plan, the slave's name (C{bytes}: that of
            the pty the transport opened, or what the caller's C{usePTY} tuple
            says, unchecked); else C{None}.  No engine opens it: the child
            gets its terminal from C{fdMap} alone (after C{setsid}, the C
            engine and the Python engine's fork path C{TIOCSCTTY} fd 0, and
            its C{posix_spawn} path reopens the slave through
            C{/proc/self/fd/<slave>}), so a name naming another terminal
            changes nothing, as with Twisted.  Only whether it is given
            matters: the Python engine takes a pty plan without a name
            (C{None}) to its fork path.
        @param cgroupLeaf: A L{txspawn._cgroup.leaf.CgroupLeaf} the child is
            placed in before it runs any step of the plan, or C{None}.  The
            C engine clones it there (C{clone3(CLONE_INTO_CGROUP)}); where
            that is refused, or the kernel kills the child before it runs
            (then C{cgroupLeaf.parent.cloneInto} says why, and later spawns
            skip it), and on the Python engine, the child writes itself
            into the leaf's C{cgroup.procs} as its first step.  Either way
            the engine tells the leaf how (C{cgroupLeaf.placed(placement,
            note)}, C{"clone"} or C{"procs"}, the note saying why not by
            the clone).  A failure to place it is a
            L{txspawn.errors.SpawnError} of stage C{CGROUP}, with the child
            reaped and the leaf left as it was: the caller discards it.
        @return: a L{txspawn._kernel.childhandle.ChildProcess}.
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
        C{child.rusage} are then set; its pidfd, if any, is closed by the
        time C{exited} returns).  A child that
        already exited is noticed promptly (reap-on-register).

        @param child: a L{txspawn._kernel.childhandle.ChildProcess}.
        @param exited: C{Callable[[ChildProcess], None]}.
        """

    def reapIfExited(child):  # type: ignore[no-untyped-def]
        """
        Reap the watched C{child} now if it has exited, without waiting for
        the monitor's own event; if it is reaped, its C{exited} callback has
        run by the time this returns, exactly as if the event had come.

        For a transport whose pipes all reached end of file: a process's
        fds are closed in its exit path just before it becomes a zombie, so
        the child has almost always exited by then, and reporting it at
        once saves the reactor an iteration (Twisted's own
        C{Process.maybeCallProcessEnded} reaps at that point too).  A child
        that is still running (it closed its pipes and went on) costs one
        non-blocking C{wait4} and stays watched.

        The spawner also calls it, after killing and reaping the child,
        when C{spawnProcess} is raising after C{watch} was called (C{watch}
        itself failed, or an exception such as C{KeyboardInterrupt}
        interrupted it or came after it): a monitor that recorded the child
        then reports it and drops it.

        @param child: a L{txspawn._kernel.childhandle.ChildProcess}.
        @return: C{bool}: whether the child is reaped now.  A child this
            monitor does not watch is left alone (no syscall).
        """

    def install() -> None:
        """
        Set up whatever process-global state the monitor needs (the SIGCHLD
        monitor's handler and wakeup fd).  Reaps children that exited before
        the call.  Idempotent.
        """

    def uninstall() -> None:
        """
        Undo L{install} exactly, restoring the previous handler and wakeup
        fd.  Idempotent.
        """


class IProcessStateObserver(Interface):
    """
    A process protocol that wants to know when its child is stopped
    (C{SIGSTOP}, C{SIGTSTP}, C{SIGTTIN}, C{SIGTTOU}) or continued
    (C{SIGCONT}).

    Declare it on the protocol (C{@implementer(IProcessStateObserver)});
    the methods are called from the reactor thread, between
    C{makeConnection} and C{processExited}.  Protocols that do not provide
    it cost nothing: no C{SIGCHLD} handler is installed and no syscall is
    made for them.  Providing it needs C{SIGCHLD} (a pidfd does not wake up
    on stops), so such a protocol can only be spawned from the main thread;
    elsewhere C{spawnProcess} raises L{txspawn.errors.UnsupportedFeature}
    before starting anything.  Events that follow each other faster than
    the reactor looks may be merged (a stop then a continue may be reported
    as the continue alone).

    @since: txspawn 0.1
    """

    def processStopped(signal: int) -> None:
        """
        The child was stopped.

        @param signal: The signal that stopped it (C{int}).
        """

    def processContinued() -> None:
        """
        The stopped child was continued.
        """


class IProcessTreeObserver(Interface):
    """
    A process protocol that wants to know when every process of its
    child's cgroup has exited: the child I{and} everything it started,
    daemons that called C{setsid} or were orphaned included (the cgroup's
    C{populated} turned 0).

    Declare it on the protocol (C{@implementer(IProcessTreeObserver)}) and
    spawn the child with C{cgroup=} (L{txspawn.options.Cgroup}).  The
    method is called once, from the reactor thread, after C{processEnded}
    (right after it when the tree was already empty then; later when
    descendants outlive the child, as they do with C{killOnExit=False}).
    It is never called for a child that has no cgroup (spawned without
    C{cgroup=}, or with C{required=False} when none could be had).

    @since: txspawn 0.1
    """

    def processTreeEnded(stats: CgroupStats) -> None:
        """
        Every process of the child's cgroup has exited.

        @param stats: The cgroup's statistics read then: a
            L{txspawn.options.CgroupStats} covering the whole tree (its
            final CPU time; its C{path} is about to be removed).
        """


class IManagedProcessTransport(IProcessTransport):
    """
    A process transport with txspawn's additions for managing the child's
    lifetime and its descendants.

    @since: txspawn 0.1
    """

    processGroup = Attribute(
        "The pgid of the process group the child leads (its pid: spawned "
        "with C{processGroup=0}, C{newSession=True} or C{usePTY}), or "
        "C{None} if it does not lead one.  Still set after the child exited."
    )

    cgroupPath = Attribute(
        "The path of the child's own cgroup v2 leaf (C{str}), while the "
        "leaf exists (spawned with C{cgroup=}); C{None} without a cgroup and "
        "once the leaf was removed (after every process in it exited)."
    )

    cgroupUnavailable = Attribute(
        "Why the child has no cgroup although it was spawned with "
        "C{cgroup=Cgroup(required=False)} (C{str}: the reason and a hint), "
        "else C{None}.  With C{required=True} the spawn raises "
        "L{txspawn.errors.UnsupportedFeature} instead."
    )

    cgroupStats = Attribute(
        "The statistics of the child's cgroup (L{txspawn.options.CgroupStats}): "
        "those read when the child was reaped (its exit reason's C{cgroup}), "
        "replaced by the final ones once every process of the cgroup has "
        "exited (those given to L{IProcessTreeObserver.processTreeEnded}); "
        "C{None} before the child is reaped, and without a cgroup."
    )

    timedOut = Attribute(
        "Whether the C{timeout} spawn option expired and started the "
        "child's termination."
    )

    spawnedPid = Attribute(
        "The pid the child was started with (C{int}), kept after the child "
        "was reaped, when C{pid} becomes C{None} as with Twisted's "
        "transports: what names the child in an exit listener or a log "
        "line.  Never signal it: once the child is reaped the number may "
        "belong to another process."
    )

    rusage = Attribute(
        "The child's C{resource.struct_rusage} from C{wait4} once it was "
        "reaped, else C{None}; the exit reason carries the same object as "
        "its C{rusage} attribute.  It covers the child and the descendants "
        "it waited for itself.  Its C{ru_maxrss} (KiB) is I{not} the "
        "child's own peak memory: it is the largest resident set of any "
        "address space the child ran in, and a child started with "
        "C{CLONE_VM} (the C engine, C{posix_spawn}) ran in its parent's "
        "until C{execve}, so it reports at least the parent's peak RSS up "
        "to the spawn; a forked child, about the private memory the parent "
        "had resident.  It is at least the child's own peak after "
        "C{execve}.  The child's own peak is the C{memory.peak} of a cgroup "
        "holding only the child."
    )

    def signalProcessGroup(signalID: str | int) -> None:
        """
        Send a signal to the whole process group the child leads, safely:
        only while the group leader is unreaped, so the pgid cannot belong
        to anyone else.

        @param signalID: As for C{signalProcess}: C{"HUP"}, C{"STOP"},
            C{"INT"}, C{"KILL"}, C{"TERM"} or a signal number.
        @raise ValueError: the child does not lead a process group, or the
            signal is unknown.
        @raise twisted.internet.error.ProcessExitedAlready: the child has
            been reaped (no syscall is made).
        """

    def terminate(killAfter: float = 5.0) -> None:
        """
        Send C{SIGTERM}, then C{SIGKILL} C{killAfter} seconds later, to the
        process group the child leads (else to the child).  If the leader
        exits first while members of its group remain, they get C{SIGKILL}
        before the leader is reaped.  A second call while a termination is
        in progress does nothing.

        With a cgroup (C{cgroup=}), the C{SIGKILL} step is L{killTree}: it
        reaches every process of the cgroup, wherever it moved in the
        process tree; and if the child exits during the grace period while
        its cgroup still has processes, they are killed at once.

        @param killAfter: The grace period in seconds (C{>= 0}).
        @raise twisted.internet.error.ProcessExitedAlready: the child has
            been reaped.
        """

    def killTree() -> None:
        """
        Kill every process in the child's cgroup now (C{cgroup.kill}:
        C{SIGKILL} to each, daemons that left the child's session or
        process group included).  It works after the child itself was
        reaped, for whatever it left behind, as long as the cgroup exists;
        once the cgroup was removed (it was empty) it does nothing.

        @raise ValueError: the child has no cgroup (it was spawned without
            C{cgroup=}, or none could be had: see L{cgroupUnavailable}).
        @raise OSError: C{cgroup.kill} could not be written.
        """

    def addExitListener(listener: Callable[[Any], object]) -> None:
        """
        Have C{listener(transport)} called once the process ended (after
        C{processEnded}); at once if it already has.  Its exceptions are
        logged.  The transport's C{pid} is C{None} by then; its
        L{spawnedPid} names the child that ended.
        """

    def removeExitListener(listener: Callable[[Any], object]) -> None:
        """
        Undo one L{addExitListener}.

        @raise ValueError: C{listener} is not registered.
        """

    def whenEnded() -> Deferred[ProcessDone | ProcessTerminated]:
        """
        @return: A new C{Deferred} firing, after C{processEnded} and the exit
            listeners, with the exit reason: the L{ProcessDone} or
            L{ProcessTerminated} I{instance} (never a failure).  Its
            C{rusage} attribute has the child's resource usage (see
            L{rusage} for what C{ru_maxrss} means).
        """


class IReactorSpawn(Interface):
    """
    A reactor whose C{spawnProcess} (of
    L{twisted.internet.interfaces.IReactorProcess}) also takes txspawn's
    keyword-only spawn options: those of L{txspawn.options.SpawnOptions}
    (C{umask}, C{groups}, C{newSession}, C{processGroup}, C{rlimits},
    C{deathSignal}, C{namespaces}, C{cgroup}) and the lifetime options
    C{timeout}, C{killAfter} and C{closePipesAfterExit}; it checks them as
    txspawn's reactors do, before anything is started.  (It declares no
    method of its own: it says how the reactor's L{IReactorProcess
    <twisted.internet.interfaces.IReactorProcess>} behaves.)

    txspawn's reactor classes (L{txspawn.reactor}) and
    L{txspawn.testing.MemoryProcessReactor} provide it.  L{txspawn.run} and
    L{txspawn.stream} pass spawn options only to a reactor that provides it
    or that L{txspawn.install} was called on; given any other, they raise
    L{txspawn.errors.UnsupportedFeature}.

    @since: txspawn 0.1
    """
