"""The page's import map: bare module names, a content-versioned URL for every script we serve,
and an `integrity` hash for each.

Chromium ignores external import maps, so the map is inline; the Content-Security-Policy
allows exactly this text by its SHA-256 (web.csp). Vendored files are also pinned by
static/vendor/MANIFEST.json, which a test checks.

Every script is addressed as `/static/<path>?v=<digest>`: the map remaps the plain URL a
relative import resolves to (`./ui.js` from another module) onto the versioned one, and the
pages' own entry scripts are written with it (`{% module_script %}`, web/templatetags). A
versioned URL names one content for ever, so it is served as immutable (web.static_cache):
a page loaded again fetches no script at all, and a page of a new release never meets a
cached script of the old one (its integrity check would fail).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
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
VERSION_PARAMETER = "v"


@dataclass(frozen=True)
class Scripts:
    """What the pages need to load the scripts of this release."""

    importmap_json: str
    csp_source: str  # the import map's CSP source expression ('sha256-...')
    versions: dict[str, str]  # plain URL (/static/js/app/ui.js) -> its version
    integrity: dict[str, str]  # plain URL -> its SRI hash

    def url(self, plain: str) -> str:
        """The versioned URL of the script at `plain` (/static/...)."""
        return f"{plain}?{VERSION_PARAMETER}={self.versions[plain]}"


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
def _build(fingerprint: tuple[tuple[str, int, int], ...]) -> Scripts:
    static = settings.STATIC_URL
    versions: dict[str, str] = {}
    integrity: dict[str, str] = {}
    for path, _, _ in fingerprint:
        data = Path(path).read_bytes()
        plain = static + Path(path).relative_to(STATIC_DIR).as_posix()
        versions[plain] = hashlib.sha256(data).hexdigest()[:20]
        integrity[plain] = sri(data)
    scripts = Scripts("", "", versions, integrity)
    imports = {plain: scripts.url(plain) for plain in versions}
    imports |= {name: scripts.url(static + rel) for name, rel in BARE_MODULES.items()}
    text = json.dumps(
        {
            "imports": imports,
            "integrity": {scripts.url(plain): value for plain, value in integrity.items()},
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return Scripts(text, f"'sha256-{digest}'", versions, integrity)


def scripts() -> Scripts:
    """This release's scripts (in DEBUG read again whenever a file changed, looked for at most
    once a second: every response asks, and walking static/ cost more than the answers)."""
    return _build(_debug_fingerprint() if settings.DEBUG else _production_fingerprint())


DEBUG_RESCAN_SECONDS = 1.0
_debug_seen: tuple[float, tuple[tuple[str, int, int], ...]] | None = None


def _debug_fingerprint() -> tuple[tuple[str, int, int], ...]:
    global _debug_seen
    now = time.monotonic()
    if _debug_seen is None or now - _debug_seen[0] >= DEBUG_RESCAN_SECONDS:
        _debug_seen = (now, _scripts_fingerprint())
    return _debug_seen[1]


@lru_cache(maxsize=1)
def _production_fingerprint() -> tuple[tuple[str, int, int], ...]:
    return _scripts_fingerprint()


def importmap(request: HttpRequest) -> dict[str, str]:
    return {"importmap_json": scripts().importmap_json}
