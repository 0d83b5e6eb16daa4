from __future__ import annotations

import pytest

from protocol.encoding import (
    b64u_decode,
    b64u_encode,
    canonical_json,
    enc_str,
    parse_canonical_json,
)
from protocol.exceptions import MalformedMessage
from protocol.primitives import is_canonical_x25519


def test_enc_str_is_u16_length_prefixed_utf8():
    assert enc_str("é") == b"\x00\x02\xc3\xa9"
    with pytest.raises(MalformedMessage):
        enc_str("x" * 65536)


@pytest.mark.parametrize("text", ["AA==", "AA=", "A", "AB", "A+8", "A/8", "AA AA", 5])
def test_non_canonical_base64url_is_refused(text):
    with pytest.raises(MalformedMessage):
        b64u_decode(text)


def test_base64url_round_trip_and_fixed_length():
    assert b64u_decode(b64u_encode(b"\xfb\xff")) == b"\xfb\xff"
    assert b64u_encode(b"\xfb\xff") == "-_8"
    with pytest.raises(MalformedMessage):
        b64u_decode("AAAA", length=2)


def test_canonical_json_matches_json_stringify_conventions():
    assert (
        canonical_json({"b": 1, "a": ["é", "\n\u0001", None, True]})
        == '{"a":["é","\\n\\u0001",null,true],"b":1}'.encode()
    )


@pytest.mark.parametrize(
    "raw",
    [b'{"a": 1}', b'{"b":1,"a":2}', b'{"a":1,"a":1}', b'{"a":1.0}', b'{"a":"\\u00e9"}', b"\xff"],
)
def test_non_canonical_json_is_refused(raw):
    with pytest.raises(MalformedMessage):
        parse_canonical_json(raw)


def test_x25519_encodings_above_the_field_prime_are_not_canonical():
    assert is_canonical_x25519(bytes(31) + b"\x7f") is True
    assert is_canonical_x25519(b"\xff" * 31 + b"\x7f") is False
    assert is_canonical_x25519(bytes(31) + b"\x80") is False
