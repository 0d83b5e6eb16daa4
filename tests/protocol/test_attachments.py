"""Attachments (docs/protocol.md section 26): every value of attachments.json reproduced, and
the rules a receiving device relies on: a blob cut short, lengthened, altered, sealed under
another key or re-sealed with the same key over another file is refused, and nothing of it
counts as the file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from protocol.attachments import (
    ATTACHMENT_CHUNK,
    AttachmentOpener,
    AttachmentPointer,
    AttachmentSealer,
    blob_size,
    file_name,
    media_type,
    open_attachment,
    validate_pointer,
)
from protocol.exceptions import AttachmentMismatch, MalformedMessage
from protocol.rng import TestRng
from tests.vectors.generate import error_name

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
V = json.loads((VECTORS / "attachments.json").read_text("utf-8"))


def test_regenerating_the_vectors_equals_the_committed_file():
    spec = importlib.util.spec_from_file_location(
        "attachments_generator", VECTORS / "generate_attachments.py"
    )
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render(generator.build()) == (VECTORS / "attachments.json").read_text("utf-8")


def sealed_in_pieces(case: dict[str, Any]) -> tuple[bytes, bytes, AttachmentSealer]:
    rng = TestRng(bytes.fromhex(case["seed"]))
    rng(16)  # the blob id
    plaintext = rng(case["size"])
    sealer = AttachmentSealer(case["size"], rng)
    parts = [sealer.header, sealer.push(b"")]
    offset, turn = 0, 0
    while offset < len(plaintext):
        step = V["pieces"][turn % len(V["pieces"])]
        parts.append(sealer.push(plaintext[offset : offset + step]))
        offset, turn = offset + step, turn + 1
    return plaintext, b"".join(parts), sealer


@pytest.mark.parametrize("case", V["files"], ids=lambda c: c["name"])
def test_each_file_is_sealed_to_the_same_bytes_in_any_pieces_and_opened(case):
    plaintext, blob, sealer = sealed_in_pieces(case)
    sealed = sealer.finish()
    assert (sealed.key.hex(), blob[:24].hex()) == (case["key"], case["header"])
    assert len(blob) == blob_size(case["size"]) == case["blob_size"]
    assert (sealed.digest.hex(), sealed.plaintext_hash.hex()) == (
        case["digest"],
        case["plaintext_hash"],
    )
    if "blob" in case:
        assert (plaintext.hex(), blob.hex()) == (case["plaintext"], case["blob"])
    pointer = AttachmentPointer.from_body(case["pointer"])
    assert pointer.to_body() == case["pointer"]
    # the reader gets the blob in pieces that cut chunks anywhere, and keeps the file only at the end
    opener = AttachmentOpener(pointer)
    opened = b"".join(opener.pull(blob[i : i + 4099]) for i in range(0, len(blob), 4099))
    opener.finish()
    assert opened == plaintext


@pytest.mark.parametrize("case", V["tampered"], ids=lambda c: c["name"])
def test_a_tampered_blob_is_refused(case):
    pointer = AttachmentPointer.from_body(
        next(f for f in V["files"] if f["name"] == "small")["pointer"]
    )
    assert (
        error_name(lambda: open_attachment(bytes.fromhex(case["blob"]), pointer))
        == case["expected_error"]
    )


@pytest.mark.parametrize("case", V["pointers"], ids=lambda c: c["name"])
def test_pointer_bodies_are_accepted_or_refused_as_the_vectors_say(case):
    assert error_name(lambda: validate_pointer(case["body"])) == case["expected_error"]


def test_a_senders_name_and_type_become_what_a_pointer_takes():
    for case in V["file_names"]:
        assert file_name(case["name"]) == case["file_name"], case
        validate_pointer({**V["files"][1]["pointer"], "name": case["file_name"]})
    for case in V["media_types"]:
        assert media_type(case["type"]) == case["media_type"], case


def test_a_blob_cut_at_a_chunk_boundary_is_refused_though_every_chunk_it_has_opens():
    case = next(f for f in V["files"] if f["name"] == "three")
    plaintext, blob, _ = sealed_in_pieces(case)
    pointer = AttachmentPointer.from_body(case["pointer"])
    opener = AttachmentOpener(pointer)
    cut = 24 + 2 * (ATTACHMENT_CHUNK + 17)
    assert opener.pull(blob[:cut]) == plaintext[: 2 * ATTACHMENT_CHUNK]
    with pytest.raises(AttachmentMismatch):
        opener.finish()


def test_a_resumed_sealer_with_the_first_key_and_header_gives_the_same_blob():
    case = next(f for f in V["files"] if f["name"] == "two_chunks")
    plaintext, blob, _ = sealed_in_pieces(case)
    again = AttachmentSealer.keyed(case["size"], bytes.fromhex(case["key"]), blob[:24])
    assert again.header + again.push(plaintext) == blob
    assert again.finish().digest.hex() == case["digest"]


def test_the_sealer_refuses_more_or_fewer_bytes_than_announced():
    sealer = AttachmentSealer(10, TestRng(bytes(32)))
    with pytest.raises(MalformedMessage):
        sealer.push(bytes(11))
    sealer.push(bytes(9))
    with pytest.raises(MalformedMessage):
        sealer.finish()
