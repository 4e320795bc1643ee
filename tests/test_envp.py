# -*- test-case-name: tests.test_envp -*-
"""
Tests for an environment that names a key twice (L{txspawn._engine.envp}, and
L{txspawn._plan.argumentchecks}'s
encoding): what the child gets, on every spawn path of
both engines and through C{spawnProcess}, compared with stock Twisted's
two paths.

Stock Twisted hands its C{env} mapping to CPython's C{execve} (fork path)
or C{posix_spawnp}, which encode it entry by entry: a C{str} and a C{bytes}
key that encode alike (C{twisted.web.twcgi} gives C{CONTENT_LENGTH} so) are
both passed, in order, and the child's C{getenv} and C{os.environ} see the
first.  Each test here reads the child's C{/proc/self/environ}.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any

from twisted.internet import process as twistedProcess
from twisted.trial.unittest import SynchronousTestCase

from tests.builders import (
    PYTHON,
    MixinBase,
    RecordingProtocol,
    makeTestCaseClasses,
    python,
)
from tests.engineutil import BASE_ENV, makePlan, waitExit
from tests.hygiene import HygieneMixin
from tests.test_engines import C_UNAVAILABLE, makeSpawner
from txspawn._engine.envp import EnvEntries, envMapping
from txspawn._engine.libcposixspawn import LibcPosixSpawn
from txspawn._engine.osposixspawn import OsPosixSpawn
from txspawn._engine.pyengine import PythonSpawner
from txspawn.interfaces import ISpawner

__all__ = ["EngineSameKeyTwiceTests", "EnvMappingTests", "SpawnSameKeyTwiceMixin"]

#: The child: its raw environment entries (and what C{os.environ} says
#: C{A} is), as C{repr} on stdout.
_REPORT_ENVIRON = (
    "import os, sys; "
    "entries = open('/proc/self/environ', 'rb').read().split(b'\\0')[:-1]; "
    "sys.stdout.write(repr((entries, os.environb.get(b'A'))))"
)

#: An environment with C{A} twice, as twcgi builds one: a C{str} key, then
#: another entry, then the C{bytes} key.
SAME_KEY_TWICE: dict[str | bytes, str | bytes] = {
    "PYTHONCOERCECLOCALE": "0",
    "A": "first",
    "B": "x",
    b"A": b"second",
}

#: What the child sees for L{SAME_KEY_TWICE}, as stock Twisted gives it.
EXPECTED = (
    [b"PYTHONCOERCECLOCALE=0", b"A=first", b"B=x", b"A=second"],
    b"first",
)


def _parse(out: bytes) -> Any:
    """
    What L{_REPORT_ENVIRON} wrote.
    """
    return ast.literal_eval(out.decode("ascii"))


class EnvMappingTests(SynchronousTestCase):
    """
    L{envMapping}: the mapping C{os.execve} / C{os.posix_spawn} get.
    """

    def test_noRepeatIsDict(self) -> None:
        """
        Without a repeated key the mapping is a plain C{dict}, in order.
        """
        env = envMapping((b"A=1", b"B=x=y", b"C="))
        self.assertIs(type(env), dict)
        self.assertEqual(list(env.items()), [(b"A", b"1"), (b"B", b"x=y"), (b"C", b"")])

    def test_repeatIsEveryEntry(self) -> None:
        """
        With a repeated key the mapping is an L{EnvEntries} whose C{len},
        C{keys()} and C{values()} (what CPython encodes from) list every
        entry in order, and whose lookup gives the first value.
        """
        env = envMapping((b"A=1", b"B=x", b"A=2=3"))
        self.assertIsInstance(env, EnvEntries)
        self.assertEqual(len(env), 3)
        self.assertEqual(env.keys(), [b"A", b"B", b"A"])
        self.assertEqual(env.values(), [b"1", b"x", b"2=3"])
        self.assertEqual(env[b"A"], b"1")
        self.assertEqual(list(env), [b"A", b"B", b"A"])
        self.assertRaises(KeyError, env.__getitem__, b"C")

    def test_execveTakesEveryEntry(self) -> None:
        """
        C{os.posix_spawn} passes every entry of an L{EnvEntries} to the
        child, in order.
        """
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        try:
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-c", _REPORT_ENVIRON],
                EnvEntries([(b"A", b"1"), (b"B", b"x"), (b"A", b"2")]),
                file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)],
            )
        finally:
            os.close(w)
        with os.fdopen(os.dup(r), "rb") as f:
            out = f.read()
        self.assertEqual(waitExit(pid), 0)
        self.assertEqual(_parse(out), ([b"A=1", b"B=x", b"A=2"], b"1"))


class EngineSameKeyTwiceTests(HygieneMixin, SynchronousTestCase):
    """
    Every spawn path of both engines passes a plan's repeated key as it is.
    """

    def setUp(self) -> None:
        self.setUpHygiene()

    def childEnviron(self, spawner: ISpawner, **planArgs: Any) -> Any:
        """
        Spawn L{_REPORT_ENVIRON} with C{A} twice in the plan and return what
        it reports.
        """
        envp = (*BASE_ENV, b"A=first", b"B=x", b"A=second")
        plan = makePlan(
            argv=(PYTHON, b"-c", _REPORT_ENVIRON.encode()), envp=envp, **planArgs
        )
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            child = spawner.spawn(plan, {0: null, 1: w, 2: null}, None)
        finally:
            os.close(w)
            os.close(null)
        try:
            with os.fdopen(os.dup(r), "rb") as f:
                out = f.read()
            self.assertEqual(waitExit(child.pid), 0)
        finally:
            child.closePidfd()
        self.assertEqual(
            _parse(out),
            ([*BASE_ENV, b"A=first", b"B=x", b"A=second"], b"first"),
        )

    def test_pythonPosixSpawnLibc(self) -> None:
        """
        The Python engine's C{posix_spawn} through glibc.
        """
        self.childEnviron(
            PythonSpawner(method="posix_spawn", posixSpawn=LibcPosixSpawn())
        )

    def test_pythonPosixSpawnOs(self) -> None:
        """
        The Python engine's C{posix_spawn} through C{os.posix_spawn}.
        """
        self.childEnviron(
            PythonSpawner(method="posix_spawn", posixSpawn=OsPosixSpawn())
        )

    def test_pythonFork(self) -> None:
        """
        The Python engine's fork path (C{os.execve} in the child), as for
        C{path=}.
        """
        self.childEnviron(PythonSpawner(method="fork"), cwd=b"/")

    def test_cEngine(self) -> None:
        """
        The C engine, in its default mode and in its fork-like mode.
        """
        if C_UNAVAILABLE is not None:
            raise self.skipTest(C_UNAVAILABLE)
        self.childEnviron(makeSpawner("c"), cwd=b"/")
        self.childEnviron(makeSpawner("c", vfork=False, slots=False))


class SpawnSameKeyTwiceMixin(MixinBase):
    """
    C{spawnProcess} with C{env} naming a key twice gives the child what
    stock Twisted gives it, with and without C{path=} (Twisted's fork and
    C{posix_spawnp} paths; the Python engine's fork and C{posix_spawn}
    paths).
    """

    def runChildren(self, reactor: Any, spawns: list[Any]) -> list[Any]:
        """
        Start each of C{spawns} (called with a fresh L{RecordingProtocol})
        once C{reactor} runs, run it until every child ended, and return
        what each child reported.
        """
        protocols = [RecordingProtocol() for _ in spawns]
        pending = len(protocols)

        def ended(_: object) -> None:
            nonlocal pending
            pending -= 1
            if not pending:
                reactor.callLater(0, reactor.stop)

        def start() -> None:
            for spawn, proto in zip(spawns, protocols, strict=True):
                proto.ended.addBoth(ended)
                spawn(proto)

        reactor.callWhenRunning(start)
        self.runReactor(reactor)
        reports = []
        for proto in protocols:
            self.assertEqual(proto.endedReason.value.exitCode, 0, proto.output)
            reports.append(_parse(proto.output.get(1, b"None")))
        return reports

    def test_sameAsStock(self) -> None:
        """
        Both entries reach the child, in C{env}'s order, and the child's
        C{os.environ} sees the first: exactly what a stock Twisted
        C{Process} (C{posix_spawnp} without C{path}, fork with it) spawned
        beside it reports.
        """
        reactor = self.buildReactor()
        argv = python(_REPORT_ENVIRON)
        spawns = []
        for path in (None, "/"):
            spawns.append(
                lambda proto, path=path: reactor.spawnProcess(
                    proto, PYTHON, argv, dict(SAME_KEY_TWICE), path
                )
            )
            spawns.append(
                lambda proto, path=path: twistedProcess.Process(
                    reactor, PYTHON, argv, dict(SAME_KEY_TWICE), path, proto
                )
            )
        reports = self.runChildren(reactor, spawns)
        self.assertEqual(reports, [EXPECTED] * 4)


globals().update(makeTestCaseClasses(SpawnSameKeyTwiceMixin))
