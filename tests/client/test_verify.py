"""`python -m client verify URL`: a server's static assets against the published hashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from client.verify import verify_static
from scripts.static_hashes import OUTPUT, static_hashes

ROOT = Path(__file__).resolve().parents[2]


def test_published_hashes_are_those_of_this_tree():
    """docs/static-hashes.json is regenerated (`make hashes`) whenever static/ changes."""
    assert json.loads(OUTPUT.read_text()) == static_hashes()


def test_a_server_serving_this_release_verifies(live_app):
    assert verify_static(live_app.url, static_hashes()) == []


def test_a_tampered_asset_is_named(live_app, tmp_path):
    published = static_hashes()
    published["files"]["js/app/api.js"] = "0" * 64
    published["files"]["js/app/missing.js"] = "1" * 64
    hashes = tmp_path / "hashes.json"
    hashes.write_text(json.dumps(published))
    result = subprocess.run(
        [sys.executable, "-m", "client", "verify", live_app.url, "--hashes", str(hashes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "MISMATCH js/app/api.js" in result.stdout
        and "MISMATCH js/app/missing.js: expected 1111111111111111…, not served" in result.stdout
    )
    assert f"2 of {len(published['files'])} assets differ" in result.stdout
