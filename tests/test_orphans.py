"""
Tests for L{txspawn._monitor.orphans}: children that outlive their reactor are
reaped in the background, never left as zombies.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import pwd
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.builders import MixinBase, makeTestCaseClasses
from tests.engineutil import othersCanExecute, pythonForAnyUser
from tests.hygiene import childrenOf, openFDs
from txspawn._kernel.childhandle import ChildProcess
from txspawn._monitor.orphans import adoptOrphans, orphanCount

#: Runs reactors under an exhausted RLIMIT_NPROC as an unprivileged user.
NPROC_HELPER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "helpers", "orphans_nproc.py"
)


def waitForOrphans(timeout: float = 30.0) -> None:
    """
    Block until every adopted child has been reaped.
    """
    deadline = time.monotonic() + timeout
    while orphanCount():
        if time.monotonic() > deadline:
            raise AssertionError(f"{orphanCount()} orphans never reaped")
        time.sleep(0.005)


def joinReapers(test: SynchronousTestCase, timeout: float = 30.0) -> None:
    """
    Wait for the orphan-reaper threads to finish, as each must once every
    child it waits for is reaped, and fail C{test} if one does not.  (A
    child left to no thread is then still counted by L{orphanCount}.)
    """
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name == "txspawn-orphan-reaper":
            thread.join(max(0.0, deadline - time.monotonic()))
            test.assertFalse(thread.is_alive(), f"{thread!r} never finished")


class FDLimit:
    """
    A real C{EMFILE}: C{RLIMIT_NOFILE} lowered to just above the highest open
    fd and every free number below it filled, so that no fd can be opened.
    """

    def __init__(self) -> None:
        self.limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.fillers: list[int] = []
        self.active = False

    def exhaust(self) -> None:
        """
        Make every C{open()} fail with C{EMFILE} until L{restore}.
        """
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(openFDs()) + 1, self.limits[1]))
        self.active = True
        while True:
            try:
                self.fillers.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
            except OSError as e:
                assert e.errno == errno.EMFILE, e
                return

    def restore(self) -> None:
        """
        Close the fillers and put the limit back (idempotent).
        """
        while self.fillers:
            os.close(self.fillers.pop())
        if self.active:
            self.active = False
            resource.setrlimit(resource.RLIMIT_NOFILE, self.limits)


def spawnBlocked(pidfd: bool = True) -> tuple[ChildProcess, int]:
    """
    Start C{sh} waiting for EOF on its stdin, then exiting 3.

    @return: The child and the write end of its stdin pipe.
    """
    readFD, writeFD = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(
            "/bin/sh",
            [b"sh", b"-c", b"read x; exit 3"],
            {},
            file_actions=[(os.POSIX_SPAWN_DUP2, readFD, 0)],
        )
    finally:
        os.close(readFD)
    return ChildProcess(pid, os.pidfd_open(pid) if pidfd else None), writeFD


class AdoptOrphansTests(SynchronousTestCase):
    """
    L{adoptOrphans} with children started directly.
    """

    def setUp(self) -> None:
        self.fdsBefore = set(os.listdir("/proc/self/fd"))

    def tearDown(self) -> None:
        waitForOrphans()
        self.assertEqual(set(os.listdir("/proc/self/fd")), self.fdsBefore)

    def test_reapedWhenItExits(self) -> None:
        """
        An adopted child is reaped, with its status, once it exits; its
        pidfd is closed and it is no zombie.
        """
        child, release = spawnBlocked()
        adoptOrphans([child])
        self.assertEqual(orphanCount(), 1)
        self.assertIn(child.pid, childrenOf(os.getpid()))
        os.close(release)
        waitForOrphans()
        self.assertTrue(child.reaped)
        self.assertEqual(child.status, 3 << 8)
        self.assertIsNone(child.pidfd)
        self.assertNotIn(child.pid, childrenOf(os.getpid()))

    def test_withoutPidfd(self) -> None:
        """
        A child that had no pidfd gets one (it is still unreaped, so
        C{pidfd_open} is race-free) and is reaped the same way.
        """
        child, release = spawnBlocked(pidfd=False)
        adoptOrphans([child])
        os.close(release)
        waitForOrphans()
        self.assertEqual(child.status, 3 << 8)
        self.assertIsNone(child.pidfd)

    def test_alreadyExited(self) -> None:
        """
        A child that exited before adoption is reaped on the spot; a child
        already reaped is ignored.
        """
        child, release = spawnBlocked()
        os.close(release)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        adoptOrphans([child])
        self.assertTrue(child.reaped)
        self.assertEqual(orphanCount(), 0)
        self.assertIsNone(child.pidfd)
        adoptOrphans([child])
        self.assertEqual(orphanCount(), 0)

    def test_withoutPidfdUnderFDLimit(self) -> None:
        """
        A child without a pidfd, adopted while no fd can be opened (so none
        can be opened for it either), is still reaped once it exits: its
        thread looks at it by pid until it can.
        """
        child, release = spawnBlocked(pidfd=False)
        self.addCleanup(os.close, release)
        limit = FDLimit()
        self.addCleanup(limit.restore)
        limit.exhaust()
        adoptOrphans([child])
        # Ended by a signal: releasing it through its pipe would free an fd.
        os.kill(child.pid, signal.SIGTERM)
        joinReapers(self)
        limit.restore()
        self.assertEqual(orphanCount(), 0)
        self.assertTrue(child.reaped)
        self.assertEqual(child.status, signal.SIGTERM)
        self.assertIsNone(child.pidfd)
        self.assertNotIn(child.pid, childrenOf(os.getpid()))

    def test_manyInAnyOrder(self) -> None:
        """
        Children adopted in several batches, exiting in another order, are
        each reaped once; the reaper thread retires when none is left and a
        later adoption starts a new one.
        """
        batch1 = [spawnBlocked() for _ in range(5)]
        adoptOrphans(child for child, _ in batch1)
        batch2 = [spawnBlocked() for _ in range(5)]
        adoptOrphans(child for child, _ in batch2)
        self.assertEqual(orphanCount(), 10)
        for _, release in reversed(batch1 + batch2):
            os.close(release)
        waitForOrphans()
        self.assertEqual([child.status for child, _ in batch1 + batch2], [3 << 8] * 10)
        child, release = spawnBlocked()
        adoptOrphans([child])
        os.close(release)
        waitForOrphans()
        self.assertTrue(child.reaped)


class _Silent(ProcessProtocol):
    pass


class ReactorShutdownMixin(MixinBase):
    """
    A child still running when its reactor stops is reaped once it exits,
    on every engine and monitor.
    """

    def test_childOutlivesReactor(self) -> None:
        """
        Stopping the reactor right after spawning (as Twisted's own
        C{test_pauseAndResumeProducing} does) leaves no zombie once the
        child exits.
        """
        reactor = self.buildReactor()
        readFD, writeFD = os.pipe2(os.O_CLOEXEC)
        self.addCleanup(os.close, readFD)
        transports = []

        def spawn() -> None:
            transports.append(
                reactor.spawnProcess(
                    _Silent(),
                    "/bin/sh",
                    ["sh", "-c", "read x; exit 0"],
                    childFDs={0: readFD},
                )
            )
            reactor.stop()

        reactor.callWhenRunning(spawn)
        self.runReactor(reactor)
        (transport,) = transports
        pid = transport.pid
        self.assertIsNotNone(pid)
        self.assertIn(pid, childrenOf(os.getpid()))
        os.close(writeFD)
        waitForOrphans()
        self.assertNotIn(pid, childrenOf(os.getpid()))

    def test_orphansReapedUnderFDLimit(self) -> None:
        """
        Children orphaned while no fd can be opened (C{RLIMIT_NOFILE}
        lowered and every number below it in use, from the reactor's
        C{"during" "shutdown"} phase until C{run()} returns) are reaped once
        they exit; nothing is logged as an error (trial fails the test on
        one), and the hygiene check finds every fd they had (pidfds, pipes)
        closed.
        """
        reactor = self.buildReactor()
        readFD, writeFD = os.pipe2(os.O_CLOEXEC)
        self.addCleanup(os.close, readFD)
        pids: list[int] = []
        limit = FDLimit()
        self.addCleanup(limit.restore)

        def spawn() -> None:
            try:
                for _ in range(3):
                    transport = reactor.spawnProcess(
                        _Silent(),
                        "/bin/sh",
                        ["sh", "-c", "read x <&3"],
                        childFDs={0: "w", 1: "r", 2: "r", 3: readFD},
                    )
                    pids.append(transport.pid)
            finally:
                reactor.stop()

        reactor.callWhenRunning(spawn)
        reactor.addSystemEventTrigger("during", "shutdown", limit.exhaust)
        self.runReactor(reactor)
        limit.restore()
        self.assertEqual(len(pids), 3)
        # Still running (blocked on the pipe): neither zombies nor reaped.
        running = {
            pid for pid, state in childrenOf(os.getpid()).items() if state != "Z"
        }
        self.assertEqual(running & set(pids), set(pids))
        os.close(writeFD)
        joinReapers(self)
        self.assertEqual(orphanCount(), 0)
        self.assertNoNewChildren()


globals().update(makeTestCaseClasses(ReactorShutdownMixin))


#: The directory made by L{copyForAnyUser}, once made.
_copiedForAnyUser: list[str] = []


def copyForAnyUser(test: SynchronousTestCase) -> str:
    """
    Copy L{NPROC_HELPER} and every package it imports outside the standard
    library (txspawn with its C extension, Twisted, attrs, zope.interface,
    ...; the helper's C{closure} mode lists them) into a new directory that
    every user can read.

    Copies, because this checkout and venv may sit in a directory other
    users cannot enter (root's home); the interpreter that runs them must
    be this Python's version (L{pythonForAnyUser}), so that the C
    extensions load.  The copy is made once per test process and removed
    when it exits.

    @param test: The test to fail if the closure cannot be listed.
    @return: The directory: the import root of the helper run there.
    """
    if _copiedForAnyUser:
        return _copiedForAnyUser[0]
    path = [os.path.abspath(entry) for entry in sys.path if entry]
    closure = subprocess.run(
        [sys.executable, NPROC_HELPER, "closure"],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(path)),
        capture_output=True,
        timeout=120,
    )
    test.assertEqual(closure.returncode, 0, closure.stderr.decode(errors="replace"))
    root = tempfile.mkdtemp(prefix="txspawn-orphans-")
    atexit.register(shutil.rmtree, root, True)
    skip = shutil.ignore_patterns("__pycache__", "test", "tests")
    for source, dest in json.loads(closure.stdout):
        target = os.path.join(root, dest)
        if os.path.isdir(source):
            shutil.copytree(source, target, ignore=skip)
        else:
            shutil.copyfile(source, target)
    shutil.copyfile(NPROC_HELPER, os.path.join(root, "orphans_nproc.py"))
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    if not othersCanExecute(root):
        raise SkipTest(f"other users cannot enter the temporary directory {root}")
    _copiedForAnyUser.append(root)
    return root


def unusedUid() -> int:
    """
    An unprivileged uid that no account has and no process runs as, picked
    at random: the helper's C{RLIMIT_NPROC} count must be its own, not
    shared with the children other tests (or test runs) start as nobody.
    """
    running = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            running.add(int(line.split()[1]))
            except OSError:
                continue
    taken = running | {entry.pw_uid for entry in pwd.getpwall()}
    return random.choice([uid for uid in range(60000, 65534) if uid not in taken])


class ProcessLimitMixin(MixinBase):
    """
    Reactors stopped with children alive while the process limit is
    exhausted, in a helper run as an unprivileged user (L{NPROC_HELPER}
    says what it does): the orphans are reaped anyway, the next spawn is
    not refused because of their zombies, and a later reactor's orphans
    are reaped.
    """

    #: Show every fact that differs.
    maxDiff = None

    def runHelper(self, scenario: str) -> tuple[int, dict[str, Any]]:
        """
        Run a scenario of L{NPROC_HELPER} as an unused uid.

        @param scenario: C{"run"} or C{"iterate"}.
        @return: The uid, and the facts the helper reported.
        """
        if os.getuid() != 0:
            raise SkipTest(
                "RLIMIT_NPROC does not apply to root, and only root can run the "
                "helper as another user: run the tests as root (CI does)"
            )
        python = pythonForAnyUser()
        if python is None:
            raise SkipTest(
                f"no Python {sys.version_info[0]}.{sys.version_info[1]} that "
                f"every user can execute (the copied C extensions need this version)"
            )
        root = copyForAnyUser(self)
        uid = unusedUid()
        result = subprocess.run(
            [
                os.path.realpath(python),
                "-I",
                os.path.join(root, "orphans_nproc.py"),
                scenario,
                self.engineName,
                self.monitorName,
            ],
            user=uid,
            group=uid,
            extra_groups=[],
            cwd=root,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
            capture_output=True,
            timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        facts: dict[str, Any] = json.loads(result.stdout)
        return uid, facts

    def test_orphansReapedUnderProcessLimit(self) -> None:
        """
        With no thread startable at shutdown, nothing fails there; the
        zombies of the orphans that exited are reaped before the next
        spawn (which the exhausted limit would refuse otherwise); the
        orphan still running and a later reactor's orphans are reaped once
        they exit; no child, zombie or fd is left.
        """
        uid, facts = self.runHelper("run")
        # The set-up: an unprivileged user, the engine under test, and
        # faults that really happened.
        self.assertEqual(
            {
                key: facts.get(key)
                for key in (
                    "uid",
                    "engineUnavailable",
                    "taskRefusedAtShutdown",
                    "orphansAfterStop",
                    "zombiesBeforeSpawn",
                    "exhaustedBeforeSpawn",
                )
            },
            {
                "uid": uid,
                "engineUnavailable": None,
                "taskRefusedAtShutdown": True,
                "orphansAfterStop": 4,
                "zombiesBeforeSpawn": 3,
                "exhaustedBeforeSpawn": True,
            },
        )
        # The behaviour.
        self.assertEqual(
            {
                key: facts.get(key)
                for key in (
                    "errors",
                    "spawnError",
                    "zombiesAfterSpawn",
                    "orphansLeft",
                    "childrenLeft",
                    "fdsLeaked",
                )
            },
            {
                "errors": [],
                "spawnError": None,
                "zombiesAfterSpawn": 0,
                "orphansLeft": 0,
                "childrenLeft": {},
                "fdsLeaked": {},
            },
        )

    def test_pendingReapedByReactorIteration(self) -> None:
        """
        Orphans left pending (no thread could start at shutdown) that have
        exited are reaped by the next iteration of a running reactor that
        spawns nothing: zombies before its first wait, none after it;
        nothing is logged as an error and nothing is left.
        """
        uid, facts = self.runHelper("iterate")
        self.assertEqual(
            {
                key: facts.get(key)
                for key in (
                    "uid",
                    "engineUnavailable",
                    "taskRefusedAtShutdown",
                    "pendingAfterStop",
                    "zombiesBeforeIteration",
                )
            },
            {
                "uid": uid,
                "engineUnavailable": None,
                "taskRefusedAtShutdown": True,
                "pendingAfterStop": 3,
                "zombiesBeforeIteration": 3,
            },
        )
        self.assertEqual(
            {
                key: facts.get(key)
                for key in (
                    "zombiesAfterIteration",
                    "pendingAfterIteration",
                    "orphansLeft",
                    "childrenLeft",
                    "fdsLeaked",
                    "errors",
                )
            },
            {
                "zombiesAfterIteration": 0,
                "pendingAfterIteration": 0,
                "orphansLeft": 0,
                "childrenLeft": {},
                "fdsLeaked": {},
                "errors": [],
            },
        )


globals().update(makeTestCaseClasses(ProcessLimitMixin))
