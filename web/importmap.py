"""The page's import map: bare module names plus an `integrity` hash for every script we serve.

Chromium ignores external import maps, so the map is inline; the Content-Security-Policy
allows exactly this text by its SHA-256 (web.csp). Vendored files are also pinned by
static/vendor/MANIFEST.json, which a test checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest

STATIC_DIR = Path(settings.BASE_DIR) / "static"
BARE_MODULES = {
    "libsodium-wrappers-sumo": "vendor/libsodium/libsodium-wrappers.mjs",
    "libsodium-sumo": "vendor/libsodium/libsodium-sumo.mjs",
    "qrcode-generator": "vendor/qrcode-generator/qrcode.mjs",
}


def _scripts_fingerprint() -> tuple[tuple[str, int, int], ...]:
    return tuple(
        sorted(
            (str(p), p.stat().st_mtime_ns, p.stat().st_size)
            for p in STATIC_DIR.rglob("*")
            if p.suffix in {".js", ".mjs"}
        )
    )


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@lru_cache(maxsize=4)
def _build(fingerprint: tuple[tuple[str, int, int], ...]) -> tuple[str, str]:
    url = settings.STATIC_URL
    integrity = {
        url + Path(path).relative_to(STATIC_DIR).as_posix(): sri(Path(path).read_bytes())
        for path, _, _ in fingerprint
    }
    text = json.dumps(
        {
            "imports": {name: url + rel for name, rel in BARE_MODULES.items()},
            "integrity": integrity,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return text, f"'sha256-{digest}'"


def importmap_and_hash() -> tuple[str, str]:
    """The import map's JSON text and its CSP source expression ('sha256-...')."""
    return _build(_scripts_fingerprint() if settings.DEBUG else _production_fingerprint())


@lru_cache(maxsize=1)
def _production_fingerprint() -> tuple[tuple[str, int, int], ...]:
    return _scripts_fingerprint()


def importmap(request: HttpRequest) -> dict[str, str]:
    text, _ = importmap_and_hash()
    return {"importmap_json": text}
