"""Property-based fuzzing of every decoder and verifier (docs/protocol.md section 15).

Random bytes, and random mutations of valid messages, contents, device lists, bundles,
sessions, provisioning payloads and history blobs, go into every function that reads
untrusted input. Only ProtocolError subclasses may escape (any other exception fails the
test), and a refused input leaves the session state unchanged.

Each property runs FUZZ_EXAMPLES examples: 200 by default (the whole file takes a few
seconds); set PARLEY_FUZZ_EXAMPLES (e.g. 5000) for a longer run.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.attachments import AttachmentPointer, open_attachment, seal_attachment
from protocol.content import (
    Content,
    ContentType,
    decode_content,
    encode_content,
)
from protocol.devicelist import (
    DeviceEntry,
    DeviceList,
    sign_device,
    sign_device_list,
    verify_device_list,
)
from protocol.encoding import b64u_decode, b64u_encode, enc_str
from protocol.exceptions import InvalidJson, ProtocolError
from protocol.history import history_hash, open_history, seal_history
from protocol.inbound import accept_prekey_message
from protocol.keys import DeviceKeys, PrekeyBundle, X25519KeyPair, make_prekey_bundle
from protocol.keys import verify_prekey_bundle as verify_bundle
from protocol.linking import (
    make_provisioning,
    open_provisioning,
    provisioning_payload,
    seal_provisioning,
)
from protocol.message import Header, RatchetMessage, decode_message
from protocol.primitives import aead_encrypt, blake2b, sealed_box
from protocol.ratchet import Session
from protocol.rng import TestRng
from protocol.strictjson import canonical_json, parse_canonical_json, parse_json
from protocol.x3dh import initiate as x3dh_initiate
from tests.protocol.protocol_builders import (
    accept,
    established_pair,
    make_device,
    rng_for,
    start_session,
)

FUZZ_EXAMPLES = int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "200"))
fuzz = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def refused_or_value(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run fn; a ProtocolError is a refusal (None), anything else escapes and fails."""
    try:
        return fn(*args, **kwargs)
    except ProtocolError:
        return None


# ---------------------------------------------------------------------------------------
# Valid samples, built once.

ALICE, A_SESSION, BOB, B_SESSION = established_pair("fuzz")
A_SNAPSHOT, B_SNAPSHOT = A_SESSION.to_dict(), B_SESSION.to_dict()
# Alice → Bob ratchet messages (in order, one skipped ahead) and Bob → Alice ones.
TO_BOB = [A_SESSION.encrypt(f"to bob {i}".encode(), ALICE.rng) for i in range(3)]
TO_ALICE = [B_SESSION.encrypt(f"to alice {i}".encode(), BOB.rng) for i in range(3)]

# A fresh pair still in the prekey phase: prekey messages, and Bob's session after the first.
P_ALICE, P_BOB = make_device("fuzz prekey alice"), make_device("fuzz prekey bob")
P_SESSION = start_session(P_ALICE, P_BOB)
PREKEY_MESSAGES = [P_SESSION.encrypt(f"prekey {i}".encode(), P_ALICE.rng) for i in range(3)]
P_BOB_SESSION, _ = accept(P_BOB, P_ALICE, PREKEY_MESSAGES[0])
P_BOB_SNAPSHOT = P_BOB_SESSION.to_dict()
P_BOB_USED = frozenset(P_BOB.used_base_keys)
P_BOB.used_base_keys.clear()  # accept_prekey_message below starts from nothing used

# Alice before any reply has no receiving chain; a message claiming Bob's signed prekey as its
# ratchet key (all public) must not decrypt under a key derived from "no chain".
P_ALICE_SNAPSHOT = P_SESSION.to_dict()
_forged_header = Header(dh=P_BOB.keys.signed_prekey.key.public, pn=0, n=0)
FORGED = RatchetMessage(
    header=_forged_header,
    nonce=bytes(24),
    ciphertext=aead_encrypt(
        blake2b(enc_str("Parley v1 chain") + b"\x01", size=32),
        bytes(24),
        b"forged",
        P_ALICE.keys.identity.public + P_BOB.keys.identity.public + _forged_header.encode(),
    ),
).encode()

