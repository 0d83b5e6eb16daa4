from __future__ import annotations

import pytest

from protocol.exceptions import DecryptionFailed, HistoryBundleMismatch
from protocol.history import HISTORY_CHUNK, history_hash, open_history, seal_history
from tests.protocol.protocol_builders import rng_for

STEP = HISTORY_CHUNK + 17


def open_blob(blob, sealed):
    return open_history(
        blob, key=sealed.key, expected_hash=history_hash(blob), expected_length=len(blob)
    )


@pytest.mark.parametrize("size", [0, 1, HISTORY_CHUNK, HISTORY_CHUNK + 1, 3 * HISTORY_CHUNK - 5])
def test_history_round_trips(size):
    rng = rng_for(f"history {size}")
    plaintext = rng(size)
    sealed = seal_history(plaintext, rng)
    assert sealed.length == 24 + size + 17 * max(1, -(-size // HISTORY_CHUNK))
    assert (
        open_history(
            sealed.blob, key=sealed.key, expected_hash=sealed.hash, expected_length=sealed.length
        )
        == plaintext
    )


def test_wrong_length_or_hash_is_refused_before_decrypting():
    rng = rng_for("history mismatch")
    sealed = seal_history(rng(1000), rng)
    with pytest.raises(HistoryBundleMismatch):
        open_history(
            sealed.blob,
            key=sealed.key,
            expected_hash=sealed.hash,
            expected_length=sealed.length + 1,
        )
    with pytest.raises(HistoryBundleMismatch):
        open_history(
            sealed.blob, key=sealed.key, expected_hash=bytes(32), expected_length=sealed.length
        )


def test_truncated_stream_without_final_tag_is_refused_even_with_matching_hash():
    rng = rng_for("history truncation")
    sealed = seal_history(rng(2 * HISTORY_CHUNK + 10), rng)
    with pytest.raises(DecryptionFailed):
        open_blob(sealed.blob[: 24 + 2 * STEP], sealed)


def test_reordered_or_tampered_chunks_are_refused():
    rng = rng_for("history reorder")
    sealed = seal_history(rng(3 * HISTORY_CHUNK), rng)
    header, chunks = (
        sealed.blob[:24],
        [sealed.blob[24 + i * STEP : 24 + (i + 1) * STEP] for i in range(3)],
    )
    with pytest.raises(DecryptionFailed):
        open_blob(header + chunks[1] + chunks[0] + chunks[2], sealed)
    flipped = bytearray(sealed.blob)
    flipped[100] ^= 1
    with pytest.raises(DecryptionFailed):
        open_blob(bytes(flipped), sealed)
    with pytest.raises(DecryptionFailed):
        open_history(
            sealed.blob, key=bytes(32), expected_hash=sealed.hash, expected_length=sealed.length
        )
