"""Canonical encodings (docs/protocol.md section 2): binary fields, UTF-8, base64url.

JSON, canonical and untrusted, is read and written by protocol.strictjson.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, TypeGuard

from protocol.exceptions import MalformedMessage

MAX_SAFE_INTEGER = 2**53 - 1
_B64U = re.compile(r"[A-Za-z0-9_-]*")


def utf8_encode(value: Any, *, error: type[Exception] = MalformedMessage) -> bytes:
    """UTF-8 bytes of a string; refuses non-strings and lone surrogates with `error`."""
    if not isinstance(value, str):
        raise error(f"expected a string, got {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error("expected a string encodable as UTF-8, got lone surrogates") from exc


def enc_str(value: str) -> bytes:
    """u16 big-endian byte length followed by the UTF-8 bytes (at most 65535 bytes)."""
    raw = utf8_encode(value)
    if len(raw) > 0xFFFF:
        raise MalformedMessage(f"expected a string of at most 65535 bytes, got {len(raw)}")
    return len(raw).to_bytes(2, "big") + raw


def is_uint(value: Any, maximum: int = MAX_SAFE_INTEGER) -> TypeGuard[int]:
    """True for an int (not a bool) in 0..maximum."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def _uint(n: int, size: int, maximum: int) -> bytes:
    if not is_uint(n, maximum):
        raise MalformedMessage(
            f"expected an integer in 0..{maximum} (fits in {size} bytes), got {n!r}"
        )
    return n.to_bytes(size, "big")


def u8(n: int) -> bytes:
    return _uint(n, 1, 0xFF)


def u16(n: int) -> bytes:
    return _uint(n, 2, 0xFFFF)


def u32(n: int) -> bytes:
    return _uint(n, 4, 0xFFFFFFFF)


def u64(n: int) -> bytes:
    """A u64; every u64 of the protocol is at most 2^53-1 (section 2.1), as JavaScript holds."""
    return _uint(n, 8, MAX_SAFE_INTEGER)


def label(name: str) -> bytes:
    """The domain-separation prefix that starts every signed or hashed structure."""
    return enc_str(name)


class Reader:
    """Reads fixed-layout binary fields; every shortfall is a `error_class` error."""

    def __init__(self, data: bytes, *, what: str, error: type[Exception] = MalformedMessage):
        self._data = data
        self._pos = 0
        self._what = what
        self._error = error

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise self._error(
                f"{self._what}: expected {n} more bytes at offset {self._pos}, "
                f"got {len(self._data) - self._pos}"
            )
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def uint(self, size: int) -> int:
        """A big-endian unsigned integer of `size` bytes; refuses values above 2^53-1."""
        value = int.from_bytes(self.take(size), "big")
        if value > MAX_SAFE_INTEGER:
            raise self._error(f"{self._what}: expected an integer of at most 2^53-1")
        return value

    def string(self) -> str:
        raw = self.take(self.uint(2))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._error(f"{self._what}: expected UTF-8 string") from exc

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def end(self) -> None:
        if self._pos != len(self._data):
            raise self._error(
                f"{self._what}: expected end of data, got {len(self._data) - self._pos} trailing bytes"
            )


def b64u_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: Any, *, length: int | None = None, what: str = "value") -> bytes:
    """Strict base64url without padding; `length` checks a fixed-size field."""
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedMessage(f"{what}: expected unpadded base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"{what}: expected unpadded base64url text") from exc
    if b64u_encode(data) != text:
        raise MalformedMessage(f"{what}: expected canonical base64url (trailing bits set)")
    if length is not None and len(data) != length:
        raise MalformedMessage(f"{what}: expected {length} bytes, got {len(data)}")
    return data
