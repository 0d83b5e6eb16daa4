from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "django",
    "channels",
    "asyncio",
    "socket",
    "accounts",
    "devices",
    "messaging",
    "config",
    "web",
    "flows",
    "client",
)


def test_protocol_imports_only_stdlib_and_nacl():
    script = (
        "import pkgutil, importlib, sys, protocol\n"
        "for m in pkgutil.iter_modules(protocol.__path__): importlib.import_module('protocol.' + m.name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)
