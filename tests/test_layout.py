# -*- test-case-name: tests.test_layout -*-
"""
The package's shape, checked from the modules' own imports: one folder per
layer, imports flowing one way (from the public face down to the kernel),
no import cycle between modules, and no module grown past one concept.

C{docs/design/layout.rst} explains the layers; L{LAYERS} below is the same
table, and the test that keeps the two honest.  A new module must be placed
in a layer (its folder) before this test passes; a new layer must be added
to L{LAYERS}, at the height its imports allow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import txspawn

__all__ = ["LayoutTests"]

#: The package's source directory.
PACKAGE = Path(txspawn.__file__).parent

#: The layers from the bottom up, each with the modules and packages it is
#: made of (a package stands for everything below it).  A module may
#: import modules of its own layer and of the layers below it, never above.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The public vocabulary every layer speaks, and the C core (the
    # extension built from txspawn/_csrc/): they import nothing of txspawn.
    (
        "vocabulary",
        (
            "txspawn.errors",
            "txspawn.options",
            "txspawn._namespaceoptions",
            "txspawn._cgroupoptions",
            "txspawn.interfaces",
            "txspawn._cspawn",
        ),
    ),
    ("kernel", ("txspawn._kernel",)),
    # The cgroup v2 leaves of children, from the parent's side: it imports
    # the vocabulary and the kernel layer, never a plan or an engine.
    ("cgroup", ("txspawn._cgroup",)),
    ("plan", ("txspawn._plan",)),
    ("engine", ("txspawn._engine",)),
    ("monitor", ("txspawn._monitor",)),
    ("transport", ("txspawn._transport",)),
    ("api", ("txspawn._api",)),
    ("reactor", ("txspawn._reactor",)),
    ("testing", ("txspawn._testing",)),
    # The public face: re-exports, nothing of its own.
    ("public", ("txspawn", "txspawn.reactor", "txspawn.testing")),
    # Services built on the public face alone: the supervisor.
    ("services", ("txspawn.supervise",)),
    # Programs built on the public face.
    ("tools", ("txspawn.__main__", "txspawn._cli", "txspawn._bench")),
)

#: The most lines a module may have: past this it holds more than one
#: concept and should be split (issue 12: "none over ~500 lines").
MAX_LINES = 550


def moduleName(path: Path) -> str:
    """
    The dotted name of the module at C{path}, a file under L{PACKAGE}.
    """
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def sourceModules() -> dict[str, Path]:
    """
    Every Python module of the package, by dotted name.
    """
    return {moduleName(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def importedNames(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """
    The txspawn modules that the module C{name} imports, with the line of
    each import: every import statement, at module level or inside a
    function or an C{if TYPE_CHECKING:} block alike (a lazy import is still
    a dependency).  C{from package import name} counts as an import of
    C{package.name} when that is a module, else of C{package}.
    """
    isPackage = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "txspawn":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not isPackage:
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "txspawn":
                continue
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def resolve(imported: str, modules: set[str]) -> str:
    """
    The module that an imported dotted name refers to: the longest prefix of
    it that is a module of the package (C{txspawn.errors.SpawnError} is
    C{txspawn.errors}); the C extension, which has no source here, is
    C{txspawn._cspawn}.
    """
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules or candidate == "txspawn._cspawn":
            return candidate
    return imported


def layerOf(module: str) -> int | None:
    """
    The index in L{LAYERS} of the layer C{module} belongs to: the layer that
    names it or its closest enclosing package, or C{None}.
    """
    best: tuple[int, int] | None = None
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or module.startswith(member + "."):
                if best is None or len(member) > best[1]:
                    best = (index, len(member))
    return None if best is None else best[0]


def importGraph() -> dict[str, dict[str, int]]:
    """
    Module -> {imported module: line of the first such import}, within the
    package.
    """
    modules = sourceModules()
    names = set(modules)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for line, imported in importedNames(name, path):
            target = resolve(imported, names)
            if target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """
    The strongly connected components of more than one module (Tarjan).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    onStack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for target in graph.get(node, {}):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in onStack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                onStack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


class LayoutTests(SynchronousTestCase):
    """
    The rules of C{docs/design/layout.rst}, checked against the code.
    """

    def test_everyModuleHasALayer(self) -> None:
        """
        Every module of the package belongs to a layer of L{LAYERS}.
        """
        unplaced = [name for name in sourceModules() if layerOf(name) is None]
        self.assertEqual(unplaced, [], "modules in no layer: add them to LAYERS")

    def test_importsFlowDown(self) -> None:
        """
        No module imports a module of a layer above its own.
        """
        upward = []
        for name, edges in importGraph().items():
            own = layerOf(name)
            for target, line in edges.items():
                theirs = layerOf(target)
                if own is not None and theirs is not None and theirs > own:
                    upward.append(
                        f"{name}:{line} ({LAYERS[own][0]}) imports "
                        f"{target} ({LAYERS[theirs][0]})"
                    )
        self.assertEqual(upward, [])

    def test_noImportCycles(self) -> None:
        """
        No two modules import each other, directly or through others, even
        lazily or for type checking only.
        """
        self.assertEqual(cycles(importGraph()), [])

    def test_layerFoldersSayWhatTheyOwn(self) -> None:
        """
        Every layer folder's C{__init__.py} has a docstring that says what
        the layer owns, what it may import and what imports it, and defines
        nothing (so importing one module of a layer loads no other).
        """
        for init in sorted(PACKAGE.glob("_*/__init__.py")):
            tree = ast.parse(init.read_text())
            doc = ast.get_docstring(tree) or ""
            with self.subTest(init.parent.name):
                if init.parent.name == "_bench":
                    # The benchmark's folder is a program, not a layer.
                    continue
                for phrase in ("What it owns", "may import", "imports it"):
                    self.assertIn(phrase, doc.replace("\n", " "), init)
                self.assertEqual(
                    [type(node).__name__ for node in tree.body[1:]],
                    [],
                    f"{init} should hold only its docstring",
                )

    def test_modulesStaySmall(self) -> None:
        """
        No module is longer than L{MAX_LINES}.
        """
        long = {
            name: count
            for name, path in sourceModules().items()
            if (count := len(path.read_text().splitlines())) > MAX_LINES
        }
        self.assertEqual(long, {})

    def test_graphSeesImports(self) -> None:
        """
        The walk sees the kinds of import the rules depend on: a plain
        import, a C{from} import of a module, a lazy import inside a
        function, and one under C{TYPE_CHECKING}, all resolved to modules.
        """
        graph = importGraph()
        self.assertIn("txspawn._api.arguments", graph["txspawn._reactor.spawner"])
        self.assertIn("txspawn._monitor.pidfd", graph["txspawn._monitor.selection"])
        self.assertIn("txspawn._kernel.features", graph["txspawn._monitor.selection"])
        self.assertIn("txspawn._cspawn", graph["txspawn._kernel.childhandle"])

    def test_cyclesAreFound(self) -> None:
        """
        L{cycles} finds a cycle through three modules and ignores a chain.
        """
        graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
        self.assertEqual(cycles(graph), [["a", "b", "c"]])
        self.assertEqual(cycles({"a": {"b": 1}, "b": {}}), [])
