"""How the server's apps import each other (flows/__init__.py): every import at module level,
no module in a cycle, and the apps in layers, web below accounts below devices below
messaging below flows. Only the edges (views, consumers, URLs, management commands) reach any
layer, except in web, which imports no other app at all."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.graph import import_cycles

ROOT = Path(__file__).resolve().parent.parent
SERVER = ("web", "accounts", "devices", "messaging", "flows", "config")
LAYERS = ("web", "accounts", "devices", "messaging", "flows")
EDGES = {"views", "consumers", "routing", "urls", "admin"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for package in SERVER:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return found


def first_party(name: str) -> bool:
    return name.split(".")[0] in SERVER


def imported(node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The first-party modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.module is None:
        return set()
    else:
        names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return {n for n in names if n in known and first_party(n)}


def imports_of(tree: ast.Module, known: set[str]) -> set[str]:
    """Every first-party module the file imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= imported(node, known)
    return found


def function_level_imports(tree: ast.Module, known: set[str]) -> list[int]:
    """The lines of first-party imports inside a function (they dodge a cycle)."""
    found: set[int] = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and imported(node, known):
                    found.add(node.lineno)
    return sorted(found)


def is_edge(module: str) -> bool:
    parts = module.split(".")
    return parts[-1] in EDGES or "management" in parts


def test_no_server_module_imports_another_inside_a_function():
    trees = modules()
    known = set(trees)
    inside = {m: function_level_imports(tree, known) for m, tree in trees.items()}
    assert {m: lines for m, lines in inside.items() if lines} == {}


def test_no_server_module_imports_in_a_cycle():
    trees = modules()
    known = set(trees)
    graph = {m: imports_of(tree, known) - {m} for m, tree in trees.items()}
    assert import_cycles(graph) == []


def test_each_app_imports_only_its_own_layer_and_those_below():
    trees = modules()
    known = set(trees)
    upward = {}
    for module, tree in trees.items():
        app = module.split(".")[0]
        if app not in LAYERS or is_edge(module):
            continue
        above = set(LAYERS[LAYERS.index(app) + 1 :])
        wrong = sorted(t for t in imports_of(tree, known) if t.split(".")[0] in above)
        if wrong:
            upward[module] = wrong
    assert upward == {}


def test_web_imports_no_other_app_not_even_from_its_views():
    trees = modules()
    known = set(trees)
    reaching = {}
    for module, tree in trees.items():
        if module.split(".")[0] != "web":
            continue
        others = sorted(t for t in imports_of(tree, known) if t.split(".")[0] != "web")
        if others:
            reaching[module] = others
    assert reaching == {}
