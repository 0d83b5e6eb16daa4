"""Version-2 sessions (docs/protocol.md section 27): KEM prekeys, PQXDH, the version-2 wire
format and the KEM steps of the ratchet. Every value of tests/vectors/pq.json is reproduced
(the JS mirror does the same in tests/js/pq.test.js); Python's encapsulation is random, so the
replay takes it from the file's table, and every other value is computed here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import primitives
from protocol.devicelist import (
    DeviceList,
    device_list_bytes,
    device_signature_bytes,
    device_signature_protocols,
    sign_device,
    sign_device_list,
    verify_device_list,
)
from protocol.encoding import b64u_encode
from protocol.exceptions import DecryptionFailed, InvalidSignature, ProtocolError
from protocol.inbound import accept_prekey_message
from protocol.keys import (
    KEM_PREKEYS_PER_UPLOAD,
    DeviceKeys,
    PrekeyBundle,
    generate_device_keys,
    generate_kem_prekey,
    make_prekey_bundle,
    plan_kem_refill,
    verify_prekey_bundle,
)
from protocol.message import PrekeyMessage, decode_message
from protocol.pqratchet import KEM_INTERVAL
from protocol.ratchet import Session
from protocol.rng import TestRng, system_rng
from tests.vectors.generate import seed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
V = json.loads((VECTORS / "pq.json").read_text("utf-8"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("pq_generator", VECTORS / "generate_pq.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()
BOB = DeviceKeys.from_dict(V["bob_device_keys"])
assert BOB.last_resort_kem_prekey is not None
KEM_PREKEYS = {k.id: k for k in (*BOB.kem_prekeys, BOB.last_resort_kem_prekey)}


def recorded() -> Any:
    return GEN.RecordedKem(V["encapsulations"], may_ask=False)


def accept(data: bytes, sender: bytes, rng: Any, **kw: Any) -> Any:
    return accept_prekey_message(
        data,
        identity=BOB.identity,
        signed_prekeys={7: BOB.signed_prekey.key},
        one_time_prekeys={100: BOB.one_time_prekeys[0].key},
        sender_identity_key=sender,
        used_base_keys=set(),
        rng=rng,
        **{"kem_prekeys": KEM_PREKEYS, "encapsulate": recorded(), **kw},
    )


def test_regenerating_the_vectors_equals_the_committed_file():
    assert GEN.render(GEN.build(may_ask=False)) == (VECTORS / "pq.json").read_text("utf-8")


def test_kem_prekeys_come_from_their_seeds_and_are_signed_with_their_flag():
    for case, key in zip(
        V["kem_prekeys"], (BOB.kem_prekeys[0], BOB.last_resort_kem_prekey), strict=True
    ):
        assert primitives.mlkem768_public(bytes.fromhex(case["seed"])).hex() == case["public_key"]
        assert key.last_resort is case["last_resort"]
        assert key.signature.hex() == case["signature"]
        primitives.ed25519_verify(
            BOB.identity.public,
            bytes.fromhex(case["signed_bytes"]),
            bytes.fromhex(case["signature"]),
            what="kem prekey",
        )
    assert BOB.to_dict() == V["bob_device_keys"]
    assert GEN.bob_keys()[0].to_dict() == V["bob_device_keys"]


def test_the_encapsulation_table_opens_with_bobs_kem_prekeys():
    opened = 0
    for row in V["encapsulations"]:
        for key in KEM_PREKEYS.values():
            if GEN.key_hash(key.public) == row["public_key_hash"]:
                shared = primitives.mlkem768_decapsulate(key.seed, bytes.fromhex(row["ciphertext"]))
                assert shared.hex() == row["shared"]
                opened += 1
    assert opened == 2  # the one-time and the last-resort case


@pytest.mark.parametrize("case", V["sessions"], ids=lambda c: c["name"])
def test_pqxdh_both_sides_reproduce_the_first_message_and_sessions(case):
    alice_rng = TestRng(seed(f"pq alice {case['name']}"))
    alice = generate_device_keys(alice_rng)
    bundle = PrekeyBundle.from_dict(case["bundle"])
    session = Session.initiate(
        identity=alice.identity,
        bundle=bundle,
        listed_identity_key=BOB.identity.public,
        rng=alice_rng,
        encapsulate=recorded(),
        device_speaks_v2=True,
    )
    assert session.version == 2
    assert session.binding.hex() == case["binding"]
    assert session.associated_data.hex() == case["associated_data"]
    first = session.encrypt(b"hello, quantum-safe bob", alice_rng)
    assert first.hex() == case["first_message"]
    assert session.to_dict() == case["alice_session"]
    inbound = accept(first, alice.identity.public, TestRng(seed(f"pq bob {case['name']}")))
    assert inbound.plaintext == b"hello, quantum-safe bob"
    assert inbound.one_time_kem_prekey_id == case["one_time_kem_prekey_id"]
    assert inbound.session.to_dict() == case["bob_session"]


def test_the_conversation_with_kem_steps_out_of_order_and_a_lost_message():
    first = V["sessions"][0]
    alice_rng = TestRng(seed("pq alice one_time"))
    alice = generate_device_keys(alice_rng)
    parties = {
        "alice": Session.initiate(
            identity=alice.identity,
            bundle=PrekeyBundle.from_dict(first["bundle"]),
            listed_identity_key=BOB.identity.public,
            rng=alice_rng,
            encapsulate=recorded(),
        )
    }
    parties["alice"].encrypt(b"hello, quantum-safe bob", alice_rng)
    bob_rng = TestRng(seed("pq bob one_time"))
    parties["bob"] = accept(
        bytes.fromhex(first["first_message"]), alice.identity.public, bob_rng
    ).session
    rngs = {"alice": alice_rng, "bob": bob_rng}
    kem = recorded()
    messages: dict[str, bytes] = {}
    offers = answers = 0
    for step in V["conversation"]["steps"]:
        session, rng = parties[step["party"]], rngs[step["party"]]
        if step["op"] == "encrypt":
            wire = session.encrypt(bytes.fromhex(step["plaintext"]), rng)
            assert wire.hex() == step["message"], step["name"]
            messages[step["name"]] = wire
            decoded = decode_message(wire)
            header = (decoded.message if isinstance(decoded, PrekeyMessage) else decoded).header
            offers += header.kem_offer is not None
            answers += header.kem_answer is not None
            continue
        try:
            plaintext = session.decrypt(messages[step["name"]], rng, kem).hex()
            error = None
        except ProtocolError as exc:
            plaintext, error = None, type(exc).__name__
        assert (plaintext, error) == (step["plaintext"], step["expected_error"]), step["name"]
    assert offers and answers
    for party, session in parties.items():
        assert session.to_dict() == V["conversation"]["final_sessions"][party]


@pytest.mark.parametrize("case", V["refusals"], ids=lambda c: c["name"])
def test_refusals(case):
    def run() -> Any:
        call = case["call"]
        if call == "accept":
            sender = bytes.fromhex(case["sender"])
            return accept(
                bytes.fromhex(case["message"]),
                sender,
                TestRng(seed("pq refusal")),
                kem_prekeys={i: KEM_PREKEYS[i] for i in case["kem_prekey_ids"]},
                sender_speaks_v2=case["sender_speaks_v2"],
            )
        if call == "initiate":
            return Session.initiate(
                identity=generate_device_keys(TestRng(seed("pq alice downgrade"))).identity,
                bundle=PrekeyBundle.from_dict(case["bundle"]),
                listed_identity_key=BOB.identity.public,
                rng=TestRng(seed("pq refusal")),
                device_speaks_v2=case["device_speaks_v2"],
            )
        if call == "verify_bundle":
            return verify_prekey_bundle(
                PrekeyBundle.from_dict(case["bundle"]), listed_identity_key=BOB.identity.public
            )
        if call == "decrypt":
            return Session.from_dict(case["session"]).decrypt(
                bytes.fromhex(case["message"]), TestRng(seed("pq refusal")), recorded()
            )
        assert call == "decode"
        return decode_message(bytes.fromhex(case["message"]))

    if case["expected_error"] is None:
        run()
    else:
        with pytest.raises(ProtocolError) as caught:
            run()
        assert type(caught.value).__name__ == case["expected_error"]


# Behaviour beyond the vectors, with Python's own (random) encapsulation.


def pair(*, with_kem: bool = True, name: str = "pair") -> tuple[Session, Session]:
    """Alice's session with BOB after one message each way (so both have sent and stepped)."""
    rng = TestRng(seed(f"pq {name}"))
    alice = generate_device_keys(rng)
    bundle = make_prekey_bundle(
        "dev-bob", BOB, BOB.one_time_prekeys[0], BOB.kem_prekeys[0] if with_kem else None
    )
    a = Session.initiate(
        identity=alice.identity, bundle=bundle, listed_identity_key=BOB.identity.public, rng=rng
    )
    b = accept(
        a.encrypt(b"hi", rng), alice.identity.public, rng, encapsulate=primitives_encapsulate
    ).session
    a.decrypt(b.encrypt(b"hello", rng), rng)
    return a, b


