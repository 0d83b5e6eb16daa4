"""Deterministic generator of tests/vectors/attachments.json (docs/protocol.md section 26.4).

Run: .venv/bin/python tests/vectors/generate_attachments.py
Each file case draws from TestRng(seed("attachment <name>")): the blob id (16 bytes), then
the plaintext (`size` bytes), then what the sealer draws (key, header). Large blobs are given
by length and digest only; `pieces` is how the case's plaintext is fed to the sealer (the
ciphertext must not depend on it). `tampered` are blobs of the small case that the opener
must refuse, with the error; `pointers` are bodies the codec must accept or refuse;
`file_names` and `media_types` what a sender puts in a pointer for a file's own name and type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol.attachments import (  # noqa: E402
    AttachmentPointer,
    AttachmentSealer,
    Thumbnail,
    blob_size,
    file_name,
    media_type,
    open_attachment,
    seal_attachment,
    validate_pointer,
)
from protocol.encoding import b64u_encode  # noqa: E402
from protocol.rng import TestRng  # noqa: E402
from tests.vectors.generate import error_name, seed  # noqa: E402

VECTORS = Path(__file__).resolve().parent
FILES = (
    ("empty", 0),
    ("small", 100),
    ("one_chunk", 65536),
    ("two_chunks", 65537),
    ("three", 140000),
)
PIECES = (1000, 65536, 7)  # sizes of the pieces fed to the sealer in turn, repeated


def sealed_in_pieces(plaintext: bytes, rng: TestRng) -> bytes:
    sealer = AttachmentSealer(len(plaintext), rng)
    parts, offset, turn = [sealer.header], 0, 0
    parts.append(sealer.push(b""))
    while offset < len(plaintext):
        step = PIECES[turn % len(PIECES)]
        parts.append(sealer.push(plaintext[offset : offset + step]))
        offset, turn = offset + step, turn + 1
    sealer.finish()
    return b"".join(parts)


def file_case(name: str, size: int) -> tuple[dict[str, Any], bytes, AttachmentPointer]:
    rng = TestRng(seed(f"attachment {name}"))
    blob_id = b64u_encode(rng(16))
    plaintext = rng(size)
    blob, pointer = seal_attachment(
        plaintext, rng, blob_id=blob_id, type="application/octet-stream", name=f"{name}.bin"
    )
    again = TestRng(seed(f"attachment {name}"))
    again(16 + size)
    assert sealed_in_pieces(plaintext, again) == blob
    assert len(blob) == blob_size(size) == pointer.blob_size
    assert open_attachment(blob, pointer) == plaintext
    case: dict[str, Any] = {
        "name": name,
        "seed": seed(f"attachment {name}").hex(),
        "size": size,
        "key": pointer.key.hex(),
        "header": blob[:24].hex(),
        "blob_size": len(blob),
        "digest": pointer.digest.hex(),
        "plaintext_hash": pointer.plaintext_hash.hex(),
        "pointer": pointer.to_body(),
    }
    if size <= 100:
        case["plaintext"] = plaintext.hex()
        case["blob"] = blob.hex()
    return case, blob, pointer


def tampered_cases(blob: bytes, pointer: AttachmentPointer) -> list[dict[str, Any]]:
    other_rng = TestRng(seed("attachment another key"))
    another_key, _ = seal_attachment(
        bytes(pointer.size), other_rng, blob_id=pointer.blob_id, type="a/b", name="x"
    )
    # the same key and size, another file: what a member who knows the key could upload
    same_key = TestRng(seed("attachment same key"))
    replaced = AttachmentSealer(pointer.size, _KeyedRng(pointer.key, same_key))
    swapped = replaced.header + replaced.push(same_key(pointer.size))
    flipped = bytearray(blob)
    flipped[40] ^= 1
    cases = [
        ("truncated", blob[:-1]),
        ("one_byte_longer", blob + b"\x00"),
        ("header_only", blob[:24]),
        ("bit_flipped", bytes(flipped)),
        ("another_key", another_key),
        ("same_key_another_file", swapped),
    ]
    out = []
    for name, data in cases:
        error = error_name(lambda data=data: open_attachment(data, pointer))
        assert error is not None, name
        out.append({"name": name, "blob": data.hex(), "expected_error": error})
    return out


class _KeyedRng:
    """Gives `key` for the sealer's first draw (the key), then draws from `rest`."""

    def __init__(self, key: bytes, rest: TestRng) -> None:
        self.key, self.rest, self.first = key, rest, True

    def __call__(self, n: int) -> bytes:
        if self.first:
            self.first = False
            return self.key
        return self.rest(n)


