from __future__ import annotations

import pytest

from protocol.encoding import b64u_decode, b64u_encode, enc_str, u8, u16, u32, u64
from protocol.exceptions import InvalidJson, MalformedMessage
from protocol.primitives import is_canonical_x25519
from protocol.strictjson import MAX_JSON_DEPTH, canonical_json, parse_canonical_json, parse_json


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


@pytest.mark.parametrize(
    "encoder, value",
    [
        (u8, -1),
        (u8, 256),
        (u16, 65536),
        (u32, -1),
        (u32, 2**32),
        (u64, -1),
        (u64, 2**53),  # u64 values are bounded by 2^53 - 1 (section 2.1)
        (u64, 2**64),
        (u64, True),
        (u32, 1.0),
        (u32, "1"),
        (u8, None),
    ],
    ids=lambda v: v.__name__ if callable(v) else repr(v),  # the same in every xdist worker
)
def test_integer_encoders_refuse_out_of_range_values(encoder, value):
    with pytest.raises(MalformedMessage):
        encoder(value)


def test_integer_encoders_write_their_largest_values():
    assert u8(255) == b"\xff" and u16(65535) == b"\xff\xff" and u32(2**32 - 1) == b"\xff" * 4
    assert u64(2**53 - 1) == b"\x00\x1f" + b"\xff" * 6


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", None, 5, b"bytes"], ids=repr)
def test_enc_str_refuses_lone_surrogates_and_non_strings(value):
    with pytest.raises(MalformedMessage):
        enc_str(value)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_nesting_up_to_the_limit_is_accepted():
    assert parse_canonical_json(nested(MAX_JSON_DEPTH)) is not None
    assert canonical_json({"a": [[]]}) == b'{"a":[[]]}'


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 999, 1000, 5000, 60000])
def test_json_nested_too_deep_is_refused_not_a_crash(depth):
    with pytest.raises(MalformedMessage):
        parse_canonical_json(nested(depth))
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    with pytest.raises(MalformedMessage):
        canonical_json(value)


# parse_json: the shared cases are in tests/vectors/json_decoder.json; these are the inputs a
# vector file cannot hold, or sizes that would bloat it.


@pytest.mark.parametrize("depth", [1000, 100_000, 1_000_000])
def test_parse_json_refuses_any_depth_without_recursing(depth):
    with pytest.raises(InvalidJson) as refused:
        parse_json(nested(depth), max_bytes=2 * depth)
    assert refused.value.reason == "too_deep" and "32 levels" in str(refused.value)


def test_parse_json_refuses_a_raw_lone_surrogate_in_text():
    with pytest.raises(InvalidJson) as refused:
        parse_json('{"a":"x\ud800"}', max_bytes=100)
    assert refused.value.reason == "lone_surrogate"


def test_parse_json_measures_text_in_utf8_bytes_with_surrogates_as_three():
    assert parse_json('"\U0001f600\U0001f600"', max_bytes=10) == "\U0001f600" * 2
    with pytest.raises(InvalidJson) as refused:
        parse_json('"\ud800"', max_bytes=4)
    assert refused.value.reason == "too_large"


@pytest.mark.parametrize("data", [None, 7, ["[]"]], ids=repr)
def test_parse_json_refuses_what_is_not_text(data):
    with pytest.raises(InvalidJson) as refused:
        parse_json(data, max_bytes=100)
    assert refused.value.reason == "syntax"


def test_parse_json_takes_a_megabyte_frame_of_ciphertext():
    frame = '{"type":"send","v":1,"targets":{"d":"' + "A" * 1_000_000 + '"}}'
    assert len(parse_json(frame, max_bytes=1_100_000)["targets"]["d"]) == 1_000_000
