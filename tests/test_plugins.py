# -*- test-case-name: tests.test_plugins -*-
"""
Tests for txspawn's Twisted plugin dropins (C{twisted/plugins/}).
"""

from __future__ import annotations

import os
from typing import cast

from twisted.application.reactors import IReactorInstaller, Reactor, getReactorTypes
from twisted.plugin import IPlugin, getPlugins
from twisted.trial.unittest import SynchronousTestCase

import twisted.plugins

__all__ = ["ReactorPluginTests"]


def _txspawnReactorPlugins() -> list[Reactor]:
    """
    The C{txspawn} entries among the reactor plugins Twisted finds.
    """
    return [
        cast(Reactor, p)
        for p in getPlugins(IReactorInstaller)
        if p.shortName == "txspawn"
    ]


class ReactorPluginTests(SynchronousTestCase):
    """
    The C{txspawn} reactor plugin is found by Twisted's plugin system.
    """

    def test_found(self) -> None:
        """
        C{getPlugins(IReactorInstaller)} yields exactly one C{txspawn}
        entry, pointing at L{txspawn.reactor}, with a one-line description.
        """
        found = _txspawnReactorPlugins()
        self.assertEqual(len(found), 1)
        [plugin] = found
        self.assertTrue(IPlugin.providedBy(plugin))
        self.assertEqual(plugin.moduleName, "txspawn.reactor")
        self.assertTrue(plugin.description)
        self.assertNotIn("\n", plugin.description)

    def test_listedAsReactorType(self) -> None:
        """
        C{twistd --help-reactors} and C{--reactor} use
        L{getReactorTypes}, which lists C{txspawn}.
        """
        self.assertIn("txspawn", [r.shortName for r in getReactorTypes()])

    def test_installerModuleImports(self) -> None:
        """
        The plugin's module imports and has the C{install} that C{--reactor}
        calls (importing it installs nothing).
        """
        from twisted.python.reflect import namedModule

        [plugin] = _txspawnReactorPlugins()
        module = namedModule(plugin.moduleName)
        self.assertTrue(callable(module.install))

    def test_noInitInPluginPackage(self) -> None:
        """
        The project's C{twisted/} and C{twisted/plugins/} have no
        C{__init__.py}: one would shadow Twisted's own packages.
        """
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for sub in ("twisted", os.path.join("twisted", "plugins")):
            self.assertFalse(os.path.exists(os.path.join(root, sub, "__init__.py")))
        self.assertTrue(
            os.path.exists(
                os.path.join(root, "twisted", "plugins", "txspawn_reactors.py")
            )
        )

    def test_pluginPackageIsTwisteds(self) -> None:
        """
        C{twisted.plugins} is still Twisted's package (not shadowed by this
        project's dropin directory).
        """
        self.assertEqual(
            os.path.basename(os.path.dirname(twisted.plugins.__file__ or "")),
            "plugins",
        )
        self.assertTrue(
            os.path.exists(
                os.path.join(
                    os.path.dirname(twisted.plugins.__file__ or ""),
                    "twisted_reactors.py",
                )
            )
        )

    def test_dropinCacheTolerated(self) -> None:
        """
        A stale or corrupt C{dropin.cache} beside the dropin does not hide
        the plugin: Twisted rebuilds it.
        """
        import txspawn

        root = os.path.dirname(os.path.dirname(os.path.abspath(txspawn.__file__)))
        cache = os.path.join(root, "twisted", "plugins", "dropin.cache")
        if not os.access(os.path.dirname(cache), os.W_OK):
            self.skipTest("plugin directory not writable")  # pragma: no cover
        saved = None
        if os.path.exists(cache):
            with open(cache, "rb") as source:
                saved = source.read()

        def restore() -> None:
            if saved is None:
                if os.path.exists(cache):
                    os.remove(cache)
            else:
                with open(cache, "wb") as target:
                    target.write(saved)

        self.addCleanup(restore)
        with open(cache, "wb") as corrupt:
            corrupt.write(b"not a pickle")
        self.assertEqual(len(_txspawnReactorPlugins()), 1)