# Version 2 (section 27), from tests/vectors/pq.json: Bob's session after the first message,
# Alice's first turn to it (prekey messages), and messages carrying a KEM offer or answer.
PQ = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "pq.json").read_text("utf-8"))
PQ_BOB_SNAPSHOT = PQ["sessions"][0]["bob_session"]
PQ_STEPS = [s for s in PQ["conversation"]["steps"] if s["op"] == "encrypt"]
PQ_TO_BOB = [bytes.fromhex(s["message"]) for s in PQ_STEPS if s["name"].startswith("a0.")]
PQ_KEM_MESSAGES = [
    bytes.fromhex(s["message"])
    for s in PQ_STEPS
    if len(s["message"]) > 2000  # hex of a message with an offer or an answer
][:4]
PQ_FIRST = bytes.fromhex(PQ["sessions"][0]["first_message"])
PQ_BOB = DeviceKeys.from_dict(PQ["bob_device_keys"])

SESSION_CASES = [
    (B_SNAPSHOT, TO_BOB),
    (A_SNAPSHOT, TO_ALICE),
    (P_BOB_SNAPSHOT, PREKEY_MESSAGES),
    (P_ALICE_SNAPSHOT, [FORGED, *TO_ALICE]),
    (PQ_BOB_SNAPSHOT, PQ_TO_BOB + PQ_KEM_MESSAGES),
]
ALL_MESSAGES = TO_BOB + TO_ALICE + PREKEY_MESSAGES + [FORGED, PQ_FIRST, *PQ_KEM_MESSAGES]

LIST_HASH = bytes(range(32))
PRIMARY = make_device("fuzz list primary").keys.identity
LAPTOP = make_device("fuzz list laptop").keys.identity
DEVICE_LIST = sign_device_list(
    PRIMARY,
    account_id="acct-fuzz",
    version=2,
    timestamp=1_700_000_000_000,
    devices=[
        DeviceEntry("dev-primary", PRIMARY.public, 1_700_000_000_000),
        DeviceEntry(
            "dev-laptop",
            LAPTOP.public,
            1_700_000_000_001,
            sign_device(LAPTOP, account_id="acct-fuzz", account_key=PRIMARY.public),
        ),
    ],
)
LIST_DICT = DEVICE_LIST.to_dict()

BUNDLE_DICT = make_prekey_bundle("bob", P_BOB.keys, P_BOB.keys.one_time_prekeys[1]).to_dict()
DEVICE_KEYS_DICT = P_BOB.keys.to_dict()


def _content(content_type: ContentType, body: dict[str, Any], i: int = 0) -> bytes:
    return encode_content(
        Content(content_type, bytes([i]) * 16, 1_700_000_000_000 + i, 3, LIST_HASH, body)
    )


_TEXT = _content(ContentType.TEXT, {"text": "hello é 漢"})
CONTENTS = [
    _TEXT,
    _content(ContentType.RECEIPT, {"kind": "read", "message_ids": [b64u_encode(bytes(16))]}, 1),
    _content(ContentType.SENT_TRANSCRIPT, {"recipient": "acct-b", "content": b64u_encode(_TEXT)}),
    _content(ContentType.DEVICE_LIST_NOTICE, {"device_list": LIST_DICT}, 3),
    _content(
        ContentType.HISTORY_BUNDLE_KEY,
        {
            "blob_id": "blob-1",
            "key": b64u_encode(bytes(32)),
            "hash": b64u_encode(bytes(32)),
            "length": 99,
            "count": 3,
        },
        4,
    ),
    _content(ContentType.TYPING, {"state": "started"}, 5),
]

