"""History bundle: one secretstream over the whole history (docs/protocol.md section 12)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol import primitives
from protocol.exceptions import DecryptionFailed, HistoryBundleMismatch
from protocol.rng import Rng

HISTORY_CHUNK = 65536
HISTORY_HASH_LABEL = "Parley v1 history"


@dataclass(frozen=True)
class SealedHistory:
    """`blob` goes to the server; key, hash and length go through the pairwise session."""

    blob: bytes
    key: bytes
    hash: bytes
    length: int


def history_hash(blob: bytes) -> bytes:
    return primitives.hash32(HISTORY_HASH_LABEL, blob)


def seal_history(plaintext: bytes, rng: Rng) -> SealedHistory:
    """Draws rng(32) for the key, then rng(24) for the stream header."""
    key = rng(32)
    header = rng(primitives.STREAM_HEADER_BYTES)
    state = primitives.stream_state(key, header)
    chunks = [plaintext[i : i + HISTORY_CHUNK] for i in range(0, len(plaintext), HISTORY_CHUNK)]
    chunks = chunks or [b""]
    parts = [header]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        tag = primitives.TAG_FINAL if last else primitives.TAG_MESSAGE
        parts.append(primitives.stream_push(state, chunk, tag))
    blob = b"".join(parts)
    return SealedHistory(blob=blob, key=key, hash=history_hash(blob), length=len(blob))


def open_history(blob: bytes, *, key: bytes, expected_hash: bytes, expected_length: int) -> bytes:
    """Check length and hash, then decrypt every chunk; refuses truncation and reordering."""
    if len(blob) != expected_length:
        raise HistoryBundleMismatch(
            f"history bundle: expected {expected_length} bytes, got {len(blob)}"
        )
    if history_hash(blob) != expected_hash:
        raise HistoryBundleMismatch("history bundle: hash differs from the announced hash")
    header_size = primitives.STREAM_HEADER_BYTES
    if len(blob) < header_size + primitives.STREAM_ABYTES:
        raise DecryptionFailed("history bundle: expected a header and at least one chunk")
    state = primitives.stream_state(key, blob[:header_size])
    step = HISTORY_CHUNK + primitives.STREAM_ABYTES
    offsets = list(range(header_size, len(blob), step))
    out = []
    for index, offset in enumerate(offsets):
        plaintext, tag = primitives.stream_pull(state, blob[offset : offset + step])
        last = index == len(offsets) - 1
        expected = primitives.TAG_FINAL if last else primitives.TAG_MESSAGE
        if tag != expected:
            raise DecryptionFailed(
                f"history bundle chunk {index}: expected tag {expected}, got {tag}"
            )
        out.append(plaintext)
    return b"".join(out)