def primitives_encapsulate(public_key: bytes, _m: bytes) -> tuple[bytes, bytes]:
    return primitives.mlkem768_encapsulate(public_key)


class KnowsX25519:
    """What a quantum attacker learns of a party's randomness: every X25519 private key
    (it computes them from the public keys), so the party's 32- and 24-byte draws, but not
    the seed of a fresh ML-KEM key (the 64-byte draws), which never left the party."""

    def __init__(self, stream_seed: bytes):
        self.inner = TestRng(stream_seed)

    def __call__(self, n: int) -> bytes:
        out = self.inner(n)
        return bytes(n) if n == 64 else out


@pytest.mark.parametrize("with_kem", [True, False], ids=["version 2", "version 1"])
def test_a_stolen_state_stops_opening_messages_after_a_kem_exchange(with_kem):
    alice, bob = pair(with_kem=with_kem, name=f"stolen {with_kem}")
    stolen = Session.from_dict(alice.to_dict())
    alice_rng, attacker_rng = TestRng(seed("pq alice later")), KnowsX25519(seed("pq alice later"))
    bob_rng = TestRng(seed("pq bob later"))
    readable = []
    for turn in range(3 * KEM_INTERVAL):
        text = f"turn {turn}".encode()
        bob.decrypt(alice.encrypt(text, alice_rng), bob_rng)
        stolen.encrypt(text, attacker_rng)  # draws as Alice did
        reply = bob.encrypt(b"reply %d" % turn, bob_rng)
        assert alice.decrypt(reply, alice_rng) == b"reply %d" % turn
        try:
            readable.append(stolen.decrypt(reply, attacker_rng) == b"reply %d" % turn)
        except DecryptionFailed:
            readable.append(False)
    if not with_kem:
        assert all(readable)  # version 1: a stolen state and X25519 open everything, for ever
        return
    healed = readable.index(False)
    assert healed >= KEM_INTERVAL // 2 - 1  # it opened every reply until the first exchange
    assert not any(readable[healed:])  # and none after it