LINK_EPHEMERAL = X25519KeyPair.generate(rng_for("fuzz link ephemeral"))
PROVISIONING = make_provisioning(
    PRIMARY, account_id="acct-fuzz", companion_identity_key=LAPTOP.public, link_id="L1"
)
PAYLOAD = provisioning_payload(PROVISIONING)
SEALED = seal_provisioning(PROVISIONING, LINK_EPHEMERAL.public)

_history_rng = rng_for("fuzz history")
HISTORIES = [seal_history(_history_rng(n), _history_rng) for n in (0, 100, 65536 + 20)]
_attachment_rng = rng_for("fuzz attachment")
ATTACHMENTS = [
    seal_attachment(
        _attachment_rng(n), _attachment_rng, blob_id="A" * 22, type="image/png", name="f.png"
    )
    for n in (0, 100, 65536 + 20)
]

# ---------------------------------------------------------------------------------------
# Strategies.

INTERESTING_INTS = [0, 1, 0xFF, 0xFFFF, 2**32 - 1, 2**32, 2**53 - 1, 2**53, 2**63, 2**64 - 1]


@st.composite
def mutated(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    """A valid sample with 1..4 random edits (bit flips, bytes set, inserted, deleted,
    truncations, extensions, and big-endian integers written over a field)."""
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "append", "int"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "cut":
            del data[pos:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=128))
        elif op == "int":
            size = draw(st.sampled_from([1, 2, 4, 8]))
            value = draw(st.sampled_from(INTERESTING_INTS)) % (1 << (8 * size))
            data[pos : pos + size] = value.to_bytes(size, "big")
    return bytes(data)


def byte_inputs(samples: list[bytes], max_size: int = 400) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=max_size), st.sampled_from(samples), mutated(samples))


# Text including lone surrogates, long strings and base64url of various lengths.
any_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "x" * 65536, "", "dev-primary", "acct-fuzz"]),
    st.binary(max_size=70).map(b64u_encode),
)
EDGE_VALUES = [*INTERESTING_INTS, -1, -(2**53), 2**70, True, False, 1.5, 3.0, "3", None]
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(INTERESTING_INTS + [-1, -(2**53)]),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated_json(draw: st.DrawFn, sample: Any) -> Any:
    """A deep copy of a JSON value with 1..3 edits: a node replaced by a random value (or a
    string by another string or given a lone surrogate, an integer by an edge value), a key
    removed or added, a list entry removed or duplicated."""
    value = copy.deepcopy(sample)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        node = _get(value, path)
        op = draw(st.sampled_from(["replace", "retype", "retype", "remove", "add", "duplicate"]))
        if op == "retype" and path and isinstance(node, str) and draw(st.booleans()):
            at = draw(st.integers(0, len(node)))  # a lone surrogate inside a valid string
            _get(value, path[:-1])[path[-1]] = node[:at] + "\udc80" + node[at:]
        elif op == "retype" and path and isinstance(node, (str, int)):
            edge = any_text if isinstance(node, str) else st.sampled_from(EDGE_VALUES)
            _get(value, path[:-1])[path[-1]] = draw(edge)
        elif op in ("replace", "retype") or not path and op == "remove":
            if not path:
                value = draw(json_values)
                continue
            _get(value, path[:-1])[path[-1]] = draw(json_values)
        elif op == "remove" and path:
            del _get(value, path[:-1])[path[-1]]
        elif op == "add" and isinstance(node, dict):
            node[draw(any_text)] = draw(json_values)
        elif op == "duplicate" and isinstance(node, list) and node:
            node.append(copy.deepcopy(node[draw(st.integers(0, len(node) - 1))]))
    return value


# ---------------------------------------------------------------------------------------
# Properties.


@fuzz
@given(byte_inputs(ALL_MESSAGES))
def test_decode_message_refuses_only_with_protocol_errors(data):
    message = refused_or_value(decode_message, data)
    if message is not None:
        assert message.encode() == data  # a decoded message is its own unique encoding


