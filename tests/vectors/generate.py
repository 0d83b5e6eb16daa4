"""Deterministic generator of the shared protocol test vectors (docs/protocol.md section 14).

Run: .venv/bin/python tests/vectors/generate.py   (rewrites tests/vectors/*.json)
Every byte comes from TestRng streams over fixed seeds, so two runs give identical files.
Raw bytes are lowercase hex; protocol JSON objects appear verbatim (base64url inside).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import primitives  # noqa: E402
from protocol.content import Content, ContentType, decode_content, encode_content  # noqa: E402
from protocol.devicelist import (  # noqa: E402
    DeviceEntry,
    DeviceList,
    device_list_bytes,
    device_list_hash,
    device_signature_bytes,
    link_signature_bytes,
    sign_device,
    sign_device_list,
    sign_link,
    verify_device_list,
)
from protocol.encoding import b64u_encode, enc_str  # noqa: E402
from protocol.exceptions import InvalidJson, ProtocolError  # noqa: E402
from protocol.history import seal_history  # noqa: E402
from protocol.inbound import accept_prekey_message  # noqa: E402
from protocol.keys import (  # noqa: E402
    X25519KeyPair,
    generate_device_keys,
    generate_identity,
    generate_kem_prekey,
    make_prekey_bundle,
    signed_prekey_bytes,
)
from protocol.linking import (  # noqa: E402
    Provisioning,
    link_challenge,
    link_check_code,
    link_token_bytes,
    provisioning_payload,
    sign_in,
    sign_in_bytes,
    sign_link_token,
)
from protocol.ratchet import Session  # noqa: E402
from protocol.ratchetkeys import kdf_ck, kdf_rk  # noqa: E402
from protocol.rng import TestRng  # noqa: E402
from protocol.safety import fingerprint, format_safety_number, safety_number  # noqa: E402
from protocol.strictjson import canonical_json, parse_json  # noqa: E402
from protocol.x3dh import initiate, respond  # noqa: E402

VECTOR_DIR = Path(__file__).resolve().parent


def seed(name: str) -> bytes:
    """seed(name) = H("Parley v1 test seed", UTF-8 name)."""
    return primitives.hash32("Parley v1 test seed", name.encode("utf-8"))


def hx(data: bytes) -> str:
    return data.hex()


def error_name(fn: Any) -> str | None:
    try:
        fn()
    except ProtocolError as exc:
        return type(exc).__name__
    return None


def rng_vectors() -> dict[str, Any]:
    s = seed("rng")
    rng = TestRng(s)
    requests = [1, 31, 64, 100, 3]
    return {
        "description": "TestRng: successive requests of the given sizes from one stream",
        "enc_str": [{"input": t, "output": hx(enc_str(t))} for t in ["", "Parley", "é漢😀"]],
        "kdf": {
            "key": hx(bytes(range(32))),
            "label": "Parley v1 root",
            "data": hx(b"\x07" * 32),
            "out64": hx(primitives.kdf(bytes(range(32)), "Parley v1 root", b"\x07" * 32, 64)),
            "hash32_of_data": hx(primitives.hash32("Parley v1 root", b"\x07" * 32)),
        },
        "kdf_rk": dict(
            zip(
                ["root_key", "chain_key"],
                map(hx, kdf_rk(bytes(range(32)), b"\x07" * 32)),
                strict=True,
            ),
            input_root_key=hx(bytes(range(32))),
            input_dh=hx(b"\x07" * 32),
        ),
        "kdf_ck": dict(
            zip(["message_key", "next_chain_key"], map(hx, kdf_ck(bytes(range(32)))), strict=True),
            input_chain_key=hx(bytes(range(32))),
        ),
        "test_rng": {
            "seed_name": "rng",
            "seed": hx(s),
            "requests": [{"n": n, "output": hx(rng(n))} for n in requests],
        },
    }


def key_vectors() -> dict[str, Any]:
    rng = TestRng(seed("keys"))
    keys = generate_device_keys(rng, signed_prekey_id=7, one_time_prekey_ids=[100, 101])
    identity = keys.identity
    spk = keys.signed_prekey
    return {
        "description": "generate_device_keys(TestRng(seed), signed_prekey_id=7, one_time_prekey_ids=[100, 101])",
        "seed": hx(seed("keys")),
        "identity": {
            "seed": hx(identity.secret[:32]),
            "ed25519_public": hx(identity.public),
            "ed25519_secret": hx(identity.secret),
            "x25519_public": hx(identity.x25519_public),
            "x25519_private": hx(identity.x25519_private),
        },
        "signed_prekey": {
            "id": spk.id,
            "private": hx(spk.key.private),
            "public": hx(spk.key.public),
            "signed_bytes": hx(signed_prekey_bytes(spk.id, spk.key.public)),
            "signature": hx(spk.signature),
        },
        "one_time_prekeys": [
            {"id": k.id, "private": hx(k.key.private), "public": hx(k.key.public)}
            for k in keys.one_time_prekeys
        ],
        "bundle": make_prekey_bundle("dev-keys", keys, keys.one_time_prekeys[0]).to_dict(),
        "device_keys": keys.to_dict(),
    }


def _list_case(name: str, data: dict[str, Any], params: dict[str, Any], expect: str | None):
    def run() -> None:
        verify_device_list(
            DeviceList.from_dict(data),
            expected_account_key=bytes.fromhex(params["expected_account_key"])
            if params.get("expected_account_key")
            else None,
            last_accepted_version=params.get("last_accepted_version"),
            known_devices={k: bytes.fromhex(v) for k, v in params.get("known_devices", {}).items()},
        )

    actual = error_name(run)
    assert actual == expect, (name, actual, expect)
    return {"name": name, "device_list": data, "params": params, "expected_error": expect}


def device_list_vectors() -> dict[str, Any]:
    rng = TestRng(seed("device lists"))
    primary = generate_device_keys(rng).identity
    laptop = generate_device_keys(rng).identity
    phone2 = generate_device_keys(rng).identity
    intruder = generate_device_keys(rng).identity
    account_id = "acct-alice"
    t0 = 1_700_000_000_000
    entry_primary = DeviceEntry("dev-primary", primary.public, t0)
    laptop_sig = sign_device(laptop, account_id=account_id, account_key=primary.public)
    entry_laptop = DeviceEntry("dev-laptop", laptop.public, t0 + 1000, laptop_sig)
    v1 = sign_device_list(
        primary, account_id=account_id, version=1, timestamp=t0, devices=[entry_primary]
    )
    v2 = sign_device_list(
        primary,
        account_id=account_id,
        version=2,
        timestamp=t0 + 2000,
        devices=[entry_primary, entry_laptop],
    )
    link_id = "link-0001"
    base = v2.to_dict()
    pk = hx(primary.public)

    def mutated(**changes: Any) -> dict[str, Any]:
        data = json.loads(json.dumps(base))
        data.update(changes)
        return data

    no_dev_sig = sign_device_list(
        primary,
        account_id=account_id,
        version=3,
        timestamp=t0 + 3000,
        devices=[entry_primary, DeviceEntry("dev-laptop", laptop.public, t0 + 1000)],
    ).to_dict()
    bad_dev_sig = sign_device_list(
        primary,
        account_id=account_id,
        version=3,
        timestamp=t0 + 3000,
        devices=[
            entry_primary,
            DeviceEntry(
                "dev-laptop",
                laptop.public,
                t0 + 1000,
                sign_device(laptop, account_id="acct-mallory", account_key=primary.public),
            ),
        ],
    ).to_dict()
    forged = sign_device_list(
        intruder,
        account_id=account_id,
        version=3,
        timestamp=t0 + 3000,
        devices=[DeviceEntry("dev-primary", intruder.public, t0)],
    ).to_dict()
    changed_key = sign_device_list(
        primary,
        account_id=account_id,
        version=3,
        timestamp=t0 + 3000,
        devices=[
            entry_primary,
            DeviceEntry(
                "dev-laptop",
                phone2.public,
                t0 + 1000,
                sign_device(phone2, account_id=account_id, account_key=primary.public),
            ),
        ],
    ).to_dict()
    tampered_devices = json.loads(json.dumps(base))
    tampered_devices["devices"][1]["added_at"] += 1
    unsorted = json.loads(json.dumps(base))
    unsorted["devices"].reverse()
    known = {"dev-primary": pk, "dev-laptop": hx(laptop.public)}
    cases = [
        _list_case(
            "v2_valid", base, {"expected_account_key": pk, "last_accepted_version": 1}, None
        ),
        _list_case("v1_valid_first_contact", v1.to_dict(), {}, None),
        _list_case(
            "version_equal_is_rollback", base, {"last_accepted_version": 2}, "StaleDeviceList"
        ),
        _list_case(
            "version_older_is_rollback",
            v1.to_dict(),
            {"last_accepted_version": 2},
            "StaleDeviceList",
        ),
        _list_case("tampered_version", mutated(version=9), {}, "InvalidSignature"),
        _list_case("tampered_timestamp", mutated(timestamp=t0), {}, "InvalidSignature"),
        _list_case("tampered_account_id", mutated(account_id="acct-bob"), {}, "InvalidSignature"),
        _list_case("tampered_entry", tampered_devices, {}, "InvalidSignature"),
        _list_case("missing_device_signature", no_dev_sig, {}, "MissingDeviceSignature"),
        _list_case("bad_device_signature", bad_dev_sig, {}, "InvalidSignature"),
        _list_case(
            "forged_by_other_key",
            forged,
            {"expected_account_key": pk, "last_accepted_version": 2},
            "AccountKeyChanged",
        ),
        _list_case(
            "known_device_new_key",
            changed_key,
            {"expected_account_key": pk, "last_accepted_version": 2, "known_devices": known},
            "DeviceKeyChanged",
        ),
        _list_case("unsorted_devices", unsorted, {}, "MalformedDeviceList"),
    ]
    return {
        "description": "device lists signed by the account key; cases give verify_device_list params and the expected error class",
        "account_id": account_id,
        "keys": {
            "seed": hx(seed("device lists")),
            "order": "generate_device_keys(rng) four times: primary, laptop, phone2, intruder",
            "primary_public": pk,
            "laptop_public": hx(laptop.public),
            "phone2_public": hx(phone2.public),
            "intruder_public": hx(intruder.public),
        },
        "lists": [
            {
                "device_list": dl.to_dict(),
                "canonical_bytes": hx(device_list_bytes(dl)),
                "signature": hx(dl.signature),
                "hash": hx(device_list_hash(dl)),
            }
            for dl in (v1, v2)
        ],
        "device_signature": {
            "signed_bytes": hx(device_signature_bytes(account_id, primary.public, laptop.public)),
            "signature": hx(laptop_sig),
        },
        "link_signature": {
            "link_id": link_id,
            "signed_bytes": hx(link_signature_bytes(account_id, laptop.public, link_id)),
            "signature": hx(
                sign_link(
                    primary,
                    account_id=account_id,
                    companion_identity_key=laptop.public,
                    link_id=link_id,
                )
            ),
        },
        "cases": cases,
    }


def x3dh_vectors() -> dict[str, Any]:
    out = []
    for with_opk in (True, False):
        alice_rng = TestRng(seed("x3dh alice"))
        bob_rng = TestRng(seed("x3dh bob"))
        alice = generate_device_keys(alice_rng)
        bob = generate_device_keys(bob_rng, signed_prekey_id=7, one_time_prekey_ids=[100])
        opk = bob.one_time_prekeys[0] if with_opk else None
        bundle = make_prekey_bundle("dev-bob", bob, opk)
        session_rng = TestRng(seed("x3dh session"))
        agreement = initiate(
            identity=alice.identity, bundle=bundle, rng=TestRng(seed("x3dh session"))
        )
        session = Session.initiate(
            identity=alice.identity,
            bundle=bundle,
            listed_identity_key=bob.identity.public,
            rng=session_rng,
        )
        assert agreement.base_key is not None
        bob_side = respond(
            identity=bob.identity,
            signed_prekey=bob.signed_prekey.key,
            one_time_prekey=None if opk is None else opk.key,
            initiator_identity_key=alice.identity.public,
            base_key=agreement.base_key.public,
        )
        assert bob_side.shared_secret == agreement.shared_secret
        plaintext = b"hello bob"
        message = session.encrypt(plaintext, session_rng)
        inbound = accept_prekey_message(
            message,
            identity=bob.identity,
            signed_prekeys={7: bob.signed_prekey.key},
            one_time_prekeys={100: bob.one_time_prekeys[0].key},
            sender_identity_key=alice.identity.public,
            used_base_keys=set(),
            rng=TestRng(seed("x3dh bob session")),
        )
        assert inbound.plaintext == plaintext
        out.append(
            {
                "with_one_time_prekey": with_opk,
                "alice_keys": {"seed": hx(seed("x3dh alice")), "device_keys": alice.to_dict()},
                "bob_keys": {"seed": hx(seed("x3dh bob")), "device_keys": bob.to_dict()},
                "bundle": bundle.to_dict(),
                "session_rng_seed": hx(seed("x3dh session")),
                "ephemeral_private": hx(agreement.base_key.private),
                "ephemeral_public": hx(agreement.base_key.public),
                "dh_outputs": [hx(d) for d in agreement.dh_outputs],
                "shared_secret": hx(agreement.shared_secret),
                "associated_data": hx(agreement.associated_data),
                "first_ratchet_private": hx(TestRng(seed("x3dh session"))(64)[32:]),
                "alice_session_after_first_message": session.to_dict(),
                "plaintext": hx(plaintext),
                "first_message": hx(message),
                "bob_rng_seed": hx(seed("x3dh bob session")),
                "bob_session_after_first_message": inbound.session.to_dict(),
            }
        )
    return {
        "description": (
            "Alice: keys from TestRng(alice seed); Bob: generate_device_keys(TestRng(bob seed), "
            "signed_prekey_id=7, one_time_prekey_ids=[100]). Session.initiate and encrypt draw from "
            "TestRng(session_rng_seed): base key 32, first ratchet key 32, nonce 24. Bob decrypts "
            "with TestRng(bob_rng_seed) (his first new ratchet key)."
        ),
        "cases": out,
    }


def ratchet_vectors() -> dict[str, Any]:
    alice_rng = TestRng(seed("ratchet alice"))
    bob_rng = TestRng(seed("ratchet bob"))
    alice = generate_device_keys(alice_rng)
    bob = generate_device_keys(bob_rng, signed_prekey_id=1, one_time_prekey_ids=[1])
    bundle = make_prekey_bundle("dev-bob", bob, bob.one_time_prekeys[0])
    sessions: dict[str, Session] = {
        "alice": Session.initiate(
            identity=alice.identity,
            bundle=bundle,
            listed_identity_key=bob.identity.public,
            rng=alice_rng,
        )
    }
    rngs = {"alice": alice_rng, "bob": bob_rng}
    messages: dict[str, bytes] = {}
    steps: list[dict[str, Any]] = []

    def send(sender: str, name: str) -> None:
        plaintext = f"{name}: message from {sender}".encode()
        messages[name] = sessions[sender].encrypt(plaintext, rngs[sender])
        steps.append(
            {
                "op": "encrypt",
                "party": sender,
                "name": name,
                "plaintext": hx(plaintext),
                "message": hx(messages[name]),
            }
        )

    def receive(receiver: str, name: str, expected_error: str | None = None) -> None:
        step: dict[str, Any] = {"op": "decrypt", "party": receiver, "name": name}
        data = messages[name]
        if receiver == "bob" and "bob" not in sessions:
            step["op"] = "accept_prekey_message"
            inbound = accept_prekey_message(
                data,
                identity=bob.identity,
                signed_prekeys={1: bob.signed_prekey.key},
                one_time_prekeys={1: bob.one_time_prekeys[0].key},
                sender_identity_key=alice.identity.public,
                used_base_keys=set(),
                rng=bob_rng,
            )
            sessions["bob"] = inbound.session
            plaintext: bytes | None = inbound.plaintext
        else:
            error = None
            plaintext = None
            try:
                plaintext = sessions[receiver].decrypt(data, rngs[receiver])
            except ProtocolError as exc:
                error = type(exc).__name__
            assert error == expected_error, (name, error)
            step["expected_error"] = error
        step["plaintext"] = None if plaintext is None else hx(plaintext)
        steps.append(step)

    for name in ("a1", "a2", "a3"):
        send("alice", name)
    receive("bob", "a2")
    receive("bob", "a1")
    send("bob", "b1")
    send("bob", "b2")
    receive("alice", "b2")
    receive("alice", "b1")
    for name in ("a4", "a5", "a6"):
        send("alice", name)
    receive("bob", "a6")
    receive("bob", "a4")
    receive("bob", "a3")
    send("bob", "b3")
    receive("alice", "b3")
    send("alice", "a7")
    receive("bob", "a7")
    receive("bob", "a5")
    receive("bob", "a4", "ReplayDetected")
    receive("bob", "a1", "ReplayDetected")
    send("bob", "b4")
    receive("alice", "b4")
    receive("alice", "b4", "ReplayDetected")
    return {
        "description": (
            "Each party has one TestRng over its seed. Alice: generate_device_keys(rng), then "
            "Session.initiate with Bob's bundle (one-time prekey id 1). Bob: generate_device_keys(rng, "
            "signed_prekey_id=1, one_time_prekey_ids=[1]); his first receive is accept_prekey_message "
            "with an empty used-base-key set. Steps run in order, each party drawing from its own rng."
        ),
        "alice_seed": hx(seed("ratchet alice")),
        "bob_seed": hx(seed("ratchet bob")),
        "steps": steps,
        "final_sessions": {party: session.to_dict() for party, session in sessions.items()},
    }


def content_vectors() -> dict[str, Any]:
    rng = TestRng(seed("content"))
    list_hash = rng(32)
    inner = Content(ContentType.TEXT, rng(16), 1_700_000_000_000, 3, list_hash, {"text": "hi"})
    bodies: list[tuple[ContentType, dict[str, Any]]] = [
        (ContentType.TEXT, {"text": 'Hello, Bob! é 漢 😀 "quoted" \\ \n\t\u0001'}),
        (ContentType.RECEIPT, {"kind": "read", "message_ids": [b64u_encode(inner.message_id)]}),
        (
            ContentType.SENT_TRANSCRIPT,
            {"recipient": "acct-bob", "content": b64u_encode(encode_content(inner))},
        ),
        (
            ContentType.HISTORY_BUNDLE_KEY,
            {
                "blob_id": "blob-1",
                "key": b64u_encode(rng(32)),
                "hash": b64u_encode(rng(32)),
                "length": 131163,
                "count": 33,
            },
        ),
        (ContentType.TYPING, {"state": "started"}),
        (ContentType.TEXT, {"text": "x" * 200}),
    ]
    cases: list[dict[str, Any]] = []

    def add_case(content_type: ContentType, body: dict[str, Any]) -> None:
        content = Content(content_type, rng(16), 1_700_000_000_000 + len(cases), 3, list_hash, body)
        encoded = encode_content(content)
        assert decode_content(encoded) == content
        cases.append(
            {
                "type": int(content_type),
                "message_id": hx(content.message_id),
                "timestamp": content.timestamp,
                "sender_list_version": 3,
                "sender_list_hash": hx(list_hash),
                "body": body,
                "encoded": hx(encoded),
            }
        )

    for content_type, body in bodies:
        add_case(content_type, body)
    good = bytes.fromhex(cases[-2]["encoded"])
    body_start = 70

    def with_body(raw: bytes) -> bytes:
        out = good[:66] + len(raw).to_bytes(4, "big") + raw
        return out + bytes(-len(out) % 64)

    def typed(type_byte: int, raw: bytes) -> bytes:
        return good[:1] + bytes([type_byte]) + with_body(raw)[2:]

    # Retry requests and resends (section 24.1), drawn after the cases above so theirs stay.
    prekey = {"id": 7, "public_key": b64u_encode(rng(32)), "signature": b64u_encode(rng(64))}
    add_case(ContentType.RETRY_REQUEST, {"envelope_id": "e-1", "count": 2, "signed_prekey": prekey})
    kem = (
        generate_kem_prekey(
            generate_identity(TestRng(seed("content kem"))),
            4,
            TestRng(seed("content kem prekey")),
            last_resort=True,
        )
        .to_public()
        .to_dict()
    )
    add_case(  # version 2 (27.5): with the requester's last-resort KEM prekey
        ContentType.RETRY_REQUEST,
        {"envelope_id": "e-1", "count": 2, "signed_prekey": prekey, "kem_prekey": kem},
    )
    add_case(ContentType.RESEND, {"envelope_id": "e-1", "content": cases[2]["body"]["content"]})
    add_case(ContentType.RESEND, {"envelope_id": "x" * 64, "content": None})
    request = b'{"count":%d,"envelope_id":"%s","signed_prekey":{"id":7,"public_key":"%s","signature":"%s"}}'

    def retry_body(count: int = 1, envelope_id: str = "e-1", key: str = "", sig: str = "") -> bytes:
        key = key or prekey["public_key"]
        sig = sig or prekey["signature"]
        return request % (count, envelope_id.encode(), key.encode(), sig.encode())

    assert decode_content(typed(9, retry_body())).body["count"] == 1  # each case breaks one rule
    assert (
        decode_content(typed(10, b'{"content":null,"envelope_id":"e-1"}')).body["content"] is None
    )

    malformed = {
        "unknown_version": b"\x02" + good[1:],
        "type_zero": good[:1] + b"\x00" + good[2:],
        "unknown_type_body_not_an_object": typed(200, b"[1]"),
        "nonzero_padding": good[:-1] + b"\x01",
        "length_not_multiple_of_64": good + bytes(1),
        "extra_padding_block": good + bytes(64),
        "non_canonical_json_whitespace": with_body(b'{"state": "started"}'),
        "non_canonical_json_key_order": with_body(b'{"text":"a","zz":1}'),
        "wrong_keys_for_type": with_body(b'{"text":"started"}'),
        "unknown_state_value": with_body(b'{"state":"sleeping"}'),
        "float_in_body": with_body(b'{"state":1.5}'),
        "truncated": good[:body_start],
        # u64 fields are bounded by 2^53 - 1 (section 2.1), so JavaScript can hold them.
        "timestamp_above_2^53-1": good[:18] + (2**53).to_bytes(8, "big") + good[26:],
        "list_version_above_2^53-1": good[:26] + (2**64 - 1).to_bytes(8, "big") + good[34:],
        "retry_request_count_zero": typed(9, retry_body(count=0)),
        "retry_request_count_six": typed(9, retry_body(count=6)),
        "retry_request_empty_envelope_id": typed(9, retry_body(envelope_id="")),
        "retry_request_envelope_id_of_65": typed(9, retry_body(envelope_id="x" * 65)),
        "retry_request_short_prekey": typed(9, retry_body(key=b64u_encode(bytes(31)))),
        "retry_request_short_signature": typed(9, retry_body(sig=b64u_encode(bytes(32)))),
        "retry_request_without_prekey": typed(9, b'{"count":1,"envelope_id":"e-1"}'),
        "retry_request_kem_prekey_short": typed(
            9,
            canonical_json(
                {
                    "envelope_id": "e-1",
                    "count": 2,
                    "signed_prekey": prekey,
                    "kem_prekey": {**kem, "public_key": "AAAA"},
                }
            ),
        ),
        "retry_request_kem_prekey_flag_not_boolean": typed(
            9,
            canonical_json(
                {
                    "envelope_id": "e-1",
                    "count": 2,
                    "signed_prekey": prekey,
                    "kem_prekey": {**kem, "last_resort": 1},
                }
            ),
        ),
        "resend_without_content": typed(10, b'{"envelope_id":"e-1"}'),
        "resend_content_not_base64url": typed(10, b'{"content":"AA==","envelope_id":"e-1"}'),
        "resend_content_a_number": typed(10, b'{"content":5,"envelope_id":"e-1"}'),
        "resend_extra_key": typed(10, b'{"content":null,"count":1,"envelope_id":"e-1"}'),
    }
    for name, data in malformed.items():
        assert error_name(lambda data=data: decode_content(data)) == "MalformedMessage", name
    # A newer version's type decodes, its body unchecked, to be kept as "unsupported".
    unknown = []
    for type_byte, raw in ((200, b'{"state":"started"}'), (255, b'{"future":[1,"x"]}')):
        data = good[:1] + bytes([type_byte]) + with_body(raw)[2:]
        decoded = decode_content(data)
        assert decoded.type == type_byte and not isinstance(decoded.type, ContentType)
        unknown.append({"encoded": hx(data), "type": type_byte, "body": decoded.body})
    return {
        "description": "encode_content(fields) == encoded; malformed inputs must raise "
        "MalformedMessage; an unknown type decodes with its body unchecked",
        "cases": cases,
        "unknown_types": unknown,
        "malformed": [
            {"name": name, "encoded": hx(data), "expected_error": "MalformedMessage"}
            for name, data in malformed.items()
        ],
    }


def safety_vectors() -> dict[str, Any]:
    rng = TestRng(seed("safety"))
    alice = generate_device_keys(rng).identity.public
    bob = generate_device_keys(rng).identity.public
    number = safety_number("acct-alice", alice, "acct-bob", bob)
    assert number == safety_number("acct-bob", bob, "acct-alice", alice)
    return {
        "alice": {
            "account_id": "acct-alice",
            "account_key": hx(alice),
            "fingerprint": fingerprint("acct-alice", alice),
        },
        "bob": {
            "account_id": "acct-bob",
            "account_key": hx(bob),
            "fingerprint": fingerprint("acct-bob", bob),
        },
        "safety_number": number,
        "formatted": format_safety_number(number),
    }


def history_vectors() -> dict[str, Any]:
    cases = []
    for name, size in (("empty", 0), ("small", 100), ("three_chunks", 2 * 65536 + 1000)):
        rng = TestRng(seed(f"history {name}"))
        plaintext = rng(size)
        sealed = seal_history(plaintext, rng)
        case: dict[str, Any] = {
            "name": name,
            "seed": hx(seed(f"history {name}")),
            "plaintext_length": size,
            "key": hx(sealed.key),
            "header": hx(sealed.blob[:24]),
            "hash": hx(sealed.hash),
            "length": sealed.length,
        }
        if size <= 1000:
            case["plaintext"] = hx(plaintext)
            case["blob"] = hx(sealed.blob)
        cases.append(case)
    return {
        "description": (
            "rng = TestRng(seed); plaintext = rng(plaintext_length); seal_history(plaintext, rng) "
            "draws key = rng(32) then header = rng(24). Large blobs are given by hash and length only."
        ),
        "cases": cases,
    }


def linking_vectors() -> dict[str, Any]:
    rng = TestRng(seed("linking"))
    primary = generate_device_keys(rng).identity
    companion = generate_device_keys(rng).identity
    ephemeral = X25519KeyPair.generate(rng)
    server_nonce = rng(32)
    token_nonce = rng(32)
    other_companion = generate_device_keys(rng).identity
    other_ephemeral = X25519KeyPair.generate(rng)
    link_id = "link-0001"
    check_code_inputs = [
        (link_id, companion.public, ephemeral.public),
        ("", companion.public, ephemeral.public),
        ("lien-é漢😀", companion.public, ephemeral.public),
        (link_id, other_companion.public, ephemeral.public),
        (link_id, companion.public, other_ephemeral.public),
        (link_id, ephemeral.public, companion.public),
    ]

    def first_link_id(wanted: Any) -> str:
        return next(
            f"link-{i:04d}"
            for i in range(2, 10_000)
            if wanted(
                primitives.hash32(
                    "Parley v1 link check code",
                    enc_str(f"link-{i:04d}") + companion.public + ephemeral.public,
                )
            )
        )

    # A code with a leading zero (padding) and a digest whose top bit is set (u32, not i32).
    for wanted in (
        lambda d: int.from_bytes(d[:4], "big") % 1_000_000 < 100_000,
        lambda d: d[0] >= 0x80,
    ):
        check_code_inputs.append((first_link_id(wanted), companion.public, ephemeral.public))
    provisioning = Provisioning(
        account_id="acct-alice",
        account_key=primary.public,
        link_id=link_id,
        link_signature=sign_link(
            primary,
            account_id="acct-alice",
            companion_identity_key=companion.public,
            link_id=link_id,
        ),
    )
    return {
        "description": (
            "keys: generate_device_keys(rng) for primary then companion, then ephemeral rng(32), "
            "server nonce rng(32), token nonce rng(32), then generate_device_keys(rng) for another "
            "companion and X25519KeyPair.generate(rng) for another ephemeral key (check codes only)"
        ),
        "seed": hx(seed("linking")),
        "primary_public": hx(primary.public),
        "companion_public": hx(companion.public),
        "ephemeral_private": hx(ephemeral.private),
        "ephemeral_public": hx(ephemeral.public),
        "link_id": link_id,
        "server_nonce": hx(server_nonce),
        "link_challenge": hx(
            link_challenge(
                server_nonce=server_nonce,
                link_id=link_id,
                companion_identity_key=companion.public,
                ephemeral_key=ephemeral.public,
            )
        ),
        "provisioning_link_signature": hx(provisioning.link_signature),
        "provisioning_payload": hx(provisioning_payload(provisioning)),
        "token_nonce": hx(token_nonce),
        "token_signed_bytes": hx(link_token_bytes(token_nonce, link_id)),
        "token_signature": hx(sign_link_token(companion, nonce=token_nonce, link_id=link_id)),
        "check_codes": [
            {
                "link_id": case_link_id,
                "companion_identity_key": hx(identity_key),
                "ephemeral_key": hx(ephemeral_key),
                "check_code": link_check_code(
                    link_id=case_link_id,
                    companion_identity_key=identity_key,
                    ephemeral_key=ephemeral_key,
                ),
            }
            for case_link_id, identity_key, ephemeral_key in check_code_inputs
        ],
        "sign_in": {
            "origin": "https://parley.example",
            "device_id": "dev-laptop",
            "nonce": hx(server_nonce),
            "signed_bytes": hx(sign_in_bytes("https://parley.example", "dev-laptop", server_nonce)),
            "signature": hx(
                sign_in(
                    companion,
                    origin="https://parley.example",
                    device_id="dev-laptop",
                    nonce=server_nonce,
                )
            ),
        },
    }


def json_decoder_vectors() -> dict[str, Any]:
    """parse_json (section 2.2): inputs as text (`text`) or as UTF-8 bytes (`hex`), the limits,
    and the expected refusal reason (or null and the parsed value). The expectations are
    written here by hand and checked against the implementation while generating."""
    deep = 1000
    table: list[tuple[str, str | bytes, int, int | None, str | None]] = [
        # name, input, max_bytes, max_depth (None: the default 32), expected reason
        ("ping frame", '{"type":"ping","v":1,"id":"p1"}', 1024, None, None),
        (
            "whitespace and every kind of value",
            ' \t\n{ "a" : [ 1 , -2 , true , false , null , "x" ] }\r\n',
            1024,
            None,
            None,
        ),
        ("top-level scalar", "7", 1024, None, None),
        ("top-level string", '"x"', 1024, None, None),
        ("32 levels", "[" * 32 + "]" * 32, 1024, None, None),
        ("33 levels", "[" * 33 + "]" * 33, 1024, None, "too_deep"),
        (
            "1000 levels of arrays (the 2 KB body of the issue)",
            "[" * deep + "]" * deep,
            4096,
            None,
            "too_deep",
        ),
        ("1000 levels of objects", '{"a":' * deep + "1" + "}" * deep, 8192, None, "too_deep"),
        ("1000 unclosed brackets", "[" * deep, 4096, None, "too_deep"),
        ("brackets inside a string do not nest", '["' + "[{" * 40 + '"]', 1024, None, None),
        ("escaped quote keeps the string open", '["\\"' + "[" * 40 + '"]', 1024, None, None),
        (
            "unterminated string swallows the brackets after it",
            '"' + "[" * 40,
            1024,
            None,
            "syntax",
        ),
        (
            "closers count down: 4 closers, then 35 openers",
            "]" * 4 + "[" * 35,
            1024,
            None,
            "syntax",
        ),
        ("max_depth 1 refuses two levels", "[[1]]", 1024, 1, "too_deep"),
        ("max_depth 2 takes two levels", "[[1]]", 1024, 2, None),
        ("a fraction", '{"type":"ping","v":1.0}', 1024, None, "not_integer"),
        ("an exponent", '{"v":1e2}', 1024, None, "not_integer"),
        ("a negative fraction", "[-0.5]", 1024, None, "not_integer"),
        ("largest integer", "[9007199254740991,-9007199254740991]", 1024, None, None),
        ("2^53", "[9007199254740992]", 1024, None, "integer_range"),
        ("-2^53", "[-9007199254740992]", 1024, None, "integer_range"),
        ("a 5000-digit integer", "[" + "9" * 5000 + "]", 8192, None, "integer_range"),
        ("NaN", "[NaN]", 1024, None, "syntax"),
        ("Infinity", '{"v":Infinity}', 1024, None, "syntax"),
        ("-Infinity", "[-Infinity]", 1024, None, "syntax"),
        ("lone high surrogate", '["\\ud800"]', 1024, None, "lone_surrogate"),
        ("lone low surrogate", '["\\uDC00"]', 1024, None, "lone_surrogate"),
        ("lone surrogate in a key", '{"\\ud800":1}', 1024, None, "lone_surrogate"),
        ("high surrogate before a letter", '["\\ud83dx"]', 1024, None, "lone_surrogate"),
        ("surrogates in the wrong order", '["\\ude00\\ud83d"]', 1024, None, "lone_surrogate"),
        ("a surrogate pair", '["\\ud83d\\ude00"]', 1024, None, None),
        ("an escaped backslash before u", '["\\\\ud800"]', 1024, None, None),
        ("duplicate key", '{"a":1,"a":2}', 1024, None, "duplicate_key"),
        (
            "duplicate key spelled with an escape",
            '{"a":1,"\\u0061":2}',
            1024,
            None,
            "duplicate_key",
        ),
        ("duplicate key in a nested object", '{"x":[{"b":1,"b":1}]}', 1024, None, "duplicate_key"),
        ("the same key in sibling objects", '[{"a":1},{"a":2}]', 1024, None, None),
        ("a key equal to a value", '{"a":"a","b":"a"}', 1024, None, None),
        ("empty text", "", 1024, None, "syntax"),
        ("unclosed object", "{", 1024, None, "syntax"),
        ("trailing data", '{"a":1}x', 1024, None, "syntax"),
        ("trailing comma", "[1,]", 1024, None, "syntax"),
        ("single quotes", "{'a':1}", 1024, None, "syntax"),
        ("leading zero", "01", 1024, None, "syntax"),
        ("raw control character in a string", '"a\tb"', 1024, None, "syntax"),
        ("byte order mark", "\ufeff{}", 1024, None, "syntax"),
        ("bytes: UTF-8", '["é"]'.encode(), 1024, None, None),
        ("bytes: not UTF-8", b'["\xff"]', 1024, None, "not_utf8"),
        ("bytes: an encoded surrogate", b'["\xed\xa0\x80"]', 1024, None, "not_utf8"),
        ("bytes: overlong encoding", b'["\xc0\xaf"]', 1024, None, "not_utf8"),
        ("bytes: over the limit", b'{"a":"bcdef"}', 12, None, "too_large"),
        ("bytes: at the limit", b'{"a":"bcde"}', 12, None, None),
        ("text: the limit counts UTF-8 bytes", '"ééé"', 7, None, "too_large"),
        ("text: at the limit in UTF-8 bytes", '"éé"', 6, None, None),
        ("order: a fraction before a duplicate key", '{"a":1.5,"a":2}', 1024, None, "not_integer"),
        (
            "order: a fraction before a big integer",
            "[9007199254740992,1.5]",
            1024,
            None,
            "not_integer",
        ),
        (
            "order: a big integer before a lone surrogate",
            '["\\ud800",9007199254740992]',
            1024,
            None,
            "integer_range",
        ),
        (
            "order: a lone surrogate before a duplicate key",
            '{"a":1,"a":"\\ud800"}',
            1024,
            None,
            "lone_surrogate",
        ),
        ("order: syntax before a fraction", "[1.5,NaN]", 1024, None, "syntax"),
        ("order: depth before syntax", "[" * 33 + "x", 1024, None, "too_deep"),
        ("order: size before depth", "[" * 40 + "]" * 40, 64, None, "too_large"),
        ("order: size before UTF-8", b"\xff" * 20, 16, None, "too_large"),
    ]
    cases = []
    for name, data, max_bytes, max_depth, expected in table:
        limits: dict[str, int] = {"max_bytes": max_bytes}
        if max_depth is not None:
            limits["max_depth"] = max_depth
        try:
            value, got = parse_json(data, **limits), None
        except InvalidJson as error:
            value, got = None, error.reason
        assert got == expected, (name, got, expected)
        case: dict[str, Any] = {"name": name, **limits, "expected_error": expected}
        case.update({"hex": data.hex()} if isinstance(data, bytes) else {"text": data})
        if expected is None:
            case["value"] = value
        cases.append(case)
    return {"default_max_depth": 32, "cases": cases}


def build_vectors() -> dict[str, Any]:
    """Every vector file name → its JSON content."""
    return {
        "kdf.json": rng_vectors(),
        "keys.json": key_vectors(),
        "device_lists.json": device_list_vectors(),
        "x3dh.json": x3dh_vectors(),
        "ratchet.json": ratchet_vectors(),
        "content.json": content_vectors(),
        "safety.json": safety_vectors(),
        "history.json": history_vectors(),
        "linking.json": linking_vectors(),
        "json_decoder.json": json_decoder_vectors(),
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for name, data in build_vectors().items():
        (VECTOR_DIR / name).write_text(render(data), encoding="utf-8")


if __name__ == "__main__":
    main()
