# -*- test-case-name: tests.test_cspawn -*-
"""
C-engine-only mechanics: the extension really is built and imported, its
constants match the Python definitions, the clone3 trampoline, the clone3,
clone and fork-like modes, pidfds
with and without C{CLONE_PIDFD}, the reserved fd slots (C{CLONE_FILES}),
the GIL being released during a spawn, and argument checking.

Behaviour shared with the Python engine is in C{tests/test_engines.py}.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.machinery
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import attrs
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.builders import (
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    spawnAndRun,
)
from tests.cgrouputil import enableHugetlbAtRoot, makeScratchCgroup, mountOrSkip
from tests.engineutil import NOBODY, makePlan, sigbits, waitExit
from tests.hygiene import HygieneMixin, openFDs
from tests.test_engines import C_UNAVAILABLE, REQUIRE_C
from txspawn._engine import selection as _engines
from txspawn._kernel.initprogram import initProgram, initProgramProblem
from txspawn._plan import failurerecord as _wire
from txspawn._plan.fdops import CLOSE_RANGE_MAX, FdOpCode
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn.errors import ChildSetupStage, ReservedFdError, SpawnError

if C_UNAVAILABLE is None:
    from txspawn import _cspawn
    from txspawn._engine.cengine import CSpawner, namespaceArgs
    from txspawn._engine.fdslots import FdSlots, defaultSlots

TRUE = b"/bin/true"
_libc = ctypes.CDLL(None, use_errno=True)


class ExtensionBuiltTests(SynchronousTestCase):
    """
    The extension is there, and it is the real thing.
    """

    def test_imports(self) -> None:
        """
        C{txspawn._cspawn} imports and is a compiled extension (not a
        namespace package).  With C{TXSPAWN_REQUIRE_C=1} (CI) a missing
        extension is a failure, not a skip.
        """
        if C_UNAVAILABLE is not None:
            if REQUIRE_C:
                self.fail(f"TXSPAWN_REQUIRE_C=1 but {C_UNAVAILABLE}")
            raise self.skipTest(C_UNAVAILABLE)
        self.assertTrue(
            _cspawn.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        )

    def test_defaultEngine(self) -> None:
        """
        When the extension is built, the C engine is usable and is the
        default engine.
        """
        if C_UNAVAILABLE is not None:
            if REQUIRE_C:
                self.fail(f"TXSPAWN_REQUIRE_C=1 but {C_UNAVAILABLE}")
            raise self.skipTest(C_UNAVAILABLE)
        self.assertIsNone(_engines.availableSpawners()["c"])
        self.assertEqual(_engines.selectSpawner(environ={}).name, "c")


class CTestCase(HygieneMixin, SynchronousTestCase):
    """
    Base for tests that need the extension.
    """

    if C_UNAVAILABLE is not None and not REQUIRE_C:
        skip = C_UNAVAILABLE

    def setUp(self) -> None:
        if C_UNAVAILABLE is not None:
            self.fail(f"TXSPAWN_REQUIRE_C=1 but {C_UNAVAILABLE}")
        self.setUpHygiene()

    def nullMap(self) -> dict[int, int]:
        null = self.devnull()
        return {0: null, 1: null, 2: null}

    def spawnTrue(self, spawner: Any, fdMap: dict[int, int] | None = None) -> Any:
        child = spawner.spawn(
            makePlan(TRUE, argv=(b"true",)), fdMap or self.nullMap(), None
        )
        try:
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()
        return child


class ConstantsTests(CTestCase):
    """
    The C definitions mirror the Python ones.
    """

    def test_stages(self) -> None:
        """
        Every L{ChildSetupStage} has the same value in C{plan.h}.
        """
        for stage in ChildSetupStage:
            self.assertEqual(getattr(_cspawn, f"STAGE_{stage.name}"), stage.value)

    def test_fdOps(self) -> None:
        """
        Every L{FdOpCode} has the same value in C{plan.h}, and so has
        C{CLOSE_RANGE_MAX}.
        """
        for code in FdOpCode:
            self.assertEqual(getattr(_cspawn, f"FDOP_{code.name}"), code.value)
        self.assertEqual(_cspawn.CLOSE_RANGE_MAX, CLOSE_RANGE_MAX)

    def test_record(self) -> None:
        """
        The wire record has the same magic and size in C and Python.
        """
        self.assertEqual(_cspawn.MAGIC, _wire.MAGIC)
        self.assertEqual(_cspawn.RECORD_SIZE, _wire.RECORD.size)


def getDumpable() -> int:
    """
    This process's dumpable flag (C{prctl(PR_GET_DUMPABLE)}).
    """
    return int(_libc.prctl(3, 0, 0, 0, 0))


def setDumpable(flag: int) -> None:
    """
    Set this process's dumpable flag (C{prctl(PR_SET_DUMPABLE)}).
    """
    if _libc.prctl(4, flag, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")


class ModeTests(CTestCase):
    """
    vfork vs fork-like mode, and pidfds.
    """

    def test_vforkMode(self) -> None:
        """
        By default the child runs in vfork mode (C{CLONE_VM|CLONE_VFORK})
        and the probe says so.
        """
        spawner = CSpawner()
        self.spawnTrue(spawner)
        self.assertTrue(spawner.lastUsedVfork)
        self.assertEqual(CSpawner.features()["vfork"], (True, None))

    def test_forkLikeMode(self) -> None:
        """
        With C{vfork=False} the child is cloned without C{CLONE_VM}, and
        still gets a pidfd.
        """
        spawner = CSpawner(vfork=False)
        child = spawner.spawn(makePlan(TRUE, argv=(b"true",)), self.nullMap(), None)
        try:
            self.assertFalse(spawner.lastUsedVfork)
            self.assertIsNotNone(child.pidfd)
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()

    def test_clonePidfd(self) -> None:
        """
        The pidfd comes from C{CLONE_PIDFD}: it refers to the child (its
        C{/proc} fdinfo names the pid) and is close-on-exec.
        """
        spawner = CSpawner()
        child = spawner.spawn(makePlan(TRUE, argv=(b"true",)), self.nullMap(), None)
        try:
            assert child.pidfd is not None
            self.assertFalse(os.get_inheritable(child.pidfd))
            with open(f"/proc/self/fdinfo/{child.pidfd}") as f:
                self.assertIn(f"Pid:\t{child.pid}\n", f.read())
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()
        self.assertEqual(CSpawner.features()["clone_pidfd"], (True, None))

    def test_pidfdOpenFallback(self) -> None:
        """
        Without C{CLONE_PIDFD} the pidfd comes from C{pidfd_open()}, and the
        probe records that it works.
        """
        spawner = CSpawner(clonePidfd=False)
        child = spawner.spawn(makePlan(TRUE, argv=(b"true",)), self.nullMap(), None)
        try:
            self.assertIsNotNone(child.pidfd)
            with open(f"/proc/self/fdinfo/{child.pidfd}") as f:
                self.assertIn(f"Pid:\t{child.pid}\n", f.read())
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()
        self.assertEqual(CSpawner.features()["pidfd_open"], (True, None))

    def test_noPidfd(self) -> None:
        """
        With neither C{CLONE_PIDFD} nor C{pidfd_open} the child has no
        pidfd (the SIGCHLD monitor handles such children).
        """
        spawner = CSpawner(clonePidfd=False, pidfdOpen=False)
        child = spawner.spawn(makePlan(TRUE, argv=(b"true",)), self.nullMap(), None)
        self.assertIsNone(child.pidfd)
        self.assertEqual(waitExit(child.pid), 0)

    def test_featuresExplained(self) -> None:
        """
        Every probe is C{(on, reason)}; anything not on has a reason.
        """
        for name, (on, reason) in CSpawner.features().items():
            self.assertIn(on, (True, False, None), name)
            if on is not True:
                self.assertIsInstance(reason, str, name)
                self.assertTrue(reason, name)
            else:
                self.assertIsNone(reason, name)

    def test_parentStaysDumpable(self) -> None:
        """
        A child that changes its uid and gid while it shares our memory
        (vfork mode) does not change our dumpable flag, which the kernel
        resets for the memory of a process whose credentials change: the
        flag, 1 or 0, is the same after the spawn as before, in every mode.
        """
        if os.geteuid() != 0:
            raise SkipTest("changing uid in the child needs root")
        self.addCleanup(setDumpable, getDumpable())
        plan = makePlan(TRUE, argv=(b"true",), uid=NOBODY, gid=NOBODY)
        for spawner in (CSpawner(), CSpawner(clone3=False), CSpawner(vfork=False)):
            for flag in (1, 0):
                setDumpable(flag)
                child = spawner.spawn(plan, self.nullMap(), None)
                self.assertEqual(waitExit(child.pid), 0)
                child.closePidfd()
                self.assertEqual(getDumpable(), flag, spawner.mode())

    def test_signalMaskRestored(self) -> None:
        """
        The parent's signal mask is the same after a spawn as before (all
        signals are blocked only around the clone), in both modes.
        """
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        self.addCleanup(signal.pthread_sigmask, signal.SIG_SETMASK, old)
        before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
        for spawner in (CSpawner(), CSpawner(vfork=False)):
            self.spawnTrue(spawner)
            self.assertEqual(signal.pthread_sigmask(signal.SIG_BLOCK, set()), before)


class Clone3Tests(CTestCase):
    """
    The clone3 trampoline (C{_csrc/clone3_x86_64.c}) and the three modes:
    clone3 (the default here), glibc clone(), and fork-like.
    """

    def requireClone3(self) -> None:
        on, reason = CSpawner.features()["clone3"]
        if on is not True:
            raise self.skipTest(f"clone3 is off here: {reason}")

    def modeSpawners(self) -> dict[str, Any]:
        """
        One spawner per mode, forced by injection.
        """
        return {
            "clone3": CSpawner(),
            "clone": CSpawner(clone3=False),
            "fork-like": CSpawner(vfork=False),
        }

    def test_trampoline(self) -> None:
        """
        The trampoline really clones with C{CLONE_VM|CLONE_VFORK}: the child
        runs on the stack it was given, writes into the parent's memory
        (visible once the vfork parent resumes), and exits with its
        function's result (42) instead of returning into the caller.
        """
        if os.uname().machine != "x86_64":
            raise self.skipTest("the clone3 trampoline is x86_64-only")
        self.requireClone3()
        status, ran, onStack = _cspawn._clone3SelfTest()
        self.assertTrue(os.WIFEXITED(status), hex(status))
        self.assertEqual(os.WEXITSTATUS(status), 42)
        self.assertTrue(ran)
        self.assertTrue(onStack)

    def test_probesSettledAtLoad(self) -> None:
        """
        The clone3 probe ran when the extension loaded, before any spawn:
        here (Linux 6.x, x86_64) both clone3 and C{CLONE_CLEAR_SIGHAND} are
        on; elsewhere each is off with a reason.
        """
        features = CSpawner.features()
        for name in ("clone3", "clone_clear_sighand"):
            on, reason = features[name]
            self.assertIsNotNone(on, name)
            if on is False:
                self.assertTrue(reason, name)
        if os.uname().machine == "x86_64" and int(os.uname().release[0]) >= 6:
            self.assertEqual(features["clone3"], (True, None))
            self.assertEqual(features["clone_clear_sighand"], (True, None))

    def test_clone3IsDefault(self) -> None:
        """
        When the probe succeeded, a default spawner uses the clone3 mode,
        says so in L{CSpawner.mode}, and really used it (the extension
        reports the trampoline created the child).
        """
        self.requireClone3()
        spawner = CSpawner()
        mode, reason = spawner.mode()
        self.assertEqual(mode, "clone3")
        self.assertIn("CLONE_VM|CLONE_VFORK|CLONE_PIDFD", reason)
        self.spawnTrue(spawner)
        self.assertEqual(spawner.lastMode, "clone3")
        self.assertTrue(spawner.lastUsedVfork)

    def test_forcedModes(self) -> None:
        """
        Injecting C{clone3=False} selects glibc C{clone()}, C{vfork=False}
        the fork-like mode; each says why and is really used.
        """
        for expected, spawner in self.modeSpawners().items():
            if expected == "clone3":
                continue
            mode, reason = spawner.mode()
            self.assertEqual(mode, expected)
            self.assertIn("disabled by the caller", reason)
            self.spawnTrue(spawner)
            self.assertEqual(spawner.lastMode, expected)
            self.assertEqual(spawner.lastUsedVfork, expected == "clone")

    def test_exitStatusAndPidfdInEveryMode(self) -> None:
        """
        In every mode the child's exit status comes through and its pidfd
        is close-on-exec and refers to it.
        """
        self.requireClone3()
        for mode, spawner in self.modeSpawners().items():
            child = spawner.spawn(
                makePlan(b"/bin/sh", argv=(b"sh", b"-c", b"exit 7")),
                self.nullMap(),
                None,
            )
            try:
                self.assertEqual(spawner.lastMode, mode)
                assert child.pidfd is not None, mode
                self.assertFalse(os.get_inheritable(child.pidfd), mode)
                with open(f"/proc/self/fdinfo/{child.pidfd}") as f:
                    self.assertIn(f"Pid:\t{child.pid}\n", f.read(), mode)
                self.assertEqual(waitExit(child.pid), 7, mode)
            finally:
                child.closePidfd()

    def test_dispositionsResetInEveryMode(self) -> None:
        """
        In every mode the child starts with every disposition at
        C{SIG_DFL}: handlers are reset and, unlike what
        C{CLONE_CLEAR_SIGHAND} alone would do, C{SIG_IGN} too.
        """
        self.requireClone3()
        oldUsr1 = signal.signal(signal.SIGUSR1, lambda *a: None)
        self.addCleanup(signal.signal, signal.SIGUSR1, oldUsr1)
        oldUsr2 = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGUSR2, oldUsr2)
        for mode, spawner in self.modeSpawners().items():
            r, w = os.pipe2(os.O_CLOEXEC)
            null = self.devnull()
            try:
                try:
                    child = spawner.spawn(
                        makePlan(b"/bin/cat", argv=(b"cat", b"/proc/self/status")),
                        {0: null, 1: w, 2: null},
                        None,
                    )
                finally:
                    os.close(w)
                try:
                    self.assertEqual(spawner.lastMode, mode)
                    self.assertEqual(waitExit(child.pid), 0, mode)
                finally:
                    child.closePidfd()
                status = b""
                while chunk := os.read(r, 65536):
                    status += chunk
            finally:
                os.close(r)
            fields = dict(
                line.split(b":\t", 1) for line in status.splitlines() if b":\t" in line
            )
            ignored = int(fields[b"SigIgn"], 16)
            caught = int(fields[b"SigCgt"], 16)
            self.assertEqual(ignored & sigbits(signal.SIGUSR2, signal.SIGPIPE), 0, mode)
            self.assertEqual(ignored, 0, mode)
            self.assertEqual(caught, 0, mode)


# Run in a fresh interpreter: it ignores glibc's internal signals 32 and 33
# (through the raw syscall, as some supervisors leave them), which this test
# process must not do, then reports the SigIgn mask of a child spawned in
# each C engine mode and by the Python engine.
_INTERNAL_SIGNALS_SCRIPT = """
import ctypes, json, os, sys
from tests.engineutil import makePlan
from txspawn._engine.cengine import CSpawner
from txspawn._engine.pyengine import PythonSpawner