def pointer_cases(good: dict[str, Any]) -> list[dict[str, Any]]:
    with_thumb = {
        **good,
        "type": "image/jpeg",
        "name": "beach.jpg",
        "thumbnail": {
            "type": "image/jpeg",
            "data": b64u_encode(b"\xff\xd8 thumb"),
            "width": 64,
            "height": 48,
        },
        "width": 4032,
        "height": 3024,
    }
    drop = {k: v for k, v in good.items() if k != "name"}
    bad = [
        ("no_name", drop),
        ("extra_key", {**good, "caption": "hi"}),
        ("size_negative", {**good, "size": -1}),
        ("size_bool", {**good, "size": True}),
        ("size_too_large", {**good, "size": 2**53}),
        ("key_short", {**good, "key": b64u_encode(bytes(31))}),
        ("blob_id_long", {**good, "blob_id": b64u_encode(bytes(17))}),
        ("type_upper", {**good, "type": "Image/JPEG"}),
        ("type_no_slash", {**good, "type": "jpeg"}),
        ("name_slash", {**good, "name": "../etc/passwd"}),
        ("name_backslash", {**good, "name": "a\\b"}),
        ("name_control", {**good, "name": "a\nb"}),
        ("name_dotdot", {**good, "name": ".."}),
        ("name_empty", {**good, "name": ""}),
        ("name_too_long", {**good, "name": "é" * 256}),
        ("width_alone", {**good, "width": 10}),
        ("width_zero", {**good, "width": 0, "height": 10}),
        (
            "thumbnail_gif",
            {**with_thumb, "thumbnail": {**with_thumb["thumbnail"], "type": "image/gif"}},
        ),
        (
            "thumbnail_too_big",
            {
                **with_thumb,
                "thumbnail": {**with_thumb["thumbnail"], "data": b64u_encode(bytes(16385))},
            },
        ),
        ("thumbnail_side", {**with_thumb, "thumbnail": {**with_thumb["thumbnail"], "width": 1025}}),
        ("thumbnail_extra", {**with_thumb, "thumbnail": {**with_thumb["thumbnail"], "x": 1}}),
    ]
    cases = [
        {"name": "plain", "body": good, "expected_error": None},
        {"name": "picture", "body": with_thumb, "expected_error": None},
        {"name": "name_unicode_255", "body": {**good, "name": "é" * 255}, "expected_error": None},
    ]
    for name, body in bad:
        error = error_name(lambda body=body: validate_pointer(body))
        assert error == "MalformedMessage", (name, error)
        cases.append({"name": name, "body": body, "expected_error": error})
    for case in cases[:3]:
        assert error_name(lambda case=case: validate_pointer(case["body"])) is None, case["name"]
        assert AttachmentPointer.from_body(case["body"]).to_body() == case["body"]
    assert AttachmentPointer.from_body(with_thumb).thumbnail == Thumbnail(
        "image/jpeg", b"\xff\xd8 thumb", 64, 48
    )
    return cases


NAMES = [
    "beach day.jpg",
    "../etc/passwd",
    "a\\b",
    "a\nb",
    "x\x7f",
    "",
    "..",
    ".",
    "é" * 300,
    "😀" * 300,
]
TYPES = [
    "image/JPEG",
    "text/plain",
    "application/vnd.ms-excel",
    "",
    "jpeg",
    "text/plain; charset=utf-8",
    "a/" + "b" * 200,
]


def build() -> dict[str, Any]:
    files = []
    small: tuple[bytes, AttachmentPointer] | None = None
    for name, size in FILES:
        case, blob, pointer = file_case(name, size)
        files.append(case)
        if name == "small":
            small = (blob, pointer)
    assert small is not None
    return {
        "description": __doc__.split("\n\n", 1)[1].strip(),
        "chunk": 65536,
        "pieces": list(PIECES),
        "files": files,
        "tampered": tampered_cases(*small),
        "pointers": pointer_cases(files[1]["pointer"]),
        "file_names": [{"name": n, "file_name": file_name(n)} for n in NAMES],
        "media_types": [{"type": t, "media_type": media_type(t)} for t in TYPES],
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    (VECTORS / "attachments.json").write_text(render(build()), encoding="utf-8")
