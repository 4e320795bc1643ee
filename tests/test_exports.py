# -*- test-case-name: tests.test_exports -*-
"""
Tests for the public surface: every name in C{txspawn.__all__} and
C{txspawn.testing.__all__} is the very object defined in its implementation
module (a re-export, never a copy or a wrapper), so that moving code between
private modules cannot silently change what users import.
"""

from __future__ import annotations

from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

import txspawn
import txspawn.errors
import txspawn.interfaces
import txspawn.options
import txspawn.reactor
import txspawn.testing
from txspawn import _cgroupoptions, _namespaceoptions, errors
from txspawn._api import result as _result
from txspawn._api import run as _run
from txspawn._api import stream as _stream
from txspawn._api import streambuffer as _streambuffer
from txspawn._api import tee as _tee
from txspawn._reactor import (
    asyncioreactor,
    epollreactor,
    pollreactor,
    selectreactor,
)
from txspawn._reactor import spawner as _spawner
from txspawn._testing import fakereactor as _fakereactor
from txspawn._testing import fakestate as _fakestate
from txspawn._testing import faketransport as _faketransport

__all__ = ["PublicNamesTests"]

#: Public name in C{txspawn} -> (defining module, name there).
TXSPAWN_HOMES: dict[str, tuple[ModuleType, str]] = {
    "ChildSetupStage": (errors, "ChildSetupStage"),
    "OutputChunk": (_streambuffer, "OutputChunk"),
    "OutputStream": (_stream, "OutputStream"),
    "ProcessFailed": (_result, "ProcessFailed"),
    "ProcessResult": (_result, "ProcessResult"),
    "ProcessSpawner": (_spawner, "ProcessSpawner"),
    "ProcessTimedOut": (_result, "ProcessTimedOut"),
    "SpawnError": (errors, "SpawnError"),
    "TeeProtocol": (_tee, "TeeProtocol"),
    "UnsupportedFeature": (errors, "UnsupportedFeature"),
    "install": (_spawner, "installSpawner"),
    "run": (_run, "run"),
    "stream": (_stream, "stream"),
}

#: Public name in C{txspawn.testing} -> (defining module, name there).
TESTING_HOMES: dict[str, tuple[ModuleType, str]] = {
    "FakeProcessState": (_fakestate, "FakeProcessState"),
    "FakeProcessTransport": (_faketransport, "FakeProcessTransport"),
    "MemoryProcessReactor": (_fakereactor, "MemoryProcessReactor"),
    "SpawnedProcess": (_fakereactor, "SpawnedProcess"),
}

#: Public name in C{txspawn.options} -> (defining module, name there).
OPTIONS_HOMES: dict[str, tuple[ModuleType, str]] = {
    "Cgroup": (_cgroupoptions, "Cgroup"),
    "CgroupStats": (_cgroupoptions, "CgroupStats"),
    "ID_MAX": (txspawn.options, "ID_MAX"),
    "IdMapRange": (_namespaceoptions, "IdMapRange"),
    "NGROUPS_MAX": (txspawn.options, "NGROUPS_MAX"),
    "Namespaces": (_namespaceoptions, "Namespaces"),
    "SpawnOptions": (txspawn.options, "SpawnOptions"),
}

#: Public name in C{txspawn.reactor} -> (defining module, name there).
REACTOR_HOMES: dict[str, tuple[ModuleType, str]] = {
    "AsyncioSelectorReactor": (asyncioreactor, "AsyncioSelectorReactor"),
    "EPollReactor": (epollreactor, "EPollReactor"),
    "PollReactor": (pollreactor, "PollReactor"),
    "SelectReactor": (selectreactor, "SelectReactor"),
    "install": (epollreactor, "install"),
}


#: Every public module's C{__all__}, as it was when the private modules
#: moved into one folder per layer (issue 12).
PUBLIC_NAMES: dict[str, list[str]] = {
    "txspawn": [
        "ChildSetupStage",
        "OutputChunk",
        "OutputStream",
        "ProcessFailed",
        "ProcessResult",
        "ProcessSpawner",
        "ProcessTimedOut",
        "SpawnError",
        "TeeProtocol",
        "UnsupportedFeature",
        "__version__",
        "install",
        "run",
        "stream",
    ],
    "txspawn.errors": [
        "ChildSetupStage",
        "ReservedFdError",
        "SpawnError",
        "UnsupportedFeature",
    ],
    "txspawn.interfaces": [
        "IChildMonitor",
        "IManagedProcessTransport",
        "IProcessStateObserver",
        "IProcessTreeObserver",
        "IReactorSpawn",
        "ISpawner",
    ],
    "txspawn.options": [
        "Cgroup",
        "CgroupStats",
        "ID_MAX",
        "IdMapRange",
        "NGROUPS_MAX",
        "Namespaces",
        "SpawnOptions",
    ],
    "txspawn.reactor": [
        "AsyncioSelectorReactor",
        "EPollReactor",
        "PollReactor",
        "SelectReactor",
        "install",
    ],
    "txspawn.testing": [
        "FakeProcessState",
        "FakeProcessTransport",
        "MemoryProcessReactor",
        "SpawnedProcess",
    ],
}


