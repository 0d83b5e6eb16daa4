"""Groups (docs/protocol.md section 25): every value of groups.json reproduced from its inputs,
the membership and sender-key rules a device relies on, and fuzzing of the verifier."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.content import ContentType, decode_content
from protocol.exceptions import (
    GroupChainBroken,
    GroupEntryForged,
    GroupRefused,
    InvalidSignature,
    MalformedMessage,
    ProtocolError,
    ReplayDetected,
    TooManySkippedMessages,
)
from protocol.groups import (
    ZERO_HASH,
    EntryKind,
    GroupState,
    apply_entry,
    check_fetched,
    compare_head,
    decode_entry,
    entry_hash,
    new_group_id,
    sign_entry,
    verify_chain,
)
from protocol.keys import IdentityKeyPair
from protocol.rng import TestRng
from protocol.senderkeys import (
    ReceivingKey,
    SenderKey,
    decode_group_message,
    decrypt_group,
    distribution_body,
    encrypt_group,
    kdf_sk,
    new_sender_key,
    prepare_send,
    receiving_key,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
V = json.loads((VECTORS / "groups.json").read_text(encoding="utf-8"))
h = bytes.fromhex
T0 = 1_700_000_000_000


def identity(device: str) -> IdentityKeyPair:
    return IdentityKeyPair.from_seed(h(V["seeds"][device]))


DEVICE_LISTS: dict[str, list[bytes]] = {}
for _device, _account in V["devices"].items():
    DEVICE_LISTS.setdefault(_account, []).append(identity(_device).public)
CHAIN = [h(e["wire"]) for e in V["chain"]]


def state(name: str) -> GroupState | None:
    data = V["states"][name]
    return None if data is None else GroupState.from_dict(data)


def error_of(fn: Any) -> str | None:
    try:
        fn()
    except ProtocolError as exc:
        return type(exc).__name__
    return None


def test_regenerating_the_vectors_equals_the_committed_file():
    spec = importlib.util.spec_from_file_location(
        "groups_generator", VECTORS / "generate_groups.py"
    )
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render(generator.build()) == (VECTORS / "groups.json").read_text("utf-8")


def test_the_chain_is_reproduced_entry_by_entry():
    assert new_group_id(TestRng(h(V["seeds"]["id"]))).hex() == V["group_id"]
    current: GroupState | None = None
    for item in V["chain"]:
        wire = sign_entry(
            group_id=h(V["group_id"]),
            seq=item["seq"],
            previous=current.head if current else ZERO_HASH,
            kind=EntryKind[item["kind"].upper()],
            actor=item["actor"],
            identity=identity(item["signer"]),
            timestamp=item["timestamp"],
            accounts=item["accounts"],
            name=item["name"],
        )
        assert wire.hex() == item["wire"] == item["signed_bytes"] + item["signature"]
        assert entry_hash(wire).hex() == item["hash"]
        current = apply_entry(current, wire, device_lists=DEVICE_LISTS)
        assert current.to_dict() == item["state"]
        assert GroupState.from_dict(item["state"]) == current
    assert verify_chain(CHAIN, device_lists=DEVICE_LISTS) == current
    # a held state extended by the entries after it is the whole chain's state
    held = verify_chain(CHAIN[:3], device_lists=DEVICE_LISTS)
    assert verify_chain(CHAIN[3:], device_lists=DEVICE_LISTS, state=held) == current
    assert verify_chain([], device_lists=DEVICE_LISTS, state=held) == held


def test_the_resulting_membership():
    final = verify_chain(CHAIN, device_lists=DEVICE_LISTS)
    assert (final.members, final.admins, final.name) == (
        {"alice", "bob"},
        {"alice", "bob"},
        "Trip 2027",
    )


@pytest.mark.parametrize("case", V["refused"], ids=lambda c: c["name"])
def test_refused_entries(case):
    base = state(case["state"])
    expected = case["expected_error"]
    assert (
        error_of(lambda: apply_entry(base, h(case["wire"]), device_lists=DEVICE_LISTS)) == expected
    )


def test_a_group_of_256_is_accepted_and_one_more_refused():
    big = verify_chain([h(w) for w in V["big_entries"]], device_lists=DEVICE_LISTS)
    assert len(big.members) == 256 and big.to_dict() == V["states"]["big_1"]


@pytest.mark.parametrize("case", V["heads"], ids=lambda c: c["name"])
def test_heads_carried_in_messages(case):
    final = state("after_6")
    assert final is not None
    fn = lambda: compare_head(final, case["seq"], h(case["hash"]))  # noqa: E731
    assert error_of(fn) == case["expected_error"]
    if case["verdict"] is not None:
        assert fn() == case["verdict"]


def test_a_chain_ending_below_a_seen_head_is_withheld():
    final = state("after_6")
    assert final is not None
    for case in V["check_fetched"]:
        assert (
            error_of(lambda c=case: check_fetched(final, c["wanted_seq"])) == case["expected_error"]
        )


@pytest.mark.parametrize("case", V["from_scratch"], ids=lambda c: c["name"])
def test_a_chain_from_scratch_after_devices_left_their_lists(case):
    gone = {identity(d).public for d in case["removed_devices"]}
    lists = {a: [k for k in keys if k not in gone] for a, keys in DEVICE_LISTS.items()}
    entries = CHAIN[: case["entries"]]
    assert error_of(lambda: verify_chain(entries, device_lists=lists)) == case["expected_error"]
    if case["expected_state"] is not None:
        assert verify_chain(entries, device_lists=lists).to_dict() == case["expected_state"]


def test_a_new_entry_by_a_device_removed_from_its_list_is_refused_on_a_state_held():
    lists = {**DEVICE_LISTS, "alice": [identity("a1").public]}  # a2 removed from alice's list
    with pytest.raises(GroupRefused):
        apply_entry(state("after_0"), CHAIN[1], device_lists=lists)
    assert error_of(lambda: apply_entry(state("after_0"), CHAIN[1], device_lists=lists)) == (
        "GroupSignerUnlisted"
    )


def test_the_encoder_refuses_what_the_decoder_refuses():
    base = dict(group_id=bytes(16), seq=0, previous=ZERO_HASH, actor="alice", timestamp=T0)
    signer = identity("a1")
    bad = [
        dict(kind=EntryKind.CREATE, accounts=["alice", "alice"], name="dup"),
        dict(kind=EntryKind.LEAVE, accounts=["alice"]),
        dict(kind=EntryKind.ADD, accounts=[]),
        dict(kind=EntryKind.ADD, accounts=["bob"], name="named"),
        dict(kind=EntryKind.RENAME, name="x" * 257),
        dict(kind=EntryKind.ADD, accounts=[f"a{i}" for i in range(257)]),
        dict(kind=99, accounts=["bob"]),
    ]
    for fields in bad:
        with pytest.raises(MalformedMessage):
            sign_entry(**base, identity=signer, **fields)  # type: ignore[arg-type]


def test_a_refused_entry_leaves_the_state_unchanged():
    before = state("after_1")
    snapshot = before.to_dict() if before else None
    with pytest.raises(GroupRefused):
        apply_entry(before, h(V["refused"][0]["wire"]), device_lists=DEVICE_LISTS)
    assert before is not None and before.to_dict() == snapshot


# ---------------------------------------------------------------------------------------
# Sender keys


SK = V["sender_keys"]


def test_sender_key_distribution_and_messages_are_reproduced():
    final = state("after_6")
    assert final is not None
    rng = TestRng(h(V["seeds"]["sender"]))
    key = new_sender_key(rng, group_id=h(V["group_id"]), sender="alice", device="a1")
    assert key.to_dict() == SK["created"] and SenderKey.from_dict(SK["created"]) == key
    plan = prepare_send(key, [h(t) for t in SK["targets"]], rng)
    assert not plan.rotated and [t.hex() for t in plan.distribute_to] == SK["distribute_to"]
    key = plan.key
    body = distribution_body(key, head_seq=3, head_hash=final.hashes[3])
    assert body == SK["body"]
    content = decode_content(h(SK["content"]))
    assert content.type is ContentType.GROUP_SENDER_KEY and content.body == body
    rng(16)  # new_content's message id
    for item in SK["messages"]:
        key, data = encrypt_group(
            key, h(item["plaintext"]), head_seq=3, head_hash=final.hashes[3], rng=rng
        )
        assert data.hex() == item["message"]
        assert decode_group_message(data).iteration == item["iteration"]
    assert key.to_dict() == SK["after_sending"]
    rotation = SK["rotation"]
    plan = prepare_send(key, [h(t) for t in rotation["targets"]], rng)
    assert plan.rotated and plan.key.to_dict() == rotation["key"]
    assert distribution_body(plan.key, head_seq=4, head_hash=final.hashes[4]) == rotation["body"]
    after, data = encrypt_group(
        plan.key, h(rotation["plaintext"]), head_seq=4, head_hash=final.hashes[4], rng=rng
    )
    assert data.hex() == rotation["message"] and after.to_dict() == rotation["key_after"]


def test_messages_decrypt_out_of_order_from_the_distribution():
    receiver = receiving_key(SK["body"], sender="alice", device="a1")
    assert receiver.to_dict() == SK["receiver"]
    for step in SK["decrypt_order"]:
        message = SK["messages"][step["iteration"]]
        receiver, out = decrypt_group(receiver, h(message["message"]))
        assert out.hex() == message["plaintext"]
        assert receiver.to_dict() == step["receiver"]
        assert ReceivingKey.from_dict(step["receiver"]) == receiver
    for case in SK["refused"]:
        chain = receiver
        if case["name"].startswith("late"):
            chain = receiving_key(SK["late_body"], sender="alice", device="a1")
        assert (
            error_of(lambda c=chain, m=case["message"]: decrypt_group(c, h(m)))
            == case["expected_error"]
        )


def test_after_rotation_the_removed_device_reads_nothing_and_the_others_read_on():
    rotation = SK["rotation"]
    old = receiving_key(SK["body"], sender="alice", device="a1")  # what carol holds
    assert (
        error_of(lambda: decrypt_group(old, h(rotation["message"])))
        == rotation["removed_device_error"]
    )
    bob = receiving_key(rotation["body"], sender="alice", device="a1")
    _, out = decrypt_group(bob, h(rotation["message"]))
    assert out.hex() == rotation["plaintext"]


def test_a_receiver_refuses_a_distribution_naming_another_sender():
    # The sender comes from the pairwise session: the same body from bob's session makes a
    # chain under bob's name, which alice's messages do not match.
    chain = receiving_key(SK["body"], sender="bob", device="b1")
    assert error_of(lambda: decrypt_group(chain, h(SK["messages"][0]["message"]))) == (
        "SenderKeyUnknown"
    )


def test_skipping_more_than_max_skip_is_refused_and_exactly_max_skip_accepted():
    rng = TestRng(b"\x07" * 32)
    key = new_sender_key(rng, group_id=bytes(16), sender="alice", device="a1")
    receiver = receiving_key(
        distribution_body(key, head_seq=0, head_hash=bytes(32)), sender="alice", device="a1"
    )
    far = replace(key, chain_key=_step(key.chain_key, 1001), iteration=1001)
    _, data = encrypt_group(far, b"far", head_seq=0, head_hash=bytes(32), rng=rng)
    with pytest.raises(TooManySkippedMessages):
        decrypt_group(receiver, data)
    near = replace(key, chain_key=_step(key.chain_key, 1000), iteration=1000)
    _, data = encrypt_group(near, b"near", head_seq=0, head_hash=bytes(32), rng=rng)
    after, out = decrypt_group(receiver, data)
    assert out == b"near" and len(after.skipped) == 1000 and after.iteration == 1001


def _step(chain_key: bytes, n: int) -> bytes:
    for _ in range(n):
        chain_key = kdf_sk(chain_key)[1]
    return chain_key


def test_a_refused_group_message_leaves_the_chain_unchanged():
    receiver = receiving_key(SK["body"], sender="alice", device="a1")
    snapshot = receiver.to_dict()
    tampered = next(c for c in SK["refused"] if c["name"] == "tampered")
    with pytest.raises(InvalidSignature):
        decrypt_group(receiver, h(tampered["message"]))
    assert receiver.to_dict() == snapshot
    first = h(SK["messages"][0]["message"])
    after, _ = decrypt_group(receiver, first)
    with pytest.raises(ReplayDetected):
        decrypt_group(after, first)


def test_adding_a_device_distributes_the_current_key_without_rotating():
    rng = TestRng(b"\x08" * 32)
    key = new_sender_key(rng, group_id=bytes(16), sender="alice", device="a1")
    first = prepare_send(key, [b"\x01" * 32], rng)
    again = prepare_send(first.key, [b"\x01" * 32, b"\x02" * 32], rng)
    assert not again.rotated and again.distribute_to == (b"\x02" * 32,)
    assert again.key.key_id == key.key_id
    same = prepare_send(again.key, [b"\x01" * 32, b"\x02" * 32], rng)
    assert not same.rotated and same.distribute_to == ()


# ---------------------------------------------------------------------------------------
# Fuzzing: mutated entries and messages are refused with a ProtocolError, never anything else.

FUZZ_EXAMPLES = int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "200"))  # as test_fuzz.py
fuzz = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ALL_ENTRIES = CHAIN + [h(c["wire"]) for c in V["refused"]]


@fuzz
@given(st.sampled_from(range(len(CHAIN))), st.data())
def test_a_mutated_entry_is_refused_or_is_the_same_entry(index, data):
    wire = bytearray(CHAIN[index])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and wire:
            i = data.draw(st.integers(0, len(wire) - 1))
            wire[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut" and wire:
            i = data.draw(st.integers(0, len(wire) - 1))
            del wire[i : i + data.draw(st.integers(1, 8))]
        else:
            wire.insert(data.draw(st.integers(0, len(wire))), data.draw(st.integers(0, 255)))
    base = None if index == 0 else verify_chain(CHAIN[:index], device_lists=DEVICE_LISTS)
    try:
        after = apply_entry(base, bytes(wire), device_lists=DEVICE_LISTS)
    except ProtocolError:
        return
    assert bytes(wire) == CHAIN[index] and after.head == entry_hash(CHAIN[index])


@fuzz
@given(st.binary(max_size=400))
def test_random_bytes_never_escape_the_entry_decoder(data):
    with contextlib.suppress(ProtocolError):
        decode_entry(data)


@fuzz
@given(st.sampled_from(range(len(SK["messages"]))), st.integers(0, 10_000), st.integers(0, 7))
def test_a_flipped_group_message_is_refused(index, position, bit):
    data = bytearray(h(SK["messages"][index]["message"]))
    data[position % len(data)] ^= 1 << bit
    receiver = receiving_key(SK["body"], sender="alice", device="a1")
    with pytest.raises(ProtocolError):
        decrypt_group(receiver, bytes(data))


@fuzz
@given(st.dictionaries(st.sampled_from(list(SK["body"])), st.none() | st.integers() | st.text()))
def test_a_mutated_distribution_body_is_refused_or_valid(changes):
    body = {**SK["body"], **changes}
    with contextlib.suppress(MalformedMessage):
        receiving_key(body, sender="alice", device="a1")


def test_a_chain_built_from_scratch_refuses_a_broken_first_entry():
    with pytest.raises(GroupChainBroken):
        verify_chain([], device_lists=DEVICE_LISTS)
    forged = bytearray(CHAIN[0])
    forged[-1] ^= 1
    with pytest.raises(GroupEntryForged):
        verify_chain([bytes(forged), *CHAIN[1:]], device_lists=DEVICE_LISTS)