@fuzz
@given(st.sampled_from(SESSION_CASES), st.data())
def test_session_decrypt_refuses_without_changing_state(case, data):
    snapshot, messages = case
    message = data.draw(byte_inputs(messages, max_size=200), label="message")
    session = Session.from_dict(snapshot)
    plaintext = refused_or_value(session.decrypt, message, TestRng(bytes(32)))
    if plaintext is None:
        assert session.to_dict() == snapshot
    else:  # only what a party really sent ever decrypts
        assert plaintext.startswith((b"to bob ", b"to alice ", b"prekey ", b"a0.")), plaintext


@fuzz
@given(byte_inputs(PREKEY_MESSAGES + TO_BOB), st.booleans())
def test_accept_prekey_message_refuses_only_with_protocol_errors(data, first_base_key_used):
    signed_prekeys = {P_BOB.keys.signed_prekey.id: P_BOB.keys.signed_prekey.key}
    one_time_prekeys = {k.id: k.key for k in P_BOB.keys.one_time_prekeys}
    used = set(P_BOB_USED) if first_base_key_used else set()
    before = (dict(signed_prekeys), dict(one_time_prekeys), set(used))
    refused_or_value(
        accept_prekey_message,
        data,
        identity=P_BOB.keys.identity,
        signed_prekeys=signed_prekeys,
        one_time_prekeys=one_time_prekeys,
        sender_identity_key=P_ALICE.keys.identity.public,
        used_base_keys=used,
        rng=TestRng(bytes(32)),
    )
    assert (signed_prekeys, one_time_prekeys, used) == before  # nothing consumed here


@fuzz
@given(byte_inputs([PQ_FIRST], max_size=1400), st.booleans())
def test_accept_version_2_prekey_message_refuses_only_with_protocol_errors(data, speaks_v2):
    assert PQ_BOB.last_resort_kem_prekey is not None
    kem_prekeys = {k.id: k for k in (*PQ_BOB.kem_prekeys, PQ_BOB.last_resort_kem_prekey)}
    accepted = refused_or_value(
        accept_prekey_message,
        data,
        identity=PQ_BOB.identity,
        signed_prekeys={7: PQ_BOB.signed_prekey.key},
        one_time_prekeys={100: PQ_BOB.one_time_prekeys[0].key},
        kem_prekeys=kem_prekeys,
        sender_identity_key=bytes.fromhex(PQ["refusals"][0]["sender"]),
        used_base_keys=set(),
        rng=TestRng(bytes(32)),
        sender_speaks_v2=speaks_v2,
    )
    if accepted is not None:  # only what Alice sent
        assert accepted.plaintext == b"hello, quantum-safe bob" and data == PQ_FIRST


@fuzz
@given(byte_inputs(CONTENTS, max_size=300))
def test_decode_content_refuses_only_with_protocol_errors(data):
    content = refused_or_value(decode_content, data)
    if content is not None and isinstance(content.type, ContentType):
        assert encode_content(content) == data  # the encoding is canonical
    elif content is not None:  # a newer version's type: kept, its body an object
        assert content.type == data[1] and isinstance(content.body, dict)


content_types = st.one_of(
    st.sampled_from(list(ContentType)),
    st.integers(-2, 300),
    st.sampled_from([True, False, None, "1", 1.0]),
)
u64_like = st.one_of(
    st.integers(min_value=-(2**65), max_value=2**65),
    st.sampled_from(INTERESTING_INTS + [-1, True, 1.5, "1", None]),
)


@fuzz
@given(
    content_types,
    st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20), st.none()),
    u64_like,
    u64_like,
    st.one_of(st.just(LIST_HASH), st.binary(max_size=33)),
    st.one_of(json_values, st.sampled_from([{"text": "a"}, {"state": "stopped"}])),
)
def test_encode_content_refuses_only_with_protocol_errors(
    content_type, message_id, timestamp, list_version, list_hash, body
):
    content = Content(content_type, message_id, timestamp, list_version, list_hash, body)
    encoded = refused_or_value(encode_content, content)
    if encoded is not None:
        assert decode_content(encoded) == content


