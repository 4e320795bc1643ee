# -*- test-case-name: tests.test_pyspawn_namespaces -*-
"""
Tests for the Python engine's namespace mechanics
(L{txspawn._engine.forkpath.spawnInNamespaces} and
L{txspawn._engine.forknamespaces}), on real children: the fork child
enters the namespaces with C{unshare}, the parent writes the maps it cannot
write itself, and with a pid namespace a raw C{clone(CLONE_PARENT)} makes
pid 1 a child of this process while the fork child exits and is reaped.

What a namespaced child sees is tested on both engines elsewhere
(C{tests/test_namespaces*.py}); these tests are about how the Python engine
gets there: pid 1 is our own child and no intermediate zombie is left, the
parent-written maps are in place before the child goes on, every failure
(real or injected, before or after the handoff to pid 1) comes back with
its stage and leaves nothing, and neither does an exception (a signal
handler's C{KeyboardInterrupt}) at any point of a spawn or of its
clean-up.

No reactor is involved: the tests call L{PythonSpawner.spawn} directly.
Every test checks in its clean-up that the fd set is unchanged and that no
child (alive or zombie) is left.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
from types import FrameType
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.engineutil import makePlan
from tests.hygiene import HygieneMixin, childrenOf, openFDs
from tests.test_rollback_interrupts import (
    Interrupter,
    requireCCleanup,
    starting,
    sweep,
    txspawnPoints,
)
from txspawn._engine.parentsyscalls import ParentSyscalls
from txspawn._engine.pyengine import PythonSpawner
from txspawn._kernel.childhandle import ChildProcess, recordCall
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn.errors import ChildSetupStage, SpawnError, UnsupportedFeature

CAT = (shutil.which("cat") or "/bin/cat").encode()

#: C{<linux/sched.h>}, C{<sys/mount.h>}.
USER = 0x10000000
PID = 0x20000000
MOUNT = 0x00020000
NET = 0x40000000
UTS = 0x04000000
IPC = 0x08000000
CGROUP = 0x02000000
MS_SLAVE = 1 << 19

#: An errno no namespace step fails with by itself: an injected fault.
FAULT = errno.ENOTUNIQ


def _unavailable() -> str | None:
    """
    Why this process cannot make a user namespace with a time namespace in
    it (the most these tests ask for), or C{None}.
    """
    tool = shutil.which("unshare")
    if tool is None:
        return "unshare(1) is not installed"
    done = subprocess.run(
        [tool, "--user", "--map-root-user", "--time", "true"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return f"no user and time namespaces here: {done.stderr.decode().strip()}"
    return None


UNAVAILABLE = _unavailable()


def initProgram() -> bytes:
    """
    txspawn's init, or skip the test.
    """
    try:
        from txspawn._kernel.initprogram import initProgram as find
    except ImportError as e:
        raise SkipTest(f"txspawn's init is not there yet: {e}") from None
    try:
        return find()
    except UnsupportedFeature as e:
        raise SkipTest(str(e)) from None


def selfMap(flags: int, parentMaps: bool = False, **kwargs: Any) -> NamespacePlan:
    """
    A plan for C{flags} and a user namespace whose root is our own euid and
    egid, the maps written by the child (or, with C{parentMaps}, by the
    parent: the mechanism for any map, tried here with one that needs no
    privilege).
    """
    return NamespacePlan(
        cloneFlags=USER | flags,
        uidMap=b"0 %d 1\n" % os.geteuid(),
        gidMap=b"0 %d 1\n" % os.getegid(),
        setgroups=b"deny",
        mapsByChild=not parentMaps,
        earlyIds=(0, 0),
        **kwargs,
    )


def status(pid: int) -> dict[str, str]:
    """
    C{/proc/<pid>/status} as a dict.
    """
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f)


class NamespaceSpawnMixin(HygieneMixin):
    """
    Spawning C{cat}, reading a pipe, in namespaces; and waiting for it.
    """

    def setUp(self: Any) -> None:
        if UNAVAILABLE is not None:
            raise SkipTest(UNAVAILABLE)
        self.setUpHygiene()
        self.spawner = PythonSpawner()
        self.null = self.devnull()

    def spawn(self: Any, ns: NamespacePlan, **kwargs: Any) -> tuple[ChildProcess, int]:
        """
        Spawn C{cat} in C{ns}, its stdin a pipe.

        @return: The child, and the pipe's write end (close it for the
            child to exit; see L{finish}).
        """
        stdin, stdinWrite = os.pipe2(os.O_CLOEXEC)
        null = self.null
        try:
            child = self.spawner.spawn(
                makePlan(CAT, argv=(b"cat",), namespaces=ns, **kwargs),
                {0: stdin, 1: null, 2: null},
                None,
            )
        except BaseException:
            os.close(stdinWrite)
            raise
        finally:
            os.close(stdin)
        return child, stdinWrite

    def finish(self: Any, child: ChildProcess, stdinWrite: int | None = None) -> int:
        """
        Close the child's stdin, reap it (through the child handle, which
        takes the command's status from txspawn's init) and close its fds.

        @return: Its wait status.
        """
        if stdinWrite is not None:
            os.close(stdinWrite)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        self.assertTrue(child.tryReap())
        child.closePidfd()
        self.assertIsNone(child.statusFd)
        result: int | None = child.status
        assert result is not None
        return result

    def newChildren(self: Any) -> set[int]:
        """
        Our children (alive or zombie) that the test made.
        """
        before: set[int] = self.childrenBefore
        return set(childrenOf(os.getpid())) - before

    def assertSpawnError(
        self: Any,
        ns: NamespacePlan,
        stage: ChildSetupStage,
        code: int,
        detail: int = 0,
        **kwargs: Any,
    ) -> SpawnError:
        """
        Spawning in C{ns} fails with C{stage}, C{code} and C{detail}, and
        leaves no child behind (the fd check comes after the test).
        """
        e: SpawnError = self.assertRaises(SpawnError, self.spawn, ns, **kwargs)
        self.assertEqual((e.stage, e.errno, e.detail), (stage, code, detail))
        self.assertEqual(self.newChildren(), set())
        return e


class HandoffTests(NamespaceSpawnMixin, SynchronousTestCase):
    """
    Who the child is: the fork child itself, or pid 1 made by it as a child
    of ours; where the maps are written.
    """

    def test_withoutPidNamespace(self) -> None:
        """
        Without a pid namespace the fork child is the child: ours, in the
        new namespaces.
        """
        child, stdinWrite = self.spawn(selfMap(UTS))
        try:
            self.assertEqual(int(status(child.pid)["PPid"]), os.getpid())
            self.assertEqual(status(child.pid)["NSpid"], str(child.pid))
            self.assertNotEqual(
                os.stat(f"/proc/{child.pid}/ns/user").st_ino,
                os.stat("/proc/self/ns/user").st_ino,
            )
            self.assertEqual(self.newChildren(), {child.pid})
        finally:
            self.assertEqual(self.finish(child, stdinWrite), 0)

    def test_pidOneIsOurChild(self) -> None:
        """
        With a pid namespace (the command as pid 1), the child returned is
        pid 1 of the namespace, and our own child; the fork child that made
        it is reaped already (no zombie), and pid 1 can be waited for.
        """
        child, stdinWrite = self.spawn(selfMap(PID | MOUNT))
        try:
            self.assertEqual(int(status(child.pid)["PPid"]), os.getpid())
            self.assertEqual(status(child.pid)["NSpid"], f"{child.pid}\t1")
            self.assertEqual(self.newChildren(), {child.pid})
            self.assertIsNotNone(child.pidfd)
        finally:
            self.assertEqual(self.finish(child, stdinWrite), 0)

    def test_pidOneExitStatus(self) -> None:
        """
        pid 1's wait status is the command's.
        """
        null = self.null
        child = self.spawner.spawn(
            makePlan(
                b"/bin/sh", argv=(b"sh", b"-c", b"exit 3"), namespaces=selfMap(PID)
            ),
            {0: null, 1: null, 2: null},
            None,
        )
        self.assertEqual(os.waitstatus_to_exitcode(self.finish(child)), 3)

    def test_pidOneUnderInit(self) -> None:
        """
        With txspawn's init, the child returned is init, pid 1 and our
        child, the command its pid 2; the child handle holds the status
        pipe's read end (non-blocking, close-on-exec), which gives it the
        command's status.
        """
        child, stdinWrite = self.spawn(selfMap(PID, init=initProgram()))
        try:
            self.assertEqual(int(status(child.pid)["PPid"]), os.getpid())
            self.assertEqual(status(child.pid)["NSpid"], f"{child.pid}\t1")
            self.assertEqual(status(child.pid)["Name"], "txspawn-init")
            self.assertEqual(self.newChildren(), {child.pid})
            [command] = childrenOf(child.pid)
            self.assertEqual(status(command)["NSpid"], f"{command}\t2")
            self.assertEqual(status(command)["Name"], "cat")
            assert child.statusFd is not None
            self.assertFalse(os.get_blocking(child.statusFd))
            self.assertFalse(os.get_inheritable(child.statusFd))
            os.kill(command, signal.SIGTERM)
        finally:
            result = self.finish(child, stdinWrite)
        self.assertTrue(os.WIFSIGNALED(result))
        self.assertEqual(os.WTERMSIG(result), signal.SIGTERM)

    def test_sigchldIgnored(self) -> None:
        """
        With C{SIGCHLD} ignored, the kernel reaps every child itself: the
        fork child leaves nothing, and pid 1 is still returned, with its
        pidfd, until it exits and is gone.
        """
        self.ignoreSignal(signal.SIGCHLD)
        child, stdinWrite = self.spawn(selfMap(PID, parentMaps=True))
        self.assertEqual(self.newChildren(), {child.pid})
        os.close(stdinWrite)
        assert child.pidfd is not None
        with self.assertRaises(ChildProcessError):
            os.waitid(os.P_PIDFD, child.pidfd, os.WEXITED)
        child.closePidfd()
        self.assertEqual(self.newChildren(), set())

    def test_parentWrittenMaps(self) -> None:
        """
        The parent writes the maps while the child waits: when the spawn
        returns, they are in place.
        """
        for flags in (0, PID):
            child, stdinWrite = self.spawn(selfMap(flags, parentMaps=True))
            try:
                with open(f"/proc/{child.pid}/uid_map") as f:
                    self.assertEqual(f.read().split(), ["0", str(os.geteuid()), "1"])
                with open(f"/proc/{child.pid}/setgroups") as f:
                    self.assertEqual(f.read(), "deny\n")
                self.assertEqual(self.newChildren(), {child.pid})
            finally:
                self.assertEqual(self.finish(child, stdinWrite), 0)

    def test_parentWrittenRanges(self) -> None:
        """
        Ranges of ids that are not ours (root only), with C{setgroups}
        allowed.
        """
        if os.geteuid() != 0:
            raise SkipTest("mapping other ids needs root")
        ns = NamespacePlan(
            cloneFlags=USER | PID,
            uidMap=b"0 100000 1000\n",
            gidMap=b"0 200000 1000\n",
            setgroups=b"allow",
            earlyIds=(0, 0),
        )
        child, stdinWrite = self.spawn(ns)
        try:
            with open(f"/proc/{child.pid}/gid_map") as f:
                self.assertEqual(f.read().split(), ["0", "200000", "1000"])
            self.assertEqual(status(child.pid)["Uid"].split()[0], "100000")
        finally:
            self.assertEqual(self.finish(child, stdinWrite), 0)

    def test_posixSpawnForced(self) -> None:
        """
        Namespaces need the fork path: with C{posix_spawn} forced, the
        spawn is refused before any child exists.
        """
        self.spawner = PythonSpawner(method="posix_spawn")
        e = self.assertRaises(UnsupportedFeature, self.spawn, selfMap(0))
        self.assertEqual(e.feature, "namespaces")


class FailureTests(NamespaceSpawnMixin, SynchronousTestCase):
    """
    A step that fails, in the fork child, in the parent or in pid 1, raises
    L{SpawnError} with the C engine's stage, errno and detail, and leaves
    no child and no fd.
    """

    def test_parentMapFailures(self) -> None:
        """
        A map file the parent cannot write: C{IDMAP}, the detail naming the
        file (1 C{setgroups}, 2 C{gid_map}, 3 C{uid_map}).
        """
        own = b"0 %d 1\n"
        overlapping = b"0 %d 1\n0 %d 1\n"
        uid, gid = os.geteuid(), os.getegid()
        for flags in (0, PID):
            for setgroups, gidMap, uidMap, detail in (
                (b"maybe", own % gid, own % uid, 1),
                (b"deny", overlapping % (gid, gid), own % uid, 2),
                (b"deny", own % gid, overlapping % (uid, uid), 3),
            ):
                ns = NamespacePlan(
                    cloneFlags=USER | flags,
                    uidMap=uidMap,
                    gidMap=gidMap,
                    setgroups=setgroups,
                    earlyIds=(0, 0),
                )
                self.assertSpawnError(ns, ChildSetupStage.IDMAP, errno.EINVAL, detail)

    def test_failureInPidOne(self) -> None:
        """
        A step after the handoff fails in pid 1 (a hostname too long), and
        its record still comes back on the error pipe.
        """
        self.assertSpawnError(
            selfMap(PID | UTS, hostname=b"h" * 65),
            ChildSetupStage.HOSTNAME,
            errno.EINVAL,
        )

    def test_initMissing(self) -> None:
        """
        txspawn's init that cannot be exec'd: C{INIT}.
        """
        self.assertSpawnError(
            selfMap(PID, init=b"/nonexistent/txspawn-init"),
            ChildSetupStage.INIT,
            errno.ENOENT,
        )

    def test_execFailureUnderInit(self) -> None:
        """
        The command that cannot be exec'd under txspawn's init: C{EXEC},
        from init's child, naming the executable.
        """
        e = self.assertSpawnError(
            selfMap(PID, init=initProgram()),
            ChildSetupStage.EXEC,
            errno.ENOENT,
            candidates=(b"/nonexistent/cat",),
        )
        self.assertEqual(e.filename, os.fsdecode(CAT))

    def everyStep(self, parentMaps: bool, init: bytes | None) -> NamespacePlan:
        """
        A plan with every namespace step.
        """
        return selfMap(
            PID | MOUNT | NET | UTS | IPC | CGROUP,
            parentMaps,
            hostname=b"h4",
            loopback=True,
            propagation=MS_SLAVE,
            mountProc=True,
            timeOffsets=b"monotonic 0 0\nboottime 0 0\n",
            init=init,
        )

    def injected(self, init: bytes | None) -> None:
        """
        An injected fault at each step of a plan that has them all fails
        there, with the step's stage and detail, and leaves nothing;
        without a fault, the same plan starts.
        """
        for parentMaps in (False, True):
            ns = self.everyStep(parentMaps, init)
            child, stdinWrite = self.spawn(ns)
            self.assertEqual(self.finish(child, stdinWrite), 0)
            for stage, detail in (
                (ChildSetupStage.NAMESPACES, 0),
                (ChildSetupStage.IDMAP, 1),
                (ChildSetupStage.SYNC, 0),
                (ChildSetupStage.SETGID, 0),
                (ChildSetupStage.SETUID, 0),
                (ChildSetupStage.HOSTNAME, 0),
                (ChildSetupStage.LOOPBACK, 0),
                (ChildSetupStage.MOUNT_PROPAGATION, 0),
                (ChildSetupStage.MOUNT_PROC, 0),
                (ChildSetupStage.TIME_OFFSETS, 1),
                (ChildSetupStage.INIT, 0),
            ):
                if stage == ChildSetupStage.SYNC and not parentMaps:
                    continue  # no such step
                if stage == ChildSetupStage.INIT and init is None:
                    continue
                self.assertSpawnError(
                    ns, stage, FAULT, detail, injectedFault=(int(stage), FAULT)
                )

    def test_injectedFaults(self) -> None:
        """
        See L{injected}: the command as pid 1.
        """
        self.injected(None)

    def test_injectedFaultsUnderInit(self) -> None:
        """
        See L{injected}: txspawn's init as pid 1.
        """
        self.injected(initProgram())

    def test_parentSyscallFailures(self) -> None:
        """
        A pipe that cannot be made fails with stage C{SPAWN}; a C{fork}
        that fails, with C{NAMESPACES}, as the C engine's clone with the
        namespace flags; a pidfd that cannot be opened for pid 1, with
        C{SPAWN}, pid 1 killed and reaped.
        """

        class NoPipe(ParentSyscalls):
            def pipe(self, into: list[int]) -> None:
                raise OSError(errno.EMFILE, "injected")

        class NoFork(ParentSyscalls):
            def fork(self, into: list[int]) -> int:
                raise OSError(errno.EAGAIN, "injected")

        class NoPidfd(ParentSyscalls):
            def pidfdOpen(self, pid: int, into: list[int]) -> int:
                raise OSError(errno.EMFILE, "injected")

        for syscalls, stage, code in (
            (NoPipe(), ChildSetupStage.SPAWN, errno.EMFILE),
            (NoFork(), ChildSetupStage.NAMESPACES, errno.EAGAIN),
            (NoPidfd(), ChildSetupStage.SPAWN, errno.EMFILE),
        ):
            self.spawner = PythonSpawner(syscalls=syscalls)
            for ns in (selfMap(PID, parentMaps=True), selfMap(PID, init=initProgram())):
                self.assertSpawnError(ns, stage, code)

    def test_faultAtAStepNotPlanned(self) -> None:
        """
        A fault at a step the plan does not have changes nothing.
        """
        child, stdinWrite = self.spawn(
            selfMap(0),
            injectedFault=(int(ChildSetupStage.SYNC), FAULT),
        )
        self.assertEqual(self.finish(child, stdinWrite), 0)


class InterruptTests(NamespaceSpawnMixin, SynchronousTestCase):
    """
    An exception (a signal handler's C{KeyboardInterrupt}) at any point of
    a namespace spawn, or at any point of the clean-up of one interrupted
    already, leaves no child, no zombie and no fd: the fork child, pid 1,
    the pipes (error, sync, status) are all recorded as they are made (see
    L{tests.test_rollback_interrupts} for the method).
    """

    def setUp(self) -> None:
        super().setUp()
        requireCCleanup(self)
        self.me = os.getpid()

    def counts(self, frame: FrameType, event: str, arg: object) -> bool:
        """
        L{txspawnPoints}, in this process only (the fork child and pid 1
        inherit the profile function: no point of theirs counts), and not
        the start of a Python function that a C function called inside
        L{recordCall}: those are C{os.fork}'s at-fork hooks (C{logging}'s),
        where CPython swallows any exception (and C{logging} is left with
        its lock in disorder), txspawn's or not.
        """
        if os.getpid() != self.me:
            return False
        if event == "call" and frame.f_back is not None:
            if frame.f_back.f_code is recordCall.__code__:
                return False
        return txspawnPoints(frame, event, arg)

    def attempt(
        self, ns: NamespacePlan, firstAt: str | None, point: int, **kwargs: Any
    ) -> bool:
        """
        Spawn in C{ns}, interrupted at the start of C{firstAt} then at the
        C{point}th point after (or only there, with C{firstAt=None}); check
        that nothing is left.

        @return: Whether the run had that many points.
        """
        before = openFDs()
        where = f"interrupted at {firstAt}, then at {point}"
        first = starting(firstAt) if firstAt is not None else None
        with Interrupter(first, point, self.counts) as interrupter:
            try:
                child, stdinWrite = self.spawn(ns, **kwargs)
            except KeyboardInterrupt:
                child = None
            except SpawnError:
                if not kwargs:
                    raise
                child = None
        if child is not None:
            self.assertFalse(interrupter.secondFired, where)
            self.finish(child, stdinWrite)
        self.assertNoNewChildren(f"{where} ({interrupter.secondAt})")
        self.assertEqual(openFDs(), before, f"{where} ({interrupter.secondAt})")
        return interrupter.secondFired

    def sweepAll(self, ns: NamespacePlan, firstAt: str | None, **kwargs: Any) -> None:
        """
        L{attempt} at every point.
        """
        points = sweep(lambda point: self.attempt(ns, firstAt, point, **kwargs))
        self.assertGreater(points, 0)

    def test_anywhere(self) -> None:
        """
        Interrupted once, anywhere in the spawn: pid namespace, parent
        maps.
        """
        self.sweepAll(selfMap(PID | MOUNT, parentMaps=True, mountProc=True), None)

    def test_anywhereUnderInit(self) -> None:
        """
        Interrupted once, anywhere in the spawn of txspawn's init (with its
        status pipe).
        """
        self.sweepAll(selfMap(PID, init=initProgram()), None)

    def test_anywhereWithoutPidNamespace(self) -> None:
        """
        Interrupted once, anywhere: no pid namespace, parent maps.
        """
        self.sweepAll(selfMap(UTS, parentMaps=True), None)

    def test_cleanUpAfterHandoff(self) -> None:
        """
        Interrupted as the engine opens pid 1's pidfd, then anywhere in the
        clean-up.
        """
        self.sweepAll(selfMap(PID, parentMaps=True), "_withPidfd")

    def test_cleanUpWhileReading(self) -> None:
        """
        Interrupted as the parent starts reading the error pipe (pid 1 may
        or may not exist yet), then anywhere in the clean-up.
        """
        self.sweepAll(selfMap(PID, parentMaps=True), "readFailure")

    def test_cleanUpOfAFailure(self) -> None:
        """
        A failure in pid 1, then an interrupt anywhere in its clean-up.
        """
        self.sweepAll(
            selfMap(PID | UTS, hostname=b"h4"),
            "failureError",
            injectedFault=(int(ChildSetupStage.HOSTNAME), FAULT),
        )
