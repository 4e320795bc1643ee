# -*- test-case-name: tests.test_engines_select -*-
"""
Tests for L{txspawn._engine.selection}: engine selection by name, environment and
availability.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txspawn._engine.pyengine import PythonSpawner
from txspawn._engine.selection import (
    ENGINE_ENV,
    EngineUnavailable,
    availableSpawners,
    selectSpawner,
)
from txspawn.interfaces import ISpawner


class SelectTests(SynchronousTestCase):
    """
    L{selectSpawner} and L{availableSpawners}.
    """

    def test_python(self) -> None:
        """
        C{"python"} is always available and gives a L{PythonSpawner}.
        """
        spawner = selectSpawner("python")
        self.assertIsInstance(spawner, PythonSpawner)
        self.assertTrue(verifyObject(ISpawner, spawner))
        self.assertIsNone(availableSpawners()["python"])

    def test_fresh(self) -> None:
        """
        Each call builds a new spawner.
        """
        self.assertIsNot(selectSpawner("python"), selectSpawner("python"))

    def test_unknownName(self) -> None:
        """
        An unknown name raises L{ValueError} naming the argument and the
        choices.
        """
        e = self.assertRaises(ValueError, selectSpawner, "rust")
        self.assertIn("name", str(e))
        self.assertIn("python", str(e))
        self.assertIn("'rust'", str(e))

    def test_unknownFromEnvironment(self) -> None:
        """
        An unknown C{TXSPAWN_ENGINE} raises L{ValueError} naming the
        variable.
        """
        e = self.assertRaises(ValueError, selectSpawner, None, {ENGINE_ENV: "rust"})
        self.assertIn(ENGINE_ENV, str(e))

    def test_environment(self) -> None:
        """
        With no name, C{TXSPAWN_ENGINE} picks the engine.
        """
        spawner = selectSpawner(None, {ENGINE_ENV: "python"})
        self.assertEqual(spawner.name, "python")

    def test_emptyEnvironmentMeansBest(self) -> None:
        """
        An empty C{TXSPAWN_ENGINE} is the same as an unset one: the best
        available engine.
        """
        best = next(n for n, r in availableSpawners().items() if r is None)
        self.assertEqual(selectSpawner(None, {ENGINE_ENV: ""}).name, best)
        self.assertEqual(selectSpawner(None, {}).name, best)

    def test_availableOrder(self) -> None:
        """
        L{availableSpawners} lists the C engine first (preferred) then the
        Python engine, with a reason for each unavailable one.
        """
        available = availableSpawners()
        self.assertEqual(list(available), ["c", "python"])
        for name, reason in available.items():
            if reason is not None:
                self.assertIsInstance(reason, str)
                self.assertTrue(reason, name)

    def test_cEngine(self) -> None:
        """
        C{"c"} either gives a spawner named C{"c"}, or raises
        L{EngineUnavailable} with the same reason L{availableSpawners}
        reports, and the default falls back to the Python engine.
        """
        reason = availableSpawners()["c"]
        if reason is None:
            spawner = selectSpawner("c")
            self.assertEqual(spawner.name, "c")
            self.assertEqual(selectSpawner(None, {}).name, "c")
        else:
            e = self.assertRaises(EngineUnavailable, selectSpawner, "c")
            self.assertEqual(e.reason, reason)
            self.assertEqual(e.engine, "c")
            self.assertIn(reason, str(e))
            self.assertEqual(selectSpawner(None, {}).name, "python")
