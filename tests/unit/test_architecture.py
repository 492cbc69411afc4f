"""The shape of the package, checked: what docs/architecture.md promises a newcomer.

The layers themselves are import-linter contracts in pyproject.toml (``lint-imports``);
these tests check what a contract cannot express: no import cycle anywhere (imports
inside functions and under ``TYPE_CHECKING`` included, since both still tie two modules
together), a top level of a handful of modules, and no module reaching for another
module's private names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[2] / "syncer"


def _cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """Each import ``a -> b`` where ``b`` leads back to ``a``, as the chain ``a, b, ..., a``."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                found.append((importer, *back))
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    graph = grimp.build_graph("syncer", exclude_type_checking_imports=False)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [("p.a", "p.b", "p.a"), ("p.b", "p.a", "p.b")]


def test_the_top_level_is_a_handful_of_modules() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("syncer"):
            bad += [
                f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return bad


def test_no_module_imports_another_modules_private_names() -> None:
    bad = [line for path in sorted(PACKAGE.rglob("*.py")) for line in _private_imports(path)]
    assert bad == []
