"""Randomness sources: `Rng` is any callable n -> n bytes (section 14 for the test stream)."""

from __future__ import annotations

from collections.abc import Callable

import nacl.utils

from protocol.encoding import enc_str, u64
from protocol.primitives import blake2b

Rng = Callable[[int], bytes]


def system_rng(n: int) -> bytes:
    """libsodium's CSPRNG; the default for real devices."""
    return nacl.utils.random(n)


class TestRng:
    """Deterministic stream: block_i = BLAKE2b(64, key=seed, enc_str(label) ‖ u64(i)).

    Never use outside tests and vector generation.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, seed: bytes):
        if len(seed) != 32:
            raise ValueError(f"TestRng seed: expected 32 bytes, got {len(seed)}")
        self._seed = seed
        self._counter = 0
        self._buffer = b""

    def __call__(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = blake2b(
                enc_str("Parley v1 test rng") + u64(self._counter), size=64, key=self._seed
            )
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out
