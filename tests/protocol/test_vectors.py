"""Reproduce every shared vector in tests/vectors/ byte for byte from its inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import primitives
from protocol.content import Content, ContentType, decode_content, encode_content
from protocol.devicelist import DeviceList, device_list_bytes, device_list_hash, verify_device_list
from protocol.encoding import enc_str
from protocol.exceptions import InvalidJson, MalformedMessage, ProtocolError
from protocol.history import open_history, seal_history
from protocol.inbound import accept_prekey_message
from protocol.keys import (
    DeviceKeys,
    IdentityKeyPair,
    PrekeyBundle,
    X25519KeyPair,
    generate_device_keys,
    make_prekey_bundle,
)
from protocol.linking import (
    Provisioning,
    link_challenge,
    link_check_code,
    link_token_bytes,
    provisioning_payload,
    sign_in_bytes,
)
from protocol.ratchet import Session
from protocol.ratchetkeys import kdf_ck, kdf_rk
from protocol.rng import TestRng
from protocol.safety import fingerprint, format_safety_number, safety_number
from protocol.strictjson import MAX_JSON_DEPTH, parse_json
from protocol.x3dh import initiate

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
h = bytes.fromhex


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_regenerating_vectors_equals_committed_files():
    spec = importlib.util.spec_from_file_location("vector_generator", VECTORS / "generate.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for name, data in generator.build_vectors().items():
        assert generator.render(data) == (VECTORS / name).read_text(encoding="utf-8"), name


def test_kdf_and_rng_vectors():
    v = load("kdf.json")
    for case in v["enc_str"]:
        assert enc_str(case["input"]).hex() == case["output"]
    k = v["kdf"]
    assert primitives.kdf(h(k["key"]), k["label"], h(k["data"]), 64).hex() == k["out64"]
    assert primitives.hash32(k["label"], h(k["data"])).hex() == k["hash32_of_data"]
    rk, ck = kdf_rk(h(v["kdf_rk"]["input_root_key"]), h(v["kdf_rk"]["input_dh"]))
    assert (rk.hex(), ck.hex()) == (v["kdf_rk"]["root_key"], v["kdf_rk"]["chain_key"])
    mk, next_ck = kdf_ck(h(v["kdf_ck"]["input_chain_key"]))
    assert (mk.hex(), next_ck.hex()) == (v["kdf_ck"]["message_key"], v["kdf_ck"]["next_chain_key"])
    rng = TestRng(h(v["test_rng"]["seed"]))
    for request in v["test_rng"]["requests"]:
        assert rng(request["n"]).hex() == request["output"]


def test_key_vectors():
    v = load("keys.json")
    keys = generate_device_keys(
        TestRng(h(v["seed"])), signed_prekey_id=7, one_time_prekey_ids=[100, 101]
    )
    identity = IdentityKeyPair.from_seed(h(v["identity"]["seed"]))
    assert identity == keys.identity
    assert identity.public.hex() == v["identity"]["ed25519_public"]
    assert identity.secret.hex() == v["identity"]["ed25519_secret"]
    assert identity.x25519_public.hex() == v["identity"]["x25519_public"]
    assert identity.x25519_private.hex() == v["identity"]["x25519_private"]
    spk = v["signed_prekey"]
    assert keys.signed_prekey.key.public.hex() == spk["public"]
    assert keys.signed_prekey.signature.hex() == spk["signature"]
    primitives.ed25519_verify(
        identity.public, h(spk["signed_bytes"]), h(spk["signature"]), what="vector"
    )
    assert [k.key.public.hex() for k in keys.one_time_prekeys] == [
        k["public"] for k in v["one_time_prekeys"]
    ]
    assert make_prekey_bundle("dev-keys", keys, keys.one_time_prekeys[0]).to_dict() == v["bundle"]
    assert DeviceKeys.from_dict(v["device_keys"]) == keys


def run_list_case(case: dict[str, Any]) -> str | None:
    params = case["params"]
    try:
        verify_device_list(
            DeviceList.from_dict(case["device_list"]),
            expected_account_key=h(params["expected_account_key"])
            if "expected_account_key" in params
            else None,
            last_accepted_version=params.get("last_accepted_version"),
            known_devices={k: h(x) for k, x in params.get("known_devices", {}).items()},
        )
    except ProtocolError as exc:
        return type(exc).__name__
    return None


def test_device_list_vectors():
    v = load("device_lists.json")
    for item in v["lists"]:
        dl = DeviceList.from_dict(item["device_list"])
        assert device_list_bytes(dl).hex() == item["canonical_bytes"]
        assert device_list_hash(dl).hex() == item["hash"]
        primitives.ed25519_verify(
            dl.account_key, h(item["canonical_bytes"]), h(item["signature"]), what="vector"
        )
        assert dl.to_dict() == item["device_list"]
    assert [run_list_case(c) for c in v["cases"]] == [c["expected_error"] for c in v["cases"]]


@pytest.mark.parametrize("index", [0, 1])
def test_x3dh_vectors(index):
    case = load("x3dh.json")["cases"][index]
    alice = DeviceKeys.from_dict(case["alice_keys"]["device_keys"])
    bob = DeviceKeys.from_dict(case["bob_keys"]["device_keys"])
    assert alice == generate_device_keys(TestRng(h(case["alice_keys"]["seed"])))
    bundle = PrekeyBundle.from_dict(case["bundle"])
    agreement = initiate(
        identity=alice.identity, bundle=bundle, rng=TestRng(h(case["session_rng_seed"]))
    )
    assert [d.hex() for d in agreement.dh_outputs] == case["dh_outputs"]
    assert agreement.shared_secret.hex() == case["shared_secret"]
    assert agreement.associated_data.hex() == case["associated_data"]
    rng = TestRng(h(case["session_rng_seed"]))
    session = Session.initiate(
        identity=alice.identity, bundle=bundle, listed_identity_key=bob.identity.public, rng=rng
    )
    assert session.encrypt(h(case["plaintext"]), rng).hex() == case["first_message"]
    assert session.to_dict() == case["alice_session_after_first_message"]
    inbound = accept_prekey_message(
        h(case["first_message"]),
        identity=bob.identity,
        signed_prekeys={bob.signed_prekey.id: bob.signed_prekey.key},
        one_time_prekeys={k.id: k.key for k in bob.one_time_prekeys},
        sender_identity_key=alice.identity.public,
        used_base_keys=set(),
        rng=TestRng(h(case["bob_rng_seed"])),
    )
    assert inbound.plaintext.hex() == case["plaintext"]
    assert inbound.session.to_dict() == case["bob_session_after_first_message"]


def test_ratchet_conversation_vector():
    v = load("ratchet.json")
    rngs = {"alice": TestRng(h(v["alice_seed"])), "bob": TestRng(h(v["bob_seed"]))}
    alice = generate_device_keys(rngs["alice"])
    bob = generate_device_keys(rngs["bob"], signed_prekey_id=1, one_time_prekey_ids=[1])
    sessions = {
        "alice": Session.initiate(
            identity=alice.identity,
            bundle=make_prekey_bundle("dev-bob", bob, bob.one_time_prekeys[0]),
            listed_identity_key=bob.identity.public,
            rng=rngs["alice"],
        )
    }
    sent: dict[str, bytes] = {}
    for step in v["steps"]:
        party = step["party"]
        if step["op"] == "encrypt":
            sent[step["name"]] = sessions[party].encrypt(h(step["plaintext"]), rngs[party])
            assert sent[step["name"]].hex() == step["message"], step["name"]
        elif step["op"] == "accept_prekey_message":
            inbound = accept_prekey_message(
                sent[step["name"]],
                identity=bob.identity,
                signed_prekeys={1: bob.signed_prekey.key},
                one_time_prekeys={1: bob.one_time_prekeys[0].key},
                sender_identity_key=alice.identity.public,
                used_base_keys=set(),
                rng=rngs["bob"],
            )
            sessions["bob"] = inbound.session
            assert inbound.plaintext.hex() == step["plaintext"]
        else:
            try:
                result: str | None = sessions[party].decrypt(sent[step["name"]], rngs[party]).hex()
                error = None
            except ProtocolError as exc:
                result, error = None, type(exc).__name__
            assert (result, error) == (step["plaintext"], step["expected_error"]), step["name"]
    assert {p: s.to_dict() for p, s in sessions.items()} == v["final_sessions"]


def test_content_vectors():
    v = load("content.json")
    for case in v["cases"]:
        content = Content(
            ContentType(case["type"]),
            h(case["message_id"]),
            case["timestamp"],
            case["sender_list_version"],
            h(case["sender_list_hash"]),
            case["body"],
        )
        assert encode_content(content).hex() == case["encoded"]
        assert decode_content(h(case["encoded"])) == content
    for case in v["malformed"]:
        with pytest.raises(ProtocolError) as info:
            decode_content(h(case["encoded"]))
        assert type(info.value).__name__ == case["expected_error"], case["name"]


def test_content_of_an_unknown_type_decodes_for_an_unsupported_message():
    v = load("content.json")
    assert v["unknown_types"]
    for case in v["unknown_types"]:
        content = decode_content(h(case["encoded"]))
        assert content.type == case["type"] and not isinstance(content.type, ContentType)
        assert content.body == case["body"]
        with pytest.raises(ProtocolError):  # this version never writes a type it does not know
            encode_content(content)


def test_safety_vectors():
    v = load("safety.json")
    a, b = v["alice"], v["bob"]
    assert fingerprint(a["account_id"], h(a["account_key"])) == a["fingerprint"]
    assert fingerprint(b["account_id"], h(b["account_key"])) == b["fingerprint"]
    number = safety_number(
        a["account_id"], h(a["account_key"]), b["account_id"], h(b["account_key"])
    )
    assert number == v["safety_number"]
    assert format_safety_number(number) == v["formatted"]


def test_history_vectors():
    for case in load("history.json")["cases"]:
        rng = TestRng(h(case["seed"]))
        plaintext = rng(case["plaintext_length"])
        sealed = seal_history(plaintext, rng)
        assert (sealed.key.hex(), sealed.blob[:24].hex(), sealed.hash.hex(), sealed.length) == (
            case["key"],
            case["header"],
            case["hash"],
            case["length"],
        )
        if "blob" in case:
            assert sealed.blob.hex() == case["blob"]
            assert plaintext.hex() == case["plaintext"]
        opened = open_history(
            sealed.blob,
            key=h(case["key"]),
            expected_hash=h(case["hash"]),
            expected_length=case["length"],
        )
        assert opened == plaintext


def test_linking_vectors():
    v = load("linking.json")
    assert (
        link_challenge(
            server_nonce=h(v["server_nonce"]),
            link_id=v["link_id"],
            companion_identity_key=h(v["companion_public"]),
            ephemeral_key=h(v["ephemeral_public"]),
        ).hex()
        == v["link_challenge"]
    )
    provisioning = Provisioning(
        "acct-alice", h(v["primary_public"]), v["link_id"], h(v["provisioning_link_signature"])
    )
    assert provisioning_payload(provisioning).hex() == v["provisioning_payload"]
    assert link_token_bytes(h(v["token_nonce"]), v["link_id"]).hex() == v["token_signed_bytes"]
    primitives.ed25519_verify(
        h(v["companion_public"]), h(v["token_signed_bytes"]), h(v["token_signature"]), what="vector"
    )
    s = v["sign_in"]
    assert sign_in_bytes(s["origin"], s["device_id"], h(s["nonce"])).hex() == s["signed_bytes"]
    primitives.ed25519_verify(
        h(v["companion_public"]), h(s["signed_bytes"]), h(s["signature"]), what="vector"
    )


def test_link_check_code_vectors():
    v = load("linking.json")
    rng = TestRng(h(v["seed"]))
    for _ in range(2):
        generate_device_keys(rng)
    rng(32 * 3)  # ephemeral, server nonce, token nonce
    other_companion = generate_device_keys(rng).identity.public
    other_ephemeral = X25519KeyPair.generate(rng).public
    keys = {h(v["companion_public"]), h(v["ephemeral_public"]), other_companion, other_ephemeral}
    assert len(v["check_codes"]) >= 6
    for case in v["check_codes"]:
        companion, ephemeral = h(case["companion_identity_key"]), h(case["ephemeral_key"])
        assert {companion, ephemeral} <= keys
        code = link_check_code(
            link_id=case["link_id"], companion_identity_key=companion, ephemeral_key=ephemeral
        )
        assert code == case["check_code"], case
        assert len(code) == 6 and code.isdigit()


def test_json_decoder_vectors():
    v = load("json_decoder.json")
    assert v["default_max_depth"] == MAX_JSON_DEPTH
    assert len(v["cases"]) >= 50
    for case in v["cases"]:
        data = bytes.fromhex(case["hex"]) if "hex" in case else case["text"]
        limits = {k: case[k] for k in ("max_bytes", "max_depth") if k in case}
        try:
            value, reason = parse_json(data, **limits), None
        except InvalidJson as error:
            assert isinstance(error, MalformedMessage) and str(error), case["name"]
            value, reason = None, error.reason
        assert reason == case["expected_error"], case["name"]
        if reason is None:
            assert value == case["value"], case["name"]
