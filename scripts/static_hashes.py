"""Write docs/static-hashes.json: the SHA-256 of every file the server serves under /static/,
and one release digest over them all. Publish it with each release; `python -m client
verify URL` compares a running server's assets with it (the server serves the code that
holds the keys, so tampering must at least be visible)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
OUTPUT = ROOT / "docs" / "static-hashes.json"


def static_hashes(static: Path = STATIC) -> dict[str, object]:
    files = {
        path.relative_to(static).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(static.rglob("*"))
        if path.is_file()
    }
    digest = hashlib.sha256(
        "".join(f"{name} {sha}\n" for name, sha in files.items()).encode()
    ).hexdigest()
    return {"release_digest": digest, "files": files}


def main() -> None:
    static = Path(sys.argv[1]) if len(sys.argv) > 1 else STATIC
    OUTPUT.write_text(json.dumps(static_hashes(static), indent=2) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