@fuzz
@given(
    st.one_of(mutated_json(LIST_DICT), mutated_json(PQ["device_lists"]["list"])),
    st.sampled_from([None, 0, 1, 2, 2**53 - 1]),
)
def test_device_list_parse_and_verify_refuse_only_with_protocol_errors(data, last_version):
    device_list = refused_or_value(DeviceList.from_dict, data)
    if device_list is None:
        return
    refused_or_value(
        verify_device_list,
        device_list,
        expected_account_key=PRIMARY.public,
        last_accepted_version=last_version,
        known_devices={"dev-laptop": LAPTOP.public},
    )
    refused_or_value(lambda: device_list.hash)


@fuzz
@given(st.one_of(mutated_json(BUNDLE_DICT), mutated_json(PQ["sessions"][0]["bundle"]), json_values))
def test_prekey_bundle_parse_verify_and_initiate_refuse_only_with_protocol_errors(data):
    bundle = refused_or_value(PrekeyBundle.from_dict, data)
    if bundle is None:
        return
    listed = P_BOB.keys.identity.public
    refused_or_value(verify_bundle, bundle, listed_identity_key=listed)
    refused_or_value(
        Session.initiate,
        identity=P_ALICE.keys.identity,
        bundle=bundle,
        listed_identity_key=listed,
        rng=TestRng(bytes(32)),
    )
    # The X3DH arithmetic itself on unverified keys (low-order points and the like).
    refused_or_value(
        x3dh_initiate, identity=P_ALICE.keys.identity, bundle=bundle, rng=TestRng(bytes(32))
    )


@fuzz
@given(
    st.one_of(
        mutated_json(A_SNAPSHOT),
        mutated_json(P_BOB_SNAPSHOT),
        mutated_json(PQ["conversation"]["final_sessions"]["alice"]),
        json_values,
    )
)
def test_session_parse_encrypt_decrypt_refuse_only_with_protocol_errors(data):
    session = refused_or_value(Session.from_dict, data)
    if session is not None:
        before = session.to_dict()
        if refused_or_value(session.encrypt, b"x", TestRng(bytes(32))) is None:
            assert session.to_dict() == before
        for message in TO_ALICE[:1] + TO_BOB[:1] + PQ_KEM_MESSAGES[:1]:
            before = session.to_dict()
            if refused_or_value(session.decrypt, message, TestRng(bytes(32))) is None:
                assert session.to_dict() == before


@fuzz
@given(st.one_of(mutated_json(DEVICE_KEYS_DICT), mutated_json(PQ["bob_device_keys"]), json_values))
def test_device_keys_parse_refuses_only_with_protocol_errors(data):
    refused_or_value(DeviceKeys.from_dict, data)


def _open(sealed: bytes) -> Any:
    return refused_or_value(
        open_provisioning,
        sealed,
        ephemeral=LINK_EPHEMERAL,
        own_identity_key=LAPTOP.public,
        link_id="L1",
    )


@fuzz
@given(byte_inputs([SEALED]))
def test_open_provisioning_refuses_sealed_boxes_only_with_protocol_errors(sealed):
    _open(sealed)


@fuzz
@given(
    st.one_of(
        byte_inputs([PAYLOAD]),
        mutated_json(json.loads(PAYLOAD)).map(
            lambda value: refused_or_value(canonical_json, value) or b""
        ),
    )
)
def test_open_provisioning_refuses_payloads_only_with_protocol_errors(payload):
    # Sealed correctly, so the payload parsing and the link signature check are reached.
    opened = _open(sealed_box(payload, LINK_EPHEMERAL.public))
    if opened is not None:
        assert opened == PROVISIONING


