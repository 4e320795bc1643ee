"""
Tests for L{txspawn._engine.osposixspawn}: what the C{os.posix_spawn}
backend does differently with the Python version and the libc, each side
tested where it can be reached.

  - Closing every other fd: C{os.POSIX_SPAWN_CLOSEFROM} (Python >= 3.13)
    or the listing of C{/proc/self/fd} (3.11, 3.12).  The 3.11 leg of CI
    runs one side, the 3.13 leg the other.
  - glibc's internal signals 32 and 33, which C{os.posix_spawn} cannot
    reset: the child gets them ignored from glibc < 2.38, or from any glibc
    whose C{clone3} is refused, and with their default disposition from
    glibc >= 2.38 on C{clone3} (L{tests.libcspawn} says why).  The old
    side is reached on every glibc by refusing C{clone3} with a seccomp
    filter; the new side where glibc is >= 2.38 (the 3.13 leg, Debian 13).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.engineutil import sigbits, waitExit
from tests.hygiene import HygieneMixin
from tests.libcspawn import (
    CLONE3_ARCHES,
    glibcVersion,
    spawnIgnoresInternalSignals,
)
from txspawn._engine.osposixspawn import OsPosixSpawn
from txspawn._engine.spawnactions import Close, CloseFrom, Dup2, SpawnAttributes

HELPER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "helpers", "spawnsigign.py"
)
#: The checkout's root (holding the C{txspawn} and C{tests} packages).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: glibc's internal signals, as C{/proc/PID/status} shows them.
INTERNAL = sigbits(32, 33)
#: What the helper's parent ignores: SIGHUP (the helper), SIGPIPE and
#: SIGXFSZ (Python itself).
PARENT_IGNORES = sigbits(1, 13, 25)

HAS_CLOSEFROM = hasattr(os, "POSIX_SPAWN_CLOSEFROM")


class CloseFromTests(HygieneMixin, SynchronousTestCase):
    """
    L{CloseFrom} through C{os.posix_spawn}: one C{POSIX_SPAWN_CLOSEFROM}
    action where Python has it, one C{CLOSE} per inheritable fd listed when
    the spawn is prepared otherwise.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def fdsAfterLateOpen(self) -> tuple[list[str], tuple[int, int]]:
        """
        Prepare a spawn that closes every fd from 3 up, then open an
        inheritable pipe, then spawn: which fds does the child have?

        @return: The child's fds (sorted names) and the pipe's two fds.
        """
        out = self.tmpFile("ls")
        prepared = OsPosixSpawn().prepare(
            [b"sh", b"-c", b"ls /proc/$$/fd"],
            [],
            [Close(0), Dup2(out, 1), Close(2), CloseFrom(3)],
            SpawnAttributes(),
        )
        r, w = self.pipe()
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        try:
            pid = prepared.spawn(b"/bin/sh", [])
        finally:
            prepared.close()
        self.assertEqual(waitExit(pid), 0)
        with open(os.path.join(self.tmp, "ls")) as f:
            return sorted(f.read().split()), (r, w)

    def test_closeFromInChild(self) -> None:
        """
        With C{os.POSIX_SPAWN_CLOSEFROM} the fds are closed in the child:
        an inheritable fd opened after the spawn was prepared (as by
        another thread) does not leak.
        """
        if not HAS_CLOSEFROM:
            raise self.skipTest(
                f"Python {sys.version_info[0]}.{sys.version_info[1]} has no "
                "os.POSIX_SPAWN_CLOSEFROM (3.13+): the 3.13 leg runs this"
            )
        fds, _ = self.fdsAfterLateOpen()
        self.assertEqual(fds, ["1"])

    def test_closeFromListed(self) -> None:
        """
        Without C{os.POSIX_SPAWN_CLOSEFROM} the fds to close are listed when
        the spawn is prepared: an inheritable fd opened afterwards leaks
        into the child (the documented race of the slow path).
        """
        if HAS_CLOSEFROM:
            raise self.skipTest(
                "os.POSIX_SPAWN_CLOSEFROM is there: the fds are closed in "
                "the child (the 3.11 leg runs this)"
            )
        fds, (r, w) = self.fdsAfterLateOpen()
        self.assertEqual(fds, sorted(["1", str(r), str(w)]))