def run_until_answer(alice: Session, bob: Session) -> bytes:
    """Take turns until Bob's message carries an answer; return it, not yet decrypted."""
    for turn in range(3 * KEM_INTERVAL):
        bob.decrypt(alice.encrypt(b"a%d" % turn, system_rng), system_rng, primitives_encapsulate)
        reply = bob.encrypt(b"b%d" % turn, system_rng)
        if decode_message(reply).header.kem_answer is not None:  # type: ignore[union-attr]
            return reply
        alice.decrypt(reply, system_rng)
    raise AssertionError("no KEM answer within three intervals")


def test_an_answer_to_an_offer_this_side_did_not_make_is_refused_and_changes_nothing():
    alice, bob = pair(name="answer")
    reply = run_until_answer(alice, bob)
    state = alice.to_dict()
    assert state["kem"]["offer"] is not None
    state["kem"]["offer"]["id"] += 1
    other = Session.from_dict(state)
    with pytest.raises(DecryptionFailed, match="did not make"):
        other.decrypt(reply, system_rng)
    assert other.to_dict() == state
    assert alice.decrypt(reply, system_rng).startswith(b"b")
    assert alice.kem is not None and alice.kem.offer is None and alice.kem.count == 1


def test_every_altered_byte_of_a_message_with_a_kem_answer_is_refused_without_change():
    alice, bob = pair(name="tamper")
    reply = run_until_answer(alice, bob)
    state = alice.to_dict()
    for position in [*range(0, 60), *range(60, len(reply), 37)]:
        altered = bytearray(reply)
        altered[position] ^= 0x10
        session = Session.from_dict(state)
        with pytest.raises(ProtocolError):
            session.decrypt(bytes(altered), system_rng)
        assert session.to_dict() == state, position


