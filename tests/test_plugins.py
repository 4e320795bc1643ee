# -*- test-case-name: tests.test_plugins -*-
"""
Tests for txspawn's Twisted plugin dropins (C{twisted/plugins/}): one
C{--reactor} entry per txspawn reactor kind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import cast

from twisted.application.reactors import IReactorInstaller, Reactor, getReactorTypes
from twisted.plugin import IPlugin, getPlugins
from twisted.python.reflect import namedAny, namedModule
from twisted.trial.unittest import SynchronousTestCase

import twisted.plugins

__all__ = ["ReactorPluginTests"]


def _txspawnReactorPlugins() -> list[Reactor]:
    """
    The txspawn entries among the reactor plugins Twisted finds.
    """
    return [
        cast(Reactor, p)
        for p in getPlugins(IReactorInstaller)
        if p.shortName in REACTOR_KINDS
    ]


#: Each C{--reactor} name, the module it installs from, and the class that
#: module's C{install()} installs.
REACTOR_KINDS: dict[str, tuple[str, str]] = {
    "txspawn": ("txspawn._reactor.epollreactor", "txspawn.reactor.EPollReactor"),
    "txspawn-poll": ("txspawn._reactor.pollreactor", "txspawn.reactor.PollReactor"),
    "txspawn-select": (
        "txspawn._reactor.selectreactor",
        "txspawn.reactor.SelectReactor",
    ),
    "txspawn-asyncio": (
        "txspawn._reactor.asyncioreactor",
        "txspawn.reactor.AsyncioSelectorReactor",
    ),
}

#: Run in a fresh interpreter with a C{--reactor} name and class formatted
#: in: install the reactor as C{twistd}/C{trial --reactor=} do, check its
#: class, and spawn a child through it.
_INSTALL_BY_NAME = """
import sys
from twisted.application.reactors import installReactor
from twisted.internet.protocol import ProcessProtocol
from twisted.python.reflect import namedAny

installed = installReactor({name!r})
from twisted.internet import reactor


class Ended(ProcessProtocol):
    def processEnded(self, reason):
        self.code = reason.value.exitCode
        reactor.stop()


ended = Ended()
reactor.callWhenRunning(
    reactor.spawnProcess,
    ended,
    sys.executable,
    [sys.executable, "-c", "raise SystemExit(7)"],
)
reactor.run()
print(reactor is installed, type(reactor) is namedAny({cls!r}), ended.code)
"""


class ReactorPluginTests(SynchronousTestCase):
    """
    The txspawn reactor plugins, one per reactor kind, are found by
    Twisted's plugin system.
    """

    def test_found(self) -> None:
        """
        C{getPlugins(IReactorInstaller)} yields exactly one entry per txspawn
        reactor kind (C{txspawn}, C{txspawn-poll}, C{txspawn-select},
        C{txspawn-asyncio}), each pointing at the module that defines that
        kind's class and C{install()}, with a one-line description.
        """
        found = _txspawnReactorPlugins()
        self.assertEqual(
            sorted(plugin.shortName for plugin in found), sorted(REACTOR_KINDS)
        )
        for plugin in found:
            self.assertTrue(IPlugin.providedBy(plugin))
            self.assertEqual(plugin.moduleName, REACTOR_KINDS[plugin.shortName][0])
            self.assertTrue(plugin.description)
            self.assertNotIn("\n", plugin.description)

    def test_listedAsReactorType(self) -> None:
        """
        C{twistd --help-reactors} and C{--reactor} use
        L{getReactorTypes}, which lists every txspawn kind.
        """
        names = [r.shortName for r in getReactorTypes()]
        for name in REACTOR_KINDS:
            self.assertIn(name, names)

    def test_installerModuleImports(self) -> None:
        """
        Each plugin's module imports and has the C{install} that
        C{--reactor} calls (importing it installs nothing), and the class
        it defines is the public one.
        """
        for plugin in _txspawnReactorPlugins():
            moduleName, className = REACTOR_KINDS[plugin.shortName]
            module = namedModule(plugin.moduleName)
            self.assertTrue(callable(module.install))
            cls = namedAny(className)
            self.assertIs(getattr(module, cls.__name__), cls)
            self.assertEqual(cls.__module__, moduleName)

    def test_eachInstallsItsKind(self) -> None:
        """
        In a fresh interpreter, installing each txspawn kind by name (what
        C{twistd --reactor=NAME} and C{trial --reactor=NAME} do) installs
        that kind's class, and a child spawned through it reports its exit.
        """
        for name, (_, cls) in REACTOR_KINDS.items():
            result = subprocess.run(
                [sys.executable, "-c", _INSTALL_BY_NAME.format(name=name, cls=cls)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.assertEqual(
                (result.returncode, result.stdout.strip()),
                (0, "True True 7"),
                f"{name}: {result.stderr}",
            )

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
        self.assertEqual(len(_txspawnReactorPlugins()), len(REACTOR_KINDS))