libc = ctypes.CDLL(None, use_errno=True)
SIG_IGN = ctypes.c_void_p(1)
action = (ctypes.c_ulong * 4)(1, 0, 0, 0)  # handler=SIG_IGN, no flags
for sig in (32, 33):
    if libc.syscall(13, sig, ctypes.byref(action), None, 8) != 0:  # rt_sigaction
        raise OSError(ctypes.get_errno(), "rt_sigaction")
null = os.open(os.devnull, os.O_RDWR)
report = {}
spawners = {
    "clone3": CSpawner(), "clone": CSpawner(clone3=False),
    "fork-like": CSpawner(vfork=False), "python": PythonSpawner(),
}
for name, spawner in spawners.items():
    r, w = os.pipe2(os.O_CLOEXEC)
    plan = makePlan(b"/bin/cat", argv=(b"cat", b"/proc/self/status"))
    child = spawner.spawn(plan, {0: null, 1: w, 2: null}, None)
    os.close(w)
    status = b""
    while chunk := os.read(r, 65536):
        status += chunk
    os.close(r)
    os.waitpid(child.pid, 0)
    child.closePidfd()
    fields = dict(l.split(b":\\t", 1) for l in status.splitlines() if b":\\t" in l)
    report[name] = int(fields[b"SigIgn"], 16)
