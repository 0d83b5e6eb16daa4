"""protocol/ and static/js/protocol/ are one package in two languages: the same modules, each
exporting the same names (snake_case in Python is camelCase in JavaScript; CapWords and
UPPER_CASE stay as they are). A Python type alias is matched by a JSDoc @typedef."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = ROOT / "protocol"
JS = ROOT / "static" / "js" / "protocol"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# Names only one language has, by module, each for a reason of the language, not the protocol.
ONLY_IN_PYTHON = {
    # turns an int into the ContentType IntEnum; in JS a content type is a plain number
    "content": {"content_type_of"},
    # JS has Number.isSafeInteger built in
    "encoding": {"is_uint"},
    # `cryptography` cannot encapsulate from given randomness, libsodium can: Python takes the
    # encapsulation as a parameter (docs/protocol.md 27.2), JS draws it from the rng
    "x3dh": {"Encapsulate", "random_encapsulate"},
}
ONLY_IN_JS = {
    # what Python's bytes and str do natively (==, +, .hex(), bytes.fromhex, .decode(),
    # .encode() refusing lone surrogates, isinstance(x, dict))
    "encoding": {
        "bytesEqual",
        "compareBytes",
        "concatBytes",
        "fromHex",
        "isWellFormed",
        "toHex",
        "utf8Decode",
    },
    "strictjson": {"isPlainObject"},
    # libsodium.js loads its WebAssembly asynchronously; PyNaCl is ready on import. Python
    # draws random bytes through protocol.rng.system_rng (os.urandom) only.
    "primitives": {"ready", "randomBytes"},
}
# The same function, named by each language's own convention for "the JSON form":
# x_from_dict ↔ xFromJSON, x_to_dict ↔ xToJSON (as to_dict ↔ toJSON for JSON.stringify).
JSON_FORM = (("_from_dict", "_from_JSON"), ("_to_dict", "_to_JSON"))

LIST_JS_EXPORTS = """
const names = {};
for (const path of JSON.parse(process.argv[1])) {
  names[path] = Object.keys(await import(new URL(path, `file://${process.cwd()}/`).href));
}
console.log(JSON.stringify(names));
"""


def js_name(python_name: str) -> str:
    for python_suffix, js_suffix in JSON_FORM:
        if python_name.endswith(python_suffix):
            python_name = python_name.removesuffix(python_suffix) + js_suffix
    if python_name.isupper() or "_" not in python_name:
        return python_name
    first, *rest = python_name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def module_pairs() -> dict[str, tuple[Path, Path]]:
    """'engine.state' -> (protocol/engine/state.py, static/js/protocol/engine/state.js);
    a package's __init__.py pairs with its index.js."""
    pairs = {}
    for path in sorted(PY.rglob("*.py")):
        parts = path.relative_to(PY).with_suffix("").parts
        if parts == ("__init__",):
            continue  # docstring only; static/js/protocol/index.js is the browser's entry point
        js = JS.joinpath(*parts[:-1], "index.js" if parts[-1] == "__init__" else f"{parts[-1]}.js")
        pairs[".".join(parts).removesuffix(".__init__")] = (path, js)
    return pairs


def python_exports(path: Path) -> set[str]:
    """`__all__` if the module has one, else the public names it defines at top level."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    if "__all__" in names:
        return set(ast.literal_eval(next(n.value for n in tree.body if _assigns_all(n))))
    return {n for n in names if not n.startswith("_")}


def _assigns_all(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
    )


def js_typedefs(path: Path) -> set[str]:
    """The types a module names in JSDoc (`/** @typedef {...} Name */`)."""
    return set(re.findall(r"@typedef \{.*?\} (\w+) \*/", path.read_text()))


@pytest.fixture(scope="module")
def exported() -> dict[Path, set[str]]:
    """What each JavaScript module exports, as node loads it."""
    relative = [str(js.relative_to(ROOT)) for _, js in module_pairs().values()]
    result = subprocess.run(
        ["node", "--input-type=module", "-e", LIST_JS_EXPORTS, json.dumps(relative)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {ROOT / p: set(names) for p, names in json.loads(result.stdout).items()}


def test_every_python_module_has_a_javascript_twin_and_back():
    twins = {js for _, js in module_pairs().values()}
    assert sorted(p for p in twins if not p.exists()) == []
    js_modules = set(JS.rglob("*.js")) - {JS / "index.js"}
    assert sorted(p.relative_to(ROOT) for p in js_modules - twins) == []


def test_each_module_exports_the_same_names_in_both_languages(exported):
    pairs = module_pairs()
    differences = {}
    for module, (py, js) in pairs.items():
        python = {js_name(n) for n in python_exports(py) - ONLY_IN_PYTHON.get(module, set())}
        javascript = exported[js] - ONLY_IN_JS.get(module, set())
        only_python = python - javascript - js_typedefs(js)
        only_js = javascript - python
        if only_python or only_js:
            differences[module] = {"python only": sorted(only_python), "js only": sorted(only_js)}
    assert differences == {}


def test_the_allowances_are_still_needed(exported):
    """An entry of the lists above that no longer differs is removed, not kept as slack."""
    pairs = module_pairs()
    stale = []
    for module, names in ONLY_IN_PYTHON.items():
        py, js = pairs[module]
        stale += [
            f"{module}.{n}"
            for n in names
            if n not in python_exports(py) or js_name(n) in exported[js]
        ]
    for module, names in ONLY_IN_JS.items():
        py, js = pairs[module]
        python = {js_name(n) for n in python_exports(py)}
        stale += [f"{module}.{n}" for n in names if n not in exported[js] or n in python]
    assert stale == []