@fuzz
@given(
    st.sampled_from(HISTORIES),
    st.data(),
    st.booleans(),
)
def test_open_history_refuses_only_with_protocol_errors(history, data, announce_true_hash):
    blob = data.draw(byte_inputs([history.blob], max_size=200), label="blob")
    key = data.draw(st.one_of(st.just(history.key), st.binary(max_size=40)), label="key")
    # Announcing the blob's own hash and length reaches the secretstream decryption.
    expected_hash = history_hash(blob) if announce_true_hash else history.hash
    expected_length = len(blob) if announce_true_hash else history.length
    refused_or_value(
        open_history, blob, key=key, expected_hash=expected_hash, expected_length=expected_length
    )


@fuzz
@given(st.sampled_from(ATTACHMENTS), st.data())
def test_open_attachment_refuses_only_with_protocol_errors(attachment, data):
    blob, pointer = attachment
    body = data.draw(st.one_of(st.just(pointer.to_body()), mutated_json(pointer.to_body())))
    announced = refused_or_value(AttachmentPointer.from_body, body)
    cut = data.draw(byte_inputs([blob], max_size=200), label="blob")
    opened = refused_or_value(open_attachment, cut, announced or pointer)
    if opened is not None:  # only the sealed file itself opens
        assert (cut, (announced or pointer).key) == (blob, pointer.key)


@fuzz
@given(
    st.one_of(any_text, st.binary(max_size=60).map(b64u_encode), json_leaves),
    st.one_of(st.none(), st.integers(0, 40)),
)
def test_b64u_decode_refuses_only_with_protocol_errors(text, length):
    data = refused_or_value(b64u_decode, text, length=length)
    if data is not None:
        assert b64u_encode(data) == text


def _dumps(value: Any, pretty: bool) -> bytes:
    try:
        text = json.dumps(value, indent=1 if pretty else None, ensure_ascii=pretty)
    except ValueError:
        return b""
    return text.encode("utf-8", "surrogatepass")


@fuzz
@given(
    st.one_of(
        st.binary(max_size=200),
        mutated([PAYLOAD, canonical_json(LIST_DICT), b'{"a":[1,{"b":null}],"c":"\\u0001"}']),
        st.builds(_dumps, json_values, st.booleans()),
        st.integers(1, 40).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    )
)
def test_parse_canonical_json_refuses_only_with_protocol_errors(data):
    value = refused_or_value(parse_canonical_json, data)
    if value is not None:
        assert canonical_json(value) == data


FRAMES = [
    b'{"type":"send","v":1,"id":"e1","recipient":"bob","targets":{"d1":"AAAA"}}',
    b'{"type":"deliver","v":1,"envelopes":[{"seq":1,"id":"e1","sender":"a","sent_at":17}]}',
    b'{"type":"ack","v":1,"seqs":[1,2,3]}',
]


@fuzz
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        mutated(FRAMES + [PAYLOAD]),
        st.builds(_dumps, json_values, st.booleans()),
        # deep: far past the limit, balanced or not, arrays or objects, alone or in a field
        st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 200_000).map(lambda n: b"[" * n),
        st.integers(1, 5000).map(lambda n: b'{"type":"ping","v":1,"id":' + b'{"a":' * n),
        # oversize: past the limit by a little or by far, in bytes and in UTF-8 characters
        st.integers(0, 3 * 2**20).map(lambda n: b'{"pad":"' + b"x" * n + b'"}'),
        st.integers(0, 2**20).map(lambda n: '{"pad":"' + "\u00e9" * n + '"}'),
        st.integers(16, 20_000).map(lambda n: b"[" + b"9" * n + b"]"),
    ),
    st.sampled_from([2**20, 64 * 1024]),
)
def test_parse_json_refuses_only_with_invalid_json(data, max_bytes):
    try:
        value = parse_json(data, max_bytes=max_bytes)
    except InvalidJson as error:
        assert error.reason and str(error)
        return
    size = len(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    assert size <= max_bytes
    assert json.loads(data) == value  # accepted: what the plain parser reads, too
