"""`python -m client verify URL`: compare the static assets a server serves with the
published hashes (docs/static-hashes.json of the release you trust)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HASHES = Path(__file__).resolve().parent.parent / "docs" / "static-hashes.json"


@dataclass(frozen=True)
class Mismatch:
    path: str
    expected: str
    served: str | None  # None: not served (HTTP error)


def verify_static(origin: str, hashes: dict[str, Any], *, timeout: float = 15.0) -> list[Mismatch]:
    """Fetch every published asset from `origin` and return those that differ."""
    mismatches = []
    for path, expected in sorted(hashes["files"].items()):
        try:
            with urllib.request.urlopen(
                f"{origin.rstrip('/')}/static/{path}", timeout=timeout
            ) as response:
                served = hashlib.sha256(response.read()).hexdigest()
        except urllib.error.URLError:
            served = None
        if served != expected:
            mismatches.append(Mismatch(path=path, expected=expected, served=served))
    return mismatches


def load_hashes(path: Path = DEFAULT_HASHES) -> dict[str, Any]:
    hashes: dict[str, Any] = json.loads(path.read_text())
    return hashes
