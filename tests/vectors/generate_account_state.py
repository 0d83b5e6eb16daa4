"""Deterministic generator of tests/vectors/account_state.json (docs/protocol.md section 23.10).

Run: .venv/bin/python tests/vectors/generate_account_state.py
Each section draws from its own TestRng stream (section 14), named in the file, in the order
of the calls listed in its description, so both implementations replay it call for call.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import primitives  # noqa: E402
from protocol.accountstate import (  # noqa: E402
    AccountState,
    Checkpoint,
    WrittenEntry,
    build_patch,
    build_snapshot,
)
from protocol.content import Content, ContentType, encode_content  # noqa: E402
from protocol.encoding import b64u_encode, label, u32  # noqa: E402
from protocol.exceptions import ProtocolError  # noqa: E402
from protocol.rng import TestRng  # noqa: E402
from protocol.statehash import EMPTY_LTHASH, lthash_update, state_hash  # noqa: E402
from protocol.syncentry import (  # noqa: E402
    VALUE_AD_LABEL,
    Mutation,
    SealedRecord,
    SyncKey,
    encode_entry,
    encode_mutation,
    index_mac,
    new_sync_key,
    seal_record,
    sync_subkeys,
)
from protocol.synclog import apply_entries, check_fetched, compare_checkpoint  # noqa: E402

VECTOR_FILE = Path(__file__).resolve().parent / "account_state.json"
T0 = 1_700_000_000_000


def seed(name: str) -> bytes:
    """seed(name) = H("Parley v1 test seed", UTF-8 name), as generate.py."""
    return primitives.hash32("Parley v1 test seed", name.encode("utf-8"))


def hx(data: bytes) -> str:
    return data.hex()


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def m(collection: str, index: list[str], value: Any, at: int, device: str) -> Mutation:
    return Mutation(collection, tuple(index), value, T0 + at, device)


def mutation_json(mutation: Mutation) -> dict[str, Any]:
    return {
        "collection": mutation.collection,
        "index": list(mutation.index),
        "value": mutation.value,
        "timestamp": mutation.timestamp,
        "device": mutation.device,
    }


def key_json(key: SyncKey) -> dict[str, Any]:
    sub = sync_subkeys(key)
    return {
        "key_id": hx(key.key_id),
        "key": hx(key.key),
        "since_version": key.since_version,
        "subkeys": {
            "index": hx(sub.index),
            "value": hx(sub.value),
            "value_mac": hx(sub.value_mac),
            "entry": hx(sub.entry),
        },
    }


def outcome(fn: Any) -> dict[str, Any]:
    """{"error": class name, "message": text} of the ProtocolError fn raises, or its result."""
    try:
        result = fn()
    except ProtocolError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": None, "result": result}


# The mutations of the log (section 23.6 in action): edits, a removal, a late older write, a
# tie on (timestamp, device) and a tie on timestamp broken by the device id.
M1 = [
    m("contacts", ["contact", "bob"], {"nickname": "Bob", "verified": False}, 0, "dev-phone"),
    m("settings", ["read_receipts"], {"enabled": True}, 0, "dev-phone"),
    m("profile", ["display_name"], {"name": "Alice Liddell 🐇"}, 0, "dev-phone"),
]
M2 = [
    m("contacts", ["contact", "bob"], {"nickname": "Bobby", "verified": True}, 1000, "dev-laptop"),
    m(
        "contacts",
        ["contact", "carol"],
        {"nickname": "Carol", "verified": False},
        1000,
        "dev-laptop",
    ),
    m("devices", ["device", "dev-laptop"], {"name": "Alice's laptop"}, 1000, "dev-laptop"),
    m(
        "conversations",
        ["conversation", "bob"],
        {"archived": False, "muted": False, "pinned": True, "read_up_to": T0 + 900, "unread": 0},
        1000,
        "dev-laptop",
    ),
]
M3 = [
    m("contacts", ["contact", "carol"], None, 2000, "dev-phone"),
    m("contacts", ["contact", "bob"], {"nickname": "Robert", "verified": False}, 500, "dev-phone"),
    m("blocked", ["user", "mallory"], {}, 2000, "dev-phone"),
    m("settings", ["read_receipts"], {"enabled": False}, 0, "dev-phone"),
]
M5 = [
    m(
        "contacts",
        ["contact", "carol"],
        {"nickname": "Carol again", "verified": False},
        3000,
        "dev-laptop",
    ),
    m("contacts", ["contact", "bob"], {"nickname": "Bob A", "verified": True}, 1000, "dev-aaa"),
    m("contacts", ["contact", "bob"], {"nickname": "Bob P", "verified": True}, 1000, "dev-phone"),
]
M7 = [m("profile", ["display_name"], {"name": "Alice L."}, 4000, "dev-phone")]
M3_FORK = [
    m("contacts", ["contact", "dave"], {"nickname": "Dave", "verified": False}, 2000, "dev-laptop")
]
M4_FORK = [m("settings", ["notification_previews"], {"enabled": False}, 2500, "dev-laptop")]
M7_REMOVED = [
    m("contacts", ["contact", "eve"], {"nickname": "Eve", "verified": True}, 4000, "dev-old")
]


def written_json(
    entry: WrittenEntry, key_name: str, mutations: list[Mutation] | None
) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "version": entry.version,
        "key": key_name,
        "mutations": None if mutations is None else [mutation_json(x) for x in mutations],
        "blob": hx(entry.blob),
        "mac": hx(entry.blob[-32:]),
        "state_hash": hx(entry.state.hash),
        "state": entry.state.to_dict(),
    }


def build() -> dict[str, Any]:
    keys_rng = TestRng(seed("account state keys"))
    k1 = new_sync_key(keys_rng, since_version=1)
    k2 = new_sync_key(keys_rng, since_version=6)
    sub1 = sync_subkeys(k1)
    keys = {"k1": k1, "k2": k2}

    index_macs = [
        {"key": "k1", "collection": c, "index": i, "index_mac": hx(index_mac(sub1, c, i))}
        for c, i in [
            ("contacts", ["contact", "bob"]),
            ("contacts", ["contact", "bób 漢"]),
            ("settings", ["read_receipts"]),
            ("conversations", ["conversation", "bob", "x"]),
        ]
    ]

    records_rng = TestRng(seed("account state records"))
    records = []
    for mutation in [M1[0], M3[0], M2[3]]:
        sealed, vm = seal_record(sub1, mutation, records_rng)
        records.append(
            {
                "key": "k1",
                "mutation": mutation_json(mutation),
                "plaintext": hx(encode_mutation(mutation)),
                "index_mac": hx(sealed.index_mac),
                "nonce": hx(sealed.nonce),
                "ciphertext": hx(sealed.ciphertext),
                "value_mac": hx(vm),
                "encoded": hx(sealed.encode()),
            }
        )

    macs = [bytes.fromhex(r["value_mac"]) for r in records]
    added = lthash_update(EMPTY_LTHASH, add=macs)
    removed = lthash_update(added, remove=[macs[1]])
    assert removed == lthash_update(EMPTY_LTHASH, add=[macs[2], macs[0]])
    hashes = {
        "value_macs": [hx(x) for x in macs],
        "empty_state_hash": hx(state_hash(EMPTY_LTHASH)),
        "element_0": hx(primitives.keystream(macs[0], 2048)),
        "lthash_add_all": hx(added),
        "state_hash_add_all": hx(state_hash(added)),
        "lthash_remove_1": hx(removed),
        "state_hash_remove_1": hx(state_hash(removed)),
    }

    log_rng = TestRng(seed("account state log"))
    e1 = build_patch(AccountState(), M1, version=1, key=k1, rng=log_rng)
    e2 = build_patch(e1.state, M2, version=2, key=k1, rng=log_rng)
    e3 = build_patch(e2.state, M3, version=3, key=k1, rng=log_rng)
    e4 = build_snapshot(e3.state, version=4, key=k1, rng=log_rng)
    e5 = build_patch(e4.state, M5, version=5, key=k1, rng=log_rng)
    rotation_rng = TestRng(seed("account state rotation"))
    e6 = build_snapshot(e5.state, version=6, key=k2, rng=rotation_rng)
    e7 = build_patch(e6.state, M7, version=7, key=k2, rng=rotation_rng)
    # The removed device holds k1 and the log: it writes at 7 after the rotation snapshot.
    after_rotation = AccountState(6, e6.blob[-32:], e5.state.lthash, e5.state.records)
    r7 = build_patch(after_rotation, M7_REMOVED, version=7, key=k1, rng=rotation_rng)
    fork_rng = TestRng(seed("account state fork"))
    f3 = build_patch(e2.state, M3_FORK, version=3, key=k1, rng=fork_rng)
    f4 = build_patch(f3.state, M4_FORK, version=4, key=k1, rng=fork_rng)

    # Written by a holder of k1 with broken contents (no server can: it lacks the key).
    forged_rng = TestRng(seed("account state forged"))
    bob_plain = encode_mutation(M3[1])
    carol_mac = index_mac(sub1, "contacts", ["contact", "carol"])
    bob_sealed, _ = seal_record(sub1, M3[1], forged_rng)
    nonce = forged_rng(24)
    moved_ad = label(VALUE_AD_LABEL) + k1.key_id + carol_mac
    moved_ct = primitives.aead_encrypt(sub1.value, nonce, bob_plain, moved_ad)

    def forged(record: SealedRecord, hash_after: bytes) -> bytes:
        return encode_entry(
            kind="patch",
            key=k1,
            version=3,
            previous=e2.blob[-32:],
            state_hash=hash_after,
            records=[record],
        )

    blobs = {
        "e1": e1.blob,
        "e2": e2.blob,
        "e3": e3.blob,
        "e4": e4.blob,
        "e5": e5.blob,
        "e6": e6.blob,
        "e7": e7.blob,
        "r7": r7.blob,
        "f3": f3.blob,
        "f4": f4.blob,
        "moved_index_mac": forged(
            SealedRecord(carol_mac, bob_sealed.nonce, bob_sealed.ciphertext), e3.state.hash
        ),
        "moved_sealed_for_other_index": forged(
            SealedRecord(carol_mac, nonce, moved_ct), e3.state.hash
        ),
        "wrong_state_hash": forged(bob_sealed, e3.state.hash),
        "e3_bit_flipped": e3.blob[:200] + bytes([e3.blob[200] ^ 1]) + e3.blob[201:],
        "e3_truncated": e3.blob[:-1],
    }
    states = {
        "empty": AccountState(),
        "v1": e1.state,
        "v2": e2.state,
        "v3": e3.state,
        "v5": e5.state,
        "v6": e6.state,
        "new_v5": apply_entries(AccountState(), [(4, e4.blob), (5, e5.blob)], keys=[k1]),
    }
    k_all = ["k1", "k2"]
    apply_cases = [
        ("the whole log from nothing", "empty", ["k1"], [1, 2, 3, 4, 5]),
        ("a new device: the snapshot, then a patch", "empty", ["k1"], [4, 5]),
        ("the rotation snapshot and a patch under the new key", "v5", k_all, [6, 7]),
        ("a device linked after the rotation holds only the new key", "empty", ["k2"], [6, 7]),
        ("dropped: version 2 left out", "v1", ["k1"], [3]),
        ("dropped: the snapshot at 4 left out before patch 5", "v1", ["k1"], [2, 3, 5]),
        ("a snapshot may skip compacted patches", "v1", ["k1"], [4, 5]),
        ("replayed: version 2 served again as version 3", "v2", ["k1"], [(3, "e2")]),
        ("replayed in its own slot", "v2", ["k1"], [2]),
        ("reordered: 3 before 2", "v1", ["k1"], [(2, "e3"), (3, "e2")]),
        ("forked: a patch after another version 3", "v3", ["k1"], [(4, "f4")]),
        (
            "forked: the other branch's version 3 on a device at 2 applies, then 4 of this one fails",
            "v2",
            ["k1"],
            [(3, "f3"), 4],
        ),
        ("stale snapshot: version 4 on a device at 5", "v5", ["k1"], [4]),
        ("wrong key id: an entry under a key this device does not hold", "v5", ["k1"], [6]),
        ("the removed device's write under the retired key", "v6", k_all, [(7, "r7")]),
        ("the removed device reads nothing after the rotation", "v5", ["k1"], [6, 7]),
        ("the server flipped a bit", "v2", ["k1"], [(3, "e3_bit_flipped")]),
        ("the server truncated the entry", "v2", ["k1"], [(3, "e3_truncated")]),
        ("listed at another version than written", "v2", ["k1"], [(4, "e3")]),
        (
            "a value moved to another index (index MAC swapped)",
            "v2",
            ["k1"],
            [(3, "moved_index_mac")],
        ),
        ("a value sealed for another index", "v2", ["k1"], [(3, "moved_sealed_for_other_index")]),
        ("the writer's state hash differs", "v2", ["k1"], [(3, "wrong_state_hash")]),
    ]
    applies = []
    for name, start, key_names, listing in apply_cases:
        entries = [(x, f"e{x}") if isinstance(x, int) else x for x in listing]
        result = outcome(
            lambda start=start, key_names=key_names, entries=entries: apply_entries(
                states[start],
                [(v, blobs[b]) for v, b in entries],
                keys=[keys[k] for k in key_names],
            ).to_dict()
        )
        case: dict[str, Any] = {
            "name": name,
            "state": start,
            "keys": key_names,
            "entries": [[v, b] for v, b in entries],
            "error": result["error"],
        }
        if result["error"]:
            case["message"] = result["message"]
        else:
            case["state_after"] = result["result"]
        applies.append(case)

    fetched_cases = [
        ("caught up", "v5", 5, ["k1"], None),
        ("the server claims more than it served", "v3", 5, ["k1"], None),
        ("the server claims less than this device has", "v3", 2, ["k1"], None),
        ("the newest key starts after the log's end", "v5", 5, k_all, None),
        ("an own device is further", "v5", 5, ["k1"], (7, "e7")),
        ("an own device agrees at an older version", "v5", 5, ["k1"], (3, "e3")),
        ("an own device has another version 3", "v5", 5, ["k1"], (3, "f3")),
    ]
    fetched = []
    for name, start, server_version, key_names, point in fetched_cases:
        checkpoint = None if point is None else Checkpoint(point[0], blobs[point[1]][-32:])
        result = outcome(
            lambda start=start, sv=server_version, key_names=key_names, cp=checkpoint: (
                check_fetched(
                    states[start],
                    server_version=sv,
                    keys=[keys[k] for k in key_names],
                    checkpoint=cp,
                )
            )
        )
        case = {
            "name": name,
            "state": start,
            "server_version": server_version,
            "keys": key_names,
            "checkpoint": None
            if checkpoint is None
            else {"version": checkpoint.version, "chain": hx(checkpoint.chain)},
            "error": result["error"],
        }
        if result["error"]:
            case["message"] = result["message"]
        fetched.append(case)

    compare_cases = [
        ("same", "v5", 5, e5.blob[-32:]),
        ("ahead", "v5", 2, e2.blob[-32:]),
        ("behind", "v3", 5, e5.blob[-32:]),
        ("zero", "v3", 0, bytes(32)),
        ("too old to remember", "new_v5", 3, e3.blob[-32:]),
        ("forked at the same version", "v3", 3, f3.blob[-32:]),
        ("forked at an older version", "v5", 3, f3.blob[-32:]),
    ]
    compares = []
    for name, start, version, chain in compare_cases:
        result = outcome(
            lambda start=start, version=version, chain=chain: compare_checkpoint(
                states[start], Checkpoint(version, chain)
            )
        )
        compares.append(
            {
                "name": name,
                "state": start,
                "checkpoint": {"version": version, "chain": hx(chain)},
                "verdict": result.get("result"),
                "error": result["error"],
                **({"message": result["message"]} if result["error"] else {}),
            }
        )

    return {
        "description": (
            "Account state sync (section 23). keys: k1, k2 = new_sync_key(TestRng(seed('account "
            "state keys')), since_version=1 then 6). records: seal_record(k1's subkeys, mutation, "
            "TestRng(seed('account state records'))) in order. log: with TestRng(seed('account "
            "state log')): e1..e3 = build_patch(previous state, M, version), e4 = build_snapshot, "
            "e5 = build_patch; with TestRng(seed('account state rotation')): e6 = build_snapshot "
            "under k2, e7 = build_patch under k2, r7 = build_patch of the removed device under k1 "
            "on (version 6, chain e6, e5's records); with TestRng(seed('account state fork')): f3, "
            "f4 = build_patch from e2's state. Forged blobs are given as bytes. apply: "
            "apply_entries(states[state], [[version, blobs[name]]], keys) gives state_after or "
            "raises error with message."
        ),
        "seeds": {
            name: hx(seed(f"account state {name}"))
            for name in ("keys", "records", "log", "rotation", "fork", "forged")
        },
        "keys": {name: key_json(key) for name, key in keys.items()},
        "index_macs": index_macs,
        "records": records,
        "state_hash": hashes,
        "log": {
            "e1": written_json(e1, "k1", M1),
            "e2": written_json(e2, "k1", M2),
            "e3": written_json(e3, "k1", M3),
            "e4": written_json(e4, "k1", None),
            "e5": written_json(e5, "k1", M5),
            "e6": written_json(e6, "k2", None),
            "e7": written_json(e7, "k2", M7),
            "r7": written_json(r7, "k1", M7_REMOVED),
            "f3": written_json(f3, "k1", M3_FORK),
            "f4": written_json(f4, "k1", M4_FORK),
        },
        "blobs": {name: hx(blob) for name, blob in blobs.items()},
        "states": {name: state.to_dict() for name, state in states.items()},
        "apply": applies,
        "check_fetched": fetched,
        "compare_checkpoint": compares,
        "malformed_entries": malformed_entries(e3.blob, e4.blob),
        "malformed_mutations": malformed_mutations(),
        "contents": contents(k2, e5),
    }


def malformed_entries(patch: bytes, snapshot: bytes) -> list[dict[str, Any]]:
    header = 1 + 1 + 16 + 8 + 32 + 32
    first_record = header + 4
    count = int.from_bytes(patch[header:first_record], "big")
    snap_header = snapshot[:header]
    snap_records = snapshot[first_record:-32]
    record_size = 32 + 24 + 4 + int.from_bytes(snap_records[56:60], "big")
    cases = {
        "empty": b"",
        "format 2": b"\x02" + patch[1:],
        "kind 3": patch[:1] + b"\x03" + patch[2:],
        "version 0": patch[:18] + bytes(8) + patch[26:],
        "version above 2^53-1": patch[:18] + (2**53).to_bytes(8, "big") + patch[26:],
        "trailing byte": patch + b"\x00",
        "no MAC": patch[:-32],
        "a record count beyond the data": patch[:header]
        + (count + 1).to_bytes(4, "big")
        + patch[first_record:],
        "a patch without records": patch[:header] + bytes(4) + patch[-32:],
        "a ciphertext shorter than a tag": patch[: first_record + 56]
        + u32(15)
        + patch[first_record + 60 : first_record + 75]
        + patch[-32:],
        "a patch over 64 KiB": patch[:1] + b"\x01" + patch[2:] + bytes(65536),
        "a snapshot's records out of order": snap_header
        + (2).to_bytes(4, "big")
        + snap_records[record_size : 2 * record_size]
        + snap_records[:record_size]
        + snapshot[-32:],
    }
    return [
        {"name": name, "blob": hx(blob), "error": "MalformedMessage"}
        for name, blob in cases.items()
    ]


def malformed_mutations() -> list[dict[str, Any]]:
    good = encode_mutation(M1[0]).decode()
    cases = {
        "whitespace": good.replace(",", ", ", 1),
        "keys out of order": '{"device":"d","collection":"contacts","index":["a"],"timestamp":1,"value":null}',
        "a missing key": '{"collection":"contacts","device":"d","index":["a"],"value":null}',
        "an extra key": '{"collection":"contacts","device":"d","extra":1,"index":["a"],"timestamp":1,"value":null}',
        "an upper-case collection": good.replace('"contacts"', '"Contacts"'),
        "an empty index": good.replace('["contact","bob"]', "[]"),
        "an index of numbers": good.replace('["contact","bob"]', "[1,2]"),
        "nine index parts": good.replace(
            '["contact","bob"]', json.dumps(["a"] * 9, separators=(",", ":"))
        ),
        "a negative number": good.replace('"verified":false', '"verified":-1'),
        "a fraction": good.replace('"verified":false', '"verified":1.5'),
        "a list as value": good.replace('{"nickname":"Bob","verified":false}', "[1]"),
        "an empty device id": good.replace('"dev-phone"', '""'),
        "a device id of 65 bytes": good.replace('"dev-phone"', json.dumps("d" * 65)),
        "a string timestamp": good.replace(str(T0), f'"{T0}"'),
        "a lone surrogate": good.replace("Bob", "\\ud800"),
        "not JSON": "{",
    }
    return [
        {"name": name, "plaintext": hx(text.encode("utf-8")), "error": "MalformedMessage"}
        for name, text in cases.items()
    ]


def contents(key: SyncKey, at: WrittenEntry) -> list[dict[str, Any]]:
    rng = TestRng(seed("account state contents"))
    list_hash = rng(32)
    bodies = [
        (
            ContentType.ACCOUNT_SYNC_KEY,
            {
                "key_id": b64u_encode(key.key_id),
                "key": b64u_encode(key.key),
                "since_version": key.since_version,
                "version": at.version,
                "chain": b64u_encode(at.blob[-32:]),
            },
        ),
        (
            ContentType.ACCOUNT_SYNC_CHECKPOINT,
            {"version": at.version, "chain": b64u_encode(at.blob[-32:])},
        ),
    ]
    out = []
    for content_type, body in bodies:
        content = Content(content_type, rng(16), T0 + 5000, 2, list_hash, body)
        out.append(
            {
                "type": int(content_type),
                "message_id": hx(content.message_id),
                "timestamp": content.timestamp,
                "sender_list_version": 2,
                "sender_list_hash": hx(list_hash),
                "body": body,
                "encoded": hx(encode_content(content)),
            }
        )
    return out


def main() -> None:
    VECTOR_FILE.write_text(render(build()), encoding="utf-8")


if __name__ == "__main__":
    main()
