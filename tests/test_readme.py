"""tests/README.md names only what exists: every folder of tests/ is in its layout, every path
and every fixture or helper it names is there, and its code imports."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
README = (TESTS / "README.md").read_text(encoding="utf-8")
HARNESS = ["tests.conftest", "tests.client.conftest"] + [
    f"tests.support.{path.stem}" for path in sorted((TESTS / "support").glob("*.py"))
]


def _defined() -> dict[str, object]:
    """Every name the harness modules define, and the keyword parameters of their functions."""
    names: dict[str, object] = {}
    for module in map(importlib.import_module, HARNESS):
        for name, value in vars(module).items():
            names.setdefault(name, value)
            if inspect.isfunction(value):
                for parameter in inspect.signature(value).parameters:
                    names.setdefault(parameter, value)
    return names


def _named() -> set[str]:
    """Backticked names that read as code: `snake_case`, `CapWords` or `call(...)`."""
    found = set()
    for quoted in re.findall(r"`([^`\n]+)`", README):
        match = re.fullmatch(r"([A-Za-z_]\w*)(\(.*\))?", quoted)
        if match and ("_" in match[1] or match[1][0].isupper() or match[2]):
            found.add(match[1])
    return found


def test_every_folder_of_tests_is_in_the_layout():
    folders = sorted(p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert [f for f in folders if f"| `tests/{f}/` |" not in README] == []


def test_every_path_it_names_exists():
    paths = set(re.findall(r"`(tests/[\w./-]+)`", README))
    assert paths
    assert sorted(p for p in paths if not (TESTS.parent / p).exists()) == []


def test_every_fixture_and_helper_it_names_exists():
    fixtures = re.findall(r"^- `(\w+)`", README, flags=re.M)
    assert "live_app" in fixtures and "new_device" in fixtures
    defined = _defined()
    assert sorted(n for n in [*fixtures, *_named()] if n not in defined) == []


@pytest.mark.parametrize("index", range(len(re.findall(r"^```python$", README, flags=re.M))))
def test_its_code_compiles_and_imports(index):
    block = re.findall(r"^```python\n(.*?)^```$", README, flags=re.M | re.S)[index]
    tree = ast.parse(block)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
