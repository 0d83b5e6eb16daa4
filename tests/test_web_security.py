"""Web delivery hardening (DESIGN section 7): a strict CSP whose only inline script is the
hashed import map, and integrity hashes for every script served."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def test_csp_allows_exactly_the_inline_import_map_and_nothing_unsafe(db):
    response = Client().get("/")
    csp = response["Content-Security-Policy"]
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    assert len(inline) == 1, "the import map must be the only inline script"
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    tokens = csp.replace(";", " ").split()
    assert "'unsafe-eval'" not in tokens and "'unsafe-inline'" not in tokens
    for directive in (
        "default-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ):
        assert directive in csp


def test_import_map_pins_every_script_by_its_content(db):
    html = Client().get("/").content.decode()
    importmap = json.loads(
        re.search(r'<script type="importmap">(.*?)</script>', html, flags=re.S).group(1)
    )
    scripts = sorted(p for p in (ROOT / "static").rglob("*") if p.suffix in {".js", ".mjs"})
    assert scripts
    for path in scripts:
        url = "/static/" + path.relative_to(ROOT / "static").as_posix()
        expected = "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()
        assert importmap["integrity"][url] == expected
    for name, url in importmap["imports"].items():
        assert (ROOT / url.removeprefix("/")).is_file(), name