class CloseFromVersionTests(SynchronousTestCase):
    """
    Which Pythons have C{os.POSIX_SPAWN_CLOSEFROM}.
    """

    def test_closeFromByVersion(self) -> None:
        """
        On glibc >= 2.34 (which has C{posix_spawn_file_actions_addclosefrom_np})
        Python has C{os.POSIX_SPAWN_CLOSEFROM} from 3.13 on, and not before:
        each CI leg takes the side it should.
        """
        glibc = glibcVersion()
        if glibc is None or glibc < (2, 34):
            raise self.skipTest(f"not glibc >= 2.34 ({glibc})")
        self.assertEqual(HAS_CLOSEFROM, sys.version_info >= (3, 13))


class InternalSignalsTests(SynchronousTestCase):
    """
    Signals 32 and 33 in a C{posix_spawn} child, by spawner, with C{clone3}
    refused and not (each in a helper process: see
    C{tests/helpers/spawnsigign.py}).
    """

    def sigIgn(self, spawner: str, refuseClone3: bool = False) -> dict[str, Any]:
        """
        Run the helper; return what it reports.
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [ROOT, *filter(None, [env.get("PYTHONPATH")])]
        )
        args = [sys.executable, HELPER]
        if refuseClone3:
            args.append("--refuse-clone3")
        result = subprocess.run(
            [*args, spawner], env=env, capture_output=True, timeout=120
        )
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        facts: dict[str, Any] = json.loads(result.stdout)
        return facts

    def requireGlibc(self) -> tuple[int, int]:
        glibc = glibcVersion()
        if glibc is None:
            raise self.skipTest("not glibc")
        return glibc

    def test_clone3Refused(self) -> None:
        """
        With C{clone3} refused, glibc's child ignores 32 and 33 (whatever
        its version): the C{os.posix_spawn} backend cannot prevent it and
        its child starts with exactly those two ignored (every other signal
        the parent ignored is reset); the C{ctypes} backend puts them in
        the C{SETSIGDEF} set and its child ignores nothing.
        """
        self.requireGlibc()
        if os.uname().machine not in CLONE3_ARCHES:
            raise self.skipTest(f"no seccomp filter for {os.uname().machine}")
        facts = {name: self.sigIgn(name, refuseClone3=True) for name in SPAWNERS}
        self.assertEqual(
            {name: f["sigIgn"] for name, f in facts.items()},
            {"libc": PARENT_IGNORES | INTERNAL, "os": INTERNAL, "glibc": 0},
        )
        self.assertEqual({f["clone3Errno"] for f in facts.values()}, {38})

    def test_clone3Used(self) -> None:
        """
        glibc >= 2.38 starting its child with C{clone3(CLONE_CLEAR_SIGHAND)}
        leaves 32 and 33 alone: every spawner's child has them at their
        default (only what the parent ignored is inherited by the bare
        C{os.posix_spawn}).
        """
        glibc = self.requireGlibc()
        if spawnIgnoresInternalSignals() is not False:
            raise self.skipTest(
                f"glibc {glibc[0]}.{glibc[1]}'s posix_spawn does not use clone3 "
                "here (glibc < 2.38, or clone3 refused): the 3.13 leg, on "
                "glibc 2.41, runs this"
            )
        facts = {name: self.sigIgn(name) for name in SPAWNERS}
        self.assertEqual(
            {name: f["sigIgn"] for name, f in facts.items()},
            {"libc": PARENT_IGNORES, "os": 0, "glibc": 0},
        )

    def test_oldGlibc(self) -> None:
        """
        glibc < 2.38 never uses C{clone3} for C{posix_spawn}: its child
        ignores 32 and 33 unless they are in the C{SETSIGDEF} set, which
        only the C{ctypes} backend can do.
        """
        glibc = self.requireGlibc()
        if glibc >= (2, 38):
            raise self.skipTest(
                f"glibc {glibc[0]}.{glibc[1]} >= 2.38 (test_clone3Refused "
                "reaches its old path here): the 3.11 leg, on glibc 2.36, "
                "runs this"
            )
        facts = {name: self.sigIgn(name) for name in SPAWNERS}
        self.assertEqual(
            {name: f["sigIgn"] for name, f in facts.items()},
            {"libc": PARENT_IGNORES | INTERNAL, "os": INTERNAL, "glibc": 0},
        )

    def test_prediction(self) -> None:
        """
        L{spawnIgnoresInternalSignals}, which the engine tests take their
        expectation from, says what glibc's bare C{posix_spawn} really
        does here.
        """
        expected = spawnIgnoresInternalSignals()
        if expected is None:
            raise self.skipTest("not glibc on a machine the tests know")
        self.assertEqual(bool(self.sigIgn("libc")["sigIgn"] & INTERNAL), expected)


#: The spawners of the helper (see its docstring).
SPAWNERS = ("libc", "os", "glibc")