class PublicNamesTests(SynchronousTestCase):
    """
    The public modules re-export their implementation objects.
    """

    def assertReExports(
        self, public: ModuleType, homes: dict[str, tuple[ModuleType, str]]
    ) -> None:
        """
        Assert that C{public.__all__} names exactly the keys of C{homes}
        (plus C{__version__} for C{txspawn}), and that each is the same
        object as in its home module.
        """
        names = set(public.__all__) - {"__version__"}
        self.assertEqual(sorted(names), sorted(homes))
        for name, (home, homeName) in homes.items():
            self.assertIs(
                getattr(public, name),
                getattr(home, homeName),
                f"{public.__name__}.{name} is not {home.__name__}.{homeName}",
            )

    def test_txspawn(self) -> None:
        """
        Every name in C{txspawn.__all__} is the object of its implementation
        module (C{txspawn.X is txspawn._mod.X}).
        """
        self.assertReExports(txspawn, TXSPAWN_HOMES)

    def test_testing(self) -> None:
        """
        Every name in C{txspawn.testing.__all__} is the object of its
        implementation module.
        """
        self.assertReExports(txspawn.testing, TESTING_HOMES)

    def test_reactor(self) -> None:
        """
        Every name in C{txspawn.reactor.__all__} is the object of the
        per-kind module that defines it; C{install} is the epoll kind's.
        """
        self.assertReExports(txspawn.reactor, REACTOR_HOMES)

    def test_options(self) -> None:
        """
        Every name in C{txspawn.options.__all__} is the object of its
        implementation module: the namespace and cgroup options are those
        of their private vocabulary modules.
        """
        self.assertReExports(txspawn.options, OPTIONS_HOMES)

    def test_allNamesExist(self) -> None:
        """
        The C{__all__} lists have no duplicates, and every name in them
        exists.
        """
        for public in (txspawn, txspawn.reactor, txspawn.testing, txspawn.options):
            self.assertEqual(len(public.__all__), len(set(public.__all__)))
            for name in public.__all__:
                self.assertTrue(hasattr(public, name), f"{public.__name__}.{name}")

    def test_publicNamesUnchanged(self) -> None:
        """
        Every public module still has the public names it had when the
        private modules moved into one folder per layer (issue 12): a name
        that leaves C{__all__} is a break for users, and one that joins it
        is a decision to make on purpose (then add it here).
        """
        actual = {
            public.__name__: sorted(public.__all__)
            for public in (
                txspawn,
                txspawn.reactor,
                txspawn.options,
                txspawn.errors,
                txspawn.interfaces,
                txspawn.testing,
            )
        }
        self.assertEqual(actual, PUBLIC_NAMES)

    def test_version(self) -> None:
        """
        C{txspawn.__version__} is a string.
        """
        self.assertIsInstance(txspawn.__version__, str)


#: What a program importing only the names below must not load: Twisted and
#: the service behind the supervisor's control client.
_IMPORT_PROBE = """
import sys
import {module}
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("twisted", "zope", "automat")
    or name.startswith(("txspawn._", "txspawn.supervise.service"))
    and not name.startswith(("txspawn._cli", "txspawn.supervise._endpoint"))
)
print(" ".join(heavy))
"""


class LazyReexportTests(SynchronousTestCase):
    """
    C{txspawn} and C{txspawn.supervise} resolve their re-exports on first
    use, so that C{python -m txspawn ctl} loads only the control client
    (it answers in tens of milliseconds instead of the 0.4 s Twisted's
    reactor machinery takes to import), while every public name still
    resolves to its defining object (L{PublicNamesTests}).
    """

    def assertLight(self, module: str) -> None:
        """
        Importing C{module} in a fresh interpreter loads nothing heavy.
        """
        import subprocess
        import sys

        result = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        )
        self.assertEqual(result.stdout.strip(), "", module)

    def test_txspawn(self) -> None:
        """
        C{import txspawn} loads none of its implementation.
        """
        self.assertLight("txspawn")

    def test_ctl(self) -> None:
        """
        The control command's module loads the client alone, and what it
        imports on its way (the endpoint from a config file, the status
        table) adds nothing heavy.
        """
        self.assertLight("txspawn._cli.ctl")
        self.assertLight(
            "txspawn._cli.ctl, txspawn.supervise._controlfile, txspawn.supervise._table"
        )

    def test_superviseNames(self) -> None:
        """
        Every name in C{txspawn.supervise.__all__} resolves, and is the
        object its defining module has.
        """
        import importlib

        import txspawn.supervise as supervise

        self.assertEqual(sorted(supervise._HOMES), sorted(supervise.__all__))
        for name, home in supervise._HOMES.items():
            self.assertIs(
                getattr(supervise, name),
                getattr(importlib.import_module(home), name),
                name,
            )

    def test_unknownName(self) -> None:
        """
        A name neither package has raises L{AttributeError}, as for any
        module.
        """
        import txspawn.supervise

        with self.assertRaises(AttributeError):
            txspawn.noSuchName  # noqa: B018
        with self.assertRaises(AttributeError):
            txspawn.supervise.noSuchName  # noqa: B018
