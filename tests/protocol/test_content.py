from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.content import Content, ContentType, decode_content, encode_content, new_content
from protocol.encoding import b64u_encode
from protocol.exceptions import MalformedMessage
from tests.protocol.protocol_builders import rng_for

LIST_HASH = bytes(range(32))


def make(content_type, body):
    return new_content(
        content_type,
        body,
        timestamp=1,
        sender_list_version=2,
        sender_list_hash=LIST_HASH,
        rng=rng_for("content"),
    )


@given(st.text(max_size=300))
def test_any_text_round_trips_and_is_padded_to_64(text):
    content = make(ContentType.TEXT, {"text": text})
    encoded = encode_content(content)
    assert len(encoded) % 64 == 0
    assert decode_content(encoded) == content


def test_sent_transcript_accepts_only_text_or_receipt_inside():
    inner = make(ContentType.TEXT, {"text": "hi"})
    make(
        ContentType.SENT_TRANSCRIPT,
        {"recipient": "acct-bob", "content": b64u_encode(encode_content(inner))},
    )
    typing = make(ContentType.TYPING, {"state": "started"})
    with pytest.raises(MalformedMessage):
        make(
            ContentType.SENT_TRANSCRIPT,
            {"recipient": "acct-bob", "content": b64u_encode(encode_content(typing))},
        )


@pytest.mark.parametrize(
    "content_type, body",
    [
        (ContentType.TEXT, {"text": 5}),
        (ContentType.TEXT, {"text": "a", "extra": 1}),
        (ContentType.RECEIPT, {"kind": "seen", "message_ids": [b64u_encode(bytes(16))]}),
        (ContentType.RECEIPT, {"kind": "read", "message_ids": []}),
        (ContentType.RECEIPT, {"kind": "read", "message_ids": [b64u_encode(bytes(15))]}),
        (
            ContentType.HISTORY_BUNDLE_KEY,
            {
                "blob_id": "b",
                "key": b64u_encode(bytes(32)),
                "hash": b64u_encode(bytes(32)),
                "length": -1,
                "count": 1,
            },
        ),
        (
            ContentType.HISTORY_BUNDLE_KEY,
            {
                "blob_id": "b",
                "key": b64u_encode(bytes(32)),
                "hash": b64u_encode(bytes(32)),
                "length": 1,
            },
        ),
        (
            ContentType.HISTORY_BUNDLE_KEY,
            {
                "blob_id": "b",
                "key": b64u_encode(bytes(32)),
                "hash": b64u_encode(bytes(32)),
                "length": 1,
                "count": -1,
            },
        ),
        (ContentType.DEVICE_LIST_NOTICE, {"device_list": {"version": 1}}),
        (ContentType.TYPING, {"state": True}),
        (ContentType.TEXT, {"text": "x" * 70000}),
        (ContentType.TEXT, {"text": "\ud800"}),
    ],
)
def test_invalid_bodies_are_refused(content_type, body):
    with pytest.raises(MalformedMessage):
        make(content_type, body)


def test_content_with_wrong_sizes_is_refused():
    with pytest.raises(MalformedMessage):
        encode_content(
            Content(ContentType.TYPING, bytes(15), 0, 0, LIST_HASH, {"state": "started"})
        )


def raw(content_type=ContentType.TEXT, body=None, **fields):
    """A Content built directly (not through new_content), as a careless caller would."""
    values = {
        "message_id": bytes(16),
        "timestamp": 1,
        "sender_list_version": 2,
        "sender_list_hash": LIST_HASH,
        **fields,
    }
    return Content(content_type, body=body if body is not None else {"text": "a"}, **values)


@pytest.mark.parametrize(
    "content",
    [
        raw(1, {"text": 5}),  # plain int type: the body is still validated
        raw(2, {"text": "a"}),
        raw(6, {"state": "sleeping"}),
        raw(9, {"text": "a"}),  # unknown type
        raw(0, {"text": "a"}),
        raw(-1, {"text": "a"}),
        raw(256, {"text": "a"}),
        raw(True, {"text": "a"}),
        raw(1.0, {"text": "a"}),
        raw("1", {"text": "a"}),
        raw(None, {"text": "a"}),
        raw(timestamp=-1),
        raw(timestamp=2**53),
        raw(timestamp=2**64),
        raw(timestamp=True),
        raw(timestamp=1.5),
        raw(timestamp="1"),
        raw(sender_list_version=-1),
        raw(sender_list_version=2**53),
        raw(sender_list_version=2**64 - 1),
        raw(sender_list_version=None),
        raw(message_id="0" * 16),
        raw(sender_list_hash=list(range(32))),
    ],
    ids=repr,
)
def test_encode_content_refuses_bad_type_body_and_fields(content):
    with pytest.raises(MalformedMessage):
        encode_content(content)


def test_plain_int_type_encodes_like_the_enum_and_largest_u64_is_accepted():
    content = raw(1, {"text": "a"}, timestamp=2**53 - 1, sender_list_version=2**53 - 1)
    encoded = encode_content(content)
    assert encoded == encode_content(raw(ContentType.TEXT, {"text": "a"}, **_fields(content)))
    decoded = decode_content(encoded)
    assert decoded.type is ContentType.TEXT and decoded.timestamp == 2**53 - 1


def _fields(content):
    return {"timestamp": content.timestamp, "sender_list_version": content.sender_list_version}


@pytest.mark.parametrize(
    "offset, value",
    [(18, 2**53), (18, 2**64 - 1), (26, 2**53), (26, 2**63)],
    ids=["timestamp 2^53", "timestamp 2^64-1", "list version 2^53", "list version 2^63"],
)
def test_decode_refuses_u64_above_2_53_minus_1(offset, value):
    good = encode_content(raw())
    with pytest.raises(MalformedMessage):
        decode_content(good[:offset] + value.to_bytes(8, "big") + good[offset + 8 :])


@pytest.mark.parametrize("depth", [33, 1000, 30000])
def test_deeply_nested_body_is_malformed_not_a_crash(depth):
    body = b'{"text":' + b"[" * depth + b"]" * depth + b"}"
    data = bytes(66) + len(body).to_bytes(4, "big") + body
    data = b"\x01\x01" + data[2:]
    data += bytes(-len(data) % 64)
    with pytest.raises(MalformedMessage):
        decode_content(data)
