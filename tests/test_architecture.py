"""The package's import graph: no cycles between modules, no import that runs up the layers, no
imports hidden inside functions in the library layers.

Every module's imports are read with :mod:`ast` (relative imports and absolute ``genbounds.``
ones, at module level and inside functions), so the graph is the one Python would follow,
without importing anything. The layers, lowest first::

    bounds (0) <- estimators (1) <- experiments (2) <- paper_figures (3) <- cli, __main__ (4)

A module may import its own layer or a lower one.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "genbounds"
#: Layer of each top-level part of the package. The package's own ``__init__`` is layer 0: it
#: imports nothing of the package at module level (its ``__getattr__`` loads subpackages on use).
LAYERS = {"": 0, "bounds": 0, "estimators": 1, "experiments": 2, "paper_figures": 3, "cli": 4, "__main__": 4}
#: Folders whose modules may not import inside functions, except on a line marked with :data:`NOQA`.
NO_LOCAL_IMPORTS = ("bounds", "estimators")
NOQA = "# noqa: PLC0415"


class Edge(NamedTuple):
    source: str
    target: str
    path: str
    line: int
    local: bool        # inside a function
    noqa: bool         # the line carries NOQA

    def __str__(self) -> str:
        where = "inside a function" if self.local else "top level"
        return f"{self.source} -> {self.target}  ({self.path}:{self.line}, {where})"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (tests and build/ excluded)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "build") or any(p.startswith(".") or p.endswith(".egg-info") for p in rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


def _local_import_lines(tree: ast.Module) -> set[int]:
    """Line numbers of the import statements that sit inside a function (at any depth)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            lines |= {sub.lineno for sub in ast.walk(node) if isinstance(sub, ast.Import | ast.ImportFrom)}
    return lines


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, modules: dict) -> list[str]:
    """The package modules one import statement loads (a name imported from a package is its
    submodule when there is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base_parts = package[: len(package) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
        if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
            return []
    targets = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        targets.append(sub if sub in modules else base)
    return sorted(set(targets))


@functools.cache
def import_edges() -> tuple[Edge, ...]:
    """Every import of the package's modules (parsed once per test session: the files do not change under it)."""
    modules = module_files()
    edges = []
    for module, path in modules.items():
        source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        lines = source.splitlines()
        local = _local_import_lines(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _resolve(module, path.name == "__init__.py", node, modules):
                if target == module:
                    continue
                assert target in modules, f"{path}:{node.lineno} imports {target}, which is not a module of the package"
                edges.append(Edge(module, target, str(path.relative_to(ROOT)), node.lineno, node.lineno in local,
                                  NOQA in lines[node.lineno - 1]))
    return tuple(edges)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


def cycles(edges: Sequence[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    """The checks see what they check: known relative (one and more dots), absolute and
    package-attribute imports, imports inside (nested) functions, and a planted cycle."""
    pairs = {(e.source, e.target) for e in import_edges()}
    assert len(module_files()) > 40
    assert ("genbounds.estimators.snn.posterior", "genbounds.estimators.snn.base") in pairs
    assert ("genbounds.estimators.snn.families", "genbounds.estimators.nets") in pairs
    assert ("genbounds.estimators.snn.objectives", "genbounds.bounds") in pairs       # from ... import bounds
    assert ("genbounds.estimators", "genbounds.estimators.snn") in pairs              # from . import snn
    assert ("genbounds.__main__", "genbounds.cli") in pairs                           # absolute
    assert ("genbounds.cli", "genbounds.experiments.plots") in pairs
    tree = ast.parse("import os\ndef f():\n    import a\n    def g():\n        from . import b\n"
                     "class C:\n    import d\n")
    assert _local_import_lines(tree) == {3, 5}
    assert cycles([Edge("a", "b", "", 0, False, False), Edge("b", "c", "", 0, True, False),
                   Edge("c", "a", "", 0, False, False), Edge("c", "d", "", 0, False, False)]) == [["a", "b", "c"]]


def test_no_import_cycles():
    edges = import_edges()
    found = cycles(edges)
    report = []
    for component in found:
        members = set(component)
        report.append("cycle among " + ", ".join(component) + ":\n    " + "\n    ".join(
            str(e) for e in edges if e.source in members and e.target in members))
    assert not found, "\n".join(report)


def test_no_upward_imports():
    upward = [e for e in import_edges() if layer(e.target) > layer(e.source)]
    assert not upward, "imports that run up the layers " + str(LAYERS) + ":\n" + "\n".join(map(str, upward))


def local_imports(folders: tuple[str, ...]) -> list[str]:
    """``path:line: statement`` of every import inside a function (of the package or not) in the
    modules under ``folders``, except lines marked :data:`NOQA`."""
    out = []
    for path in module_files().values():
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in folders:
            continue
        source = path.read_text()
        lines = source.splitlines()
        for line in sorted(_local_import_lines(ast.parse(source))):
            if NOQA not in lines[line - 1]:
                out.append(f"{rel}:{line}: {lines[line - 1].strip()}")
    return out


def test_no_imports_inside_functions_in_the_library():
    hidden = local_imports(NO_LOCAL_IMPORTS)
    assert not hidden, "imports inside functions (move them to the top of the module):\n" + "\n".join(hidden)
