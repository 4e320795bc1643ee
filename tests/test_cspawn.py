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

import errno
import importlib.machinery
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.engineutil import makePlan, sigbits, waitExit
from tests.hygiene import HygieneMixin, openFDs
from tests.test_engines import C_UNAVAILABLE, REQUIRE_C
from txspawn import _engines, _wire
from txspawn._fdops import CLOSE_RANGE_MAX, FdOpCode
from txspawn.errors import ChildSetupStage, SpawnError

if C_UNAVAILABLE is None:
    from txspawn import _cspawn
    from txspawn._cengine import CSpawner, FdSlots, defaultSlots

TRUE = b"/bin/true"


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
from txspawn._cengine import CSpawner
from txspawn._pyspawn import PythonSpawner

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


class SlotTests(CTestCase):
    """
    Slot mode: the fds a child needs are moved into reserved low numbers so
    that the child can start on the parent's fd table (C{CLONE_FILES}).
    """

    def ownSlots(self, count: int = 4) -> FdSlots:
        slots = FdSlots.reserve(count)
        assert slots is not None
        self.addCleanup(slots.close)
        return slots

    def assertSlotsIntact(self, slots: FdSlots) -> None:
        ident = os.fstat(slots.placeholder)
        for fd in slots.numbers:
            st = os.fstat(fd)
            self.assertEqual((st.st_dev, st.st_ino), (ident.st_dev, ident.st_ino))
            self.assertFalse(os.get_inheritable(fd))

    def test_defaultSlotsReserved(self) -> None:
        """
        The process-wide slots are reserved at import, low, and usable.
        """
        slots = defaultSlots()
        self.assertIsNotNone(slots)
        assert slots is not None
        self.assertEqual(len(slots.numbers), 16)
        self.assertGreaterEqual(min(slots.numbers), 3)
        spawner = CSpawner()
        self.assertIsNone(spawner.slotStatus())
        self.spawnTrue(spawner)
        self.assertTrue(spawner.lastUsedSlots)

    def test_slotsRestoredAndPipesClose(self) -> None:
        """
        After a slot-mode spawn every slot holds the placeholder again: no
        duplicate of a pipe end lingers, so the child sees EOF on its stdin
        as soon as the parent closes its end.
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
        os.write(w, b"data")
        os.close(w)
        try:
            self.assertEqual(waitExit(child.pid), 0)  # cat saw EOF
        finally:
            child.closePidfd()

    def test_highInheritableFdsNeverLeak(self) -> None:
        """
        Inheritable fds far above the slots (where C{CLONE_FILES} children
        start) never reach a child.
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
        A spawn needing more fds than there are slots takes the ordinary
        path and still gives the child exactly its fds.
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

    def test_stolenSlotNeverClobbered(self) -> None:
        """
        If other code closed a slot and the number now holds someone else's
        fd, txspawn notices, never overwrites that fd, gives slot mode up
        with a reason, and the spawn still works.
        """
        slots = self.ownSlots()
        spawner = CSpawner(slots=slots)
        victim = slots.numbers[0]
        other = self.tmpFile("other")
        os.dup2(other, victim, inheritable=False)  # "someone else's" fd now
        self.spawnTrue(spawner)
        self.assertFalse(spawner.lastUsedSlots)
        self.assertEqual(os.fstat(victim).st_ino, os.fstat(other).st_ino)
        self.assertIn(f"reserved fd {victim}", spawner.slotStatus() or "")

    def test_replacedPlaceholderNeverTrusted(self) -> None:
        """
        If other code replaced the placeholder and every slot with one other
        file (so the slots all still match the placeholder), the extension
        notices that the placeholder is no longer the pipe the slots were
        reserved with: it touches none of them, slot mode is given up naming
        the placeholder, and the spawn still works.
        """
        slots = self.ownSlots()
        spawner = CSpawner(slots=slots)
        other = self.tmpFile("other")
        for fd in (slots.placeholder, *slots.numbers):
            os.dup2(other, fd, inheritable=False)
        self.spawnTrue(spawner)
        self.assertFalse(spawner.lastUsedSlots)
        for fd in (slots.placeholder, *slots.numbers):
            self.assertEqual(os.fstat(fd).st_ino, os.fstat(other).st_ino)
        self.assertIn(f"placeholder fd {slots.placeholder}", spawner.slotStatus() or "")
        # Given up for good: the next spawn does not even try.
        self.spawnTrue(spawner)
        self.assertFalse(spawner.lastUsedSlots)

    def test_layoutMemoised(self) -> None:
        """
        The slot layout of a map is computed once and reused; a map that
        does not fit the slots (more distinct fds than slots) has none.
        """
        slots = self.ownSlots(2)
        fdMap = {0: 100, 1: 101}
        self.assertIsNone(slots.layout(fdMap))
        layout = slots.layout({0: 100, 1: 100})
        assert layout is not None
        self.assertEqual(layout.pairs, ((100, slots.numbers[0]),))
        self.assertEqual(layout.errFd, slots.numbers[1])
        self.assertIs(slots.layout({0: 100, 1: 100}), layout)
        self.assertIsNone(slots.layout({0: slots.numbers[0]}))
        self.assertIsNone(slots.layout({0: slots.placeholder}))

    def test_closedSourceFd(self) -> None:
        """
        A source fd closed since the plan was made fails with stage C{FDS},
        C{EBADF}, in slot mode (the parent's C{dup3} into the slot fails)
        and in the ordinary mode (the child's C{dup2} fails); the slots are
        restored and nothing leaks.
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
            pid, pidfd, record, _ = _cspawn.spawn(
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


class ArgumentTests(CTestCase):
    """
    The extension checks its arguments before doing anything.
    """

    def call(self, **overrides: Any) -> Any:
        args: dict[str, Any] = dict(
            candidates=(TRUE,),
            argv=(b"true",),
            envp=(),
            cwd=None,
            ops=((int(FdOpCode.CLOSE_RANGE), 0, CLOSE_RANGE_MAX),),
            errFd=3,
            slots=(),
            filesBound=0,
            placeholder=None,
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
        )
        args.update(overrides)
        return _cspawn.spawn(*args.values())

    def test_valid(self) -> None:
        """
        The baseline arguments spawn C{/bin/true}.
        """
        pid, pidfd, record, _ = self.call()
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
            ({"filesBound": 8}, ValueError, "placeholder"),
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
