"""Generator of tests/vectors/mlkem.json (docs/protocol.md section 1, ML-KEM-768).

Run: .venv/bin/python tests/vectors/generate_mlkem.py
Key pairs come from 64-byte seeds, `TestRng(seed("mlkem <name>"))(64)`. The ciphertext is the
one input that is not reproducible: `cryptography` encapsulates with OpenSSL's randomness
only, so it was drawn once and is kept from the committed file when there is one (delete the
file to draw a new one). Everything else follows from it and the seeds: both implementations
decapsulate it to `shared`, and the same ciphertext with one byte flipped to `rejected` (ML-KEM's
implicit rejection is a function of the key and the ciphertext).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import primitives  # noqa: E402
from protocol.rng import TestRng  # noqa: E402
from tests.vectors.generate import error_name, seed  # noqa: E402

VECTORS = Path(__file__).resolve().parent
FILE = VECTORS / "mlkem.json"


def key_seed(name: str) -> bytes:
    return TestRng(seed(f"mlkem {name}"))(64)


def build() -> dict[str, Any]:
    alice, bob = key_seed("alice"), key_seed("bob")
    public = primitives.mlkem768_public(alice)
    kept = json.loads(FILE.read_text("utf-8"))["ciphertext"] if FILE.exists() else None
    if kept is None:
        ciphertext, _ = primitives.mlkem768_encapsulate(public)
    else:
        ciphertext = bytes.fromhex(kept)
    flipped = bytearray(ciphertext)
    flipped[100] ^= 1
    wrong_length = ciphertext[:-1]
    invalid_public = bytes([0xFF]) * primitives.MLKEM768_PUBLIC_KEY_BYTES
    return {
        "description": __doc__.split("\n\n", 1)[1].strip(),
        "keys": [
            {"name": name, "seed": s.hex(), "public_key": primitives.mlkem768_public(s).hex()}
            for name, s in (("alice", alice), ("bob", bob))
        ],
        "ciphertext": ciphertext.hex(),
        "shared": primitives.mlkem768_decapsulate(alice, ciphertext).hex(),
        "flipped_byte": 100,
        "rejected": primitives.mlkem768_decapsulate(alice, bytes(flipped)).hex(),
        "other_key_rejected": primitives.mlkem768_decapsulate(bob, ciphertext).hex(),
        "refusals": [
            {
                "name": "ciphertext one byte short",
                "call": "decapsulate",
                "ciphertext": wrong_length.hex(),
                "expected_error": error_name(
                    lambda: primitives.mlkem768_decapsulate(alice, wrong_length)
                ),
            },
            {
                "name": "public key with coefficients out of range",
                "call": "encapsulate",
                "public_key": invalid_public.hex(),
                "expected_error": error_name(
                    lambda: primitives.mlkem768_encapsulate(invalid_public)
                ),
            },
            {
                "name": "seed of 32 bytes",
                "call": "public",
                "seed": alice[:32].hex(),
                "expected_error": error_name(lambda: primitives.mlkem768_public(alice[:32])),
            },
        ],
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FILE.write_text(render(build()), encoding="utf-8")
