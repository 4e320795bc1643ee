"""
pydoctor customisation for txspawn's API reference (used by C{conf.py}).

pydoctor knows a class is a zope interface only when its base is
C{zope.interface.Interface} or another interface I{it has parsed}.  txspawn's
interfaces may extend Twisted's (C{IManagedProcessTransport} extends
C{twisted.internet.interfaces.IProcessTransport}), which pydoctor does not
parse, so it would treat them as plain classes and report every
C{@implementer} of them as "is not an interface".  L{TxspawnSystem} adds one
rule: a class whose base is outside the documented system and imports as a
zope interface is an interface too.
"""

from __future__ import annotations

import ast
import importlib

from pydoctor import extensions, model
from pydoctor.extensions.zopeinterface import ZopeInterfaceClass
from zope.interface.interface import InterfaceClass

__all__ = ["TxspawnSystem"]


def _importsAsInterface(fullName: str) -> bool:
    """
    Whether C{fullName} (C{package.module.Name}) imports as a zope interface.
    """
    moduleName, _, name = fullName.rpartition(".")
    if not moduleName:
        return False
    try:
        module = importlib.import_module(moduleName)
    except ImportError:
        return False
    return isinstance(getattr(module, name, None), InterfaceClass)


class _ExternalInterfaceBases(extensions.ModuleVisitorExt):
    """
    Marks a class as an interface when one of its bases is an external zope
    interface.  Runs after pydoctor's own zope.interface visitor, on the
    same class.
    """

    def depart_ClassDef(self, node: ast.ClassDef) -> None:
        cls = self.visitor.builder.current.contents.get(node.name)
        if not isinstance(cls, ZopeInterfaceClass) or cls.isinterface:
            return
        system = self.visitor.system
        if any(
            base not in system.allobjects and _importsAsInterface(base)
            for base in cls.bases
        ):
            cls.isinterface = True
            cls.kind = model.DocumentableKind.INTERFACE
            cls.implementedby_directly = []


def setup_pydoctor_extension(r: extensions.ExtRegistrar) -> None:
    """
    Register the visitor (pydoctor calls this for each custom extension).
    """
    r.register_astbuilder_visitor(_ExternalInterfaceBases)


class TxspawnSystem(model.System):
    """
    pydoctor's default system plus L{_ExternalInterfaceBases}.
    """

    custom_extensions = ["_pydoctor"]
