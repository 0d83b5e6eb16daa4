"""The account state's hash: an LtHash over value MACs (docs/protocol.md section 23.4).

Order-independent and incremental: inserting a record adds its element, overwriting or
removing subtracts the old one. An element is the 2048-byte XChaCha20 keystream keyed by
the value MAC, read as 1024 little-endian u16 lanes; the sum is lane-wise mod 2^16.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol import primitives
from protocol.exceptions import MalformedMessage

LTHASH_BYTES = 2048
EMPTY_LTHASH = bytes(LTHASH_BYTES)
STATE_HASH_LABEL = "Parley v1 sync state"

# Lane-wise arithmetic on the whole 16384-bit vector as one integer (lane i = bits 16i..16i+15):
# the low 15 bits of each lane add (or subtract) without reaching the next lane, and bit 15 of
# each lane is fixed up by XOR, so no carry or borrow ever crosses a lane.
_ALL = (1 << (8 * LTHASH_BYTES)) - 1
_HIGH = int.from_bytes(b"\x00\x80" * (LTHASH_BYTES // 2), "little")
_LOW = _ALL ^ _HIGH


def _element(value_mac: bytes) -> int:
    return int.from_bytes(primitives.keystream(value_mac, LTHASH_BYTES), "little")


def _add(a: int, b: int) -> int:
    return ((a & _LOW) + (b & _LOW)) ^ ((a ^ b) & _HIGH)


def _sub(a: int, b: int) -> int:
    return ((a | _HIGH) - (b & _LOW)) ^ ((a ^ b) & _HIGH) ^ _HIGH


def _lanes(lthash: bytes) -> int:
    if not isinstance(lthash, bytes) or len(lthash) != LTHASH_BYTES:
        raise MalformedMessage(f"lthash: expected {LTHASH_BYTES} bytes")
    return int.from_bytes(lthash, "little")


def lthash_update(
    lthash: bytes, *, add: Iterable[bytes] = (), remove: Iterable[bytes] = ()
) -> bytes:
    """The LtHash with the elements of `add` inserted and those of `remove` taken out."""
    total = _lanes(lthash)
    for value_mac in add:
        total = _add(total, _element(value_mac))
    for value_mac in remove:
        total = _sub(total, _element(value_mac))
    return total.to_bytes(LTHASH_BYTES, "little")


def state_hash(lthash: bytes) -> bytes:
    """The 32 bytes an entry carries: H("Parley v1 sync state", lthash)."""
    return primitives.hash32(STATE_HASH_LABEL, lthash)
