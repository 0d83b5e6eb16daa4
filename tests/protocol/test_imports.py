"""How the pure packages import (the sibling of tests/test_layers.py, which covers the server's
apps): protocol/ imports only itself, the standard library, PyNaCl and `cryptography` (for
ML-KEM-768 alone, which PyNaCl lacks: protocol/primitives.py); client/ adds only its
transport libraries and never Django or the server's code; no module of either imports in a
cycle, and none imports first-party code inside a function to dodge one."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.support.graph import import_cycles

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("protocol", "client")
# Beyond the standard library and the packages below it (client may import protocol).
ALLOWED = {
    "protocol": {"protocol", "nacl", "cryptography"},
    "client": {"client", "protocol", "nacl", "websockets", "qrcode"},
}


def modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return found


def is_package(module: str) -> bool:
    return (ROOT.joinpath(*module.split(".")) / "__init__.py").exists()


def imported_names(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Every dotted name an import statement may load, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package(module) else module.split(".")[:-1]
        anchor = here[: len(here) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports(module: str, tree: ast.Module) -> list[tuple[int, str]]:
    return [
        (node.lineno, name)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in imported_names(module, node)
    ]


def test_each_package_imports_only_the_standard_library_and_its_allowed_libraries():
    wrong = {}
    for module, tree in modules().items():
        allowed = ALLOWED[module.split(".")[0]] | set(sys.stdlib_module_names)
        outside = sorted({name for _, name in imports(module, tree)} - {""})
        outside = [name for name in outside if name.split(".")[0] not in allowed]
        if outside:
            wrong[module] = outside
    assert wrong == {}


def test_only_the_primitives_import_cryptography():
    """Every primitive but ML-KEM-768 is libsodium's (docs/protocol.md section 1)."""
    users = {
        module
        for module, tree in modules().items()
        if any(name.split(".")[0] == "cryptography" for _, name in imports(module, tree))
    }
    assert users == {"protocol.primitives"}


def test_no_module_imports_first_party_code_inside_a_function():
    trees = modules()
    inside = {}
    for module, tree in trees.items():
        lines = sorted(
            {
                node.lineno
                for function in ast.walk(tree)
                if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                for node in ast.walk(function)
                if isinstance(node, ast.Import | ast.ImportFrom)
                and any(n in trees for n in imported_names(module, node))
            }
        )
        if lines:
            inside[module] = lines
    assert inside == {}


def test_no_module_imports_in_a_cycle():
    trees = modules()
    graph = {
        module: {name for _, name in imports(module, tree) if name in trees} - {module}
        for module, tree in trees.items()
    }
    assert import_cycles(graph) == []


def test_the_graph_sees_the_imports_it_checks():
    """Guards the tests above against passing on an empty graph."""
    trees = modules()
    graph = {m: {n for _, n in imports(m, t) if n in trees} for m, t in trees.items()}
    assert "protocol.encoding" in graph["protocol.keys"]
    assert "protocol.engine.state" in graph["protocol.engine.machine"]
    assert "client.api" in graph["client.linking"]
