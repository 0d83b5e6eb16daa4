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