own = open("/proc/self/status").read().split("SigIgn:")[1].split()[0]
report["parent"] = int(own, 16)
json.dump(report, sys.stdout)
"""


class InternalSignalsTests(CTestCase):
    """
    glibc's internal signals are reset to C{SIG_DFL} like every other.
    """

    def test_internalSignalsReset(self) -> None:
        """
        A parent that has signals 32 and 33 ignored (which glibc's
        C{sigaction} cannot even express) starts children with them at
        C{SIG_DFL}, in every C engine mode, as the Python engine's
        C{posix_spawn} does.
        """
        result = subprocess.run(
            [sys.executable, "-c", _INTERNAL_SIGNALS_SCRIPT],
            capture_output=True,
            check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        report = json.loads(result.stdout)
        internal = (1 << 31) | (1 << 32)
        self.assertEqual(report.pop("parent") & internal, internal)
        self.assertEqual(
            {name: ignored & internal for name, ignored in report.items()},
            {"clone3": 0, "clone": 0, "fork-like": 0, "python": 0},
        )


def identity(fd: int) -> tuple[int, int] | None:
    """
    C{(st_dev, st_ino)} of C{fd}, or L{None} if it is not open.
    """
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class SlotTests(CTestCase):
    """
    Slot mode: the child starts on the parent's fd table (C{CLONE_FILES}),
    keeps only the fds below one reserved low fd, and takes its fds from
    that fd, a Unix socket they were sent through.
    """

    def ownSlots(self, count: int = 4) -> FdSlots:
        slots = FdSlots.reserve(count)
        assert slots is not None
        self.addCleanup(self.closeOwned, slots)
        return slots

    def closeOwned(self, slots: FdSlots) -> None:
        """
        Close the fds of C{slots} that still are its own (a test may have
        put another file on one of the numbers, closed with it).
        """
        for fd, ident in self.owned(slots).items():
            if identity(fd) == ident:
                os.close(fd)

    def owned(self, slots: FdSlots) -> dict[int, tuple[int, int]]:
        socketIdentity = slots.reservedArg[1:3]
        return {
            slots.number: socketIdentity,
            slots.sender: slots.reservedArg[4:6],
            slots.drain: socketIdentity,
        }

    def assertSlotsIntact(self, slots: FdSlots) -> None:
        """
        The socket's fds are where they were, close-on-exec, and nothing is
        left in the socket.
        """
        for fd, ident in self.owned(slots).items():
            self.assertEqual(identity(fd), ident, fd)
            self.assertFalse(os.get_inheritable(fd))
        self.assertEmpty(slots)

    def assertEmpty(self, slots: FdSlots) -> None:
        """
        Nothing is queued on the socket (no message holds fds open).
        """
        sock = socket.socket(fileno=os.dup(slots.drain))
        try:
            # b"": the sending end is gone (a test replaced it).
            self.assertEqual(sock.recv(1, socket.MSG_DONTWAIT), b"")
        except BlockingIOError:
            pass
        finally:
            sock.close()

    def test_defaultSlotsReserved(self) -> None:
        """
        The process-wide reserved fd is made at import, low, and usable.
        """
        slots = defaultSlots()
        self.assertIsNotNone(slots)
        assert slots is not None
        self.assertEqual(slots.capacity, 16)
        self.assertGreaterEqual(slots.number, 3)
        self.assertEqual(slots.bound, slots.number + 1)
        spawner = CSpawner()
        self.assertIsNone(spawner.slotStatus())
        self.spawnTrue(spawner)
        self.assertTrue(spawner.lastUsedSlots)

    def test_pipesClose(self) -> None:
        """
        After a slot-mode spawn the parent holds no duplicate of the fds it
        sent (nothing is left in the socket), so the child sees EOF on its
        stdin as soon as the parent closes its end.
        """
        slots = self.ownSlots()
        spawner = CSpawner(slots=slots)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        null = self.devnull()
        child = spawner.spawn(
            makePlan(b"/bin/cat", argv=(b"cat",)), {0: r, 1: null, 2: null}, None
        )
        self.assertTrue(spawner.lastUsedSlots)
        self.assertSlotsIntact(slots)
        self.assertEmpty(slots)
        os.write(w, b"data")
        os.close(w)
        try:
            self.assertEqual(waitExit(child.pid), 0)  # cat saw EOF
        finally:
            child.closePidfd()

    def test_fdsArriveInPlace(self) -> None:
        """
        A map with several targets per source, gaps and fds above 2 arrives
        as planned: each child fd is the parent's file, inheritable, and
        nothing else is open.
        """
        slots = self.ownSlots()
        spawner = CSpawner(slots=slots)
        out = self.tmpFile("out")
        a = self.tmpFile("a")
        b = self.tmpFile("b")
        null = self.devnull()
        # listdir's own fd is closed again by the time fstat runs.
        script = (
            b"import json, os\n"
            b"inos = {}\n"
            b"for f in sorted(int(f) for f in os.listdir('/proc/self/fd')):\n"
            b"    try:\n"
            b"        inos[f] = os.fstat(f).st_ino\n"
            b"    except OSError:\n"
            b"        pass\n"
            b"print(json.dumps([sorted(inos), inos]))\n"
        )
        child = spawner.spawn(
            makePlan(argv=(b"python", b"-c", script)),
            {0: null, 1: out, 2: out, 5: a, 7: b, 8: a},
            None,
        )
        self.assertTrue(spawner.lastUsedSlots)
        try:
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()
        with open(os.path.join(self.tmp, "out")) as f:
            fds, inos = json.loads(f.read())
        self.assertEqual(fds, [0, 1, 2, 5, 7, 8])
        expect = {0: null, 1: out, 2: out, 5: a, 7: b, 8: a}
        self.assertEqual(
            {int(k): v for k, v in inos.items()},
            {k: os.fstat(v).st_ino for k, v in expect.items()},
        )
        self.assertSlotsIntact(slots)

    def test_highInheritableFdsNeverLeak(self) -> None:
        """
        Inheritable fds far above the reserved fd (where C{CLONE_FILES}
        children start) never reach a child.
        """
        held = []
        for _ in range(300):
            a, b = os.pipe()
            os.set_inheritable(a, True)
            os.set_inheritable(b, True)
            held += [a, b]
        for fd in held:
            self.addCleanup(os.close, fd)
        out = os.path.join(self.tmp, "fds")
        fd = self.tmpFile("fds")
        null = self.devnull()
        for spawner in (CSpawner(), CSpawner(slots=False)):
            child = spawner.spawn(
                makePlan(b"/bin/ls", argv=(b"ls", b"/proc/self/fd")),
                {0: null, 1: fd, 2: null},
                None,
            )
            try:
                self.assertEqual(waitExit(child.pid), 0)
            finally:
                child.closePidfd()
        with open(out) as f:
            listing = f.read().split()
        # ls lists 0, 1, 2 and its own directory fd, twice.
        self.assertEqual(sorted(listing), ["0", "0", "1", "1", "2", "2", "3", "3"])

    def test_tooManyFdsForSlots(self) -> None:
        """
        A spawn sending more distinct fds than the capacity takes the
        ordinary path and still gives the child exactly its fds.
        """
        slots = self.ownSlots(2)
        spawner = CSpawner(slots=slots)
        fds = [self.tmpFile(f"f{i}") for i in range(3)]
        self.spawnTrue(spawner, {0: fds[0], 1: fds[1], 2: fds[2]})
        self.assertFalse(spawner.lastUsedSlots)

    def test_busySlotsTakeOrdinaryPath(self) -> None:
        """
        While another thread holds the slots (here: the test), a spawn
        takes the ordinary path instead of waiting.
        """
        slots = self.ownSlots()
        spawner = CSpawner(slots=slots)
        with slots.lock:
            self.spawnTrue(spawner)
            self.assertFalse(spawner.lastUsedSlots)
        self.spawnTrue(spawner)
        self.assertTrue(spawner.lastUsedSlots)

    def assertStolen(self, slots: FdSlots, victim: int) -> None:
        """
        Other code put its own file on C{victim}, one of the socket's fds: the
        next spawn fails with L{ReservedFdError} naming it, leaves that file
        alone, leaves no child, zombie or queued fd, and slot mode is given
        up for good, so the spawn after works the ordinary way.
        """
        spawner = CSpawner(slots=slots)
        other = self.tmpFile("other")
        os.write(other, b"theirs")
        os.dup2(other, victim, inheritable=False)  # "someone else's" fd now
        out = self.tmpFile("out")
        e = self.assertRaises(
            ReservedFdError,
            spawner.spawn,
            makePlan(b"/bin/echo", argv=(b"echo", b"hello")),
            {0: out, 1: out, 2: out},
            None,
        )
        self.assertIsInstance(e, SpawnError)
        self.assertEqual(
            (e.stage, e.errno, e.fd),
            (ChildSetupStage.RESERVED_FD, errno.ESTALE, victim),
        )
        self.assertIn(f"reserved fd {victim} was closed by other code", str(e))
        self.assertNoNewChildren()
        self.assertEqual(identity(victim), identity(other))
        self.assertEqual(os.pread(victim, 100, 0), b"theirs")
        self.assertEqual(os.fstat(out).st_size, 0)
        self.assertIn(f"reserved fd {victim} was closed", spawner.slotStatus() or "")
        if victim != slots.drain:
            self.assertEmpty(slots)
        os.close(victim)
        self.spawnTrue(spawner)
        self.assertFalse(spawner.lastUsedSlots)

    def test_stolenReservedFd(self) -> None:
        """
        The reserved fd replaced by someone else's file is found by the
        child, in its own fd table: L{assertStolen}.
        """
        slots = self.ownSlots()
        self.assertStolen(slots, slots.number)

    def test_stolenSender(self) -> None:
        """
        The socket's sending end replaced by someone else's file is found
        before anything is sent: L{assertStolen}.
        """
        slots = self.ownSlots()
        self.assertStolen(slots, slots.sender)

    def assertClosedFallsBack(self, slots: FdSlots, closed: int) -> None:
        """
        Other code merely closed C{closed}, one of the socket's fds, leaving
        the number free (a "close every fd" routine after import, say): the
        spawn succeeds the ordinary way with no error, slot mode is given
        up naming the fd, no child or queued fd is left, and the free number
        is not reused by txspawn.
        """
        spawner = CSpawner(slots=slots)
        fdMap = self.nullMap()  # before: it would get the free number
        os.close(closed)
        self.spawnTrue(spawner, fdMap)
        self.assertFalse(spawner.lastUsedSlots)
        self.assertIn(f"reserved fd {closed} was closed", spawner.slotStatus() or "")
        self.assertNoNewChildren()
        if closed != slots.drain:
            self.assertEmpty(slots)
        self.assertRaises(OSError, os.fstat, closed)
        self.spawnTrue(spawner, fdMap)
        self.assertFalse(spawner.lastUsedSlots)

    def test_closedReservedFd(self) -> None:
        """
        The reserved fd merely closed is found by the child, in its own fd
        table: L{assertClosedFallsBack}.
        """
        slots = self.ownSlots()
        self.assertClosedFallsBack(slots, slots.number)

    def test_closedSender(self) -> None:
        """
        The socket's sending end merely closed is found before anything is
        sent: L{assertClosedFallsBack}.
        """
        slots = self.ownSlots()
        self.assertClosedFallsBack(slots, slots.sender)

    @staticmethod
    def thief(
        go: threading.Event,
        target: int,
        stole: list[tuple[int, tuple[int, int] | None]],
    ) -> None:
        """
        Once C{go} is set, close C{target} and open a memfd (which gets the
        lowest free number, usually C{target}), appending it and its
        identity to C{stole}: when C{target}'s file changes (a parent that
        writes it) or after a random delay, whichever comes first.
        """
        go.wait()
        before = identity(target)
        for _ in range(int.from_bytes(os.urandom(2), "little") % 3000):
            if identity(target) != before:
                break
        try:
            os.close(target)
        except OSError:
            pass
        fd = os.memfd_create("thief", os.MFD_CLOEXEC)
        stole.append((fd, identity(fd)))

    def test_stolenWhileSpawning(self) -> None:
        """
        Another thread closes the reserved fd and opens its own file (which
        gets the number) at any moment while the main thread spawns: that
        file is never replaced, no child ever receives it, and a spawn that
        notices fails with L{ReservedFdError} leaving nothing behind.  Each
        round uses fresh slots; the thief steals once per round, when it
        sees the reserved number change (a design that writes it) or after
        a random delay.
        """
        null = self.devnull()
        thiefFiles: list[tuple[int, tuple[int, int] | None]] = []
        outcomes = {"ok": 0, "detected": 0}
        for _ in range(150):
            slots = FdSlots.reserve(4)
            assert slots is not None
            owned = self.owned(slots)
            spawner = CSpawner(slots=slots)
            target = slots.number
            go = threading.Event()
            stole: list[tuple[int, tuple[int, int] | None]] = []
            thread = threading.Thread(target=self.thief, args=(go, target, stole))
            thread.start()
            r, w = os.pipe2(os.O_CLOEXEC)
            go.set()
            try:
                child = spawner.spawn(
                    makePlan(b"/bin/echo", argv=(b"echo", b"MARK")),
                    {0: null, 1: w, 2: w},
                    None,
                )
            except ReservedFdError as e:
                self.assertEqual(e.fd, target)
                outcomes["detected"] += 1
                child = None
            finally:
                os.close(w)
                thread.join()
            if child is not None:
                try:
                    self.assertEqual(waitExit(child.pid), 0)
                finally:
                    child.closePidfd()
                # The child's stdout was the pipe, not the thief's file.
                self.assertEqual(os.read(r, 100), b"MARK\n")
                outcomes["ok"] += 1
            os.close(r)
            self.assertNoNewChildren()
            fd, ident = stole[0]
            # The thief's file is still the thief's.
            self.assertEqual(identity(fd), ident)
            thiefFiles.append((fd, ident))
            for mine, mineIdent in owned.items():
                if mine != fd and identity(mine) == mineIdent:
                    os.close(mine)
        for fd, _ident in thiefFiles:
            # Nothing ever wrote to a thief's file.
            self.assertEqual(os.fstat(fd).st_size, 0)
            os.close(fd)
        self.assertEqual(sum(outcomes.values()), 150, outcomes)

    def test_forkedWithoutHooks(self) -> None:
        """
        A socket made in another process (a C{fork()} that ran no
        C{os.register_at_fork} hook) is never used: the spawn takes the
        ordinary path and slot mode is given up, saying why.
        """
        slots = self.ownSlots()
        slots.pid = 1
        slots.__attrs_post_init__()
        spawner = CSpawner(slots=slots)
        self.spawnTrue(spawner)
        self.assertFalse(spawner.lastUsedSlots)
        self.assertIn("forked", spawner.slotStatus() or "")
        self.assertSlotsIntact(slots)

    def test_forkedChildMakesItsOwn(self) -> None:
        """
        After C{os.fork()} the child process makes its own socket (the
        parent's is shared with it) and spawns in slot mode with it.
        """
        slots = self.ownSlots()
        before = slots.reservedArg
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child
            try:
                os.close(r)
                spawner = CSpawner(slots=slots)
                self.spawnTrue(spawner)
                fresh = slots.reservedArg
                ok = (
                    spawner.lastUsedSlots
                    and fresh[7] == os.getpid()
                    and fresh[2] != before[2]
                    and identity(slots.number) == fresh[1:3]
                )
                os.write(w, b"ok" if ok else repr((before, fresh)).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            report = f.read()
        self.assertEqual(waitExit(pid), 0)
        self.assertEqual(report, b"ok")
        self.assertEqual(slots.reservedArg, before)
        self.assertSlotsIntact(slots)

    def test_layoutMemoised(self) -> None:
        """
        The layout of a map is computed once and reused: the sources in
        ascending order, received at 0, 1, ... skipping the reserved fd.  A
        map that does not fit (more distinct fds than the capacity, no fd,
        or one of the socket's fds) has none.
        """
        slots = self.ownSlots(2)
        self.assertIsNone(slots.layout({0: 100, 1: 101, 2: 102}))
        layout = slots.layout({0: 101, 1: 100, 2: 100})
        assert layout is not None
        self.assertEqual(layout.sources, (100, 101))
        self.assertIs(slots.layout({0: 101, 1: 100, 2: 100}), layout)
        self.assertIsNone(slots.layout({}))
        for fd in (slots.number, slots.sender, slots.drain):
            self.assertIsNone(slots.layout({0: fd}))

    def test_closedSourceFd(self) -> None:
        """
        A source fd closed since the plan was made fails with stage C{FDS},
        C{EBADF}, in slot mode (sending it fails) and in the ordinary mode
        (the child's C{dup2} fails); the socket is intact and nothing leaks.
        """
        slots = self.ownSlots()
        # A high number: a just-closed low one would be reused at once by
        # the spawn's own error pipe.
        a = 900
        self.assertRaises(OSError, os.fstat, a)
        for spawner in (CSpawner(slots=slots), CSpawner(slots=False)):
            e = self.assertRaises(
                SpawnError,
                spawner.spawn,
                makePlan(TRUE, argv=(b"true",)),
                {0: a, 1: a, 2: a},
                None,
            )
            self.assertEqual((e.stage, e.errno), (ChildSetupStage.FDS, errno.EBADF))
            self.assertNoNewChildren()
        self.assertSlotsIntact(slots)
        self.assertEmpty(slots)

    def test_childFailureDrainsSocket(self) -> None:
        """
        A slot-mode child that fails after taking its fds reports through
        the parent's memory (no error pipe) with the same error as the
        ordinary mode, and the fds it took are closed with it.
        """
        slots = self.ownSlots()
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        errors = []
        for spawner in (CSpawner(slots=slots), CSpawner(slots=False)):
            e = self.assertRaises(
                SpawnError,
                spawner.spawn,
                makePlan(b"/nonexistent/x", argv=(b"x",)),
                {0: w, 1: w, 2: w},
                None,
            )
            errors.append((type(e), e.stage, e.errno, e.filename))
            self.assertNoNewChildren()
        self.assertEqual(errors[0], errors[1])
        self.assertSlotsIntact(slots)
        os.close(w)
        self.assertEqual(os.read(r, 1), b"")  # no copy of w survives


class StolenReservedFdMixin(MixinBase):
    """
    Through C{spawnProcess}, on every monitor: a stolen reserved fd fails
    the spawn with L{ReservedFdError} and leaves nothing behind.
    """

    def test_spawnProcessRaises(self) -> None:
        """
        C{spawnProcess} raises L{ReservedFdError}; the file now on the
        reserved number is untouched, the protocol was never connected, the
        transport's pipes are closed and no child exists (the builder's
        hygiene checks); the next C{spawnProcess} works.
        """
        if self.engineName != "c":
            raise SkipTest(
                "only the C engine reserves an fd: the Python engine's "
                "children copy the fd table"
            )
        slots = FdSlots.reserve(4)
        assert slots is not None
        from txspawn.reactor import EPollReactor

        reactor = EPollReactor(engine=CSpawner(slots=slots), monitor=self.monitorName)
        self._reactors.append(reactor)
        victim = slots.number
        r, w = os.pipe2(os.O_CLOEXEC)
        os.dup2(w, victim, inheritable=False)  # "someone else's" fd now
        os.close(w)
        self.addCleanup(os.close, r)
        for fd in (slots.sender, slots.drain, victim):
            self.addCleanup(os.close, fd)
        proto = RecordingProtocol()
        e = self.assertRaises(
            ReservedFdError, reactor.spawnProcess, proto, "/bin/echo", ["echo", "x"]
        )
        self.assertEqual(e.fd, victim)
        self.assertEqual(proto.names(), [])
        self.assertNoNewChildren()
        self.assertEqual(identity(victim), identity(r))
        os.write(victim, b"still theirs")
        self.assertEqual(os.read(r, 100), b"still theirs")
        proto = RecordingProtocol()
        spawnAndRun(self, proto, "/bin/echo", ["echo", "hello"], reactor=reactor)
        self.assertEqual(proto.output[1], b"hello\n")
        self.assertEqual(proto.endedReason.value.exitCode, 0)


globals().update(makeTestCaseClasses(StolenReservedFdMixin))


class GILTests(CTestCase):
    """
    The GIL is released from the clone to the exec confirmation.
    """

    def test_otherThreadRunsDuringSpawn(self) -> None:
        """
        With a switch interval so long that the interpreter never forces a
        thread switch, a thread waiting for the GIL can only run if
        C{_cspawn.spawn} releases it: it does, while the child (here slowed
        down by many missing exec candidates) is being set up.
        """
        null = self.devnull()
        candidates = (*(b"/nonexistent/%d" % i for i in range(2000)), TRUE)
        program = (
            (int(FdOpCode.DUP2), null, 0),
            (int(FdOpCode.DUP2), null, 1),
            (int(FdOpCode.DUP2), null, 2),
            (int(FdOpCode.CLOSE_RANGE), 3, CLOSE_RANGE_MAX),
        )
        errFd = null + 1
        old = sys.getswitchinterval()
        self.addCleanup(sys.setswitchinterval, old)
        ranDuringSpawn = []
        for _ in range(20):
            go = threading.Lock()
            go.acquire()
            ran: list[bool] = []

            def waitForGIL(go: threading.Lock = go, ran: list[bool] = ran) -> None:
                go.acquire()
                ran.append(True)

            thread = threading.Thread(target=waitForGIL)
            thread.start()
            sys.setswitchinterval(1000.0)
            go.release()  # the thread now waits for the GIL, held here
            pid, pidfd, record, _, _ = _cspawn.spawn(
                candidates,
                (b"true",),
                (),
                None,
                program,
                errFd,
                (),
                0,
                None,
                False,
                False,
                -1,
                -1,
                (),
                None,
                False,
                -1,
                -1,
                0,
                (),
                _cspawn.ALLOW_ALL,
                None,
                None,
                None,
                None,
            )
            ranDuringSpawn.append(bool(ran))  # read before any GIL release
            sys.setswitchinterval(old)
            thread.join()
            os.close(pidfd)
            self.assertIsNone(record)
            self.assertEqual(waitExit(pid), 0)
            if ranDuringSpawn[-1]:
                break
        self.assertIn(True, ranDuringSpawn)


#: The extension's post-clone steps (see _cspawn._failAfterSpawn): building
#: a failed child's record, then the result tuple.
STEP_RECORD = 1
STEP_RESULT = 2
#: The outcomes that reach each step.
STEP_REACHED_BY = {STEP_RECORD: {"failed"}, STEP_RESULT: {"running", "failed"}}


class PostSpawnFailureTests(CTestCase):
    """
    An error in the extension after the clone -- building its result fails
    (C{MemoryError}) -- leaves no child, zombie or fd: the extension kills
    the child it cannot return (C{SIGKILL}, through the pidfd when there is
    one), reaps it and closes its pidfd before raising.  Each step is made
    to fail by the extension's test hook C{_failAfterSpawn}, in every mode.
    """

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(_cspawn._failAfterSpawn, 0)

    def spawners(self) -> dict[str, Any]:
        slots = FdSlots.reserve(4)
        assert slots is not None
        self.addCleanup(slots.close)
        return {
            "clone3": CSpawner(slots=False),
            "clone": CSpawner(clone3=False, slots=False),
            "fork-like": CSpawner(vfork=False, slots=False),
            "pidfd_open": CSpawner(clonePidfd=False, slots=False),
            "no pidfd": CSpawner(clonePidfd=False, pidfdOpen=False, slots=False),
            "slots": CSpawner(slots=slots),
        }

    def spawnAt(
        self,
        spawner: Any,
        outcome: str,
        step: int,
        mode: str,
        namespaces: NamespacePlan | None = None,
    ) -> None:
        """
        Spawn, with post-clone step C{step} made to fail, a child that
        blocks until the test ends (C{cat} reading a pipe the test holds:
        one left behind would still be running, or be a zombie) or, for the
        C{"failed"} outcome, one whose exec fails; check the spawn raises
        L{MemoryError} exactly when that step is reached, and that nothing
        is left behind either way.
        """
        before = openFDs()
        stdin, _ = self.pipe()
        null = self.devnull()
        program = b"/bin/cat" if outcome == "running" else b"/nonexistent/cat"
        plan = makePlan(program, argv=(b"cat",), namespaces=namespaces)
        _cspawn._failAfterSpawn(step)
        fdMap = {0: stdin, 1: null, 2: null}
        if outcome in STEP_REACHED_BY[step]:
            self.assertRaises(MemoryError, spawner.spawn, plan, fdMap, None)
        else:
            # Not reached: the spawn ends as usual (only a failed child's
            # record is built at STEP_RECORD), and the hook stays armed.
            self.assertEqual(outcome, "running")
            child = spawner.spawn(plan, fdMap, None)
            child.killAndReap()
            child.closePidfd()
            _cspawn._failAfterSpawn(0)
        where = f"{mode} mode, step {step}, {outcome} child"
        self.assertNoNewChildren(where)
        self.assertEqual(openFDs(), before | {stdin, _, null}, where)
        # The hook fired once and is disarmed again.
        self.spawnTrue(spawner)

    def test_everyStepEveryMode(self) -> None:
        """
        Every post-clone step fails in turn, for a running and a failed
        child, in every mode (clone3, clone, fork-like, a pidfd from
        C{pidfd_open}, no pidfd, slot mode).
        """
        self.assertEqual(
            set(STEP_REACHED_BY), set(range(1, _cspawn.POST_SPAWN_STEPS + 1))
        )
        for mode, spawner in self.spawners().items():
            for step in STEP_REACHED_BY:
                for outcome in ("running", "failed"):
                    self.spawnAt(spawner, outcome, step, mode)

    def test_everyStepWithInit(self) -> None:
        """
        Every post-clone step fails in turn for a spawn with txspawn's init
        (the child is init, with its status pipe): for a running command
        and for one whose exec fails, the extension kills init, reaps it
        and closes its pidfd and status pipe.
        """
        problem = userNamespaceProblem() or initProgramProblem()
        if problem is not None:
            raise SkipTest(problem)
        ns = selfMap(CLONE_NEWPID, init=initProgram())
        for mode, spawner in self.spawners().items():
            if mode != "slots":
                for step in STEP_REACHED_BY:
                    for outcome in ("running", "failed"):
                        self.spawnAt(spawner, outcome, step, mode, ns)

    def test_hookArguments(self) -> None:
        """
        C{_failAfterSpawn} takes a step number from 0 (disarm) to
        C{POST_SPAWN_STEPS}.
        """
        for bad in (-1, _cspawn.POST_SPAWN_STEPS + 1):
            self.assertRaises(ValueError, _cspawn._failAfterSpawn, bad)
        self.assertRaises(TypeError, _cspawn._failAfterSpawn, "1")
        _cspawn._failAfterSpawn(STEP_RESULT)
        _cspawn._failAfterSpawn(0)
        self.spawnTrue(CSpawner())


class PostSpawnFailureMixin(MixinBase):
    """
    Through C{spawnProcess}, on every monitor: an error in the extension
    after the clone leaves no child and no fd, and the protocol is never
    connected.
    """

    def test_spawnProcessRaises(self) -> None:
        """
        With each post-clone step failing, C{spawnProcess} raises
        L{MemoryError}; the protocol was never called, no child and no fd is
        left (the builder's hygiene checks); the next C{spawnProcess} works.
        """
        if self.engineName != "c":
            raise SkipTest("the Python engine has no post-clone steps in C")
        self.addCleanup(_cspawn._failAfterSpawn, 0)
        reactor = self.buildReactor()
        for step, reachedBy in STEP_REACHED_BY.items():
            program = "/bin/cat" if "running" in reachedBy else "/nonexistent/cat"
            proto = RecordingProtocol()
            _cspawn._failAfterSpawn(step)
            self.assertRaises(
                MemoryError, reactor.spawnProcess, proto, program, ["cat"]
            )
            self.assertEqual(proto.names(), [])
            self.assertNoNewChildren(f"step {step}")
        proto = RecordingProtocol()
        spawnAndRun(self, proto, "/bin/echo", ["echo", "hello"], reactor=reactor)
        self.assertEqual(proto.output[1], b"hello\n")


globals().update(makeTestCaseClasses(PostSpawnFailureMixin))


#: The CLONE_NEW* flags (Python 3.11's os module has none of them).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_SLAVE = 1 << 19
#: The errno of an injected fault: one that no namespace step of these
#: tests fails with by itself.
INJECTED = errno.EXDEV
#: A time namespace's offsets that change nothing.
NO_OFFSETS = b"monotonic 0 0\nboottime 0 0\n"

_userNamespaces: list[str | None] = []


def selfMap(flags: int = 0, **kwargs: Any) -> NamespacePlan:
    """
    A user namespace (plus C{flags}) whose root is our euid and egid, with
    C{setgroups} denied: maps the child writes itself.
    """
    return NamespacePlan(
        cloneFlags=CLONE_NEWUSER | flags,
        uidMap=b"0 %d 1\n" % os.geteuid(),
        gidMap=b"0 %d 1\n" % os.getegid(),
        setgroups=b"deny",
        mapsByChild=True,
        **kwargs,
    )


def parentMap(flags: int = 0, **kwargs: Any) -> NamespacePlan:
    """
    A user namespace (plus C{flags}) whose maps the parent writes while the
    child waits: as root, two ranges, one of ids that are not ours, and
    C{setgroups} allowed (what only the parent may write); unprivileged,
    the one line the kernel lets us write, written by the parent all the
    same.
    """
    if os.geteuid() == 0:
        return NamespacePlan(
            cloneFlags=CLONE_NEWUSER | flags,
            uidMap=b"0 0 1\n1 100000 10\n",
            gidMap=b"0 0 1\n1 100000 10\n",
            setgroups=b"allow",
            mapsByChild=False,
            **kwargs,
        )
    return attrs.evolve(selfMap(flags, **kwargs), mapsByChild=False)


def userNamespaceProblem() -> str | None:
    """
    L{None} if this process can make a user namespace with a self-map (as
    root, or unprivileged where the kernel allows it), else why not: the
    C engine's own answer, asked once.
    """
    if not _userNamespaces:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            child = CSpawner(slots=False).spawn(
                makePlan(TRUE, argv=(b"true",), namespaces=selfMap()),
                {0: null, 1: null, 2: null},
                None,
            )
        except SpawnError as e:
            _userNamespaces.append(f"no user namespace here: {e}")
        else:
            waitExit(child.pid)
            child.closePidfd()
            _userNamespaces.append(None)
        finally:
            os.close(null)
    return _userNamespaces[0]


def mapLines(text: bytes) -> list[list[int]]:
    """
    A map as the kernel shows it, or as written: C{[inside, outside,
    count]} lines.
    """
    return [[int(f) for f in line.split()] for line in text.splitlines()]


def rawArgs(**overrides: Any) -> dict[str, Any]:
    """
    The extension's C{spawn} arguments, by name, for C{/bin/true} with
    nothing but a closed fd table: override any of them.
    """
    args: dict[str, Any] = dict(
        candidates=(TRUE,),
        argv=(b"true",),
        envp=(),
        cwd=None,
        ops=((int(FdOpCode.CLOSE_RANGE), 0, CLOSE_RANGE_MAX),),
        errFd=3,
        slots=(),
        filesBound=0,
        reserved=None,
        newSession=False,
        ctty=False,
        processGroup=-1,
        umask=-1,
        rlimits=(),
        groups=None,
        groupsImplicit=False,
        gid=-1,
        uid=-1,
        deathSignal=0,
        signalMask=(),
        allow=_cspawn.ALLOW_ALL,
        namespaces=None,
        init=None,
        fault=None,
        cgroup=None,
    )
    args.update(overrides)
    return args


#: A stand-in for txspawn's init, to test what the engine does around it.
#: It reports how it was started on its stdout (argv, its blocked signals,
#: whether both pipes are open and inheritable), then writes 4 bytes on the
#: status pipe and exits 5; with the command "fail", it reports a failure
#: as init does ({EXEC, ENOENT, 0} on the error pipe) and waits until it is
#: killed (an engine that did not kill it would hang the test: every signal
#: is blocked).
_FAKE_INIT = """\
import json, os, signal, struct, sys
err, status = int(sys.argv[1]), int(sys.argv[2])
with open("/proc/self/status") as f:
    fields = dict(line.split(":", 1) for line in f)
report = {
    "argv": sys.argv[1:],
    "blocked": int(fields["SigBlk"], 16),
    "pid": os.getpid(),
    "inheritable": [os.get_inheritable(err), os.get_inheritable(status)],
}
os.write(1, json.dumps(report).encode())
if sys.argv[-1] == "fail":
    os.write(err, b"TXSP" + struct.pack("=Iii", 15, 2, 0))
    while True:
        signal.pause()
os.write(status, b"ABCD")
sys.exit(5)
"""

#: Run in a fresh interpreter without capabilities (a root without its
#: bounding set): for each mode, the pid namespace the kernel refuses and
#: what is left after.
_REFUSED_SCRIPT = """
import json, os, sys
from tests.engineutil import makePlan
from tests.hygiene import childrenOf, openFDs
from txspawn._engine.cengine import CSpawner
from txspawn._plan.namespaceplan import NamespacePlan
from txspawn.errors import SpawnError

null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
plan = makePlan(b"/bin/true", argv=(b"true",),
                namespaces=NamespacePlan(cloneFlags=0x20000000))
report = {}
spawners = {"clone3": CSpawner(slots=False),
            "clone": CSpawner(clone3=False, slots=False),
            "fork-like": CSpawner(vfork=False, slots=False)}
for mode, spawner in spawners.items():
    before = openFDs()
    try:
        spawner.spawn(plan, {0: null, 1: null, 2: null}, None)
    except SpawnError as e:
        report[mode] = [e.stage.name, e.errno, e.detail]
    report[mode + " left"] = [sorted(openFDs() - before), childrenOf(os.getpid())]
json.dump(report, sys.stdout)
"""


class NamespaceTests(CTestCase):
    """
    The C engine's side of namespaces (issue 13): the clone flags, the map
    handoff (self-maps in vfork mode; parent-written maps with C{CLONE_VM}
    but not C{CLONE_VFORK}), its failures, fault injection at each step,
    and the exec of txspawn's init with its status pipe.  (What the child's
    world looks like, on both engines, is C{tests/test_namespaces*.py}'s.)
    """

    def setUp(self) -> None:
        super().setUp()
        problem = userNamespaceProblem()
        if problem is not None:
            raise SkipTest(problem)

    def modeSpawners(self) -> dict[str, Any]:
        """
        One spawner per mode (slot mode never takes a namespace spawn).
        """
        return {
            "clone3": CSpawner(slots=False),
            "clone": CSpawner(clone3=False, slots=False),
            "fork-like": CSpawner(vfork=False, slots=False),
        }

    def runIn(self, spawner: Any, ns: NamespacePlan, script: str, **plan: Any) -> bytes:
        """
        Run C{sh -c script} in C{ns}, wait for it to exit 0, and return its
        output.
        """
        r, w = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            try:
                child = spawner.spawn(
                    makePlan(
                        b"/bin/sh",
                        argv=(b"sh", b"-c", script.encode()),
                        namespaces=ns,
                        **plan,
                    ),
                    {0: null, 1: w, 2: w},
                    None,
                )
            finally:
                os.close(w)
                os.close(null)
            output = b""
            while chunk := os.read(r, 65536):
                output += chunk
        finally:
            os.close(r)
        try:
            self.assertEqual(waitExit(child.pid), 0, output)
        finally:
            child.closePidfd()
        return output

    def test_stagesOfTheContract(self) -> None:
        """
        The namespace stages and details have the contract's numbers, in C
        and in Python.
        """
        stages = {
            "SYNC": 16,
            "NAMESPACES": 17,
            "IDMAP": 18,
            "HOSTNAME": 21,
            "LOOPBACK": 22,
            "MOUNT_PROPAGATION": 23,
            "MOUNT_PROC": 24,
            "TIME_OFFSETS": 25,
            "INIT": 26,
        }
        for name, value in stages.items():
            self.assertEqual(ChildSetupStage[name], value, name)
            self.assertEqual(getattr(_cspawn, f"STAGE_{name}"), value, name)
        self.assertEqual(
            (_cspawn.IDMAP_SETGROUPS, _cspawn.IDMAP_GID_MAP, _cspawn.IDMAP_UID_MAP),
            (1, 2, 3),
        )
        self.assertEqual((_cspawn.TIME_UNSHARE, _cspawn.TIME_WRITE), (1, 2))

    def test_selfMapKeepsVforkMode(self) -> None:
        """
        A self-map is written by the child itself, in vfork mode
        (C{CLONE_VM|CLONE_VFORK}, through clone3 or glibc C{clone()}): the
        child sees exactly the planned maps and C{setgroups} denied, and is
        root inside.
        """
        euid, egid = os.geteuid(), os.getegid()
        script = "cat /proc/self/uid_map; echo; cat /proc/self/gid_map; echo; "
        script += "cat /proc/self/setgroups; echo; id -u"
        for mode, spawner in self.modeSpawners().items():
            output = self.runIn(spawner, selfMap(), script)
            uidMap, gidMap, setgroups, uid = output.split(b"\n\n")
            self.assertEqual(mapLines(uidMap), [[0, euid, 1]], mode)
            self.assertEqual(mapLines(gidMap), [[0, egid, 1]], mode)
            self.assertEqual(setgroups.strip(), b"deny", mode)
            self.assertEqual(uid.strip(), b"0", mode)
            self.assertEqual(spawner.lastMode, mode)
            self.assertEqual(spawner.lastUsedVfork, mode != "fork-like", mode)
            self.assertEqual(spawner.lastSharedMemory, mode != "fork-like", mode)

    def test_parentWrittenMapsShareMemoryWithoutVfork(self) -> None:
        """
        Maps the parent writes come with a child cloned with C{CLONE_VM}
        but without C{CLONE_VFORK}.  The extension says so, and the spawn
        proves it: with C{CLONE_VFORK} the parent would be suspended and
        could not write the maps the child waits for, and without shared
        memory the child would never see the futex word in the plan change.
        (The fork-like mode shares nothing: its word is in a shared page.)
        The child sees exactly the maps written.
        """
        ns = parentMap()
        assert ns.uidMap is not None and ns.gidMap is not None
        script = "cat /proc/self/uid_map; echo; cat /proc/self/gid_map; echo; "
        script += "cat /proc/self/setgroups"
        for mode, spawner in self.modeSpawners().items():
            output = self.runIn(spawner, ns, script)
            uidMap, gidMap, setgroups = output.split(b"\n\n")
            self.assertEqual(mapLines(uidMap), mapLines(ns.uidMap), mode)
            self.assertEqual(mapLines(gidMap), mapLines(ns.gidMap), mode)
            self.assertEqual(setgroups.strip(), ns.setgroups, mode)
            self.assertEqual(spawner.lastMode, mode)
            self.assertFalse(spawner.lastUsedVfork, mode)
            self.assertEqual(spawner.lastSharedMemory, mode != "fork-like", mode)

    def test_earlyIdsChangingOurUid(self) -> None:
        """
        With a map whose root is not our uid (root's privilege), the early
        ids change the child's uid, which makes the kernel reset the
        dumpable flag of its memory: the time offsets are still written
        (the file was opened before), and ours, shared in vfork mode and in
        the handoff, is still what it was.
        """
        if os.geteuid() != 0:
            raise SkipTest("a map of ids that are not ours needs root")
        if not os.path.exists("/proc/self/ns/time"):
            raise SkipTest("no time namespaces here")
        self.addCleanup(setDumpable, getDumpable())
        # The parent writes it: only root may map ids that are not its own.
        ns = NamespacePlan(
            cloneFlags=CLONE_NEWUSER,
            uidMap=b"0 100000 10\n",
            gidMap=b"0 100000 10\n",
            setgroups=b"allow",
            mapsByChild=False,
            earlyIds=(0, 0),
            timeOffsets=b"monotonic 7 0\nboottime 0 0\n",
        )
        for mode, spawner in self.modeSpawners().items():
            for flag in (1, 0):
                where = f"{mode}, dumpable {flag}"
                setDumpable(flag)
                output = self.runIn(spawner, ns, "cat /proc/self/timens_offsets; id -u")
                *written, uid = output.splitlines()
                self.assertEqual(
                    [line.split() for line in written],
                    [[b"monotonic", b"7", b"0"], [b"boottime", b"0", b"0"]],
                    where,
                )
                self.assertEqual(uid, b"0", where)
                self.assertEqual(getDumpable(), flag, where)

    def test_namespacesNeverUseSlots(self) -> None:
        """
        A namespace spawn takes the error-pipe path even when slot mode is
        available (a plain spawn right after uses it).
        """
        slots = FdSlots.reserve(4)
        assert slots is not None
        self.addCleanup(slots.close)
        spawner = CSpawner(slots=slots)
        self.runIn(spawner, selfMap(), "true")
        self.assertFalse(spawner.lastUsedSlots)
        self.spawnTrue(spawner)
        self.assertTrue(spawner.lastUsedSlots)

    def test_mapWriteFailure(self) -> None:
        """
        A map the kernel refuses (here a malformed one: C{EINVAL}) raises
        L{SpawnError} with stage C{IDMAP} and the file as detail (1
        C{setgroups}, 2 C{gid_map}, 3 C{uid_map}), whoever writes it: the
        waiting child of parent-written maps is told to give up, killed and
        reaped; a child writing its own maps fails by itself.  No child and
        no fd is left.
        """
        overlapping = b"0 %d 1\n0 %d 1\n"
        euid, egid = os.geteuid(), os.getegid()
        for plan in (parentMap(), selfMap()):
            cases = {
                1: attrs.evolve(plan, setgroups=b"bogus"),
                2: attrs.evolve(plan, gidMap=overlapping % (egid, egid)),
                3: attrs.evolve(plan, uidMap=overlapping % (euid, euid)),
            }
            for mode, spawner in self.modeSpawners().items():
                for detail, ns in cases.items():
                    where = f"{mode}, detail {detail}, by child: {ns.mapsByChild}"
                    before = openFDs()
                    e = self.assertRaises(SpawnError, self.runIn, spawner, ns, "true")
                    self.assertEqual(
                        (e.stage, e.errno, e.detail),
                        (ChildSetupStage.IDMAP, errno.EINVAL, detail),
                        where,
                    )
                    self.assertNoNewChildren(where)
                    self.assertEqual(openFDs(), before, where)

    def test_refusedNamespaces(self) -> None:
        """
        A clone the kernel refuses for its namespaces (a pid namespace
        without C{CAP_SYS_ADMIN} and without a user namespace: C{EPERM})
        raises L{SpawnError} with stage C{NAMESPACES} and the kernel's
        errno, in every mode, leaving no fd and no child.
        """
        command = [sys.executable, "-c", _REFUSED_SCRIPT]
        if os.geteuid() == 0:
            # Root without a bounding set has no capability after exec.
            if shutil.which("setpriv") is None:
                raise SkipTest("setpriv(1) is needed to drop root's capabilities")
            command[:0] = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
        result = subprocess.run(
            command,
            capture_output=True,
            check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        report = json.loads(result.stdout)
        for mode in ("clone3", "clone", "fork-like"):
            self.assertEqual(report[mode], ["NAMESPACES", errno.EPERM, 0], mode)
            self.assertEqual(report[f"{mode} left"], [[], {}], mode)

    def test_injectedFaults(self) -> None:
        """
        With a fault injected at a namespace step, the spawn fails there,
        with that stage, the injected errno and the step's detail, in every
        mode and for either kind of map, leaving no child and no fd; a
        fault at a step the plan does not have changes nothing.
        """
        every = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS
        every |= CLONE_NEWIPC | CLONE_NEWCGROUP
        steps: dict[str, Any] = dict(
            earlyIds=(0, 0),
            hostname=b"txspawn",
            loopback=True,
            propagation=MS_SLAVE,
            mountProc=True,
        )
        if os.path.exists("/proc/self/ns/time"):
            steps["timeOffsets"] = NO_OFFSETS
        # In the child's order.
        faults = [
            (ChildSetupStage.NAMESPACES, 0),
            (ChildSetupStage.IDMAP, _cspawn.IDMAP_SETGROUPS),
            (ChildSetupStage.SETGID, 0),
            (ChildSetupStage.SETUID, 0),
            (ChildSetupStage.HOSTNAME, 0),
            (ChildSetupStage.LOOPBACK, 0),
            (ChildSetupStage.MOUNT_PROPAGATION, 0),
            (ChildSetupStage.MOUNT_PROC, 0),
        ]
        if "timeOffsets" in steps:
            faults.append((ChildSetupStage.TIME_OFFSETS, _cspawn.TIME_UNSHARE))
        for mode, spawner in self.modeSpawners().items():
            for makeNamespaces in (selfMap, parentMap):
                ns = makeNamespaces(every, **steps)
                expected = list(faults)
                if not ns.mapsByChild:
                    expected.insert(2, (ChildSetupStage.SYNC, 0))
                self.runIn(spawner, ns, "true")  # every step works
                for stage, detail in expected:
                    where = f"{mode}, {stage.name}, by child: {ns.mapsByChild}"
                    before = openFDs()
                    e = self.assertRaises(
                        SpawnError,
                        self.runIn,
                        spawner,
                        ns,
                        "true",
                        injectedFault=(int(stage), INJECTED),
                    )
                    self.assertEqual(
                        (e.stage, e.errno, e.detail), (stage, INJECTED, detail), where
                    )
                    self.assertNoNewChildren(where)
                    self.assertEqual(openFDs(), before, where)
                bare = makeNamespaces()
                for stage, _ in expected[3:]:
                    self.runIn(
                        spawner, bare, "true", injectedFault=(int(stage), INJECTED)
                    )
            # Self-maps have no SYNC step.
            self.runIn(
                spawner,
                selfMap(),
                "true",
                injectedFault=(int(ChildSetupStage.SYNC), INJECTED),
            )

    def fakeInit(self) -> bytes:
        """
        L{_FAKE_INIT} as an executable file.
        """
        path = os.path.join(self.tmp, "fake-init")
        with open(path, "w") as f:
            f.write(f"#!{sys.executable}\n{_FAKE_INIT}")
        os.chmod(path, 0o755)
        return path.encode()

    def spawnInit(
        self, argv: tuple[bytes, ...], allow: int
    ) -> tuple[dict[str, Any], tuple[Any, ...], tuple[bytes, ...]]:
        """
        Spawn L{_FAKE_INIT} as init of a new pid namespace (through the
        extension, as L{CSpawner} does), its stdout a pipe; return its
        report, what the extension returned, and what init was given.
        """
        init = self.fakeInit()
        r, w = os.pipe2(os.O_CLOEXEC)
        errFd = w + 1
        statusFd = errFd + 1
        program: tuple[tuple[int, int, int], ...] = (
            (int(FdOpCode.DUP2), w, 1),
            (int(FdOpCode.DUP2), w, 2),
            (int(FdOpCode.CLOSE_RANGE), 0, 0),
            (int(FdOpCode.CLOSE_RANGE), 3, errFd - 1),
            (int(FdOpCode.CLOSE_RANGE), statusFd + 1, CLOSE_RANGE_MAX),
        )
        mask = b"%x" % sigbits(signal.SIGUSR1, signal.SIGTERM)
        initArgv = (
            *(b"txspawn-init", b"%d" % errFd, b"%d" % statusFd, mask, b"2"),
            *(b"/nonexistent/true", b"/bin/true", *argv),
        )
        try:
            outcome = _cspawn.spawn(
                *rawArgs(
                    ops=program,
                    errFd=errFd,
                    allow=allow,
                    namespaces=namespaceArgs(selfMap(CLONE_NEWPID)),
                    init=(init, initArgv, statusFd),
                ).values()
            )
        finally:
            os.close(w)
        output = b""
        while chunk := os.read(r, 65536):
            output += chunk
        os.close(r)
        return json.loads(output), outcome, initArgv

    def test_initExec(self) -> None:
        """
        With txspawn's init, the child execs the init program with the
        given argv instead of the command, with every signal still blocked
        (init sets the command's mask, given in its argv, itself), and the
        error pipe and the status pipe open and inheritable at the numbers
        in that argv.  The status pipe's read end comes back, close-on-exec
        and non-blocking, and carries what init wrote on it; nothing else
        is left open.
        """
        allModes = {
            "clone3": _cspawn.ALLOW_ALL,
            "clone": _cspawn.ALLOW_ALL & ~_cspawn.ALLOW_CLONE3,
            "fork-like": _cspawn.ALLOW_ALL & ~_cspawn.ALLOW_VFORK,
        }
        for mode, allow in allModes.items():
            before = openFDs()
            report, outcome, initArgv = self.spawnInit((b"true", b"x"), allow)
            pid, pidfd, record, _, statusRead = outcome
            try:
                self.assertIsNone(record, mode)
                self.assertEqual(report["argv"], [a.decode() for a in initArgv[1:]])
                self.assertEqual(report["pid"], 1, mode)
                # Every signal the kernel lets a process block.
                unblockable = sigbits(signal.SIGKILL, signal.SIGSTOP)
                self.assertEqual(report["blocked"], 2**64 - 1 - unblockable, mode)
                self.assertEqual(report["inheritable"], [True, True], mode)
                self.assertFalse(os.get_inheritable(statusRead), mode)
                self.assertTrue(os.get_blocking(statusRead) is False, mode)
                _, status = os.waitpid(pid, 0)
                self.assertEqual(os.waitstatus_to_exitcode(status), 5, mode)
                self.assertEqual(os.read(statusRead, 16), b"ABCD", mode)
            finally:
                os.close(statusRead)
                os.close(pidfd)
            self.assertEqual(openFDs(), before, mode)

    def test_initFailureKillsInit(self) -> None:
        """
        When a failure record comes while init is alive (its pid 2 could not
        exec), the extension kills init (C{SIGKILL}: it would wait forever
        here) before reaping it, closes the status pipe and returns the
        record: no child, zombie or fd is left.
        """
        for allow in (_cspawn.ALLOW_ALL, _cspawn.ALLOW_ALL & ~_cspawn.ALLOW_VFORK):
            before = openFDs()
            report, outcome, _ = self.spawnInit((b"fail",), allow)
            _, pidfd, record, _, statusRead = outcome
            self.assertEqual(report["pid"], 1)
            assert record is not None
            self.assertEqual(
                _wire.decodeFailure(record),
                _wire.ChildFailure(ChildSetupStage.EXEC, errno.ENOENT, 0),
            )
            self.assertEqual((pidfd, statusRead), (-1, -1))
            self.assertNoNewChildren()
            self.assertEqual(openFDs(), before)

    def test_initThroughSpawner(self) -> None:
        """
        L{CSpawner} execs txspawn's init for a plan that has it, and hands
        the status pipe's read end (non-blocking, close-on-exec) to the
        L{ChildProcess}, which takes the command's exact status from it
        once reaped, in every mode and for either kind of map.
        """
        problem = initProgramProblem()
        if problem is not None:
            raise SkipTest(problem)
        for mode, spawner in self.modeSpawners().items():
            for makeNamespaces in (selfMap, parentMap):
                before = openFDs()
                null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                try:
                    child = spawner.spawn(
                        makePlan(
                            b"/bin/sh",
                            argv=(b"sh", b"-c", b"kill -SEGV $$"),
                            namespaces=makeNamespaces(CLONE_NEWPID, init=initProgram()),
                        ),
                        {0: null, 1: null, 2: null},
                        None,
                    )
                finally:
                    os.close(null)
                where = f"{mode}, by child: {makeNamespaces is selfMap}"
                try:
                    statusFd = child.statusFd
                    assert statusFd is not None, where
                    self.assertFalse(os.get_inheritable(statusFd), where)
                    self.assertFalse(os.get_blocking(statusFd), where)
                    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
                    self.assertTrue(child.tryReap(), where)
                    assert child.status is not None, where
                    self.assertTrue(os.WIFSIGNALED(child.status), where)
                    self.assertEqual(os.WTERMSIG(child.status), signal.SIGSEGV, where)
                    self.assertIsNone(child.statusFd, where)
                finally:
                    child.closePidfd()
                self.assertEqual(openFDs(), before, where)

    def test_initExecFailure(self) -> None:
        """
        A fault injected at C{INIT} fails the exec of init, and so does an
        init program that is not there (C{ENOENT}): stage C{INIT}, no child
        and no fd left (the status pipe closed).
        """
        fakeInit = self.fakeInit()
        for fault, init, err in (
            ((int(ChildSetupStage.INIT), INJECTED), fakeInit, INJECTED),
            (None, b"/nonexistent/txspawn-init", errno.ENOENT),
        ):
            before = openFDs()
            _, pidfd, record, _, statusRead = _cspawn.spawn(
                *rawArgs(
                    namespaces=namespaceArgs(selfMap(CLONE_NEWPID)),
                    ops=(
                        (int(FdOpCode.CLOSE_RANGE), 0, 2),
                        (int(FdOpCode.CLOSE_RANGE), 5, CLOSE_RANGE_MAX),
                    ),
                    init=(init, (b"txspawn-init",), 4),
                    fault=fault,
                ).values()
            )
            assert record is not None
            self.assertEqual(
                _wire.decodeFailure(record),
                _wire.ChildFailure(ChildSetupStage.INIT, err, 0),
            )
            self.assertEqual((pidfd, statusRead), (-1, -1))
            self.assertNoNewChildren()
            self.assertEqual(openFDs(), before)


class ArgumentTests(CTestCase):
    """
    The extension checks its arguments before doing anything.
    """

    def call(self, **overrides: Any) -> Any:
        return _cspawn.spawn(*rawArgs(**overrides).values())

    def test_valid(self) -> None:
        """
        The baseline arguments spawn C{/bin/true}.
        """
        pid, pidfd, record, _, statusFd = self.call()
        self.assertEqual(statusFd, -1)
        os.close(pidfd)
        self.assertIsNone(record)
        self.assertEqual(waitExit(pid), 0)

    def test_badArguments(self) -> None:
        """
        Wrong types and values raise L{TypeError}/L{ValueError} naming the
        argument; no child is created and no fd leaks.
        """
        before = openFDs()
        cases: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"candidates": ()}, ValueError, "candidates"),
            ({"argv": [b"true"]}, TypeError, "argv"),
            ({"argv": (b"a\0b",)}, ValueError, "argv[0]"),
            ({"envp": ("A=1",)}, TypeError, "envp[0]"),
            ({"cwd": "/tmp"}, TypeError, "cwd"),
            ({"ops": ((99, 0, 0),)}, ValueError, "ops[0]"),
            ({"ops": ((1, 0),)}, TypeError, "ops[0]"),
            ({"errFd": -1}, ValueError, "errFd"),
            ({"filesBound": 8}, ValueError, "reserved"),
            ({"slots": ((1, 2),)}, TypeError, "slots"),
            ({"slots": (-1,)}, ValueError, "slots"),
            ({"umask": 0o1000}, ValueError, "umask"),
            ({"groups": (-1,)}, ValueError, "groups[0]"),
            ({"uid": 2**32}, ValueError, "uid"),
            ({"signalMask": (0,)}, ValueError, "signalMask[0]"),
            ({"deathSignal": 65}, ValueError, "deathSignal"),
            ({"allow": _cspawn.ALLOW_ALL + 1}, ValueError, "allow"),
        ]
        for overrides, exception, name in cases:
            e = self.assertRaises(exception, self.call, **overrides)
            self.assertIn(name, str(e), overrides)
        self.assertRaises(TypeError, _cspawn.spawn, 1, 2)
        self.assertEqual(openFDs(), before)
        self.assertNoNewChildren()


class Wait4Tests(CTestCase):
    """
    C{_cspawn.wait4}, the monitors' reaping call, is C{os.wait4}: the same
    results, values and errors.
    """

    def spawnShell(self, script: str) -> int:
        return os.posix_spawn("/bin/sh", ["sh", "-c", script], {})

    def test_exited(self) -> None:
        """
        For an exited child it returns C{(pid, status, rusage)} with the
        classic status and a L{resource.struct_rusage} whose counters are
        what the kernel charged (C{RUSAGE_CHILDREN} grows by the same
        amounts when the child is reaped).
        """
        pid = self.spawnShell("i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; exit 7")
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        got, status, usage = _cspawn.wait4(pid, os.WNOHANG)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.assertEqual((got, status), (pid, 7 << 8))
        self.assertIs(type(usage), resource.struct_rusage)
        self.assertEqual(
            [type(v) for v in usage], [float, float] + [int] * (len(usage) - 2)
        )
        for name in ("ru_utime", "ru_stime"):
            # Seconds as floats (microsecond resolution): the difference of
            # two sums may round the last microsecond the other way.
            charged = getattr(after, name) - getattr(before, name)
            self.assertLessEqual(abs(getattr(usage, name) - charged), 1.5e-6, name)
        for name in ("ru_minflt", "ru_majflt", "ru_inblock", "ru_nvcsw", "ru_nivcsw"):
            self.assertEqual(
                getattr(usage, name), getattr(after, name) - getattr(before, name)
            )
        self.assertGreater(usage.ru_minflt, 0)

    def test_killed(self) -> None:
        """
        A death by signal gives the signal status, as C{os.wait4}.
        """
        pid = self.spawnShell("kill -KILL $$")
        _, status, _ = _cspawn.wait4(pid, 0)
        self.assertTrue(os.WIFSIGNALED(status))
        self.assertEqual(os.WTERMSIG(status), signal.SIGKILL)

    def test_notExitedYet(self) -> None:
        """
        With C{WNOHANG} and a running child, the answer is C{os.wait4}'s:
        pid 0, status 0 and an all-zero rusage.
        """
        pid = self.spawnShell("exec sleep 60")
        try:
            self.assertEqual(_cspawn.wait4(pid, os.WNOHANG), os.wait4(pid, os.WNOHANG))
            self.assertEqual(_cspawn.wait4(pid, os.WNOHANG)[2], (0.0, 0.0) + (0,) * 14)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

    def test_noSuchChild(self) -> None:
        """
        ECHILD (nothing to reap) raises L{ChildProcessError}, as
        C{os.wait4}.
        """
        pid = self.spawnShell("exit 0")
        os.waitpid(pid, 0)
        self.assertRaises(ChildProcessError, _cspawn.wait4, pid, 0)
        self.assertRaises(ChildProcessError, _cspawn.wait4, pid, os.WNOHANG)

    def test_blockingReleasesGIL(self) -> None:
        """
        Without C{WNOHANG} the call blocks with the GIL released: a thread
        of ours runs meanwhile (here it is the thread that lets the child
        exit, so holding the GIL would deadlock).
        """
        r, w = os.pipe()
        pid = os.posix_spawn(
            "/bin/sh",
            ["sh", "-c", "read x; exit 5"],
            {},
            file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)],
        )
        os.close(r)

        def release() -> None:
            time.sleep(0.05)
            os.close(w)

        thread = threading.Thread(target=release)
        thread.start()
        try:
            _, status, _ = _cspawn.wait4(pid, 0)
        finally:
            thread.join()
        self.assertEqual(status, 5 << 8)

    def test_signalHandlerRaises(self) -> None:
        """
        A blocking call interrupted by a signal whose Python handler raises
        gives up with that exception (PEP 475); the child is left unreaped.
        A handler that returns lets the call go on waiting.
        """
        pid = self.spawnShell("exec sleep 60")
        calls: list[int] = []

        def handler(signum: int, frame: Any) -> None:
            calls.append(signum)
            if len(calls) == 2:
                raise ZeroDivisionError("from the handler")
            signal.setitimer(signal.ITIMER_REAL, 0.02)

        previous = signal.signal(signal.SIGALRM, handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            self.assertRaises(ZeroDivisionError, _cspawn.wait4, pid, 0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.assertEqual(calls, [signal.SIGALRM, signal.SIGALRM])

    def test_badArguments(self) -> None:
        """
        The wrong number or type of arguments, or a pid out of C{int}'s
        range, raise before any syscall.
        """
        self.assertRaises(TypeError, _cspawn.wait4, 1)
        self.assertRaises(TypeError, _cspawn.wait4, 1, 0, 0)
        self.assertRaises(TypeError, _cspawn.wait4, "1", 0)
        self.assertRaises(OverflowError, _cspawn.wait4, 2**40, 0)


#: Run as root from the checkout: open the leaf argv[1] and its
#: cgroup.procs, drop to nobody, then spawn `cat /proc/self/cgroup` into it
#: through the extension, with the procs fd opened as root and without
#: (-1: the extension opens it, as nobody).
_NOBODY_SCRIPT = """
import json, os, sys
from tests.test_cspawn import CAT_CGROUP_OPS, rawArgs
from txspawn import _cspawn
leaf = sys.argv[1]
d = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
p = os.open(leaf + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
report = []
for procs in (p, -1):
    r, w = os.pipe2(os.O_CLOEXEC)
    pid, pidfd, record, flags, _ = _cspawn.spawn(*rawArgs(
        candidates=(b"/bin/cat",), argv=(b"cat", b"/proc/self/cgroup"),
        ops=CAT_CGROUP_OPS(w), errFd=w + 1, cgroup=(d, procs, True)).values())
    os.close(w)
    out = os.read(r, 65536).decode()
    os.close(r)
    if record is None:
        os.waitpid(pid, 0)
        os.close(pidfd)
    report.append([record is None and record or record and list(record[4:8]),
                   flags, out])
print(json.dumps(report))
"""


def CAT_CGROUP_OPS(w: int) -> tuple[tuple[int, int, int], ...]:
    """
    The fd program of a child whose stdout is C{w} and that has nothing
    else open.
    """
    return (
        (int(FdOpCode.DUP2), w, 1),
        (int(FdOpCode.CLOSE_RANGE), 0, 0),
        (int(FdOpCode.CLOSE_RANGE), 2, CLOSE_RANGE_MAX),
    )


def cgroupFlags(flags: int) -> int:
    """
    The cgroup part of the flags of the extension's C{spawn}: how the
    child was placed, why not by the clone, and the refusal's errno.
    """
    return flags & (
        _cspawn.FLAG_CGROUP_CLONE
        | _cspawn.FLAG_CGROUP_PROCS
        | _cspawn.FLAG_CGROUP_KILLED
        | _cspawn.FLAG_CGROUP_NO_CLONE3
        | -(1 << _cspawn.CGROUP_ERRNO_SHIFT)
    )


class CgroupTests(CTestCase):
    """
    The extension's cgroup argument (issue 14): C{(dirFd, procsFd,
    useClone)}.  With C{useClone}, in the clone3 modes, the child is cloned
    into the cgroup of C{dirFd}; each refusal the kernel can be made to
    give here sends it through C{procsFd} instead, and the flags say how it
    was placed and why not by the clone.  (Both engines' behaviour, and the
    C{cgroup.kill} history, are in C{tests/test_cgroup_engines.py}.)
    """

    def setUp(self) -> None:
        super().setUp()
        self.mount = mountOrSkip()
        self.scratch = makeScratchCgroup(self, "cspawn-")

    def cgroup(self, name: str) -> str:
        path = os.path.join(self.scratch, name)
        os.mkdir(path)
        return path

    def dirFd(self, path: str) -> int:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.addCleanup(os.close, fd)
        return fd

    def procsFd(self, path: str) -> int:
        fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, fd)
        return fd

    def spawnCat(self, cgroup: Any, allow: int = -1) -> tuple[int, str]:
        """
        C{cat /proc/self/cgroup} through the extension with C{cgroup}:
        the flags, and the child's C{0::} line.
        """
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            pid, pidfd, record, flags, _ = _cspawn.spawn(
                *rawArgs(
                    candidates=(b"/bin/cat",),
                    argv=(b"cat", b"/proc/self/cgroup"),
                    ops=CAT_CGROUP_OPS(w),
                    errFd=w + 1,
                    cgroup=cgroup,
                    allow=_cspawn.ALLOW_ALL if allow < 0 else allow,
                ).values()
            )
        finally:
            os.close(w)
        try:
            out = b""
            while chunk := os.read(r, 65536):
                out += chunk
        finally:
            os.close(r)
        self.assertIsNone(record)
        if pidfd >= 0:
            os.close(pidfd)
        self.assertEqual(waitExit(pid), 0)
        line = next(x for x in out.decode().splitlines() if x.startswith("0::"))
        return flags, line

    def line(self, path: str) -> str:
        return "0::/" + os.path.relpath(path, self.mount)

    def test_placedByTheClone(self) -> None:
        """
        In the clone3 mode the child is cloned into the cgroup: the flags
        say so, with no refusal, and the extension never opened
        C{cgroup.procs} (C{procsFd} -1 is enough).
        """
        leaf = self.cgroup("leaf")
        flags, line = self.spawnCat((self.dirFd(leaf), -1, True))
        self.assertEqual(line, self.line(leaf))
        self.assertEqual(cgroupFlags(flags), _cspawn.FLAG_CGROUP_CLONE)
        self.assertTrue(flags & _cspawn.FLAG_CLONE3)

    def test_placedByProcs(self) -> None:
        """
        Without C{useClone}, or in a mode without clone3 (then flagged),
        the child writes C{procsFd}, or the leaf's C{cgroup.procs} the
        extension opened under C{dirFd}.
        """
        leaf = self.cgroup("leaf")
        dirFd = self.dirFd(leaf)
        for cgroup, allow, noClone3 in [
            ((dirFd, -1, False), -1, 0),
            ((dirFd, self.procsFd(leaf), False), -1, 0),
            ((dirFd, -1, True), _cspawn.ALLOW_ALL & ~_cspawn.ALLOW_CLONE3, 1),
            ((dirFd, -1, True), 0, 1),
        ]:
            flags, line = self.spawnCat(cgroup, allow)
            self.assertEqual(line, self.line(leaf), cgroup)
            self.assertEqual(
                cgroupFlags(flags),
                _cspawn.FLAG_CGROUP_PROCS
                | (_cspawn.FLAG_CGROUP_NO_CLONE3 if noClone3 else 0),
                (cgroup, allow),
            )

    def test_refusals(self) -> None:
        """
        Each refusal of C{CLONE_INTO_CGROUP} that can be provoked here
        sends the child through C{procsFd} (here the leaf's), and the
        flags carry the errno: C{EBADF} for a closed fd and for a
        directory that is no cgroup, C{EBUSY} for a cgroup with a
        controller enabled for its children, C{EOPNOTSUPP} for a
        domain-invalid one, C{ENOENT} for a removed one.
        """
        leaf = self.cgroup("leaf")
        procs = self.procsFd(leaf)
        enableHugetlbAtRoot(self)
        busy = self.cgroup("busy")
        self.cgroup("busy/child")
        with open(os.path.join(self.scratch, "cgroup.subtree_control"), "w") as f:
            f.write("+hugetlb")
        with open(os.path.join(busy, "cgroup.subtree_control"), "w") as f:
            f.write("+hugetlb")
        # Beside a threaded sibling, in a parent that enables nothing.
        self.cgroup("domain")
        self.cgroup("domain/threaded")
        with open(os.path.join(self.scratch, "domain/threaded/cgroup.type"), "w") as f:
            f.write("threaded")
        invalid = self.cgroup("domain/invalid")
        removed = self.dirFd(self.cgroup("removed"))
        os.rmdir(os.path.join(self.scratch, "removed"))
        cases = [
            (self.dirFd(self.tmp), errno.EBADF),
            (self.dirFd(busy), errno.EBUSY),
            (self.dirFd(invalid), errno.EOPNOTSUPP),
            (removed, errno.ENOENT),
        ]
        # Far above every fd open (new ones take the lowest free numbers).
        closed = max(openFDs()) + 64
        for dirFd, expected in [(closed, errno.EBADF), *cases]:
            flags, line = self.spawnCat((dirFd, procs, True))
            self.assertEqual(line, self.line(leaf), expected)
            self.assertEqual(
                cgroupFlags(flags),
                expected << _cspawn.CGROUP_ERRNO_SHIFT | _cspawn.FLAG_CGROUP_PROCS,
            )

    def test_refusedAsNobody(self) -> None:
        """
        C{EACCES}: a spawner without write access to the target (nobody,
        with the leaf root's) is refused the clone; the child then moves
        itself through a C{cgroup.procs} fd opened while root (the kernel
        checks the opener's credentials), and without one the extension's
        own open fails, as stage C{CGROUP}.
        """
        leaf = self.cgroup("leaf")
        done = subprocess.run(
            [sys.executable, "-c", _NOBODY_SCRIPT, leaf],
            capture_output=True,
            check=False,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        self.assertEqual(done.returncode, 0, done.stderr.decode())
        (okRecord, okFlags, okOut), (record, flags, out) = json.loads(done.stdout)
        self.assertIsNone(okRecord)
        self.assertIn(self.line(leaf), okOut.splitlines())
        self.assertEqual(okFlags >> _cspawn.CGROUP_ERRNO_SHIFT, errno.EACCES)
        self.assertTrue(okFlags & _cspawn.FLAG_CGROUP_PROCS)
        stage = list(struct.pack("=I", _cspawn.STAGE_CGROUP))
        self.assertEqual(record, stage)
        self.assertEqual(flags >> _cspawn.CGROUP_ERRNO_SHIFT, errno.EACCES)
        self.assertEqual(out, "")

    def test_probe(self) -> None:
        """
        C{probeCloneIntoCgroup} clones a child that exits 0 into a cgroup:
        0 for a fresh one; C{-errno} when clone3 refuses; the wait status
        of a child the kernel killed (C{SIGKILL}) for a cgroup with another
        C{cgroup.kill} history than ours.
        """
        self.assertEqual(_cspawn.probeCloneIntoCgroup(self.dirFd(self.cgroup("a"))), 0)
        self.assertEqual(
            _cspawn.probeCloneIntoCgroup(self.dirFd(self.tmp)), -errno.EBADF
        )
        killed = self.cgroup("killed")
        with open(os.path.join(killed, "cgroup.kill"), "w") as f:
            f.write("1")
        status = _cspawn.probeCloneIntoCgroup(self.dirFd(killed))
        self.assertTrue(os.WIFSIGNALED(status), status)
        self.assertEqual(os.WTERMSIG(status), signal.SIGKILL)
        self.assertRaises(ValueError, _cspawn.probeCloneIntoCgroup, -1)

    def test_badArguments(self) -> None:
        """
        A malformed cgroup argument raises, naming it, before anything is
        done.
        """
        before = openFDs()
        for cgroup, exception, name in [
            ((3, -1), TypeError, "cgroup"),
            ([3, -1, True], TypeError, "cgroup"),
            ((-1, -1, True), ValueError, "cgroup dirFd"),
            ((3, -2, True), ValueError, "cgroup procsFd"),
            (("3", -1, True), TypeError, "cgroup dirFd"),
        ]:
            e = self.assertRaises(
                exception, _cspawn.spawn, *rawArgs(cgroup=cgroup).values()
            )
            self.assertIn(name, str(e))
        self.assertEqual(openFDs(), before)
        self.assertNoNewChildren()
