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


def page_importmap(html: str) -> dict:
    return json.loads(
        re.search(r'<script type="importmap">(.*?)</script>', html, flags=re.S).group(1)
    )


def test_import_map_pins_every_script_by_its_content(db):
    importmap = page_importmap(Client().get("/").content.decode())
    scripts = sorted(p for p in (ROOT / "static").rglob("*") if p.suffix in {".js", ".mjs"})
    assert scripts
    for path in scripts:
        url = "/static/" + path.relative_to(ROOT / "static").as_posix()
        expected = "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()
        versioned = importmap["imports"][url]
        assert versioned.startswith(url + "?v=")
        assert importmap["integrity"][versioned] == expected
    for name, url in importmap["imports"].items():
        assert (ROOT / url.removeprefix("/").split("?")[0]).is_file(), name


def test_entry_scripts_load_under_the_versioned_url_the_import_map_gives_them(db):
    html = Client().get("/signup").content.decode()
    importmap = page_importmap(html)
    entries = re.findall(r'<script type="module" src="([^"]+)" integrity="([^"]+)"></script>', html)
    assert {src.split("?")[0] for src, _ in entries} >= {
        "/static/js/app/status.js",
        "/static/js/app/shell.js",
        "/static/js/app/signup.js",
    }
    assert '<script type="module" src="/static/js/app/signup.js"' not in html
    for src, integrity in entries:
        # The same URL a relative import resolves to through the map: one module, not two.
        assert importmap["imports"][src.split("?")[0]] == src
        assert importmap["integrity"][src] == integrity


def test_a_script_under_its_current_version_is_cached_for_good_and_any_other_is_not(db):
    client = Client()
    versioned = page_importmap(client.get("/").content.decode())["imports"]["/static/js/app/ui.js"]
    current = client.get(versioned)
    assert current.status_code == 200
    assert current["Cache-Control"] == "public, max-age=31536000, immutable"
    for stale in ("/static/js/app/ui.js?v=0123456789abcdef0123", "/static/js/app/ui.js"):
        answer = client.get(stale)
        assert answer.status_code == 200
        assert "immutable" not in answer.get("Cache-Control", "")