def test_kem_steps_come_once_per_interval_and_cost_little_on_average():
    alice, bob = pair(name="schedule")
    sizes, offers = [], []
    for _ in range(4 * KEM_INTERVAL):
        wire = alice.encrypt(bytes(40), system_rng)
        offers.append(decode_message(wire).header.kem_offer is not None)  # type: ignore[union-attr]
        sizes.append(len(wire))
        bob.decrypt(wire, system_rng, primitives_encapsulate)
        reply = bob.encrypt(bytes(40), system_rng)
        sizes.append(len(reply))
        alice.decrypt(reply, system_rng)
    assert not any(offers[: KEM_INTERVAL // 2 - 1])  # nothing before the interval
    assert 2 <= sum(offers) <= 4  # both sides offer in turn: about one exchange per interval
    plain = 2 + 41 + 24 + 16 + 40
    assert sum(sizes) / len(sizes) - plain < 80  # bytes a message, on average


def test_a_new_last_resort_key_is_kept_as_a_seed_in_version_2_device_keys():
    keys = generate_device_keys(system_rng)
    assert keys.to_dict()["version"] == 1
    assert "kem_prekeys" not in keys.to_dict()
    last = generate_kem_prekey(keys.identity, 1, system_rng, last_resort=True)
    with_kem = DeviceKeys(
        identity=keys.identity,
        signed_prekey=keys.signed_prekey,
        one_time_prekeys=keys.one_time_prekeys,
        kem_prekeys=(generate_kem_prekey(keys.identity, 2, system_rng),),
        last_resort_kem_prekey=last,
    )
    data = with_kem.to_dict()
    assert data["version"] == 2 and set(data["last_resort_kem_prekey"]) == {"id", "seed"}
    assert DeviceKeys.from_dict(json.loads(json.dumps(data))) == with_kem


@pytest.mark.parametrize("case", V["refills"], ids=lambda c: c["name"])
def test_a_kem_refill_plan_is_reproduced(case):
    rng = TestRng(seed(f"pq refill {case['name']}"))
    keys = generate_device_keys(rng) if case["keys"] == "new" else BOB
    plan = plan_kem_refill(
        keys,
        stored=case["stored"],
        last_resort_stored=case["last_resort_stored"],
        next_id=case["next_id"],
        target=case["target"],
        rng=rng,
    )
    if case["plan"] is None:
        assert plan is None
        return
    assert plan is not None
    assert plan.keys.to_dict() == case["plan"]["keys"]
    assert plan.next_id == case["plan"]["next_id"]
    uploads = [
        {
            "ids": [k["id"] for k in body["kem_prekeys"]],
            "last_resort_id": body.get("last_resort_kem_prekey", {}).get("id"),
            "digest": GEN.upload_digest(body),
        }
        for body in plan.uploads
    ]
    assert uploads == case["plan"]["uploads"]
    for body in plan.uploads:  # what the server checks: each key signed with its flag
        assert len(body["kem_prekeys"]) <= KEM_PREKEYS_PER_UPLOAD
        for upload, last in [(k, False) for k in body["kem_prekeys"]] + (
            [(body["last_resort_kem_prekey"], True)] if "last_resort_kem_prekey" in body else []
        ):
            verify_prekey_bundle(
                PrekeyBundle.from_dict(
                    {
                        **V["sessions"][0]["bundle"],
                        "identity_key": b64u_encode(keys.identity.public),
                        "signed_prekey": {
                            "id": keys.signed_prekey.id,
                            "public_key": b64u_encode(keys.signed_prekey.key.public),
                            "signature": b64u_encode(keys.signed_prekey.signature),
                        },
                        "kem_prekey": {**upload, "last_resort": last},
                    }
                ),
                listed_identity_key=keys.identity.public,
            )


L = V["device_lists"]


def test_a_device_list_whose_entries_say_their_versions_is_reproduced():
    rng = TestRng(seed("pq device list"))
    primary, laptop, _ = (generate_device_keys(rng).identity for _ in range(3))
    parsed = DeviceList.from_dict(L["list"])
    assert device_list_bytes(parsed).hex() == L["list_bytes"]
    assert parsed.hash.hex() == L["hash"]
    assert parsed.to_dict() == L["list"]
    assert [d.speaks_v2 for d in parsed.devices] == [True, True, False]
    assert (
        device_signature_bytes("acct-pq", primary.public, laptop.public, (1, 2)).hex()
        == L["laptop_signed_bytes"]
    )
    for c in L["signature_protocols"]:
        entry = parsed.entry(c["device"])
        assert entry is not None
        covered = device_signature_protocols(
            bytes.fromhex(c["signature"]),
            account_id="acct-pq",
            account_key=primary.public,
            identity_key=entry.identity_key,
        )
        assert list(covered) == c["protocols"]


@pytest.mark.parametrize("case", L["cases"], ids=lambda c: c["name"])
def test_device_list_version_refusals(case):
    primary = generate_device_keys(TestRng(seed("pq device list"))).identity

    def run() -> None:
        parsed = DeviceList.from_dict(case["list"])
        if case["resign"]:
            parsed = sign_device_list(
                primary,
                account_id=parsed.account_id,
                version=parsed.version,
                timestamp=parsed.timestamp,
                devices=parsed.devices,
            )
        verify_device_list(parsed, expected_account_key=primary.public)

    if case["expected_error"] is None:
        run()
        return
    with pytest.raises(ProtocolError) as caught:
        run()
    assert type(caught.value).__name__ == case["expected_error"]


def test_a_signature_of_neither_form_says_no_versions():
    rng = TestRng(seed("pq device list"))
    primary, laptop, _ = (generate_device_keys(rng).identity for _ in range(3))
    other = sign_device(laptop, account_id="another account", account_key=primary.public)
    with pytest.raises(InvalidSignature):
        device_signature_protocols(
            other, account_id="acct-pq", account_key=primary.public, identity_key=laptop.public
        )
