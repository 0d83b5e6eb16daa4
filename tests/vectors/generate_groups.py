"""Deterministic generator of tests/vectors/groups.json (docs/protocol.md section 25.6).

Run: .venv/bin/python tests/vectors/generate_groups.py
Identities are Ed25519 keys from seed("groups <device>"); the group id is the first 16 bytes
of TestRng(seed("groups id")); the sender-key part draws from TestRng(seed("groups sender"))
in the order of the calls listed under `sender_keys.calls`, so both implementations replay it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import primitives  # noqa: E402
from protocol.content import Content, ContentType, encode_content, new_content  # noqa: E402
from protocol.exceptions import ProtocolError  # noqa: E402
from protocol.groups import (  # noqa: E402
    ZERO_HASH,
    EntryKind,
    GroupState,
    apply_entry,
    check_fetched,
    compare_head,
    new_group_id,
    sign_entry,
    verify_chain,
)
from protocol.keys import IdentityKeyPair  # noqa: E402
from protocol.rng import TestRng  # noqa: E402
from protocol.senderkeys import (  # noqa: E402
    decrypt_group,
    distribution_body,
    encrypt_group,
    new_sender_key,
    prepare_send,
    receiving_key,
)

VECTOR_FILE = Path(__file__).resolve().parent / "groups.json"
T0 = 1_700_000_000_000
DEVICES = {"a1": "alice", "a2": "alice", "b1": "bob", "c1": "carol", "d1": "dave"}


def seed(name: str) -> bytes:
    """seed(name) = H("Parley v1 test seed", UTF-8 name), as generate.py."""
    return primitives.hash32("Parley v1 test seed", name.encode("utf-8"))


def identity(device: str) -> IdentityKeyPair:
    return IdentityKeyPair.from_seed(seed(f"groups {device}"))


def error_of(fn: Any) -> str | None:
    try:
        fn()
    except ProtocolError as exc:
        return type(exc).__name__
    return None


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def device_lists() -> dict[str, list[bytes]]:
    lists: dict[str, list[bytes]] = {}
    for device, account in DEVICES.items():
        lists.setdefault(account, []).append(identity(device).public)
    return lists


# (kind, signer device, accounts, name) of the main chain; the actor is the signer's account.
CHAIN = [
    (EntryKind.CREATE, "a1", ["bob", "alice"], "Trip"),
    (EntryKind.ADD, "a2", ["carol"], ""),
    (EntryKind.ADD, "a1", ["dave"], ""),
    (EntryKind.PROMOTE, "a1", ["bob"], ""),
    (EntryKind.REMOVE, "b1", ["carol"], ""),
    (EntryKind.RENAME, "b1", [], "Trip 2027"),
    (EntryKind.LEAVE, "d1", [], ""),
]


def entry(
    state: GroupState | None,
    group_id: bytes,
    kind: EntryKind,
    signer: str,
    accounts: list[str],
    name: str,
    *,
    seq: int | None = None,
    previous: bytes | None = None,
    actor: str | None = None,
) -> bytes:
    return sign_entry(
        group_id=group_id,
        seq=(state.seq + 1 if state else 0) if seq is None else seq,
        previous=(state.head if state else ZERO_HASH) if previous is None else previous,
        kind=kind,
        actor=DEVICES[signer] if actor is None else actor,
        identity=identity(signer),
        timestamp=T0 + (state.seq + 1 if state else 0) * 1000,
        accounts=accounts,
        name=name,
    )


def build() -> dict[str, Any]:
    lists = device_lists()
    group_id = new_group_id(TestRng(seed("groups id")))
    states: dict[str, GroupState | None] = {"none": None}
    chain = []
    state: GroupState | None = None
    for kind, signer, accounts, name in CHAIN:
        wire = entry(state, group_id, kind, signer, accounts, name)
        state = apply_entry(state, wire, device_lists=lists)
        states[f"after_{state.seq}"] = state
        chain.append(
            {
                "kind": kind.name.lower(),
                "signer": signer,
                "actor": DEVICES[signer],
                "seq": state.seq,
                "timestamp": T0 + state.seq * 1000,
                "accounts": accounts,
                "name": name,
                "signed_bytes": wire[:-64].hex(),
                "signature": wire[-64:].hex(),
                "wire": wire.hex(),
                "hash": state.head.hex(),
                "state": state.to_dict(),
            }
        )
    final = state
    assert final is not None
    s = states

    def on(name: str) -> GroupState | None:
        return s[name]

    big_members = ["alice", *(f"m{i:03}" for i in range(1, 200))]
    big_create = entry(None, group_id, EntryKind.CREATE, "a1", big_members, "Big")
    s["big_0"] = apply_entry(None, big_create, device_lists=lists)
    big_add = entry(on("big_0"), group_id, EntryKind.ADD, "a1", [f"n{i:03}" for i in range(56)], "")
    s["big_1"] = apply_entry(on("big_0"), big_add, device_lists=lists)
    assert s["big_1"] is not None and len(s["big_1"].members) == 256
    mallory = IdentityKeyPair.from_seed(seed("groups mallory"))
    unlisted = sign_entry(
        group_id=group_id,
        seq=1,
        previous=final.hashes[0],
        kind=EntryKind.ADD,
        actor="alice",
        identity=mallory,
        timestamp=T0,
        accounts=["mallory"],
    )
    flipped = bytearray(bytes.fromhex(chain[1]["wire"]))
    flipped[-1] ^= 0x01
    renamed = bytearray(bytes.fromhex(chain[5]["wire"]))
    renamed[-66] ^= 0x01  # a byte of the name: the signature no longer covers the entry
    fork = entry(on("after_2"), group_id, EntryKind.RENAME, "a1", [], "Fork")
    refused = [
        (
            "by_a_non_admin",
            "after_1",
            entry(on("after_1"), group_id, EntryKind.ADD, "c1", ["eve"], ""),
        ),
        ("signed_by_an_unlisted_device", "after_0", unlisted),
        ("forged_signature", "after_0", bytes(flipped)),
        ("entry_changed_after_signing", "after_4", bytes(renamed)),
        (
            "broken_link",
            "after_1",
            entry(
                on("after_1"), group_id, EntryKind.ADD, "a1", ["eve"], "", previous=final.hashes[0]
            ),
        ),
        ("gap", "after_1", bytes.fromhex(chain[3]["wire"])),
        ("replayed_entry", "after_2", bytes.fromhex(chain[2]["wire"])),
        (
            "create_not_first",
            "after_0",
            entry(on("after_0"), group_id, EntryKind.CREATE, "a1", ["alice"], "X"),
        ),
        ("first_not_create", "none", bytes.fromhex(chain[1]["wire"])),
        (
            "another_group",
            "after_0",
            entry(on("after_0"), bytes(16), EntryKind.ADD, "a1", ["eve"], ""),
        ),
        ("over_256", "big_1", entry(on("big_1"), group_id, EntryKind.ADD, "a1", ["zed"], "")),
        (
            "remove_a_non_member",
            "after_4",
            entry(on("after_4"), group_id, EntryKind.REMOVE, "b1", ["eve"], ""),
        ),
        (
            "add_a_member",
            "after_1",
            entry(on("after_1"), group_id, EntryKind.ADD, "a1", ["bob"], ""),
        ),
        (
            "last_admin_leaves",
            "after_2",
            entry(on("after_2"), group_id, EntryKind.LEAVE, "a1", [], ""),
        ),
        (
            "leave_by_a_non_member",
            "after_4",
            entry(on("after_4"), group_id, EntryKind.LEAVE, "c1", [], ""),
        ),
        ("fork_at_an_occupied_seq", "after_3", fork),
    ]
    cases = []
    for name, base, wire in refused:
        expected = error_of(lambda b=base, w=wire: apply_entry(s[b], w, device_lists=lists))
        assert expected is not None, name
        cases.append({"name": name, "state": base, "wire": wire.hex(), "expected_error": expected})
    wires = [bytes.fromhex(c["wire"]) for c in chain]
    from_scratch = []
    for name, count, removed in (
        ("a_removed_devices_entry_vouched_for_by_later_ones", 7, ["a2"]),
        ("every_entry_of_a_removed_device_vouched_for", 7, ["a1"]),
        ("the_head_by_a_removed_device", 2, ["a2"]),
        ("the_last_leave_by_a_removed_device", 7, ["d1"]),
        ("entries_after_the_last_listed_one", 7, ["a1", "b1", "d1"]),
    ):
        gone = {identity(d).public for d in removed}
        reduced = {a: [k for k in keys if k not in gone] for a, keys in lists.items()}
        result: dict[str, Any] = {"expected_state": None, "expected_error": None}
        try:
            result["expected_state"] = verify_chain(wires[:count], device_lists=reduced).to_dict()
        except ProtocolError as exc:
            result["expected_error"] = type(exc).__name__
        from_scratch.append({"name": name, "entries": count, "removed_devices": removed} | result)
    fork_state = apply_entry(on("after_2"), fork, device_lists=lists)
    heads = []
    for name, seq, head in (
        ("same", 6, final.head),
        ("behind", 3, final.hashes[3]),
        ("ahead", 7, bytes(32)),
        ("forked", 3, fork_state.head),
    ):
        try:
            verdict: str | None = compare_head(final, seq, head)
            error = None
        except ProtocolError as exc:
            verdict, error = None, type(exc).__name__
        heads.append(
            {
                "name": name,
                "seq": seq,
                "hash": head.hex(),
                "verdict": verdict,
                "expected_error": error,
            }
        )
    fetched = [
        {"wanted_seq": w, "expected_error": error_of(lambda w=w: check_fetched(final, w))}
        for w in (5, 6, 7)
    ]
    return {
        "description": "docs/protocol.md section 25.6",
        "seeds": {d: seed(f"groups {d}").hex() for d in [*DEVICES, "mallory"]}
        | {"id": seed("groups id").hex(), "sender": seed("groups sender").hex()},
        "devices": DEVICES,
        "group_id": group_id.hex(),
        "chain": chain,
        "states": {k: (v.to_dict() if v else None) for k, v in s.items()},
        "big_entries": [big_create.hex(), big_add.hex()],
        "fork": fork.hex(),
        "refused": cases,
        "from_scratch": from_scratch,
        "heads": heads,
        "check_fetched": fetched,
        "sender_keys": sender_key_vectors(group_id, final),
    }


def plaintext(i: int) -> bytes:
    return encode_content(
        Content(
            type=ContentType.TEXT,
            message_id=bytes([i]) * 16,
            timestamp=T0 + i,
            sender_list_version=1,
            sender_list_hash=bytes(32),
            body={"text": f"message {i}"},
        )
    )


def sender_key_vectors(group_id: bytes, chain: GroupState) -> dict[str, Any]:
    rng = TestRng(seed("groups sender"))
    key = new_sender_key(rng, group_id=group_id, sender="alice", device="a1")
    created = key.to_dict()
    targets = [identity(d).public for d in ("a2", "b1", "c1", "d1")]
    plan = prepare_send(key, targets, rng)
    assert not plan.rotated
    key = plan.key
    body = distribution_body(key, head_seq=3, head_hash=chain.hashes[3])
    content = new_content(
        ContentType.GROUP_SENDER_KEY,
        body,
        timestamp=T0,
        sender_list_version=1,
        sender_list_hash=bytes(32),
        rng=rng,
    )
    messages = []
    for i in range(6):
        key, data = encrypt_group(key, plaintext(i), head_seq=3, head_hash=chain.hashes[3], rng=rng)
        messages.append({"iteration": i, "plaintext": plaintext(i).hex(), "message": data.hex()})
    sent = key.to_dict()
    receiver = receiving_key(body, sender="alice", device="a1")
    fresh = receiver
    steps = []
    for i in (0, 5, 1):
        receiver, out = decrypt_group(receiver, bytes.fromhex(messages[i]["message"]))
        assert out.hex() == messages[i]["plaintext"]
        steps.append({"iteration": i, "receiver": receiver.to_dict()})
    tampered = bytearray(bytes.fromhex(messages[2]["message"]))
    tampered[-70] ^= 0x01  # a ciphertext byte, under the signature
    late_body = distribution_body(key, head_seq=3, head_hash=chain.hashes[3])
    late = receiving_key(late_body, sender="alice", device="a1")
    refusals = []
    for name, chain_of, data in (
        ("replay_of_0", receiver, bytes.fromhex(messages[0]["message"])),
        ("replay_of_5", receiver, bytes.fromhex(messages[5]["message"])),
        ("tampered", receiver, bytes(tampered)),
        ("late_device_reads_nothing_before", late, bytes.fromhex(messages[5]["message"])),
    ):
        error = error_of(lambda c=chain_of, d=data: decrypt_group(c, d))
        assert error is not None, name
        refusals.append({"name": name, "message": data.hex(), "expected_error": error})
    # Carol is removed (entry 4): alice's next send rotates before it.
    plan = prepare_send(key, [identity(d).public for d in ("a2", "b1", "d1")], rng)
    assert plan.rotated
    rotated_body = distribution_body(plan.key, head_seq=4, head_hash=chain.hashes[4])
    after_key, after = encrypt_group(
        plan.key, plaintext(9), head_seq=4, head_hash=chain.hashes[4], rng=rng
    )
    bob_new = receiving_key(rotated_body, sender="alice", device="a1")
    _, out = decrypt_group(bob_new, after)
    assert out == plaintext(9)
    carol_error = error_of(lambda: decrypt_group(fresh, after))
    assert carol_error == "SenderKeyUnknown"
    return {
        "calls": [
            "new_sender_key(rng, group_id, sender='alice', device='a1')",
            "prepare_send(key, targets=[a2, b1, c1, d1])",
            "distribution_body(head_seq=3, head_hash=hash 3); new_content(11, body, timestamp=T0, "
            "sender_list_version=1, sender_list_hash=32 zero bytes, rng)",
            "encrypt_group × 6 (plaintexts 0..5, head 3)",
            "prepare_send(key, targets=[a2, b1, d1]) (rotates)",
            "distribution_body(head_seq=4); encrypt_group(plaintext 9, head 4)",
        ],
        "created": created,
        "targets": [t.hex() for t in targets],
        "distribute_to": [t.hex() for t in sorted(targets)],
        "body": body,
        "content": encode_content(content).hex(),
        "messages": messages,
        "after_sending": sent,
        "receiver": fresh.to_dict(),
        "decrypt_order": steps,
        "refused": refusals,
        "late_body": late_body,
        "rotation": {
            "targets": [identity(d).public.hex() for d in ("a2", "b1", "d1")],
            "rotated": True,
            "key": plan.key.to_dict(),
            "body": rotated_body,
            "plaintext": plaintext(9).hex(),
            "message": after.hex(),
            "key_after": after_key.to_dict(),
            "removed_device_error": carol_error,
        },
    }


def main() -> None:
    VECTOR_FILE.write_text(render(build()), encoding="utf-8")


if __name__ == "__main__":
    main()
