# -*- test-case-name: tests.test_engines_select -*-
"""
Engine selection: which L{ISpawner} starts children.

Two engines exist: C{"python"} (L{txspawn._engine.pyengine.PythonSpawner}, always
available) and C{"c"} (the C extension C{txspawn._cspawn}, when it was
built).  L{selectSpawner} picks one by name, by the C{TXSPAWN_ENGINE}
environment variable, or the best available; L{availableSpawners} says which
are usable and, for those that are not, why (for C{python -m txspawn info}).

Adding the C engine: its loader is L{_loadCSpawner}.  It imports the
extension module C{txspawn._cspawn} and insists that it really is a compiled
extension: the C sources live in C{txspawn/_csrc/} precisely so that no
directory named C{_cspawn} can be imported as an empty namespace package in
a source checkout, but the check here makes that mistake loud instead of
silent.  It then builds the L{ISpawner} from C{txspawn._engine.cengine.CSpawner}
(the C engine's Python-side wrapper, written with the C engine).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from collections.abc import Callable, Mapping

from zope.interface.verify import verifyObject

from txspawn._engine.cbuild import buildFailureReason, sourceTreeHint
from txspawn.interfaces import ISpawner

__all__ = [
    "ENGINE_ENV",
    "EngineUnavailable",
    "availableSpawners",
    "selectSpawner",
]

#: The environment variable that picks the engine when none is given.
ENGINE_ENV = "TXSPAWN_ENGINE"

#: Engines by preference, best first.
_PREFERENCE = ("c", "python")


class EngineUnavailable(ImportError):
    """
    An engine was asked for by name but cannot be used here.

    @ivar engine: The engine's name.
    @ivar reason: Why it is unavailable.
    """

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"txspawn engine {engine!r} is unavailable: {reason}")
        self.engine = engine
        self.reason = reason


def _loadPythonSpawner() -> ISpawner:
    from txspawn._engine.pyengine import PythonSpawner

    return PythonSpawner()


def _loadCSpawner() -> ISpawner:
    """
    Load the C engine.

    @raise EngineUnavailable: with the reason (the C{ImportError} text, or
        why the imported module is not a usable extension).
    """
    try:
        module = importlib.import_module("txspawn._cspawn")
    except ImportError as e:
        raise EngineUnavailable(
            "c",
            f"txspawn._cspawn is not built ({e})"
            + (f"; {why}" if (why := buildFailureReason()) else "")
            + sourceTreeHint(),
        ) from None
    origin = getattr(module, "__file__", None)
    if origin is None or not origin.endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES)
    ):
        # A namespace package (a directory named _cspawn without
        # __init__.py) imports "successfully" with __file__ None.
        raise EngineUnavailable(
            "c",
            f"txspawn._cspawn is not a compiled extension (found {origin!r}); "
            "is there a stray txspawn/_cspawn/ directory?",
        )
    try:
        wrapper = importlib.import_module("txspawn._engine.cengine")
    except ImportError as e:
        raise EngineUnavailable(
            "c", f"the C engine's wrapper txspawn._engine.cengine is missing ({e})"
        ) from None
    spawner: ISpawner = wrapper.CSpawner()
    return spawner


_LOADERS: Mapping[str, Callable[[], ISpawner]] = {
    "c": _loadCSpawner,
    "python": _loadPythonSpawner,
}


def _load(name: str) -> ISpawner:
    spawner = _LOADERS[name]()
    verifyObject(ISpawner, spawner)
    return spawner


def availableSpawners() -> dict[str, str | None]:
    """
    Which engines are usable here.

    @return: Engine name to L{None} if usable, else the reason it is not;
        best engine first.
    """
    result: dict[str, str | None] = {}
    for name in _PREFERENCE:
        try:
            _load(name)
        except EngineUnavailable as e:
            result[name] = e.reason
        else:
            result[name] = None
    return result


def selectSpawner(
    name: str | None = None, environ: Mapping[str, str] | None = None
) -> ISpawner:
    """
    Pick an engine.

    @param name: C{"c"}, C{"python"}, or L{None}: then the
        C{TXSPAWN_ENGINE} environment variable if set and not empty, else
        the best available engine (C{"c"} if built, else C{"python"}).
    @param environ: The environment to read C{TXSPAWN_ENGINE} from
        (default L{os.environ}); injectable for tests.
    @return: A fresh L{ISpawner}.
    @raise ValueError: for an unknown name (the message says whether it
        came from the argument or the environment variable).
    @raise EngineUnavailable: if the named engine cannot be used here.
    """
    source = "name"
    if name is None:
        env = os.environ if environ is None else environ
        name = env.get(ENGINE_ENV) or None
        source = ENGINE_ENV
    if name is None:
        for candidate in _PREFERENCE:
            try:
                return _load(candidate)
            except EngineUnavailable:
                continue
        raise AssertionError("the python engine is always available")
    if name not in _LOADERS:
        raise ValueError(
            f"{source} must be one of {', '.join(sorted(_LOADERS))}, not {name!r}"
        )
    return _load(name)
